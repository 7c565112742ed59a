package app

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/session"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	app   *App
	m     *session.Manager
	mux   *http.ServeMux
	clock *clock
}

// newFixture builds the app on a real session model (no media: the app never publishes) and a
// mux as the server wires it.
func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	clk := &clock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	m := session.NewManager(session.Options{WebSocketURL: "ws://localhost:4443/openvidu", Now: clk.now})
	cfg := Config{
		AppConfig: config.AppConfig{MaxParticipants: 3}, Dev: true, Secret: "MY_SECRET", Now: clk.now,
		Rate: 1, Burst: 100,
		Files: fstest.MapFS{
			"index.html":     {Data: []byte("<!doctype html><title>app</title>")},
			"test.html":      {Data: []byte("<!doctype html><title>test</title>")},
			"assets/app.js":  {Data: []byte("console.log('app')")},
			"assets/app.css": {Data: []byte("body{}")},
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	a := New(cfg, FromManager(m), slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	a.Routes(mux, nil)
	return &fixture{app: a, m: m, mux: mux, clock: clk}
}

type resp struct {
	code   int
	header http.Header
	body   map[string]any
	raw    string
}

func (f *fixture) do(t *testing.T, method, path string, body any, mods ...func(*http.Request)) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = "192.0.2.10:51000"
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, m := range mods {
		m(req)
	}
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, req)
	r := resp{code: w.Code, header: w.Header(), raw: w.Body.String()}
	_ = json.Unmarshal(w.Body.Bytes(), &r.body)
	return r
}

func (f *fixture) join(t *testing.T, room, nick string, screen bool) resp {
	t.Helper()
	return f.do(t, "POST", "/app/api/rooms/"+room+"/join", map[string]any{"nickname": nick, "screen": screen})
}

// joinFrom is join from another address than the fixture's.
func (f *fixture) joinFrom(t *testing.T, addr, room, nick string) resp {
	t.Helper()
	return f.do(t, "POST", "/app/api/rooms/"+room+"/join", map[string]any{"nickname": nick},
		func(r *http.Request) { r.RemoteAddr = addr + ":51000" })
}

func TestJoinCreatesRoomAndIssuesTokens(t *testing.T) {
	f := newFixture(t, nil)
	r := f.join(t, "Team-Standup", "  Ada  ", false)
	if r.code != 200 {
		t.Fatalf("join: %d %s", r.code, r.raw)
	}
	if r.body["room"] != "team-standup" || r.body["nickname"] != "Ada" {
		t.Errorf("room/nickname = %v/%v, want the lowercased room and the trimmed name", r.body["room"], r.body["nickname"])
	}
	tok, _ := r.body["token"].(string)
	if !strings.HasPrefix(tok, "ws://localhost:4443/openvidu?sessionId=room_team-standup&token=tok_") {
		t.Errorf("token = %q", tok)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("a token response must not be cached")
	}
	si, err := f.m.Room(RoomSession("team-standup")).Info(true)
	if err != nil {
		t.Fatalf("session not created: %v", err)
	}
	c := si.Connections[0]
	if c.Options.Role != session.RolePublisher || c.Options.Data != `{"clientData":"Ada"}` {
		t.Errorf("connection options = %+v", c.Options)
	}
	// The second person gets a token in the same session.
	if r2 := f.join(t, "team-standup", "Grace", false); r2.code != 200 {
		t.Fatalf("second join: %d %s", r2.code, r2.raw)
	}
	if si, _ = f.m.Room(RoomSession("team-standup")).Info(true); len(si.Connections) != 2 {
		t.Errorf("connections = %d, want 2", len(si.Connections))
	}
}

