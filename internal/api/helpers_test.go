package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/parley/parley/internal/api"
	"github.com/parley/parley/internal/session"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

const (
	secret = "MY_SECRET"
	wsURL  = "ws://localhost:4443/openvidu"
)

// testConfig is the REST configuration of dev mode.
func testConfig() api.Config {
	return api.Config{Secret: secret, PublicURL: "http://localhost:4443/", HTTPSPort: 4443, SupportDeprecatedAPI: true}
}

// env is one in-process server: the REST API over real HTTP on 127.0.0.1, and the model behind it,
// which works without media for REST-only flows.
type env struct {
	t    *testing.T
	srv  *httptest.Server
	m    *session.Manager
	logs *syncBuffer
}

func newEnv(t *testing.T, cfgs ...api.Config) *env {
	t.Helper()
	cfg := testConfig()
	if len(cfgs) > 0 {
		cfg = cfgs[0]
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := session.NewManager(session.Options{WebSocketURL: wsURL, Log: log})
	srv := httptest.NewServer(api.New(cfg, api.FromManager(m), log))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, m: m, logs: logs}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// obj decodes a JSON object body.
func (r reply) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d: body is not a JSON object: %q", r.status, r.body)
	}
	return m
}

// noAuth, as the user, sends no Authorization header at all.
const noAuth = "\x00"

// do sends one request. With no credentials given it authenticates as OPENVIDUAPP:MY_SECRET; with
// user noAuth it sends none.
func (e *env) do(method, path, body string, hdr ...string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.SetBasicAuth("OPENVIDUAPP", secret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Authorization" && hdr[i+1] == noAuth {
			req.Header.Del("Authorization")
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

func (e *env) mustStatus(want int, method, path, body string) reply {
	e.t.Helper()
	r := e.do(method, path, body)
	if r.status != want {
		e.t.Fatalf("%s %s %s: status %d, want %d: %s", method, path, body, r.status, want, r.body)
	}
	return r
}

// session creates a session with a custom id.
func (e *env) session(id string) {
	e.t.Helper()
	e.mustStatus(200, "POST", "/openvidu/api/sessions", `{"customSessionId":"`+id+`"}`)
}

// connection creates a pending connection and returns its JSON.
func (e *env) connection(sid, body string) map[string]any {
	e.t.Helper()
	return e.mustStatus(200, "POST", "/openvidu/api/sessions/"+sid+"/connection", body).obj(e.t)
}

// join makes a REST connection an active participant, as joinRoom would, and returns its sink.
func (e *env) join(sid string, conn map[string]any, info session.JoinInfo) (*session.Participant, *sink) {
	e.t.Helper()
	s := &sink{}
	c, _, err := e.m.Join(session.SessionID(sid), conn["token"].(string), info, s)
	if err != nil {
		e.t.Fatalf("join: %v", err)
	}
	return c, s
}

// sink records the notifications of one participant. The model calls it under its lock, so a
// REST call that returned has already delivered its events: tests read them without waiting.
type sink struct {
	mu     sync.Mutex
	events []session.Event
}

func (s *sink) Notify(e session.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func (s *sink) take() []session.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.events
	s.events = nil
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ---- golden files ----

// Volatile values are replaced by placeholders numbered in order of first appearance (keys
// visited in sorted order), so the golden file still shows which fields hold the same id.
var volatileIDs = []*regexp.Regexp{
	regexp.MustCompile(`ses_[A-Z][A-Za-z0-9]{9}`),
	regexp.MustCompile(`con_[A-Z][A-Za-z0-9]{9}`),
	regexp.MustCompile(`tok_[A-Z][A-Za-z0-9]{15}`),
	regexp.MustCompile(`str_(?:CAM|SCR|CUS|MIC)_[A-Z][A-Za-z0-9]{3}_`),
}

var timeKeys = []string{"createdAt", "activeAt", "timestamp"}

type normaliser struct {
	t     *testing.T
	names map[string]string
}

func (n *normaliser) value(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			x[k] = n.value(k, x[k])
		}
	case []any:
		for i := range x {
			x[i] = n.value(key, x[i])
		}
	case float64:
		if slices.Contains(timeKeys, key) {
			// Milliseconds since 1970 (node-client does new Date(createdAt)): 2020..2100.
			if x != math.Trunc(x) || x < 1.5e12 || x > 4.1e12 {
				n.t.Errorf("%s = %v is not a time in milliseconds", key, x)
			}
			return "<ms>"
		}
	case string:
		for _, re := range volatileIDs {
			x = re.ReplaceAllStringFunc(x, func(id string) string {
				if p, ok := n.names[id]; ok {
					return p
				}
				prefix := id[:4]
				if strings.HasPrefix(id, "str_") {
					prefix = id[:8]
				}
				count := 1
				for _, p := range n.names {
					if strings.HasPrefix(p, "<"+prefix) {
						count++
					}
				}
				n.names[id] = fmt.Sprintf("<%s%d>", prefix, count)
				return n.names[id]
			})
		}
		return x
	}
	return v
}

// golden compares a JSON body, normalised, with testdata/<name>.golden.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: not JSON: %q", name, body)
	}
	v = (&normaliser{t: t, names: map[string]string{}}).value("", v)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}
