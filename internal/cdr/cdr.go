// Package cdr writes OpenVidu's call detail record (OPENVIDU_CDR, protocol note §11): every
// session event OpenVidu records, as one JSON line {"<eventName>": {fields}} in files under
// OPENVIDU_CDR_PATH, rolled daily like OpenVidu's (CDR.<yyyy-MM-dd>_<startup ms>.log) and also when
// a file grows past MaxSize, keeping the newest Keep files.
//
// It owns a bounded queue and the one goroutine that writes the files; Listen never blocks the
// session model (a full queue drops the event and counts it). It imports session and eventjson,
// never api, signaling or edge.
package cdr

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/parley/parley/internal/eventjson"
	"github.com/parley/parley/internal/session"
)

// Config configures a Writer. Zero values take the defaults named on each field.
type Config struct {
	// Dir is OPENVIDU_CDR_PATH; created if missing.
	Dir string
	// MaxSize rolls the file over when a line would take it past this many bytes (default 100 MiB).
	MaxSize int64
	// Keep is how many files are kept; older ones are deleted at each roll-over (default 30).
	Keep int
	// QueueSize bounds the events waiting to be written (default 4096).
	QueueSize int
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Stats are the writer's counters since start.
type Stats struct {
	// Written counts lines written.
	Written uint64
	// Dropped counts events lost to a full queue or a failed write.
	Dropped uint64
}

// Writer writes the CDR files. Listen is safe from any goroutine; Run is called once.
type Writer struct {
	cfg     Config
	log     *slog.Logger
	startup string // startup time in ms, part of every file name as in OpenVidu
	queue   chan session.Event

	written, dropped atomic.Uint64

	// Owned by the Run goroutine.
	f          *os.File
	w          *bufio.Writer
	day        string
	index      int
	size       int64
	pending    uint64 // lines buffered since the last flush
	lastLog    time.Time
	logDropped uint64
}

// New creates the directory and returns a Writer; the first file is opened by the first event.
func New(cfg Config, log *slog.Logger) (*Writer, error) {
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = 100 << 20
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 30
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// Call records name who talked to whom: not for other local users.
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("cdr directory (OPENVIDU_CDR_PATH): %w", err)
	}
	return &Writer{cfg: cfg, log: log, startup: strconv.FormatInt(cfg.Now().UnixMilli(), 10),
		queue: make(chan session.Event, cfg.QueueSize)}, nil
}

// Listen queues e if OpenVidu records its kind; it never blocks (a session.Listener).
func (w *Writer) Listen(e session.Event) {
	if _, ok := eventjson.Name(e.Kind); !ok {
		return
	}
	select {
	case w.queue <- e:
	default:
		w.dropped.Add(1)
	}
}

// Stats returns the counters.
func (w *Writer) Stats() Stats { return Stats{Written: w.written.Load(), Dropped: w.dropped.Load()} }

// Run writes queued events until ctx ends, then writes what is still queued and closes the file.
// Lines are buffered while events keep coming and flushed whenever the queue runs dry, so a
// burst costs few writes and a quiet file is never behind.
func (w *Writer) Run(ctx context.Context) error {
	defer w.close()
	for {
		select {
		case e := <-w.queue:
			w.write(e)
		case <-ctx.Done():
			for {
				select {
				case e := <-w.queue:
					w.write(e)
				default:
					return nil
				}
			}
		}
		if len(w.queue) == 0 {
			w.flush()
			w.report(nil)
		}
	}
}

func (w *Writer) write(e session.Event) {
	line, ok := eventjson.CDRLine(e)
	if !ok {
		return
	}
	line = append(line, '\n')
	if err := w.rollover(int64(len(line))); err != nil {
		w.pending = 0 // nothing is buffered without a file
		w.fail(err)
		return
	}
	n, err := w.w.Write(line)
	w.size += int64(n)
	w.pending++
	if err != nil {
		w.fail(err)
	}
}

// rollover opens the file the next line belongs in: a new day, or a full file, starts another.
// After a failed write the file is closed and the same one reopened. A line longer than MaxSize
// gets a file of its own rather than a loop.
func (w *Writer) rollover(next int64) error {
	day := w.cfg.Now().Format("2006-01-02")
	full := func() bool { return w.size > 0 && w.size+next > w.cfg.MaxSize }
	for w.f == nil || day != w.day || full() {
		switch {
		case day != w.day:
			w.index = 0
		case full():
			w.index++
		}
		if err := w.open(day); err != nil {
			return err
		}
	}
	return nil
}

