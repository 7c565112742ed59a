package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/parley/parley/internal/api"
	"github.com/parley/parley/internal/session"
)

// What openvidu-node-client 2.32.2 sends (protocol note §9.5).
const (
	nodeClientSession    = `{"mediaMode":"ROUTED","recordingMode":"MANUAL","customSessionId":"SessionA","defaultRecordingProperties":{"name":"","hasAudio":true,"hasVideo":true,"outputMode":"COMPOSED","recordingLayout":"BEST_FIT","resolution":"1280x720","frameRate":25,"shmSize":536870912}}`
	nodeClientConnection = `{"type":null,"data":null,"record":true,"role":null,"kurentoOptions":null,"rtspUri":null,"adaptativeBitrate":null,"onlyPlayWithSubscribers":null,"networkCache":null}`
	nodeClientToken      = `{"session":"S","role":"PUBLISHER","data":"","kurentoOptions":null}`
)

var tokenRE = regexp.MustCompile(`^ws://localhost:4443/openvidu\?sessionId=S&token=tok_[A-Z][A-Za-z0-9]{15}$`)

// errorBody checks OpenVidu's validation error body (protocol note §9.1).
func errorBody(t *testing.T, r reply, status int) {
	t.Helper()
	e := r.obj(t)
	if e["status"] != float64(status) || e["error"] != http.StatusText(status) || e["message"] == "" ||
		!strings.HasPrefix(e["path"].(string), "/openvidu/api/") || e["timestamp"] == nil || len(e) != 5 {
		t.Errorf("error body %s", r.body)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.session("S")
	conn := e.connection("S", "{}")
	cid := conn["id"].(string)

	endpoints := []struct{ method, path, body string }{
		{"GET", "/openvidu/api/sessions", ""},
		{"POST", "/openvidu/api/sessions", `{"customSessionId":"Sneaky"}`},
		{"GET", "/openvidu/api/sessions/S", ""},
		{"DELETE", "/openvidu/api/sessions/S", ""},
		{"POST", "/openvidu/api/sessions/S/connection", "{}"},
		{"GET", "/openvidu/api/sessions/S/connection", ""},
		{"GET", "/openvidu/api/sessions/S/connection/" + cid, ""},
		{"PATCH", "/openvidu/api/sessions/S/connection/" + cid, `{"role":"MODERATOR"}`},
		{"DELETE", "/openvidu/api/sessions/S/connection/" + cid, ""},
		{"DELETE", "/openvidu/api/sessions/S/stream/str_CAM_AAAA_" + cid, ""},
		{"POST", "/openvidu/api/tokens", `{"session":"S"}`},
		{"POST", "/openvidu/api/signal", `{"session":"S"}`},
		{"GET", "/openvidu/api/config", ""},
		{"GET", "/openvidu/api/config/openvidu-version", ""},
		{"GET", "/openvidu/api/health", ""},
		{"GET", "/openvidu/api/recordings", ""},
		{"GET", "/api/sessions", ""},
		{"GET", "/openvidu/api/no-such-thing", ""},
	}
	creds := []struct {
		name, auth string
	}{
		{"no credentials", noAuth},
		{"wrong secret", basic("OPENVIDUAPP", "WRONG_SECRET")},
		{"secret prefix", basic("OPENVIDUAPP", "MY_SECRE")},
		{"secret with suffix", basic("OPENVIDUAPP", "MY_SECRET2")},
		{"wrong user", basic("admin", secret)},
		{"empty password", basic("OPENVIDUAPP", "")},
		{"not base64", "Basic !!!"},
		{"bearer", "Bearer " + secret},
	}
	for _, c := range creds {
		for _, ep := range endpoints {
			t.Run(c.name+"/"+ep.method+" "+ep.path, func(t *testing.T) {
				r := e.do(ep.method, ep.path, ep.body, "Authorization", c.auth)
				if r.status != 401 {
					t.Fatalf("status %d, want 401: %s", r.status, r.body)
				}
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
					t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
				}
				errorBody(t, r, 401)
				for _, leak := range []string{secret, "content", "connections", "tok_", "PUBLISHER"} {
					if strings.Contains(string(r.body), leak) {
						t.Errorf("401 body reveals %q: %s", leak, r.body)
					}
				}
			})
		}
	}
	t.Run("nothing changed", func(t *testing.T) {
		all := e.m.Sessions(true)
		if len(all) != 1 || all[0].ID != "S" || len(all[0].Connections) != 1 {
			t.Fatalf("unauthenticated requests changed the model: %+v", all)
		}
	})

	public := []struct {
		name, method, path string
		hdr                []string
		wantBody           string
	}{
		{"public URL", "GET", "/openvidu/api/config/openvidu-publicurl", nil, "http://localhost:4443/"},
		{"public URL, HEAD", "HEAD", "/openvidu/api/config/openvidu-publicurl", nil, ""},
		{"public URL, legacy path", "GET", "/api/config/openvidu-publicurl", nil, "http://localhost:4443/"},
		{"preflight", "OPTIONS", "/openvidu/api/sessions", []string{"Origin", "http://app.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type"}, ""},
		{"preflight with an app header", "OPTIONS", "/openvidu/api/sessions/S/connection", []string{"Origin", "http://app.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,x-app-trace"}, ""},
		{"preflight, legacy path", "OPTIONS", "/api/tokens", []string{"Origin", "http://app.example", "Access-Control-Request-Method", "POST"}, ""},
	}
	for _, p := range public {
		t.Run(p.name, func(t *testing.T) {
			r := e.do(p.method, p.path, "", append([]string{"Authorization", noAuth}, p.hdr...)...)
			if r.status != 200 || string(r.body) != p.wantBody {
				t.Fatalf("%d %q", r.status, r.body)
			}
			if r.header.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("CORS origin %q", r.header.Get("Access-Control-Allow-Origin"))
			}
			if p.method == "OPTIONS" {
				allowed := strings.ToLower(r.header.Get("Access-Control-Allow-Headers"))
				want := "authorization"
				if i := slices.Index(p.hdr, "Access-Control-Request-Headers"); i >= 0 {
					want = p.hdr[i+1]
				}
				for _, h := range strings.Split(want, ",") {
					if !strings.Contains(allowed, h) {
						t.Errorf("preflight does not allow header %q: %q", h, allowed)
					}
				}
				if !strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") {
					t.Errorf("Access-Control-Allow-Methods %q", r.header.Get("Access-Control-Allow-Methods"))
				}
			}
		})
	}
}

