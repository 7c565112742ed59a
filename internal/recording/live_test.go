package recording

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley/parley/internal/recording/compose"
	"github.com/parley/parley/internal/recording/testmedia"
	"github.com/parley/parley/internal/session"
)

// ffmpegComposer is the server's adapter of package compose, for these tests.
type ffmpegComposer struct{}

func (ffmpegComposer) Run(ctx context.Context, j ComposeJob) error {
	cj := compose.Job{Out: j.Out, Width: j.Width, Height: j.Height, FrameRate: j.FrameRate,
		HasAudio: j.HasAudio, HasVideo: j.HasVideo, Duration: j.Duration, Log: j.Log}
	for _, t := range j.Tracks {
		cj.Tracks = append(cj.Tracks, compose.Track{Path: t.Path, Offset: t.Offset, HasAudio: t.HasAudio, HasVideo: t.HasVideo})
	}
	return compose.Run(ctx, cj)
}
func (ffmpegComposer) Thumbnail(ctx context.Context, v, jpg string) error {
	return compose.Thumbnail(ctx, v, jpg)
}
func (ffmpegComposer) SegmentLength(want time.Duration, fps int) time.Duration {
	return compose.SegmentLength(want, fps)
}

// LiveNice is the after-call niceness here: at 19 on a machine as busy as CI's the test would wait
// minutes for its segments.
func (ffmpegComposer) LiveNice() int { return 10 }
func (ffmpegComposer) MixSegment(ctx context.Context, j SegmentJob) error {
	s := compose.Segment{Video: j.Video, Audio: j.Audio, From: j.From, Length: j.Length, Width: j.Width,
		Height: j.Height, FrameRate: j.FrameRate, Nice: j.Nice, Threads: j.Threads, Boost: j.Boost, Log: j.Log}
	for _, t := range j.Tracks {
		s.Tracks = append(s.Tracks, compose.Track{Path: t.Path, Offset: t.Offset, Length: t.Length, Since: t.Since,
			Until: t.Until, HasAudio: t.HasAudio, HasVideo: t.HasVideo, Stream: t.Stream})
	}
	return compose.MixSegment(ctx, s)
}
func (ffmpegComposer) NewOutput(path string) (SegmentOutput, error) {
	return compose.NewOutput(path)
}

// A COMPOSED recording is mixed while the call goes on: when it stops, all that is left is the
// segment since the last boundary and the join. Two people are in the call for 8 s (on media
// time: the recorder's clock follows the media fed, however slowly the machine runs); segments
// are 3.2 s. The MP4 lasts the call, with both tiles lit before, at and after each join.
func TestComposedMixedDuringTheCall(t *testing.T) {
	h, x := liveCall(t, ffmpegComposer{}, func(lm *liveMix) bool { return lm.live == 2 })
	// What stop had left to do: one segment, the 1.6 s since the last boundary, and the join.
	checkLive(t, x, 2, 0, 1)
	// Each stream was written in parts, a new one on a keyframe before each boundary, so no
	// segment's mix decoded a stream from its beginning.
	for _, e := range x.all {
		ps := e.w.snapshotParts()
		if len(ps) != 3 {
			t.Errorf("%s written in %d parts, want 3 (one per segment)", e.file, len(ps))
		}
		for i := 1; i < len(ps); i++ {
			if ps[i].since != ps[i-1].until || ps[i].since != time.Duration(i)*3200*time.Millisecond {
				t.Errorf("%s part %d takes over at %v (part before until %v), want the boundary", e.file, i, ps[i].since, ps[i-1].until)
			}
		}
	}
	checkLiveMP4(t, filepath.Join(h.dir, "ses_L", "live.mp4"))
}

// heldComposer holds the live mix of the segment starting at `hold` until the recording stops
// (its Boost is closed), as a segment still being mixed at the lowest priority on a busy machine
// would be; with fail it then fails, as a mix that could not be given full priority does.
type heldComposer struct {
	ffmpegComposer
	hold time.Duration
	fail bool
}

