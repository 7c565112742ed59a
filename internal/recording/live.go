package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// SegmentJob is one window of a COMPOSED recording to mix (compose.Segment).
type SegmentJob struct {
	Tracks                   []SegmentTrack
	Video, Audio             string // the .mp4 and .aac to write; "" for a kind not recorded
	From, Length             time.Duration
	Width, Height, FrameRate int
	Nice                     int // 0: the composer's default for work after the call
	Threads                  int // 0: as many as ffmpeg likes
	Log                      io.Writer
}

// SegmentTrack is one part of a stream's file (compose.Track).
type SegmentTrack struct {
	Path               string
	Offset, Length     time.Duration
	Since, Until       time.Duration
	HasAudio, HasVideo bool
	Stream             string
}

// JoinJob appends the mixed segments into the recording's MP4 (compose.JoinJob).
type JoinJob struct {
	Videos, Audios []string
	Out            string
	Log            io.Writer
}

// SegmentComposer is a Composer that can also mix while the call goes on: a COMPOSED recording
// with video is then mixed segment by segment and joined at stop.
type SegmentComposer interface {
	Composer
	// SegmentLength rounds want to a length whose segments join without gap or drift at fps.
	SegmentLength(want time.Duration, fps int) time.Duration
	MixSegment(ctx context.Context, j SegmentJob) error
	Join(ctx context.Context, j JoinJob) error
	// LiveNice is the niceness of segments mixed during the call.
	LiveNice() int
}

// liveWait bounds how long a segment waits for a writer whose media has not reached the
// segment's end (a publisher that stopped sending): after that it is mixed with what there is.
const liveWait = 5 * time.Second

// liveMix is the mixing of a COMPOSED recording while it goes on.
type liveMix struct {
	c       SegmentComposer
	seg     time.Duration
	dir     string // <recording>/segments
	w, h    int
	fps     int
	audio   bool
	stop    chan struct{} // closed when the recording stops
	halted  sync.Once
	ctx     context.Context // the live mixes\': cancelled at stop, when what is left is mixed at once
	cancel  context.CancelFunc
	exited  chan struct{}
	mu      sync.Mutex
	videos  []string
	audios  []string
	mixedTo time.Duration // the end of the last mixed segment
	live    int           // segments mixed during the call
	after   int           // segments mixed after stop
	logf    *os.File
}

// startLive begins mixing x while it is recorded, when the composer can. Caller holds r.mu.
func (r *Recorder) startLive(x *rec) {
	sc, ok := r.cfg.Composer.(SegmentComposer)
	p := x.info.Props
	if !ok || !composed(p) || !p.HasVideo {
		return // audio-only recordings are mixed at stop: cheap enough
	}
	w, h := resolution(p.Resolution)
	fps := frameRate(p.FrameRate)
	want := r.cfg.Segment
	if want <= 0 {
		want = defaultSegment
	}
	lm := &liveMix{c: sc, seg: sc.SegmentLength(want, fps), dir: filepath.Join(x.dir, "segments"), w: w, h: h, fps: fps,
		audio: p.HasAudio, stop: make(chan struct{}), exited: make(chan struct{})}
	if err := os.MkdirAll(lm.dir, 0o755); err != nil {
		r.log.Warn("composed recording mixed at stop: no segments folder", "recording", x.info.ID, "error", err)
		return
	}
	lm.logf, _ = os.Create(filepath.Join(x.dir, ".compose.log"))
	lm.ctx, lm.cancel = context.WithCancel(r.finalCtx)
	x.live = lm
	go func() {
		defer close(lm.exited)
		r.liveLoop(x, lm)
	}()
}

// defaultSegment is the length of a live-mixed segment: what is left to mix at stop is at most
// this much of the call (about half a second of a core per second of call), and the segment
// boundaries cost each publisher a keyframe.
const defaultSegment = 10 * time.Second

func resolution(s string) (int, int) {
	w, h := 1280, 720
	if _, err := fmt.Sscanf(s, "%dx%d", &w, &h); err != nil {
		return 1280, 720
	}
	return w, h
}

func frameRate(f int) int {
	if f <= 0 {
		return 25
	}
	return f
}

// liveLoop mixes each segment once its time has passed and every writer's media is on disk past
// its end; it falls behind (the mixes run at the lowest priority) and catches up by itself.
func (r *Recorder) liveLoop(x *rec, lm *liveMix) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for k := 0; ; k++ {
		from := time.Duration(k) * lm.seg
		to := from + lm.seg
		for !r.segmentDue(x, to) {
			select {
			case <-lm.stop:
				return
			case <-tick.C:
			}
		}
		select {
		case <-lm.stop:
			return // what is left is mixed at stop, in one piece
		default:
		}
		if err := r.mixSegment(lm.ctx, x, lm, k, from, lm.seg, lm.c.LiveNice(), 1); err != nil {
			if lm.ctx.Err() == nil {
				r.log.Warn("live mix failed: the rest is mixed at stop", "recording", x.info.ID, "segment", k, "error", err)
			}
			return
		}
		lm.mu.Lock()
		lm.live++
		lm.mu.Unlock()
	}
}

