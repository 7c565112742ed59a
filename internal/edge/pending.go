package edge

import (
	"net"
	"net/netip"
	"time"
)

// pendingConn is a connection between accept and hand-off.
type pendingConn struct {
	c   net.Conn
	key netip.Prefix // who it counts against: its address, or its /64 for IPv6
}

// pendingSet holds the connections being sniffed, in accept order per source. It never makes
// accepting wait: when a source or the whole set is full, the oldest connection of that source
// (or of the source holding the most) is evicted to make room. A source that opens connections
// and sends nothing thus only ever displaces its own, and a newcomer from anywhere else is
// sniffed at once. Not safe for concurrent use: Server.mu guards it.
type pendingSet struct {
	max, perSource int
	// relay, when set, names the sources exempt from perSource (Config.Relays): one address
	// that carries many people's connections. They still count toward max.
	relay    func(netip.Addr) bool
	all      map[net.Conn]*pendingConn
	bySource map[netip.Prefix][]*pendingConn // oldest first
}

func newPendingSet(max, perSource int) *pendingSet {
	return &pendingSet{max: max, perSource: perSource,
		all: make(map[net.Conn]*pendingConn), bySource: make(map[netip.Prefix][]*pendingConn)}
}

// peerIP is the address of a connection's peer, unmapped; invalid if it has none.
func peerIP(a net.Addr) netip.Addr {
	var ip netip.Addr
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ = netip.AddrFromSlice(ta.IP)
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr()
	}
	return ip.Unmap()
}

// sourceOf is the key a connection counts against. IPv6 is grouped by /64, the block one
// subscriber line usually gets, so a host cannot pick fresh addresses to dodge the cap.
func sourceOf(a net.Addr) netip.Prefix {
	ip := peerIP(a)
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	bits := ip.BitLen()
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// add records c and returns the connection evicted to make room for it, if any. The caller
// closes the evicted one outside the lock.
func (p *pendingSet) add(c net.Conn) (evicted net.Conn) {
	pc := &pendingConn{c: c, key: sourceOf(c.RemoteAddr())}
	switch {
	case len(p.bySource[pc.key]) >= p.perSource && (p.relay == nil || !p.relay(peerIP(c.RemoteAddr()))):
		evicted = p.evictOldest(pc.key)
	case len(p.all) >= p.max:
		evicted = p.evictOldest(p.largestSource())
	}
	p.all[c] = pc
	p.bySource[pc.key] = append(p.bySource[pc.key], pc)
	return evicted
}

// rekey makes c, already added, count against client's source instead of its peer's, and
// returns the connection evicted if that source is now over perSource (its oldest other than c).
// A c no longer held (evicted meanwhile) is left alone.
func (p *pendingSet) rekey(c net.Conn, client net.Addr) (evicted net.Conn) {
	if _, ok := p.all[c]; !ok {
		return nil
	}
	p.remove(c)
	key := sourceOf(client)
	if q := p.bySource[key]; len(q) >= p.perSource && (p.relay == nil || !p.relay(peerIP(client))) {
		evicted = p.evictOldest(key)
	}
	pc := &pendingConn{c: c, key: key}
	p.all[c] = pc
	p.bySource[key] = append(p.bySource[key], pc)
	return evicted
}

// remove forgets c and reports whether it was still there (not evicted or closed at shutdown).
func (p *pendingSet) remove(c net.Conn) bool {
	pc, ok := p.all[c]
	if !ok {
		return false
	}
	delete(p.all, c)
	q := p.bySource[pc.key]
	for i, x := range q {
		if x == pc {
			q = append(q[:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(p.bySource, pc.key)
	} else {
		p.bySource[pc.key] = q
	}
	return true
}

func (p *pendingSet) evictOldest(key netip.Prefix) net.Conn {
	q := p.bySource[key]
	if len(q) == 0 {
		return nil
	}
	c := q[0].c
	p.remove(c)
	return c
}

// largestSource is the source holding the most connections; at most max sources exist, and it
// is called only when the set is full.
func (p *pendingSet) largestSource() netip.Prefix {
	var best netip.Prefix
	n := 0
	for k, q := range p.bySource {
		if len(q) > n {
			best, n = k, len(q)
		}
	}
	return best
}

// takeAll empties the set and returns what it held.
func (p *pendingSet) takeAll() []net.Conn {
	out := make([]net.Conn, 0, len(p.all))
	for c := range p.all {
		out = append(out, c)
	}
	clear(p.all)
	clear(p.bySource)
	return out
}

// idleDeadline is when a connection that has sent nothing gives up its slot.
func idleDeadline(now time.Time, firstByte, sniff time.Duration) time.Time {
	return now.Add(min(firstByte, sniff))
}
