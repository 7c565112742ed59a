package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/api"
	"github.com/parley/parley/internal/recording"
	"github.com/parley/parley/internal/session"
)

// recEnv is newEnv with recording on: the real recorder on a temporary folder, listening to the
// model, and the file route mounted as the server mounts it.
func recEnv(t *testing.T, public bool) (*env, *recording.Recorder) {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := session.NewManager(session.Options{WebSocketURL: wsURL, Log: log})
	rec, err := recording.New(recording.Config{Path: t.TempDir(), AutostopTimeout: time.Hour}, recording.FromManager(m), log)
	if err != nil {
		t.Fatal(err)
	}
	m.Listen(rec.Listen)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rec.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done }) // before the folder is removed: Run waits for its files
	cfg := testConfig()
	cfg.Recordings, cfg.RecordingPublicAccess = rec, public
	a := api.New(cfg, api.FromManager(m), log)
	mux := httptestMux(a)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, m: m, logs: logs}, rec
}

func TestRecordingEndpoints(t *testing.T) {
	e, _ := recEnv(t, false)
	p := "/openvidu/api/recordings"
	e.mustStatus(200, "POST", "/openvidu/api/sessions", `{"customSessionId":"rec","defaultRecordingProperties":{"outputMode":"INDIVIDUAL","name":"dflt"}}`)
	if b := e.mustStatus(200, "GET", p, "").obj(t); b["count"] != 0.0 || len(b["items"].([]any)) != 0 {
		t.Fatalf("empty list: %v", b)
	}
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"no session", `{}`, 400},
		{"session not a string", `{"session":5}`, 400},
		{"hasAudio not a boolean", `{"session":"rec","hasAudio":"yes"}`, 400},
		{"unknown output mode", `{"session":"rec","outputMode":"GRID"}`, 400},
		{"unknown session", `{"session":"nope"}`, 404},
		{"nothing to record", `{"session":"rec","hasAudio":false,"hasVideo":false}`, 422},
		{"resolution out of range", `{"session":"rec","outputMode":"COMPOSED","resolution":"99x2000"}`, 422},
		{"frame rate out of range", `{"session":"rec","outputMode":"COMPOSED","frameRate":121}`, 422},
		{"bad name", `{"session":"rec","name":"a b"}`, 400},
		{"nobody connected", `{"session":"rec"}`, 406},
	} {
		t.Run(tc.name, func(t *testing.T) { e.mustStatus(tc.want, "POST", p+"/start", tc.body) })
	}

	alice, aliceSink := e.join("rec", e.connection("rec", `{"role":"PUBLISHER"}`), session.JoinInfo{})
	_, subSink := e.join("rec", e.connection("rec", `{"role":"SUBSCRIBER"}`), session.JoinInfo{})
	_ = alice
	aliceSink.take()
	e.mustStatus(501, "POST", p+"/start", `{"session":"rec","outputMode":"COMPOSED"}`)
	e.mustStatus(501, "POST", p+"/start", `{"session":"rec","outputMode":"COMPOSED","recordingLayout":"CUSTOM"}`)

	// Defaults come from the session's defaultRecordingProperties.
	r := e.mustStatus(200, "POST", p+"/start", `{"session":"rec","name":""}`)
	golden(t, "recording_started", r.body)
	e.mustStatus(409, "POST", p+"/start", `{"session":"rec","outputMode":"INDIVIDUAL"}`)
	if s := e.mustStatus(200, "GET", "/openvidu/api/sessions/rec", "").obj(t); s["recording"] != true {
		t.Fatalf("session while recording: recording=%v", s["recording"])
	}
	// Publishers and moderators are told (OPENVIDU_RECORDING_NOTIFICATION default), subscribers not.
	if ev := aliceSink.take(); len(ev) != 1 || ev[0].Kind != session.RecordingStatusChanged || ev[0].Recording.Status != "started" || ev[0].Recording.Name != "dflt" {
		t.Fatalf("publisher's notifications: %+v", ev)
	}
	if ev := subSink.take(); len(ev) != 0 {
		t.Fatalf("subscriber was told: %+v", ev)
	}
	// Somebody joining now learns it in joinRoom.
	_, res, err := e.m.Join("rec", e.connection("rec", `{"role":"MODERATOR"}`)["token"].(string), session.JoinInfo{}, &sink{})
	if err != nil || res.RecordingID != "rec" || res.RecordingName != "dflt" {
		t.Fatalf("join while recording: %+v %v", res, err)
	}
	aliceSink.take() // participantJoined

	e.mustStatus(409, "DELETE", p+"/rec", "")
	e.mustStatus(404, "POST", p+"/stop/nope", "")
	st := e.mustStatus(200, "POST", p+"/stop/rec", "").obj(t)
	if st["status"] != "ready" || st["url"] != "http://localhost:4443/openvidu/recordings/rec/dflt.zip" || st["outputMode"] != "INDIVIDUAL" {
		t.Fatalf("stopped: %v", st)
	}
	if _, ok := st["resolution"]; ok {
		t.Fatalf("INDIVIDUAL recordings have no resolution: %v", st)
	}
	e.mustStatus(409, "POST", p+"/stop/rec", "")
	ev := aliceSink.take()
	if len(ev) != 1 || ev[0].Recording.Status != "stopped" || ev[0].Recording.Reason != "recordingStoppedByServer" {
		t.Fatalf("publisher's stop notification: %+v", ev)
	}
	if s := e.mustStatus(200, "GET", "/openvidu/api/sessions/rec", "").obj(t); s["recording"] != false {
		t.Fatalf("session after stop: recording=%v", s["recording"])
	}
	if g := e.mustStatus(200, "GET", p+"/rec", "").obj(t); g["status"] != "ready" || g["size"] != 0.0 {
		t.Fatalf("get: %v", g)
	}
	if l := e.mustStatus(200, "GET", p, "").obj(t); l["count"] != 1.0 {
		t.Fatalf("list: %v", l)
	}
	e.mustStatus(404, "GET", p+"/nope", "")

	// Files: behind the REST credentials, inside the recording's folder only.
	if r := e.do("GET", "/openvidu/recordings/rec/dflt.zip", "", "Authorization", noAuth); r.status != 401 {
		t.Fatalf("file without credentials: %d", r.status)
	}
	z := e.mustStatus(200, "GET", "/openvidu/recordings/rec/dflt.zip", "")
	zr, err := zip.NewReader(bytes.NewReader(z.body), int64(len(z.body)))
	if err != nil || len(zr.File) != 1 || zr.File[0].Name != "dflt.json" {
		t.Fatalf("zip: %v", err)
	}
	e.mustStatus(200, "GET", "/recordings/rec/dflt.zip", "") // legacy path
	for _, bad := range []string{"/openvidu/recordings/rec/.recording.rec", "/openvidu/recordings/rec/..%2f..%2fetc%2fpasswd",
		"/openvidu/recordings/..%2frec/dflt.zip", "/openvidu/recordings/rec/dflt.zip/x", "/openvidu/recordings/rec/"} {
		if r := e.do("GET", bad, ""); r.status != 404 {
			t.Errorf("GET %s: %d, want 404", bad, r.status)
		}
	}
	e.mustStatus(204, "DELETE", p+"/rec", "")
	e.mustStatus(404, "GET", p+"/rec", "")
	e.mustStatus(404, "DELETE", p+"/rec", "")
	if !strings.Contains(e.logs.String(), "recording deleted") {
		t.Error("deletion not logged")
	}
}

func TestRecordingFilesPublicAccess(t *testing.T) {
	e, _ := recEnv(t, true)
	e.session("pub")
	e.join("pub", e.connection("pub", `{}`), session.JoinInfo{})
	e.mustStatus(200, "POST", "/openvidu/api/recordings/start", `{"session":"pub","outputMode":"INDIVIDUAL"}`)
	e.mustStatus(200, "POST", "/openvidu/api/recordings/stop/pub", "")
	if r := e.do("GET", "/openvidu/recordings/pub/pub.zip", "", "Authorization", noAuth); r.status != 200 {
		t.Fatalf("public file: %d", r.status)
	}
	if r := e.do("GET", "/openvidu/api/recordings/pub", "", "Authorization", noAuth); r.status != 401 {
		t.Fatalf("the API stays private: %d", r.status)
	}
}

// httptestMux mounts the API and its file route as internal/server does.
func httptestMux(a *api.API) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/openvidu/api/", a)
	mux.Handle("/api/", a)
	mux.Handle("/openvidu/recordings/", a.RecordingFiles())
	mux.Handle("/recordings/", a.RecordingFiles())
	return mux
}
