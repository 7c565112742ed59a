package server

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// customerApp is a stand-in for the application behind Parley (PARLEY_APP_UPSTREAM): it answers
// every HTTP request with what it saw, echoes WebSocket messages, and remembers every path.
type customerApp struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

type seen struct {
	Method, Path, Query, Host, Body     string
	XFF, XFProto, XFHost, XRealIP, Auth string
}

func newCustomerApp(t *testing.T) *customerApp {
	c := &customerApp{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.paths = append(c.paths, r.URL.Path)
		c.mu.Unlock()
		s := seen{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host,
			XFF: r.Header.Get("X-Forwarded-For"), XFProto: r.Header.Get("X-Forwarded-Proto"),
			XFHost: r.Header.Get("X-Forwarded-Host"), XRealIP: r.Header.Get("X-Real-IP"), Auth: r.Header.Get("Authorization"),
		}
		if r.URL.Path == "/ws" {
			ws, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer ws.CloseNow()
			ws.SetReadLimit(1 << 20)
			ctx := r.Context()
			hello, _ := json.Marshal(s) // first message: the upgrade request as the app saw it
			if ws.Write(ctx, websocket.MessageText, hello) != nil {
				return
			}
			for {
				typ, msg, err := ws.Read(ctx)
				if err != nil {
					return
				}
				if ws.Write(ctx, typ, append([]byte("echo: "), msg...)) != nil {
					return
				}
			}
		}
		b, _ := io.ReadAll(r.Body)
		s.Body = string(b)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *customerApp) sawPaths() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.paths...)
}

func TestCustomerAppProxy(t *testing.T) {
	up := newCustomerApp(t)
	// No trusted proxy: every forwarding header a client sends is its own lie.
	srv, base := startServer(t, "PARLEY_APP_UPSTREAM", up.URL, "PARLEY_TRUSTED_PROXIES", "none")
	host := srv.Addr().String()
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	get := func(t *testing.T, method, path, body string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}

	t.Run("http", func(t *testing.T) {
		// A client-sent X-Forwarded-For must not survive: the app would trust a lie.
		res, body := get(t, "POST", "/shop/cart?item=42", `{"qty":1}`, map[string]string{"X-Forwarded-For": "6.6.6.6", "Authorization": "Bearer app-token"})
		var s seen
		if err := json.Unmarshal([]byte(body), &s); err != nil || res.StatusCode != 200 {
			t.Fatalf("status %d body %q", res.StatusCode, body)
		}
		want := seen{Method: "POST", Path: "/shop/cart", Query: "item=42", Host: host, Body: `{"qty":1}`,
			XFF: "127.0.0.1", XFProto: "http", XFHost: host, XRealIP: "127.0.0.1", Auth: "Bearer app-token"}
		if s != want {
			t.Errorf("upstream saw\n %+v\nwant\n %+v", s, want)
		}
	})

	t.Run("websocket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws://"+host+"/ws", nil)
		if err != nil {
			t.Fatalf("dial through the proxy: %v", err)
		}
		defer ws.CloseNow()
		ws.SetReadLimit(1 << 20)
		_, hello, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var s seen
		_ = json.Unmarshal(hello, &s)
		if s.XFF != "127.0.0.1" || s.XFProto != "http" || s.XFHost != host || s.Host != host {
			t.Errorf("upgrade request seen upstream: %+v", s)
		}
		for _, msg := range []string{"hello", strings.Repeat("x", 70000)} {
			if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			_, got, err := ws.Read(ctx)
			if err != nil || string(got) != "echo: "+msg {
				t.Fatalf("echo of %d bytes: %v, got %d bytes", len(msg), err, len(got))
			}
		}
		_ = ws.Close(websocket.StatusNormalClosure, "")
	})

	t.Run("parley's own paths", func(t *testing.T) {
		before := len(up.sawPaths())
		basic := map[string]string{"Authorization": "Basic T1BFTlZJRFVBUFA6TVlfU0VDUkVU"} // OPENVIDUAPP:MY_SECRET
		checks := []struct {
			method, path string
			hdr          map[string]string
			status       int
		}{
			{"GET", "/openvidu/api/sessions", basic, 200},
			{"GET", "/openvidu/api/config", basic, 200},
			{"GET", "/openvidu/recordings/x.mp4", nil, 404},
			{"GET", "/openvidu/layouts/custom", nil, 404},
			{"GET", "/app/api/config", nil, 200},
			{"POST", "/app/api/nope", nil, 404},
			{"GET", "/test", nil, 0}, // 200 when the web app is built, 503 explaining how to build it otherwise
			{"GET", "/test/assets/app.css", nil, 0},
			{"GET", "/test/elsewhere", nil, 404},
			{"POST", "/test", nil, 405},
			{"GET", "/metrics", nil, 0},
		}
		for _, c := range checks {
			res, body := get(t, c.method, c.path, "", c.hdr)
			if c.status != 0 && res.StatusCode != c.status {
				t.Errorf("%s %s: %d, want %d (%.80q)", c.method, c.path, res.StatusCode, c.status, body)
			}
			if strings.Contains(body, `"Path":`) {
				t.Errorf("%s %s was answered by the customer's app", c.method, c.path)
			}
		}
		// The signaling socket too.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if ws, _, err := websocket.Dial(ctx, "ws://"+host+"/openvidu", nil); err == nil {
			_ = ws.Close(websocket.StatusNormalClosure, "")
		}
		if got := up.sawPaths()[before:]; len(got) != 0 {
			t.Errorf("the customer's app received Parley's paths: %v", got)
		}
		var cfg map[string]any
		_, body := get(t, "GET", "/app/api/config", "", nil)
		_ = json.Unmarshal([]byte(body), &cfg)
		if cfg["builtIn"] != false {
			t.Errorf("app config builtIn = %v with an upstream", cfg["builtIn"])
		}
	})
}

