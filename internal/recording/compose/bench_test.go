package compose

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// benchInputs are BenchmarkCompose's two 60 s tracks.
var benchInputs struct {
	once   sync.Once
	dir    string
	tracks []Track
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchInputs.dir != "" {
		os.RemoveAll(benchInputs.dir)
	}
	os.Exit(code)
}

// childCPU is the user+system time of this process's finished children.
func childCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCompose mixes a two-person 60 s call (two 640x480 30 fps VP8 + Opus tracks with
// moving pictures, the second joining 5 s late) into OpenVidu's default COMPOSED output, 1280x720
// at 25 fps, and reports the speed as a multiple of real time (x_realtime: 60 s of call per
// second of mixing) and as CPU time (cpu_s/call_s). The inputs are made once, outside the
// timer. Run:
//
//	go test -run '^$' -bench BenchmarkCompose -benchtime 1x -count 3 ./internal/recording/compose
func BenchmarkCompose(b *testing.B) { benchAtStop(b) }

// BenchmarkMixing compares, on BenchmarkCompose's call, mixing at stop (one ffmpeg for the whole
// call) with the ways of mixing during the call: "window" as the recorder does, one ffmpeg
// (MixLive, one thread) making the 5.12 s pieces of as many whole pieces as the call holds and a
// MixSegment the rest (the tail at stop); "live-…" as it did before, one ffmpeg per segment (one
// thread each), the last one shorter; all appended to the MP4 (Output). One run does each way
// once; bench/composed-cost.sh runs it round after round (go test's -count would repeat each way
// in a row instead), so a machine whose load changes weighs on each alike, and prints the
// medians of cpu_s/call_s:
//
//	bench/composed-cost.sh --rounds 5
func BenchmarkMixing(b *testing.B) {
	b.Run("at-stop", benchAtStop)
	b.Run("window", benchWindow)
	for _, want := range []time.Duration{5 * time.Second, 10 * time.Second} {
		seg := SegmentLength(want, 25)
		b.Run(fmt.Sprintf("live-%v", seg), func(b *testing.B) { benchLive(b, seg) })
	}
}

func benchAtStop(b *testing.B) {
	needFFmpeg(b)
	makeBenchInputs(b)
	j := Job{Tracks: benchInputs.tracks, Out: filepath.Join(b.TempDir(), "out.mp4"), Width: 1280, Height: 720, FrameRate: 25,
		HasAudio: true, HasVideo: true, Duration: benchCall}
	b.ResetTimer()
	start, cpu0 := time.Now(), childCPU()
	for range b.N {
		if err := Run(b.Context(), j); err != nil {
			b.Fatal(err)
		}
	}
	reportMix(b, start, cpu0)
}

// reportMix reports the speed as a multiple of real time and the CPU time: CPU time is steadier
// than wall time on a shared machine: ffmpeg (and ffprobe) seconds of CPU per second of call;
// 1/this is the speed on one idle core.
func reportMix(b *testing.B, start time.Time, cpu0 time.Duration) {
	calls := benchCall.Seconds() * float64(b.N)
	b.ReportMetric(calls/time.Since(start).Seconds(), "x_realtime")
	b.ReportMetric((childCPU()-cpu0).Seconds()/calls, "cpu_s/call_s")
}

func benchLive(b *testing.B, seg time.Duration) {
	needFFmpeg(b)
	makeBenchInputs(b)
	var tracks []Track
	for _, t := range benchInputs.tracks {
		t.Length = benchCall - t.Offset // closed files, as at the end of a call
		tracks = append(tracks, t)
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), childCPU()
	for range b.N {
		dir := b.TempDir()
		out, err := NewOutput(filepath.Join(dir, "out.mp4"))
		if err != nil {
			b.Fatal(err)
		}
		for k := 0; time.Duration(k)*seg < benchCall; k++ {
			s := Segment{Tracks: tracks, From: time.Duration(k) * seg, Length: min(seg, benchCall-time.Duration(k)*seg),
				Width: 1280, Height: 720, FrameRate: 25, Threads: 1,
				Video: filepath.Join(dir, fmt.Sprintf("%d.mp4", k)), Audio: filepath.Join(dir, fmt.Sprintf("%d.aac", k))}
			if err := MixSegment(b.Context(), s); err != nil {
				b.Fatal(err)
			}
			if err := out.Append(s.Video, s.Audio); err != nil {
				b.Fatal(err)
			}
		}
		if err := out.Close(); err != nil {
			b.Fatal(err)
		}
	}
	reportMix(b, start, cpu0)
}

func benchWindow(b *testing.B) {
	needFFmpeg(b)
	makeBenchInputs(b)
	var tracks []Track
	for _, t := range benchInputs.tracks {
		t.Length = benchCall - t.Offset
		tracks = append(tracks, t)
	}
	piece := SegmentLength(5*time.Second, 25)
	n := int(benchCall / piece)
	b.ResetTimer()
	start, cpu0 := time.Now(), childCPU()
	for range b.N {
		dir := b.TempDir()
		out, err := NewOutput(filepath.Join(dir, "out.mp4"))
		if err != nil {
			b.Fatal(err)
		}
		l := Live{Segment: Segment{Tracks: tracks, Length: time.Duration(n) * piece, Width: 1280, Height: 720, FrameRate: 25,
			Threads: 1, Video: filepath.Join(dir, "%d.mp4"), Audio: filepath.Join(dir, "%d.aac")}, Piece: piece,
			Ready: func(k int) {
				if err := out.Append(fmt.Sprintf(filepath.Join(dir, "%d.mp4"), k), fmt.Sprintf(filepath.Join(dir, "%d.aac"), k)); err != nil {
					b.Error(err)
				}
			}}
		if err := MixLive(b.Context(), l); err != nil {
			b.Fatal(err)
		}
		tail := Segment{Tracks: tracks, From: l.Length, Length: benchCall - l.Length, Width: 1280, Height: 720, FrameRate: 25,
			Video: filepath.Join(dir, "tail.mp4"), Audio: filepath.Join(dir, "tail.aac")}
		if err := MixSegment(b.Context(), tail); err != nil {
			b.Fatal(err)
		}
		if err := out.Append(tail.Video, tail.Audio); err != nil {
			b.Fatal(err)
		}
		if err := out.Close(); err != nil {
			b.Fatal(err)
		}
	}
	reportMix(b, start, cpu0)
}

// benchCall is how long the benchmarks' call lasts.
const benchCall = 60 * time.Second

// makeBenchInputs makes the benchmarks' two tracks once per process (-count runs share them;
// TestMain removes them).
func makeBenchInputs(b *testing.B) {
	const call = benchCall
	benchInputs.once.Do(func() {
		// Made once per process (-count runs share them), removed by TestMain.
		if benchInputs.dir, benchInputs.err = os.MkdirTemp("", "compose-bench-"); benchInputs.err != nil {
			return
		}
		for i, offset := range []time.Duration{0, 5 * time.Second} {
			path := filepath.Join(benchInputs.dir, fmt.Sprintf("p%d.webm", i))
			secs := seconds(call - offset)
			out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
				"-f", "lavfi", "-i", "testsrc2=s=640x480:r=30:d="+secs,
				"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=48000:duration=%s", 440+220*i, secs),
				// A keyframe every second, as parley-load sends and as a segment of a live mix
				// finds one 1-2 s before its start (the recorder's parts).
				"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "800k", "-g", "30", "-keyint_min", "30",
				"-c:a", "libopus", "-b:a", "32k", path).CombinedOutput()
			if err != nil {
				benchInputs.err = fmt.Errorf("making %s: %v: %s", path, err, out)
				return
			}
			benchInputs.tracks = append(benchInputs.tracks, Track{Path: path, Offset: offset, HasAudio: true, HasVideo: true})
		}
	})
	if benchInputs.err != nil {
		b.Fatal(benchInputs.err)
	}
}
