package turn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	pionturn "github.com/pion/turn/v5"
)

// selfSignedTLS returns a server TLS config with a throwaway certificate.
func selfSignedTLS(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "turn.test"},
		DNSNames:     []string{"turn.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		// Browsers send no ALPN for TURN/TLS; a client that sends RFC 7443's may not be refused.
		NextProtos: []string{"stun.turn"},
	}
}

// TestRelayRoundTrip is the happy path with pion's own client, over TURN/TCP and TURN/TLS: a
// datagram goes client → relay → SFU and back, and the SFU sees it come from the relayed address.
func TestRelayRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"tcp", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var tlsConf *tls.Config
			if tc.tls {
				tlsConf = selfSignedTLS(t)
			}
			e := newEnvWith(t, nil, tlsConf)
			user, pass := e.srv.Credentials("con_Ab12cd34Ef")
			client, _ := pionClient(t, e, user, pass)
			relay, err := client.Allocate()
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			defer relay.Close()
			relayAddr := relay.LocalAddr().(*net.UDPAddr).AddrPort()
			if relayAddr.Addr() != relayIP {
				t.Errorf("relayed address %s, want it on RelayIP %s", relayAddr, relayIP)
			}
			media := net.UDPAddrFromAddrPort(e.mediaAddr())

			// Several rounds: the first goes by Send indication, later ones by ChannelData once
			// pion's client has bound a channel.
			for i := range 5 {
				msg := "ping " + string(rune('0'+i))
				if _, err := relay.WriteTo([]byte(msg), media); err != nil {
					t.Fatalf("relay WriteTo: %v", err)
				}
				from := expectDatagram(t, e.media, msg)
				if from != relayAddr {
					t.Fatalf("SFU saw the datagram from %s, want the relayed address %s", from, relayAddr)
				}
				// At least 5 bytes: pion's STUNConn (both ends of TURN/TCP) waits for 9 bytes
				// before it frames anything, so a 4-byte ChannelData datagram would sit in its
				// buffer until the next one arrives.
				if _, err := e.media.WriteToUDPAddrPort([]byte("pong!"), relayAddr); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 1500)
				_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, src, err := relay.ReadFrom(buf)
				if err != nil {
					t.Fatalf("round %d: relay ReadFrom: %v", i, err)
				}
				if string(buf[:n]) != "pong!" || src.(*net.UDPAddr).AddrPort() != e.mediaAddr() {
					t.Fatalf("client got %q from %s, want \"pong!\" from %s", buf[:n], src, e.mediaAddr())
				}
			}
			// The counters move on the relay's goroutines, possibly just after the client saw the
			// datagram: wait for them rather than read once.
			want := func(st Stats) bool {
				return st.Allocations == 1 && st.ToPeerPackets == 5 && st.FromPeerPackets == 5 && st.ToPeerBytes == 30 && st.FromPeerBytes == 25
			}
			eventually(t, time.Second, "stats of 1 allocation and 5 datagrams each way", func() bool { return want(e.srv.Stats()) })
		})
	}
}

