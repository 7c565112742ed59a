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
	"strings"
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
	Log                      io.Writer
}

// LiveJob is a window of a COMPOSED recording mixed by one process while the call goes on
// (compose.Live): its pieces (Piece long, numbered from First) are told to Ready as they are made.
type LiveJob struct {
	// SegmentJob is the window; its Video and Audio name a piece's files with a %d verb.
	SegmentJob
	Piece time.Duration
	First int
	// Growing reports whether a track file is still being written.
	Growing func(path string) bool
	Ready   func(k int)
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
	// MixLive mixes a window as its files are written and returns when every piece is Ready,
	// or with an error (those Ready stay good) when ctx is cancelled or the mix fails.
	MixLive(ctx context.Context, j LiveJob) error
	// NewOutput starts the MP4 at path.
	NewOutput(path string) (SegmentOutput, error)
	// LiveNice is the niceness of segments mixed during the call.
	LiveNice() int
}

// liveWait bounds how long a window waits for a writer that has not started the part for it (a
// keyframe that does not come): after that it is mixed with the parts there are.
const liveWait = 5 * time.Second

// liveParallel bounds the windows of one recording mixed at once during the call: one keeps up
// with the call; a second runs while the first finishes its last piece, or when it has fallen
// behind, at the lowest priority, on a core the calls leave idle.
const liveParallel = 2

// defaultWindowPieces is how many pieces one live mix makes: its ffmpeg starts once per window
// (about a minute at 5 s pieces) instead of once per piece, and each stream's file is cut into a
// new part at each window's start, so a mix never decodes a stream from further back than that.
const defaultWindowPieces = 12

// livePoll is how often a live window looks at the recording's streams for a change of layout.
const livePoll = 250 * time.Millisecond

// liveMix is the mixing of a COMPOSED recording while it goes on. The recording is cut into
// pieces of seg; during the call one ffmpeg per window of `per` pieces mixes them as the track
// files grow (restarted when someone joins or leaves, for the new layout), each piece appended
// to the MP4 when made; at stop the pieces not made yet (the tail) are mixed one ffmpeg each, at
// full priority, as many at once as there are cores.
type liveMix struct {
	c        SegmentComposer
	seg      time.Duration // a piece
	per      int           // pieces per window
	window   time.Duration // per * seg: the parts' length too
	dir      string        // <recording>/segments
	w, h     int
	fps      int
	audio    bool
	stop     chan struct{} // closed when the recording stops: live windows end, none starts
	halted   sync.Once
	ctx      context.Context // the mixes': cancelled when the recording fails
	cancel   context.CancelFunc
	exited   chan struct{} // closed when liveLoop has returned
	slots    chan struct{} // liveParallel tokens
	mixing   sync.WaitGroup
	mu       sync.Mutex
	done     map[int]mixed // pieces made, by number
	failed   bool          // a live mix failed: the rest is mixed at stop
	live     int           // pieces made during the call
	runs     int           // live ffmpeg runs started
	windows  int           // windows whose mix has started
	furthest time.Duration // the furthest start of a live run
	layout   int           // of them, restarts for a new layout
	after    int           // pieces mixed after stop
	logf     *os.File
	// The output: pieces 0..appended-1 are in it (and their files removed); amu orders the
	// appends, which run on the goroutine that finished a piece.
	amu      sync.Mutex
	out      SegmentOutput
	outErr   error
	appended int
}

// mixed is one piece's files.
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
	per := r.cfg.windowPieces
	if per <= 0 {
		per = defaultWindowPieces
	}
	seg := sc.SegmentLength(want, fps)
	lm := &liveMix{c: sc, seg: seg, per: per, window: time.Duration(per) * seg, dir: filepath.Join(x.dir, "segments"),
		w: w, h: h, fps: fps, audio: p.HasAudio, stop: make(chan struct{}), exited: make(chan struct{}),
		slots: make(chan struct{}, liveParallel), done: map[int]mixed{}}
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

// defaultSegment is the length of a piece. What is left to mix at stop is the piece the live mix
// was making and the one the stop cut short; each piece's start costs each publisher a
// keyframe, so that a piece mixed alone decodes its streams from a second or two before it.
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