func TestJoinValidation(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name, room string
		body       any
		code       int
		err        string
	}{
		{"bad room characters", "a%20b", map[string]any{"nickname": "x"}, 400, "invalid_room"},
		{"room starting with a dash", "-abc", map[string]any{"nickname": "x"}, 400, "invalid_room"},
		{"room too long", strings.Repeat("a", 51), map[string]any{"nickname": "x"}, 400, "invalid_room"},
		{"empty nickname", "ok", map[string]any{"nickname": "   "}, 400, "invalid_nickname"},
		{"nickname too long", "ok", map[string]any{"nickname": strings.Repeat("é", 41)}, 400, "invalid_nickname"},
		{"control character", "ok", map[string]any{"nickname": "a\u0007b"}, 400, "invalid_nickname"},
		{"unknown field", "ok", map[string]any{"nickname": "x", "role": "MODERATOR"}, 400, "bad_request"},
		{"unicode nickname", "ok", map[string]any{"nickname": "Zoë 🎧"}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, "POST", "/app/api/rooms/"+tc.room+"/join", tc.body)
			if r.code != tc.code || (tc.err != "" && r.body["error"] != tc.err) {
				t.Fatalf("got %d %s, want %d %s", r.code, r.raw, tc.code, tc.err)
			}
			if tc.err != "" && r.body["message"] == "" {
				t.Errorf("no message for a person")
			}
		})
	}
	t.Run("form post refused", func(t *testing.T) {
		r := f.do(t, "POST", "/app/api/rooms/ok/join", nil, func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Body = io.NopCloser(strings.NewReader("nickname=x"))
		})
		if r.code != http.StatusUnsupportedMediaType {
			t.Fatalf("got %d, want 415 (CSRF defence)", r.code)
		}
	})
}

