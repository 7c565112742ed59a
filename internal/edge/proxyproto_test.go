package edge

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// balancer is the L4 load balancer the PROXY protocol tests trust; 127.0.0.6 is anyone else.
var balancer = netip.MustParseAddr("127.0.0.5")

func fromBalancer(a netip.Addr) bool { return a == balancer }

// remoteEcho answers every request with the client address the HTTP server saw.
var remoteEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.RemoteAddr) })

// proxyHeader is a PROXY protocol header naming client, as a balancer writes it (v1 or v2).
func proxyHeader(t *testing.T, version byte, client string) []byte {
	t.Helper()
	src := netip.MustParseAddrPort(client)
	dst := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 443)
	if src.Addr().Is6() {
		dst = netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), 443)
	}
	b, err := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(src), net.TCPAddrFromAddrPort(dst)).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// localHeader is the v2 LOCAL header HAProxy's health checks send.
func localHeader(t *testing.T) []byte {
	t.Helper()
	b, err := (&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// viaBalancer dials the edge from the balancer's address and writes header first, as HAProxy's
// send-proxy-v2 does.
func viaBalancer(t *testing.T, addr string, header []byte) net.Conn {
	t.Helper()
	c := dialFrom(t, balancer.String(), addr)
	if _, err := c.Write(header); err != nil {
		t.Fatal(err)
	}
	return c
}

// handedFrom waits for the connection a handler got and checks that its RemoteAddr is the client
// the header named and its LocalAddr the socket's real one.
func handedFrom(t *testing.T, got <-chan net.Conn, client string) {
	t.Helper()
	select {
	case c := <-got:
		defer c.Close()
		if c.RemoteAddr().String() != client {
			t.Errorf("handler's RemoteAddr %v, want the client %s", c.RemoteAddr(), client)
		}
		if _, ok := c.RemoteAddr().(*net.TCPAddr); !ok {
			t.Errorf("handler's RemoteAddr is %T, want *net.TCPAddr (pion's TCPMux needs it)", c.RemoteAddr())
		}
		if la, ok := c.LocalAddr().(*net.TCPAddr); !ok || !la.IP.IsLoopback() {
			t.Errorf("handler's LocalAddr %v, want the socket's own", c.LocalAddr())
		}
	case <-time.After(testTimeout):
		t.Fatal("the handler got no connection")
	}
}

// TestProxyProtocolClientAddress: behind a balancer sending the PROXY protocol, every path on the
// port sees the client the header names, not the balancer: HTTP plain and in TLS, TURN over TCP
// and over TLS, ICE-TCP; v1 and v2, IPv4 and IPv6 clients.
func TestProxyProtocolClientAddress(t *testing.T) {
	t.Parallel()
	tlsCfg, pool := selfSigned(t)
	turnConns := newTURNSink()
	e := startEdge(t, Config{TLS: tlsCfg, HTTP: remoteEcho, TURN: turnConns.handle, ProxyProtocolFrom: fromBalancer}, false)
	iceConns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := e.ICETCPListener().Accept()
			if err != nil {
				return
			}
			iceConns <- c
		}
	}()
	tlsTo := func(c net.Conn, alpn ...string) *tls.Conn {
		tc := tls.Client(c, &tls.Config{ServerName: "localhost", RootCAs: pool, NextProtos: alpn})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		return tc
	}

	for _, tc := range []struct {
		version byte
		client  string
	}{{2, "203.0.113.7:40001"}, {1, "198.51.100.9:50002"}, {2, "[2001:db8::7]:40003"}, {1, "[2001:db8::9]:40004"}} {
		t.Run(fmt.Sprintf("v%d %s", tc.version, tc.client), func(t *testing.T) {
			hdr := proxyHeader(t, tc.version, tc.client)
			t.Run("https", func(t *testing.T) {
				resp, body := httpGet(t, tlsTo(viaBalancer(t, e.addr, hdr)))
				if resp.StatusCode != 200 || body != tc.client {
					t.Errorf("got %d %q, want the client %s", resp.StatusCode, body, tc.client)
				}
			})
			t.Run("turn over tls", func(t *testing.T) {
				c := tlsTo(viaBalancer(t, e.addr, hdr), ALPNTURN)
				_, _ = c.Write(stunAllocate)
				handedFrom(t, turnConns, tc.client)
			})
			t.Run("turn over tcp", func(t *testing.T) {
				c := viaBalancer(t, e.addr, hdr)
				_, _ = c.Write(stunAllocate)
				handedFrom(t, turnConns, tc.client)
			})
			t.Run("ice-tcp", func(t *testing.T) {
				c := viaBalancer(t, e.addr, hdr)
				_, _ = c.Write(framed(stunBinding))
				handedFrom(t, iceConns, tc.client)
			})
		})
	}
	t.Run("header and request in one segment", func(t *testing.T) {
		c := dialFrom(t, balancer.String(), e.addr)
		_, _ = c.Write(append(proxyHeader(t, 1, "198.51.100.10:1234"), stunAllocate...))
		handedFrom(t, turnConns, "198.51.100.10:1234")
	})
	t.Run("plain http on the tls port is still refused", func(t *testing.T) {
		resp, _ := httpGet(t, viaBalancer(t, e.addr, proxyHeader(t, 2, "203.0.113.7:40001")))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
	t.Run("anyone else connects as before", func(t *testing.T) {
		c := dialFrom(t, "127.0.0.6", e.addr)
		resp, body := httpGet(t, tlsTo(c))
		if resp.StatusCode != 200 || body != c.LocalAddr().String() {
			t.Errorf("got %d %q, want the peer %s", resp.StatusCode, body, c.LocalAddr())
		}
	})
	t.Run("a health check's LOCAL header keeps the balancer's address", func(t *testing.T) {
		c := viaBalancer(t, e.addr, localHeader(t))
		resp, body := httpGet(t, tlsTo(c))
		if resp.StatusCode != 200 || body != c.LocalAddr().String() {
			t.Errorf("got %d %q, want the balancer %s", resp.StatusCode, body, c.LocalAddr())
		}
	})
}

// TestProxyProtocolRefusals: a header is believed only from a trusted balancer, and a trusted
// balancer's connection without one is refused (its client would otherwise pass as the balancer);
// a malformed header is refused. Each refusal is counted by reason.
func TestProxyProtocolRefusals(t *testing.T) {
	t.Parallel()
	e := startEdge(t, Config{HTTP: remoteEcho, ProxyProtocolFrom: fromBalancer}, false)

	stranger := dialFrom(t, "127.0.0.6", e.addr)
	_, _ = stranger.Write(append(proxyHeader(t, 2, "203.0.113.7:40001"), httpGetMsg...))
	waitClosed(t, stranger)
	stranger = dialFrom(t, "127.0.0.6", e.addr)
	_, _ = stranger.Write(append(proxyHeader(t, 1, "203.0.113.7:40001"), httpGetMsg...))
	waitClosed(t, stranger)

	bare := dialFrom(t, balancer.String(), e.addr)
	_, _ = bare.Write(httpGetMsg)
	waitClosed(t, bare)

	for _, bad := range []string{"PROXY TCP4 203.0.113.7\r\n", "PROXY TCP4 nonsense 192.0.2.1 1 443\r\n", "PROXY TCP4 203.0.113.7 192.0.2.1 1 443\n"} {
		c := viaBalancer(t, e.addr, []byte(bad))
		_, _ = c.Write(httpGetMsg)
		waitClosed(t, c)
	}

	if s := e.Stats(); s.DropProxyUntrusted != 2 || s.DropProxyMissing != 1 || s.DropProxyHeader != 3 || s.HTTP != 0 {
		t.Errorf("stats %+v, want 2 untrusted, 1 missing, 3 bad headers, nothing handed over", s)
	}

	// Without the setting, a PROXY header is no protocol of the port: garbage, 400.
	off := startEdge(t, Config{HTTP: remoteEcho}, false)
	c := dialFrom(t, balancer.String(), off.addr)
	_, _ = c.Write(proxyHeader(t, 1, "203.0.113.7:40001"))
	_, _ = io.WriteString(c, "\r\n")
	if resp, body := readResponse(t, c); resp.StatusCode != http.StatusBadRequest || strings.Contains(body, "203.0.113.7") {
		t.Errorf("no PROXY protocol configured: got %d %q, want 400", resp.StatusCode, body)
	}
}

// TestProxyProtocolPerClientCap: behind a balancer, the per-address share of the sniff slots is
// the client's, not the balancer's: one client's silent connections displace only each other,
// and another client through the same balancer is served.
func TestProxyProtocolPerClientCap(t *testing.T) {
	t.Parallel()
	const perIP, flood = 2, 6
	e := startEdge(t, Config{HTTP: remoteEcho, SniffTimeout: time.Minute, FirstByteTimeout: time.Minute,
		MaxPendingSniffs: 16, MaxPendingPerIP: perIP, ProxyProtocolFrom: fromBalancer}, false)
	for i := range flood {
		viaBalancer(t, e.addr, proxyHeader(t, 2, fmt.Sprintf("203.0.113.7:%d", 40000+i)))
	}
	waitFor(t, "the flood's extra connections evicted", func() bool { return e.Stats().DropEvicted == flood-perIP })
	if n := e.pendingFrom("203.0.113.7"); n != perIP {
		t.Errorf("the client holds %d connections in their sniff, want its cap %d", n, perIP)
	}
	if n := e.pendingFrom(balancer.String()); n != 0 {
		t.Errorf("%d connections still count against the balancer", n)
	}
	c := viaBalancer(t, e.addr, proxyHeader(t, 2, "203.0.113.8:40000"))
	resp, body := httpGet(t, c)
	if resp.StatusCode != 200 || body != "203.0.113.8:40000" {
		t.Errorf("another client through the balancer got %d %q", resp.StatusCode, body)
	}
	if s := e.Stats(); s.DropEvicted != flood-perIP {
		t.Errorf("stats %+v, want only the flooding client's connections evicted", s)
	}
}