func basic(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	steps := []struct {
		name, method, path, body string
		status                   int
		check                    func(t *testing.T, r reply)
	}{
		{"create as node-client", "POST", "/openvidu/api/sessions", nodeClientSession, 200, func(t *testing.T, r reply) {
			s := r.obj(t)
			if s["id"] != "SessionA" || s["sessionId"] != "SessionA" || s["customSessionId"] != "SessionA" {
				t.Errorf("ids %v %v %v", s["id"], s["sessionId"], s["customSessionId"])
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			golden(t, "session_nodeclient", r.body)
		}},
		{"duplicate custom id", "POST", "/openvidu/api/sessions", nodeClientSession, 409, func(t *testing.T, r reply) {
			if len(r.body) != 0 {
				t.Errorf("the reference answers 409 with no body: %q", r.body)
			}
		}},
		{"duplicate custom id, other properties", "POST", "/openvidu/api/sessions", `{"customSessionId":"SessionA","mediaMode":"RELAYED"}`, 409, nil},
		{"create without body", "POST", "/openvidu/api/sessions", "", 200, func(t *testing.T, r reply) {
			s := r.obj(t)
			if !regexp.MustCompile(`^ses_[A-Z][A-Za-z0-9]{9}$`).MatchString(s["id"].(string)) || s["sessionId"] != s["id"] || s["customSessionId"] != "" {
				t.Errorf("generated session %s", r.body)
			}
			golden(t, "session_default", r.body)
		}},
		{"create with null body", "POST", "/openvidu/api/sessions", "null", 200, nil},
		{"create with empty custom id", "POST", "/openvidu/api/sessions", `{"customSessionId":""}`, 200, nil},
		{"create ignores unknown and PRO keys", "POST", "/openvidu/api/sessions", `{"customSessionId":"B","mediaNode":{"id":"x"},"whatever":[1]}`, 200, nil},
		{"get", "GET", "/openvidu/api/sessions/SessionA", "", 200, func(t *testing.T, r reply) {
			if s := r.obj(t); s["sessionId"] != "SessionA" || s["connections"].(map[string]any)["numberOfElements"] != 0.0 {
				t.Errorf("%s", r.body)
			}
		}},
		{"get as node-client fetch", "GET", "/openvidu/api/sessions/SessionA?pendingConnections=true", "", 200, nil},
		{"get unknown", "GET", "/openvidu/api/sessions/nope", "", 404, nil},
		{"list", "GET", "/openvidu/api/sessions", "", 200, func(t *testing.T, r reply) {
			l := r.obj(t)
			content := l["content"].([]any)
			if l["numberOfElements"] != float64(len(content)) || len(content) != 5 {
				t.Errorf("list %s", r.body)
			}
			if content[0].(map[string]any)["sessionId"] != "SessionA" {
				t.Errorf("oldest first: %v", content[0])
			}
		}},
		{"list with stats flags", "GET", "/openvidu/api/sessions?pendingConnections=true&webRtcStats=true", "", 200, nil},
		{"delete", "DELETE", "/openvidu/api/sessions/SessionA", "", 204, func(t *testing.T, r reply) {
			if len(r.body) != 0 {
				t.Errorf("204 with a body %q", r.body)
			}
		}},
		{"get after delete", "GET", "/openvidu/api/sessions/SessionA", "", 404, nil},
		{"delete again", "DELETE", "/openvidu/api/sessions/SessionA", "", 404, nil},
		{"custom id free again", "POST", "/openvidu/api/sessions", nodeClientSession, 200, nil},
		{"legacy path create", "POST", "/api/sessions", `{"customSessionId":"Legacy"}`, 200, nil},
		{"legacy path get", "GET", "/api/sessions/Legacy", "", 200, nil},
		{"legacy path delete", "DELETE", "/api/sessions/Legacy", "", 204, nil},
	}
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			r := e.do(s.method, s.path, s.body)
			if r.status != s.status {
				t.Fatalf("status %d, want %d: %s", r.status, s.status, r.body)
			}
			if s.check != nil {
				s.check(t, r)
			}
		})
		if !ok {
			t.FailNow() // later steps depend on earlier ones
		}
	}
}

