package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
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
	Nice                     int // 0: parley's own priority
	Threads                  int // 0: as many as ffmpeg likes
	// Boost, closed when the recording stops, puts a niced mix back to full priority (or stops
	// it with an error, and it is mixed again).
	Boost <-chan struct{}
	Log   io.Writer
}

// SegmentTrack is one part of a stream's file (compose.Track).
type SegmentTrack struct {
	Path               string
	Offset, Length     time.Duration
	Since, Until       time.Duration
	HasAudio, HasVideo bool
	Stream             string
}

// SegmentOutput is the recording's MP4 built from the mixed segments as they come
// (*compose.Output): appending copies a segment's samples, Close writes the index.
type SegmentOutput interface {
	Append(video, audio string) error
	Close() error
	Abort()
}

// SegmentComposer is a Composer that can also mix while the call goes on: a COMPOSED recording
// with video is then mixed segment by segment, each appended to the MP4 when mixed.
type SegmentComposer interface {
	Composer
	// SegmentLength rounds want to a length whose segments join without gap or drift at fps.
	SegmentLength(want time.Duration, fps int) time.Duration
	MixSegment(ctx context.Context, j SegmentJob) error
	// NewOutput starts the MP4 at path.
	NewOutput(path string) (SegmentOutput, error)
	// LiveNice is the niceness of segments mixed during the call.
	LiveNice() int
}

// liveWait bounds how long a segment waits for a writer whose media has not reached the
// segment's end (a publisher that stopped sending): after that it is mixed with what there is.
const liveWait = 5 * time.Second

// liveParallel bounds the segments of one recording mixed at once during the call, when it has
// fallen behind: at the lowest priority a second one takes only a core the calls leave idle.
const liveParallel = 2

// liveMix is the mixing of a COMPOSED recording while it goes on.
type liveMix struct {
	c      SegmentComposer
	seg    time.Duration
	dir    string // <recording>/segments
	w, h   int
	fps    int
	audio  bool
	stop   chan struct{} // closed when the recording stops: no new live segment starts
	halted sync.Once
	ctx    context.Context // the mixes': cancelled when the recording fails
	cancel context.CancelFunc
	exited chan struct{} // closed when liveLoop has returned
	slots  chan struct{} // liveParallel tokens
	mixing sync.WaitGroup
	mu     sync.Mutex
	done   map[int]mixed         // segments mixed, by number
	boosts map[int]chan struct{} // segments being mixed during the call, by number
	failed bool                  // a live mix failed: the rest is mixed at stop
	live   int                   // segments mixed during the call
	late   int                   // of those, finished after stop at full priority
	after  int                   // segments mixed after stop
	logf   *os.File
	// The output: segments 0..appended-1 are in it (and their files removed); amu orders the
	// appends, which run on the goroutine that finished a segment.
	amu      sync.Mutex
	out      SegmentOutput
	outErr   error
	appended int
}

// mixed is one segment's files.
type mixed struct {
	video, audio string
	length       time.Duration
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
		audio: p.HasAudio, stop: make(chan struct{}), exited: make(chan struct{}), slots: make(chan struct{}, liveParallel),
		done: map[int]mixed{}, boosts: map[int]chan struct{}{}}
	if err := os.MkdirAll(lm.dir, 0o755); err != nil {
		r.log.Warn("composed recording mixed at stop: no segments folder", "recording", x.info.ID, "error", err)
		return
	}
	out, err := sc.NewOutput(filepath.Join(x.dir, p.Name+".mp4"))
	if err != nil {
		r.log.Warn("composed recording mixed at stop: cannot create its file", "recording", x.info.ID, "error", err)
		return
	}
	lm.out = out
	lm.logf, _ = os.Create(filepath.Join(x.dir, ".compose.log"))
	lm.ctx, lm.cancel = context.WithCancel(r.finalCtx)
	x.live = lm
	go func() {
		defer close(lm.exited)
		r.liveLoop(x, lm)
	}()
}

