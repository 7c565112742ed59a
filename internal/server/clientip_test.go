package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestParticipantAddressFromTrustedProxiesOnly: a participant's address (REST's connection "ip",
// and so webhooks, the CDR and logs) comes from X-Real-IP / X-Forwarded-For only when the
// socket's peer is in PARLEY_TRUSTED_PROXIES; from anyone else the headers are a spoof and the
// peer's own address is used.
func TestParticipantAddressFromTrustedProxiesOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, trusted, header, value, want string
	}{
		{"loopback proxy trusted by default: X-Real-IP", "", "X-Real-IP", "203.0.113.9", "203.0.113.9"},
		{"loopback proxy trusted by default: X-Forwarded-For", "", "X-Forwarded-For", "198.51.100.1, 203.0.113.9", "203.0.113.9"},
		{"untrusted peer: X-Real-IP ignored", "192.0.2.0/24", "X-Real-IP", "203.0.113.9", "127.0.0.1"},
		{"untrusted peer: X-Forwarded-For ignored", "none", "X-Forwarded-For", "203.0.113.9", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var env []string
			if tc.trusted != "" {
				env = []string{"PARLEY_TRUSTED_PROXIES", tc.trusted}
			}
			_, base := startServer(t, env...)
			sid := "ses_ip" + strings.ReplaceAll(tc.name[:4], " ", "")
			if st, _ := rest(t, "POST", base+"/openvidu/api/sessions", map[string]any{"customSessionId": sid}); st != 200 {
				t.Fatalf("create session: %d", st)
			}
			st, conn := rest(t, "POST", base+"/openvidu/api/sessions/"+sid+"/connection", map[string]any{})
			if st != 200 {
				t.Fatalf("create connection: %d", st)
			}
			cl := dialWith(t, base, http.Header{tc.header: {tc.value}})
			id := cl.result("joinRoom", map[string]any{"token": conn["token"], "session": sid, "metadata": ""})["id"].(string)
			st, got := rest(t, "GET", base+"/openvidu/api/sessions/"+sid+"/connection/"+id, nil)
			if st != 200 || got["ip"] != tc.want {
				t.Fatalf("connection ip = %v (%d), want %s", got["ip"], st, tc.want)
			}
		})
	}
}

// dialWith is dial with extra request headers.
func dialWith(t *testing.T, base string, h http.Header) *rpcClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/openvidu", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	c := &rpcClient{t: t, ws: ws, pending: map[int64]chan map[string]any{}, noteCh: make(chan struct{}, 1)}
	go c.read()
	t.Cleanup(func() { _ = ws.CloseNow() })
	return c
}