func TestRoomFull(t *testing.T) {
	f := newFixture(t, nil) // MaxParticipants 3
	var toks []string
	for i, n := range []string{"a", "b", "c"} { // three people, three addresses
		r := f.joinFrom(t, fmt.Sprintf("192.0.2.%d", i+1), "full", n)
		if r.code != 200 {
			t.Fatalf("join %s: %d %s", n, r.code, r.raw)
		}
		toks = append(toks, r.body["token"].(string))
	}
	r := f.joinFrom(t, "192.0.2.4", "full", "d")
	if r.code != http.StatusConflict || r.body["error"] != "room_full" || !strings.Contains(r.body["message"].(string), "full") {
		t.Fatalf("fourth join: %d %s, want 409 room_full", r.code, r.raw)
	}
	// A screen share is not a person.
	if r := f.join(t, "full", "a", true); r.code != 200 {
		t.Fatalf("screen share in a full room: %d %s", r.code, r.raw)
	}
	// Two people join for real; the third token is abandoned and stops holding its seat.
	sid := RoomSession("full")
	for _, tok := range toks[:2] {
		if _, _, err := f.m.Join(sid, tok, session.JoinInfo{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.add(pendingHold + time.Second)
	if r := f.joinFrom(t, "192.0.2.4", "full", "d"); r.code != 200 {
		t.Fatalf("join after an abandoned token expired: %d %s", r.code, r.raw)
	}
	if r := f.joinFrom(t, "192.0.2.5", "full", "e"); r.code != http.StatusConflict {
		t.Fatalf("join beyond the limit again: %d %s", r.code, r.raw)
	}
}

// TestUnusedTokensHoldOneSeatPerAddress: tokens one address takes and never uses hold one seat
// of a room between them, so they cannot fill it; the seat is free again pendingHold later.
func TestUnusedTokensHoldOneSeatPerAddress(t *testing.T) {
	f := newFixture(t, nil) // MaxParticipants 3
	for i := range 16 {
		if r := f.joinFrom(t, "198.51.100.7", "hoard", fmt.Sprint("h", i)); r.code != 200 {
			t.Fatalf("hoarding token %d: %d %s", i, r.code, r.raw)
		}
	}
	for i, addr := range []string{"192.0.2.1", "192.0.2.2"} {
		if r := f.joinFrom(t, addr, "hoard", fmt.Sprint("p", i)); r.code != 200 {
			t.Fatalf("person %d after 16 unused tokens: %d %s", i, r.code, r.raw)
		}
	}
	if r := f.joinFrom(t, "192.0.2.3", "hoard", "q"); r.code != http.StatusConflict {
		t.Fatalf("a fourth with three seats held: %d %s, want 409", r.code, r.raw)
	}
	f.clock.add(pendingHold)
	f.app.sweepHeld()
	if r := f.joinFrom(t, "192.0.2.3", "hoard", "q"); r.code != 200 {
		t.Fatalf("after the unused tokens expired: %d %s", r.code, r.raw)
	}
	if n := len(f.app.held); n != 1 {
		t.Errorf("%d held tokens remembered after the sweep, want 1 (the newest)", n)
	}
}

func TestScreenShareNeedsARoom(t *testing.T) {
	f := newFixture(t, nil)
	r := f.join(t, "empty", "a", true)
	if r.code != http.StatusConflict || r.body["error"] != "room_closed" {
		t.Fatalf("got %d %s", r.code, r.raw)
	}
	if _, err := f.m.Room(RoomSession("empty")).Info(true); err == nil {
		t.Errorf("a screen share created a room")
	}
}

func TestPrivateApp(t *testing.T) {
	users := map[string]string{"ann": "s3cret", "bob": "hunter2"}
	f := newFixture(t, func(c *Config) { c.Private = true; c.Users = users })

	if r := f.do(t, "GET", "/app/api/config", nil); r.body["private"] != true || r.body["user"] != "" || r.body["available"] != true {
		t.Fatalf("config: %s", r.raw)
	}
	if r := f.join(t, "x", "n", false); r.code != 401 || r.body["error"] != "login_required" {
		t.Fatalf("anonymous join: %d %s", r.code, r.raw)
	}
	if r := f.do(t, "POST", "/app/api/test/device", map[string]any{}); r.code != 401 {
		t.Fatalf("anonymous device test: %d %s", r.code, r.raw)
	}
	if r := f.do(t, "POST", "/app/api/login", map[string]any{"user": "ann", "password": "wrong"}); r.code != 401 || r.body["error"] != "bad_login" {
		t.Fatalf("bad login: %d %s", r.code, r.raw)
	}
	r := f.do(t, "POST", "/app/api/login", map[string]any{"user": "ann", "password": "s3cret"})
	if r.code != 204 {
		t.Fatalf("login: %d %s", r.code, r.raw)
	}
	cookie := r.header.Get("Set-Cookie")
	for _, want := range []string{cookieName + "=", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("cookie %q lacks %s", cookie, want)
		}
	}
	val := strings.TrimPrefix(strings.Split(cookie, ";")[0], cookieName+"=")
	withCookie := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: cookieName, Value: v}) }
	}
	if r := f.do(t, "GET", "/app/api/config", nil, withCookie(val)); r.body["user"] != "ann" {
		t.Fatalf("config with cookie: %s", r.raw)
	}
	if r := f.join(t, "x", "n", false); r.code != 401 {
		t.Fatalf("join without the cookie: %d", r.code)
	}
	if r := f.do(t, "POST", "/app/api/rooms/x/join", map[string]any{"nickname": "n"}, withCookie(val)); r.code != 200 {
		t.Fatalf("join with the cookie: %d %s", r.code, r.raw)
	}
	// Tampering: another user's name with ann's signature.
	parts := strings.Split(val, ".")
	forged := "Ym9i." + parts[1] + "." + parts[2]
	if r := f.do(t, "GET", "/app/api/config", nil, withCookie(forged)); r.body["user"] != "" {
		t.Errorf("forged cookie accepted: %s", r.raw)
	}
	// Expiry.
	f.clock.add(loginTTL + time.Minute)
	if r := f.do(t, "GET", "/app/api/config", nil, withCookie(val)); r.body["user"] != "" {
		t.Errorf("expired cookie accepted: %s", r.raw)
	}
	// Scripts may use HTTP Basic instead.
	basic := func(r *http.Request) { r.SetBasicAuth("bob", "hunter2") }
	if r := f.do(t, "POST", "/app/api/rooms/x/join", map[string]any{"nickname": "n"}, basic); r.code != 200 {
		t.Fatalf("join with basic auth: %d %s", r.code, r.raw)
	}
}

