// Package recording records sessions through OpenVidu 2.32's recording API (protocol note §10):
// INDIVIDUAL recordings write one WebM per published stream, incrementally, from the RTP the SFU
// already forwards (no transcoding); COMPOSED recordings write the same per-stream files into a
// working folder and have them mixed afterwards by a Composer (ffmpeg).
//
// It owns the recording folders under OPENVIDU_RECORDING_PATH, whose .recording.<id> files are the
// source of truth for listings, and the per-stream writers. It listens to session events and calls
// back into the session model only through the Sessions interface. It must not import api,
// signaling, edge or server.
//
// Lock order: Recorder.mu, then the session model's lock (Sessions calls). Listen only queues: the
// model delivers events to its listeners one at a time, so a slow one would hold up the others.
//
// Files: recording.go starts and stops recordings and their stream writers; catalog.go is what
// REST reads (get, list, delete, download) and the metrics' Stats; events.go follows the session
// model's events (streams coming and going, autostop); store.go the metadata on disk.
package recording

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/session"
	"github.com/parley/parley/internal/sfu"
)

// ComposeTrack is one stream's file for a composed recording.
type ComposeTrack struct {
	Path               string
	Offset             time.Duration // start relative to the recording's start
	HasAudio, HasVideo bool
}

// ComposeJob is one composed recording to mix.
type ComposeJob struct {
	Tracks                   []ComposeTrack
	Out                      string // .mp4 with video, else .webm
	Width, Height, FrameRate int
	HasAudio, HasVideo       bool
	Duration                 time.Duration
	Log                      io.Writer
}

// Composer mixes per-stream files into one (internal/recording/compose, wired by the server).
type Composer interface {
	Run(ctx context.Context, j ComposeJob) error
	Thumbnail(ctx context.Context, video, jpg string) error
}

// Config is what the recorder needs.
type Config struct {
	// Path is OPENVIDU_RECORDING_PATH.
	Path string
	// AutostopTimeout is OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT.
	AutostopTimeout time.Duration
	// Composer mixes COMPOSED recordings; nil answers COMPOSED starts with "not supported".
	Composer Composer
	// StopWait is how long Stop waits for the files to be final before answering "stopped"
	// instead of "ready" (default 20 s).
	StopWait time.Duration
	// Segment is the length of the pieces a COMPOSED recording is mixed in while it goes on
	// (rounded to whole frames; 0: 5 s); one live mix makes a window of defaultWindowPieces.
	Segment time.Duration
	// windowPieces replaces defaultWindowPieces (tests).
	windowPieces int
	// now is the clock; tests replace it to run recordings on media time.
	now func() time.Time
	// createFile opens a track file; tests replace it to fail writes.
	createFile func(string) (*syncFile, error)
	// sourceOf gives a stream's media; tests replace it to feed files without an SFU.
	sourceOf func(session.RecordableStream) source
}

// source is what a writer needs of a published stream (*sfu.Publisher).
type source interface {
	HasAudio() bool
	HasVideo() bool
	Codec(kind string) (webrtc.RTPCodecCapability, bool)
	AddTap(kind string, t sfu.Tap) (remove func())
	RequestKeyframe()
}

var _ source = (*sfu.Publisher)(nil)

func publisherOf(rs session.RecordableStream) source {
	// The wiring's handle embeds the SFU's publisher, taps and all.
	src, _ := rs.Publisher.(source)
	return src
}

// Recorder runs every recording of this node.
type Recorder struct {
	cfg Config
	s   Sessions
	log *slog.Logger

	mu       sync.Mutex
	recs     map[string]*rec
	active   map[session.SessionID]*rec // starting or started
	autostop map[session.SessionID]*time.Timer

	qmu    sync.Mutex
	queue  []func()
	wake   chan struct{}
	finals sync.WaitGroup // finalisations in progress
	closed bool           // Run has ended: nothing new starts
	// Counters for Stats (metrics): packets dropped by writers that closed, recordings failed.
	dropped, failed atomic.Uint64
	// finalCtx bounds the finalisations (ffmpeg mixes); cancelled when shutdown has waited long enough.
	finalCtx    context.Context
	cancelFinal context.CancelFunc
}

// shutdownWait is how long Run's end waits for files to be final (a composed mix may take
// minutes) before it cancels the mixes: those recordings are left failed, their tracks kept.
const shutdownWait = 30 * time.Second