// open closes the current file and opens (appending) the one of day and w.index.
func (w *Writer) open(day string) error {
	w.close()
	w.day = day
	name := "CDR." + day + "_" + w.startup
	if w.index > 0 {
		name += "." + strconv.Itoa(w.index)
	}
	f, err := os.OpenFile(filepath.Join(w.cfg.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return err
	}
	w.f, w.w, w.size = f, bufio.NewWriterSize(f, 64<<10), fi.Size()
	if w.size == 0 {
		w.prune() // a new file: one more to keep
	}
	return nil
}

// prune deletes the oldest CDR files beyond Keep.
func (w *Writer) prune() {
	files, err := w.files()
	if err != nil || len(files) <= w.cfg.Keep {
		return
	}
	for _, f := range files[:len(files)-w.cfg.Keep] {
		if err := os.Remove(filepath.Join(w.cfg.Dir, f.name)); err != nil {
			w.report(err)
		}
	}
}

// fileInfo is a CDR file and its place in time: CDR.<day>_<startup ms>[.<index>].log. Names sort
// by these fields, not as text (".10" sorts before ".2"); modification times are no better, as
// files rolled within one clock tick share one.
type fileInfo struct {
	name           string
	day            string
	startup, index int64
}

func parseName(n string) fileInfo {
	f := fileInfo{name: n}
	stem := strings.TrimSuffix(strings.TrimPrefix(n, "CDR."), ".log")
	day, rest, _ := strings.Cut(stem, "_")
	start, idx, _ := strings.Cut(rest, ".")
	f.day = day
	f.startup, _ = strconv.ParseInt(start, 10, 64)
	f.index, _ = strconv.ParseInt(idx, 10, 64)
	return f
}

// files lists the CDR files, oldest first.
func (w *Writer) files() ([]fileInfo, error) {
	entries, err := os.ReadDir(w.cfg.Dir)
	if err != nil {
		return nil, err
	}
	var out []fileInfo
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(n, "CDR.") || !strings.HasSuffix(n, ".log") {
			continue
		}
		out = append(out, parseName(n))
	}
	slices.SortFunc(out, func(a, b fileInfo) int {
		return cmp.Or(strings.Compare(a.day, b.day), cmp.Compare(a.startup, b.startup),
			cmp.Compare(a.index, b.index), strings.Compare(a.name, b.name))
	})
	return out, nil
}

// Files returns the names of the CDR files, oldest first.
func (w *Writer) Files() ([]string, error) {
	files, err := w.files()
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, f.name)
	}
	return names, err
}

// Handler is GET /openvidu/cdr for requests authorized says carry the REST credentials; others get
// 401 with OpenVidu's Basic challenge.
func (w *Writer) Handler(authorized func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !authorized(r) {
			rw.Header().Set("WWW-Authenticate", `Basic realm="OpenVidu"`)
			http.Error(rw, "wrong or missing credentials", http.StatusUnauthorized)
			return
		}
		w.ServeHTTP(rw, r)
	})
}

// ServeHTTP answers GET /openvidu/cdr with the JSON array of file names, as OpenVidu does. The
// caller authenticates the request (Handler).
func (w *Writer) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	names, err := w.Files()
	if err != nil {
		http.Error(rw, "cannot list the CDR directory", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(names)
}

// flush writes the buffered lines; if that fails they are lost, and counted.
func (w *Writer) flush() {
	if w.w == nil || w.pending == 0 {
		return
	}
	if err := w.w.Flush(); err != nil {
		w.fail(err)
		return
	}
	w.written.Add(w.pending)
	w.pending = 0
}

func (w *Writer) close() {
	if w.f == nil {
		return
	}
	w.flush()
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			w.report(err)
		}
	}
	w.f, w.w = nil, nil
}

// fail counts the buffered lines as lost and drops the file, which the next line reopens: a
// bufio.Writer that failed once fails forever.
func (w *Writer) fail(err error) {
	w.dropped.Add(max(w.pending, 1))
	w.pending = 0
	if w.f != nil {
		_ = w.f.Close()
		w.f, w.w = nil, nil
	}
	w.report(err)
}

// report logs err and new drops, at most once every 10 s: a full disk fails every line, and a
// full queue every event.
func (w *Writer) report(err error) {
	d := w.dropped.Load()
	if err == nil && d == w.logDropped {
		return
	}
	if now := time.Now(); now.Sub(w.lastLog) >= 10*time.Second {
		w.lastLog = now
		w.log.Error("cdr events lost", "dir", w.cfg.Dir, "error", err, "dropped", d-w.logDropped)
		w.logDropped = d
	}
}