func TestPrivateWithoutUsersIsClosed(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Private = true })
	if r := f.do(t, "GET", "/app/api/config", nil); r.body["available"] != false {
		t.Fatalf("config: %s", r.raw)
	}
	if r := f.join(t, "x", "n", false); r.code != 403 || r.body["error"] != "app_closed" {
		t.Fatalf("join: %d %s", r.code, r.raw)
	}
	if r := f.do(t, "POST", "/app/api/login", map[string]any{"user": "", "password": ""}); r.code != 401 {
		t.Fatalf("login with no users: %d", r.code)
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Burst = 3; c.Rate = 0.5; c.MaxParticipants = 100 })
	for i := range 3 {
		if r := f.join(t, "rl", "n", false); r.code != 200 {
			t.Fatalf("join %d: %d %s", i, r.code, r.raw)
		}
	}
	r := f.join(t, "rl", "n", false)
	if r.code != http.StatusTooManyRequests || r.header.Get("Retry-After") != "3" {
		t.Fatalf("over the limit: %d Retry-After=%q %s", r.code, r.header.Get("Retry-After"), r.raw)
	}
	// Another address has its own budget.
	other := func(r *http.Request) { r.RemoteAddr = "198.51.100.7:4000" }
	if r := f.do(t, "POST", "/app/api/rooms/rl/join", map[string]any{"nickname": "n"}, other); r.code == http.StatusTooManyRequests {
		t.Fatalf("another address was limited")
	}
	// Headers are not the client's address: Parley is the edge.
	spoof := func(r *http.Request) { r.Header.Set("X-Forwarded-For", "203.0.113.9") }
	if r := f.do(t, "POST", "/app/api/rooms/rl/join", map[string]any{"nickname": "n"}, spoof); r.code != http.StatusTooManyRequests {
		t.Fatalf("X-Forwarded-For escaped the limit: %d", r.code)
	}
	f.clock.add(2 * time.Second)
	if r := f.join(t, "rl", "n", false); r.code != 200 {
		t.Fatalf("after the refill: %d %s", r.code, r.raw)
	}
}

func TestClientKeyGroupsIPv6By64(t *testing.T) {
	key := func(addr string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		return clientKey(r).String()
	}
	if a, b := key("[2001:db8:1:2::1]:5"), key("[2001:db8:1:2:ffff::9]:6"); a != b || a != "2001:db8:1:2::/64" {
		t.Errorf("same /64 → %s and %s", a, b)
	}
	if k := key("[::ffff:192.0.2.1]:5"); k != "192.0.2.1/32" {
		t.Errorf("v4-mapped → %s", k)
	}
}

