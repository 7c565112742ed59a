package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A composition mixed while the call goes on is made of segments: each is the window
// [From, From+Length) of the recording, mixed by MixSegment from the track files written so far,
// and Join appends them into the final MP4 without re-encoding. For that the pieces must fit end
// to end exactly:
//
//   - video: every segment is H.264 with the same encoder settings (the same SPS/PPS), starts
//     with an IDR frame (a new encoder always does) and holds exactly Length×FrameRate frames, so
//     the concat demuxer's timestamps run on without a gap or an overlap;
//   - audio: AAC has a priming frame (1024 samples of encoder delay) and each frame overlaps the
//     next, so each segment encodes one frame of the audio before From and one after its end as
//     well, and of the ADTS output keeps only the frames that cover the window itself (trimADTS).
//     The first kept frame then overlaps the previous segment's last frame, both encoded from the
//     same sound: the joins are inaudible and the audio never drifts from the video;
//   - Length is a multiple of SegmentUnit, so both kinds hold whole frames.

// aacFrame is one AAC frame at 48 kHz: 1024 samples.
const aacFrame = 1024 * time.Second / 48000

// SegmentUnit is the shortest length that holds whole video frames at fps and whole AAC frames
// at 48 kHz: lcm(1024/48000 s, 1/fps) = 8/gcd(375, fps) s (0.32 s at 25 fps, 0.533 s at 30).
func SegmentUnit(fps int) time.Duration {
	if fps <= 0 {
		fps = 25
	}
	a, b := 375, fps
	for b != 0 {
		a, b = b, a%b
	}
	return 8 * time.Second / time.Duration(a)
}

// SegmentLength is want rounded up to a whole number of SegmentUnit(fps).
func SegmentLength(want time.Duration, fps int) time.Duration {
	u := SegmentUnit(fps)
	n := (want + u - 1) / u
	return max(n, 1) * u
}

// Segment is one window of a composition.
type Segment struct {
	// Tracks are the track files (parts) that overlap the window. Offset is relative to the
	// recording's start; Length is how long the file is (0: it runs past the window, a file still
	// being written); HasAudio/HasVideo say which kinds it holds frames of (no probing). Parts of
	// one Stream share a tile; tiles go to streams in the order of their first part here.
	Tracks []Track
	// Video is the .mp4 to write (H.264 only), "" for no video; Audio the .aac (ADTS) to write,
	// "" for no audio.
	Video, Audio string
	// From and Length are the window; Length a multiple of SegmentUnit(FrameRate) except for a
	// recording's last segment.
	From, Length time.Duration
	// Width, Height, FrameRate are the composition's.
	Width, Height, FrameRate int
	// Nice is the niceness ffmpeg runs at (0: parley's own).
	Nice int
	// Boost, when closed, puts a niced mix back to niceness 0: the segment is now awaited (the
	// recording stopped). Where that is not allowed (no CAP_SYS_NICE) ffmpeg is stopped and
	// MixSegment returns ErrNotBoosted, for the caller to mix the window again at full priority.
	Boost <-chan struct{}
	// Threads bounds ffmpeg's threads (0: as many as it likes): 1 during the call, so the mix
	// takes at most one core; all of them after stop, when the segment is awaited.
	Threads int
	// Log receives ffmpeg's command line and warnings; nil discards.
	Log io.Writer
}

// seekPreRoll is how much earlier than needed a track is read from when its start is skipped:
// the audio decoder needs some sound before the first it gives right, and a picture that froze
// across the segment's start (a publisher's stall) is shown from its last frame, not left black,
// for stalls up to this long.
const seekPreRoll = time.Second

// segmentVideoArgs are the encoder settings every segment shares. The joins copy the segments'
// H.264 under one set of parameter sets (SPS/PPS), so they must not change within a
// recording; x264's thread count and its search effort do not touch them.
//
// The effort is x264's "ultrafast" (the preset OpenVidu's own COMPOSED recorder uses: -preset
// ultrafast -crf 28) with the tools that shrink the file and cost little kept from "veryfast":
// CABAC, 8x8 transforms, three B-frames, weighted prediction, adaptive quantisation and the
// deblocking filter. That is about half the CPU of "veryfast" (a 10.24 s segment of two 640x480
// test pictures at 1280x720: 2.1 s of CPU instead of 3.9) for 1.8 times the bytes on that noisy
// picture, with the SPS/PPS "veryfast" had.
var segmentVideoArgs = []string{"-c:v", "libx264", "-preset", "ultrafast",
	"-x264-params", "cabac=1:8x8dct=1:bframes=3:b-pyramid=2:weightp=1:weightb=1:deblock=0,0:aq-mode=1",
	"-pix_fmt", "yuv420p", "-profile:v", "high"}