// defaultSegment is the length of a live-mixed segment. What is left to mix at stop is at most
// this much of the call, plus the second or two the files take to reach the disk (about a fifth
// of a core-second per second of call, spread over the cores); each boundary costs each
// publisher a keyframe.
const defaultSegment = 5 * time.Second

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
// its end; it falls behind (the mixes run at the lowest priority) and catches up by itself,
// liveParallel segments at a time.
func (r *Recorder) liveLoop(x *rec, lm *liveMix) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for k := 0; ; k++ {
		from := time.Duration(k) * lm.seg
		for !r.segmentDue(x, from+lm.seg) {
			select {
			case <-lm.stop:
				return
			case <-tick.C:
			}
		}
		select {
		case <-lm.stop:
			return // what is left is mixed at stop, at full priority
		case lm.slots <- struct{}{}:
		}
		lm.mu.Lock()
		if lm.failed {
			lm.mu.Unlock()
			return
		}
		boost := make(chan struct{})
		lm.boosts[k] = boost
		lm.mixing.Add(1)
		lm.mu.Unlock()
		go func() {
			defer lm.mixing.Done()
			defer func() { <-lm.slots }()
			m, err := r.mixSegment(lm.ctx, x, lm, k, from, lm.seg, lm.c.LiveNice(), 1, boost)
			lm.mu.Lock()
			defer lm.mu.Unlock()
			delete(lm.boosts, k)
			boosted := false
			select {
			case <-boost:
				boosted = true
			default:
			}
			if err != nil {
				// A boosted one that failed (it could not be given full priority) is mixed again.
				if lm.ctx.Err() == nil && !boosted {
					r.log.Warn("live mix failed: the rest is mixed at stop", "recording", x.info.ID, "segment", k, "error", err)
					lm.failed = true
				}
				return
			}
			lm.done[k] = m
			lm.live++
			if boosted {
				lm.late++
			}
			go lm.appendReady(x, r)
		}()
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

// mixSegment mixes [from, from+length) into the segments folder as segment k.
func (r *Recorder) mixSegment(ctx context.Context, x *rec, lm *liveMix, k int, from, length time.Duration, nice, threads int,
	boost <-chan struct{}) (mixed, error) {
	j := SegmentJob{From: from, Length: length, Width: lm.w, Height: lm.h, FrameRate: lm.fps, Nice: nice, Threads: threads,
		Boost: boost, Video: filepath.Join(lm.dir, fmt.Sprintf("%06d.mp4", k))}
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
		return mixed{}, err
	}
	return mixed{video: j.Video, audio: j.Audio, length: length}, nil
}

// appendReady appends to the output the mixed segments that come next, in order, and removes
// their files.
func (lm *liveMix) appendReady(x *rec, r *Recorder) {
	lm.amu.Lock()
	defer lm.amu.Unlock()
	for {
		lm.mu.Lock()
		m, ok := lm.done[lm.appended]
		failed := lm.outErr != nil
		lm.mu.Unlock()
		if !ok || failed {
			return
		}
		err := lm.out.Append(m.video, m.audio)
		lm.mu.Lock()
		if err != nil {
			lm.outErr = fmt.Errorf("appending segment %d: %w", lm.appended, err)
		} else {
			lm.appended++
		}
		lm.mu.Unlock()
		if err != nil {
			r.log.Warn("composed recording: cannot append a segment", "recording", x.info.ID, "error", err)
			return
		}
		os.Remove(m.video)
		if m.audio != "" {
			os.Remove(m.audio)
		}
	}
}

// halt stops starting live segments (once); those being mixed go on.
func (lm *liveMix) halt() {
	lm.halted.Do(func() { close(lm.stop) })
}

// abort halts and stops the live mixes too, and drops the output (a failed recording).
func (lm *liveMix) abort() {
	lm.halt()
	lm.cancel()
	lm.amu.Lock()
	defer lm.amu.Unlock()
	lm.mu.Lock()
	defer lm.mu.Unlock()
	if lm.outErr == nil {
		lm.outErr = errors.New("recording failed")
		lm.out.Abort()
	}
}