// liveLoop starts each window's mix once every writer has started its part for the window; a
// mix runs at the lowest priority, so it falls behind when the machine is busy and catches up
// by itself, liveParallel windows at a time.
func (r *Recorder) liveLoop(x *rec, lm *liveMix) {
	tick := time.NewTicker(livePoll)
	defer tick.Stop()
	for w := 0; ; w++ {
		from := time.Duration(w) * lm.window
		for !r.windowDue(x, lm, from) {
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
		failed := lm.failed
		if !failed {
			lm.mixing.Add(1)
			lm.windows = w + 1
		}
		lm.mu.Unlock()
		if failed {
			return
		}
		go func() {
			defer lm.mixing.Done()
			defer func() { <-lm.slots }()
			r.mixWindow(x, lm, w)
		}()
	}
}

// windowDue reports whether the window starting at `from` can be mixed: its time has come and
// every open writer has started the part that serves it (or liveWait has passed).
func (r *Recorder) windowDue(x *rec, lm *liveMix, from time.Duration) bool {
	elapsed := r.now().Sub(x.info.CreatedAt)
	if elapsed < from {
		return false
	}
	if elapsed >= from+liveWait {
		return true
	}
	lead := min(rotateLead, lm.seg*3/8)
	x.mu.Lock()
	defer x.mu.Unlock()
	media := false
	for _, e := range x.all {
		if e.closed {
			continue
		}
		cur := e.w.currentPart()
		if cur.firstMs < 0 && len(e.w.snapshotParts()) == 1 {
			continue // no media yet: it joins the mix when it has some
		}
		if cur.firstMs < 0 || cur.since < from && e.offset+time.Duration(cur.firstMs)*time.Millisecond < from-lead {
			return false
		}
		media = true
	}
	return media // nobody's media yet: a mix now would only make black ahead of the call
}

// mixWindow makes window w's pieces with one ffmpeg, started again from the first piece not made
// whenever the window's streams change (someone joins or leaves: a new layout), until every
// piece is made, the recording stops or the mix fails.
func (r *Recorder) mixWindow(x *rec, lm *liveMix, w int) {
	first, last := w*lm.per, (w+1)*lm.per
	end := time.Duration(last) * lm.seg
	relayout, ahead := false, false
	for {
		lm.mu.Lock()
		k := first
		for k < last && lm.done[k].video != "" {
			k++
		}
		lm.mu.Unlock()
		if k == last {
			return
		}
		select {
		case <-lm.stop:
			return
		default:
		}
		from := time.Duration(k) * lm.seg
		if ahead && !r.waitRecorded(x, lm, from+lm.seg) {
			return
		}
		j, sig := r.windowJob(x, lm, from, end)
		// A mix whose inputs are all complete (everyone left) runs ahead of the call: a piece
		// that ends after the recorded time is not taken (someone may still join in it), and the
		// mix runs again from there once its time has come.
		lj := LiveJob{SegmentJob: j, Piece: lm.seg, First: k, Growing: func(path string) bool { return r.growing(x, path) },
			Ready: func(k int) {
				if time.Duration(k+1)*lm.seg <= r.now().Sub(x.info.CreatedAt) {
					lm.ready(x, r, k)
				}
			}}
		lm.mu.Lock()
		lm.runs++
		lm.furthest = max(lm.furthest, from)
		if relayout {
			lm.layout++
		}
		lm.mu.Unlock()
		ctx, cancel := context.WithCancel(lm.ctx)
		changed := make(chan struct{})
		var watch sync.WaitGroup
		watch.Go(func() {
			tick := time.NewTicker(livePoll)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-lm.stop:
					cancel() // the rest is mixed at stop, at full priority
					return
				case <-tick.C:
					if _, now := r.windowJob(x, lm, from, end); now != sig {
						close(changed)
						cancel()
						return
					}
				}
			}
		})
		err := lm.c.MixLive(ctx, lj)
		cancel()
		watch.Wait()
		if ahead = err == nil; ahead {
			relayout = false
			continue // every piece made; any not taken is made again when its time has come
		}
		select {
		case <-changed:
			relayout = true
			continue // a new layout: mix again from the first piece not made
		default:
		}
		select {
		case <-lm.stop:
			return
		default:
		}
		if lm.ctx.Err() == nil {
			r.log.Warn("live mix failed: the rest is mixed at stop", "recording", x.info.ID, "window", w, "error", err)
			lm.mu.Lock()
			lm.failed = true
			lm.mu.Unlock()
		}
		return
	}
}

