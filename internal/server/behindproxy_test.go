package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"

	"github.com/parley/parley/internal/clientip"
)

// startBehindProxy runs Parley in proxied mode as the organisation's proxy would reach it: plain
// HTTP on a loopback port (the test is the proxy, on loopback, trusted by default), TURN and
// ICE-TCP on a TCP port of their own. It returns the server and its plain-HTTP base URL.
func startBehindProxy(t *testing.T, overrides ...string) (*Server, string) {
	t.Helper()
	env := []string{
		"DOMAIN_OR_PUBLIC_IP", "meet.example.com", "OPENVIDU_SECRET", "proxied-mode-secret",
		"HTTPS_PORT", "443", "PARLEY_BEHIND_PROXY", "true", "PARLEY_HTTP_ADDR", "127.0.0.1:0",
		"PARLEY_MEDIA_TCP_PORT", "0", "PARLEY_MEDIA_PORT", "0",
		"PARLEY_TURN_TLS_HOST", "turn.meet.example.com", "PARLEY_DATA_DIR", t.TempDir(), "PARLEY_METRICS_ADDR", "off",
	}
	return startServer(t, append(env, overrides...)...)
}

func restAs(t *testing.T, method, url, secret string, hdr http.Header, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.SetBasicAuth("OPENVIDUAPP", secret)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestBehindProxy: with PARLEY_BEHIND_PROXY=true, REST and signaling answer in plain HTTP on
// PARLEY_HTTP_ADDR, yet everything a client is told names the public URL the proxy serves; the
// participant's address is the one the proxy forwards; TURN is offered at the turns: host name the
// proxy passes through and answers over TLS on PARLEY_MEDIA_TCP_PORT with a certificate for it.
func TestBehindProxy(t *testing.T) {
	srv, base := startBehindProxy(t)
	const secret = "proxied-mode-secret"
	if st, body := restAs(t, "GET", base+"/openvidu/api/config/openvidu-publicurl", secret, nil, ""); st != 200 || body != "https://meet.example.com/" {
		t.Fatalf("openvidu-publicurl = %d %q, want https://meet.example.com/", st, body)
	}
	if st, _ := restAs(t, "POST", base+"/openvidu/api/sessions", secret, nil, `{"customSessionId":"proxied"}`); st != 200 {
		t.Fatalf("create session: %d", st)
	}
	st, body := restAs(t, "POST", base+"/openvidu/api/sessions/proxied/connection", secret, nil, `{}`)
	if st != 200 || !strings.Contains(body, `"token":"wss://meet.example.com/openvidu?sessionId=proxied`) {
		t.Fatalf("connection: %d %s, want a token for wss://meet.example.com/openvidu", st, body)
	}
	token := body[strings.Index(body, "wss://") : strings.Index(body, "wss://")+strings.Index(body[strings.Index(body, "wss://"):], `"`)]

	// The proxy forwards the participant's WebSocket with its address in X-Forwarded-For.
	cl := dialWith(t, base, http.Header{"X-Forwarded-For": {"203.0.113.9"}, "X-Forwarded-Proto": {"https"}})
	r := cl.result("joinRoom", map[string]any{"token": token, "session": "proxied", "metadata": ""})
	id := r["id"].(string)
	if st, body := restAs(t, "GET", base+"/openvidu/api/sessions/proxied/connection/"+id, secret, nil, ""); st != 200 || !strings.Contains(body, `"ip":"203.0.113.9"`) {
		t.Errorf("connection seen through the proxy: %d %s, want ip 203.0.113.9", st, body)
	}

	mediaTCP := srv.EdgeAddr().(*net.TCPAddr).Port
	var urls []string
	var user, pass string
	for _, e := range r["customIceServers"].([]any) {
		m := e.(map[string]any)
		urls = append(urls, m["url"].(string))
		user, pass = m["username"].(string), m["credential"].(string)
	}
	want := []string{"turns:turn.meet.example.com:443?transport=tcp", "turn:meet.example.com:" + strconv.Itoa(mediaTCP) + "?transport=tcp"}
	if strings.Join(urls, " ") != strings.Join(want, " ") {
		t.Errorf("ICE servers %v, want %v", urls, want)
	}

	// What the proxy's SNI split passes on: TLS for the turns: name, straight to the media TCP port.
	dialTLS := func(t *testing.T) *tls.Conn {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.EdgeAddr().String(),
			&tls.Config{ServerName: "turn.meet.example.com", InsecureSkipVerify: true}) //nolint:gosec // the self-signed certificate is checked below
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	t.Run("TURN over TLS on the media TCP port", func(t *testing.T) {
		c := dialTLS(t)
		if err := c.ConnectionState().PeerCertificates[0].VerifyHostname("turn.meet.example.com"); err != nil {
			t.Errorf("the certificate is not for the turns: host: %v", err)
		}
		tc, err := pionturn.NewClient(&pionturn.ClientConfig{
			STUNServerAddr: srv.EdgeAddr().String(), TURNServerAddr: srv.EdgeAddr().String(),
			Conn: pionturn.NewSTUNConn(c), Username: user, Password: pass,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		if err := tc.Listen(); err != nil {
			t.Fatal(err)
		}
		relay, err := tc.Allocate()
		if err != nil {
			t.Fatalf("allocate over TLS with the participant's credential: %v", err)
		}
		_ = relay.Close()
	})
	t.Run("a browser sent to the turns: host lands on the public URL", func(t *testing.T) {
		c := dialTLS(t)
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: turn.meet.example.com\r\nConnection: close\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "https://meet.example.com/" {
			t.Errorf("HTTPS on the media TCP port: %d to %q, want 302 to https://meet.example.com/", res.StatusCode, res.Header.Get("Location"))
		}
	})
}

// TestBehindProxyRefusesOthers: the plain-HTTP port carries secrets in clear text, so a peer
// outside PARLEY_TRUSTED_PROXIES gets 403 and the public URL, whatever headers it sends.
func TestBehindProxyRefusesOthers(t *testing.T) {
	t.Parallel()
	h := proxyOnly(clientip.New([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}), "https://meet.example.com/",
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "served") }),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tc := range []struct {
		name, remote string
		want         int
	}{
		{"the proxy", "10.1.2.3:5000", 200},
		{"a stranger", "198.51.100.7:5000", 403},
	} {
		req := httptest.NewRequest("GET", "/openvidu/api/sessions", nil)
		req.RemoteAddr = tc.remote
		req.Header.Set("X-Forwarded-For", "10.1.2.3")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want || (tc.want == 403 && !strings.Contains(rec.Body.String(), "https://meet.example.com/")) {
			t.Errorf("%s: %d %q, want %d", tc.name, rec.Code, rec.Body.String(), tc.want)
		}
	}
}