// POST /sessions fills forcedVideoCodec and allowTranscoding from the configuration when the body
// does not set them, as the reference does (node-client sends them only when the app set them).
func TestSessionDefaultsFromConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		cfg         func(*api.Config)
		body        string
		codec       string
		transcoding bool
	}{
		{"nothing configured", func(*api.Config) {}, `{}`, "MEDIA_SERVER_PREFERRED", false},
		{"configured", func(c *api.Config) { c.ForcedVideoCodec, c.AllowTranscoding = "H264", true }, `{}`, "H264", true},
		{"from the config body", func(c *api.Config) {
			c.ConfigJSON = map[string]any{"OPENVIDU_STREAMS_FORCED_VIDEO_CODEC": "VP9", "OPENVIDU_STREAMS_ALLOW_TRANSCODING": true}
		}, `{}`, "VP9", true},
		{"the body wins", func(c *api.Config) { c.ForcedVideoCodec, c.AllowTranscoding = "H264", true },
			`{"forcedVideoCodec":"VP8","allowTranscoding":false}`, "VP8", false},
		{"nulls are defaults", func(c *api.Config) { c.ForcedVideoCodec = "NONE" },
			`{"forcedVideoCodec":null,"allowTranscoding":null}`, "NONE", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.cfg(&cfg)
			e := newEnv(t, cfg)
			s := e.mustStatus(200, "POST", "/openvidu/api/sessions", tc.body).obj(t)
			if s["forcedVideoCodec"] != tc.codec || s["allowTranscoding"] != tc.transcoding {
				t.Errorf("forcedVideoCodec=%v allowTranscoding=%v", s["forcedVideoCodec"], s["allowTranscoding"])
			}
		})
	}
}

func TestCreateSessionBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rec := func(props string) string { return `{"defaultRecordingProperties":` + props + `}` }
	bad := []struct{ name, body string }{
		{"malformed JSON", `{"customSessionId":`},
		{"trailing garbage", `{} {}`},
		{"array", `[1,2]`},
		{"string", `"SessionA"`},
		{"number", `42`},
		{"customSessionId number", `{"customSessionId":42}`},
		{"customSessionId bool", `{"customSessionId":true}`},
		{"customSessionId object", `{"customSessionId":{}}`},
		{"customSessionId characters", `{"customSessionId":"a b/c"}`},
		{"customSessionId dot", `{"customSessionId":"a.b"}`},
		{"customSessionId too long", `{"customSessionId":"` + strings.Repeat("a", 129) + `"}`},
		{"mediaMode X", `{"mediaMode":"X"}`},
		{"mediaMode lowercase", `{"mediaMode":"routed"}`},
		{"mediaMode number", `{"mediaMode":1}`},
		{"recordingMode", `{"recordingMode":"SOMETIMES"}`},
		{"forcedVideoCodec", `{"forcedVideoCodec":"AV1"}`},
		{"allowTranscoding string", `{"allowTranscoding":"yes"}`},
		{"recording props string", rec(`"x"`)},
		{"recording props array", rec(`[]`)},
		{"recording outputMode", rec(`{"outputMode":"MOVIE"}`)},
		{"recording name characters", rec(`{"name":"my recording"}`)},
		{"recording name number", rec(`{"name":5}`)},
		{"recording without audio and video", rec(`{"hasAudio":false,"hasVideo":false}`)},
		{"recording hasAudio string", rec(`{"hasAudio":"true"}`)},
		{"recording layout", rec(`{"recordingLayout":"GRID"}`)},
		{"recording resolution format", rec(`{"resolution":"1280*720"}`)},
		{"recording resolution too big", rec(`{"resolution":"2000x720"}`)},
		{"recording resolution too small", rec(`{"resolution":"1280x99"}`)},
		{"recording resolution leading zero", rec(`{"resolution":"0128x720"}`)},
		{"recording resolution number", rec(`{"resolution":1280}`)},
		{"recording frameRate 0", rec(`{"frameRate":0}`)},
		{"recording frameRate 121", rec(`{"frameRate":121}`)},
		{"recording frameRate string", rec(`{"frameRate":"25"}`)},
		{"recording frameRate huge", rec(`{"frameRate":1e400}`)},
		{"recording shmSize small", rec(`{"shmSize":1000}`)},
		{"nesting deeper than encoding/json allows", `{"x":` + strings.Repeat("[", 10_001) + strings.Repeat("]", 10_001) + `}`},
		{"invalid UTF-8 outside strings", "{\xff}"},
		{"recording ignoreFailedStreams string", rec(`{"outputMode":"INDIVIDUAL","ignoreFailedStreams":"no"}`)},
	}
	for _, tc := range bad {
		t.Run("400/"+tc.name, func(t *testing.T) {
			r := e.do("POST", "/openvidu/api/sessions", tc.body)
			if r.status != 400 {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			errorBody(t, r, 400)
			if tc.name == "mediaMode X" {
				golden(t, "error_400", r.body)
			}
		})
	}
	good := []struct{ name, body, key, want string }{
		{"RELAYED accepted", `{"mediaMode":"RELAYED"}`, "mediaMode", "RELAYED"},
		{"ALWAYS accepted", `{"recordingMode":"ALWAYS"}`, "recordingMode", "ALWAYS"},
		{"custom id characters", `{"customSessionId":"Room_1-b"}`, "customSessionId", "Room_1-b"},
		{"custom id of 128", `{"customSessionId":"` + strings.Repeat("b", 128) + `"}`, "customSessionId", strings.Repeat("b", 128)},
		{"frameRate as a float", rec(`{"frameRate":30.0}`), "defaultRecordingProperties.frameRate", "30"},
		{"audio-only composed hides video fields", rec(`{"hasVideo":false}`), "defaultRecordingProperties", `{"hasAudio":true,"hasVideo":false,"name":"","outputMode":"COMPOSED"}`},
		{"individual", rec(`{"outputMode":"INDIVIDUAL","ignoreFailedStreams":true}`), "defaultRecordingProperties", `{"hasAudio":true,"hasVideo":true,"ignoreFailedStreams":true,"name":"","outputMode":"INDIVIDUAL"}`},
		// The reference reads layout and resolution only for composed output.
		{"individual ignores composed fields", rec(`{"outputMode":"INDIVIDUAL","recordingLayout":"GRID","resolution":"1x1"}`), "defaultRecordingProperties.outputMode", "INDIVIDUAL"},
		{"custom layout", rec(`{"recordingLayout":"CUSTOM","customLayout":"mine/index.html","name":"rec~1"}`), "defaultRecordingProperties.customLayout", "mine/index.html"},
		{"largest resolution", rec(`{"resolution":"1999x100"}`), "defaultRecordingProperties.resolution", "1999x100"},
	}
	for i, tc := range good {
		t.Run("200/"+tc.name, func(t *testing.T) {
			body := tc.body
			if !strings.Contains(body, "customSessionId") {
				body = strings.Replace(body, "{", fmt.Sprintf(`{"customSessionId":"good%d",`, i), 1)
			}
			r := e.do("POST", "/openvidu/api/sessions", body)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var v any = r.obj(t)
			for _, k := range strings.Split(tc.key, ".") {
				v = v.(map[string]any)[k]
			}
			got, _ := json.Marshal(v)
			if s, ok := v.(string); ok {
				got = []byte(s)
			}
			if string(got) != tc.want {
				t.Errorf("%s = %s, want %s", tc.key, got, tc.want)
			}
		})
	}
}

func TestOversizedBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.session("S")
	cid := e.connection("S", "{}")["id"].(string)
	big := `{"data":"` + strings.Repeat("a", 64<<10) + `"}`
	for _, ep := range []struct{ method, path string }{
		{"POST", "/openvidu/api/sessions"},
		{"POST", "/openvidu/api/sessions/S/connection"},
		{"PATCH", "/openvidu/api/sessions/S/connection/" + cid},
		{"POST", "/openvidu/api/tokens"},
		{"POST", "/openvidu/api/signal"},
	} {
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			r := e.do(ep.method, ep.path, big)
			if r.status != 413 {
				t.Fatalf("status %d, want 413", r.status)
			}
			errorBody(t, r, 413)
		})
	}
	t.Run("just under the limit", func(t *testing.T) {
		body := `{"data":"` + strings.Repeat("a", 64<<10-11) + `"}`
		if len(body) != 64<<10 {
			t.Fatalf("body of %d bytes", len(body))
		}
		e.mustStatus(200, "POST", "/openvidu/api/sessions/S/connection", body)
	})
	t.Run("still serving", func(t *testing.T) {
		e.mustStatus(200, "GET", "/openvidu/api/sessions/S", "")
	})
}

func TestConnectionLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.session("S")

	var pending map[string]any
	t.Run("create as node-client", func(t *testing.T) {
		r := e.mustStatus(200, "POST", "/openvidu/api/sessions/S/connection", nodeClientConnection)
		pending = r.obj(t)
		for _, k := range []string{"activeAt", "location", "ip", "platform", "clientData", "publishers", "subscribers",
			"kurentoOptions", "rtspUri", "adaptativeBitrate", "onlyPlayWithSubscribers", "networkCache"} {
			if v, ok := pending[k]; !ok || v != nil {
				t.Errorf("%s = %v (present %v), want null", k, v, ok)
			}
		}
		if pending["connectionId"] != pending["id"] || pending["status"] != "pending" || pending["type"] != "WEBRTC" ||
			pending["role"] != "PUBLISHER" || pending["record"] != true || pending["serverData"] != "" || pending["sessionId"] != "S" {
			t.Errorf("%s", r.body)
		}
		if !tokenRE.MatchString(pending["token"].(string)) {
			t.Errorf("token %q", pending["token"])
		}
		if !strings.Contains(string(r.body), "&token=tok_") {
			t.Errorf("the token's '&' is escaped: %s", r.body)
		}
		golden(t, "connection_pending", r.body)
	})
	if pending == nil {
		t.FailNow()
	}
	cid := pending["id"].(string)
	path := "/openvidu/api/sessions/S/connection/" + cid

	t.Run("create with every option", func(t *testing.T) {
		r := e.mustStatus(200, "POST", "/openvidu/api/sessions/S/connection", `{"type":"WEBRTC","data":"{\"name\":\"Ann\"}","record":false,"role":"MODERATOR",`+
			`"kurentoOptions":{"videoMaxRecvBandwidth":500,"videoMinSendBandwidth":100.0,"allowedFilters":["GStreamerFilter","FaceOverlayFilter"]},`+
			`"customIceServers":[{"url":"turn:turn.example.com:3478?transport=tcp","username":"u","credential":"p"},{"url":"stun:stun.example.com"},{"url":"turns:[2001:db8::1]:443","staticAuthSecret":"hunter2"}]}`)
		if strings.Contains(string(r.body), "hunter2") || strings.Contains(string(r.body), "staticAuthSecret") {
			t.Errorf("the response reveals a staticAuthSecret: %s", r.body)
		}
		golden(t, "connection_options", r.body)
	})
	t.Run("create with other bodies", func(t *testing.T) {
		for _, body := range []string{"", "{}", "null", `{"customIceServers":[]}`, `{"kurentoOptions":{}}`, `{"role":"SUBSCRIBER","record":null}`} {
			if r := e.do("POST", "/openvidu/api/sessions/S/connection", body); r.status != 200 {
				t.Errorf("%q: %d %s", body, r.status, r.body)
			}
		}
	})
	t.Run("create in an unknown session", func(t *testing.T) {
		e.mustStatus(404, "POST", "/openvidu/api/sessions/nope/connection", "{}")
		e.mustStatus(404, "POST", "/openvidu/api/sessions/nope/connection", "{malformed")
	})
	t.Run("list includes pending by default", func(t *testing.T) {
		l := e.mustStatus(200, "GET", "/openvidu/api/sessions/S/connection", "").obj(t)
		if l["numberOfElements"] != 8.0 || len(l["content"].([]any)) != 8 {
			t.Errorf("%v", l["numberOfElements"])
		}
		if l := e.mustStatus(200, "GET", "/openvidu/api/sessions/S/connection?pendingConnections=false", "").obj(t); l["numberOfElements"] != 0.0 {
			t.Errorf("pendingConnections=false lists %v", l["numberOfElements"])
		}
		e.mustStatus(404, "GET", "/openvidu/api/sessions/nope/connection", "")
	})
	t.Run("session lists pending only when asked", func(t *testing.T) {
		if s := e.mustStatus(200, "GET", "/openvidu/api/sessions/S", "").obj(t); s["connections"].(map[string]any)["numberOfElements"] != 0.0 {
			t.Error("GET session without pendingConnections=true lists pending connections")
		}
		s := e.mustStatus(200, "GET", "/openvidu/api/sessions/S?pendingConnections=true", "").obj(t)
		if c := s["connections"].(map[string]any); c["numberOfElements"] != 8.0 || c["content"].([]any)[0].(map[string]any)["id"] != cid {
			t.Errorf("%v", c["numberOfElements"])
		}
	})
	t.Run("get", func(t *testing.T) {
		r := e.mustStatus(200, "GET", path, "")
		got := r.obj(t)
		if got["token"] != pending["token"] || got["createdAt"] != pending["createdAt"] || got["status"] != "pending" {
			t.Errorf("%s", r.body)
		}
		e.mustStatus(404, "GET", "/openvidu/api/sessions/S/connection/con_Nobody1234", "")
		e.mustStatus(400, "GET", "/openvidu/api/sessions/nope/connection/"+cid, "")
	})
	t.Run("patch", func(t *testing.T) {
		if c := e.mustStatus(200, "PATCH", path, `{"role":"SUBSCRIBER","record":false}`).obj(t); c["role"] != "SUBSCRIBER" || c["record"] != false {
			t.Errorf("%v", c)
		}
		if c := e.mustStatus(200, "PATCH", path, `{}`).obj(t); c["role"] != "SUBSCRIBER" {
			t.Errorf("an empty PATCH changed the role: %v", c["role"])
		}
		e.mustStatus(200, "PATCH", path, `{"role":"PUBLISHER","record":true}`)
		e.mustStatus(400, "PATCH", path, `{"role":"KING"}`)
		e.mustStatus(400, "PATCH", path, `{"record":"no"}`)
		e.mustStatus(400, "PATCH", path, `{"role":`)
		e.mustStatus(404, "PATCH", "/openvidu/api/sessions/S/connection/con_Nobody1234", `{}`)
		e.mustStatus(400, "PATCH", "/openvidu/api/sessions/nope/connection/"+cid, `{}`)
	})
	t.Run("delete pending", func(t *testing.T) {
		e.mustStatus(204, "DELETE", path, "")
		l := e.mustStatus(200, "GET", "/openvidu/api/sessions/S/connection", "")
		if strings.Contains(string(l.body), cid) || strings.Contains(string(l.body), pending["token"].(string)) {
			t.Error("the deleted connection is still listed")
		}
		if _, _, err := e.m.Join("S", pending["token"].(string), session.JoinInfo{}, &sink{}); err == nil {
			t.Error("the token of a deleted connection still joins")
		}
		e.mustStatus(404, "GET", path, "")
		e.mustStatus(404, "DELETE", path, "")
		e.mustStatus(400, "DELETE", "/openvidu/api/sessions/nope/connection/"+cid, "")
	})
}

