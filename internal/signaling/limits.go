package signaling

import (
	"net/netip"
	"time"
)

// Limits bound what one socket, or a stranger opening many, can make the server hold (issue 14).
// README's bounds table lists them with their reasons. Zero fields take DefaultLimits' values;
// tests shrink them.
type Limits struct {
	// PreJoinFrame is the largest frame read from a socket that has not joined: joinRoom (a token
	// URL, the platform string and the client's metadata) and connect fit in a few KiB.
	PreJoinFrame int64
	// Frame is the largest frame read once joined. openvidu-server 2.32 sets its WebSocket
	// container's text buffer to 50 K characters (InfoSocketConfig), so no OpenVidu client sends
	// more; an SDP offer (32 KiB at most, checked by the model) fits with its JSON escaping.
	Frame int64
	// JoinDeadline closes a socket that has not joined (joinRoom, or connect back to a joined
	// session) this long after it opened. The SDK sends one of them as soon as the socket opens.
	JoinDeadline time.Duration
	// PreJoinSockets bounds the sockets that have not joined, in all; past it the oldest socket of
	// the address holding the most is closed to make room, so a newcomer is never refused.
	PreJoinSockets int
	// PreJoinPerSource bounds them per address (IPv4, IPv6 /64); past it that address's oldest is
	// closed.
	PreJoinPerSource int
	// QueueBytes and QueueFrames bound what waits to be written to one socket: a client that
	// stops reading is closed with 1008 once either is passed (one frame larger than QueueBytes
	// is still sent when nothing else waits, so a large joinRoom answer always goes out).
	QueueBytes  int
	QueueFrames int
}

// DefaultLimits are the limits in production.
var DefaultLimits = Limits{
	PreJoinFrame:     8 << 10,
	Frame:            64 << 10,
	JoinDeadline:     10 * time.Second,
	PreJoinSockets:   1024,
	PreJoinPerSource: 32,
	QueueBytes:       1 << 20,
	QueueFrames:      512,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.PreJoinFrame > 0 {
		d.PreJoinFrame = l.PreJoinFrame
	}
	if l.Frame > 0 {
		d.Frame = l.Frame
	}
	if l.JoinDeadline > 0 {
		d.JoinDeadline = l.JoinDeadline
	}
	if l.PreJoinSockets > 0 {
		d.PreJoinSockets = l.PreJoinSockets
	}
	if l.PreJoinPerSource > 0 {
		d.PreJoinPerSource = l.PreJoinPerSource
	}
	if l.QueueBytes > 0 {
		d.QueueBytes = l.QueueBytes
	}
	if l.QueueFrames > 0 {
		d.QueueFrames = l.QueueFrames
	}
	return d
}

// sourceOf is the key a socket counts against: its address, or its /64 for IPv6, the block one
// subscriber line usually gets, so a host cannot pick fresh addresses to dodge the cap.
func sourceOf(ip string) netip.Prefix {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{} // unknown addresses share one budget
	}
	a = a.Unmap().WithZone("")
	bits := a.BitLen()
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// preJoinSet holds the sockets that have not joined, oldest first per source. Adding never
// refuses: when a source or the whole set is full, the oldest socket of that source (or of the
// source holding the most) is returned to be closed. A source that opens sockets and never joins
// thus only ever displaces its own. Handler.mu guards it.
type preJoinSet struct {
	max, perSource int
	n              int
	bySource       map[netip.Prefix][]*socket
}

func newPreJoinSet(max, perSource int) *preJoinSet {
	return &preJoinSet{max: max, perSource: perSource, bySource: map[netip.Prefix][]*socket{}}
}

// add records s and returns the socket to close to make room for it, if any (already forgotten).
func (p *preJoinSet) add(s *socket) (evicted *socket) {
	switch {
	case len(p.bySource[s.src]) >= p.perSource:
		evicted = p.oldest(s.src)
	case p.n >= p.max:
		evicted = p.oldest(p.largestSource())
	}
	if evicted != nil {
		p.remove(evicted)
	}
	p.bySource[s.src] = append(p.bySource[s.src], s)
	p.n++
	return evicted
}

// remove forgets s; it reports whether s was there.
func (p *preJoinSet) remove(s *socket) bool {
	q := p.bySource[s.src]
	for i, x := range q {
		if x == s {
			q = append(q[:i], q[i+1:]...)
			if len(q) == 0 {
				delete(p.bySource, s.src)
			} else {
				p.bySource[s.src] = q
			}
			p.n--
			return true
		}
	}
	return false
}

func (p *preJoinSet) oldest(src netip.Prefix) *socket {
	if q := p.bySource[src]; len(q) > 0 {
		return q[0]
	}
	return nil
}

// largestSource is the source holding the most sockets; called only when the set is full.
func (p *preJoinSet) largestSource() netip.Prefix {
	var best netip.Prefix
	n := 0
	for k, q := range p.bySource {
		if len(q) > n {
			best, n = k, len(q)
		}
	}
	return best
}