// videoTimescale is the MP4 track timescale of every segment (Output refuses a segment whose
// timescale differs from the first's).
const videoTimescale = "90000"

func (s Segment) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	if s.Video == "" && s.Audio == "" {
		bad("segment with neither audio nor video")
	}
	if s.From < 0 || s.Length <= 0 || s.Length > maxDuration {
		bad("segment window %v+%v", s.From, s.Length)
	}
	if s.Video != "" {
		if s.Width < minSize || s.Width > maxSize || s.Height < minSize || s.Height > maxSize {
			bad("resolution %dx%d: each side must be %d..%d", s.Width, s.Height, minSize, maxSize)
		}
		if s.FrameRate < 1 || s.FrameRate > maxFrameRate {
			bad("frame rate %d outside 1..%d", s.FrameRate, maxFrameRate)
		}
	}
	for i, t := range s.Tracks {
		if t.Path == "" || t.Offset < 0 || t.Length < 0 {
			bad("track %d: path %q offset %v length %v", i, t.Path, t.Offset, t.Length)
		}
	}
	return errors.Join(errs...)
}

// frames is how many video frames the segment holds.
func (s Segment) frames() int64 {
	return (int64(s.Length)*int64(s.FrameRate) + int64(time.Second)/2) / int64(time.Second)
}

// audioFrames is how many AAC frames the segment keeps.
func (s Segment) audioFrames() int {
	return int((samples(s.Length) + 1023) / 1024) // in samples: aacFrame is not a whole number of ns
}

// MixSegment mixes one window into s.Video and s.Audio (each written under a temporary name and
// renamed when complete). A window nobody published in is black and silent.
func MixSegment(ctx context.Context, s Segment) error {
	if err := s.validate(); err != nil {
		return err
	}
	if err := haveTools(); err != nil {
		return err
	}
	log := &lockedWriter{w: s.Log}
	if s.Log == nil {
		log.w = io.Discard
	}
	pl := planSegment(s, false)
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning", "-y"}
	for k := range pl.inputs {
		args = append(args, pl.inputArgs(k, fileURL(pl.inputs[k].path))...)
	}
	args = append(args, "-filter_complex", pl.graph(s))
	if s.Threads > 0 {
		args = append(args, "-filter_complex_threads", fmt.Sprint(s.Threads))
	}
	vtmp, atmp := partName(s.Video), partName(s.Audio)
	if s.Video != "" {
		args = append(args, "-map", "[vout]")
		args = append(args, segmentVideoArgs...)
		if s.Threads > 0 {
			args = append(args, "-threads", fmt.Sprint(s.Threads))
		}
		args = append(args, "-video_track_timescale", videoTimescale,
			"-r", fmt.Sprint(s.FrameRate), "-frames:v", fmt.Sprint(s.frames()), "-f", "mp4", fileURL(vtmp))
	}
	if s.Audio != "" {
		args = append(args, "-map", "[aout]", "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", "-f", "adts", fileURL(atmp))
	}
	fmt.Fprintf(log, "segment: ffmpeg %s\n", strings.Join(args, " "))
	err := runFFmpeg(ctx, args, log, s.Nice, s.Boost, nil)
	if err == nil && s.Audio != "" {
		err = trimADTSFile(atmp, 2, s.audioFrames())
	}
	if err == nil && s.Video != "" {
		err = os.Rename(vtmp, s.Video)
	}
	if err == nil && s.Audio != "" {
		err = os.Rename(atmp, s.Audio)
	}
	if err != nil {
		for _, p := range []string{vtmp, atmp} {
			if p != "" {
				os.Remove(p)
			}
		}
		return fmt.Errorf("segment at %v: %w", s.From, err)
	}
	return nil
}

func partName(p string) string {
	if p == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".part")
}

// ErrNotBoosted is MixSegment's answer when Boost was closed but the mix could not be put back to
// full priority: it was stopped, to be done again.
var ErrNotBoosted = errors.New("the mix could not be given full priority")