func TestActiveConnection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.session("S")
	a := e.connection("S", `{"data":"server-data","role":"MODERATOR"}`)
	b := e.connection("S", `{}`)
	_, sa := e.join("S", a, session.JoinInfo{Metadata: `{"clientData":"Ann"}`, Platform: "Chrome 120.0 on Linux 64-bit", IP: "192.0.2.10"})
	_, sb := e.join("S", b, session.JoinInfo{Metadata: "Bob", Platform: "Firefox 121.0 on Ubuntu 64-bit", IP: "192.0.2.11"})

	r := e.mustStatus(200, "GET", "/openvidu/api/sessions/S/connection/"+a["id"].(string), "")
	c := r.obj(t)
	if c["status"] != "active" || c["activeAt"] == nil || c["location"] != "unknown" || c["ip"] != "192.0.2.10" ||
		c["clientData"] != `{"clientData":"Ann"}` || c["serverData"] != "server-data" || c["createdAt"] != a["createdAt"] {
		t.Errorf("%s", r.body)
	}
	if c["activeAt"].(float64) < c["createdAt"].(float64) {
		t.Error("activeAt before createdAt")
	}
	golden(t, "connection_active", r.body)

	s := e.mustStatus(200, "GET", "/openvidu/api/sessions/S", "").obj(t)
	if s["connections"].(map[string]any)["numberOfElements"] != 2.0 {
		t.Errorf("active connections of the session: %v", s["connections"])
	}
	sb.take()

	t.Run("token already used", func(t *testing.T) {
		if _, _, err := e.m.Join("S", a["token"].(string), session.JoinInfo{}, &sink{}); err == nil {
			t.Error("a token joined twice")
		}
	})
	t.Run("force disconnect", func(t *testing.T) {
		e.mustStatus(204, "DELETE", "/openvidu/api/sessions/S/connection/"+b["id"].(string), "")
		if !evicted(sa.take(), b["id"].(string), "forceDisconnectByServer") {
			t.Error("the other participant was not told")
		}
		if !evicted(sb.take(), b["id"].(string), "forceDisconnectByServer") {
			t.Error("the evicted participant was not told")
		}
		e.mustStatus(404, "GET", "/openvidu/api/sessions/S/connection/"+b["id"].(string), "")
	})
	t.Run("close session", func(t *testing.T) {
		e.mustStatus(204, "DELETE", "/openvidu/api/sessions/S", "")
		if !evicted(sa.take(), a["id"].(string), "sessionClosedByServer") {
			t.Error("the participant was not told the session closed")
		}
		e.mustStatus(404, "GET", "/openvidu/api/sessions/S", "")
	})
}

