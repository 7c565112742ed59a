package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/parley/parley/internal/session"
)

// newTestAPI serves the REST API over a real HTTP server with a model that needs no media for
// REST-only flows.
func newTestAPI(t *testing.T) (*httptest.Server, *session.Manager) {
	t.Helper()
	m := session.NewManager(session.Options{WebSocketURL: "ws://localhost:4443/openvidu"})
	a := New(Config{Secret: "MY_SECRET", PublicURL: "http://localhost:4443/", SupportDeprecatedAPI: true,
		ConfigJSON: map[string]any{"VERSION": Version}}, m, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv, m
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %q", r.body)
	}
	return m
}

func call(t *testing.T, srv *httptest.Server, method, path, body string, auth ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	user, pass := "OPENVIDUAPP", "MY_SECRET"
	if len(auth) == 2 {
		user, pass = auth[0], auth[1]
	}
	if len(auth) != 1 { // one empty argument: no credentials at all
		req.SetBasicAuth(user, pass)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

func TestAuthentication(t *testing.T) {
	srv, _ := newTestAPI(t)
	cases := []struct {
		name string
		auth []string
		want int
	}{
		{"right secret", nil, 200},
		{"wrong secret", []string{"OPENVIDUAPP", "nope"}, 401},
		{"wrong user", []string{"admin", "MY_SECRET"}, 401},
		{"secret prefix", []string{"OPENVIDUAPP", "MY_SECRE"}, 401},
		{"no credentials", []string{""}, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, srv, "GET", "/openvidu/api/sessions", "", tc.auth...)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d", r.status, tc.want)
			}
			if tc.want == 401 {
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
					t.Fatal("401 without WWW-Authenticate: Basic")
				}
				if bytes.Contains(r.body, []byte("MY_SECRET")) || bytes.Contains(r.body, []byte("content")) {
					t.Fatalf("401 body reveals something: %s", r.body)
				}
			}
		})
	}
	t.Run("public URL needs no credentials", func(t *testing.T) {
		r := call(t, srv, "GET", "/openvidu/api/config/openvidu-publicurl", "", "")
		if r.status != 200 || string(r.body) != "http://localhost:4443/" {
			t.Fatalf("%d %q", r.status, r.body)
		}
	})
	t.Run("preflight needs no credentials", func(t *testing.T) {
		r := call(t, srv, "OPTIONS", "/openvidu/api/sessions", "", "")
		if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%d %v", r.status, r.header)
		}
	})
}

// node-client's createSession body, as openvidu-node-client 2.32.2 sends it.
const nodeClientSession = `{"mediaMode":"ROUTED","recordingMode":"MANUAL","customSessionId":"SessionA","defaultRecordingProperties":{"name":"","hasAudio":true,"hasVideo":true,"outputMode":"COMPOSED","recordingLayout":"BEST_FIT","resolution":"1280x720","frameRate":25,"shmSize":536870912}}`

func TestSessions(t *testing.T) {
	srv, _ := newTestAPI(t)
	r := call(t, srv, "POST", "/openvidu/api/sessions", nodeClientSession)
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	s := r.json(t)
	for k, want := range map[string]any{"id": "SessionA", "sessionId": "SessionA", "object": "session", "customSessionId": "SessionA",
		"mediaMode": "ROUTED", "recordingMode": "MANUAL", "recording": false, "broadcasting": false,
		"forcedVideoCodec": "MEDIA_SERVER_PREFERRED", "allowTranscoding": false} {
		if s[k] != want {
			t.Errorf("%s = %v, want %v", k, s[k], want)
		}
	}
	if _, ok := s["createdAt"].(float64); !ok {
		t.Error("createdAt must be a number")
	}
	if c := s["connections"].(map[string]any); c["numberOfElements"] != 0.0 || len(c["content"].([]any)) != 0 {
		t.Errorf("connections %v", c)
	}
	if d := s["defaultRecordingProperties"].(map[string]any); d["outputMode"] != "COMPOSED" || d["resolution"] != "1280x720" {
		t.Errorf("defaultRecordingProperties %v", d)
	}

	if r := call(t, srv, "POST", "/openvidu/api/sessions", nodeClientSession); r.status != 409 {
		t.Fatalf("duplicate customSessionId: %d, want 409", r.status)
	}
	gen := call(t, srv, "POST", "/openvidu/api/sessions", "").json(t)
	if id := gen["id"].(string); !strings.HasPrefix(id, "ses_") || len(id) != 14 || gen["customSessionId"] != "" {
		t.Errorf("generated session %v", gen)
	}
	list := call(t, srv, "GET", "/openvidu/api/sessions", "").json(t)
	if list["numberOfElements"] != 2.0 {
		t.Errorf("list: %v", list)
	}
	if r := call(t, srv, "GET", "/openvidu/api/sessions/SessionA", ""); r.status != 200 {
		t.Errorf("get: %d", r.status)
	}
	if r := call(t, srv, "GET", "/openvidu/api/sessions/nope", ""); r.status != 404 {
		t.Errorf("get unknown: %d", r.status)
	}
	if r := call(t, srv, "DELETE", "/openvidu/api/sessions/SessionA", ""); r.status != 204 {
		t.Errorf("delete: %d", r.status)
	}
	if r := call(t, srv, "GET", "/openvidu/api/sessions/SessionA", ""); r.status != 404 {
		t.Errorf("get after delete: %d", r.status)
	}
	if r := call(t, srv, "DELETE", "/openvidu/api/sessions/SessionA", ""); r.status != 404 {
		t.Errorf("delete unknown: %d", r.status)
	}
	if r := call(t, srv, "GET", "/api/sessions", ""); r.status != 200 {
		t.Errorf("legacy /api path: %d", r.status)
	}
}

