package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A window mixed by one ffmpeg while its files are still being written comes out as pieces that
// join each other and a segment mixed afterwards (the tail at stop) into one continuous MP4: the
// call's length and frame count, both tiles lit at the piece boundaries, the tone unbroken. The
// red stream's file grows while the mix reads it, as a recorder's does.
func TestLiveWindowJoined(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	redSrc := makeTrack(t, dir, "redsrc", trackSpec{colour: "red", tone: 440, length: 7 * time.Second})
	green := makeTrack(t, dir, "green", trackSpec{colour: "green", length: 5 * time.Second})
	red := filepath.Join(dir, "red.webm")
	var written atomic.Bool
	src, err := os.ReadFile(redSrc)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(red)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		// Written in small pieces while the mix runs; done marks it complete.
		defer written.Store(true)
		defer f.Close()
		for i := 0; i < len(src); i += 4096 {
			if _, err := f.Write(src[i:min(len(src), i+4096)]); err != nil {
				t.Error(err)
				return
			}
		}
	})
	piece := SegmentLength(3*time.Second, outFPS) // 3.2 s
	const call = 7 * time.Second
	redT := Track{Path: red, Stream: "red", HasAudio: true, HasVideo: true}
	greenT := Track{Path: green, Stream: "green", Offset: time.Second, HasVideo: true, Length: 5 * time.Second}
	var ready []int
	var log strings.Builder
	// Two windows of a piece each, the second starting in the middle of the files, as after a
	// join or the next window on a part that began early.
	l := Live{Segment: Segment{Tracks: []Track{redT, greenT}, Length: piece, Width: outW, Height: outH, FrameRate: outFPS,
		Threads: 1, Video: filepath.Join(dir, "p%06d.mp4"), Audio: filepath.Join(dir, "p%06d.aac"), Log: &log},
		Piece: piece, Growing: func(path string) bool { return path == red && !written.Load() },
		Ready: func(k int) { ready = append(ready, k) }}
	for k := range 2 {
		l.From, l.First = time.Duration(k)*piece, k
		if err := MixLive(testCtx(t, 2*time.Minute), l); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(ready) != "[0 1]" {
		t.Fatalf("pieces ready %v, want [0 1]", ready)
	}
	// A pipe cannot seek: asking the demuxer to makes it drop data to resync.
	if strings.Contains(log.String(), "invalid data") || strings.Contains(log.String(), "resync") {
		t.Errorf("the inputs were not read whole:\n%s", log.String())
	}
	// The tail, as at stop: the part of the call after the window.
	redT.Length = call
	tail := Segment{Tracks: []Track{redT, greenT}, From: 2 * piece, Length: call - 2*piece, Width: outW, Height: outH,
		FrameRate: outFPS, Video: filepath.Join(dir, "tail.mp4"), Audio: filepath.Join(dir, "tail.aac")}
	if err := MixSegment(testCtx(t, 2*time.Minute), tail); err != nil {
		t.Fatal(err)
	}
	out := joinSeven(t, dir, []string{fmt.Sprintf(l.Video, 0), fmt.Sprintf(l.Video, 1), tail.Video},
		[]string{fmt.Sprintf(l.Audio, 0), fmt.Sprintf(l.Audio, 1), tail.Audio})
	left, right := rect{0, 30, 160, 120}, rect{160, 30, 160, 120}
	for _, at := range []time.Duration{1500 * time.Millisecond, piece - 100*time.Millisecond, piece, piece + 50*time.Millisecond, 5900 * time.Millisecond} {
		expectTiles(t, out, at, outW, outH, map[string]rect{"red": inner(left), "green": inner(right)})
	}
	// The tail has red alone, full frame.
	expectTiles(t, out, 6600*time.Millisecond, outW, outH, map[string]rect{"red": inner(rect{60, 20, 200, 140})})
	checkToneSteady(t, out)
}

