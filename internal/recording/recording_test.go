package recording

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/poll"
	"github.com/parley/parley/internal/recording/testmedia"
	"github.com/parley/parley/internal/session"
	"github.com/parley/parley/internal/sfu"
)

// fakeSessions is a hand-written session model: one table of sessions, and the statuses it was told.
type fakeSessions struct {
	mu       sync.Mutex
	targets  map[session.SessionID]*session.RecordingTarget
	statuses []session.RecordingInfo
	closed   []string
	// pulls are the other nodes' streams brought here, by stream; unpullable ones fail.
	pulls      map[session.StreamID]*pulled
	unpullable map[session.StreamID]bool
}

// pulled is another node's stream brought here; released says whether the recorder let it go.
type pulled struct {
	noMedia
	released atomic.Bool
}

func (p *pulled) Close() { p.released.Store(true) }

func newFakeSessions() *fakeSessions {
	return &fakeSessions{targets: map[session.SessionID]*session.RecordingTarget{}, pulls: map[session.StreamID]*pulled{},
		unpullable: map[session.StreamID]bool{}}
}

func (f *fakeSessions) PullStream(_ context.Context, id session.SessionID, sid session.StreamID) (session.PublishedMedia, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unpullable[sid] || f.pulls[sid] != nil {
		return nil, errors.New("the link to its node is down")
	}
	p := &pulled{}
	f.pulls[sid] = p
	return p, nil
}

// pull returns how stream sid was pulled: nil if never.
func (f *fakeSessions) pull(sid session.StreamID) *pulled {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pulls[sid]
}

func (f *fakeSessions) add(id session.SessionID, participants int, streams ...session.RecordableStream) *session.RecordingTarget {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &session.RecordingTarget{ID: id, CreatedAt: time.UnixMilli(1_700_000_000_000), Participants: participants, Streams: streams,
		Props: session.Properties{MediaMode: "ROUTED", RecordingMode: "MANUAL"}}
	f.targets[id] = t
	return t
}

// publish adds a stream to session id, as one published during the call.
func (f *fakeSessions) publish(id session.SessionID, rs session.RecordableStream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.targets[id].Streams = append(f.targets[id].Streams, rs)
}

func (f *fakeSessions) RecordingTarget(id session.SessionID) (session.RecordingTarget, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.targets[id]
	if t == nil {
		return session.RecordingTarget{}, &session.Error{Kind: session.KindNotFound, Msg: "no session"}
	}
	return *t, nil
}

func (f *fakeSessions) RecordableStream(id session.SessionID, sid session.StreamID) (session.RecordableStream, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.targets[id]; t != nil {
		for _, s := range t.Streams {
			if s.ID == sid {
				return s, true
			}
		}
	}
	return session.RecordableStream{}, false
}

func (f *fakeSessions) RecordingStatus(r session.RecordingInfo) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.targets[r.Session]; t != nil {
		switch r.Status {
		case session.RecordingStarted:
			t.Recording = r.ID
		case session.RecordingStopped, session.RecordingFailed:
			t.Recording = ""
		}
	}
	f.statuses = append(f.statuses, r)
	return nil
}

func (f *fakeSessions) CloseIfEmpty(id session.SessionID, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = append(f.closed, string(id)+":"+reason)
}

func (f *fakeSessions) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range f.statuses {
		out = append(out, s.Status)
	}
	return out
}

// noMedia is a published stream's handle in the model; the recorder's sources come from elsewhere.
type noMedia struct{}

func (noMedia) Tracks() (audio, video bool)                         { return true, true }
func (noMedia) AddCandidate(session.Candidate) error                { return nil }
func (noMedia) Renegotiate(context.Context, string) (string, error) { return "", nil }
func (noMedia) Path() session.MediaPath                             { return session.MediaPath{} }
func (noMedia) Close()                                              {}

// fakeSource stands in for an SFU publisher: the test pushes packets into the taps it was given.
type fakeSource struct {
	mu   sync.Mutex
	taps map[string]sfu.Tap
}