// runFFmpeg runs ffmpeg at niceness nice (0: parley's own), killing it when ctx ends; when boost
// is closed, a niced ffmpeg is put back to niceness 0, or stopped with ErrNotBoosted. extra are
// ffmpeg's descriptors 3, 4, … (pipe:3…); they are closed here once ffmpeg has them.
func runFFmpeg(ctx context.Context, args []string, log io.Writer, nice int, boost <-chan struct{}, extra []*os.File) error {
	tail := &tailBuffer{max: 4096}
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	cmd.Stdout = log
	cmd.Stderr = io.MultiWriter(tail, log)
	cmd.WaitDelay = 5 * time.Second
	cmd.ExtraFiles = extra
	err := cmd.Start()
	for _, f := range extra {
		f.Close() // ffmpeg's copies stay open: its exit closes the pipes' ends
	}
	var notBoosted atomic.Bool
	if err == nil {
		if nice > 0 {
			lowerPriority(cmd.Process.Pid, nice)
		}
		// The watcher renices only while the process is not yet reaped (mu, exited): a zombie
		// keeps its pid, a reaped one may give it to another process.
		var mu sync.Mutex
		exited, done := false, make(chan struct{})
		if boost != nil && nice > 0 {
			go func() {
				select {
				case <-boost:
				case <-done:
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if exited {
					return
				}
				if raisePriority(cmd.Process.Pid) != nil {
					notBoosted.Store(true)
					_ = cmd.Process.Kill()
				} else {
					fmt.Fprintf(log, "segment: ffmpeg %d now at full priority\n", cmd.Process.Pid)
				}
			}()
		}
		err = cmd.Wait()
		mu.Lock()
		exited = true
		mu.Unlock()
		close(done)
	}
	if err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if notBoosted.Load() {
			return ErrNotBoosted
		}
		return fmt.Errorf("ffmpeg: %w: %s", err, tail.String())
	}
	return nil
}

// segmentGraph is the filter graph of one segment: the BEST_FIT grid of the streams seen in the
// window, each part placed at its time, and the summed audio, both starting at t0.
func segmentGraph(s Segment, inputs []input, leads, shifts, untils []time.Duration, streams []string, t0 time.Duration) string {
	var g []string
	span := s.From + s.Length - t0
	if s.Audio != "" {
		// One frame beyond the window too: the last kept frame overlaps into it, and must be
		// encoded from the sound that follows, not from the encoder's closing silence.
		span += aacFrame
	}
	if s.Video != "" {
		w, h := even(s.Width), even(s.Height)
		// Video time zero is the window's start (audio's is t0): the segment's frames exactly.
		g = append(g, fmt.Sprintf("color=c=black:s=%dx%d:r=%d:d=%s,format=yuv420p[bg0]",
			w, h, s.FrameRate, seconds(s.Length+time.Second)))
		// One pseudo-input per stream, spanning its parts, clamped to the window, gets a tile.
		var order []string
		spans := map[string]*input{}
		for i, in := range inputs {
			if !in.video {
				continue
			}
			st := streams[i]
			from, to := max(in.offset, s.From), min(in.end, s.From+s.Length)
			if p := spans[st]; p != nil {
				p.offset, p.end = min(p.offset, from), max(p.end, to)
				continue
			}
			order = append(order, st)
			spans[st] = &input{offset: from, end: to, video: true}
		}
		pseudo := make([]input, len(order))
		vids := make([]int, len(order))
		for k, st := range order {
			pseudo[k], vids[k] = *spans[st], k
		}
		slots, n := assignTiles(pseudo, vids)
		tiles := bestFit(n, w, h)
		k := 0
		for i, in := range inputs {
			if !in.video {
				continue
			}
			tl := tiles[slots[slices.Index(order, streams[i])]]
			cut := ""
			if untils[i] > 0 {
				cut = fmt.Sprintf("trim=end=%s,", seconds(untils[i]-(s.From-t0)))
			}
			g = append(g, fmt.Sprintf("[%d:v:0]setpts=PTS+%s/TB,%s"+
				"scale=w=%d:h=%d:force_original_aspect_ratio=decrease:force_divisible_by=2,"+
				"pad=w=%d:h=%d:x=(ow-iw)/2:y=(oh-ih)/2:color=black:eval=frame,setsar=1[t%d]",
				i, seconds(shifts[i]-leads[i]-(s.From-t0)), cut, tl.W, tl.H, tl.W, tl.H, k))
			g = append(g, fmt.Sprintf("[bg%d][t%d]overlay=x=%d:y=%d:eof_action=pass[bg%d]", k, k, tl.X, tl.Y, k+1))
			k++
		}
		g = append(g, fmt.Sprintf("[bg%d]null[vout]", k))
	}
	if s.Audio != "" {
		g = append(g, fmt.Sprintf("anullsrc=r=48000:cl=stereo,atrim=end=%s[a0]", seconds(span)))
		mix, n := "[a0]", 1
		for i, in := range inputs {
			if !in.audio {
				continue
			}
			cut := ""
			if untils[i] > 0 {
				cut = fmt.Sprintf(",atrim=end=%s", seconds(untils[i]))
			}
			g = append(g, fmt.Sprintf("[%d:a:0]atrim=start=%s,asetpts=PTS-STARTPTS,aresample=async=1:first_pts=0,"+
				"aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo,"+
				"adelay=delays=%dS:all=1%s[a%d]", i, seconds(leads[i]), samples(max(0, shifts[i])), cut, n))
			mix += fmt.Sprintf("[a%d]", n)
			n++
		}
		if n == 1 {
			g = append(g, "[a0]anull[aout]")
		} else {
			g = append(g, fmt.Sprintf("%samix=inputs=%d:duration=first:dropout_transition=0:normalize=0[aout]", mix, n))
		}
	}
	return strings.Join(g, ";")
}