func TestBadSessionBodies(t *testing.T) {
	srv, _ := newTestAPI(t)
	cases := map[string]string{
		"malformed JSON":             `{"customSessionId":`,
		"not an object":              `[1,2]`,
		"customSessionId not string": `{"customSessionId":42}`,
		"customSessionId chars":      `{"customSessionId":"a b/c"}`,
		"unknown mediaMode":          `{"mediaMode":"X"}`,
		"unknown recordingMode":      `{"recordingMode":"SOMETIMES"}`,
		"unknown codec":              `{"forcedVideoCodec":"AV2"}`,
		"transcoding not bool":       `{"allowTranscoding":"yes"}`,
		"recording props not object": `{"defaultRecordingProperties":"x"}`,
		"bad outputMode":             `{"defaultRecordingProperties":{"outputMode":"MOVIE"}}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			r := call(t, srv, "POST", "/openvidu/api/sessions", body)
			if r.status != 400 {
				t.Fatalf("status %d, want 400", r.status)
			}
			e := r.json(t)
			if e["status"] != 400.0 || e["message"] == "" || e["path"] != "/openvidu/api/sessions" {
				t.Fatalf("error body %v", e)
			}
		})
	}
	t.Run("oversized body", func(t *testing.T) {
		big := `{"customSessionId":"` + strings.Repeat("a", 70<<10) + `"}`
		if r := call(t, srv, "POST", "/openvidu/api/sessions", big); r.status != 413 {
			t.Fatalf("status %d, want 413", r.status)
		}
	})
	t.Run("nothing else disturbed", func(t *testing.T) {
		if r := call(t, srv, "POST", "/openvidu/api/sessions", `{"customSessionId":"fine"}`); r.status != 200 {
			t.Fatalf("a good request after bad ones: %d", r.status)
		}
	})
}

// node-client's createConnection body: every unset property is null.
const nodeClientConnection = `{"type":null,"data":null,"record":true,"role":null,"kurentoOptions":null,"rtspUri":null,"adaptativeBitrate":null,"onlyPlayWithSubscribers":null,"networkCache":null}`

func TestConnections(t *testing.T) {
	srv, m := newTestAPI(t)
	call(t, srv, "POST", "/openvidu/api/sessions", `{"customSessionId":"S"}`)
	r := call(t, srv, "POST", "/openvidu/api/sessions/S/connection", nodeClientConnection)
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	c := r.json(t)
	id := c["id"].(string)
	for k, want := range map[string]any{"connectionId": id, "object": "connection", "type": "WEBRTC", "status": "pending",
		"sessionId": "S", "role": "PUBLISHER", "record": true, "serverData": "", "kurentoOptions": nil,
		"activeAt": nil, "ip": nil, "platform": nil, "clientData": nil, "location": nil, "publishers": nil, "subscribers": nil,
		"rtspUri": nil, "adaptativeBitrate": nil, "onlyPlayWithSubscribers": nil, "networkCache": nil} {
		if v, ok := c[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}
	if !strings.HasPrefix(id, "con_") || len(id) != 14 {
		t.Errorf("connection id %q", id)
	}
	token := c["token"].(string)
	if !strings.HasPrefix(token, "ws://localhost:4443/openvidu?sessionId=S&token=tok_") {
		t.Errorf("token %q", token)
	}

	mod := call(t, srv, "POST", "/openvidu/api/sessions/S/connection",
		`{"role":"MODERATOR","data":"srv","record":false,"kurentoOptions":{"videoMaxRecvBandwidth":500,"allowedFilters":["GStreamerFilter"]},"customIceServers":[{"url":"turn:turn.example.com:3478","username":"u","credential":"p"}]}`).json(t)
	if mod["role"] != "MODERATOR" || mod["serverData"] != "srv" || mod["record"] != false {
		t.Errorf("moderator connection %v", mod)
	}
	if ko := mod["kurentoOptions"].(map[string]any); ko["videoMaxRecvBandwidth"] != 500.0 || len(ko) != 2 {
		t.Errorf("kurentoOptions keeps only what was set: %v", ko)
	}
	if ice := mod["customIceServers"].([]any); len(ice) != 1 {
		t.Errorf("customIceServers %v", ice)
	}

	list := call(t, srv, "GET", "/openvidu/api/sessions/S/connection", "").json(t)
	if list["numberOfElements"] != 2.0 {
		t.Errorf("pending connections are listed by default: %v", list["numberOfElements"])
	}
	if s := call(t, srv, "GET", "/openvidu/api/sessions/S", "").json(t); s["connections"].(map[string]any)["numberOfElements"] != 0.0 {
		t.Error("GET session without pendingConnections=true lists pending connections")
	}
	if s := call(t, srv, "GET", "/openvidu/api/sessions/S?pendingConnections=true", "").json(t); s["connections"].(map[string]any)["numberOfElements"] != 2.0 {
		t.Error("GET session with pendingConnections=true must list them")
	}
	if r := call(t, srv, "GET", "/openvidu/api/sessions/S/connection/"+id, ""); r.status != 200 {
		t.Errorf("get connection: %d", r.status)
	}
	if r := call(t, srv, "GET", "/openvidu/api/sessions/S/connection/con_nobody", ""); r.status != 404 {
		t.Errorf("unknown connection: %d, want 404", r.status)
	}
	if r := call(t, srv, "GET", "/openvidu/api/sessions/nope/connection/"+id, ""); r.status != 400 {
		t.Errorf("connection of an unknown session: %d, want 400", r.status)
	}
	if r := call(t, srv, "POST", "/openvidu/api/sessions/nope/connection", "{}"); r.status != 404 {
		t.Errorf("create in an unknown session: %d, want 404", r.status)
	}
	if p := call(t, srv, "PATCH", "/openvidu/api/sessions/S/connection/"+id, `{"role":"SUBSCRIBER","record":false}`); p.status != 200 || p.json(t)["role"] != "SUBSCRIBER" {
		t.Errorf("patch: %d %s", p.status, p.body)
	}

	if r := call(t, srv, "DELETE", "/openvidu/api/sessions/S/connection/"+id, ""); r.status != 204 {
		t.Errorf("delete pending: %d", r.status)
	}
	if _, _, err := m.Join("S", token, session.JoinInfo{}, nil); err == nil {
		t.Error("the token of a deleted connection must be refused")
	}
	if r := call(t, srv, "DELETE", "/openvidu/api/sessions/S/connection/"+id, ""); r.status != 404 {
		t.Errorf("delete again: %d, want 404", r.status)
	}
	if r := call(t, srv, "DELETE", "/openvidu/api/sessions/nope/connection/"+id, ""); r.status != 400 {
		t.Errorf("delete in an unknown session: %d, want 400", r.status)
	}
	if r := call(t, srv, "DELETE", "/openvidu/api/sessions/S/stream/str_CAM_AAAA_con_nobody", ""); r.status != 404 {
		t.Errorf("unknown stream: %d, want 404", r.status)
	}
	if r := call(t, srv, "DELETE", "/openvidu/api/sessions/nope/stream/str_CAM_AAAA_con_x", ""); r.status != 400 {
		t.Errorf("stream of an unknown session: %d, want 400", r.status)
	}
}

func TestBadConnectionBodies(t *testing.T) {
	srv, _ := newTestAPI(t)
	call(t, srv, "POST", "/openvidu/api/sessions", `{"customSessionId":"S"}`)
	for name, body := range map[string]string{
		"data not string":       `{"data":999}`,
		"unknown role":          `{"role":"KING"}`,
		"record not bool":       `{"record":"yes"}`,
		"IPCAM":                 `{"type":"IPCAM","rtspUri":"rtsp://cam"}`,
		"unknown type":          `{"type":"SIP"}`,
		"ice not array":         `{"customIceServers":"turn:x"}`,
		"stun with credentials": `{"customIceServers":[{"url":"stun:x.com","username":"u","credential":"p"}]}`,
		"turn without creds":    `{"customIceServers":[{"url":"turn:x.com:3478"}]}`,
		"bad scheme":            `{"customIceServers":[{"url":"http://x.com"}]}`,
		"kurentoOptions bad":    `{"kurentoOptions":{"videoMaxRecvBandwidth":"lots"}}`,
		"malformed":             `{"role":`,
	} {
		t.Run(name, func(t *testing.T) {
			if r := call(t, srv, "POST", "/openvidu/api/sessions/S/connection", body); r.status != 400 {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
		})
	}
}

func TestTokensAndSignals(t *testing.T) {
	srv, m := newTestAPI(t)
	call(t, srv, "POST", "/openvidu/api/sessions", `{"customSessionId":"S"}`)
	r := call(t, srv, "POST", "/openvidu/api/tokens", `{"session":"S","role":"SUBSCRIBER","data":"d","kurentoOptions":null}`)
	tok := r.json(t)
	if r.status != 200 || tok["id"] != tok["token"] || tok["role"] != "SUBSCRIBER" || tok["session"] != "S" || !strings.HasPrefix(tok["connectionId"].(string), "con_") {
		t.Fatalf("legacy token: %d %v", r.status, tok)
	}
	if r := call(t, srv, "POST", "/openvidu/api/tokens", `{"role":"SUBSCRIBER"}`); r.status != 400 {
		t.Errorf("token without session: %d", r.status)
	}
	if r := call(t, srv, "POST", "/openvidu/api/tokens", `{"session":"nope"}`); r.status != 404 {
		t.Errorf("token for unknown session: %d", r.status)
	}

	signal := func(body string) int { return call(t, srv, "POST", "/openvidu/api/signal", body).status }
	if st := signal(`{"session":"S","type":"x","data":"y"}`); st != 406 {
		t.Errorf("signal to a session without participants: %d, want 406", st)
	}
	rec := &sink{}
	if _, _, err := m.Join("S", tok["token"].(string), session.JoinInfo{}, rec); err != nil {
		t.Fatal(err)
	}
	if st := signal(`{"session":"S","type":"my-type","data":"hi"}`); st != 200 {
		t.Errorf("signal: %d", st)
	}
	if len(rec.events) != 1 || rec.events[0].Signal.Data != "hi" || rec.events[0].Signal.From != "" {
		t.Errorf("the participant got %v", rec.events)
	}
	for body, want := range map[string]int{
		`{"type":"x"}`:                        400,
		`{"session":"S","to":"con_x"}`:        400,
		`{"session":"S","data":5}`:            400,
		`{"session":"nope"}`:                  404,
		`{"session":"S","to":["con_nobody"]}`: 406,
	} {
		if st := signal(body); st != want {
			t.Errorf("signal %s: %d, want %d", body, st, want)
		}
	}
}

type sink struct{ events []session.Event }

func (s *sink) Notify(e session.Event) { s.events = append(s.events, e) }

func TestConfigAndMisc(t *testing.T) {
	srv, _ := newTestAPI(t)
	if r := call(t, srv, "GET", "/openvidu/api/config", ""); r.status != 200 || r.json(t)["VERSION"] != Version {
		t.Errorf("config: %d %s", r.status, r.body)
	}
	if r := call(t, srv, "GET", "/openvidu/api/config/openvidu-version", ""); string(r.body) != "2.32.2" {
		t.Errorf("version %q", r.body)
	}
	if r := call(t, srv, "GET", "/openvidu/api/health", ""); r.status != 200 || r.json(t)["status"] != "UP" {
		t.Errorf("health: %d %s", r.status, r.body)
	}
	if r := call(t, srv, "GET", "/openvidu/api/recordings", ""); r.status != 501 {
		t.Errorf("recordings while disabled: %d, want 501", r.status)
	}
	if r := call(t, srv, "GET", "/openvidu/api/nothing-here", ""); r.status != 404 {
		t.Errorf("unknown endpoint: %d", r.status)
	}
	if r := call(t, srv, "PUT", "/openvidu/api/sessions", ""); r.status/100 != 4 {
		t.Errorf("wrong method: %d, want 4xx", r.status)
	}
}

func FuzzCreateSession(f *testing.F) {
	for _, s := range []string{nodeClientSession, `{}`, ``, `null`, `{"customSessionId":1}`, `{"defaultRecordingProperties":{"frameRate":"x"}}`, `[`} {
		f.Add(s)
	}
	m := session.NewManager(session.Options{WebSocketURL: "ws://x/openvidu"})
	a := New(Config{Secret: "s"}, m, slog.New(slog.DiscardHandler))
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/openvidu/api/sessions", strings.NewReader(body))
		req.SetBasicAuth("OPENVIDUAPP", "s")
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)
		switch w.Code {
		case 200, 400, 409, 413:
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}