func TestDeviceAndNetworkTests(t *testing.T) {
	f := newFixture(t, nil)
	r := f.do(t, "POST", "/app/api/test/device", map[string]any{})
	if r.code != 200 {
		t.Fatalf("device test: %d %s", r.code, r.raw)
	}
	pub, loop := r.body["publisherToken"].(string), r.body["loopbackToken"].(string)
	if pub == "" || loop == "" || pub == loop {
		t.Fatalf("tokens: %s", r.raw)
	}
	sid := session.SessionID(strings.TrimPrefix(strings.Split(strings.Split(pub, "sessionId=")[1], "&")[0], ""))
	if !strings.HasPrefix(string(sid), testPrefix) {
		t.Fatalf("test session %q lacks the prefix", sid)
	}
	si, err := f.m.Room(sid).Info(true)
	if err != nil || len(si.Connections) != 2 {
		t.Fatalf("session: %v %+v", err, si)
	}
	roles := map[session.Role]int{}
	for _, c := range si.Connections {
		roles[c.Options.Role]++
	}
	if roles[session.RolePublisher] != 1 || roles[session.RoleSubscriber] != 1 {
		t.Errorf("roles = %v, want one publisher and one loopback subscriber", roles)
	}
	// Someone joins, and the session outlives nobody's interest: the sweep closes it at its deadline.
	if _, _, err := f.m.Join(sid, pub, session.JoinInfo{}, nil); err != nil {
		t.Fatal(err)
	}
	f.app.sweepTests()
	if _, err := f.m.Room(sid).Info(false); err != nil {
		t.Fatalf("closed too early: %v", err)
	}
	f.clock.add(testTTL + time.Second)
	f.app.sweepTests()
	if _, err := f.m.Room(sid).Info(false); err == nil {
		t.Fatalf("expired test session still open")
	}
	if len(f.app.tests) != 0 {
		t.Errorf("tests map not emptied: %v", f.app.tests)
	}

	r = f.do(t, "POST", "/app/api/test/network", map[string]any{})
	if r.code != 200 || r.body["token"] == "" {
		t.Fatalf("network test: %d %s", r.code, r.raw)
	}
	for i := 1; i < maxTestsPerAddr; i++ {
		if r := f.do(t, "POST", "/app/api/test/network", map[string]any{}); r.code != 200 {
			t.Fatalf("test %d from one address: %d %s", i+1, r.code, r.raw)
		}
	}
	if r := f.do(t, "POST", "/app/api/test/network", map[string]any{}); r.code != http.StatusTooManyRequests {
		t.Fatalf("test %d from one address: %d %s", maxTestsPerAddr+1, r.code, r.raw)
	}
	for i := range maxTests - maxTestsPerAddr {
		from := func(r *http.Request) { r.RemoteAddr = fmt.Sprintf("198.51.100.%d:1", i+1) }
		if r := f.do(t, "POST", "/app/api/test/network", map[string]any{}, from); r.code != 200 {
			t.Fatalf("network test: %d %s", r.code, r.raw)
		}
	}
	other := func(r *http.Request) { r.RemoteAddr = "203.0.113.1:1" }
	if r := f.do(t, "POST", "/app/api/test/network", map[string]any{}, other); r.code != http.StatusServiceUnavailable || r.body["error"] != "busy" {
		t.Fatalf("beyond maxTests: %d %s", r.code, r.raw)
	}
	// Sessions nobody joined are collected by the model; the sweep then forgets them.
	f.m.CollectGarbage()
	f.app.sweepTests()
}

func TestStaticFiles(t *testing.T) {
	f := newFixture(t, nil)
	r := f.do(t, "GET", "/", nil)
	if r.code != 200 || !strings.Contains(r.raw, "<title>app</title>") {
		t.Fatalf("/: %d %q", r.code, r.raw)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP = %q", csp)
	}
	etag := r.header.Get("ETag")
	if etag == "" || r.header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q Cache-Control %q", etag, r.header.Get("Cache-Control"))
	}
	if r := f.do(t, "GET", "/", nil, func(r *http.Request) { r.Header.Set("If-None-Match", etag) }); r.code != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", r.code)
	}
	if r := f.do(t, "GET", "/assets/app.js", nil); r.code != 200 || !strings.Contains(r.header.Get("Content-Type"), "javascript") {
		t.Errorf("/assets/app.js: %d %q", r.code, r.header.Get("Content-Type"))
	}
	if r := f.do(t, "GET", "/test", nil); r.code != 200 || !strings.Contains(r.raw, "<title>test</title>") {
		t.Errorf("/test: %d %q", r.code, r.raw)
	}
	if r := f.do(t, "GET", "/test/assets/app.css", nil); r.code != 200 || r.raw != "body{}" {
		t.Errorf("/test/assets/app.css: %d %q", r.code, r.raw)
	}
	for _, p := range []string{"/assets/../test.html", "/assets/missing.js", "/nope", "/test/nope", "/index.html", "/app/api/nope"} {
		if r := f.do(t, "GET", p, nil); r.code != 404 && r.code/100 != 3 {
			t.Errorf("%s: %d, want 404", p, r.code)
		}
	}
}

