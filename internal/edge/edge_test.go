package edge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/parley/parley/internal/poll"
)

// testTimeout bounds every wait in these tests; nothing should come close to it.
const testTimeout = 20 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter sends log lines to t.Log, so they show only for failing tests.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// turnSink stands in for (*turn.Server).HandleConn: it takes the connection and returns at once.
type turnSink chan net.Conn

func (s turnSink) handle(c net.Conn) { s <- c }

func newTURNSink() turnSink { return make(turnSink, 16) }

// httpHello answers every request with whether it came over TLS and with which ALPN.
var httpHello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		fmt.Fprint(w, "hello plain")
		return
	}
	fmt.Fprintf(w, "hello tls alpn=%q", r.TLS.NegotiatedProtocol)
})

type testEdge struct {
	*Server
	addr string
	stop func() error // cancels Run and returns its error; idempotent
}

// oneByteListener makes every read of every accepted conn return at most one byte, so that the
// sniffer sees the worst split of the first bytes (and of the TLS handshake) on every run.
type oneByteListener struct{ net.Listener }

func (l oneByteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return oneByteConn{c}, nil
}

type oneByteConn struct{ net.Conn }

func (c oneByteConn) Read(p []byte) (int, error) { return c.Conn.Read(p[:min(len(p), 1)]) }

func startEdge(t *testing.T, cfg Config, oneByte bool) *testEdge {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener = ln
	if oneByte {
		l = oneByteListener{ln}
	}
	if cfg.HTTP == nil {
		cfg.HTTP = httpHello
	}
	s, err := NewServer(l, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(testTimeout):
				runErr = errors.New("Run did not return")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &testEdge{Server: s, addr: ln.Addr().String(), stop: stop}
}

// selfSigned returns a TLS config for "localhost" and a pool that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	cfg, _, err := TLSConfig(CertConfig{Type: CertSelfSigned, Domain: "localhost", Dir: t.TempDir()}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cfg.Certificates[0].Leaf)
	return cfg, pool
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	return c
}

func dialTLS(t *testing.T, addr string, pool *x509.CertPool, alpn ...string) *tls.Conn {
	t.Helper()
	c := tls.Client(dial(t, addr), &tls.Config{ServerName: "localhost", RootCAs: pool, NextProtos: alpn})
	if err := c.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	return c
}

// expectConn waits for the connection a handler received, checks that it starts with want, and
// that it carries bytes both ways.
func expectConn(t *testing.T, got <-chan net.Conn, client net.Conn, want []byte) {
	t.Helper()
	var c net.Conn
	select {
	case c = <-got:
	case <-time.After(testTimeout):
		t.Fatal("the handler got no connection")
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("handler read: %v", err)
	}
	if !bytes.Equal(buf, want) {
		t.Fatalf("handler read % x, want % x", buf, want)
	}
	if _, err := c.Write([]byte("ack")); err != nil {
		t.Fatalf("handler write: %v", err)
	}
	ack := make([]byte, 3)
	if _, err := io.ReadFull(client, ack); err != nil || string(ack) != "ack" {
		t.Fatalf("client read %q, %v; want ack", ack, err)
	}
	if _, ok := c.LocalAddr().(*net.TCPAddr); !ok {
		t.Errorf("handler's LocalAddr is %T, want *net.TCPAddr", c.LocalAddr())
	}
	if c.RemoteAddr().String() != client.LocalAddr().String() {
		t.Errorf("handler's RemoteAddr is %v, want the client's %v", c.RemoteAddr(), client.LocalAddr())
	}
}

// httpGet sends a GET on c and returns the response.
func httpGet(t *testing.T, c net.Conn) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return readResponse(t, c)
}