// trimADTSFile keeps frames [skip, skip+keep) of an ADTS file (fewer if it has fewer).
func trimADTSFile(path string, skip, keep int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := trimADTS(b, skip, keep)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

// trimADTS returns frames [skip, skip+keep) of an ADTS stream (ISO/IEC 14496-3 §1.A.2: a 12-bit
// sync word, the frame length in 13 bits of bytes 3..5).
func trimADTS(b []byte, skip, keep int) ([]byte, error) {
	start, n := -1, 0
	i := 0
	for i < len(b) {
		if len(b)-i < 7 || b[i] != 0xFF || b[i+1]&0xF0 != 0xF0 {
			return nil, fmt.Errorf("not ADTS at byte %d", i)
		}
		l := int(b[i+3]&3)<<11 | int(b[i+4])<<3 | int(b[i+5])>>5
		if l < 7 || i+l > len(b) {
			return nil, fmt.Errorf("ADTS frame at byte %d: length %d", i, l)
		}
		if n == skip {
			start = i
		}
		if n == skip+keep {
			return b[start:i], nil
		}
		i += l
		n++
	}
	if start < 0 {
		return nil, nil
	}
	return b[start:], nil
}

// segmentPlan is how a window's tracks go into ffmpeg: per input, where reading starts in its
// file (seek), the decoded lead before its first used moment, where that moment falls in the
// graph (shift), when it is cut (until, graph time; 0: not), and the stream it belongs to.
type segmentPlan struct {
	pipes                        bool          // inputs are pipes: read from their start, never seek
	t0                           time.Duration // the graph's time zero, recording time
	end                          time.Duration // the window's end, recording time
	inputs                       []input
	seeks, shifts, leads, untils []time.Duration
	streams                      []string
}

// planSegment plans s's inputs; with pipes (live) it never seeks: a pipe cannot, and asking
// ffmpeg's matroska demuxer to makes it lose a cluster resyncing, so what lies before the window
// is decoded and cut in the graph instead.
func planSegment(s Segment, pipes bool) segmentPlan {
	// t0 is the graph's time zero: the window's start, one AAC frame early when there is audio.
	pl := segmentPlan{pipes: pipes, t0: s.From, end: s.From + s.Length}
	if s.Audio != "" {
		pl.t0 -= aacFrame
	}
	t0, end := pl.t0, pl.end
	for i, t := range s.Tracks {
		useFrom, useTo := max(t.Offset, t.Since), end+time.Hour
		if t.Length > 0 {
			useTo = t.Offset + t.Length
		}
		if t.Until > 0 {
			useTo = min(useTo, t.Until)
		}
		in := input{path: t.Path, offset: useFrom, end: useTo,
			video: s.Video != "" && t.HasVideo && useTo > s.From && useFrom < end,
			audio: s.Audio != "" && t.HasAudio && useTo > t0 && useFrom < end}
		if !in.video && !in.audio {
			continue
		}
		// Skip what lies before the window, but seek a little earlier: a decoder started cold
		// (Opus: 80 ms) needs some sound before the first it gives right; that lead is cut again.
		at := max(t0, useFrom) - t.Offset
		seek := max(0, at-seekPreRoll)
		if pipes {
			seek = 0
		}
		pl.inputs = append(pl.inputs, in)
		pl.seeks = append(pl.seeks, seek)
		pl.leads = append(pl.leads, at-seek)
		pl.shifts = append(pl.shifts, t.Offset+at-t0) // where the file's first used moment falls in the graph
		var until time.Duration
		if t.Until > 0 && t.Until < end {
			until = t.Until - t0
		}
		pl.untils = append(pl.untils, until)
		st := t.Stream
		if st == "" {
			st = fmt.Sprintf("\x00%d", i)
		}
		pl.streams = append(pl.streams, st)
	}
	return pl
}

// inputArgs are input k's options and its URL.
func (pl segmentPlan) inputArgs(k int, url string) []string {
	var args []string
	if pl.seeks[k] > 0 && !pl.pipes { // a pipe's feeder skips instead (findCluster)
		args = append(args, "-ss", seconds(pl.seeks[k]))
	}
	// Read no further than the window's end (and a little more: the last frame's duration). A
	// pipe is read from its start, so what lies before the window counts too.
	read := pl.end - pl.t0 - pl.shifts[k] + 2*time.Second
	if pl.pipes {
		read += pl.leads[k]
	}
	return append(args, "-t", seconds(read), "-reinit_filter", "0", "-i", url)
}

func (pl segmentPlan) graph(s Segment) string {
	return segmentGraph(s, pl.inputs, pl.leads, pl.shifts, pl.untils, pl.streams, pl.t0)
}
