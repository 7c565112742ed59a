package sfu

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
)

// TestListenIPsMustBind: an address the operator listed that cannot be bound fails start-up with
// the setting's name, instead of leaving media unbound there without a word.
func TestListenIPsMustBind(t *testing.T) {
	t.Parallel()
	_, err := New(Config{ListenIPs: []netip.Addr{netip.MustParseAddr("192.0.2.77")}}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "PARLEY_MEDIA_LISTEN_IPS") || !strings.Contains(err.Error(), "192.0.2.77") {
		t.Fatalf("New with an address not on this host: %v, want an error naming it and PARLEY_MEDIA_LISTEN_IPS", err)
	}
}

// TestMediaPortFollowsAddresses starts the SFU in a network namespace right after a veth pair was
// created, as at boot or when a container network comes up: its IPv6 addresses (the link-local
// ones and a global one) are still tentative. Start-up must work, the link-local addresses must
// never be bound, the global one must be bound once duplicate address detection ends, and an
// IPv4 address added afterwards must be bound too. Needs root and ip(8); the SFU runs in a child
// process (this test binary) inside the namespace.
func TestMediaPortFollowsAddresses(t *testing.T) {
	if os.Getenv("PARLEY_SFU_NETNS_CHILD") != "" {
		mediaPortChild(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8)")
	}
	ns := fmt.Sprintf("sfuaddr%d", os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "set", "lo", "up")
	ip("-n", ns, "link", "add", "pa", "type", "veth", "peer", "name", "pb")
	ip("-n", ns, "addr", "add", "2001:db8:77::1/64", "dev", "pa")
	ip("-n", ns, "link", "set", "pa", "up")
	ip("-n", ns, "link", "set", "pb", "up")

	child := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestMediaPortFollowsAddresses$", "-test.v")
	child.Env = append(os.Environ(), "PARLEY_SFU_NETNS_CHILD=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = child.Stdout
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var log []string
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		log = append(log, lines.Text())
		if strings.Contains(lines.Text(), "SFU UP") {
			// The child started with the global address still tentative; add one now.
			ip("-n", ns, "addr", "add", "10.77.0.1/24", "dev", "pa")
		}
	}
	t.Logf("child:\n%s", strings.Join(log, "\n"))
	if err := child.Wait(); err != nil {
		t.Fatalf("child in %s: %v\n%s", ns, err, strings.Join(log, "\n"))
	}
	if !slices.ContainsFunc(log, func(l string) bool { return strings.Contains(l, "SFU UP") }) {
		t.Fatalf("child never started the SFU:\n%s", strings.Join(log, "\n"))
	}
}

// mediaPortChild is the SFU's side of TestMediaPortFollowsAddresses, inside the namespace.
func mediaPortChild(t *testing.T) {
	s, err := New(Config{Port: 4443}, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("start-up beside tentative addresses: %v", err)
	}
	defer s.Close()
	fmt.Println("SFU UP, bound on", s.LocalAddrs())
	want := []netip.AddrPort{netip.MustParseAddrPort("[2001:db8:77::1]:4443"), netip.MustParseAddrPort("10.77.0.1:4443")}
	deadline := time.Now().Add(20 * time.Second) // DAD takes about a second, more on a busy machine
	for {
		got := s.LocalAddrs()
		for _, a := range got {
			if a.Addr().IsLinkLocalUnicast() {
				t.Fatalf("bound on the link-local %s", a)
			}
		}
		missing := slices.DeleteFunc(slices.Clone(want), func(w netip.AddrPort) bool { return slices.Contains(got, w) })
		if len(missing) == 0 {
			fmt.Println("bound on", got)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("media port bound on %v, never on %v", got, missing)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not synchronising on time
	}
}

// TestLoopbackCandidateReachesOnlyLoopback: with the media port also on a host address, what our
// loopback candidate sends to a browser's host address on the same machine is refused (Firefox
// would answer it but never check back, and a nomination of that pair left it unconnected); to a
// loopback address it goes out. With the port on loopback alone it is the only way in, and it
// answers host addresses too.
func TestLoopbackCandidateReachesOnlyLoopback(t *testing.T) {
	var host netip.Addr // a non-loopback address of this machine, where a browser would be
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			host, _ = netip.AddrFromSlice(n.IP.To4())
		}
	}
	if !host.IsValid() {
		t.Skip("no non-loopback IPv4 address on this machine")
	}
	listen := func(ip netip.Addr) *net.UDPConn {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	// reaches sends "check" from the mux's loopback candidate to to, then "marker" from elsewhere,
	// and tells whether the check arrived (UDP on one machine keeps the order).
	reaches := func(m *udpMuxSet, ufrag string, to *net.UDPConn) bool {
		t.Helper()
		var lo net.Addr
		for _, a := range m.GetListenAddresses() {
			if a.(*net.UDPAddr).IP.IsLoopback() {
				lo = a
			}
		}
		conn, err := m.GetConn(ufrag, lo)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.WriteTo([]byte("check"), to.LocalAddr())
		if _, err := listen(host).WriteTo([]byte("marker"), to.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		for {
			_ = to.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := to.ReadFrom(buf)
			if err != nil {
				t.Fatalf("neither the check nor the marker arrived: %v", err)
			}
			switch string(buf[:n]) {
			case "check":
				_, _, _ = to.ReadFrom(buf) // the marker
				return true
			case "marker":
				return false
			}
		}
	}
	newSet := func(ips ...netip.Addr) *udpMuxSet {
		m := newUDPMuxSet(0, logging.NewDefaultLoggerFactory().NewLogger("test"))
		t.Cleanup(func() { _ = m.Close() })
		for _, ip := range ips {
			if err := m.add(ip); err != nil {
				t.Fatal(err)
			}
		}
		return m
	}
	lo := netip.MustParseAddr("127.0.0.1")

	both := newSet(lo, host)
	if reaches(both, "a", listen(host)) {
		t.Errorf("bound on %v too, the loopback candidate sent to a host address", host)
	}
	if !reaches(both, "b", listen(lo)) {
		t.Errorf("the loopback candidate did not reach a loopback address")
	}
	if !reaches(newSet(lo), "c", listen(host)) {
		t.Errorf("bound on loopback alone, the loopback candidate did not answer a host address")
	}
}