// TestRelayOverUDP covers the optional TURN/UDP listener.
func TestRelayOverUDP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.UDPAddr = "127.0.0.1:0" })
	user, pass := e.srv.Credentials("con_Udp")
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: e.srv.UDPAddr().String(),
		TURNServerAddr: e.srv.UDPAddr().String(),
		Conn:           conn,
		Username:       user,
		Password:       pass,
		LoggerFactory:  pionLoggerFactory(testLogger(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := client.Allocate()
	if err != nil {
		t.Fatalf("Allocate over UDP: %v", err)
	}
	defer relay.Close()
	if _, err := relay.WriteTo([]byte("udp"), net.UDPAddrFromAddrPort(e.mediaAddr())); err != nil {
		t.Fatal(err)
	}
	expectDatagram(t, e.media, "udp")
}

// TestAuthRefused: every way a credential can be bad gets 401 on Allocate, and counts.
func TestAuthRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	goodUser, goodPass := e.srv.Credentials("con_Good")

	for _, tc := range []struct {
		name       string
		user, pass func() (string, string)
		realm      string // overrides the realm the server sent
	}{
		{name: "wrong password", user: func() (string, string) { return goodUser, goodPass[:len(goodPass)-2] + "AA" }},
		{name: "password of another secret", user: func() (string, string) {
			return goodUser, restPassword([]byte("0123456789abcdef0123456789abcdef"), goodUser)
		}},
		{name: "expired", user: func() (string, string) {
			return e.srv.credentialsUntil("con_Expired", time.Now().Add(-time.Second))
		}},
		{name: "unknown handle", user: func() (string, string) {
			u := formatUsername(time.Now().Add(time.Hour).Unix(), newHandle())
			return u, restPassword(e.srv.cfg.Secret, u)
		}},
		{name: "connection id as handle", user: func() (string, string) {
			u := formatUsername(time.Now().Add(time.Hour).Unix(), "con_Good")
			return u, restPassword(e.srv.cfg.Secret, u)
		}},
		{name: "no expiry", user: func() (string, string) {
			_, h, _ := parseUsername(goodUser)
			return h, restPassword(e.srv.cfg.Secret, h)
		}},
		{name: "revoked", user: func() (string, string) {
			u, p := e.srv.Credentials("con_Revoked")
			e.srv.Revoke("con_Revoked")
			return u, p
		}},
		{name: "dead per Liveness", user: func() (string, string) {
			u, p := e.srv.Credentials("con_Dead")
			e.live.kill("con_Dead")
			return u, p
		}},
		{name: "wrong realm", user: func() (string, string) { return goodUser, goodPass }, realm: "openvidu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.srv.Stats().AuthFailures
			user, pass := tc.user()
			c := dialRaw(t, e, user, pass)
			if tc.realm != "" {
				// Learn the nonce, then authenticate in another realm.
				c.learnNonce()
				c.realm = tc.realm
			}
			if _, code := c.allocate(); code != int(stun.CodeUnauthorized) {
				t.Fatalf("Allocate: code %d, want 401", code)
			}
			if after := e.srv.Stats().AuthFailures; after <= before {
				t.Errorf("AuthFailures %d → %d, want it counted", before, after)
			}
		})
	}

	// The good credential still works after all that.
	c := dialRaw(t, e, goodUser, goodPass)
	c.mustAllocate()
}

// TestCredentialsFormat checks the TURN REST format against an independent computation of the
// coturn use-auth-secret rule.
func TestCredentialsFormat(t *testing.T) {
	t.Parallel()
	secret := []byte("a secret of at least sixteen bytes")
	e := newEnv(t, func(c *Config) { c.Secret = secret; c.CredentialTTL = time.Hour })
	u1, p1 := e.srv.Credentials("con_X")
	u2, _ := e.srv.Credentials("con_X")
	u3, _ := e.srv.Credentials("con_Y")
	exp, h, ok := parseUsername(u1)
	if !ok {
		t.Fatalf("username %q does not parse", u1)
	}
	if d := time.Until(time.Unix(exp, 0)); d < 59*time.Minute || d > time.Hour {
		t.Errorf("expiry %v from now, want CredentialTTL", d)
	}
	if strings.Contains(u1, "con_X") {
		t.Errorf("username %q leaks the connection id", u1)
	}
	if _, h2, _ := parseUsername(u2); h2 != h {
		t.Errorf("second Credentials for the same connection changed the handle: %q, %q", u1, u2)
	}
	if _, h3, _ := parseUsername(u3); h3 == h {
		t.Errorf("two connections share handle %q", h)
	}
	if want := restPassword(secret, u1); p1 != want {
		t.Errorf("password %q, want %q", p1, want)
	}
	// A known-answer vector, computed with: printf %s "$user" | openssl dgst -sha1 -hmac "$secret" -binary | base64
	if got := restPassword([]byte("north"), "1767225600:q3JrX0bH1m8tZ2aVwPc4Lg"); got != "/7IkcRSun5Zb66lf12pcQBsOehg=" {
		t.Errorf("known-answer password %q", got)
	}
}