// waitRecorded waits until the recording has reached `to`; false if it stopped first.
func (r *Recorder) waitRecorded(x *rec, lm *liveMix, to time.Duration) bool {
	tick := time.NewTicker(livePoll)
	defer tick.Stop()
	for r.now().Sub(x.info.CreatedAt) < to {
		select {
		case <-lm.stop:
			return false
		case <-tick.C:
		}
	}
	return true
}

// ready records piece k made by a live mix and appends what comes next to the MP4.
func (lm *liveMix) ready(x *rec, r *Recorder, k int) {
	lm.mu.Lock()
	lm.done[k] = mixed{video: lm.pieceVideo(k), audio: lm.pieceAudio(k), length: lm.seg}
	lm.live++
	lm.mu.Unlock()
	lm.appendReady(x, r)
}

func (lm *liveMix) pieceVideo(k int) string { return filepath.Join(lm.dir, fmt.Sprintf("%06d.mp4", k)) }

func (lm *liveMix) pieceAudio(k int) string {
	if !lm.audio {
		return ""
	}
	return filepath.Join(lm.dir, fmt.Sprintf("%06d.aac", k))
}

// growing reports whether the track file path of recording x is still being written.
func (r *Recorder) growing(x *rec, path string) bool {
	x.mu.Lock()
	entries := slices.Clone(x.all)
	x.mu.Unlock()
	for _, e := range entries {
		for _, p := range e.w.snapshotParts() {
			if p.path == path {
				return !p.closed
			}
		}
	}
	return false
}

// windowJob is the live mix of [from, end) with the parts there are now, and a signature of
// its layout: what streams it has and which of them end inside the window.
func (r *Recorder) windowJob(x *rec, lm *liveMix, from, end time.Duration) (SegmentJob, string) {
	j := r.segmentJob(x, lm, from, end-from)
	j.Video = filepath.Join(lm.dir, "%06d.mp4")
	if lm.audio {
		j.Audio = filepath.Join(lm.dir, "%06d.aac")
	}
	j.Nice, j.Threads = lm.c.LiveNice(), 1
	// A live mix reads each part from its start (a pipe cannot seek): a stream's part that took
	// over at or before the window's start and began before it (a second or two, on the keyframe
	// asked for) serves the whole window, and the part before it would be decoded whole for
	// nothing.
	t0 := from - time.Second/10          // the audio's lead (an AAC frame), with room
	serves := map[string]time.Duration{} // per stream, the takeover of the latest such part
	for _, t := range j.Tracks {
		if t.Since > 0 && t.Since <= from && t.Offset <= t0 {
			serves[t.Stream] = max(serves[t.Stream], t.Since)
		}
	}
	kept := j.Tracks[:0]
	for _, t := range j.Tracks {
		if since, ok := serves[t.Stream]; ok {
			if t.Since != since {
				continue // a part before
			}
			t.Since = 0
		}
		if t.Until > 0 {
			// Taken over: Until bounds it, and its closing (a moment after) changes nothing.
			t.Length = 0
		}
		kept = append(kept, t)
	}
	j.Tracks = kept
	var sig strings.Builder
	for i, t := range j.Tracks {
		if t.Until >= end {
			j.Tracks[i].Until = 0 // taken over after the window: as good as not at all
		}
		if t.Length > 0 && t.Offset+t.Length >= end {
			j.Tracks[i].Length = 0 // ends after the window: as good as still going
		}
		t = j.Tracks[i]
		fmt.Fprintf(&sig, "%s %v %v %v %v %v;", t.Path, t.Offset, t.Length, t.Until, t.HasAudio, t.HasVideo)
	}
	return j, sig.String()
}