func evicted(events []session.Event, cid, reason string) bool {
	for _, ev := range events {
		if ev.Kind == session.ParticipantEvicted && string(ev.Connection) == cid && ev.Reason == reason {
			return true
		}
	}
	return false
}

func TestCreateConnectionBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.session("S")
	ice := func(servers string) string { return `{"customIceServers":` + servers + `}` }
	bad := []struct{ name, body string }{
		{"malformed", `{"role":`},
		{"array", `[]`},
		{"data number", `{"data":999}`},
		{"data object", `{"data":{"name":"Ann"}}`},
		{"role KING", `{"role":"KING"}`},
		{"role lowercase", `{"role":"publisher"}`},
		{"role number", `{"role":1}`},
		{"record string", `{"record":"yes"}`},
		{"type SIP", `{"type":"SIP"}`},
		{"type IPCAM without rtspUri", `{"type":"IPCAM"}`},
		{"type IPCAM file URI", `{"type":"IPCAM","rtspUri":"file:///etc/passwd"}`},
		{"type IPCAM http URI", `{"type":"IPCAM","rtspUri":"http://169.254.169.254/"}`},
		{"type IPCAM networkCache negative", `{"type":"IPCAM","rtspUri":"rtsp://cam.example.com/live","networkCache":-1}`},
		{"kurentoOptions string", `{"kurentoOptions":"fast"}`},
		{"kurentoOptions bandwidth string", `{"kurentoOptions":{"videoMaxRecvBandwidth":"lots"}}`},
		{"kurentoOptions filters string", `{"kurentoOptions":{"allowedFilters":"GStreamerFilter"}}`},
		{"kurentoOptions filters numbers", `{"kurentoOptions":{"allowedFilters":[1]}}`},
		{"ice not an array", ice(`"turn:x"`)},
		{"ice entry not an object", ice(`["stun:stun.example.com"]`)},
		{"ice entry without url", ice(`[{}]`)},
		{"ice url number", ice(`[{"url":5}]`)},
		{"ice stun with credentials", ice(`[{"url":"stun:x.example.com","username":"u","credential":"p"}]`)},
		{"ice turn without credentials", ice(`[{"url":"turn:x.example.com:3478"}]`)},
		{"ice turn with username only", ice(`[{"url":"turn:x.example.com","username":"u"}]`)},
		{"ice secret and credentials", ice(`[{"url":"turn:x.example.com","username":"u","credential":"p","staticAuthSecret":"s"}]`)},
		{"ice scheme http", ice(`[{"url":"http://x.example.com"}]`)},
		{"ice no colon", ice(`[{"url":"stunx.example.com"}]`)},
		{"ice query on stun", ice(`[{"url":"stun:x.example.com?transport=udp"}]`)},
		{"ice bad transport", ice(`[{"url":"turn:x.example.com?transport=sctp","username":"u","credential":"p"}]`)},
		{"ice port 0", ice(`[{"url":"stun:x.example.com:0"}]`)},
		{"ice port 70000", ice(`[{"url":"stun:x.example.com:70000"}]`)},
		{"ice empty host", ice(`[{"url":"stun::3478"}]`)},
		{"ice unbracketed IPv6", ice(`[{"url":"stun:2001:db8::1:3478"}]`)},
		{"ice second entry bad", ice(`[{"url":"stun:ok.example.com"},{"url":"turn:bad.example.com"}]`)},
	}
	for _, tc := range bad {
		t.Run("400/"+tc.name, func(t *testing.T) {
			r := e.do("POST", "/openvidu/api/sessions/S/connection", tc.body)
			if r.status != 400 {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			errorBody(t, r, 400)
		})
	}
	t.Run("nothing was created", func(t *testing.T) {
		if si, _ := e.m.Room("S").Info(true); len(si.Connections) != 0 {
			t.Fatalf("%d connections created by bad requests", len(si.Connections))
		}
	})
}

func TestLegacyTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.session("S")
	t.Run("node-client generateToken", func(t *testing.T) {
		r := e.mustStatus(200, "POST", "/openvidu/api/tokens", nodeClientToken)
		tok := r.obj(t)
		if tok["id"] != tok["token"] || !tokenRE.MatchString(tok["token"].(string)) || tok["session"] != "S" || tok["role"] != "PUBLISHER" {
			t.Errorf("%s", r.body)
		}
		if _, ok := tok["kurentoOptions"]; ok {
			t.Error("kurentoOptions present although not set")
		}
		golden(t, "token_legacy", r.body)
		c := e.mustStatus(200, "GET", "/openvidu/api/sessions/S/connection/"+tok["connectionId"].(string), "").obj(t)
		if c["token"] != tok["token"] || c["status"] != "pending" {
			t.Errorf("the token's connection: %v", c)
		}
	})
	t.Run("options", func(t *testing.T) {
		tok := e.mustStatus(200, "POST", "/api/tokens", `{"session":"S","role":"SUBSCRIBER","data":"d","record":"ignored","kurentoOptions":{"videoMaxSendBandwidth":300}}`).obj(t)
		if tok["role"] != "SUBSCRIBER" || tok["data"] != "d" || tok["kurentoOptions"].(map[string]any)["videoMaxSendBandwidth"] != 300.0 {
			t.Errorf("%v", tok)
		}
	})
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"no session", `{"role":"SUBSCRIBER"}`, 400},
		{"empty session", `{"session":""}`, 400},
		{"session number", `{"session":1}`, 400},
		{"role KING", `{"session":"S","role":"KING"}`, 400},
		{"data number", `{"session":"S","data":1}`, 400},
		{"malformed", `{"session":`, 400},
		{"no body", ``, 400},
		{"unknown session", `{"session":"nope"}`, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := e.do("POST", "/openvidu/api/tokens", tc.body); r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
		})
	}
}

func TestSignal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.session("S")
	e.session("Empty")
	a, b := e.connection("S", "{}"), e.connection("S", "{}")
	p := e.connection("S", "{}") // stays pending
	signal := func(body string) reply { return e.do("POST", "/openvidu/api/signal", body) }

	if r := signal(`{"session":"S","type":"chat","data":"before anyone joined"}`); r.status != 406 {
		t.Fatalf("signal to a session without participants: %d, want 406", r.status)
	}
	_, sa := e.join("S", a, session.JoinInfo{})
	_, sb := e.join("S", b, session.JoinInfo{})
	sa.take()
	aid, bid, pid := a["id"].(string), b["id"].(string), p["id"].(string)

	tests := []struct {
		name, body string
		status     int
		toA, toB   bool
	}{
		{"everyone", `{"session":"S","type":"chat","data":"hi"}`, 200, true, true},
		{"empty to is everyone", `{"session":"S","to":[],"type":"chat","data":"hi"}`, 200, true, true},
		{"null to is everyone", `{"session":"S","to":null}`, 200, true, true},
		{"one recipient", `{"session":"S","to":["` + bid + `"],"type":"chat","data":"hi"}`, 200, false, true},
		{"missing session", `{"type":"chat"}`, 400, false, false},
		{"session number", `{"session":1}`, 400, false, false},
		{"to not an array", `{"session":"S","to":"` + bid + `"}`, 400, false, false},
		{"to with a number", `{"session":"S","to":[1]}`, 400, false, false},
		{"type number", `{"session":"S","type":1}`, 400, false, false},
		{"data object", `{"session":"S","data":{"x":1}}`, 400, false, false},
		{"malformed", `{"session":`, 400, false, false},
		{"unknown session", `{"session":"nope","data":"x"}`, 404, false, false},
		{"session without participants", `{"session":"Empty","data":"x"}`, 406, false, false},
		{"unknown recipient", `{"session":"S","to":["con_Nobody1234"],"data":"x"}`, 406, false, false},
		{"one unknown recipient stops all", `{"session":"S","to":["` + aid + `","con_Nobody1234"],"data":"x"}`, 406, false, false},
		{"pending recipient", `{"session":"S","to":["` + pid + `"],"data":"x"}`, 406, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := signal(tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status == 200 && len(r.body) != 0 {
				t.Errorf("200 with a body %q", r.body)
			}
			for who, s := range map[string]struct {
				sink *sink
				want bool
			}{"A": {sa, tc.toA}, "B": {sb, tc.toB}} {
				got := s.sink.take()
				if got := len(got) == 1 && got[0].Kind == session.SignalSent; got != s.want {
					t.Errorf("%s received the signal: %v, want %v", who, got, s.want)
				}
			}
		})
	}
	t.Run("what a participant gets", func(t *testing.T) {
		signal(`{"session":"S","to":["` + aid + `"],"type":"my-type","data":"payload"}`)
		ev := sa.take()
		if len(ev) != 1 || ev[0].Signal.Type != "my-type" || ev[0].Signal.Data != "payload" || ev[0].Signal.From != "" ||
			!slices.Equal(ev[0].Signal.To, []session.ConnectionID{session.ConnectionID(aid)}) {
			t.Errorf("%+v", ev)
		}
	})
}

