package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/parley/parley/internal/api"
	"github.com/parley/parley/internal/session"
)

// Seeds beyond testdata/fuzz (which holds every body kind node-client and the tutorials send):
// the edges of the decoder. Huge inputs (over 64 KiB, nesting deeper than encoding/json allows)
// are unit-tested instead: as seeds they stall the fuzzer in minimisation.
var fuzzEdges = []string{
	"", " ", "null", "{}", "[]", `"x"`, "0", "{", `{"a":}`, `{"a":1,}`, "\xff\xfe", "{\"data\":\"\xff\"}",
	`{"frameRate":1e999}`, `{"shmSize":-9223372036854775809}`, `{"customSessionId":"\u0000"}`,
	`{"defaultRecordingProperties":{"frameRate":30.5,"shmSize":1e9}}`, `{"to":[[]]}`,
}

// serve runs one request through the handler, the body arriving in three reads as it might from
// the network.
func serve(a *api.API, path string, body []byte) *httptest.ResponseRecorder {
	n := len(body)
	rd := io.MultiReader(bytes.NewReader(body[:n/3]), bytes.NewReader(body[n/3:2*n/3]), bytes.NewReader(body[2*n/3:]))
	req := httptest.NewRequest("POST", path, rd)
	req.SetBasicAuth("OPENVIDUAPP", secret)
	w := httptest.NewRecorder()
	a.ServeHTTP(w, req)
	return w
}

// checkReply holds for every answer of a body-reading endpoint: 200 with a JSON object, or 400/413
// with OpenVidu's error body. Anything else (500, a panic, a 409 from an empty model) is a bug.
func checkReply(t *testing.T, w *httptest.ResponseRecorder, body []byte) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("status %d with a body that is not a JSON object: %q (request %q)", w.Code, w.Body.Bytes(), body)
	}
	switch w.Code {
	case 200:
	case 400, 413:
		if v["status"] != float64(w.Code) || v["message"] == "" {
			t.Fatalf("error body %s", w.Body.Bytes())
		}
	default:
		t.Fatalf("status %d for %q: %s", w.Code, body, w.Body.Bytes())
	}
	return v
}

// newFuzzAPI is one API per fuzz worker (a worker runs its inputs one at a time): building one per
// input makes every execution, and so the minimiser, several times slower. Each input starts from
// an empty model because the target closes what it created.
func newFuzzAPI() (*api.API, *session.Manager) {
	m := session.NewManager(session.Options{WebSocketURL: wsURL, Ingest: fakeMedia{}})
	return api.New(testConfig(), api.FromManager(m), slog.New(slog.DiscardHandler)), m
}

func FuzzCreateSession(f *testing.F) {
	for _, s := range append(fuzzEdges, nodeClientSession) {
		f.Add([]byte(s))
	}
	a, m := newFuzzAPI()
	f.Fuzz(func(t *testing.T, body []byte) {
		w := serve(a, "/openvidu/api/sessions", body)
		v := checkReply(t, w, body)
		all := m.Sessions(true)
		for _, s := range all {
			_ = m.Room(s.ID).Close()
		}
		if w.Code != 200 {
			if len(all) != 0 {
				t.Fatalf("a refused body created %d sessions", len(all))
			}
			return
		}
		id, _ := v["id"].(string)
		if len(all) != 1 || string(all[0].ID) != id || v["sessionId"] != id || v["object"] != "session" {
			t.Fatalf("session %s, model %+v", w.Body.Bytes(), all)
		}
		if custom, _ := v["customSessionId"].(string); custom != "" && custom != id {
			t.Fatalf("customSessionId %q but id %q", custom, id)
		}
	})
}

func FuzzCreateConnection(f *testing.F) {
	for _, s := range append(fuzzEdges, nodeClientConnection) {
		f.Add([]byte(s))
	}
	a, m := newFuzzAPI()
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := m.CreateSession(session.Properties{CustomSessionID: "S"}); err != nil {
			t.Fatal(err)
		}
		w := serve(a, "/openvidu/api/sessions/S/connection", body)
		si, _ := m.Room("S").Info(true)
		cs := si.Connections
		_ = m.Room("S").Close()
		v := checkReply(t, w, body)
		if w.Code != 200 {
			if len(cs) != 0 {
				t.Fatalf("a refused body created a connection")
			}
			return
		}
		if len(cs) != 1 || v["id"] != string(cs[0].ID) || v["connectionId"] != v["id"] {
			t.Fatalf("connection %s", w.Body.Bytes())
		}
		if v["type"] == "IPCAM" {
			// A camera is active at once, publishing, with no token.
			if v["status"] != "active" || v["token"] != nil || len(v["publishers"].([]any)) != 1 {
				t.Fatalf("IPCAM connection %s", w.Body.Bytes())
			}
		} else if v["status"] != "pending" || !tokenRE.MatchString(v["token"].(string)) || v["activeAt"] != nil || v["publishers"] != nil {
			t.Fatalf("connection %s", w.Body.Bytes())
		}
		for _, s := range v["customIceServers"].([]any) {
			if _, leaked := s.(map[string]any)["staticAuthSecret"]; leaked {
				t.Fatalf("staticAuthSecret in the response: %s", w.Body.Bytes())
			}
		}
	})
}