// finishLive makes the segments of the whole call [0, d) and completes the MP4 with them. Runs
// after the files are closed. All of it is awaited, so all of it runs at full priority: the
// segments still being mixed at the live mixes' low priority are raised to it, and those not
// started are mixed at once, as many at a time as there are cores; what the live mix appended
// to the MP4 during the call is not touched again.
func (r *Recorder) finishLive(x *rec, lm *liveMix, d time.Duration) error {
	t0 := time.Now()
	lm.halt()
	<-lm.exited
	lm.mu.Lock()
	for _, b := range lm.boosts {
		close(b)
	}
	lm.mu.Unlock()
	n := int((d + lm.seg - 1) / lm.seg)
	if last := d - time.Duration(n-1)*lm.seg; n > 1 && last < time.Second/time.Duration(lm.fps) {
		n-- // less than a frame: the segment before ends close enough
	}
	length := func(k int) time.Duration { return min(lm.seg, d-time.Duration(k)*lm.seg) }
	// The segments neither mixed nor being mixed, then those the live mixes could not finish. A
	// live one started just past the stop is mixed again, shorter, unless already in the MP4.
	todo := func() []int {
		lm.mu.Lock()
		defer lm.mu.Unlock()
		var ks []int
		for k := range n {
			if m, ok := lm.done[k]; ok && (k < lm.appended || m.length == length(k)) {
				continue
			}
			if _, ok := lm.boosts[k]; !ok {
				ks = append(ks, k)
			}
		}
		return ks
	}
	if err := r.mixAfterStop(x, lm, todo(), length); err != nil {
		return err
	}
	lm.mixing.Wait()
	if err := r.mixAfterStop(x, lm, todo(), length); err != nil {
		return err
	}
	mixedIn := time.Since(t0)
	t1 := time.Now()
	lm.appendReady(x, r)
	lm.amu.Lock()
	defer lm.amu.Unlock()
	lm.mu.Lock()
	err, appended := lm.outErr, lm.appended
	summary := fmt.Sprintf("%d segments: %d mixed during the call (%d of them finished after stop at full priority), %d after stop",
		n, lm.live, lm.late, lm.after)
	lm.mu.Unlock()
	switch {
	case err != nil:
		lm.out.Abort()
	case appended < n:
		err = fmt.Errorf("%d segments of %d in the MP4", appended, n)
		lm.out.Abort()
	default:
		err = lm.out.Close()
	}
	lm.mu.Lock()
	if lm.outErr == nil {
		lm.outErr = errors.New("the MP4 is complete") // a live mix that finishes now appends nothing
	}
	lm.mu.Unlock()
	if lm.logf != nil {
		defer lm.logf.Close()
		fmt.Fprintf(lm.logf, "composed recording: joined %s; %.2f s of call, mixing after stop took %.2f s, appending and the index %.2f s\n",
			summary, d.Seconds(), mixedIn.Seconds(), time.Since(t1).Seconds())
	}
	r.log.Info("composed recording: joined", "recording", x.info.ID, "segments", summary,
		"mixAfterStop", mixedIn.Seconds(), "index", time.Since(t1).Seconds(), "error", err)
	return err
}

// mixAfterStop mixes segments ks at full priority, as many at once as there are cores.
func (r *Recorder) mixAfterStop(x *rec, lm *liveMix, ks []int, length func(int) time.Duration) error {
	if len(ks) == 0 {
		return nil
	}
	threads := 1 // several at once: one core each
	if len(ks) == 1 {
		threads = 0
	}
	slots := make(chan struct{}, max(1, runtime.NumCPU()))
	errs := make([]error, len(ks))
	var wg sync.WaitGroup
	for i, k := range ks {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			m, err := r.mixSegment(r.finalCtx, x, lm, k, time.Duration(k)*lm.seg, length(k), 0, threads, nil)
			if err != nil {
				errs[i] = err
				return
			}
			lm.mu.Lock()
			lm.done[k] = m
			lm.after++
			lm.mu.Unlock()
			lm.appendReady(x, r)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