// segmentDue reports whether the recording's media up to `to` is on disk: every open writer has
// flushed past it (and past the overlap of its parts), or liveWait has passed since.
func (r *Recorder) segmentDue(x *rec, to time.Duration) bool {
	elapsed := r.now().Sub(x.info.CreatedAt)
	if elapsed < to {
		return false
	}
	if elapsed >= to+liveWait {
		return true
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, e := range x.all {
		if e.closed {
			continue
		}
		f := e.w.pw.flushedMs.Load()
		if f < 0 || e.offset+time.Duration(f)*time.Millisecond < to+overlapAfter+100*time.Millisecond {
			return false
		}
	}
	return true
}

// mixSegment mixes [from, from+length) into the segments folder.
func (r *Recorder) mixSegment(ctx context.Context, x *rec, lm *liveMix, k int, from, length time.Duration, nice, threads int) error {
	j := SegmentJob{From: from, Length: length, Width: lm.w, Height: lm.h, FrameRate: lm.fps, Nice: nice, Threads: threads,
		Video: filepath.Join(lm.dir, fmt.Sprintf("%06d.mp4", k))}
	if lm.audio {
		j.Audio = filepath.Join(lm.dir, fmt.Sprintf("%06d.aac", k))
	}
	if lm.logf != nil {
		j.Log = lm.logf
	}
	end := from + length
	x.mu.Lock()
	entries := slices.Clone(x.all)
	x.mu.Unlock()
	for _, e := range entries {
		for _, p := range e.w.snapshotParts() {
			if p.firstMs < 0 || !(p.audio && e.audio) && !(p.video && e.video) {
				continue
			}
			ms := func(v int64) time.Duration { return e.offset + time.Duration(v)*time.Millisecond }
			t := SegmentTrack{Path: p.path, Offset: ms(p.firstMs), HasAudio: p.audio && e.audio, HasVideo: p.video && e.video,
				Stream: e.file}
			if p.closed {
				t.Length = time.Duration(p.endMs-p.firstMs)*time.Millisecond + 40*time.Millisecond
			}
			t.Since, t.Until = p.since, p.until
			if t.Offset >= end || t.Length > 0 && t.Offset+t.Length <= from-time.Second || t.Until > 0 && t.Until <= from-time.Second {
				continue
			}
			j.Tracks = append(j.Tracks, t)
		}
	}
	if err := lm.c.MixSegment(ctx, j); err != nil {
		return err
	}
	lm.mu.Lock()
	defer lm.mu.Unlock()
	lm.videos = append(lm.videos, j.Video)
	if j.Audio != "" {
		lm.audios = append(lm.audios, j.Audio)
	}
	lm.mixedTo = end
	return nil
}

// halt stops the live mixing (once).
// A segment being mixed at the live mix's low priority is abandoned: it is mixed again with the
// rest, at once.
func (lm *liveMix) halt() {
	lm.halted.Do(func() {
		close(lm.stop)
		lm.cancel()
	})
}

// finishLive stops the live mixing, mixes what is left of the call in one segment and joins the
// segments into out. Runs after the files are closed.
func (r *Recorder) finishLive(x *rec, lm *liveMix, d time.Duration, out string) error {
	lm.halt()
	<-lm.exited
	lm.mu.Lock()
	from, k := lm.mixedTo, len(lm.videos)
	lm.mu.Unlock()
	if d-from >= time.Second/time.Duration(lm.fps) {
		if err := r.mixSegment(r.finalCtx, x, lm, k, from, d-from, 0, 0); err != nil {
			return err
		}
		lm.mu.Lock()
		lm.after++
		lm.mu.Unlock()
	}
	lm.mu.Lock()
	j := JoinJob{Videos: lm.videos, Audios: lm.audios, Out: out}
	lm.mu.Unlock()
	if len(j.Videos) == 0 {
		return errors.New("nothing to join")
	}
	if lm.logf != nil {
		j.Log = lm.logf
		defer lm.logf.Close()
		fmt.Fprintf(lm.logf, "composed recording: joining %d segments: %d mixed during the call, %d after stop (the last %.2f s of %.2f s)\n",
			len(j.Videos), lm.live, lm.after, (d - from).Seconds(), d.Seconds())
	}
	r.log.Info("composed recording: joining", "recording", x.info.ID, "segments", len(j.Videos),
		"mixedDuringCall", lm.live, "mixedAfterStop", lm.after, "leftAtStop", (d - from).Seconds())
	return lm.c.Join(r.finalCtx, j)
}