func readResponse(t *testing.T, c net.Conn) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestRouting sends every kind of first bytes, plain and in TLS, and checks where they land;
// the oneByte variant delivers every byte (handshake included) in its own read.
func TestRouting(t *testing.T) {
	t.Parallel()
	tlsCfg, pool := selfSigned(t)
	for _, oneByte := range []bool{false, true} {
		t.Run(map[bool]string{false: "whole reads", true: "one byte per read"}[oneByte], func(t *testing.T) {
			t.Parallel()
			turnConns := newTURNSink()
			plain := startEdge(t, Config{TURN: turnConns.handle}, oneByte)
			sec := startEdge(t, Config{TLS: tlsCfg, TURN: turnConns.handle}, oneByte)

			t.Run("plain http", func(t *testing.T) {
				resp, body := httpGet(t, dial(t, plain.addr))
				if resp.StatusCode != 200 || body != "hello plain" {
					t.Errorf("got %d %q", resp.StatusCode, body)
				}
			})
			t.Run("plain turn", func(t *testing.T) {
				c := dial(t, plain.addr)
				_, _ = c.Write(stunAllocate)
				expectConn(t, turnConns, c, stunAllocate)
			})
			t.Run("plain ice-tcp", func(t *testing.T) {
				accepted := make(chan net.Conn, 1)
				go func() {
					c, err := plain.ICETCPListener().Accept()
					if err == nil {
						accepted <- c
					}
				}()
				c := dial(t, plain.addr)
				msg := framed(stunBinding)
				_, _ = c.Write(msg)
				expectConn(t, accepted, c, msg)
			})
			t.Run("garbage gets 400", func(t *testing.T) {
				c := dial(t, plain.addr)
				_, _ = io.WriteString(c, "hello world\r\n\r\n")
				if resp, _ := readResponse(t, c); resp.StatusCode != http.StatusBadRequest {
					t.Errorf("status %d, want 400", resp.StatusCode)
				}
			})
			for _, alpn := range [][]string{{ALPNTURN}, {ALPNHTTP1}, nil} {
				t.Run(fmt.Sprintf("tls turn alpn=%q", alpn), func(t *testing.T) {
					c := dialTLS(t, sec.addr, pool, alpn...)
					_, _ = c.Write(stunAllocate)
					expectConn(t, turnConns, c, stunAllocate)
				})
			}
			for _, alpn := range [][]string{{ALPNHTTP1}, nil, {ALPNHTTP2, ALPNHTTP1}} {
				t.Run(fmt.Sprintf("tls http alpn=%q", alpn), func(t *testing.T) {
					c := dialTLS(t, sec.addr, pool, alpn...)
					resp, body := httpGet(t, c)
					// No h2 on offer: a client that also offers http/1.1 gets it.
					want := fmt.Sprintf("hello tls alpn=%q", c.ConnectionState().NegotiatedProtocol)
					if resp.StatusCode != 200 || body != want {
						t.Errorf("got %d %q, want 200 %q", resp.StatusCode, body, want)
					}
				})
			}
			t.Run("plain http on the tls port gets 400", func(t *testing.T) {
				resp, body := httpGet(t, dial(t, sec.addr))
				if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "HTTPS") {
					t.Errorf("got %d %q", resp.StatusCode, body)
				}
			})
			t.Run("plain turn on the tls port", func(t *testing.T) {
				c := dial(t, sec.addr)
				_, _ = c.Write(stunAllocate)
				expectConn(t, turnConns, c, stunAllocate)
			})
		})
	}
}

// TestHTTP2 checks that "h2", when the caller offers it, reaches net/http's HTTP/2 server.
func TestHTTP2(t *testing.T) {
	t.Parallel()
	tlsCfg, pool := selfSigned(t)
	tlsCfg.NextProtos = append([]string{ALPNHTTP2}, tlsCfg.NextProtos...)
	e := startEdge(t, Config{TLS: tlsCfg}, false)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true,
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://localhost:" + portOf(e.addr) + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || string(body) != `hello tls alpn="h2"` {
		t.Errorf("got %s %q, want HTTP/2", resp.Proto, body)
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// waitClosed waits for the edge to close c. The edge may say something first (a TLS alert).
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection not closed: %v", err)
	}
}

