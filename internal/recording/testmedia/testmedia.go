// Package testmedia makes real VP8 and Opus media with ffmpeg, packetised as a browser sends it,
// and reads recorded files back with ffprobe. Tests of recording use it; production code must not.
package testmedia

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// FrameInterval and AudioInterval are the media's frame durations (30 fps video, 20 ms Opus).
const (
	FrameInterval = time.Second / 30
	AudioInterval = 20 * time.Millisecond
)

// Media is seconds of a test pattern and a tone.
type Media struct {
	Video [][]*rtp.Packet // RTP packets of each frame
	Audio []*rtp.Packet   // one packet per 20 ms
}

// Missing names ffmpeg or ffprobe when one is not installed (scripts/install-test-deps.sh installs
// them), else "".
func Missing() string {
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool
		}
	}
	return ""
}

// Make encodes seconds of 320x240 VP8 (a keyframe a second) and 48 kHz Opus into dir and
// packetises them.
func Make(dir string, seconds int) (Media, error) { return MakeWith(dir, seconds, "VP8") }

// MakeWith is Make with VP8 or VP9 video.
func MakeWith(dir string, seconds int, videoCodec string) (Media, error) {
	var m Media
	ivf, ogg := filepath.Join(dir, "v.ivf"), filepath.Join(dir, "a.ogg")
	d := strconv.Itoa(seconds)
	run := func(args ...string) error {
		if out, err := exec.Command("ffmpeg", append([]string{"-v", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("ffmpeg %v: %v\n%s", args, err, out)
		}
		return nil
	}
	encoder, payloader := "libvpx", rtp.Payloader(&codecs.VP8Payloader{EnablePictureID: true})
	if videoCodec == "VP9" {
		encoder, payloader = "libvpx-vp9", &codecs.VP9Payloader{}
	}
	if err := run("-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", d, "-c:v", encoder, "-g", "30", "-deadline", "realtime", "-b:v", "300k", ivf); err != nil {
		return m, err
	}
	// One Opus packet per Ogg page, so each page is one 20 ms RTP packet.
	if err := run("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", d, "-c:a", "libopus", "-page_duration", "20000", ogg); err != nil {
		return m, err
	}
	f, err := os.Open(ivf)
	if err != nil {
		return m, err
	}
	defer f.Close()
	ir, _, err := ivfreader.NewWith(f)
	if err != nil {
		return m, err
	}
	vp := rtp.NewPacketizer(1200, 96, 1111, payloader, rtp.NewRandomSequencer(), 90000)
	for {
		frame, _, err := ir.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, err
		}
		m.Video = append(m.Video, vp.Packetize(frame, 3000))
	}
	g, err := os.Open(ogg)
	if err != nil {
		return m, err
	}
	defer g.Close()
	or, _, err := oggreader.NewWith(g)
	if err != nil {
		return m, err
	}
	ap := rtp.NewPacketizer(1200, 111, 2222, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	for {
		page, _, err := or.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, err
		}
		if bytes.HasPrefix(page, []byte("OpusHead")) || bytes.HasPrefix(page, []byte("OpusTags")) {
			continue // the Ogg stream's headers, not audio
		}
		m.Audio = append(m.Audio, ap.Packetize(page, 960)...)
	}
	return m, nil
}

// Probe is what ffprobe says of a file after decoding every frame.
type Probe struct {
	Streams []struct {
		CodecName    string `json:"codec_name"`
		CodecType    string `json:"codec_type"`
		NbReadFrames string `json:"nb_read_frames"`
		Width        int    `json:"width"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// Stream returns the codec and decoded frame count of the first stream of kind (video, audio).
func (p Probe) Stream(kind string) (codec string, frames int) {
	for _, s := range p.Streams {
		if s.CodecType == kind {
			n, _ := strconv.Atoi(s.NbReadFrames)
			return s.CodecName, n
		}
	}
	return "", 0
}

// Duration is the container's duration in seconds, NaN when it has none.
func (p Probe) Duration() float64 {
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		return math.NaN()
	}
	return d
}

// ProbeFile runs ffprobe with -count_frames on path: a frame count means decodable media.
func ProbeFile(path string) (Probe, error) {
	var p Probe
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_name,codec_type,nb_read_frames,width:format=duration", "-of", "json", path).Output()
	if err != nil {
		return p, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	if err := json.Unmarshal(out, &p); err != nil {
		return p, fmt.Errorf("ffprobe output: %v\n%s", err, out)
	}
	return p, nil
}

// MakeH264 encodes seconds of 320x240 H.264 (constrained baseline, no B-frames, a keyframe a
// second, as browsers send it) and packetises it; each element is one frame's packets.
func MakeH264(dir string, seconds int) ([][]*rtp.Packet, error) {
	raw := filepath.Join(dir, "v.h264")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-profile:v", "baseline", "-preset", "ultrafast", "-bf", "0", "-g", "30", "-pix_fmt", "yuv420p", "-f", "h264", raw).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %v\n%s", err, out)
	}
	f, err := os.Open(raw)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := h264reader.NewReader(f)
	if err != nil {
		return nil, err
	}
	p := rtp.NewPacketizer(1200, 102, 3333, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000)
	var frames [][]*rtp.Packet
	var au []byte
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			return nil, err
		}
		au = append(au, 0, 0, 0, 1)
		au = append(au, nal.Data...)
		// One slice per frame: a coded slice ends the access unit.
		if t := nal.UnitType; t == h264reader.NalUnitTypeCodedSliceNonIdr || t == h264reader.NalUnitTypeCodedSliceIdr {
			frames = append(frames, p.Packetize(au, 3000))
			au = nil
		}
	}
}

var (
	sharedOnce sync.Once
	shared     Media
	sharedErr  error
)

// Shared is 10 s of Make's media, encoded once per process: encoding is the slow part of the tests
// that use it on a busy machine. Callers must not modify the packets.
func Shared() (Media, error) {
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "parley-testmedia-")
		if err != nil {
			sharedErr = err
			return
		}
		defer os.RemoveAll(dir)
		shared, sharedErr = Make(dir, 10)
	})
	return shared, sharedErr
}
