package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrNoFFmpeg is returned when ffmpeg or ffprobe is not on PATH.
var ErrNoFFmpeg = errors.New("ffmpeg and ffprobe are needed on PATH for composed recordings (Debian: apt-get install ffmpeg)")

func haveTools() error {
	for _, t := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%w: %v", ErrNoFFmpeg, err)
		}
	}
	return nil
}

// probed is what a track file holds.
type probed struct {
	video, audio bool
	channels     int           // of the first audio stream
	duration     time.Duration // 0 when the file does not say (a writer that was killed)
}

// probe asks ffprobe which streams a file holds. A stream whose format ffprobe cannot tell (a
// track header with no frames after it) counts as absent: ffmpeg would refuse the whole graph
// for it ("cannot determine format of input stream").
func probe(ctx context.Context, path string) (probed, error) {
	var p probed
	out, err := runQuiet(ctx, "ffprobe", "-v", "error",
		"-show_entries", "stream=codec_type,pix_fmt,width,sample_rate,channels:format=duration",
		"-of", "default=noprint_wrappers=0", fileURL(path))
	if err != nil {
		return p, err
	}
	// Sections look like [STREAM] key=value … [/STREAM], then [FORMAT] duration=… [/FORMAT].
	kv := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "[/STREAM]":
			switch kv["codec_type"] {
			case "video":
				p.video = p.video || (kv["pix_fmt"] != "" && kv["pix_fmt"] != "unknown" && kv["width"] != "0")
			case "audio":
				if !p.audio && kv["sample_rate"] != "" && kv["sample_rate"] != "0" {
					p.audio = true
					p.channels, _ = strconv.Atoi(kv["channels"])
				}
			}
			kv = map[string]string{}
		case line == "[/FORMAT]":
			if s, err := strconv.ParseFloat(kv["duration"], 64); err == nil && s > 0 {
				p.duration = time.Duration(s * float64(time.Second))
			}
		default:
			if k, v, ok := strings.Cut(line, "="); ok {
				kv[k] = v
			}
		}
	}
	return p, nil
}

// runQuiet runs a tool that prints its answer on stdout and returns it, or an error carrying
// what it printed on stderr.
func runQuiet(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(lastBytes(stderr.Bytes(), 1024)))
	}
	return stdout.Bytes(), nil
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Thumbnail writes a JPEG of the frame in the middle of video (OpenVidu's <recId>.jpg next to
// a COMPOSED MP4). Like Run it writes a temporary file and renames it, so jpg is never partial.
func Thumbnail(ctx context.Context, video, jpg string) error {
	if video == "" || jpg == "" {
		return fmt.Errorf("%w: thumbnail needs a video and a jpg path", ErrInvalid)
	}
	if err := haveTools(); err != nil {
		return fmt.Errorf("thumbnail of %s: %w", video, err)
	}
	p, err := probe(ctx, video)
	if err != nil {
		return fmt.Errorf("thumbnail of %s: %w", video, err)
	}
	if !p.video {
		return fmt.Errorf("thumbnail of %s: no video stream", video)
	}
	tmp := filepath.Join(filepath.Dir(jpg), "."+filepath.Base(jpg)+".part")
	// -ss before -i seeks to the keyframe before, then decodes up to the exact time.
	_, err = runQuiet(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-ss", seconds(p.duration/2), "-i", fileURL(video), "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "3",
		"-f", "mjpeg", fileURL(tmp))
	if err == nil {
		if fi, serr := os.Stat(tmp); serr != nil || fi.Size() == 0 {
			err = errors.New("ffmpeg wrote no frame")
		}
	}
	if err == nil {
		err = os.Rename(tmp, jpg)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("thumbnail of %s: %w", video, err)
	}
	return nil
}
