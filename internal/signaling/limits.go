package signaling

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Limits bound what one socket, or a stranger opening many, can make the server hold (issue 14).
// README's bounds table lists them with their reasons. Zero fields take DefaultLimits' values;
// tests shrink them.
type Limits struct {
	// PreJoinFrame is the largest frame read from a socket that has not joined: joinRoom carries a
	// token URL, the platform string and the client's metadata, which openvidu-server accepted up
	// to its 50 K-character frame (apps put avatars there). Only the first PreJoinFree bytes of
	// such a frame are the socket's own; the rest comes from PreJoinBytes and PreJoinSourceBytes.
	PreJoinFrame int64
	// PreJoinFree is what a socket that has not joined may hold of a frame on its own: a joinRoom
	// without large metadata (1–2 KiB) and connect fit with room to spare. Bounded in all by
	// PreJoinSockets.
	PreJoinFree int64
	// PreJoinBytes bounds the bytes past PreJoinFree that all sockets that have not joined hold in
	// the frames they are reading, PreJoinSourceBytes those of one address (IPv4, IPv6 /64), so
	// 1,000 sockets holding unfinished frames cost at most PreJoinSockets × PreJoinFree +
	// PreJoinBytes. A frame past its address's share closes its socket with 1013 (try again
	// later); one that finds the node's budget full closes the oldest unfinished frame of the
	// address holding the most instead, if that address holds more than its own.
	PreJoinBytes       int64
	PreJoinSourceBytes int64
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
	PreJoinFrame:       64 << 10,
	PreJoinFree:        4 << 10,
	PreJoinBytes:       4 << 20,
	PreJoinSourceBytes: 256 << 10,
	Frame:              64 << 10,
	JoinDeadline:       10 * time.Second,
	PreJoinSockets:     1024,
	PreJoinPerSource:   32,
	QueueBytes:         1 << 20,
	QueueFrames:        512,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.PreJoinFrame > 0 {
		d.PreJoinFrame = l.PreJoinFrame
	}
	if l.PreJoinFree > 0 {
		d.PreJoinFree = l.PreJoinFree
	}
	if l.PreJoinBytes > 0 {
		d.PreJoinBytes = l.PreJoinBytes
	}
	if l.PreJoinSourceBytes > 0 {
		d.PreJoinSourceBytes = l.PreJoinSourceBytes
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

// frameBudget counts the bytes past Limits.PreJoinFree that sockets which have not joined hold in
// frames, in all and per source, and which sockets are still reading theirs. Its mu is a leaf.
type frameBudget struct {
	max, perSource int64

	mu       sync.Mutex
	n        int64
	bySource map[netip.Prefix]*sourceFrames
	// freed is closed, and replaced, whenever bytes are given back.
	freed chan struct{}
}

// sourceFrames is what one source holds: bytes, and the sockets still reading a frame that holds
// them, oldest first (the ones that may be evicted).
type sourceFrames struct {
	n       int64
	reading []*socket
}

func newFrameBudget(max, perSource int64) *frameBudget {
	return &frameBudget{max: max, perSource: perSource, bySource: map[netip.Prefix]*sourceFrames{}, freed: make(chan struct{})}
}

// take reserves n bytes for s's frame. Past its source's share it refuses (ok false, victim nil):
// an address only ever competes with itself. Past the node's budget it names a victim instead:
// the oldest socket still reading a frame of the source holding the most, when that is another
// source holding more than s's; the caller closes it and, once freed is closed, tries again.
// With no such victim it refuses.
func (b *frameBudget) take(s *socket, n int64) (ok bool, victim *socket, freed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	own := b.bySource[s.src]
	var held int64
	if own != nil {
		held = own.n
	}
	if held+n > b.perSource {
		return false, nil, nil
	}
	if b.n+n <= b.max {
		if own == nil {
			own = &sourceFrames{}
			b.bySource[s.src] = own
		}
		own.n += n
		own.reading = append(own.reading, s)
		b.n += n
		return true, nil, nil
	}
	var most *sourceFrames
	for src, f := range b.bySource {
		if src != s.src && len(f.reading) > 0 && (most == nil || f.n > most.n) {
			most = f
		}
	}
	if most == nil || most.n <= held {
		return false, nil, nil
	}
	victim = most.reading[0]
	most.reading = most.reading[1:] // its bytes stay counted until its reader gives them back
	return false, victim, b.freed
}

// done marks s's frame complete: it is handled next and is no longer a victim.
func (b *frameBudget) done(s *socket) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f := b.bySource[s.src]; f != nil {
		f.reading = slices.DeleteFunc(f.reading, func(x *socket) bool { return x == s })
	}
}

// give returns the n bytes s's frame took.
func (b *frameBudget) give(s *socket, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.bySource[s.src]
	if f == nil {
		return
	}
	f.reading = slices.DeleteFunc(f.reading, func(x *socket) bool { return x == s })
	f.n -= n
	b.n -= n
	if f.n <= 0 {
		delete(b.bySource, s.src)
	}
	close(b.freed)
	b.freed = make(chan struct{})
}

// evictWait bounds how long a frame waits for a socket it evicted to give its bytes back; the
// eviction closes the victim's connection at once, so this only matters on a stalled machine.
const evictWait = time.Second

// errFrameBudget: a pre-join frame would pass the shared budget.
var errFrameBudget = errors.New("too many bytes in frames of sockets not joined")

// readPreJoin reads one frame of a socket that has not joined. Its first PreJoinFree bytes go in
// a buffer of its own; a longer frame moves to a buffer of PreJoinFrame bytes, reserved whole from
// the budget first, so what all such sockets hold is bounded however slowly they send. Those
// buffers are reused (frames that pass the free part allocate nothing once the pool is warm): the
// caller hands big back with putBig once it has handled the frame, and keeps no part of it.
func (h *Handler) readPreJoin(ctx context.Context, s *socket) (data []byte, big *[]byte, err error) {
	_, r, err := s.ws.Reader(ctx)
	if err != nil {
		return nil, nil, err
	}
	// The library reads up to one byte past its read limit (PreJoinFrame) before it refuses the
	// frame with 1009; the big buffer has room for that byte and one more, so a read never gets
	// an empty buffer.
	most := int(h.lim.PreJoinFrame) + 2
	free := int(min(h.lim.PreJoinFree, h.lim.PreJoinFrame))
	buf := make([]byte, 0, min(512, free))
	for {
		if len(buf) == cap(buf) {
			switch {
			case big != nil: // cannot happen: the library refuses the frame first
				h.putBig(s, big)
				return nil, nil, errors.New("frame longer than the read limit")
			case cap(buf) < free:
				grown := make([]byte, len(buf), min(2*cap(buf), free))
				copy(grown, buf)
				buf = grown
			default:
				if err := h.takeBig(ctx, s, int64(most-free)); err != nil {
					return nil, nil, err
				}
				big = h.bigFrames.Get().(*[]byte)
				buf = append((*big)[:0], buf...)
			}
		}
		k, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err == io.EOF {
			if big != nil {
				h.budget.done(s)
			}
			return buf, big, nil
		}
		if err != nil {
			h.putBig(s, big)
			return nil, nil, err
		}
	}
}

// takeBig reserves n bytes of the budget for s's frame, closing sockets of the source holding the
// most while the node's budget is full (their frames are unfinished: a legitimate one holds its
// frame for a round trip, an attacker's until it is closed), so that an attack from many
// addresses delays a large joinRoom instead of refusing it.
func (h *Handler) takeBig(ctx context.Context, s *socket, n int64) error {
	var timeout <-chan time.Time
	for {
		ok, victim, freed := h.budget.take(s, n)
		if ok {
			return nil
		}
		if victim == nil {
			return errFrameBudget
		}
		h.peerLog(victim, slog.LevelInfo, "closing socket that has not joined", "remote", victim.ip, "reason", "its unfinished frame makes room for another address's")
		_ = victim.ws.CloseNow() // its reader gives the bytes back as its read fails
		if timeout == nil {
			t := time.NewTimer(evictWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-timeout:
			return errFrameBudget
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// putBig returns a buffer readPreJoin took (none when big is nil) and its bytes to the budget.
func (h *Handler) putBig(s *socket, big *[]byte) {
	if big == nil {
		return
	}
	h.budget.give(s, int64(cap(*big)-int(min(h.lim.PreJoinFree, h.lim.PreJoinFrame))))
	h.bigFrames.Put(big)
}
