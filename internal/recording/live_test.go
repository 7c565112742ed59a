package recording

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
func (ffmpegComposer) segment(j SegmentJob) compose.Segment {
	s := compose.Segment{Video: j.Video, Audio: j.Audio, From: j.From, Length: j.Length, Width: j.Width,
		Height: j.Height, FrameRate: j.FrameRate, Nice: j.Nice, Threads: j.Threads, Log: j.Log}
	for _, t := range j.Tracks {
		s.Tracks = append(s.Tracks, compose.Track{Path: t.Path, Offset: t.Offset, Length: t.Length, Since: t.Since,
			Until: t.Until, HasAudio: t.HasAudio, HasVideo: t.HasVideo, Stream: t.Stream})
	}
	return s
}

func (c ffmpegComposer) MixSegment(ctx context.Context, j SegmentJob) error {
	return compose.MixSegment(ctx, c.segment(j))
}

func (c ffmpegComposer) MixLive(ctx context.Context, j LiveJob) error {
	return compose.MixLive(ctx, compose.Live{Segment: c.segment(j.SegmentJob), Piece: j.Piece, First: j.First,
		Growing: j.Growing, Ready: j.Ready})
}
func (ffmpegComposer) NewOutput(path string) (SegmentOutput, error) {
	return compose.NewOutput(path)
}

// A COMPOSED recording is mixed while the call goes on: when it stops, all that is left is the
// piece the stop cut short, and the join. Two people are in the call for 8 s (on media time: the
// recorder's clock follows the media fed, however slowly the machine runs); pieces are 3.2 s,
// and so are the windows here. The MP4 lasts the call, with both tiles lit before, at and after
// each join.
func TestComposedMixedDuringTheCall(t *testing.T) {
	h, x := liveCall(t, ffmpegComposer{}, 1, 0, func(lm *liveMix) bool {
		return lm.live == 2 && lm.furthest == 6400*time.Millisecond
	})
	// The first two windows' pieces were made during the call; the stop left the third.
	checkLive(t, x, 2, 1)
	// Each stream was written in parts, a new one on a keyframe before each window, so no mix
	// decoded a stream from further back than its window.
	for _, e := range x.all {
		ps := e.w.snapshotParts()
		if len(ps) != 3 {
			t.Errorf("%s written in %d parts, want 3", e.file, len(ps))
			continue
		}
		for i := 1; i < len(ps); i++ {
			if ps[i].since != ps[i-1].until || ps[i].since != time.Duration(i)*3200*time.Millisecond {
				t.Errorf("%s part %d takes over at %v (part before until %v), want the boundary", e.file, i, ps[i].since, ps[i-1].until)
			}
		}
	}
	// The third window's mix read each stream's part for it alone: a pipe is read from its
	// start, and a part before would have been decoded whole for nothing.
	log, err := os.ReadFile(filepath.Join(h.dir, "ses_L", ".compose.log"))
	if err != nil {
		t.Fatal(err)
	}
	var third string
	for line := range strings.Lines(string(log)) {
		if strings.HasPrefix(line, "live: pieces 2-2 ") {
			third = line
		}
	}
	if n := strings.Count(third, ".webm"); n != 2 || !strings.Contains(third, "str_CAM_Aaaa_con_A.2.webm") {
		t.Errorf("the third window's mix has %d inputs, want 2 (one part per stream): %q", n, third)
	}
	checkLiveMP4(t, filepath.Join(h.dir, "ses_L", "live.mp4"), 2)
}

// heldComposer's live mixes make their first piece and then hold until they are stopped, as a
// mix that has fallen behind on a busy machine would.
type heldComposer struct{ ffmpegComposer }

