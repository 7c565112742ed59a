package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// MediaSpec says what the publishers send. The files are made once with ffmpeg (testsrc2 and a
// sine tone) and kept in Dir, named after their parameters.
type MediaSpec struct {
	Dir        string // cache directory
	VideoCodec string // VP8 or H264
	Width      int
	Height     int
	FPS        int
	VideoKbps  int
	GOP        int // frames between keyframes
	AudioKbps  int
	Seconds    int // length of the loop
}

// Media is the loaded clips, shared read-only by every publisher.
type Media struct {
	Spec  MediaSpec
	Video [][]byte // one encoded frame each (Annex-B access units for H.264)
	Audio [][]byte // 20 ms Opus packets
	// Skipped counts frames the publishers dropped because the generator fell behind the clock:
	// non-zero means the load machine, not the server, limited what was sent.
	Skipped atomic.Uint64
}

func (s MediaSpec) withDefaults() MediaSpec {
	if s.VideoCodec == "" {
		s.VideoCodec = "VP8"
	}
	s.VideoCodec = strings.ToUpper(s.VideoCodec)
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&s.Width, 640)
	def(&s.Height, 480)
	def(&s.FPS, 30)
	def(&s.VideoKbps, 800)
	def(&s.GOP, s.FPS)
	def(&s.AudioKbps, 32)
	def(&s.Seconds, 10)
	if s.Dir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			s.Dir = filepath.Join(d, "parley-load")
		} else {
			s.Dir = filepath.Join(os.TempDir(), "parley-load")
		}
	}
	return s
}

// LoadMedia makes the clips with ffmpeg if they are not in the cache yet, and reads them.
func LoadMedia(ctx context.Context, spec MediaSpec) (*Media, error) {
	s := spec.withDefaults()
	if s.Width%2 != 0 || s.Height%2 != 0 || s.Width > 3840 || s.Height > 2160 || s.FPS > 60 || s.VideoKbps > 20000 || s.Seconds > 60 {
		return nil, fmt.Errorf("media %dx%d@%d %d kbit/s %d s: out of range", s.Width, s.Height, s.FPS, s.VideoKbps, s.Seconds)
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, err
	}
	m := &Media{Spec: s}
	var err error
	switch s.VideoCodec {
	case "VP8":
		m.Video, err = s.load(ctx, fmt.Sprintf("vp8-%dx%d-%dfps-%dk-g%d-%ds.ivf", s.Width, s.Height, s.FPS, s.VideoKbps, s.GOP, s.Seconds), s.vp8Args, readIVF)
	case "H264":
		m.Video, err = s.load(ctx, fmt.Sprintf("h264-%dx%d-%dfps-%dk-g%d-%ds-v2.h264", s.Width, s.Height, s.FPS, s.VideoKbps, s.GOP, s.Seconds), s.h264Args, readH264)
	default:
		err = fmt.Errorf("video codec %q: want VP8 or H264", s.VideoCodec)
	}
	if err != nil {
		return nil, err
	}
	m.Audio, err = s.load(ctx, fmt.Sprintf("opus-%dk-20ms-%ds.ogg", s.AudioKbps, s.Seconds), s.opusArgs, readOgg)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (s MediaSpec) src() []string {
	return []string{"-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
		fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", s.Width, s.Height, s.FPS), "-t", fmt.Sprint(s.Seconds), "-pix_fmt", "yuv420p"}
}

func (s MediaSpec) vp8Args(out string) []string {
	k := fmt.Sprintf("%dk", s.VideoKbps)
	return append(s.src(), "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", k, "-minrate", k, "-maxrate", k,
		"-g", fmt.Sprint(s.GOP), "-keyint_min", fmt.Sprint(s.GOP), "-auto-alt-ref", "0", "-lag-in-frames", "0", "-error-resilient", "1", "-f", "ivf", out)
}

func (s MediaSpec) h264Args(out string) []string {
	k := fmt.Sprintf("%dk", s.VideoKbps)
	return append(s.src(), "-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-bf", "0", "-b:v", k, "-maxrate", k, "-bufsize", k,
		"-x264-params", fmt.Sprintf("keyint=%d:min-keyint=%d:scenecut=0:slices=1:sliced-threads=0:repeat-headers=1", s.GOP, s.GOP), "-bsf:v", "h264_mp4toannexb", "-f", "h264", out)
}

func (s MediaSpec) opusArgs(out string) []string {
	// One 20 ms packet per Ogg page, so a page is a sample.
	return []string{"-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", fmt.Sprint(s.Seconds),
		"-ac", "2", "-c:a", "libopus", "-b:a", fmt.Sprintf("%dk", s.AudioKbps), "-frame_duration", "20", "-page_duration", "20000", "-application", "voip", "-f", "ogg", out}
}

// load returns the frames of name in the cache, making it first when missing. ffmpeg writes to a
// temporary name that is renamed into place, so concurrent runs never read half a file.
func (s MediaSpec) load(ctx context.Context, name string, args func(string) []string, read func(io.Reader) ([][]byte, error)) ([][]byte, error) {
	path := filepath.Join(s.Dir, name)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		tmp := fmt.Sprintf("%s.tmp%d%s", path, os.Getpid(), filepath.Ext(path))
		cmd := exec.CommandContext(ctx, "ffmpeg", args(tmp)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			_ = os.Remove(tmp)
			return nil, fmt.Errorf("ffmpeg %s: %v: %s", name, err, strings.TrimSpace(stderr.String()))
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	frames, err := read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("%s: no frames", path)
	}
	return frames, nil
}

func readIVF(r io.Reader) ([][]byte, error) {
	ivf, _, err := ivfreader.NewWith(r)
	if err != nil {
		return nil, err
	}
	var frames [][]byte
	for {
		f, _, err := ivf.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			return nil, err
		}
		frames = append(frames, f)
	}
}

// readH264 groups NAL units into access units: a frame starts at a parameter set, SEI or access
// unit delimiter after a slice, or at a slice whose first_mb_in_slice is 0 (its ue(v) code is a
// single 1 bit) — a frame may hold several slices.
func readH264(r io.Reader) ([][]byte, error) {
	h, err := h264reader.NewReader(r)
	if err != nil {
		return nil, err
	}
	var frames [][]byte
	var au []byte
	slices := false
	for {
		nal, err := h.NextNAL()
		if errors.Is(err, io.EOF) {
			if slices {
				frames = append(frames, au)
			}
			return frames, nil
		}
		if err != nil {
			return nil, err
		}
		vcl := nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr
		firstSlice := vcl && len(nal.Data) > 1 && nal.Data[1]&0x80 != 0
		if slices && (!vcl || firstSlice) {
			frames = append(frames, au)
			au, slices = nil, false
		}
		au = append(au, 0, 0, 0, 1)
		au = append(au, nal.Data...)
		slices = slices || vcl
	}
}

func readOgg(r io.Reader) ([][]byte, error) {
	ogg, _, err := oggreader.NewWith(r)
	if err != nil {
		return nil, err
	}
	var frames [][]byte
	for {
		page, _, err := ogg.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			return nil, err
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) || bytes.HasPrefix(page, []byte("OpusHead")) || len(page) == 0 {
			continue
		}
		frames = append(frames, page)
	}
}