func (c heldComposer) MixSegment(ctx context.Context, j SegmentJob) error {
	if j.Boost != nil && j.From == c.hold {
		select {
		case <-j.Boost:
		case <-ctx.Done():
			return ctx.Err()
		}
		if c.fail {
			return errors.New("not allowed to raise the priority")
		}
	}
	return c.ffmpegComposer.MixSegment(ctx, j)
}

// A segment still being mixed when the recording stops is not abandoned: it goes on at full
// priority and is joined with the rest.
func TestComposedStopRaisesTheSegmentBeingMixed(t *testing.T) {
	h, x := liveCall(t, heldComposer{hold: 3200 * time.Millisecond}, func(lm *liveMix) bool {
		return lm.live == 1 && lm.boosts[1] != nil
	})
	checkLive(t, x, 2, 1, 1)
	checkLiveMP4(t, filepath.Join(h.dir, "ses_L", "live.mp4"))
}

// One that cannot be raised (no CAP_SYS_NICE) is mixed again after stop.
func TestComposedStopRedoesASegmentThatCannotBeRaised(t *testing.T) {
	h, x := liveCall(t, heldComposer{hold: 3200 * time.Millisecond, fail: true}, func(lm *liveMix) bool {
		return lm.live == 1 && lm.boosts[1] != nil
	})
	checkLive(t, x, 1, 0, 2)
	checkLiveMP4(t, filepath.Join(h.dir, "ses_L", "live.mp4"))
}

// liveCall records an 8 s two-person call COMPOSED in 3.2 s segments, stops it once stopWhen
// holds (under the live mix's lock) and returns when it is ready.
func liveCall(t *testing.T, c SegmentComposer, stopWhen func(lm *liveMix) bool) (*harness, *rec) {
	t.Helper()
	m := makeMedia(t, 10)
	var clock atomic.Int64
	base := time.Now()
	h := newHarness(t, Config{AutostopTimeout: time.Hour, Composer: c, Segment: 3200 * time.Millisecond,
		now: func() time.Time { return base.Add(time.Duration(clock.Load())) }})
	a, b := h.stream("str_CAM_Aaaa_con_A", "con_A", true), h.stream("str_CAM_Bbbb_con_B", "con_B", true)
	h.s.add("ses_L", 2, a, b)
	props := session.RecordingProperties{Name: "live", HasAudio: true, HasVideo: true, OutputMode: "COMPOSED",
		RecordingLayout: "BEST_FIT", Resolution: "320x180", FrameRate: 10}
	if _, err := h.r.Start("ses_L", props); err != nil {
		t.Fatal(err)
	}
	h.run()
	h.r.mu.Lock()
	x := h.r.recs["ses_L"]
	h.r.mu.Unlock()
	if x.live == nil {
		t.Fatal("a COMPOSED recording with video is not mixed during the call")
	}
	const call = 8 * time.Second
	var taps [][2]*tap // video, audio of each stream
	for _, id := range []session.StreamID{a.ID, b.ID} {
		h.waitTaps(id, 2)
		src := h.sources[id]
		src.mu.Lock()
		taps = append(taps, [2]*tap{src.taps["video"].(*tap), src.taps["audio"].(*tap)})
		src.mu.Unlock()
	}
	// Both streams, in time order, the clock following the media.
	vi, ai := 0, 0
	for {
		vAt, aAt := time.Duration(vi)*testmedia.FrameInterval, time.Duration(ai)*testmedia.AudioInterval
		if vAt >= call && aAt >= call {
			break
		}
		for _, tp := range taps {
			for len(tp[0].w.in) > queueLen/2 {
				time.Sleep(time.Millisecond) // back-pressure for the test only
			}
		}
		if vAt <= aAt {
			clock.Store(int64(vAt))
			for _, tp := range taps {
				for _, p := range m.Video[vi] {
					tp[0].WriteRTP(p)
				}
			}
			vi++
		} else {
			clock.Store(int64(aAt))
			for _, tp := range taps {
				tp[1].WriteRTP(m.Audio[ai])
			}
			ai++
		}
	}
	clock.Store(int64(call))
	waitLong(t, "the live mix before the stop", func() bool {
		x.live.mu.Lock()
		defer x.live.mu.Unlock()
		return stopWhen(x.live)
	})
	info, err := h.r.Stop("ses_L")
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != session.RecordingStopped {
		t.Errorf("stop answered %s, want stopped at once (ready comes with recordingStatusChanged)", info.Status)
	}
	waitLong(t, "the recording ready", func() bool {
		i, _ := h.r.Get("ses_L")
		return i.Status == session.RecordingReady || i.Status == session.RecordingFailed
	})
	final, _ := h.r.Get("ses_L")
	if final.Status != session.RecordingReady {
		t.Fatalf("recording %s, want ready", final.Status)
	}
	return h, x
}

