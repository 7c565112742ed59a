package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley/parley/internal/session"
)

func TestSignature(t *testing.T) {
	key := DefaultKey("MY_SECRET")
	// The value the README's openssl one-liner prints for MY_SECRET.
	if string(key) != "b1b2e4b1a461ef2e9512ec715d1fcc56715e857cd963dba9fbc573993f8eae9f" {
		t.Fatalf("DefaultKey(MY_SECRET) = %s", key)
	}
	at := time.Unix(1_700_000_000, 0)
	body := []byte(`{"a":1}`)
	sig := Sign(key, at, body)
	if sig != "t=1700000000,v1=63c3bcd91d227b853b364c5a8c33700118b66058a587e5aff17b636cb02cc056" {
		t.Fatalf("Sign = %s", sig)
	}
	cases := []struct {
		name   string
		key    []byte
		header string
		body   string
		now    time.Time
		want   error
	}{
		{"valid", key, sig, `{"a":1}`, at.Add(time.Minute), nil},
		{"body changed", key, sig, `{"a":2}`, at, ErrBadSignature},
		{"other key", []byte("x"), sig, `{"a":1}`, at, ErrBadSignature},
		{"replayed later", key, sig, `{"a":1}`, at.Add(time.Hour), ErrStale},
		{"garbage", key, "v1=zz", `{"a":1}`, at, ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.key, tc.header, []byte(tc.body), tc.now, 5*time.Minute); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// receiver is a test endpoint: it answers with status() and records accepted bodies in order.
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	key    []byte
	status atomic.Int32 // 0: 200
	hangup atomic.Bool  // close the connection without answering

	mu       sync.Mutex
	attempts int
	bodies   []map[string]any
	ids      []string
	changed  chan struct{}
}

func newReceiver(t testing.TB, key []byte) *receiver {
	r := &receiver{t: t, key: key, changed: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.attempts++
	r.mu.Unlock()
	defer r.notify()
	if r.hangup.Load() {
		c, _, _ := w.(http.Hijacker).Hijack()
		_ = c.Close()
		return
	}
	if st := r.status.Load(); st != 0 {
		w.WriteHeader(int(st))
		return
	}
	if err := Verify(r.key, req.Header.Get(SignatureHeader), body, time.Now(), time.Minute); err != nil {
		r.t.Errorf("signature: %v", err)
	}
	if req.Header.Get("Content-Type") != "application/json" || req.Header.Get("Authorization") != "Bearer abc" {
		r.t.Errorf("headers %v", req.Header)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		r.t.Errorf("body %s: %v", body, err)
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, m)
	r.ids = append(r.ids, req.Header.Get(EventIDHeader))
	r.mu.Unlock()
}

func (r *receiver) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// waitUntil polls cond, with the receiver's lock held, whenever the receiver saw a request and
// every few milliseconds (the sender's counters move without a request), until a deadline.
func (r *receiver) waitUntil(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-tick.C:
		case <-deadline:
			r.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// run starts s and returns a stop func that ends Run and returns its error.
func run(t testing.TB, s *Sender) func() error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error { once.Do(func() { cancel(); err = <-done }); return err }
	t.Cleanup(func() { _ = stop() })
	return stop
}

func newSender(t testing.TB, r *receiver, tweak func(*Config)) *Sender {
	t.Helper()
	cfg := Config{Endpoint: r.srv.URL + "/hook?token=t0ps3cret", Headers: http.Header{"Authorization": {"Bearer abc"}},
		Events: []string{"sessionCreated", "signalSent", "participantJoined"}, Key: r.key,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signal returns the n-th test event: a signal of session "s", numbered by its timestamp.
func signal(n int) session.Event {
	return session.Event{Kind: session.SignalSent, Session: "s", Time: time.Now(), SessionCreatedAt: time.UnixMilli(int64(n)),
		Signal: &session.Signal{Type: "signal:n", Data: "x", To: []session.ConnectionID{"con_A"}}}
}

func seqOf(r *receiver) []string {
	var out []string
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bodies {
		out = append(out, b["uniqueSessionId"].(string))
	}
	return out
}

func wantSeq(n int) []string {
	var out []string
	for i := range n {
		out = append(out, "s_"+itoa(i))
	}
	return out
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestDeliversInOrderSignedAndFiltered(t *testing.T) {
	r := newReceiver(t, []byte("k"))
	s := newSender(t, r, nil)
	run(t, s)
	s.Listen(session.Event{Kind: session.StreamPropertyChanged, Session: "s"}) // never a webhook
	s.Listen(session.Event{Kind: session.ParticipantLeft, Session: "s"})       // not in Events
	for i := range 50 {
		s.Listen(signal(i))
	}
	r.waitUntil("50 events", func() bool { return s.Stats().Delivered == 50 })
	if got := seqOf(r); strings.Join(got, ",") != strings.Join(wantSeq(50), ",") {
		t.Fatalf("order %v", got)
	}
	if r.bodies[0]["event"] != "signalSent" || r.bodies[0]["type"] != "n" {
		t.Fatalf("body %v", r.bodies[0])
	}
	if r.ids[0] == r.ids[1] || !strings.HasSuffix(r.ids[1], "-2") {
		t.Fatalf("event ids %v", r.ids[:2])
	}
	if st := s.Stats(); st.Delivered != 50 || st.FailedAttempts != 0 || st.LatencySum <= 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestOutageThenRecovery: the endpoint fails (503, then dropped connections) while events keep
// coming; once it answers, every event arrives once, in order.
func TestOutageThenRecovery(t *testing.T) {
	for _, mode := range []string{"503", "hangup"} {
		t.Run(mode, func(t *testing.T) {
			r := newReceiver(t, []byte("k"))
			if mode == "503" {
				r.status.Store(503)
			} else {
				r.hangup.Store(true)
			}
			s := newSender(t, r, nil)
			run(t, s)
			for i := range 10 {
				s.Listen(signal(i))
			}
			r.waitUntil("retries", func() bool { return r.attempts >= 5 })
			for i := 10; i < 20; i++ {
				s.Listen(signal(i))
			}
			r.status.Store(0)
			r.hangup.Store(false)
			r.waitUntil("20 events", func() bool { return s.Stats().Delivered == 20 })
			if got := seqOf(r); strings.Join(got, ",") != strings.Join(wantSeq(20), ",") {
				t.Fatalf("order %v", got)
			}
			st := s.Stats()
			if st.Delivered != 20 || st.FailedAttempts < 5 || st.Dropped != [numDropReasons]uint64{} {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestDownForGood: events expire after RetryTimeout and an overflowing queue drops the newest;
// both are counted, and Listen never blocks.
func TestDownForGood(t *testing.T) {
	r := newReceiver(t, []byte("k"))
	r.status.Store(503)
	s := newSender(t, r, func(c *Config) { c.QueueSize = 4; c.RetryTimeout = 200 * time.Millisecond })
	run(t, s)
	// Listen never waits for the stuck sender: the queue_full drops below show it dropped instead.
	for i := range 100 {
		s.Listen(signal(i))
	}
	r.waitUntil("every event dropped", func() bool {
		st := s.Stats()
		return st.Dropped[DropQueueFull]+st.Dropped[DropExpired] == 100
	})
	st := s.Stats()
	if st.Dropped[DropQueueFull] < 90 || st.Dropped[DropExpired] < 1 || st.Delivered != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRejectedIsNotRetried(t *testing.T) {
	r := newReceiver(t, []byte("k"))
	r.status.Store(400)
	s := newSender(t, r, nil)
	run(t, s)
	s.Listen(signal(0))
	s.Listen(signal(1))
	r.waitUntil("two attempts", func() bool { return r.attempts == 2 })
	r.waitUntil("two drops", func() bool { return s.Stats().Dropped[DropRejected] == 2 })
	if st := s.Stats(); st.FailedAttempts != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestShutdownFlushes(t *testing.T) {
	t.Run("endpoint up: everything queued is delivered before Run returns", func(t *testing.T) {
		r := newReceiver(t, []byte("k"))
		s := newSender(t, r, nil)
		for i := range 30 {
			s.Listen(signal(i)) // queued before Run even starts
		}
		stop := run(t, s)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := seqOf(r); len(got) != 30 {
			t.Fatalf("delivered %d of 30 before Run returned", len(got))
		}
	})
	t.Run("endpoint down: Run gives up at the flush deadline", func(t *testing.T) {
		r := newReceiver(t, []byte("k"))
		r.status.Store(503)
		s := newSender(t, r, func(c *Config) { c.FlushTimeout = 300 * time.Millisecond })
		for i := range 5 {
			s.Listen(signal(i))
		}
		stop := run(t, s)
		r.waitUntil("a failed attempt", func() bool { return r.attempts > 0 })
		// Without the deadline Run would retry for RetryTimeout (60 s); its error says it cut them.
		if err := stop(); !errors.Is(err, errFlushDeadline) {
			t.Fatalf("Run = %v, want the flush deadline", err)
		}
		if st := s.Stats(); st.Dropped[DropShutdown] != 5 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestBadEndpoint(t *testing.T) {
	for _, ep := range []string{"", "ftp://x", "http://", "localhost:8080/hook"} {
		if _, err := New(Config{Endpoint: ep}, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		}
	}
}
