package turn

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// udpGuard wraps the TURN/UDP socket and limits the STUN error responses (above all the 401 that
// answers every unauthenticated Allocate) sent to any one source IP. Over UDP the source address
// is unverified, so without a limit anyone could aim our 401s, which are larger than the request
// that triggers them, at a victim: a reflector (coturn added the same limit in 4.14.0, #1957).
// Legitimate clients lose nothing: STUN retransmits a request whose answer was dropped.
//
// Binding success responses share the same budget: an unauthenticated Binding request of 20
// bytes is answered with 32 to 52 (XOR-MAPPED-ADDRESS, FINGERPRINT), so unlimited it would be a
// twofold reflector too; TURN clients need none of them (browsers send Binding requests to
// stun: URLs, and over the media port for ICE).
//
// Only error and Binding success responses are inspected; relayed data (ChannelData, Data indications) and success
// responses pass after a two-byte check, with no lock.
type udpGuard struct {
	net.PacketConn

	mu          sync.Mutex
	windowStart time.Time
	sent        map[netip.Addr]int
	suppressed  func() // counts a dropped response
}

const (
	udpErrorBurst    = 20          // error and Binding responses per source IP per window
	udpErrorWindow   = time.Second // window length
	udpGuardMaxPeers = 1 << 16     // bound on the map; beyond it, new sources share one budget
)

// overflowKey is the shared budget for sources beyond udpGuardMaxPeers in one window.
var overflowKey = netip.IPv6Unspecified()

func newUDPGuard(pc net.PacketConn, suppressed func()) *udpGuard {
	return &udpGuard{PacketConn: pc, sent: map[netip.Addr]int{}, suppressed: suppressed}
}

// isSTUNError reports whether b starts a STUN error response: the two top bits of a STUN message
// are zero, and the class bits C1 (0x0100) and C0 (0x0010) are both set (RFC 5389 §6).
//
//	 0                 1
//	 2  3  4 5 6 7 8 9 0 1 2 3 4 5
//	+--+--+-+-+-+-+-+-+-+-+-+-+-+-+
//	|M |M |M|M|M|C|M|M|M|C|M|M|M|M|
//	|11|10|9|8|7|1|6|5|4|0|3|2|1|0|
//	+--+--+-+-+-+-+-+-+-+-+-+-+-+-+
func isSTUNError(b []byte) bool {
	return len(b) >= 20 && b[0]&0xC0 == 0 && b[0]&0x01 != 0 && b[1]&0x10 != 0
}

// isBindingSuccess reports whether b starts a Binding success response (type 0x0101).
func isBindingSuccess(b []byte) bool { return len(b) >= 20 && b[0] == 0x01 && b[1] == 0x01 }

// WriteTo implements net.PacketConn.
func (g *udpGuard) WriteTo(p []byte, addr net.Addr) (int, error) {
	if (isSTUNError(p) || isBindingSuccess(p)) && !g.allow(addr) {
		g.suppressed()
		return len(p), nil // pretend it was sent: pion would only log the error
	}
	return g.PacketConn.WriteTo(p, addr)
}

func (g *udpGuard) allow(addr net.Addr) bool {
	ap, ok := addrPortOf(addr)
	if !ok {
		return false
	}
	ip := ap.Addr().Unmap()
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.windowStart) >= udpErrorWindow {
		clear(g.sent)
		g.windowStart = now
	}
	if _, seen := g.sent[ip]; !seen && len(g.sent) >= udpGuardMaxPeers {
		ip = overflowKey
	}
	if g.sent[ip] >= udpErrorBurst {
		return false
	}
	g.sent[ip]++
	return true
}
