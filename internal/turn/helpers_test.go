package turn

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	pionturn "github.com/pion/turn/v5"

	"github.com/parley/parley/internal/poll"
)

// The test topology uses two loopback addresses (Linux routes all of 127/8 to lo, no setup
// needed): relay sockets bind 127.0.0.1, the stand-in SFU binds 127.0.0.2. So "127.0.0.1" is a
// forbidden peer like any other, and "our media IP on another port" is 127.0.0.2:<other>.
var (
	relayIP = netip.MustParseAddr("127.0.0.1")
	mediaIP = netip.MustParseAddr("127.0.0.2")
)

// fakeLive is a hand-written Liveness: every connection is alive until killed.
type fakeLive struct {
	mu   sync.Mutex
	dead map[string]bool
}

func (f *fakeLive) Alive(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.dead[id]
}

func (f *fakeLive) kill(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead == nil {
		f.dead = map[string]bool{}
	}
	f.dead[id] = true
}

// testEnv is one in-process TURN server with a stand-in SFU socket and a TCP listener.
type testEnv struct {
	srv   *Server
	live  *fakeLive
	media *net.UDPConn // the stand-in SFU's UDP mux socket
	tcp   net.Addr     // where TURN/TCP clients dial
	// tlsConf is the client TLS config when the listener is TURN/TLS.
	tlsConf *tls.Config
}

// dial opens a client transport connection to the server (TCP or TLS).
func (e *testEnv) dial(t testing.TB) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	if e.tlsConf != nil {
		c, err = tls.Dial("tcp", e.tcp.String(), e.tlsConf)
	} else {
		c, err = net.Dial("tcp", e.tcp.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *testEnv) mediaAddr() netip.AddrPort { return e.media.LocalAddr().(*net.UDPAddr).AddrPort() }

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("TURN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: levelTrace}))
	}
	return slog.New(slog.DiscardHandler)
}

// newEnv starts a server with a plain TURN/TCP listener; mod may adjust the config before New.
func newEnv(t testing.TB, mod func(*Config)) *testEnv { return newEnvWith(t, mod, nil) }

// newEnvWith starts a server whose TCP listener is TLS when tlsConf is set.
func newEnvWith(t testing.TB, mod func(*Config), tlsConf *tls.Config) *testEnv {
	t.Helper()
	return newEnvLive(t, mod, tlsConf, nil)
}

// newEnvLive is newEnvWith with a Liveness of the test's own instead of e.live.
func newEnvLive(t testing.TB, mod func(*Config), tlsConf *tls.Config, live Liveness) *testEnv {
	t.Helper()
	media, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(mediaIP, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = media.Close() })
	e := &testEnv{media: media, live: &fakeLive{}}
	cfg := Config{
		MediaAddrs: []netip.AddrPort{e.mediaAddr()},
		RelayIP:    relayIP,
	}
	if mod != nil {
		mod(&cfg)
	}
	if live == nil {
		live = e.live
	}
	e.srv, err = New(cfg, live, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.tcp = ln.Addr()
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
		e.tlsConf = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // test certificate
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- e.srv.ServeTCP(ln) }()
	t.Cleanup(func() {
		if err := e.srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-serveDone; err != nil {
			t.Errorf("ServeTCP: %v", err)
		}
	})
	return e
}

// eventually polls cond until it holds or the deadline passes, then fails with what is missing.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, within, what, cond)
}

// pionClient dials TURN/TCP and returns a pion TURN client (the library's own client, as a
// browser-like reference) and its relayed conn.
func pionClient(t testing.TB, e *testEnv, user, pass string) (*pionturn.Client, net.Conn) {
	t.Helper()
	conn := e.dial(t)
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: e.tcp.String(),
		TURNServerAddr: e.tcp.String(),
		Conn:           pionturn.NewSTUNConn(conn),
		Username:       user,
		Password:       pass,
		LoggerFactory:  pionLoggerFactory(testLogger(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); _ = conn.Close() })
	return c, conn
}

// rawClient is a minimal TURN client over TCP that exposes error codes, which pion's client
// hides. One reader goroutine dispatches responses by transaction ID and data to a channel.
type rawClient struct {
	t          testing.TB
	conn       net.Conn
	pc         *pionturn.STUNConn
	user, pass string
	realm      string
	nonce      string

	mu      sync.Mutex
	pending map[[stun.TransactionIDSize]byte]chan *stun.Message
	data    chan relayed
	readEnd chan struct{}
}

// relayed is one datagram that came back through the relay.
type relayed struct {
	peer    netip.AddrPort // from a Data indication
	channel uint16         // from ChannelData (peer is then zero)
	data    []byte
}

func dialRaw(t testing.TB, e *testEnv, user, pass string) *rawClient {
	t.Helper()
	return rawClientOn(t, e.dial(t), user, pass)
}