// TestRevoke: after Revoke, a new Allocate is refused, and an existing allocation stops relaying,
// and its TCP connection is closed, within one second.
func TestRevoke(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"Revoke", "Liveness"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			id := "con_" + how
			user, pass := e.srv.Credentials(id)
			c := dialRaw(t, e, user, pass)
			relayAddr := c.mustAllocate()
			if code := c.code(stun.MethodCreatePermission, peerAttr(e.mediaAddr())); code != 0 {
				t.Fatalf("CreatePermission to media: %d", code)
			}
			c.send(peerAttr(e.mediaAddr()), []byte("before"))
			expectDatagram(t, e.media, "before")
			if _, err := e.media.WriteToUDPAddrPort([]byte("back"), relayAddr); err != nil {
				t.Fatal(err)
			}
			if d, ok := c.recvData(5 * time.Second); !ok || string(d.data) != "back" {
				t.Fatalf("client got %+v, %v; want \"back\"", d, ok)
			}

			start := time.Now()
			switch how {
			case "Revoke":
				e.srv.Revoke(id)
			case "Liveness":
				// Nobody calls Revoke: the next authenticated request with the credential
				// (here another client's Allocate) finds the connection dead.
				e.live.kill(id)
				c2 := dialRaw(t, e, user, pass)
				if _, code := c2.allocate(); code != int(stun.CodeUnauthorized) {
					t.Fatalf("Allocate of a dead connection: code %d, want 401", code)
				}
			}
			eventually(t, time.Second, "the client's TURN connection is closed", func() bool {
				select {
				case <-c.readEnd:
					return true
				default:
					return false
				}
			})
			eventually(t, time.Second, "the relay socket is closed", func() bool {
				pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(relayAddr))
				if err != nil {
					return false
				}
				_ = pc.Close()
				return true
			})
			eventually(t, time.Second, "no allocation left", func() bool { return e.srv.Stats().Allocations == 0 })
			if d := time.Since(start); d > time.Second {
				t.Errorf("revocation took %v", d)
			}
			wantClients := 0
			if how == "Liveness" {
				wantClients = 1 // c2, refused but still connected
			}
			if st := e.srv.Stats(); st.Revocations != 1 || st.Connections != 0 || st.Clients != wantClients {
				t.Errorf("stats after revocation: %+v", st)
			}

			// The same credentials are refused from now on.
			c3 := dialRaw(t, e, user, pass)
			if _, code := c3.allocate(); code != int(stun.CodeUnauthorized) {
				t.Fatalf("Allocate after revocation: code %d, want 401", code)
			}
			// A reconnecting participant gets fresh, working credentials.
			user2, pass2 := e.srv.Credentials(id)
			if user2 == user {
				t.Fatalf("re-minted credentials reuse the revoked handle")
			}
			if how == "Revoke" {
				dialRaw(t, e, user2, pass2).mustAllocate()
			}
		})
	}
}