// rec is one recording. info and errText are guarded by Recorder.mu; streams by its own mu.
type rec struct {
	info    session.RecordingInfo
	errText string
	dir     string
	work    string // where the per-stream files go: dir, or dir/tracks for COMPOSED
	final   chan struct{}

	live    *liveMix // COMPOSED with video: the mixing during the call; set at start
	mu      sync.Mutex
	streams map[session.StreamID]*streamEntry
	all     []*streamEntry // every writer, in order of start
	done    []*streamEntry // closed writers, in closing order
	names   map[string]bool
	pulling map[session.StreamID]bool // other nodes' streams on their way here (pull)
	dropped *atomic.Uint64            // the recorder's counter
}

type streamEntry struct {
	rs       session.RecordableStream
	file     string
	w        *streamWriter
	offset   time.Duration // writer start relative to the recording's start
	audio    bool
	video    bool
	removes  []func()
	closed   bool
	writeErr error
	log      *slog.Logger
}

// New reads the recordings under cfg.Path. Those that were starting, started or stopped when the
// process ended never finished: they are marked failed, their files kept.
func New(cfg Config, s Sessions, log *slog.Logger) (*Recorder, error) {
	if cfg.StopWait == 0 {
		cfg.StopWait = 20 * time.Second
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.createFile == nil {
		cfg.createFile = createSyncFile
	}
	if cfg.sourceOf == nil {
		cfg.sourceOf = publisherOf
	}
	if err := os.MkdirAll(cfg.Path, 0o755); err != nil {
		return nil, fmt.Errorf("OPENVIDU_RECORDING_PATH: %w", err)
	}
	r := &Recorder{cfg: cfg, s: s, log: log, recs: map[string]*rec{}, active: map[session.SessionID]*rec{},
		autostop: map[session.SessionID]*time.Timer{}, wake: make(chan struct{}, 1)}
	r.finalCtx, r.cancelFinal = context.WithCancel(context.Background())
	found, errs := loadAll(cfg.Path)
	for _, err := range errs {
		log.Warn("recording folder skipped", "error", err)
	}
	for _, d := range found {
		x := &rec{info: d.info(), errText: d.Error, dir: filepath.Join(cfg.Path, d.ID), final: make(chan struct{})}
		close(x.final)
		switch x.info.Status {
		case session.RecordingStarting, session.RecordingStarted, session.RecordingStopped:
			x.info.Status, x.errText = session.RecordingFailed, "parley stopped before the recording was finished; its files are kept"
			if x.info.Reason == "" {
				x.info.Reason = "nodeCrashed"
			}
			if err := saveMeta(x.dir, toDisk(x.info, x.errText)); err != nil {
				log.Warn("cannot mark interrupted recording failed", "recording", x.info.ID, "error", err)
			}
			log.Warn("recording interrupted by a restart marked failed", "recording", x.info.ID, "session", x.info.Session)
		}
		r.recs[x.info.ID] = x
	}
	return r, nil
}

// errorf builds a model error, so the REST layer maps it like any other.
func errorf(kind session.Kind, format string, args ...any) error {
	return &session.Error{Kind: kind, Code: session.CodeGeneric, Msg: fmt.Sprintf(format, args...)}
}

// Start begins recording session sid (POST /recordings/start, or a recordingMode ALWAYS session's
// first publisher).
func (r *Recorder) Start(sid session.SessionID, p session.RecordingProperties) (session.RecordingInfo, error) {
	switch {
	case p.OutputMode != "INDIVIDUAL" && p.HasVideo && p.RecordingLayout == "CUSTOM":
		return session.RecordingInfo{}, errorf(session.KindUnsupported, "recordingLayout CUSTOM is not supported by Parley: composed recordings use BEST_FIT")
	case p.OutputMode != "INDIVIDUAL" && p.HasVideo && p.RecordingLayout != "" && p.RecordingLayout != "BEST_FIT":
		return session.RecordingInfo{}, errorf(session.KindUnsupported, "recordingLayout %s is not available (OpenVidu CE does not have it either): use BEST_FIT", p.RecordingLayout)
	case composed(p) && r.cfg.Composer == nil:
		return session.RecordingInfo{}, errorf(session.KindUnsupported, "COMPOSED recordings are not available in this build of Parley: use outputMode INDIVIDUAL")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return session.RecordingInfo{}, errorf(session.KindNotAcceptable, "the server is shutting down")
	}
	if r.active[sid] != nil {
		return session.RecordingInfo{}, errorf(session.KindConflict, "session %s is already being recorded", sid)
	}
	t, err := r.s.RecordingTarget(sid)
	if err != nil {
		return session.RecordingInfo{}, err
	}
	switch {
	case t.Props.MediaMode == "RELAYED":
		return session.RecordingInfo{}, errorf(session.KindConflict, "session %s is RELAYED: only ROUTED sessions can be recorded", sid)
	case t.Recording != "":
		return session.RecordingInfo{}, errorf(session.KindConflict, "session %s is already being recorded", sid)
	case t.Participants == 0:
		return session.RecordingInfo{}, errorf(session.KindNotAcceptable, "session %s has no participants", sid)
	}
	id := string(sid)
	for n := 1; r.recs[id] != nil || exists(filepath.Join(r.cfg.Path, id)); n++ {
		id = string(sid) + "~" + strconv.Itoa(n)
	}
	name := p.Name
	if name == "" {
		name = id
	}
	p.Name = name
	x := &rec{info: session.RecordingInfo{ID: id, Name: name, Session: sid, SessionCreatedAt: t.CreatedAt, CreatedAt: r.now(),
		Props: p, Status: session.RecordingStarting}, dir: filepath.Join(r.cfg.Path, id), final: make(chan struct{}),
		streams: map[session.StreamID]*streamEntry{}, names: map[string]bool{}, pulling: map[session.StreamID]bool{},
		dropped: &r.dropped}
	x.work = x.dir
	if composed(p) {
		x.work = filepath.Join(x.dir, "tracks")
	}
	if err := os.MkdirAll(x.work, 0o755); err != nil {
		return session.RecordingInfo{}, errorf(session.KindInternal, "cannot create the recording folder: %v", err)
	}
	if err := saveMeta(x.dir, toDisk(x.info, "")); err != nil {
		_ = os.RemoveAll(x.dir)
		return session.RecordingInfo{}, errorf(session.KindInternal, "cannot write the recording folder: %v", err)
	}
	x.info.Status = session.RecordingStarted
	if err := r.s.RecordingStatus(x.info); err != nil {
		_ = os.RemoveAll(x.dir)
		return session.RecordingInfo{}, err
	}
	r.recs[id], r.active[sid] = x, x
	if err := saveMeta(x.dir, toDisk(x.info, "")); err != nil {
		r.log.Warn("cannot update recording metadata", "recording", id, "error", err)
	}
	r.startLive(x)
	r.log.Info("recording started", "recording", id, "session", sid, "outputMode", p.OutputMode)
	for _, rs := range t.Streams {
		r.addStream(x, rs, nil)
	}
	if len(t.Streams) == 0 {
		r.armAutostop(sid, x.info.ID) // OpenVidu: a recording with nobody publishing counts down at once
	}
	return x.info, nil
}

// composed reports a mixed recording: COMPOSED_QUICK_START is COMPOSED here (there is no
// recorder to pre-start).
func composed(p session.RecordingProperties) bool { return p.OutputMode != "INDIVIDUAL" }

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// pullTimeout bounds how long a recording waits for another node's stream to arrive over the
// inter-node link.
const pullTimeout = 10 * time.Second

// addStream opens a file for one stream and taps its tracks; another node's stream is pulled
// here first (pull). It reports whether the stream is now recorded; if so, release (when not nil)
// runs when its file closes. Caller holds r.mu.
func (r *Recorder) addStream(x *rec, rs session.RecordableStream, release func()) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old := x.streams[rs.ID]; old != nil && !old.closed || !rs.Record {
		return false
	}
	if rs.Node != "" && rs.Publisher == nil {
		r.pull(x, rs)
		return false
	}
	src := r.cfg.sourceOf(rs)
	if src == nil {
		return false
	}
	p := x.info.Props
	e := &streamEntry{rs: rs, audio: p.HasAudio && rs.Media.HasAudio && src.HasAudio(),
		video: p.HasVideo && rs.Media.HasVideo && src.HasVideo()}
	spec := trackSpec{audio: e.audio}
	log := r.log.With("recording", x.info.ID, "session", x.info.Session, "stream", rs.ID)
	if e.video {
		c, _ := src.Codec("video")
		vc, err := videoCodecOf(c.MimeType)
		if err != nil {
			log.Warn("stream recorded without its video", "error", err)
			e.video = false
		} else {
			spec.video, spec.videoCodec = true, vc
			spec.width, spec.height = dims(rs.Media.VideoDimensions)
		}
	}
	spec.audio = e.audio
	if !e.audio && !e.video {
		return false // nothing of what this recording records (an audio-only stream in a video-only recording)
	}
	base, ext := string(rs.ID), ".webm"
	if spec.videoCodec == "H264" {
		ext = ".mkv" // WebM has no H.264; Matroska does (what OpenVidu's mediasoup recorder writes)
	}
	e.file = base + ext
	for n := 1; x.names[e.file]; n++ {
		e.file = base + "-" + strconv.Itoa(n) + ext // a re-published stream (protocol note §10.4)
	}
	x.names[e.file] = true
	w, err := newStreamWriter(filepath.Join(x.work, e.file), spec, r.cfg.createFile)
	if err != nil {
		log.Error("cannot record stream", "error", err)
		r.enqueue(func() { r.fail(x, fmt.Errorf("stream %s: %w", rs.ID, err)) })
		return false
	}
	if r.cfg.now != nil {
		w.start, w.clock = r.now(), r.cfg.now
	}
	e.w, e.offset, e.log = w, w.start.Sub(x.info.CreatedAt), log
	if x.live != nil {
		w.inParts(x.live.window, x.live.seg, e.offset)
	}
	w.pli = src.RequestKeyframe
	w.onFail = func(err error) {
		log.Error("recording write failed", "error", err)
		r.enqueue(func() { r.fail(x, fmt.Errorf("writing %s: %w", e.file, err)) })
	}
	if e.video {
		if rm := src.AddTap("video", &tap{w: w, kind: kindVideo}); rm != nil {
			e.removes = append(e.removes, rm)
		}
	}
	if e.audio {
		if rm := src.AddTap("audio", &tap{w: w, kind: kindAudio}); rm != nil {
			e.removes = append(e.removes, rm)
		}
	}
	if release != nil {
		e.removes = append(e.removes, release)
	}
	x.streams[rs.ID] = e
	x.all = append(x.all, e)
	go w.run()
	log.Info("recording stream", "file", e.file, "audio", e.audio, "video", e.video, "node", rs.Node)
	return true
}