// TestCustomerAppProxyBehindTrustedProxy: behind the organisation's proxy (here: loopback, trusted
// by default) the application hears what that proxy saw, the participant's address in X-Real-IP
// above all, not the proxy's.
func TestCustomerAppProxyBehindTrustedProxy(t *testing.T) {
	up := newCustomerApp(t)
	srv, base := startServer(t, "PARLEY_APP_UPSTREAM", up.URL)
	req, _ := http.NewRequest("GET", base+"/shop", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Host", "meet.example.com")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var s seen
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	want := seen{Method: "GET", Path: "/shop", Host: srv.Addr().String(),
		XFF: "203.0.113.9, 127.0.0.1", XFProto: "https", XFHost: "meet.example.com", XRealIP: "203.0.113.9"}
	if s != want {
		t.Errorf("upstream saw\n %+v\nwant\n %+v", s, want)
	}
}

func TestCustomerAppDown(t *testing.T) {
	// A port nobody listens on: take one and close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	_, base := startServer(t, "PARLEY_APP_UPSTREAM", "http://"+addr)
	res, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), "not answering") {
		t.Errorf("got %d %q, want 502 saying the application is not answering", res.StatusCode, b)
	}
}

func TestBuiltInAppWithoutUpstream(t *testing.T) {
	_, base := startServer(t)
	res, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	// Built: the app's page; a clean clone before `make web`: the page saying how to build it.
	if !strings.Contains(string(b), "Parley") || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Errorf("/ = %d %q", res.StatusCode, b)
	}
	res2, err := http.Post(base+"/app/api/rooms/standup/join", "application/json", strings.NewReader(`{"nickname":"Ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	var j map[string]string
	_ = json.NewDecoder(res2.Body).Decode(&j)
	if res2.StatusCode != 200 || !strings.Contains(j["token"], "sessionId=room_standup&token=tok_") {
		t.Errorf("join in dev mode (open): %d %v", res2.StatusCode, j)
	}
}