// segmentJob is the mix of [from, from+length) with the parts there are now: those that have
// media and reach into the window (and not only its last second before, nor after it).
func (r *Recorder) segmentJob(x *rec, lm *liveMix, from, length time.Duration) SegmentJob {
	j := SegmentJob{From: from, Length: length, Width: lm.w, Height: lm.h, FrameRate: lm.fps}
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
			if t.Offset >= end || t.Since > 0 && t.Since >= end || t.Length > 0 && t.Offset+t.Length <= from-time.Second ||
				t.Until > 0 && t.Until <= from-time.Second {
				continue
			}
			j.Tracks = append(j.Tracks, t)
		}
	}
	return j
}

// mixSegment mixes piece k, [from, from+length), into the segments folder at full priority.
func (r *Recorder) mixSegment(ctx context.Context, x *rec, lm *liveMix, k int, from, length time.Duration, threads int) (mixed, error) {
	j := r.segmentJob(x, lm, from, length)
	j.Video, j.Audio, j.Threads = lm.pieceVideo(k), lm.pieceAudio(k), threads
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

// finishLive makes the pieces of the whole call [0, d) and completes the MP4 with them. Runs
// after the files are closed. The live mixes ended at the stop (halt); the pieces they had not
// made, the tail of the call, are mixed now at full priority, as many at once as there are
// cores; what the live mixes appended to the MP4 during the call is not touched again.
func (r *Recorder) finishLive(x *rec, lm *liveMix, d time.Duration) error {
	t0 := time.Now()
	lm.halt()
	<-lm.exited
	lm.mixing.Wait() // the live mixes end at once when halted
	n := int((d + lm.seg - 1) / lm.seg)
	if last := d - time.Duration(n-1)*lm.seg; n > 1 && last < time.Second/time.Duration(lm.fps) {
		n-- // less than a frame: the piece before ends close enough
	}
	length := func(k int) time.Duration { return min(lm.seg, d-time.Duration(k)*lm.seg) }
	// A piece made by a live mix past the stop (it covers the whole piece) is mixed again,
	// shorter, unless already in the MP4.
	lm.mu.Lock()
	if lm.logf != nil {
		// How far the live mix was behind the call: what the stop leaves to mix.
		fmt.Fprintf(lm.logf, "live mix lag at stop: %.2f s (pieces through %.2f s of %.2f s in the MP4); the files closed and the live mixes ended %.2f s after stop\n",
			(d - time.Duration(lm.appended)*lm.seg).Seconds(), (time.Duration(lm.appended) * lm.seg).Seconds(), d.Seconds(),
			(r.now().Sub(x.info.CreatedAt) - d).Seconds())
	}
	var todo []int
	for k := range n {
		if m, ok := lm.done[k]; ok && (k < lm.appended || m.length == length(k)) {
			continue
		}
		todo = append(todo, k)
	}
	lm.mu.Unlock()
	if err := r.mixAfterStop(x, lm, todo, length); err != nil {
		return err
	}
	mixedIn := time.Since(t0)
	t1 := time.Now()
	lm.appendReady(x, r)
	lm.amu.Lock()
	defer lm.amu.Unlock()
	lm.mu.Lock()
	err, appended := lm.outErr, lm.appended
	summary := fmt.Sprintf("%d pieces of %.2f s: %d mixed during the call by %d live runs (%d of them restarts for a new layout), %d after stop",
		n, lm.seg.Seconds(), lm.live, lm.runs, lm.layout, lm.after)
	lm.mu.Unlock()
	switch {
	case err != nil:
		lm.out.Abort()
	case appended < n:
		err = fmt.Errorf("%d pieces of %d in the MP4", appended, n)
		lm.out.Abort()
	default:
		err = lm.out.Close()
	}
	lm.mu.Lock()
	if lm.outErr == nil {
		lm.outErr = errors.New("the MP4 is complete")
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

// mixAfterStop mixes pieces ks at full priority, as many at once as there are cores.
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
			t0 := time.Now()
			m, err := r.mixSegment(r.finalCtx, x, lm, k, time.Duration(k)*lm.seg, length(k), threads)
			if lm.logf != nil {
				fmt.Fprintf(lm.logf, "after stop: piece %d mixed in %.2f s\n", k, time.Since(t0).Seconds())
			}
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
