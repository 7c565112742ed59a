package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Track is one recorded stream to place in the composition.
type Track struct {
	// Path is the stream's WebM/MKV file as written by the INDIVIDUAL writer. Its first packet is
	// the moment the track starts.
	Path string
	// Offset is when the track starts, relative to the recording's start.
	Offset time.Duration
	// HasAudio and HasVideo say which kinds the stream carries; a kind the file turns out not to
	// hold is left out.
	HasAudio, HasVideo bool
	// Length is how long the file is, for a Segment (0: it runs past the window). Run probes the
	// file instead.
	Length time.Duration
	// Stream, for a Segment, names the stream a file is a part of: parts of one stream share a
	// tile. Empty: the file is a stream of its own.
	Stream string
	// Since and Until, for a Segment, bound when the part is its stream's (0: no bound): the
	// parts of a long call overlap a little, each taking over from the one before at a segment's
	// start.
	Since, Until time.Duration
}

// Job is one composition.
type Job struct {
	// Tracks are the streams, in the order their tiles fill the grid.
	Tracks []Track
	// Out is the file to write: MP4 (H.264 + AAC) when HasVideo, else WebM (Opus).
	Out string
	// Width, Height (100..1999, rounded down to even) and FrameRate (1..120) of the video.
	Width, Height, FrameRate int
	// HasAudio and HasVideo say which kinds the output has; at least one.
	HasAudio, HasVideo bool
	// Duration is the recording's wall-clock length, and the output's.
	Duration time.Duration
	// Log receives ffmpeg's command line, warnings and progress (key=value lines); nil discards.
	Log io.Writer
}

// Limits of a Job, OpenVidu's RecordingProperties ranges (protocol note §10.2).
const (
	minSize, maxSize = 100, 1999
	maxFrameRate     = 120
	// maxDuration bounds the length so a corrupt Duration cannot start a days-long encode.
	maxDuration = 48 * time.Hour
)

// ErrInvalid is wrapped by every error about a Job that cannot be run as given.
var ErrInvalid = errors.New("invalid composition")

// Validate reports what is wrong with the job, every problem at once.
func (j Job) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	if len(j.Tracks) == 0 {
		bad("no tracks")
	}
	for i, t := range j.Tracks {
		if t.Path == "" {
			bad("track %d has no path", i)
		}
		if t.Offset < 0 {
			bad("track %d: negative offset %v", i, t.Offset)
		}
	}
	if j.Out == "" {
		bad("no output file")
	}
	if !j.HasAudio && !j.HasVideo {
		bad("neither audio nor video")
	}
	if j.Duration <= 0 || j.Duration > maxDuration {
		bad("duration %v outside (0, %v]", j.Duration, maxDuration)
	}
	if j.HasVideo {
		if j.Width < minSize || j.Width > maxSize || j.Height < minSize || j.Height > maxSize {
			bad("resolution %dx%d: each side must be %d..%d", j.Width, j.Height, minSize, maxSize)
		}
		if j.FrameRate < 1 || j.FrameRate > maxFrameRate {
			bad("frame rate %d outside 1..%d", j.FrameRate, maxFrameRate)
		}
		if ext := strings.ToLower(filepath.Ext(j.Out)); j.Out != "" && ext != ".mp4" {
			bad("output %q: a composition with video is an .mp4", j.Out)
		}
	} else if ext := strings.ToLower(filepath.Ext(j.Out)); j.Out != "" && ext != ".webm" {
		bad("output %q: an audio-only composition is a .webm", j.Out)
	}
	return errors.Join(errs...)
}