func (s *fakeSource) HasAudio() bool { return true }
func (s *fakeSource) HasVideo() bool { return true }
func (s *fakeSource) Codec(kind string) (webrtc.RTPCodecCapability, bool) {
	if kind == "video" {
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, true
	}
	return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, true
}
func (s *fakeSource) AddTap(kind string, t sfu.Tap) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.taps[kind] = t
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.taps[kind] == t {
			delete(s.taps, kind)
		}
	}
}
func (s *fakeSource) RequestKeyframe() {}

// feed sends media to whatever taps are attached.
func (s *fakeSource) feed(t *testing.T, m testMedia, from, to time.Duration) {
	t.Helper()
	s.mu.Lock()
	vt, at := s.taps["video"], s.taps["audio"]
	s.mu.Unlock()
	if vt == nil || at == nil {
		t.Fatal("stream is not tapped")
	}
	m.feedTaps(vt, at, vt.(*tap).w, from, to)
}

type harness struct {
	t       *testing.T
	dir     string
	s       *fakeSessions
	r       *Recorder
	sources map[session.StreamID]*fakeSource
	cfg     Config
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, s: newFakeSessions(), sources: map[session.StreamID]*fakeSource{}, cfg: cfg}
	if h.cfg.Path == "" {
		h.cfg.Path = t.TempDir()
	}
	h.dir = h.cfg.Path
	h.cfg.sourceOf = func(rs session.RecordableStream) source {
		src := h.sources[rs.ID]
		if src == nil {
			return nil
		}
		return src
	}
	h.r = h.newRecorder()
	return h
}

func (h *harness) newRecorder() *Recorder {
	r, err := New(h.cfg, h.s, slog.New(slog.DiscardHandler))
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// run runs the recorder's event loop until the test ends, and waits for it (and so for every
// file it writes) before the test's folders are removed.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.r.Run(ctx) }()
	h.t.Cleanup(func() { cancel(); <-done })
}

func (h *harness) stream(id session.StreamID, conn session.ConnectionID, record bool) session.RecordableStream {
	h.sources[id] = &fakeSource{taps: map[string]sfu.Tap{}}
	return session.RecordableStream{ID: id, Connection: conn, Record: record, ServerData: "UserA",
		Media:     session.MediaOptions{HasAudio: true, HasVideo: true, TypeOfVideo: "CAMERA", VideoDimensions: `{"width":320,"height":240}`},
		Publisher: noMedia{}} // only non-nil: sources come from h.sources
}

func kindOf(err error) session.Kind {
	var se *session.Error
	if errors.As(err, &se) {
		return se.Kind
	}
	return 0
}

var individual = session.RecordingProperties{Name: "meeting", HasAudio: true, HasVideo: true, OutputMode: "INDIVIDUAL"}

func TestStartRefusals(t *testing.T) {
	h := newHarness(t, Config{})
	h.s.add("empty", 0)
	relayed := h.s.add("relayed", 1)
	relayed.Props.MediaMode = "RELAYED"
	h.s.add("ok", 1)
	composed := session.RecordingProperties{HasAudio: true, HasVideo: true, OutputMode: "COMPOSED", RecordingLayout: "BEST_FIT"}
	custom := composed
	custom.RecordingLayout = "CUSTOM"
	for _, tc := range []struct {
		name string
		sid  session.SessionID
		p    session.RecordingProperties
		want session.Kind
	}{
		{"unknown session", "nope", individual, session.KindNotFound},
		{"nobody connected", "empty", individual, session.KindNotAcceptable},
		{"relayed", "relayed", individual, session.KindConflict},
		{"composed without a composer", "ok", composed, session.KindUnsupported},
		{"custom layout", "ok", custom, session.KindUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.r.Start(tc.sid, tc.p); kindOf(err) != tc.want {
				t.Fatalf("got %v (kind %d), want kind %d", err, kindOf(err), tc.want)
			}
		})
	}
	if n := len(h.r.List()); n != 0 {
		t.Fatalf("refused starts left %d recordings", n)
	}
}