func (c heldComposer) MixLive(ctx context.Context, j LiveJob) error {
	ready := j.Ready
	j.Ready = func(k int) {
		if k == 0 {
			ready(k)
		}
	}
	if err := c.ffmpegComposer.MixLive(ctx, j); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

// A live mix behind the call when it stops is stopped: the pieces it had not made are mixed at
// full priority, together, and joined with the rest.
func TestComposedStopMixesWhatTheLiveMixHadNotMade(t *testing.T) {
	h, x := liveCall(t, heldComposer{}, 3, 0, func(lm *liveMix) bool { return lm.live == 1 })
	checkLive(t, x, 1, 2)
	checkLiveMP4(t, filepath.Join(h.dir, "ses_L", "live.mp4"), 2)
}

// Someone who joins during a window gets a tile from then on: the window's mix starts again
// with the new layout from the first piece it had not made, and the file still covers the
// whole call.
func TestComposedLayoutChangeRestartsTheLiveMix(t *testing.T) {
	h, x := liveCall(t, ffmpegComposer{}, 3, 4*time.Second, func(lm *liveMix) bool { return lm.live == 2 })
	x.live.mu.Lock()
	runs, layout := x.live.runs, x.live.layout
	x.live.mu.Unlock()
	if layout < 1 || runs < 2 {
		t.Errorf("%d live runs, %d of them for a new layout: want the join to start the window's mix again", runs, layout)
	}
	checkLive(t, x, 2, 1)
	checkLiveMP4(t, filepath.Join(h.dir, "ses_L", "live.mp4"), 3)
	if t.Failed() {
		b, _ := os.ReadFile(filepath.Join(h.dir, "ses_L", ".compose.log"))
		t.Logf("compose log:\n%s", b)
		exec.Command("cp", filepath.Join(h.dir, "ses_L", "live.mp4"), "/tmp/layout-debug.mp4").Run()
	}
}

// liveCall records an 8 s call COMPOSED in 3.2 s pieces, windowPieces to a live mix, of two
// people and, if joinAt > 0, a third who joins then; it stops the recording once stopWhen holds
// (under the live mix's lock) and returns when it is ready.
func liveCall(t *testing.T, c SegmentComposer, windowPieces int, joinAt time.Duration, stopWhen func(lm *liveMix) bool) (*harness, *rec) {
	t.Helper()
	m := makeMedia(t, 10)
	var clock atomic.Int64
	base := time.Now()
	h := newHarness(t, Config{AutostopTimeout: time.Hour, Composer: c, Segment: 3200 * time.Millisecond, windowPieces: windowPieces,
		now: func() time.Time { return base.Add(time.Duration(clock.Load())) }})
	a, b := h.stream("str_CAM_Aaaa_con_A", "con_A", true), h.stream("str_CAM_Bbbb_con_B", "con_B", true)
	h.s.add("ses_L", 3, a, b)
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
	type party struct {
		taps [2]*tap // video, audio
		at   time.Duration
	}
	var parties []party
	join := func(id session.StreamID, at time.Duration) {
		h.waitTaps(id, 2)
		src := h.sources[id]
		src.mu.Lock()
		parties = append(parties, party{[2]*tap{src.taps["video"].(*tap), src.taps["audio"].(*tap)}, at})
		src.mu.Unlock()
	}
	for _, id := range []session.StreamID{a.ID, b.ID} {
		join(id, 0)
	}
	// Everyone's media in time order, the clock following it.
	vi, ai := 0, 0
	for {
		vAt, aAt := time.Duration(vi)*testmedia.FrameInterval, time.Duration(ai)*testmedia.AudioInterval
		if vAt >= call && aAt >= call {
			break
		}
		if joinAt > 0 && len(parties) == 2 && min(vAt, aAt) >= joinAt {
			// The window's mix has started without the third person: the join changes its layout.
			waitLong(t, "the first live mix", func() bool {
				x.live.mu.Lock()
				defer x.live.mu.Unlock()
				return x.live.runs > 0
			})
			clock.Store(int64(joinAt))
			cs := h.stream("str_CAM_Cccc_con_C", "con_C", true)
			h.s.publish("ses_L", cs)
			h.r.Listen(session.Event{Kind: session.StreamPublished, Session: "ses_L", Stream: cs.ID})
			join(cs.ID, joinAt)
		}
		for _, p := range parties {
			for len(p.taps[0].w.in) > queueLen/2 {
				time.Sleep(time.Millisecond) // back-pressure for the test only
			}
		}
		if vAt <= aAt {
			clock.Store(int64(vAt))
			for _, p := range parties {
				for _, pkt := range m.Video[vi-int(p.at/testmedia.FrameInterval)] {
					p.taps[0].WriteRTP(pkt)
				}
			}
			vi++
		} else {
			clock.Store(int64(aAt))
			for _, p := range parties {
				p.taps[1].WriteRTP(m.Audio[ai-int(p.at/testmedia.AudioInterval)])
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

// checkLive compares the pieces made during the call and after the stop (of 3).
func checkLive(t *testing.T, x *rec, live, after int) {
	t.Helper()
	x.live.mu.Lock()
	defer x.live.mu.Unlock()
	if x.live.live != live || x.live.after != after || len(x.live.done) != 3 || x.live.appended != 3 {
		t.Errorf("pieces made during the call %d, after stop %d, made %d, in the MP4 %d; want %d, %d, 3, 3",
			x.live.live, x.live.after, len(x.live.done), x.live.appended, live, after)
	}
}

// checkLiveMP4 checks liveCall's MP4: 8 s, 80 frames, the two first tiles lit on either side of
// the pieces' joins and, with a third person (joined at 4 s), the three tiles lit after.
func checkLiveMP4(t *testing.T, out string, people int) {
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
	if people == 3 {
		// 320x240 pictures in 160x90 tiles, two above and one centred below: 120x90 each.
		for _, at := range []time.Duration{5 * time.Second, 6400 * time.Millisecond, 7500 * time.Millisecond} {
			for i, r := range [][2]int{{40, 25}, {200, 25}, {120, 115}} {
				if l := tileLuma(t, out, at, 320, 180, r[0], r[1], 80, 40); l < 40 {
					t.Errorf("at %v tile %d's luminance is %d: want it lit (black is 16)", at, i+1, l)
				}
			}
		}
		return
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