// pull brings another node's stream to this node for recording x, off the recorder's loop (the
// inter-node link may take a moment to set up), once at a time per stream. It joins x if x is
// still recording and the stream still published when it arrives; the pull is released when the
// stream's file closes. Caller holds x.mu.
func (r *Recorder) pull(x *rec, rs session.RecordableStream) {
	if x.pulling[rs.ID] {
		return
	}
	x.pulling[rs.ID] = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), pullTimeout)
		pm, err := r.s.PullStream(ctx, x.info.Session, rs.ID)
		cancel()
		r.enqueue(func() {
			x.mu.Lock()
			delete(x.pulling, rs.ID)
			x.mu.Unlock()
			if err != nil {
				r.log.Warn("recording without another node's stream: it cannot be brought here", "recording", x.info.ID,
					"stream", rs.ID, "node", rs.Node, "error", err)
				return
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			cur, ok := r.s.RecordableStream(x.info.Session, rs.ID)
			if r.active[x.info.Session] != x || !ok || cur.Node != rs.Node {
				pm.Close() // the recording or the stream ended meanwhile
				return
			}
			cur.Publisher = pm
			if !r.addStream(x, cur, pm.Close) {
				pm.Close()
			}
		})
	}()
}

// closeStream ends one stream's file. Caller holds x.mu.
func (x *rec) closeStream(e *streamEntry) {
	if e.closed {
		return
	}
	e.closed = true
	for _, rm := range e.removes {
		rm()
	}
	e.w.close()
	e.writeErr = e.w.err
	x.done = append(x.done, e)
	if d := e.w.drops.Load(); d > 0 {
		if x.dropped != nil {
			x.dropped.Add(d)
		}
		// The writer fell behind the disk: the file has gaps, which the log must say.
		e.log.Warn("recording dropped packets", "file", e.file, "dropped", d)
	}
	e.log.Info("stream recording closed", "file", e.file)
}

