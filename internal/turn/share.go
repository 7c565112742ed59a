package turn

import (
	"net"
	"net/netip"
)

// Footprint is what the session model knows of a participant that sizes its TURN share. The
// Liveness given to New may implement it; without it, a credential gets the fixed
// MaxAllocationsPerConnection and shares are per source address only.
type Footprint interface {
	// Footprint reports the participant's session and its PeerConnections: one per stream it
	// publishes and one per subscription, those being negotiated included. Called like Alive:
	// from pion's goroutines, never with the TURN server's lock held.
	Footprint(connectionID string) (session string, peerConnections int)
}

// Allocation shares. A browser asks for one relay per TURN URL and local address family for each
// PeerConnection, so a credential may hold AllocationsPerPeerConnection for each of its
// PeerConnections plus peerConnectionSlack more: a browser gathers relay candidates before its
// offer (and so the subscription or publish) reaches us.
//
// Once half the node's budget is in use, a session or a source address (IPv4, or IPv6 /64) may
// not grow past its fair share, MaxAllocations / (groups holding allocations + 1): one session
// or address can then never take the whole node (alone, it gets half), and the +1 keeps room
// for a group that holds nothing yet, so a participant of another session, from another
// address, still gets its relays. The 486 goes to whoever is over its share.
const (
	peerConnectionSlack = 2
	contendedFraction   = 2 // shares apply from MaxAllocations / contendedFraction in use
)

// groupCounts counts live allocations per session and per source.
type groupCounts struct {
	bySession map[string]int
	bySource  map[netip.Prefix]int
}

// sourceOf is the key a client address counts against. IPv6 is grouped by /64, the block one
// subscriber line usually gets, so a host cannot pick fresh addresses to dodge its share.
func sourceOf(a net.Addr) netip.Prefix {
	ap, ok := addrPortOf(a)
	if !ok {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap().WithZone("")
	bits := ip.BitLen()
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// shareOKLocked reports whether st may hold one more allocation. s.mu must be held.
func (s *Server) shareOKLocked(st *connState) bool {
	n := len(st.relays)
	total := len(s.relays)
	switch {
	case total >= s.cfg.MaxAllocations:
		return false
	case n >= st.limit:
		return false
	case total < s.cfg.MaxAllocations/contendedFraction:
		return true
	}
	if st.session != "" {
		if held := s.groups.bySession[st.session]; held > 0 && held >= s.cfg.MaxAllocations/(len(s.groups.bySession)+1) {
			return false
		}
	}
	if held := s.groups.bySource[st.source]; held > 0 && held >= s.cfg.MaxAllocations/(len(s.groups.bySource)+1) {
		return false
	}
	return true
}

// countLocked adds d (±1) to st's groups. s.mu must be held.
func (s *Server) countLocked(st *connState, d int) {
	if st.session != "" {
		if s.groups.bySession[st.session] += d; s.groups.bySession[st.session] <= 0 {
			delete(s.groups.bySession, st.session)
		}
	}
	if s.groups.bySource[st.source] += d; s.groups.bySource[st.source] <= 0 {
		delete(s.groups.bySource, st.source)
	}
}

// credentialLimit is how many allocations a participant with pcs PeerConnections may hold.
func (s *Server) credentialLimit(pcs int) int {
	if pcs < 0 {
		return s.cfg.MaxAllocationsPerConnection
	}
	return min(s.cfg.MaxAllocationsPerConnection, s.cfg.AllocationsPerPeerConnection*(pcs+peerConnectionSlack))
}
