package server

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pires/go-proxyproto"
)

// viaBalancer is an HTTP client whose connections come from address from and open with header,
// as an L4 balancer's with send-proxy-v2 do (no header: nil).
func viaBalancer(from string, header []byte) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil || header == nil {
				return c, err
			}
			if _, err := c.Write(header); err != nil {
				_ = c.Close()
				return nil, err
			}
			return c, nil
		},
	}}
}

// TestProxyProtocolClientAddress: behind an L4 balancer that sends the PROXY protocol
// (PARLEY_PROXY_PROTOCOL_FROM), a participant who joined through it is shown by REST with the
// address its header names; the balancer's connections without a header, and anyone else's with
// one, are refused.
func TestProxyProtocolClientAddress(t *testing.T) {
	t.Parallel()
	_, base := startServer(t, "PARLEY_PROXY_PROTOCOL_FROM", "127.0.0.5")
	api := base + "/openvidu/api"
	if st, _ := rest(t, "POST", api+"/sessions", map[string]any{"customSessionId": "behind-lb"}); st != 200 {
		t.Fatalf("create session: %d", st)
	}
	st, c := rest(t, "POST", api+"/sessions/behind-lb/connection", map[string]any{"role": "PUBLISHER"})
	if st != 200 {
		t.Fatalf("connection: %d", st)
	}
	client := netip.MustParseAddrPort("203.0.113.7:40001")
	header, err := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(client), &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 443}).Format()
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/openvidu",
		&websocket.DialOptions{HTTPClient: viaBalancer("127.0.0.5", header)})
	if err != nil {
		t.Fatalf("signaling through the balancer: %v", err)
	}
	r := &rpcClient{t: t, ws: ws, pending: map[int64]chan map[string]any{}, noteCh: make(chan struct{}, 1)}
	go r.read()
	t.Cleanup(func() { _ = ws.CloseNow() })
	r.result("joinRoom", map[string]any{"token": c["token"], "session": "behind-lb", "metadata": ""})
	if st, conn := rest(t, "GET", api+"/sessions/behind-lb/connection/"+c["id"].(string), nil); st != 200 || conn["ip"] != client.Addr().String() {
		t.Fatalf("the participant as REST shows it: %d ip=%v, want %s (the PROXY header's), not the balancer's", st, conn["ip"], client.Addr())
	}

	for _, tc := range []struct {
		what, from string
		header     []byte
	}{{"the balancer without a header", "127.0.0.5", nil}, {"anyone else with a header", "127.0.0.6", header}} {
		req, _ := http.NewRequest("GET", api+"/config", nil)
		req.SetBasicAuth("OPENVIDUAPP", "MY_SECRET")
		if resp, err := viaBalancer(tc.from, tc.header).Do(req); err == nil {
			_ = resp.Body.Close()
			t.Errorf("%s: answered %d, want the connection refused", tc.what, resp.StatusCode)
		}
	}
}
