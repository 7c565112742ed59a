package compose

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Helpers that make track files with ffmpeg and inspect outputs with ffmpeg/ffprobe.

func needFFmpeg(tb testing.TB) {
	tb.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("%s not installed (apt-get install ffmpeg)", tool)
		}
	}
}

func testCtx(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

func tool(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := exec.CommandContext(testCtx(tb, 2*time.Minute), name, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// trackSpec is a synthetic stream: a solid colour and/or a sine tone, like a camera and a
// microphone that the INDIVIDUAL writer recorded as VP8 + Opus.
type trackSpec struct {
	colour string // ffmpeg colour name; "" for no video
	size   string // WxH
	fps    int
	tone   int // Hz; 0 for no audio
	length time.Duration
	codec  string // "" (VP8 in WebM), "vp9" (WebM) or "h264" (Matroska, as the writer stores H.264)
}

func makeTrack(tb testing.TB, dir, name string, s trackSpec) string {
	tb.Helper()
	path := filepath.Join(dir, name+".webm")
	if s.codec == "h264" {
		path = filepath.Join(dir, name+".mkv")
	}
	secs := seconds(s.length)
	args := []string{"-hide_banner", "-loglevel", "error", "-y"}
	if s.colour != "" {
		fps := s.fps
		if fps == 0 {
			fps = 15
		}
		size := s.size
		if size == "" {
			size = "160x120"
		}
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("color=c=%s:s=%s:r=%d:d=%s", s.colour, size, fps, secs))
	}
	if s.tone != 0 {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=48000:duration=%s", s.tone, secs))
	}
	switch {
	case s.colour == "":
	case s.codec == "vp9":
		args = append(args, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k")
	case s.codec == "h264":
		args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
	default:
		args = append(args, "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k")
	}
	if s.tone != 0 {
		args = append(args, "-c:a", "libopus", "-b:a", "48k")
	}
	tool(tb, "ffmpeg", append(args, path)...)
	return path
}

// outStream is what ffprobe says of one output stream.
type outStream struct {
	codec   string
	packets int
	width   int
}

type outInfo struct {
	duration time.Duration
	video    *outStream
	audio    *outStream
}

func probeOut(tb testing.TB, path string) outInfo {
	tb.Helper()
	out := tool(tb, "ffprobe", "-v", "error", "-count_packets",
		"-show_entries", "stream=codec_type,codec_name,nb_read_packets,width:format=duration",
		"-of", "default=noprint_wrappers=0", path)
	var info outInfo
	kv := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch line {
		case "[/STREAM]":
			n, _ := strconv.Atoi(kv["nb_read_packets"])
			w, _ := strconv.Atoi(kv["width"])
			s := &outStream{codec: kv["codec_name"], packets: n, width: w}
			switch kv["codec_type"] {
			case "video":
				info.video = s
			case "audio":
				info.audio = s
			}
			kv = map[string]string{}
		case "[/FORMAT]":
			f, _ := strconv.ParseFloat(kv["duration"], 64)
			info.duration = time.Duration(f * float64(time.Second))
		default:
			if k, v, ok := strings.Cut(line, "="); ok {
				kv[k] = v
			}
		}
	}
	return info
}

func checkDuration(tb testing.TB, info outInfo, want time.Duration) {
	tb.Helper()
	if d := info.duration - want; d < -500*time.Millisecond || d > 500*time.Millisecond {
		tb.Errorf("duration %v, want %v ± 0.5 s", info.duration, want)
	}
}

// frame is one decoded RGB frame.
type frame struct {
	w, h int
	rgb  []byte
}

func grabFrame(tb testing.TB, path string, at time.Duration, w, h int) frame {
	tb.Helper()
	out, err := exec.CommandContext(testCtx(tb, time.Minute), "ffmpeg", "-hide_banner", "-loglevel", "error",
		"-ss", seconds(at), "-i", path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1").Output()
	if err != nil {
		tb.Fatalf("frame at %v of %s: %v", at, path, err)
	}
	if len(out) != w*h*3 {
		tb.Fatalf("frame at %v of %s: %d bytes, want %dx%dx3", at, path, len(out), w, h)
	}
	return frame{w, h, out}
}

// mean is the average colour of a region.
func (f frame) mean(r rect) [3]int {
	var sum [3]int
	for y := r.Y; y < r.Y+r.H; y++ {
		for x := r.X; x < r.X+r.W; x++ {
			p := f.rgb[(y*f.w+x)*3:]
			sum[0] += int(p[0])
			sum[1] += int(p[1])
			sum[2] += int(p[2])
		}
	}
	n := r.W * r.H
	return [3]int{sum[0] / n, sum[1] / n, sum[2] / n}
}

// colourName classifies an average colour as black, red, green, blue or "other".
func colourName(c [3]int) string {
	hi := func(v int) bool { return v > 110 }
	lo := func(v int) bool { return v < 60 }
	switch {
	case lo(c[0]) && lo(c[1]) && lo(c[2]) && c[0]+c[1]+c[2] < 60:
		return "black"
	case hi(c[0]) && lo(c[1]) && lo(c[2]):
		return "red"
	case lo(c[0]) && hi(c[1]) && lo(c[2]):
		return "green"
	case lo(c[0]) && lo(c[1]) && hi(c[2]):
		return "blue"
	}
	return fmt.Sprintf("other%v", c)
}

// inner is the middle half of a tile, away from edges that scaling and chroma blur.
func inner(r rect) rect { return rect{r.X + r.W/4, r.Y + r.H/4, r.W / 2, r.H / 2} }

// expectTiles checks the colour of each region of the frame at a time.
func expectTiles(tb testing.TB, path string, at time.Duration, w, h int, want map[string]rect) {
	tb.Helper()
	f := grabFrame(tb, path, at, w, h)
	for colour, r := range want {
		if got := colourName(f.mean(r)); got != strings.TrimRight(colour, "0123456789") {
			tb.Errorf("at %v region %v is %s, want %s", at, r, got, colour)
		}
	}
}

var maxVolume = regexp.MustCompile(`max_volume: (-?[0-9.]+|-inf) dB`)

// loudness is the peak level in dBFS of the audio between from and from+length (-91 for
// digital silence).
func loudness(tb testing.TB, path string, from, length time.Duration) float64 {
	tb.Helper()
	out := tool(tb, "ffmpeg", "-hide_banner", "-nostats", "-ss", seconds(from), "-t", seconds(length),
		"-i", path, "-map", "0:a:0", "-af", "volumedetect", "-f", "null", "-")
	m := maxVolume.FindStringSubmatch(out)
	if m == nil {
		tb.Fatalf("no volumedetect result for %s:\n%s", path, out)
	}
	if m[1] == "-inf" {
		return -200
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
