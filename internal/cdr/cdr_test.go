package cdr

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/session"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func signal(n int) session.Event {
	return session.Event{Kind: session.SignalSent, Session: "s", Time: time.UnixMilli(int64(n)),
		Signal: &session.Signal{Type: "signal", Data: strings.Repeat("x", 50), To: []session.ConnectionID{"con_A"}}}
}

// start runs a writer; stop ends Run, which writes everything queued before returning.
func start(t *testing.T, cfg Config) (*Writer, func()) {
	t.Helper()
	w, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return w, stop
}

// lines reads every CDR file of dir, oldest first, and returns the timestamps of their events.
func lines(t *testing.T, w *Writer) (files []string, stamps []int64) {
	t.Helper()
	files, err := w.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		fh, err := os.Open(filepath.Join(w.cfg.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var rec map[string]struct {
				Timestamp int64 `json:"timestamp"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || len(rec) != 1 {
				t.Fatalf("%s: line %q", f, sc.Text())
			}
			for _, v := range rec {
				stamps = append(stamps, v.Timestamp)
			}
		}
		_ = fh.Close()
	}
	return files, stamps
}

func TestLinesAndShutdown(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.Local)}
	w, stop := start(t, Config{Dir: filepath.Join(t.TempDir(), "cdr"), Now: clk.now})
	w.Listen(session.Event{Kind: session.StreamPropertyChanged, Session: "s"}) // not recorded
	for i := range 100 {
		w.Listen(signal(i))
	}
	stop()
	files, stamps := lines(t, w)
	if len(files) != 1 || !strings.HasPrefix(files[0], "CDR.2026-03-01_") || !strings.HasSuffix(files[0], ".log") {
		t.Fatalf("files %v", files)
	}
	if len(stamps) != 100 || stamps[0] != 0 || stamps[99] != 99 {
		t.Fatalf("%d lines: %v", len(stamps), stamps)
	}
	if st := w.Stats(); st.Written != 100 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Served as OpenVidu's GET /openvidu/cdr: a JSON array of names.
	rec := httptest.NewRecorder()
	w.ServeHTTP(rec, httptest.NewRequest("GET", "/openvidu/cdr", nil))
	var names []string
	if err := json.Unmarshal(rec.Body.Bytes(), &names); err != nil || len(names) != 1 || names[0] != files[0] {
		t.Fatalf("listing %s", rec.Body)
	}
}

func TestRotationBySizeAndDayKeepsNewest(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 1, 23, 0, 0, 0, time.Local)}
	w, stop := start(t, Config{Dir: t.TempDir(), Now: clk.now, MaxSize: 1000, Keep: 3})
	for i := range 40 { // ~190 bytes a line: 5 per file, 8 files, the 3 newest kept
		w.Listen(signal(i))
	}
	stop()
	files, stamps := lines(t, w)
	if len(files) != 3 || len(stamps) != 15 || stamps[0] != 25 || stamps[14] != 39 {
		t.Fatalf("files %v, stamps %v", files, stamps)
	}
	if !strings.HasSuffix(files[2], "_"+w.startup+".7.log") {
		t.Fatalf("newest file %s", files[2])
	}

	// The next day starts a new file, numbered from the day's first.
	clk.set(clk.now().Add(2 * time.Hour))
	w2, stop2 := start(t, Config{Dir: w.cfg.Dir, Now: clk.now, MaxSize: 1000, Keep: 3})
	w2.Listen(signal(100))
	stop2()
	files, _ = lines(t, w2)
	if last := files[len(files)-1]; !strings.HasPrefix(last, "CDR.2026-03-02_") || strings.Count(last, ".") != 2 {
		t.Fatalf("files after midnight %v", files)
	}
}

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	w, err := New(Config{Dir: t.TempDir(), QueueSize: 2}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 { // nothing drains: Run is not started
		w.Listen(signal(i))
	}
	if st := w.Stats(); st.Dropped != 8 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnwritableDirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Dir: filepath.Join(f, "cdr")}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a CDR path under a file must fail at start-up")
	}
}

// TestHandlerAsksForCredentials: GET /openvidu/cdr without the REST credentials is 401 with
// OpenVidu's Basic challenge and lists nothing; with them it lists the files.
func TestHandlerAsksForCredentials(t *testing.T) {
	w, stop := start(t, Config{Dir: t.TempDir()})
	stop()
	h := w.Handler(func(r *http.Request) bool { return r.Header.Get("Authorization") == "Basic ok" })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/openvidu/cdr", nil))
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != `Basic realm="OpenVidu"` || strings.Contains(rec.Body.String(), "[") {
		t.Fatalf("without credentials: %d %q %q", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/openvidu/cdr", nil)
	req.Header.Set("Authorization", "Basic ok")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Fatalf("with credentials: %d %q", rec.Code, rec.Body)
	}
}