// TestQuota: the per-connection and the global allocation limits answer 486, and a freed slot
// can be used again.
func TestQuota(t *testing.T) {
	t.Parallel()
	t.Run("per connection", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(c *Config) { c.MaxAllocationsPerConnection = 2 })
		user, pass := e.srv.Credentials("con_Quota")
		a := dialRaw(t, e, user, pass)
		a.mustAllocate()
		dialRaw(t, e, user, pass).mustAllocate()
		if _, code := dialRaw(t, e, user, pass).allocate(); code != int(stun.CodeAllocQuotaReached) {
			t.Fatalf("third Allocate: code %d, want 486", code)
		}
		// Another connection is not affected.
		u2, p2 := e.srv.Credentials("con_Other")
		dialRaw(t, e, u2, p2).mustAllocate()

		// Closing a client's TCP connection frees its allocation.
		_ = a.conn.Close()
		eventually(t, 2*time.Second, "the closed client's allocation is freed", func() bool {
			return e.srv.Stats().Allocations == 2
		})
		dialRaw(t, e, user, pass).mustAllocate()
		if q := e.srv.Stats().QuotaRejections; q != 1 {
			t.Errorf("QuotaRejections %d, want 1", q)
		}
	})
	t.Run("global", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(c *Config) { c.MaxAllocations = 2 })
		// From different addresses: one address alone gets half the node (share.go).
		for i, id := range []string{"con_A", "con_B"} {
			u, p := e.srv.Credentials(id)
			dialFrom(t, e, fmt.Sprintf("127.0.0.%d", i+1), u, p).mustAllocate()
		}
		u, p := e.srv.Credentials("con_C")
		if _, code := dialFrom(t, e, "127.0.0.3", u, p).allocate(); code != int(stun.CodeAllocQuotaReached) {
			t.Fatalf("Allocate beyond MaxAllocations: code %d, want 486", code)
		}
	})
}

// TestTCPAllocationRefused: RFC 6062 TCP relays are refused, by the raw request and by pion's
// client.
func TestTCPAllocationRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	user, pass := e.srv.Credentials("con_Tcp")
	c := dialRaw(t, e, user, pass)
	code, _, err := c.do(stun.MethodAllocate, requestedTransport(protoTCP))
	if err != nil {
		t.Fatal(err)
	}
	if code == 0 {
		t.Fatal("TCP Allocate succeeded")
	}
	client, _ := pionClient(t, e, user, pass)
	if _, err := client.AllocateTCP(); err == nil {
		t.Fatal("pion AllocateTCP succeeded")
	}
	if st := e.srv.Stats(); st.Allocations != 0 || st.TCPRelayRefusals != 2 {
		t.Errorf("stats %+v, want no allocation and 2 refusals", st)
	}
	// Connect (RFC 6062) is refused at authentication even on a UDP allocation.
	c.mustAllocate()
	if code := c.code(stun.MethodConnect, peerAttr(e.mediaAddr())); code != int(stun.CodeUnauthorized) {
		t.Errorf("Connect: code %d, want 401", code)
	}
}

// TestIdleConnectionClosed: a TCP client that never allocates is dropped after IdleTimeout.
func TestIdleConnectionClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.IdleTimeout = 50 * time.Millisecond })
	c := e.dial(t)
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("idle connection not closed by the server: %v", err)
	}
	eventually(t, time.Second, "client forgotten", func() bool { return e.srv.Stats().Clients == 0 })
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestClose: Close ends every connection and goroutine, and later hand-offs are closed at once.
func TestClose(t *testing.T) {
	goroutineLeakCheck(t)
	e := newEnv(t, nil)
	user, pass := e.srv.Credentials("con_Close")
	c := dialRaw(t, e, user, pass)
	c.mustAllocate()
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "client connection closed", func() bool {
		select {
		case <-c.readEnd:
			return true
		default:
			return false
		}
	})
	if st := e.srv.Stats(); st.Allocations != 0 || st.Clients != 0 {
		t.Errorf("after Close: %+v", st)
	}
	a, b := net.Pipe()
	defer b.Close()
	e.srv.HandleConn(a)
	if _, err := b.Write([]byte{0}); err == nil {
		t.Error("a connection handed over after Close is still open")
	}
}