// Run mixes the job's tracks into j.Out with one ffmpeg process and returns when the file is
// complete. Cancelling ctx kills ffmpeg and removes the partial output. Tracks whose file cannot
// be read, or holds none of the kinds the job wants, are left out (and said so in j.Log), so one
// broken stream costs its tile, not the recording.
func Run(ctx context.Context, j Job) error {
	if err := j.Validate(); err != nil {
		return err
	}
	if err := haveTools(); err != nil {
		return fmt.Errorf("compose %s: %w", j.Out, err)
	}
	log := &lockedWriter{w: j.Log}
	if j.Log == nil {
		log.w = io.Discard
	}
	var inputs []input
	for i, t := range j.Tracks {
		p, err := probe(ctx, t.Path)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("compose %s: %w", j.Out, context.Cause(ctx))
			}
			fmt.Fprintf(log, "compose: track %d (%s) left out: %v\n", i, t.Path, err)
			continue
		}
		end := j.Duration // a file that does not say how long it is runs to the end
		if p.duration > 0 {
			end = t.Offset + p.duration
		}
		in := input{path: t.Path, offset: t.Offset, end: end,
			video: j.HasVideo && t.HasVideo && p.video, audio: j.HasAudio && t.HasAudio && p.audio,
			mono: p.channels == 1}
		if !in.video && !in.audio {
			fmt.Fprintf(log, "compose: track %d (%s) left out: no %s stream to use\n", i, t.Path, kinds(j))
			continue
		}
		inputs = append(inputs, in)
	}
	tmp := filepath.Join(filepath.Dir(j.Out), "."+filepath.Base(j.Out)+".part")
	args := ffmpegArgs(j, inputs, tmp)
	fmt.Fprintf(log, "compose: ffmpeg %s\n", strings.Join(args, " "))

	tail := &tailBuffer{max: 4096}
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	cmd.Stdout = log // -progress pipe:1
	cmd.Stderr = io.MultiWriter(tail, log)
	cmd.WaitDelay = 5 * time.Second // pipes cannot outlive a killed ffmpeg for long
	err := cmd.Start()
	if err == nil {
		// Mixing is batch work on the machine that forwards live calls: let them go first.
		lowerPriority(cmd.Process.Pid, mixNice)
		err = cmd.Wait()
	}
	if err != nil {
		os.Remove(tmp)
		if ctx.Err() != nil {
			return fmt.Errorf("compose %s: %w", j.Out, context.Cause(ctx))
		}
		return fmt.Errorf("compose %s: ffmpeg: %w: %s", j.Out, err, tail.String())
	}
	if err := os.Rename(tmp, j.Out); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compose %s: %w", j.Out, err)
	}
	return nil
}

// input is a track as it goes into the graph: only the kinds that are there and wanted.
type input struct {
	path         string
	offset, end  time.Duration // when the track starts and ends in the recording
	video, audio bool
	mono         bool // the audio has one channel
}

func kinds(j Job) string {
	switch {
	case j.HasAudio && j.HasVideo:
		return "audio or video"
	case j.HasVideo:
		return "video"
	}
	return "audio"
}

// ffmpegArgs is the whole command line after "ffmpeg".
func ffmpegArgs(j Job, inputs []input, out string) []string {
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning", "-y",
		"-progress", "pipe:1"}
	for _, in := range inputs {
		// A browser changes resolution mid-call; by default ffmpeg would then rebuild the whole
		// graph, restarting the black background's clock and the mix. Every per-track filter
		// below accepts frames of a new size instead.
		args = append(args, "-reinit_filter", "0", "-i", fileURL(in.path))
	}
	args = append(args, "-filter_complex", filterGraph(j, inputs))
	secs := seconds(j.Duration)
	if j.HasVideo {
		args = append(args, "-map", "[vout]", "-c:v", "libx264", "-preset", "fast",
			"-pix_fmt", "yuv420p", "-r", fmt.Sprint(j.FrameRate))
		if j.HasAudio {
			args = append(args, "-map", "[aout]", "-c:a", "aac", "-b:a", "128k", "-ar", "48000")
		}
		args = append(args, "-movflags", "+faststart", "-t", secs, "-f", "mp4", fileURL(out))
	} else {
		args = append(args, "-map", "[aout]", "-c:a", "libopus", "-b:a", "96k",
			"-t", secs, "-f", "webm", fileURL(out))
	}
	return args
}