func TestNotBuilt(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Files = fstest.MapFS{".gitkeep": {Data: []byte("x")}} })
	for _, p := range []string{"/", "/test"} {
		r := f.do(t, "GET", p, nil)
		if r.code != http.StatusServiceUnavailable || !strings.Contains(r.raw, "make build") {
			t.Errorf("%s: %d %q", p, r.code, r.raw)
		}
	}
}

func TestUpstreamTakesRoot(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Upstream = "http://127.0.0.1:5442" })
	f.mux = http.NewServeMux()
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "customer") })
	f.app.Routes(f.mux, up)
	if r := f.do(t, "GET", "/", nil); r.raw != "customer" {
		t.Errorf("/ = %q, want the customer's app", r.raw)
	}
	if r := f.do(t, "GET", "/assets/app.js", nil); r.raw != "customer" {
		t.Errorf("/assets/ = %q, want the customer's app (only /test/assets/ is ours)", r.raw)
	}
	if r := f.do(t, "GET", "/test", nil); !strings.Contains(r.raw, "<title>test</title>") {
		t.Errorf("/test = %q, want ours", r.raw)
	}
	if r := f.do(t, "GET", "/app/api/config", nil); r.body["builtIn"] != false {
		t.Errorf("config.builtIn = %v", r.body["builtIn"])
	}
}