// TestDrops checks the connections that reach no handler, and that they are counted.
func TestDrops(t *testing.T) {
	t.Parallel()
	tlsCfg, pool := selfSigned(t)

	t.Run("tls in dev mode", func(t *testing.T) {
		t.Parallel()
		e := startEdge(t, Config{}, false)
		c := dial(t, e.addr)
		_, _ = c.Write(tlsHello)
		waitClosed(t, c)
		if s := e.Stats(); s.DropTLSDisabled != 1 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("turn without handler", func(t *testing.T) {
		t.Parallel()
		e := startEdge(t, Config{TLS: tlsCfg}, false)
		c := dial(t, e.addr)
		_, _ = c.Write(stunAllocate)
		waitClosed(t, c)
		tc := dialTLS(t, e.addr, pool, ALPNTURN)
		waitClosed(t, tc)
		if s := e.Stats(); s.DropTURNDisabled != 2 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("bad tls handshake", func(t *testing.T) {
		t.Parallel()
		e := startEdge(t, Config{TLS: tlsCfg}, false)
		c := dial(t, e.addr)
		_, _ = c.Write(append(append([]byte{}, tlsHello[:5]...), bytes.Repeat([]byte{0xEE}, 600)...))
		waitClosed(t, c)
		if s := e.Stats(); s.DropTLSHandshake != 1 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("unknown alpn", func(t *testing.T) {
		t.Parallel()
		e := startEdge(t, Config{TLS: tlsCfg}, false)
		c := tls.Client(dial(t, e.addr), &tls.Config{ServerName: "localhost", RootCAs: pool, NextProtos: []string{"imap"}})
		if err := c.Handshake(); err == nil {
			t.Fatal("handshake with an unknown ALPN succeeded")
		}
	})
	t.Run("ice-tcp nobody accepts", func(t *testing.T) {
		t.Parallel()
		e := startEdge(t, Config{SniffTimeout: 100 * time.Millisecond}, false)
		c := dial(t, e.addr)
		_, _ = c.Write(framed(stunBinding))
		waitClosed(t, c)
		if s := e.Stats(); s.DropHandoff != 1 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("peer closes before deciding", func(t *testing.T) {
		t.Parallel()
		e := startEdge(t, Config{}, false)
		c := dial(t, e.addr)
		_, _ = c.Write(stunBinding[:5])
		_ = c.(*net.TCPConn).CloseWrite()
		waitClosed(t, c)
		if s := e.Stats(); s.DropRead != 1 {
			t.Errorf("stats %+v", s)
		}
	})
}

// TestSilentPeer: a peer that sends nothing is dropped at the deadline, and another client is
// served in the meantime.
func TestSilentPeer(t *testing.T) {
	t.Parallel()
	const sniff = 2 * time.Second
	e := startEdge(t, Config{SniffTimeout: sniff}, false)
	silent := dial(t, e.addr)
	start := time.Now()
	resp, body := httpGet(t, dial(t, e.addr))
	if resp.StatusCode != 200 || body != "hello plain" {
		t.Fatalf("concurrent client got %d %q", resp.StatusCode, body)
	}
	if s := e.Stats(); s.DropTimeout != 0 {
		t.Fatalf("the silent peer was dropped before the other client was served: %+v", s)
	}
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("silent peer got data")
	}
	if d := time.Since(start); d < sniff-100*time.Millisecond {
		t.Errorf("silent peer dropped after %v, before the %v deadline", d, sniff)
	}
	if s := e.Stats(); s.DropTimeout != 1 {
		t.Errorf("stats %+v, want one timeout", s)
	}
}

// TestMaxPendingSniffs: with the only slot held by a silent peer, the next client is served at
// once and the silent peer, the oldest, is the one dropped.
func TestMaxPendingSniffs(t *testing.T) {
	t.Parallel()
	e := startEdge(t, Config{SniffTimeout: time.Minute, MaxPendingSniffs: 1}, false)
	silent := dial(t, e.addr)
	waitFor(t, "the silent peer to be accepted", func() bool { return e.Stats().Accepted == 1 })
	resp, _ := httpGet(t, dial(t, e.addr))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	waitClosed(t, silent)
	if s := e.Stats(); s.DropEvicted != 1 || s.DropTimeout != 0 {
		t.Errorf("stats %+v, want the silent peer evicted", s)
	}
}

// dialFrom dials addr from a chosen loopback address, which the edge counts as another source.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: testTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	return c
}

func (e *testEdge) pendingFrom(src string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.pending.bySource[netip.MustParsePrefix(src+"/32")])
}

// TestIdleFloodFromOneSource: many silent connections from one address hold at most the
// per-address share of the sniff slots, and however many they are, a client from another
// address is classified and served; the flood only ever displaces its own connections.
func TestIdleFloodFromOneSource(t *testing.T) {
	t.Parallel()
	const perIP, flood = 4, 40
	e := startEdge(t, Config{SniffTimeout: time.Minute, MaxPendingSniffs: 8, MaxPendingPerIP: perIP}, false)
	idle := make([]net.Conn, flood)
	for i := range idle {
		idle[i] = dialFrom(t, "127.0.0.1", e.addr)
	}
	waitFor(t, "the flood to be accepted", func() bool { return e.Stats().Accepted == flood })
	if n := e.pendingFrom("127.0.0.1"); n != perIP {
		t.Errorf("%d connections from one address in their sniff, want the cap %d", n, perIP)
	}
	for _, c := range idle[:flood-perIP] {
		waitClosed(t, c)
	}
	resp, body := httpGet(t, dialFrom(t, "127.0.0.2", e.addr))
	if resp.StatusCode != 200 || body != "hello plain" {
		t.Fatalf("client from another address got %d %q", resp.StatusCode, body)
	}
	// The HTTP server may answer before the edge counts its hand-off.
	waitFor(t, "the client's hand-off counted", func() bool { return e.Stats().HTTP == 1 })
	if s := e.Stats(); s.DropEvicted != flood-perIP || s.HTTP != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestIdleFloodAtDefaults is issue 14's attack scaled down, at the production caps: 400 silent
// connections from four addresses (silence itself is allowed a minute here, so only the caps act)
// hold 64 slots each, and a newcomer from a fifth address is classified and served.
func TestIdleFloodAtDefaults(t *testing.T) {
	t.Parallel()
	const sources, flood = 4, 400
	e := startEdge(t, Config{SniffTimeout: time.Minute, FirstByteTimeout: time.Minute}, false)
	for i := range flood {
		dialFrom(t, fmt.Sprintf("127.0.3.%d", i%sources+1), e.addr)
	}
	waitFor(t, "the flood to be accepted", func() bool { return e.Stats().Accepted == flood })
	resp, body := httpGet(t, dialFrom(t, "127.0.3.9", e.addr))
	if resp.StatusCode != 200 || body != "hello plain" {
		t.Fatalf("the newcomer got %d %q", resp.StatusCode, body)
	}
	// Accepting is one loop: once the newcomer is served, every flood connection was tracked.
	for i := range sources {
		if n := e.pendingFrom(fmt.Sprintf("127.0.3.%d", i+1)); n != DefaultMaxPendingPerIP {
			t.Errorf("127.0.3.%d holds %d connections in their sniff, want the cap %d", i+1, n, DefaultMaxPendingPerIP)
		}
	}
	if s := e.Stats(); s.DropEvicted != flood-sources*DefaultMaxPendingPerIP {
		t.Errorf("%d connections evicted, want %d", s.DropEvicted, flood-sources*DefaultMaxPendingPerIP)
	}
}

// TestRelayExemptFromPerSourceCap: the operator's proxy passing TURN/TLS through by server name
// is one address for every participant limited to TCP 443, so its connections are not held to
// the per-address share (only to the port's total), while anyone else still is.
func TestRelayExemptFromPerSourceCap(t *testing.T) {
	t.Parallel()
	const perIP, slots = 2, 16
	relay := netip.MustParseAddr("127.0.0.5")
	e := startEdge(t, Config{SniffTimeout: time.Minute, MaxPendingSniffs: slots, MaxPendingPerIP: perIP,
		Relays: func(a netip.Addr) bool { return a == relay }}, false)
	for range 6 {
		dialFrom(t, "127.0.0.5", e.addr)
	}
	for range 4 {
		dialFrom(t, "127.0.0.6", e.addr)
	}
	waitFor(t, "every connection accepted", func() bool { return e.Stats().Accepted == 10 })
	if n := e.pendingFrom("127.0.0.5"); n != 6 {
		t.Errorf("the relay holds %d connections in their sniff, want all 6", n)
	}
	if n := e.pendingFrom("127.0.0.6"); n != perIP {
		t.Errorf("another address holds %d, want its cap %d", n, perIP)
	}
}

// TestFullPortEvictsLargestSource: with every slot held by silent connections of one address
// (its cap as large as the port's), a newcomer from another address takes the oldest's slot,
// and the newcomer's own earlier connection is not the one dropped.
func TestFullPortEvictsLargestSource(t *testing.T) {
	t.Parallel()
	const slots = 4
	e := startEdge(t, Config{SniffTimeout: time.Minute, MaxPendingSniffs: slots, MaxPendingPerIP: slots}, false)
	dialFrom(t, "127.0.0.3", e.addr) // silent too, but a source of one
	var idle []net.Conn
	for range slots - 1 {
		idle = append(idle, dialFrom(t, "127.0.0.1", e.addr))
	}
	waitFor(t, "all slots held", func() bool { return e.Stats().Accepted == slots })
	resp, _ := httpGet(t, dialFrom(t, "127.0.0.2", e.addr))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	waitClosed(t, idle[0])
	if n := e.pendingFrom("127.0.0.3"); n != 1 {
		t.Errorf("the single connection of another source was dropped (%d left)", n)
	}
	if s := e.Stats(); s.DropEvicted != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestFirstByteTimeout: a connection that sends nothing gives up its slot at FirstByteTimeout,
// while one that has started talking keeps the whole SniffTimeout.
func TestFirstByteTimeout(t *testing.T) {
	t.Parallel()
	e := startEdge(t, Config{SniffTimeout: time.Minute, FirstByteTimeout: 100 * time.Millisecond}, false)
	talking := dialFrom(t, "127.0.0.2", e.addr)
	if _, err := talking.Write(httpGetMsg[:1]); err != nil {
		t.Fatal(err)
	}
	silent := dialFrom(t, "127.0.0.1", e.addr)
	waitClosed(t, silent)
	if s := e.Stats(); s.DropTimeout != 1 {
		t.Errorf("stats %+v", s)
	}
	if n := e.pendingFrom("127.0.0.2"); n != 1 {
		t.Errorf("the talking connection was dropped with the silent one")
	}
}

// waitFor polls cond until it holds or testTimeout passes, then says what was missing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, testTimeout, what, cond)
}

// TestPeekKindSplitReads classifies every real first message fed one byte per read.
func TestPeekKindSplitReads(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		in   []byte
		want kind
	}{
		{"tls", tlsHello, kindTLS},
		{"turn", stunAllocate, kindTURN},
		{"ice-tcp", framed(stunBinding), kindICETCP},
		{"http", httpGetMsg, kindHTTP},
	} {
		br := bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(tt.in)), peekBufSize)
		k, err := peekKind(br, classify)
		if err != nil || k != tt.want {
			t.Errorf("%s: got %v, %v; want %v", tt.name, k, err, tt.want)
		}
		rest, _ := io.ReadAll(&peekedConn{Conn: nopConn{br}, r: br})
		if !bytes.Equal(rest, tt.in) {
			t.Errorf("%s: replayed % x, want % x", tt.name, rest, tt.in)
		}
	}
}

// nopConn is a net.Conn over a reader, for replay tests.
type nopConn struct{ r io.Reader }

func (c nopConn) Read(p []byte) (int, error)     { return c.r.Read(p) }
func (nopConn) Write(p []byte) (int, error)      { return len(p), nil }
func (nopConn) Close() error                     { return nil }
func (nopConn) LocalAddr() net.Addr              { return nil }
func (nopConn) RemoteAddr() net.Addr             { return nil }
func (nopConn) SetDeadline(time.Time) error      { return nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }

// TestShutdown runs sequentially so that the goroutine check sees only this edge: Run returns
// at once despite a peer mid-sniff with a long deadline and an idle HTTP keep-alive connection,
// and leaves no goroutine of ours behind.
func TestShutdown(t *testing.T) {
	e := startEdge(t, Config{SniffTimeout: time.Minute}, false)
	silent := dial(t, e.addr)
	idle := dial(t, e.addr)
	if resp, _ := httpGet(t, idle); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	waitFor(t, "both peers to be accepted", func() bool { return e.Stats().Accepted == 2 })
	start := time.Now()
	if err := e.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	for _, c := range []net.Conn{silent, idle} {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("connection left open after shutdown")
		}
	}
	if s := e.Stats(); s.DropShutdown != 1 {
		t.Errorf("stats %+v", s)
	}
	if _, err := e.ICETCPListener().Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ICE-TCP listener after shutdown: %v, want net.ErrClosed", err)
	}
	if _, err := net.Dial("tcp", e.addr); err == nil {
		t.Error("port still accepting after shutdown")
	}
	waitFor(t, "edge goroutines to end", func() bool {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "internal/edge.(*") || strings.Contains(g, "net/http.(*conn).serve") {
				return false
			}
		}
		return true
	})
}