// filterGraph builds the -filter_complex text: [vout] and/or [aout].
func filterGraph(j Job, inputs []input) string {
	var g []string
	secs := seconds(j.Duration)
	if j.HasVideo {
		w, h := even(j.Width), even(j.Height)
		g = append(g, fmt.Sprintf("color=c=black:s=%dx%d:r=%d:d=%s,format=yuv420p[bg0]", w, h, j.FrameRate, secs))
		var vids []int
		for i, in := range inputs {
			if in.video {
				vids = append(vids, i)
			}
		}
		slot, n := assignTiles(inputs, vids)
		tiles := bestFit(n, w, h)
		for k, i := range vids {
			tl := tiles[slot[k]]
			// setpts moves the track to its offset (ffmpeg already starts each file at 0);
			// scale+pad letterbox it into its tile, both re-evaluated when the frame size changes.
			g = append(g, fmt.Sprintf("[%d:v:0]setpts=PTS+%s/TB,"+
				"scale=w=%d:h=%d:force_original_aspect_ratio=decrease:force_divisible_by=2,"+
				"pad=w=%d:h=%d:x=(ow-iw)/2:y=(oh-ih)/2:color=black:eval=frame,setsar=1[t%d]",
				i, seconds(inputs[i].offset), tl.W, tl.H, tl.W, tl.H, k))
			// eof_action=pass: when the track ends its tile shows the black background again.
			g = append(g, fmt.Sprintf("[bg%d][t%d]overlay=x=%d:y=%d:eof_action=pass[bg%d]", k, k, tl.X, tl.Y, k+1))
		}
		g = append(g, fmt.Sprintf("[bg%d]null[vout]", len(vids)))
	}
	if j.HasAudio {
		// A silent bed of exactly Duration comes first: amix ends with its first input, and
		// the bed keeps the length right when there are no audio tracks or they end early.
		g = append(g, fmt.Sprintf("anullsrc=r=48000:cl=stereo,atrim=end=%s[a0]", secs))
		mix := "[a0]"
		n := 1
		for i, in := range inputs {
			if !in.audio {
				continue
			}
			// aresample turns timestamp gaps (lost packets, a late first packet) into silence,
			// since amix counts samples, not timestamps; adelay then shifts the track to its
			// offset, generating the leading silence as it goes rather than all at once.
			// A mono microphone goes to both channels at its own level (ffmpeg's default
			// upmix would lower it 3 dB).
			upmix := ""
			if in.mono {
				upmix = "pan=stereo|c0=c0|c1=c0,"
			}
			g = append(g, fmt.Sprintf("[%d:a:0]%saresample=async=1:first_pts=0,"+
				"aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo,"+
				"adelay=delays=%dS:all=1[a%d]", i, upmix, samples(in.offset), n))
			mix += fmt.Sprintf("[a%d]", n)
			n++
		}
		if n == 1 {
			g = append(g, "[a0]anull[aout]")
		} else {
			// normalize=0: sum the voices rather than dividing each by the number of inputs.
			g = append(g, fmt.Sprintf("%samix=inputs=%d:duration=first:dropout_transition=0:normalize=0[aout]", mix, n))
		}
	}
	return strings.Join(g, ";")
}

// fileURL makes ffmpeg read or write path as a local file whatever it looks like: a name such
// as "http://…", "concat:…" or "-x" would otherwise pick another protocol or read as an option.
func fileURL(path string) string { return "file:" + path }

// seconds formats d for ffmpeg options and expressions.
func seconds(d time.Duration) string { return fmt.Sprintf("%.6f", d.Seconds()) }

// samples is d at 48 kHz.
func samples(d time.Duration) int64 { return int64(d) * 48000 / int64(time.Second) }

// lockedWriter lets ffmpeg's stdout and stderr copiers share the caller's writer. It never
// fails: a log that cannot be written (full disk) must not kill ffmpeg with a broken pipe, so
// after the first error the rest of the log is dropped.
type lockedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	broken bool
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.broken {
		if _, err := l.w.Write(p); err != nil {
			l.broken = true
		}
	}
	return len(p), nil
}

// tailBuffer keeps the last max bytes written, for the error message of a failed run.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