// TestConfigErrors: New reports every problem at once.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	good := netip.MustParseAddrPort("192.0.2.2:443")
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"empty", Config{}, []string{"RelayIP is not set", "MediaAddrs is empty"}},
		{"unspecified relay", Config{RelayIP: netip.IPv4Unspecified(), MediaAddrs: []netip.AddrPort{good}},
			[]string{"RelayIP 0.0.0.0"}},
		{"unspecified media", Config{RelayIP: relayIP, MediaAddrs: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:443")}},
			[]string{"unspecified"}},
		{"mapped unspecified media", Config{RelayIP: relayIP, MediaAddrs: []netip.AddrPort{netip.MustParseAddrPort("[::ffff:0.0.0.0]:443")}},
			[]string{"unspecified"}},
		{"port 0", Config{RelayIP: relayIP, MediaAddrs: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.2:0")}},
			[]string{"port 0"}},
		{"short secret", Config{RelayIP: relayIP, MediaAddrs: []netip.AddrPort{good}, Secret: []byte("MY_SECRET")},
			[]string{"Secret is 9 bytes"}},
		{"alias to nowhere", Config{RelayIP: relayIP, MediaAddrs: []netip.AddrPort{good},
			MediaAliases: map[netip.AddrPort]netip.AddrPort{netip.MustParseAddrPort("203.0.113.5:443"): netip.MustParseAddrPort("192.0.2.3:443")}},
			[]string{"not one of MediaAddrs"}},
		{"one name for two media addresses", Config{RelayIP: relayIP, MediaAddrs: []netip.AddrPort{good, netip.MustParseAddrPort("192.0.2.3:443")},
			MediaAliases: map[netip.AddrPort]netip.AddrPort{netip.MustParseAddrPort("192.0.2.3:443"): good}},
			[]string{"already the name of media address 192.0.2.3:443"}},
		{"negative quota", Config{RelayIP: relayIP, MediaAddrs: []netip.AddrPort{good}, MaxAllocations: -1},
			[]string{"MaxAllocations -1"}},
		{"bad UDP address", Config{RelayIP: relayIP, MediaAddrs: []netip.AddrPort{good}, UDPAddr: "nowhere:x"},
			[]string{"UDPAddr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg, &fakeLive{}, nil)
			if err == nil {
				_ = s.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := New(Config{RelayIP: relayIP, MediaAddrs: []netip.AddrPort{good}}, nil, nil); err == nil {
		t.Error("New accepted a nil Liveness")
	}
	// Announcing the address the media socket listens on (both set to 127.0.0.1) is an alias of a
	// media address to itself: redundant, not an error.
	s, err := New(Config{RelayIP: relayIP, MediaAddrs: []netip.AddrPort{good}, MediaAliases: map[netip.AddrPort]netip.AddrPort{good: good}}, &fakeLive{}, nil)
	if err != nil {
		t.Fatalf("an alias of a media address to itself: %v", err)
	}
	_ = s.Close()
}

// TestUDPErrorRateLimit: over TURN/UDP, where source addresses are unverified, one source gets at
// most udpErrorBurst error or Binding responses per window, so the server is a poor reflector.
func TestUDPErrorRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.UDPAddr = "127.0.0.1:0" })
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	const n = 3 * udpErrorBurst
	for i := range n {
		m := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
			requestedTransport(protoUDP), stun.Fingerprint)
		if i%2 == 1 { // unauthenticated Binding, answered with success and our view of the address
			m = stun.MustBuild(stun.TransactionID, stun.BindingRequest)
		}
		if _, err := pc.WriteTo(m.Raw, e.srv.UDPAddr()); err != nil {
			t.Fatal(err)
		}
	}
	// Every request is either answered or counted as suppressed; the short read deadline only
	// lets the loop look at the counter again.
	got := 0
	buf := make([]byte, 1500)
	giveUp := time.Now().Add(20 * time.Second)
	for got+int(e.srv.Stats().UDPErrorsSuppressed) < n {
		_ = pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		k, _, err := pc.ReadFrom(buf)
		if err != nil {
			if time.Now().Before(giveUp) {
				continue
			}
			t.Fatalf("%d responses, %d suppressed, of %d: %v", got, e.srv.Stats().UDPErrorsSuppressed, n, err)
		}
		if !isSTUNError(buf[:k]) && !isBindingSuccess(buf[:k]) {
			t.Fatalf("unexpected response % x", buf[:min(k, 4)])
		}
		got++
	}
	// Exactly udpErrorBurst, unless the burst straddled a window boundary on a slow machine.
	if got < udpErrorBurst || got > 2*udpErrorBurst {
		t.Errorf("%d responses to %d unauthenticated requests, want %d", got, n, udpErrorBurst)
	}
}