// rawClientOn is dialRaw on a connection the caller dialled.
func rawClientOn(t testing.TB, conn net.Conn, user, pass string) *rawClient {
	t.Helper()
	c := &rawClient{
		t: t, conn: conn, pc: pionturn.NewSTUNConn(conn), user: user, pass: pass,
		pending: map[[stun.TransactionIDSize]byte]chan *stun.Message{},
		data:    make(chan relayed, 1024),
		readEnd: make(chan struct{}),
	}
	go c.readLoop()
	t.Cleanup(func() { _ = conn.Close(); <-c.readEnd })
	return c
}

func (c *rawClient) readLoop() {
	defer close(c.readEnd)
	buf := make([]byte, 2048)
	for {
		n, _, err := c.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		if n >= 4 && b[0]&0xC0 == 0x40 { // ChannelData: channel numbers 0x4000–0x7FFF
			l := int(binary.BigEndian.Uint16(b[2:4]))
			if 4+l <= n {
				c.data <- relayed{channel: binary.BigEndian.Uint16(b[0:2]), data: append([]byte(nil), b[4:4+l]...)}
			}
			continue
		}
		m := &stun.Message{Raw: append([]byte(nil), b...)}
		if err := m.Decode(); err != nil {
			continue
		}
		if m.Type == stun.NewType(stun.MethodData, stun.ClassIndication) {
			var peer stun.XORMappedAddress
			var d stun.RawAttribute
			if peer.GetFromAs(m, stun.AttrXORPeerAddress) == nil {
				if v, err := m.Get(stun.AttrData); err == nil {
					d.Value = v
					ap, _ := netip.AddrFromSlice(peer.IP)
					c.data <- relayed{peer: netip.AddrPortFrom(ap.Unmap(), uint16(peer.Port)), data: d.Value}
				}
			}
			continue
		}
		c.mu.Lock()
		ch := c.pending[m.TransactionID]
		delete(c.pending, m.TransactionID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

var errNoResponse = errors.New("no response")

// roundTrip sends one request and waits for its response.
func (c *rawClient) roundTrip(setters ...stun.Setter) (*stun.Message, error) {
	m, err := stun.Build(setters...)
	if err != nil {
		return nil, err
	}
	ch := make(chan *stun.Message, 1)
	c.mu.Lock()
	c.pending[m.TransactionID] = ch
	c.mu.Unlock()
	if _, err := c.conn.Write(m.Raw); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-c.readEnd:
		return nil, fmt.Errorf("connection closed: %w", errNoResponse)
	case <-time.After(5 * time.Second):
		return nil, errNoResponse
	}
}

// do sends an authenticated request, learning realm and nonce from a 401/438 first if needed.
// It returns the response's error code, 0 for success, and the response.
func (c *rawClient) do(method stun.Method, attrs ...stun.Setter) (int, *stun.Message, error) {
	for range 3 {
		setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
		setters = append(setters, attrs...)
		if c.nonce != "" {
			setters = append(setters, stun.NewUsername(c.user), stun.NewRealm(c.realm), stun.NewNonce(c.nonce),
				stun.NewLongTermIntegrity(c.user, c.realm, c.pass))
		}
		setters = append(setters, stun.Fingerprint)
		r, err := c.roundTrip(setters...)
		if err != nil {
			return 0, nil, err
		}
		if r.Type.Class == stun.ClassSuccessResponse {
			return 0, r, nil
		}
		var ec stun.ErrorCodeAttribute
		if err := ec.GetFrom(r); err != nil {
			return 0, r, fmt.Errorf("error response without ERROR-CODE: %w", err)
		}
		retry := false
		var nonce stun.Nonce
		var realm stun.Realm
		if (ec.Code == stun.CodeUnauthorized && c.nonce == "") || ec.Code == stun.CodeStaleNonce {
			if nonce.GetFrom(r) == nil && realm.GetFrom(r) == nil {
				c.nonce, c.realm, retry = nonce.String(), realm.String(), true
			}
		}
		if !retry {
			return int(ec.Code), r, nil
		}
	}
	return 0, nil, errors.New("authentication loop")
}

// learnNonce sends an unauthenticated Allocate to get realm and nonce from the 401.
func (c *rawClient) learnNonce() {
	c.t.Helper()
	r, err := c.roundTrip(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		requestedTransport(protoUDP), stun.Fingerprint)
	if err != nil {
		c.t.Fatal(err)
	}
	var nonce stun.Nonce
	var realm stun.Realm
	if nonce.GetFrom(r) != nil || realm.GetFrom(r) != nil {
		c.t.Fatalf("no nonce and realm in %v", r)
	}
	c.nonce, c.realm = nonce.String(), realm.String()
}

func requestedTransport(proto byte) stun.Setter {
	return stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{proto, 0, 0, 0}}
}

const (
	protoUDP = 17
	protoTCP = 6
)

func peerAttr(p netip.AddrPort) stun.Setter {
	return setterFunc(func(m *stun.Message) error {
		return stun.XORMappedAddress{IP: p.Addr().AsSlice(), Port: int(p.Port())}.AddToAs(m, stun.AttrXORPeerAddress)
	})
}

// peerAttr16 encodes an IPv4 peer as a 16-byte IPv4-mapped IPv6 address (::ffff:a.b.c.d) on the
// wire, the coturn CVE-2026-27624 trick.
func peerAttr16(p netip.AddrPort) stun.Setter {
	return setterFunc(func(m *stun.Message) error {
		a16 := p.Addr().As16()
		return stun.XORMappedAddress{IP: net.IP(a16[:]), Port: int(p.Port())}.AddToAs(m, stun.AttrXORPeerAddress)
	})
}

type setterFunc func(*stun.Message) error

func (f setterFunc) AddTo(m *stun.Message) error { return f(m) }

func channelAttr(ch uint16) stun.Setter {
	return stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{byte(ch >> 8), byte(ch), 0, 0}}
}