// checkLive compares the segments mixed during the call (of them finished after stop) and after.
func checkLive(t *testing.T, x *rec, live, late, after int) {
	t.Helper()
	x.live.mu.Lock()
	defer x.live.mu.Unlock()
	if x.live.live != live || x.live.late != late || x.live.after != after || len(x.live.done) != 3 {
		t.Errorf("segments mixed during the call %d (finished after stop %d), after stop %d, joined %d; want %d (%d), %d, 3",
			x.live.live, x.live.late, x.live.after, len(x.live.done), live, late, after)
	}
}

// checkLiveMP4 checks liveCall's MP4: 8 s, 80 frames, both tiles lit on either side of the joins.
func checkLiveMP4(t *testing.T, out string) {
	t.Helper()
	const call = 8 * time.Second
	p := ffprobe(t, out)
	if d := p.Duration(); d < call.Seconds()-1 || d > call.Seconds()+1 {
		t.Errorf("MP4 lasts %.2f s, want %v ± 1 s", d, call)
	}
	if c, n := p.Stream("video"); c != "h264" || n < 78 || n > 82 {
		t.Errorf("video %s with %d frames, want h264 with 80", c, n)
	}
	if c, _ := p.Stream("audio"); c != "aac" {
		t.Errorf("audio %q, want aac", c)
	}
	// 320x240 pictures in 160x180 tiles: 160x120 at y=30, left and right.
	for _, at := range []time.Duration{500 * time.Millisecond, 3100 * time.Millisecond, 3200 * time.Millisecond,
		3300 * time.Millisecond, 6400 * time.Millisecond, 7500 * time.Millisecond} {
		l, r := tileLuma(t, out, at, 320, 180, 40, 60, 80, 60), tileLuma(t, out, at, 320, 180, 200, 60, 80, 60)
		if l < 40 || r < 40 {
			t.Errorf("at %v the tiles' luminance is %d and %d: want both lit (black is 16)", at, l, r)
		}
	}
}

// tileLuma is the mean luminance of a region of the frame at `at`.
func tileLuma(t *testing.T, path string, at time.Duration, w, h, x, y, rw, rh int) int {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-ss", fmt.Sprintf("%.3f", at.Seconds()), "-i", path, "-frames:v", "1",
		"-f", "rawvideo", "-pix_fmt", "gray", "pipe:1").Output()
	if err != nil || len(out) != w*h {
		t.Fatalf("frame at %v: %v (%d bytes)", at, err, len(out))
	}
	sum := 0
	for j := y; j < y+rh; j++ {
		for i := x; i < x+rw; i++ {
			sum += int(out[j*w+i])
		}
	}
	return sum / (rw * rh)
}

// waitLong is waitUntil for ffmpeg's work, which takes long on a loaded machine.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, not synchronising on time
	}
}