func TestConfigEndpoints(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.ConfigJSON = map[string]any{"VERSION": api.Version, "OPENVIDU_PUBLICURL": cfg.PublicURL, "OPENVIDU_RECORDING": false}
	e := newEnv(t, cfg)
	bare := newEnv(t) // no ConfigJSON given: a minimal body from the other fields
	tests := []struct {
		name        string
		e           *env
		path        string
		contentType string
		body        string // exact text, or for JSON objects the expected keys and values
	}{
		{"config", e, "/openvidu/api/config", "application/json", `{"OPENVIDU_PUBLICURL":"http://localhost:4443/","OPENVIDU_RECORDING":false,"VERSION":"2.32.2"}`},
		{"config without ConfigJSON", bare, "/openvidu/api/config", "application/json", `{"VERSION":"2.32.2","OPENVIDU_PUBLICURL":"http://localhost:4443/","HTTPS_PORT":4443}`},
		{"version", e, "/openvidu/api/config/openvidu-version", "text/plain", "2.32.2"},
		{"public URL", e, "/openvidu/api/config/openvidu-publicurl", "text/plain", "http://localhost:4443/"},
		{"recording", e, "/openvidu/api/config/openvidu-recording", "application/json", "false"},
		{"cdr", e, "/openvidu/api/config/openvidu-cdr", "application/json", "false"},
		{"recording path", e, "/openvidu/api/config/openvidu-recording-path", "text/plain", ""},
		{"health", e, "/openvidu/api/health", "application/json", `{"disconnectedMediaNodes":[],"status":"UP"}`},
		{"legacy config", e, "/api/config/openvidu-version", "text/plain", "2.32.2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.e.mustStatus(200, "GET", tc.path, "")
			if !strings.HasPrefix(r.header.Get("Content-Type"), tc.contentType) {
				t.Errorf("Content-Type %q, want %s", r.header.Get("Content-Type"), tc.contentType)
			}
			if !strings.HasPrefix(tc.body, "{") {
				if string(r.body) != tc.body {
					t.Errorf("body %q, want %q", r.body, tc.body)
				}
				return
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(tc.body), &want); err != nil {
				t.Fatal(err)
			}
			got := r.obj(t)
			for k, v := range want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
	e.mustStatus(404, "GET", "/openvidu/api/config/openvidu-nothing", "")
}

func TestRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := testConfig()
	cfg.SupportDeprecatedAPI = false
	strict := newEnv(t, cfg)
	e.session("S")
	tests := []struct {
		name, method, path string
		e                  *env
		status             int // 0: any 4xx
	}{
		{"recordings list", "GET", "/openvidu/api/recordings", e, 501},
		{"recording start", "POST", "/openvidu/api/recordings/start", e, 501},
		{"recording stop", "POST", "/openvidu/api/recordings/stop/S", e, 501},
		{"recording get", "GET", "/openvidu/api/recordings/S", e, 501},
		{"recording delete", "DELETE", "/openvidu/api/recordings/S", e, 501},
		{"legacy recordings", "GET", "/api/recordings", e, 501},
		{"unknown endpoint", "GET", "/openvidu/api/nothing-here", e, 404},
		{"unknown nested", "GET", "/openvidu/api/sessions/S/nothing", e, 404},
		{"PUT sessions", "PUT", "/openvidu/api/sessions", e, 0},
		{"DELETE all sessions", "DELETE", "/openvidu/api/sessions", e, 0},
		{"POST to a session", "POST", "/openvidu/api/sessions/S", e, 0},
		{"empty session id", "GET", "/openvidu/api/sessions/", e, 0},
		{"legacy path turned off", "GET", "/api/sessions", strict, 404},
		// An escaped '/' stays inside the id: this names session "S/connection", not S's list.
		{"escaped slash in an id", "GET", "/openvidu/api/sessions/S%2Fconnection", e, 404},
		{"escaped slash in an id, legacy path", "GET", "/api/sessions/S%2Fconnection", e, 404},
		{"HEAD sessions", "HEAD", "/openvidu/api/sessions", e, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.e.do(tc.method, tc.path, "")
			if tc.status == 0 && r.status/100 != 4 || tc.status != 0 && r.status != tc.status {
				t.Fatalf("status %d, want %d", r.status, tc.status)
			}
		})
	}
	t.Run("session survives", func(t *testing.T) {
		e.mustStatus(200, "GET", "/openvidu/api/sessions/S", "")
	})
}

// node-client retries with GET on 409; two backends creating the same room must get one session.
func TestConcurrentCustomSessionID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 16
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- e.do("POST", "/openvidu/api/sessions", `{"customSessionId":"Room"}`).status
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[200] != 1 || count[409] != n-1 {
		t.Fatalf("statuses %v, want one 200 and %d 409", count, n-1)
	}
}

// Tokens are bearer credentials and the secret is the REST password: neither may reach the logs,
// whatever happens.
func TestNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.session("S")
	c := e.connection("S", `{"customIceServers":[{"url":"turns:t.example.com:443","staticAuthSecret":"hunter2-ice"}]}`)
	tok := e.mustStatus(200, "POST", "/openvidu/api/tokens", `{"session":"S"}`).obj(t)
	e.join("S", c, session.JoinInfo{IP: "192.0.2.1"})
	e.do("GET", "/openvidu/api/sessions", "", "Authorization", basic("OPENVIDUAPP", "hunter2-guess"))
	e.do("POST", "/openvidu/api/signal", `{"session":"S","data":"`+c["token"].(string)+`"}`)
	e.do("POST", "/openvidu/api/sessions/S/connection", `{"data":1,"x":"`+tok["token"].(string)+`"}`)
	e.mustStatus(204, "DELETE", "/openvidu/api/sessions/S/connection/"+tok["connectionId"].(string), "")
	e.mustStatus(204, "DELETE", "/openvidu/api/sessions/S", "")
	logs := e.logs.String()
	if logs == "" {
		t.Fatal("nothing logged: the test cannot see anything")
	}
	for _, s := range []string{"tok_", secret, "hunter2"} {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain %q:\n%s", s, logs)
		}
	}
}