// detach ends every stream's media at this moment: the taps stop queueing and are removed, the
// writers keep what they queued. It returns at once, however far behind the writers are.
func (x *rec) detach() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, e := range x.streams {
		if !e.closed {
			e.w.closing.Store(true)
			for _, rm := range e.removes {
				rm()
			}
		}
	}
}

// closeAll ends every stream's file, waiting for each writer to drain its queue and finish its
// file (which, on a busy machine, takes seconds).
func (x *rec) closeAll() {
	// Detach every tap first, so all files end at this moment even if one writer is slow to drain.
	x.detach()
	x.mu.Lock()
	defer x.mu.Unlock()
	ids := make([]session.StreamID, 0, len(x.streams))
	for id := range x.streams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		x.closeStream(x.streams[id])
	}
}

// Stop ends a recording (POST /recordings/stop/{id}): its media ends at once, the files are then
// closed and finalised in the background. COMPOSED answers "stopped" at once, as OpenVidu does
// (recordingStatusChanged says "ready" later); INDIVIDUAL answers "ready" when the files were
// final within Config.StopWait, else "stopped".
func (r *Recorder) Stop(id string) (session.RecordingInfo, error) {
	return r.stop(id, "recordingStoppedByServer", true)
}

func (r *Recorder) stop(id, reason string, wait bool) (session.RecordingInfo, error) {
	// The recording ends when the stop is asked for: closing the files can take seconds on a
	// busy machine, and counting them would pad a COMPOSED mix with black and silence.
	stoppedAt := r.now()
	r.mu.Lock()
	x := r.recs[id]
	switch {
	case x == nil:
		r.mu.Unlock()
		return session.RecordingInfo{}, errorf(session.KindNotFound, "recording %s not found", id)
	case x.info.Status == session.RecordingStarting:
		r.mu.Unlock()
		return session.RecordingInfo{}, errorf(session.KindNotAcceptable, "recording %s is still starting", id)
	case x.info.Status != session.RecordingStarted:
		r.mu.Unlock()
		return session.RecordingInfo{}, errorf(session.KindConflict, "recording %s is not in progress (%s)", id, x.info.Status)
	}
	x.info.Status, x.info.Reason = session.RecordingStopped, reason
	r.release(x)
	r.finals.Add(1)
	r.mu.Unlock()

	if x.live != nil {
		x.live.halt() // no segment past the stop starts while the files close
	}
	// Only the taps are removed here. Closing the files waits for each writer to drain its queue
	// and to write its index, and saving the status syncs a file: on a loaded machine that took
	// 8 s, which the answer must not wait for (nor the event loop, for an automatic stop).
	x.detach()
	r.mu.Lock()
	x.info.Duration = stoppedAt.Sub(x.info.CreatedAt).Seconds()
	info := x.info
	r.mu.Unlock()
	if err := r.s.RecordingStatus(info); err != nil {
		r.log.Warn("recording status not delivered", "recording", id, "error", err)
	}
	r.log.Info("recording stopped", "recording", id, "reason", reason)
	go func() {
		defer r.finals.Done()
		x.closeAll()
		r.save(x)
		r.finalise(x)
	}()
	if wait && !composed(info.Props) {
		// INDIVIDUAL: the zip takes a moment, and the answer can say ready. COMPOSED answers
		// stopped at once, as OpenVidu does; recordingStatusChanged says when it is ready.
		select {
		case <-x.final:
		case <-time.After(r.cfg.StopWait):
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return x.info, nil
}

// release forgets x as its session's recording. Caller holds r.mu.
func (r *Recorder) release(x *rec) {
	if r.active[x.info.Session] == x {
		delete(r.active, x.info.Session)
	}
	if t := r.autostop[x.info.Session]; t != nil {
		t.Stop()
		delete(r.autostop, x.info.Session)
	}
}

// fail ends a recording that cannot go on (a write error: full disk, removed folder), keeping its
// files. It runs on the event loop.
func (r *Recorder) fail(x *rec, cause error) {
	failedAt := r.now() // as in stop: the closing time is not recorded time
	r.mu.Lock()
	if x.info.Status != session.RecordingStarted && x.info.Status != session.RecordingStarting {
		r.mu.Unlock()
		return
	}
	x.info.Status, x.info.Reason, x.errText = session.RecordingFailed, "recordingStoppedByServer", cause.Error()
	r.release(x)
	r.failed.Add(1)
	r.mu.Unlock()
	if x.live != nil {
		x.live.abort()
	}
	x.closeAll()
	r.mu.Lock()
	x.info.Duration = failedAt.Sub(x.info.CreatedAt).Seconds()
	x.info.Size = dirSize(x.work)
	info := x.info
	r.mu.Unlock()
	r.save(x)
	close(x.final)
	r.log.Error("recording failed", "recording", x.info.ID, "session", x.info.Session, "error", cause)
	if err := r.s.RecordingStatus(info); err != nil {
		r.log.Warn("recording status not delivered", "recording", x.info.ID, "error", err)
	}
}

func (r *Recorder) save(x *rec) {
	r.mu.Lock()
	d := toDisk(x.info, x.errText)
	r.mu.Unlock()
	if err := saveMeta(x.dir, d); err != nil {
		r.log.Warn("cannot update recording metadata", "recording", d.ID, "error", err)
	}
}

func dirSize(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			n += fi.Size()
		}
	}
	return n
}

// now is the recorder's clock.
func (r *Recorder) now() time.Time { return r.cfg.now() }
