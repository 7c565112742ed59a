package turn

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// canary is a UDP socket standing where relayed data must never arrive.
func canary(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	a, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenUDP(network, a)
	if err != nil {
		return nil
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

func portOf(pc *net.UDPConn) uint16 { return pc.LocalAddr().(*net.UDPAddr).AddrPort().Port() }

// TestForbiddenPeers asks for permissions and channels to every destination the relay must not
// reach, tries to send there anyway, and checks that nothing arrives. Only our media address
// itself may be reached; the relay binds 127.0.0.1 and the SFU 127.0.0.2 (see helpers_test.go).
func TestForbiddenPeers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	loop := canary(t, "udp4", "127.0.0.1:0")     // catches 127.0.0.1, ::ffff:127.0.0.1 and 0.0.0.0
	sideDoor := canary(t, "udp4", "127.0.0.2:0") // our media IP, another port
	loop6 := canary(t, "udp6", "[::1]:0")        // catches ::1 and [::]; nil without IPv6

	type dest struct {
		name   string
		peer   netip.AddrPort
		mapped bool         // encode an IPv4 peer as ::ffff:a.b.c.d on the wire
		canary *net.UDPConn // nil: nothing listens there (checked by the refusal and the drop counter)
		// sameIP: pion grants permissions per IP (RFC 5766 §8) and its PermissionHandler sees
		// no port, so CreatePermission and ChannelBind to our media IP succeed whatever the
		// port; the relay wrapper must then drop every datagram.
		sameIP bool
	}
	dests := []dest{
		{name: "127.0.0.1", peer: netip.AddrPortFrom(relayIP, portOf(loop)), canary: loop},
		{name: "::ffff:127.0.0.1", peer: netip.AddrPortFrom(relayIP, portOf(loop)), mapped: true, canary: loop},
		{name: "0.0.0.0", peer: netip.AddrPortFrom(netip.IPv4Unspecified(), portOf(loop)), canary: loop},
		{name: "169.254.169.254", peer: netip.MustParseAddrPort("169.254.169.254:80")},
		{name: "10.x neighbour", peer: netip.MustParseAddrPort("10.0.0.7:5000")},
		{name: "LAN neighbour", peer: netip.MustParseAddrPort("192.0.2.1:443")},
		{name: "media IP, other port", peer: netip.AddrPortFrom(mediaIP, portOf(sideDoor)), canary: sideDoor, sameIP: true},
		{name: "::ffff:media IP, other port", peer: netip.AddrPortFrom(mediaIP, portOf(sideDoor)), mapped: true, canary: sideDoor, sameIP: true},
	}
	if loop6 != nil {
		dests = append(dests,
			dest{name: "::1", peer: netip.AddrPortFrom(netip.IPv6Loopback(), portOf(loop6)), canary: loop6},
			dest{name: "[::]", peer: netip.AddrPortFrom(netip.IPv6Unspecified(), portOf(loop6)), canary: loop6},
		)
	}

	for i, d := range dests {
		t.Run(d.name, func(t *testing.T) {
			user, pass := e.srv.Credentials(fmt.Sprintf("con_Abuse%d", i))
			c := dialRaw(t, e, user, pass)
			c.mustAllocate()
			peer := peerAttr(d.peer)
			if d.mapped {
				peer = peerAttr16(d.peer)
			}
			// An IPv4 allocation answers an IPv6 peer with 443 (Peer Address Family Mismatch)
			// before the PermissionHandler runs; the handler refuses it too (TestPolicy).
			refused := []int{int(stun.CodeForbidden)}
			chanRefused := []int{int(stun.CodeForbidden), int(stun.CodeUnauthorized)} // pion answers 401 for a refused ChannelBind
			if d.peer.Addr().Is6() && !d.mapped {
				refused = []int{int(stun.CodePeerAddrFamilyMismatch)}
				chanRefused = refused
			}
			const ch = 0x4001
			perm := c.code(stun.MethodCreatePermission, peer)
			bind := c.code(stun.MethodChannelBind, channelAttr(ch), peer)
			if d.sameIP {
				if perm != 0 || bind != 0 {
					t.Fatalf("same-IP permission %d, channel %d: want both granted at IP level", perm, bind)
				}
			} else {
				if !slices.Contains(refused, perm) {
					t.Errorf("CreatePermission: code %d, want one of %v", perm, refused)
				}
				if !slices.Contains(chanRefused, bind) {
					t.Errorf("ChannelBind: code %d, want one of %v", bind, chanRefused)
				}
			}
			dropsBefore := e.srv.Stats().DroppedForbidden

			// Try anyway, both ways of sending.
			c.send(peer, []byte("leak by Send indication"))
			c.sendChannel(ch, []byte("leak by ChannelData"))

			// Then a datagram to the real media address on the same TCP stream. pion handles a
			// stream in order and a local UDP send completes before it returns, so once this one
			// has arrived, any leak would already be sitting in the canary.
			if code := c.code(stun.MethodCreatePermission, peerAttr(e.mediaAddr())); code != 0 {
				t.Fatalf("CreatePermission to media: %d", code)
			}
			c.send(peerAttr(e.mediaAddr()), []byte("control"))
			expectDatagram(t, e.media, "control")
			if d.canary != nil {
				expectNoDatagram(t, d.canary, d.name)
			}
			expectNoDatagram(t, e.media, "media after control")
			if d.sameIP {
				if got := e.srv.Stats().DroppedForbidden - dropsBefore; got != 2 {
					t.Errorf("relay wrapper dropped %d datagrams, want 2", got)
				}
			}
		})
	}
}

// TestForbiddenSources: datagrams sent to a relay address by anyone but the media address never
// reach the client, even from our media IP (which pion's per-IP permission admits).
func TestForbiddenSources(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	user, pass := e.srv.Credentials("con_Inbound")
	c := dialRaw(t, e, user, pass)
	relayAddr := c.mustAllocate()
	if code := c.code(stun.MethodCreatePermission, peerAttr(e.mediaAddr())); code != 0 {
		t.Fatalf("CreatePermission: %d", code)
	}
	for _, src := range []string{"127.0.0.2:0", "127.0.0.1:0"} {
		pc := canary(t, "udp4", src)
		if _, err := pc.WriteToUDPAddrPort([]byte("injected from "+src), relayAddr); err != nil {
			t.Fatal(err)
		}
	}
	// The relay reads its socket in order: once the media's datagram arrives, the strangers'
	// datagrams have been read (and must have been dropped).
	if _, err := e.media.WriteToUDPAddrPort([]byte("from media"), relayAddr); err != nil {
		t.Fatal(err)
	}
	d, ok := c.recvData(5 * time.Second)
	if !ok || string(d.data) != "from media" || d.peer != e.mediaAddr() {
		t.Fatalf("client got %q from %s (ok=%v), want \"from media\" from %s", d.data, d.peer, ok, e.mediaAddr())
	}
	if got := e.srv.Stats().DroppedForbidden; got != 2 {
		t.Errorf("DroppedForbidden %d, want 2", got)
	}
}

// TestMediaAlias: on a 1:1-NAT host the client names the announced address; the relay delivers to
// the local media socket and reports the replies as coming from the announced address.
func TestMediaAlias(t *testing.T) {
	t.Parallel()
	announced := netip.MustParseAddrPort("192.0.2.99:4443") // never contacted: rewritten to local
	e := newEnv(t, func(c *Config) {
		c.MediaAliases = map[netip.AddrPort]netip.AddrPort{announced: c.MediaAddrs[0]}
	})
	user, pass := e.srv.Credentials("con_Alias")
	c := dialRaw(t, e, user, pass)
	relayAddr := c.mustAllocate()
	if code := c.code(stun.MethodCreatePermission, peerAttr(announced)); code != 0 {
		t.Fatalf("CreatePermission to the announced address: %d", code)
	}
	c.send(peerAttr(announced), []byte("via alias"))
	if from := expectDatagram(t, e.media, "via alias"); from != relayAddr {
		t.Fatalf("media got it from %s, want %s", from, relayAddr)
	}
	if _, err := e.media.WriteToUDPAddrPort([]byte("reply"), relayAddr); err != nil {
		t.Fatal(err)
	}
	d, ok := c.recvData(5 * time.Second)
	if !ok || d.peer != announced {
		t.Fatalf("client got %q from %s (ok=%v), want it from %s", d.data, d.peer, ok, announced)
	}
	// Another port on the announced IP is as forbidden as anywhere else.
	c.send(peerAttr(netip.AddrPortFrom(announced.Addr(), 22)), []byte("ssh?"))
	c.send(peerAttr(announced), []byte("control"))
	expectDatagram(t, e.media, "control")
	if got := e.srv.Stats().DroppedForbidden; got != 1 {
		t.Errorf("DroppedForbidden %d, want 1", got)
	}
}

// TestPolicy checks the allow-list alone, with IPv6 and re-encoded forms that the end-to-end
// test cannot reach from an IPv4 allocation.
func TestPolicy(t *testing.T) {
	t.Parallel()
	media4 := netip.MustParseAddrPort("192.0.2.2:443")
	media6 := netip.MustParseAddrPort("[2001:db8::2]:443")
	public := netip.MustParseAddrPort("203.0.113.5:443")
	p, err := newPeerPolicy([]netip.AddrPort{media4, media6}, map[netip.AddrPort]netip.AddrPort{public: media4})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		peer    string
		ipOK    bool // PermissionHandler
		routeOK bool // relay wrapper, exact ip:port
	}{
		{"192.0.2.2:443", true, true},
		{"[::ffff:192.0.2.2]:443", true, true},
		{"[2001:db8::2]:443", true, true},
		{"203.0.113.5:443", true, true},
		{"192.0.2.2:444", true, false},
		{"192.0.2.2:22", true, false},
		{"[2001:db8::2]:22", true, false},
		{"203.0.113.5:22", true, false},
		{"127.0.0.1:443", false, false},
		{"127.0.0.2:443", false, false},
		{"[::1]:443", false, false},
		{"[::ffff:127.0.0.1]:443", false, false},
		{"0.0.0.0:443", false, false},
		{"[::]:443", false, false},
		{"[::ffff:0.0.0.0]:443", false, false},
		{"169.254.169.254:80", false, false},
		{"[::ffff:169.254.169.254]:80", false, false},
		{"[fe80::1]:443", false, false},
		{"[fd00::1]:443", false, false},
		{"10.0.0.7:443", false, false},
		{"172.16.0.1:443", false, false},
		{"192.168.1.1:443", false, false},
		{"192.0.2.1:443", false, false},
		{"224.0.0.1:443", false, false},
		{"255.255.255.255:443", false, false},
		{"[64:ff9b::c000:202]:443", false, false}, // NAT64 form of 192.0.2.2
		{"[2002:c000:202::]:443", false, false},   // 6to4 form of 192.0.2.2
		{"[::c000:202]:443", false, false},        // IPv4-compatible form of 192.0.2.2
	} {
		t.Run(tc.peer, func(t *testing.T) {
			ap := netip.MustParseAddrPort(tc.peer)
			if got := p.allowIP(net.IP(ap.Addr().AsSlice())); got != tc.ipOK {
				t.Errorf("allowIP = %v, want %v", got, tc.ipOK)
			}
			if _, got := p.route(ap); got != tc.routeOK {
				t.Errorf("route = %v, want %v", got, tc.routeOK)
			}
		})
	}
	if p.allowIP(nil) || p.allowIP(net.IP{1, 2, 3}) {
		t.Error("allowIP accepted a malformed IP")
	}
}

