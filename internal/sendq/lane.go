package sendq

import "time"

// The lanes' storage: a ring of bytes and one of frame descriptors, grown on demand up to the
// lane's bound, so a queue holds whole frames without an allocation per frame.

// frame is one queued frame: n bytes at off in its lane's ring, queued at time at.
type frame struct {
	off, n int
	at     time.Duration
	kind   Kind
}

// lane is a FIFO of whole frames: ring[head:] then ring[:…] holds used bytes of frames, back to
// back, oldest first; frames is a ring of their descriptors, fcount of them from fhead.
type lane struct {
	ring          []byte
	head, used    int
	frames        []frame
	fhead, fcount int
	maxBytes      int
}

// maxFrames bounds a frame table: one descriptor per 64 bytes of the lane's bound (RTP packets
// are rarely smaller), at least minFrames.
func maxFrames(maxBytes int) int { return max(minFrames, maxBytes/64) }

// push appends a frame; the caller made room.
func (l *lane) push(p []byte, at time.Duration, kind Kind) {
	n := len(p)
	off := l.head + l.used
	if off >= len(l.ring) {
		off -= len(l.ring)
	}
	if c := copy(l.ring[off:], p); c < n {
		copy(l.ring, p[c:])
	}
	i := l.fhead + l.fcount
	if i >= len(l.frames) {
		i -= len(l.frames)
	}
	l.frames[i] = frame{off: off, n: n, at: at, kind: kind}
	l.fcount++
	l.used += n
}

// growRing makes the ring at least need bytes (at most maxBytes), oldest frame first.
func (l *lane) growRing(need int) {
	size := max(minRing, len(l.ring))
	for size < need {
		size *= 2
	}
	size = min(size, l.maxBytes)
	ring := make([]byte, size)
	if l.used > 0 {
		c := copy(ring, l.ring[l.head:min(len(l.ring), l.head+l.used)])
		copy(ring[c:], l.ring[:l.used-c])
	}
	off := 0
	for k := range l.fcount {
		f := &l.frames[(l.fhead+k)%len(l.frames)]
		f.off = off
		off += f.n
	}
	l.ring, l.head = ring, 0
}

// growFrames doubles the frame table, oldest first.
func (l *lane) growFrames() {
	frames := make([]frame, min(max(minFrames, 2*len(l.frames)), maxFrames(l.maxBytes)))
	for k := range l.fcount {
		frames[k] = l.frames[(l.fhead+k)%len(l.frames)]
	}
	l.frames, l.fhead = frames, 0
}

// pop removes the oldest frame and returns it; fcount > 0.
func (l *lane) pop() frame {
	f := l.frames[l.fhead]
	l.fhead++
	if l.fhead == len(l.frames) {
		l.fhead = 0
	}
	l.fcount--
	l.head += f.n
	if l.head >= len(l.ring) {
		l.head -= len(l.ring)
	}
	l.used -= f.n
	if l.used == 0 {
		l.head = 0 // keeps the next frames contiguous
	}
	return f
}

// appendFrame appends f's bytes, which may wrap around the ring, to b.
func (l *lane) appendFrame(b []byte, f frame) []byte {
	end := f.off + f.n
	if end <= len(l.ring) {
		return append(b, l.ring[f.off:end]...)
	}
	b = append(b, l.ring[f.off:]...)
	return append(b, l.ring[:end-len(l.ring)]...)
}