// TestSweep: a connection that Liveness reports dead, with no request to notice it, is revoked by
// the periodic sweep that Run performs, and a live one is kept.
func TestSweep(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.sweepEvery = 10 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	user, pass := e.srv.Credentials("con_Gone")
	c := dialRaw(t, e, user, pass)
	c.mustAllocate()
	e.srv.Credentials("con_Stays")
	e.live.kill("con_Gone")
	eventually(t, 10*time.Second, "the sweep to revoke the dead connection and close its relay", func() bool {
		st := e.srv.Stats()
		return st.Revocations == 1 && st.Allocations == 0
	})
	if st := e.srv.Stats(); st.Allocations != 0 || st.Connections != 1 || st.Revocations != 1 {
		t.Errorf("after sweep: %+v", st)
	}
}

// TestEmptyConnectionID: "" is pion's marker for its port probe, so it must never be a user.
func TestEmptyConnectionID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	if u, p := e.srv.Credentials(""); u != "" || p != "" {
		t.Fatalf("Credentials(\"\") = %q, %q", u, p)
	}
	if e.srv.Stats().Connections != 0 {
		t.Fatal("an empty connection id was registered")
	}
}

func TestIsRelayAddr(t *testing.T) {
	e := newEnv(t, nil)
	user, pass := e.srv.Credentials("con_Relay1234")
	client, _ := pionClient(t, e, user, pass)
	relay, err := client.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	relayAddr := relay.LocalAddr().(*net.UDPAddr).AddrPort()
	if !e.srv.IsRelayAddr(relayAddr) {
		t.Fatalf("%s is a live relay address", relayAddr)
	}
	if e.srv.IsRelayAddr(e.mediaAddr()) {
		t.Fatal("the media address is not a relay address")
	}
	e.srv.Revoke("con_Relay1234")
	eventually(t, time.Second, "the revoked relay to be forgotten", func() bool { return !e.srv.IsRelayAddr(relayAddr) })
}

// TestIPv6Relay: a browser that reaches TURN over IPv6 asks for an IPv6 relay; with RelayIP6 set
// it gets one, without it a clear refusal.
func TestIPv6Relay(t *testing.T) {
	for _, tc := range []struct {
		name  string
		relay netip.Addr
		ok    bool
	}{{"with RelayIP6", netip.MustParseAddr("::1"), true}, {"without", netip.Addr{}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.RelayIP6 = tc.relay })
			user, pass := e.srv.Credentials("con_Six1234567")
			conn := e.dial(t)
			c, err := pionturn.NewClient(&pionturn.ClientConfig{
				STUNServerAddr: e.tcp.String(), TURNServerAddr: e.tcp.String(), Conn: pionturn.NewSTUNConn(conn),
				Username: user, Password: pass, RequestedAddressFamily: pionturn.RequestedAddressFamilyIPv6,
				LoggerFactory: pionLoggerFactory(testLogger(t)),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Listen(); err != nil {
				t.Fatal(err)
			}
			relay, err := c.Allocate()
			if tc.ok != (err == nil) {
				t.Fatalf("allocate: ok=%v, err=%v", tc.ok, err)
			}
			if err == nil {
				defer relay.Close()
				if a := relay.LocalAddr().(*net.UDPAddr).AddrPort().Addr(); a != tc.relay {
					t.Fatalf("relayed address %s, want on %s", a, tc.relay)
				}
			}
		})
	}
}
