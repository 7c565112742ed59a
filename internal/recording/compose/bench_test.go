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
func BenchmarkCompose(b *testing.B) {
	needFFmpeg(b)
	const call = 60 * time.Second
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
				"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "800k",
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
	j := Job{Tracks: benchInputs.tracks, Out: filepath.Join(b.TempDir(), "out.mp4"), Width: 1280, Height: 720, FrameRate: 25,
		HasAudio: true, HasVideo: true, Duration: call}
	b.ResetTimer()
	start, cpu0 := time.Now(), childCPU()
	for range b.N {
		if err := Run(b.Context(), j); err != nil {
			b.Fatal(err)
		}
	}
	calls := call.Seconds() * float64(b.N)
	b.ReportMetric(calls/time.Since(start).Seconds(), "x_realtime")
	// CPU time is steadier than wall time on a shared machine: ffmpeg (and ffprobe) seconds of
	// CPU per second of call; 1/this is the speed on one idle core.
	b.ReportMetric((childCPU()-cpu0).Seconds()/calls, "cpu_s/call_s")
}