func TestReserved(t *testing.T) {
	for p, want := range map[string]bool{
		"/openvidu": true, "/openvidu/api/sessions": true, "/openvidu/recordings/x.mp4": true, "/app/api/config": true,
		"/test": true, "/test/assets/x.js": true, "/metrics": true, "/": false, "/openviduish": false, "/testing": false,
		"/app": false, "/app/page": false, "/api/sessions": false,
	} {
		if got := reserved(p); got != want {
			t.Errorf("reserved(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestPasswordGuessing: HTTP Basic on /app/api/config and the login form share one limiter per
// address and per user name; once an address has used its failures, even the right password
// is not checked from it (the answer says nothing), while another address still signs in, and
// a script sending the right password on every request is never limited.
func TestPasswordGuessing(t *testing.T) {
	users := map[string]string{"ann": "s3cret", "bob": "hunter2"}
	f := newFixture(t, func(c *Config) { c.Private = true; c.Users = users })
	right := func(r *http.Request) { r.SetBasicAuth("bob", "hunter2") }
	for range 3 * guessAddrBurst { // a script: always the right password
		if r := f.do(t, "GET", "/app/api/config", nil, right); r.body["user"] != "bob" {
			t.Fatalf("right password refused: %s", r.raw)
		}
	}
	for i := range guessAddrBurst {
		guess := func(r *http.Request) { r.SetBasicAuth("bob", fmt.Sprintf("guess%d", i)) }
		if r := f.do(t, "GET", "/app/api/config", nil, guess); r.body["user"] != "" {
			t.Fatalf("wrong password accepted: %s", r.raw)
		}
	}
	if r := f.do(t, "GET", "/app/api/config", nil, right); r.body["user"] != "" {
		t.Fatalf("the right password was checked after %d failures from one address: %s", guessAddrBurst, r.raw)
	}
	if r := f.do(t, "POST", "/app/api/login", map[string]any{"user": "bob", "password": "hunter2"}); r.code != http.StatusTooManyRequests {
		t.Fatalf("login form after the Basic failures: %d %s", r.code, r.raw)
	}
	other := func(r *http.Request) { r.RemoteAddr = "198.51.100.7:4000"; right(r) }
	if r := f.do(t, "GET", "/app/api/config", nil, other); r.body["user"] != "bob" {
		t.Fatalf("another address was limited: %s", r.raw)
	}
	// The limit is per user name too: many addresses guessing one name run out together.
	for i := range guessUserBurst {
		addr := func(r *http.Request) {
			r.RemoteAddr = fmt.Sprintf("203.0.113.%d:1", i+1)
			r.SetBasicAuth("ann", "wrong")
		}
		f.do(t, "GET", "/app/api/config", nil, addr)
	}
	fresh := func(r *http.Request) { r.RemoteAddr = "203.0.113.200:1"; r.SetBasicAuth("ann", "s3cret") }
	if r := f.do(t, "GET", "/app/api/config", nil, fresh); r.body["user"] != "" {
		t.Fatalf("ann's password checked after %d failures on her name: %s", guessUserBurst, r.raw)
	}
	// Time refills the buckets.
	f.clock.add(time.Hour)
	if r := f.do(t, "GET", "/app/api/config", nil, right); r.body["user"] != "bob" {
		t.Fatalf("still limited an hour later: %s", r.raw)
	}
}

// TestEveryPasswordPathSharesTheLimiter: whichever path an address guesses on (the login form,
// HTTP Basic on the config, on a room join, on the device and network tests), its failures use up
// the one bucket of that address: afterwards the right password is not checked from it on any
// path, while the same password from another address still works.
func TestEveryPasswordPathSharesTheLimiter(t *testing.T) {
	users := map[string]string{"bob": "hunter2"}
	paths := []struct {
		name, method, path string
		body               any
	}{
		{"login form", "POST", "/app/api/login", nil}, // the password goes in the body
		{"config", "GET", "/app/api/config", nil},
		{"room join", "POST", "/app/api/rooms/r1/join", map[string]any{"nickname": "x"}},
		{"device test", "POST", "/app/api/test/device", map[string]any{}},
		{"network test", "POST", "/app/api/test/network", map[string]any{}},
	}
	for i, guessed := range paths {
		t.Run(guessed.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.Private = true; c.Users = users })
			from := func(addr, pass string) func(*http.Request) {
				return func(r *http.Request) { r.RemoteAddr = addr; r.SetBasicAuth("bob", pass) }
			}
			guesser := fmt.Sprintf("198.51.100.%d:1", i+1)
			for g := range guessAddrBurst {
				pass := fmt.Sprintf("guess%d", g)
				if guessed.path == "/app/api/login" {
					f.do(t, "POST", "/app/api/login", map[string]any{"user": "bob", "password": pass}, from(guesser, ""))
				} else if r := f.do(t, guessed.method, guessed.path, guessed.body, from(guesser, pass)); accepted(guessed.path, r) {
					t.Fatalf("a wrong password passed: %d %s", r.code, r.raw)
				}
			}
			for _, p := range paths {
				if p.path == "/app/api/login" {
					if r := f.do(t, "POST", p.path, map[string]any{"user": "bob", "password": "hunter2"}, from(guesser, "")); r.code != http.StatusTooManyRequests {
						t.Errorf("after guesses on %s, the login form answered %d, want 429", guessed.name, r.code)
					}
					continue
				}
				if r := f.do(t, p.method, p.path, p.body, from(guesser, "hunter2")); accepted(p.path, r) || r.code != http.StatusOK && r.code != http.StatusUnauthorized {
					t.Errorf("after guesses on %s, the right password on %s was checked: %d %s", guessed.name, p.name, r.code, r.raw)
				}
			}
			if r := f.do(t, "GET", "/app/api/config", nil, from("203.0.113.9:1", "hunter2")); r.body["user"] != "bob" {
				t.Errorf("another address was limited: %s", r.raw)
			}
		})
	}
}

// accepted: the answer on path shows a signed-in user (the config says who; elsewhere the call
// went through).
func accepted(path string, r resp) bool {
	if path == "/app/api/config" {
		return r.body["user"] != ""
	}
	return r.code == http.StatusOK
}