// NewTracks makes the local tracks of one publisher; play sends them.
func (m *Media) NewTracks(video, audio bool, id string) ([]*webrtc.TrackLocalStaticSample, error) {
	var out []*webrtc.TrackLocalStaticSample
	if audio {
		t, err := webrtc.NewTrackLocalStaticSample(opusCodec.RTPCodecCapability, "audio", id)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if video {
		c, err := videoCodec(m.Spec.VideoCodec)
		if err != nil {
			return nil, err
		}
		t, err := webrtc.NewTrackLocalStaticSample(c.RTPCodecCapability, "video", id)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// sampleWriter is what Play writes to: a *webrtc.TrackLocalStaticSample.
type sampleWriter interface {
	WriteSample(media.Sample) error
}

// maxBurst is how many frames one tick sends at most to catch up; a generator starved for longer
// (a loaded machine) skips the rest.
const maxBurst = 10

// catchUp writes the frames owed from i up to due and returns the next frame's index. Each sample
// advances the RTP timestamp by its duration; after a long starvation only frame i is sent,
// stretched over the frames skipped, so the next frame's timestamp is still on the wall clock: a
// recorder or receiver that times media by RTP timestamps then sees a gap, not a clock that
// runs slow (an hour at load 10 fell 40 s behind before).
func (m *Media) catchUp(w sampleWriter, frames [][]byte, dur time.Duration, i, due int) int {
	if due-i > maxBurst {
		m.Skipped.Add(uint64(due - 1 - i))
		_ = w.WriteSample(media.Sample{Data: frames[i%len(frames)], Duration: dur * time.Duration(due-i)})
		return due
	}
	for ; i < due; i++ {
		_ = w.WriteSample(media.Sample{Data: frames[i%len(frames)], Duration: dur})
	}
	return i
}

// Play loops the clip matching each track until ctx ends. Each sample advances the RTP timestamp by
// its duration, so the loop point is seamless for the receiver; the clock is the wall clock, so a
// late tick sends the frames it owes instead of drifting.
func (m *Media) Play(ctx context.Context, tracks []*webrtc.TrackLocalStaticSample) {
	done := make(chan struct{}, len(tracks))
	for _, t := range tracks {
		frames, dur := m.Audio, 20*time.Millisecond
		if t.Kind() == webrtc.RTPCodecTypeVideo {
			frames, dur = m.Video, time.Second/time.Duration(m.Spec.FPS)
		}
		go func() {
			defer func() { done <- struct{}{} }()
			start := time.Now()
			tick := time.NewTicker(dur)
			defer tick.Stop()
			for i := 0; ; {
				i = m.catchUp(t, frames, dur, i, int(time.Since(start)/dur)+1)
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	for range tracks {
		<-done
	}
}