// allocate asks for a UDP relay; it returns the relayed address and the error code (0 = success).
func (c *rawClient) allocate() (netip.AddrPort, int) {
	c.t.Helper()
	code, r, err := c.do(stun.MethodAllocate, requestedTransport(protoUDP))
	if err != nil {
		c.t.Fatalf("allocate: %v", err)
	}
	if code != 0 {
		return netip.AddrPort{}, code
	}
	var ra stun.XORMappedAddress
	if err := ra.GetFromAs(r, stun.AttrXORRelayedAddress); err != nil {
		c.t.Fatalf("allocate: no XOR-RELAYED-ADDRESS: %v", err)
	}
	a, _ := netip.AddrFromSlice(ra.IP)
	return netip.AddrPortFrom(a.Unmap(), uint16(ra.Port)), 0
}

func (c *rawClient) mustAllocate() netip.AddrPort {
	c.t.Helper()
	a, code := c.allocate()
	if code != 0 {
		c.t.Fatalf("allocate: error %d", code)
	}
	return a
}

func (c *rawClient) code(method stun.Method, attrs ...stun.Setter) int {
	c.t.Helper()
	code, _, err := c.do(method, attrs...)
	if err != nil {
		c.t.Fatalf("%v: %v", method, err)
	}
	return code
}

// send relays data to peer with a Send indication (no response).
func (c *rawClient) send(peer stun.Setter, data []byte) {
	c.t.Helper()
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication), peer,
		stun.RawAttribute{Type: stun.AttrData, Value: data}, stun.Fingerprint)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(m.Raw); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// sendChannel relays data on a bound channel (ChannelData, padded to 4 bytes over TCP).
func (c *rawClient) sendChannel(ch uint16, data []byte) {
	c.t.Helper()
	b := make([]byte, 4+(len(data)+3)&^3)
	binary.BigEndian.PutUint16(b[0:2], ch)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(data)))
	copy(b[4:], data)
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("channel data: %v", err)
	}
}

// recvData waits for one datagram relayed back to the client.
func (c *rawClient) recvData(within time.Duration) (relayed, bool) {
	select {
	case d := <-c.data:
		return d, true
	case <-time.After(within):
		return relayed{}, false
	}
}

// expectDatagram reads one datagram from pc, failing after a deadline.
func expectDatagram(t testing.TB, pc *net.UDPConn, want string) netip.AddrPort {
	t.Helper()
	buf := make([]byte, 2048)
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := pc.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("waiting for %q on %s: %v", want, pc.LocalAddr(), err)
	}
	if got := string(buf[:n]); got != want {
		t.Fatalf("got %q on %s, want %q", got, pc.LocalAddr(), want)
	}
	return from
}

// expectNoDatagram checks, without waiting, that nothing is queued on pc. Callers first make sure
// anything that could have been sent has been (a later datagram on the same path has arrived).
func expectNoDatagram(t testing.TB, pc net.PacketConn, what string) {
	t.Helper()
	buf := make([]byte, 2048)
	_ = pc.SetReadDeadline(time.Now().Add(time.Millisecond))
	n, from, err := pc.ReadFrom(buf)
	if err == nil {
		t.Fatalf("%s: %s received %q from %s", what, pc.LocalAddr(), buf[:n], from)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%s: read %s: %v", what, pc.LocalAddr(), err)
	}
}

// goroutineLeakCheck fails the test if goroutines started during it are still running at the end
// (after every other cleanup, since cleanups run last-in first-out).
func goroutineLeakCheck(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(),
					strings.TrimSpace(string(buf[:n])))
				return
			}
			time.Sleep(5 * time.Millisecond) // poll interval
		}
	})
}