// Cancelling a live window (the recording stopped, or its layout changed) stops ffmpeg and the
// feeders of files that would otherwise be waited on for ever; the pieces made stay.
func TestLiveWindowCancelled(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	red := makeTrack(t, dir, "red", trackSpec{colour: "red", tone: 440, length: 8 * time.Second})
	piece := SegmentLength(3*time.Second, outFPS)
	ctx, cancel := testCtxCancel(t)
	var ready atomic.Int32
	l := Live{Segment: Segment{Tracks: []Track{{Path: red, HasAudio: true, HasVideo: true}}, Length: 3 * piece,
		Width: outW, Height: outH, FrameRate: outFPS, Threads: 1, Video: filepath.Join(dir, "p%06d.mp4"),
		Audio: filepath.Join(dir, "p%06d.aac")}, Piece: piece, First: 7,
		// The file never completes: the mix would wait at its end for ever.
		Growing: func(string) bool { return true },
		Ready: func(k int) {
			if k != 7 {
				t.Errorf("piece %d ready, want 7 first", k)
			}
			ready.Add(1)
			cancel()
		}}
	err := MixLive(ctx, l)
	if err == nil || !errors.Is(err, ctx.Err()) {
		t.Fatalf("MixLive = %v, want the cancellation", err)
	}
	if ready.Load() != 1 || !exists(filepath.Join(dir, "p000007.mp4")) || !exists(filepath.Join(dir, "p000007.aac")) {
		t.Errorf("%d pieces ready, want the first (p000007) kept", ready.Load())
	}
}

func testCtxCancel(tb testing.TB) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx, cancel
}

// A window's mix started in the middle of a part (after a join or a leave) is fed the file's
// header and then the file from the cluster of a keyframe shortly before its first piece, not
// from the file's start; the piece shows what was recorded at its time: here red until 7 s, then
// green, with a keyframe a second.
func TestLiveWindowStartedLateSkipsToAKeyframe(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "redgreen.webm")
	tool(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "color=c=red:s=160x120:r=15:d=7[a];color=c=green:s=160x120:r=15:d=5[b];[a][b]concat=n=2:v=1:a=0[out0]",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=12",
		"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-g", "15", "-keyint_min", "15",
		"-c:a", "libopus", "-b:a", "48k", src)
	// Before the second keyframe's cluster there is nothing to skip to.
	if sk, ok, err := findCluster(src, 900*time.Millisecond); err != nil || ok {
		t.Errorf("findCluster(0.9 s) = %+v, %v, %v: want none", sk, ok, err)
	}
	piece := SegmentLength(3*time.Second, outFPS) // 3.2 s
	var log strings.Builder
	var ready []int
	l := Live{Segment: Segment{Tracks: []Track{{Path: src, Stream: "s", HasAudio: true, HasVideo: true}}, From: 2 * piece,
		Length: piece, Width: outW, Height: outH, FrameRate: outFPS, Threads: 1,
		Video: filepath.Join(dir, "p%06d.mp4"), Audio: filepath.Join(dir, "p%06d.aac"), Log: &log},
		Piece: piece, First: 2, Ready: func(k int) { ready = append(ready, k) }}
	if err := MixLive(testCtx(t, 2*time.Minute), l); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ready) != "[2]" {
		t.Fatalf("pieces ready %v, want [2]", ready)
	}
	// 6.4 s less the audio's frame and a second of pre-roll: the keyframe at 5 s.
	if !strings.Contains(log.String(), "fed from its cluster at 5.00 s") {
		t.Errorf("the mix from 6.4 s was not fed from the keyframe at 5 s:\n%s", log.String())
	}
	out := filepath.Join(dir, fmt.Sprintf("p%06d.mp4", 2))
	if info := probeOut(t, out); info.video == nil || info.video.packets != 32 {
		t.Errorf("piece %+v, want 32 frames", info.video)
	}
	// 160x120 fills 240x180 of the 320x180 frame.
	pic := inner(rect{40, 0, 240, 180})
	expectTiles(t, out, 500*time.Millisecond, outW, outH, map[string]rect{"red": pic})   // 6.9 s
	expectTiles(t, out, 700*time.Millisecond, outW, outH, map[string]rect{"green": pic}) // 7.1 s
	if db := loudness(t, filepath.Join(dir, fmt.Sprintf("p%06d.aac", 2)), 0, piece); db < -30 {
		t.Errorf("the piece's tone peaks at %.1f dB, want it heard", db)
	}
}