func TestIndividualLifecycle(t *testing.T) {
	m := makeMedia(t, 2)
	h := newHarness(t, Config{AutostopTimeout: time.Hour})
	a := h.stream("str_CAM_Aaaa_con_A", "con_A", true)
	skipped := h.stream("str_CAM_Bbbb_con_B", "con_B", false) // record:false
	h.s.add("ses_A", 2, a, skipped)

	info, err := h.r.Start("ses_A", individual)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != "ses_A" || info.Name != "meeting" || info.Status != session.RecordingStarted || info.File != "" {
		t.Fatalf("started: %+v", info)
	}
	if _, err := h.r.Start("ses_A", individual); kindOf(err) != session.KindConflict {
		t.Fatalf("second start: %v, want conflict", err)
	}
	if len(h.sources["str_CAM_Bbbb_con_B"].taps) != 0 {
		t.Fatal("a record:false connection was tapped")
	}
	if st := h.r.Stats(); st.Active != 1 || st.Streams != 1 {
		t.Fatalf("stats while recording: %+v", st)
	}
	h.sources["str_CAM_Aaaa_con_A"].feed(t, m, 0, 2*time.Second)
	if err := h.r.Delete("ses_A"); kindOf(err) != session.KindConflict {
		t.Fatalf("delete while recording: %v, want conflict", err)
	}

	info, err = h.r.Stop("ses_A")
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != session.RecordingReady || info.File != "meeting.zip" || info.Size <= 0 || info.Reason != "recordingStoppedByServer" {
		t.Fatalf("stopped: %+v", info)
	}
	if info.Duration < 1.5 || info.Duration > 2.5 {
		t.Errorf("duration %.2f s, want about 2", info.Duration)
	}
	if got := h.s.seen(); !slices.Equal(got, []string{"started", "stopped", "ready"}) {
		t.Errorf("statuses told to the model: %v", got)
	}
	if _, err := h.r.Stop("ses_A"); kindOf(err) != session.KindConflict {
		t.Fatalf("second stop: %v, want conflict", err)
	}

	// The archive holds the sync JSON and one WebM: OpenVidu's layout.
	zr, err := zip.OpenReader(filepath.Join(h.dir, "ses_A", "meeting.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	var sj syncJSON
	for _, f := range zr.File {
		names = append(names, f.Name)
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		switch filepath.Ext(f.Name) {
		case ".json":
			if err := json.Unmarshal(b, &sj); err != nil {
				t.Fatal(err)
			}
		case ".webm":
			out := filepath.Join(t.TempDir(), f.Name)
			_ = os.WriteFile(out, b, 0o644)
			p := ffprobe(t, out)
			if vc, vf := p.Stream("video"); vc != "vp8" || vf < 55 {
				t.Errorf("%s video: %s, %d frames", f.Name, vc, vf)
			}
			if ac, af := p.Stream("audio"); ac != "opus" || af < 90 {
				t.Errorf("%s audio: %s, %d frames", f.Name, ac, af)
			}
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"meeting.json", "str_CAM_Aaaa_con_A.webm"}) {
		t.Fatalf("zip holds %v", names)
	}
	if sj.ID != "ses_A" || len(sj.Files) != 1 || sj.Files[0].ConnectionID != "con_A" || sj.Files[0].ServerData != "UserA" ||
		!sj.Files[0].HasVideo || sj.Files[0].TypeOfVideo != "CAMERA" || sj.Files[0].EndTimeOffset-sj.Files[0].StartTimeOffset < 1500 {
		t.Fatalf("sync json: %+v", sj)
	}

	// Downloads stay inside the folder.
	if p, err := h.r.File("ses_A", "meeting.zip"); err != nil || filepath.Base(p) != "meeting.zip" {
		t.Fatalf("file: %q %v", p, err)
	}
	for _, bad := range [][2]string{{"ses_A", "../ses_A/meeting.zip"}, {"ses_A", ".recording.ses_A"}, {"..", "meeting.zip"}, {"ses_A", "nope.zip"}} {
		if _, err := h.r.File(bad[0], bad[1]); kindOf(err) != session.KindNotFound {
			t.Errorf("File(%q, %q) = %v, want not found", bad[0], bad[1], err)
		}
	}

	// A second recording of the session gets the next id; the list keeps both, oldest first.
	if info, err := h.r.Start("ses_A", individual); err != nil || info.ID != "ses_A~1" {
		t.Fatalf("next recording: %+v %v", info, err)
	}
	if l := h.r.List(); len(l) != 2 || l[0].ID != "ses_A" || l[1].ID != "ses_A~1" {
		t.Fatalf("list: %+v", l)
	}
	if _, err := h.r.Stop("ses_A~1"); err != nil {
		t.Fatal(err)
	}
	if err := h.r.Delete("ses_A"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.r.Get("ses_A"); kindOf(err) != session.KindNotFound {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "ses_A")); !os.IsNotExist(err) {
		t.Fatalf("folder left after delete: %v", err)
	}
}

// TestRestartMarksUnfinishedFailed leaves a recording running, as a crash would, and starts a new
// recorder on the same folder.
func TestRestartMarksUnfinishedFailed(t *testing.T) {
	m := makeMedia(t, 2)
	h := newHarness(t, Config{AutostopTimeout: time.Hour})
	h.s.add("ses_C", 1, h.stream("str_CAM_Cccc_con_C", "con_C", true))
	if _, err := h.r.Start("ses_C", individual); err != nil {
		t.Fatal(err)
	}
	h.sources["str_CAM_Cccc_con_C"].feed(t, m, 0, 2*time.Second)
	track := filepath.Join(h.dir, "ses_C", "str_CAM_Cccc_con_C.webm")
	waitUntil(t, "a second of media on disk", func() bool {
		p, err := testmedia.ProbeFile(track)
		_, vf := p.Stream("video")
		return err == nil && vf >= 20 && p.Duration() >= 1
	})
	// Snapshot the folder as the killed process left it, then read it with a fresh recorder.
	crashed := t.TempDir()
	copyDir(t, filepath.Join(h.dir, "ses_C"), filepath.Join(crashed, "ses_C"))
	h2 := &harness{t: t, s: newFakeSessions(), cfg: Config{Path: crashed}}
	r2 := h2.newRecorder()
	info, err := r2.Get("ses_C")
	if err != nil {
		t.Fatal(err)
	}
	if info.Status != session.RecordingFailed {
		t.Fatalf("after restart: %+v, want failed", info)
	}
	if l := r2.List(); len(l) != 1 {
		t.Fatalf("list after restart: %+v", l)
	}
	p := ffprobe(t, filepath.Join(crashed, "ses_C", "str_CAM_Cccc_con_C.webm"))
	if vc, vf := p.Stream("video"); vc != "vp8" || vf < 20 || p.Duration() < 1 {
		t.Fatalf("kept track after the crash: %+v", p)
	}
	if err := r2.Delete("ses_C"); err != nil {
		t.Fatalf("a failed recording can be deleted: %v", err)
	}
	if _, err := h.r.Stop("ses_C"); err != nil {
		t.Fatal(err)
	}
}

// enospcWriter accepts limit bytes, then fails as a full disk does.
type enospcWriter struct {
	mu    sync.Mutex
	n     int
	limit int
}

func (w *enospcWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n+len(p) > w.limit {
		return 0, &os.PathError{Op: "write", Path: "track.webm", Err: syscall.ENOSPC}
	}
	w.n += len(p)
	return len(p), nil
}

func TestFullDiskFailsTheRecording(t *testing.T) {
	m := makeMedia(t, 2)
	h := newHarness(t, Config{AutostopTimeout: time.Hour})
	h.cfg.createFile = func(path string) (*syncFile, error) {
		f, err := createSyncFile(path)
		if err == nil {
			f.w = &enospcWriter{limit: 30 << 10}
		}
		return f, err
	}
	h.r = h.newRecorder()
	h.s.add("ses_D", 1, h.stream("str_CAM_Dddd_con_D", "con_D", true))
	if _, err := h.r.Start("ses_D", individual); err != nil {
		t.Fatal(err)
	}
	h.run()
	h.sources["str_CAM_Dddd_con_D"].feed(t, m, 0, 2*time.Second)
	waitUntil(t, "the model to be told the recording failed", func() bool {
		return slices.Equal(h.s.seen(), []string{"started", "failed"})
	})
	if info, _ := h.r.Get("ses_D"); info.Status != session.RecordingFailed {
		t.Fatalf("recording after the full disk: %+v", info)
	}
	b, _ := os.ReadFile(filepath.Join(h.dir, "ses_D", metaPrefix+"ses_D"))
	var d diskRecording
	_ = json.Unmarshal(b, &d)
	if d.Status != "failed" || !strings.Contains(d.Error, "no space left") {
		t.Fatalf("metadata after the full disk: %+v", d)
	}
	if st := h.r.Stats(); st.Failed != 1 || st.Active != 0 || st.Streams != 0 {
		t.Fatalf("stats after the failure: %+v", st)
	}
	if _, err := h.r.Stop("ses_D"); kindOf(err) != session.KindConflict {
		t.Fatalf("stop of a failed recording: %v", err)
	}
}

// TestEventsDriveRecording: ALWAYS sessions start on the first publish, new publishers get their
// own file, a re-published stream a -1 suffix, and the last participant leaving stops it.
func TestEventsDriveRecording(t *testing.T) {
	m := makeMedia(t, 1)
	h := newHarness(t, Config{AutostopTimeout: 0})
	a := h.stream("str_CAM_Eeee_con_E", "con_E", true)
	tg := h.s.add("ses_E", 1, a)
	tg.Props.RecordingMode = "ALWAYS"
	tg.Props.DefaultRecording = individual
	h.run()

	h.r.Listen(session.Event{Kind: session.StreamPublished, Session: "ses_E", Stream: a.ID})
	waitUntil(t, "ALWAYS to start a recording", func() bool {
		_, err := h.r.Get("ses_E")
		return err == nil
	})
	h.waitTaps(a.ID, 2)
	h.sources[a.ID].feed(t, m, 0, time.Second)
	// Unpublished, then published again under the same id: a second file.
	h.r.Listen(session.Event{Kind: session.WebRTCConnectionDestroyed, Session: "ses_E", Stream: a.ID})
	h.waitTaps(a.ID, 0)
	h.r.Listen(session.Event{Kind: session.StreamPublished, Session: "ses_E", Stream: a.ID})
	h.waitTaps(a.ID, 2)
	h.sources[a.ID].feed(t, m, 0, time.Second)
	waitUntil(t, "the second file", func() bool {
		_, err := os.Stat(filepath.Join(h.dir, "ses_E", "str_CAM_Eeee_con_E-1.webm"))
		return err == nil
	})

	h.s.mu.Lock()
	tg.Participants, tg.Streams = 0, nil
	h.s.mu.Unlock()
	h.r.Listen(session.Event{Kind: session.ParticipantLeft, Session: "ses_E", Connection: "con_E"})
	waitUntil(t, "autostop", func() bool {
		info, _ := h.r.Get("ses_E")
		return info.Status == session.RecordingReady
	})
	info, _ := h.r.Get("ses_E")
	if info.Reason != "lastParticipantLeft" {
		t.Errorf("reason %q, want lastParticipantLeft (timeout 0)", info.Reason)
	}
	h.s.mu.Lock()
	closed := slices.Clone(h.s.closed)
	h.s.mu.Unlock()
	if !slices.Equal(closed, []string{"ses_E:lastParticipantLeft"}) {
		t.Errorf("sessions closed: %v", closed)
	}
	zr, err := zip.OpenReader(filepath.Join(h.dir, "ses_E", "meeting.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != 3 {
		var n []string
		for _, f := range zr.File {
			n = append(n, f.Name)
		}
		t.Fatalf("zip: %v, want json and two webm", n)
	}
}

// remote makes rs another node's stream: the recorder has to pull it.
func remote(rs session.RecordableStream) session.RecordableStream {
	rs.Publisher, rs.Node = nil, "node-b"
	return rs
}

// A session spanning nodes is recorded whole: another node's streams are pulled to the recording's
// node and recorded like its own, from the start or when they are published; a pull is released
// when its stream leaves or the recording stops; a stream that cannot be brought is left out, the
// rest recorded.
func TestOtherNodesStreamsAreRecorded(t *testing.T) {
	m := makeMedia(t, 1)
	h := newHarness(t, Config{AutostopTimeout: time.Hour})
	a := h.stream("str_CAM_Aaaa_con_A", "con_A", true)
	b := remote(h.stream("str_CAM_Bbbb_con_B", "con_B", true))
	c := remote(h.stream("str_CAM_Cccc_con_C", "con_C", true))
	d := remote(h.stream("str_CAM_Dddd_con_D", "con_D", true))
	skipped := remote(h.stream("str_CAM_Eeee_con_E", "con_E", false)) // record:false
	h.s.unpullable[d.ID] = true
	tg := h.s.add("ses_N", 5, a, b, d, skipped)
	h.run()

	if _, err := h.r.Start("ses_N", individual); err != nil {
		t.Fatal(err)
	}
	// c is published on its node during the recording.
	h.s.mu.Lock()
	tg.Streams = append(tg.Streams, c)
	h.s.mu.Unlock()
	h.r.Listen(session.Event{Kind: session.StreamPublished, Session: "ses_N", Stream: c.ID, Node: "node-b"})
	for _, rs := range []session.RecordableStream{a, b, c} {
		h.waitTaps(rs.ID, 2)
		h.sources[rs.ID].feed(t, m, 0, time.Second)
	}
	if h.s.pull(skipped.ID) != nil {
		t.Fatal("a record:false stream of another node was pulled")
	}

	// c's publisher stops on its node: its file closes and its pull is released.
	h.s.mu.Lock()
	tg.Streams = slices.DeleteFunc(tg.Streams, func(rs session.RecordableStream) bool { return rs.ID == c.ID })
	h.s.mu.Unlock()
	h.r.Listen(session.Event{Kind: session.StreamUnpublished, Session: "ses_N", Stream: c.ID, Node: "node-b"})
	h.waitTaps(c.ID, 0)
	if !h.s.pull(c.ID).released.Load() {
		t.Fatal("c's file closed but its pull was kept")
	}
	if h.s.pull(b.ID).released.Load() {
		t.Fatal("b's pull released while it is recorded")
	}

	if _, err := h.r.Stop("ses_N"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the recording to be ready", func() bool {
		info, _ := h.r.Get("ses_N")
		return info.Status == session.RecordingReady
	})
	if !h.s.pull(b.ID).released.Load() {
		t.Fatal("the recording stopped but b's pull was kept")
	}
	zr, err := zip.OpenReader(filepath.Join(h.dir, "ses_N", "meeting.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	want := []string{"meeting.json", string(a.ID) + ".webm", string(b.ID) + ".webm", string(c.ID) + ".webm"}
	if !slices.Equal(names, want) {
		t.Fatalf("zip: %v, want %v", names, want)
	}
}

// A stream published on another node does not start an ALWAYS recording here: its own node does.
func TestOtherNodesStreamStartsNoRecordingHere(t *testing.T) {
	h := newHarness(t, Config{})
	b := remote(h.stream("str_CAM_Bbbb_con_B", "con_B", true))
	a := h.stream("str_CAM_Aaaa_con_A", "con_A", true)
	for id, rs := range map[session.SessionID]session.RecordableStream{"ses_B": b, "ses_A": a} {
		tg := h.s.add(id, 1, rs)
		tg.Props.RecordingMode, tg.Props.DefaultRecording = "ALWAYS", individual
	}
	h.run()
	h.r.Listen(session.Event{Kind: session.StreamPublished, Session: "ses_B", Stream: b.ID, Node: "node-b"})
	h.r.Listen(session.Event{Kind: session.StreamPublished, Session: "ses_A", Stream: a.ID})
	h.waitTaps(a.ID, 2) // events are handled in order: ses_B's came first
	if _, err := h.r.Get("ses_B"); kindOf(err) != session.KindNotFound {
		t.Fatalf("another node's stream started a recording here: %v", err)
	}
}

// waitTaps waits until stream id has n taps attached (2: recorded, 0: its file closed).
func (h *harness) waitTaps(id session.StreamID, n int) {
	h.t.Helper()
	waitUntil(h.t, fmt.Sprintf("%d taps on %s", n, id), func() bool {
		src := h.sources[id]
		src.mu.Lock()
		defer src.mu.Unlock()
		return len(src.taps) == n
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 15*time.Second, what, cond)
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(from)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