// TestRelayConnZeroAlloc: the per-datagram path of the relay wrapper allocates nothing.
func TestRelayConnZeroAlloc(t *testing.T) {
	e := newEnv(t, nil)
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(relayIP, 0)))
	if err != nil {
		t.Fatal(err)
	}
	rc := newRelayConn(pc, e.srv.policy, e.srv, &connState{relays: map[*relayConn]struct{}{}})
	defer rc.Close()
	relayAddr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	media := net.UDPAddrFromAddrPort(e.mediaAddr())
	payload := make([]byte, 1200)
	buf := make([]byte, 1600)

	if n := testing.AllocsPerRun(1000, func() {
		if _, err := rc.WriteTo(payload, media); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.media.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("WriteTo: %v allocations per datagram", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := e.media.WriteToUDPAddrPort(payload, relayAddr); err != nil {
			t.Fatal(err)
		}
		if _, _, err := rc.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ReadFrom: %v allocations per datagram", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := rc.WriteTo(payload, &net.UDPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 53}); err == nil {
			t.Fatal("forbidden WriteTo succeeded")
		}
	}); n > 1 { // the *net.UDPAddr literal itself
		t.Errorf("refused WriteTo: %v allocations", n)
	}
}

// TestRelayConnRefuses tests the second layer alone: whatever pion lets through, the relay socket
// wrapper sends nothing anywhere but the media address.
func TestRelayConnRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	loop := canary(t, "udp4", "127.0.0.1:0")
	sideDoor := canary(t, "udp4", "127.0.0.2:0")
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(relayIP, 0)))
	if err != nil {
		t.Fatal(err)
	}
	rc := newRelayConn(pc, e.srv.policy, e.srv, &connState{relays: map[*relayConn]struct{}{}})
	defer rc.Close()

	lp, sp := int(portOf(loop)), int(portOf(sideDoor))
	for _, dst := range []net.Addr{
		&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: lp},       // 16-byte form, as net.IPv4 makes it
		&net.UDPAddr{IP: net.IP{127, 0, 0, 1}, Port: lp},         // 4-byte form
		&net.UDPAddr{IP: net.IPv4zero, Port: lp},                 // 0.0.0.0 delivers locally
		&net.UDPAddr{IP: net.IP{127, 0, 0, 2}, Port: sp},         // media IP, other port
		&net.UDPAddr{IP: net.IPv4(169, 254, 169, 254), Port: 80}, // metadata
		&net.UDPAddr{IP: net.ParseIP("::1"), Port: lp},           // IPv6 loopback
		&net.UDPAddr{}, // nothing at all
		&net.TCPAddr{IP: net.IP{127, 0, 0, 1}, Port: lp}, // wrong type, forbidden IP
		(*net.UDPAddr)(nil), // nil pointer
		handoffAddr{},       // not an IP address at all
	} {
		if _, err := rc.WriteTo([]byte("leak"), dst); err != errForbiddenPeer {
			t.Errorf("WriteTo(%v): err %v, want errForbiddenPeer", dst, err)
		}
	}
	if _, err := rc.WriteTo([]byte("control"), net.UDPAddrFromAddrPort(e.mediaAddr())); err != nil {
		t.Fatal(err)
	}
	expectDatagram(t, e.media, "control")
	expectNoDatagram(t, loop, "loopback canary")
	expectNoDatagram(t, sideDoor, "side-door canary")
}
