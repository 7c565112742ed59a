package sendq

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// The defaults, chosen for real-time media on a weak link.
const (
	// DefaultMaxAge is how long a frame may wait before the writer drops it. Browsers play video
	// from a jitter buffer of a few tens to a few hundred ms and give up on a packet (NACK, then a
	// keyframe request) after about as long: a frame later than ~300 ms is no longer played, while
	// a shorter limit would start dropping on the ordinary sub-second bursts of a keyframe on a
	// modest link (a 60 KB keyframe takes 240 ms at 2 Mbit/s).
	DefaultMaxAge = 300 * time.Millisecond
	// DefaultMaxBytes bounds the bytes queued per connection: 300 ms at 7 Mbit/s, more than one
	// connection (one stream, OpenVidu's model) carries, so on a real link the age limit is the one
	// that binds; the byte bound caps the memory a peer can make us hold (grown only as used).
	DefaultMaxBytes = 256 << 10
	// DefaultUnsentBytes is the kernel's budget of unsent bytes per socket (TCP_NOTSENT_LOWAT):
	// 4 KiB is ~0.2 s at 150 kbit/s, and three full-size RTP packets, enough to keep a fast link busy
	// between two wake-ups of the writer.
	DefaultUnsentBytes = 4 << 10
	// batchBytes is what the writer hands the connection per call (at least one frame): several
	// frames per system call, but little enough that what it commits is still bounded.
	batchBytes = 4 << 10
	// minRing is the ring's first size; it doubles up to MaxBytes as the backlog needs.
	minRing = 8 << 10
	// minFrames is the frame table's first size; it doubles up to maxFrames(MaxBytes).
	minFrames = 32
)

var (
	// ErrClosed is returned by Write after Close.
	ErrClosed = errors.New("sendq: closed")
	// ErrTooLarge is returned by Write for a frame larger than the queue's MaxBytes.
	ErrTooLarge = errors.New("sendq: frame larger than the queue")
)

// Kind tells the counters what a frame carries, so that an owner can subtract dropped media from
// what it counted as sent. The queue treats every kind alike.
type Kind uint8

const (
	// Control is anything but media: STUN, DTLS, RTCP, TURN control messages.
	Control Kind = iota
	// Media is an RTP packet.
	Media
)

// Config sets a queue's bounds. Zero values take the defaults above.
type Config struct {
	// MaxAge is how long a frame may wait in the queue before it is dropped instead of sent.
	MaxAge time.Duration
	// MaxBytes bounds the queued bytes; also the largest frame accepted.
	MaxBytes int
	// UnsentBytes is the TCP_NOTSENT_LOWAT set on the connection (NewConn only); negative leaves
	// the socket alone.
	UnsentBytes int
	// Totals, when set, counts this queue's frames too, so an owner of many queues can keep
	// totals that outlive them.
	Totals *Counters

	// now is the clock (tests step it by hand).
	now func() time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.UnsentBytes == 0 {
		c.UnsentBytes = DefaultUnsentBytes
	}
	if c.now == nil {
		c.now = monotonic
	}
	return c
}

var epoch = time.Now()

func monotonic() time.Duration { return time.Since(epoch) }

// Count is a number of frames and their bytes.
type Count struct{ Frames, Bytes uint64 }

// Stats is a snapshot of a queue's (or a Counters') totals.
type Stats struct {
	// Sent were handed to the connection.
	Sent Count
	// Stale were dropped because they waited longer than MaxAge; Full because newer frames needed
	// the room (MaxBytes) or were larger than the queue.
	Stale, Full Count
	// MediaDropped are the frames of kind Media among Stale and Full.
	MediaDropped Count
	// Queued is what waits now (a queue's own Stats only).
	Queued Count
}

// Add adds o's counters to s (not Queued).
func (s *Stats) Add(o Stats) {
	s.Sent.add(o.Sent)
	s.Stale.add(o.Stale)
	s.Full.add(o.Full)
	s.MediaDropped.add(o.MediaDropped)
}

func (c *Count) add(o Count) { c.Frames += o.Frames; c.Bytes += o.Bytes }

// Counters are totals that many queues may add to at once.
type Counters struct{ c [nCounts]atomicCount }

// The counters of a Counters, by index.
const (
	cSent = iota
	cStale
	cFull
	cMedia // media among the dropped
	nCounts
)

type atomicCount struct{ frames, bytes atomic.Uint64 }

func (a *atomicCount) add(frames, bytes int) {
	a.frames.Add(uint64(frames))
	a.bytes.Add(uint64(bytes))
}

func (a *atomicCount) load() Count { return Count{a.frames.Load(), a.bytes.Load()} }

// Stats returns a snapshot of the counters.
func (c *Counters) Stats() Stats {
	return Stats{Sent: c.c[cSent].load(), Stale: c.c[cStale].load(), Full: c.c[cFull].load(), MediaDropped: c.c[cMedia].load()}
}

// frame is one queued frame: n bytes at off in the ring, queued at time at.
type frame struct {
	off, n int
	at     time.Duration
	kind   Kind
}

// Queue is a bounded, time-limited FIFO of whole frames in front of one writer. Write may be
// called from any number of goroutines; frames leave in the order their Writes returned.
type Queue struct {
	w   io.Writer
	cfg Config

	mu   sync.Mutex
	cond sync.Cond // the writer waits on it for frames
	// ring[head:] then ring[:…] holds used bytes of frames, back to back, oldest first; frames is
	// a ring of their descriptors, fcount of them from fhead.
	ring          []byte
	head, used    int
	frames        []frame
	fhead, fcount int
	waiting       bool  // the writer waits on cond
	closed        bool  // Close was called
	err           error // the connection's write error; the writer has ended

	scratch []byte // the writer's batch; only the writer touches it
	own     Counters
	done    chan struct{} // closed when the writer returns
}

// New starts a queue writing to w. Close must be called to stop its writer; if w.Write can block
// (a connection to a stalled peer), close the connection first, as Conn.Close does.
func New(w io.Writer, cfg Config) *Queue {
	q := &Queue{w: w, cfg: cfg.withDefaults(), done: make(chan struct{})}
	q.cond.L = &q.mu
	go q.run()
	return q
}

// Write queues a copy of p as one frame of kind Control. See WriteKind.
func (q *Queue) Write(p []byte) (int, error) { return q.WriteKind(p, Control) }

// WriteKind queues a copy of p, one whole frame, and returns at once: len(p), or the writer's
// error once the connection has failed, ErrClosed after Close, or ErrTooLarge. To make room it
// drops the oldest frames.
func (q *Queue) WriteKind(p []byte, kind Kind) (int, error) {
	n := len(p)
	if n > q.cfg.MaxBytes {
		q.dropped(cFull, kind, n)
		return 0, ErrTooLarge
	}
	if n == 0 {
		return 0, nil
	}
	at := q.cfg.now()
	q.mu.Lock()
	if q.closed || q.err != nil {
		err := q.err
		q.mu.Unlock()
		if err == nil {
			err = ErrClosed
		}
		return 0, err
	}
	// What has grown stale goes now too, not only when the writer reaches it: while the writer
	// hangs on a stalled peer the queue still holds only what is worth sending.
	q.dropStale(at)
	for q.used+n > len(q.ring) {
		if len(q.ring) < q.cfg.MaxBytes {
			q.growRing(q.used + n)
		} else {
			q.dropOldest(cFull)
		}
	}
	if q.fcount == len(q.frames) {
		if len(q.frames) < maxFrames(q.cfg.MaxBytes) {
			q.growFrames()
		} else {
			q.dropOldest(cFull)
		}
	}
	off := q.head + q.used
	if off >= len(q.ring) {
		off -= len(q.ring)
	}
	if c := copy(q.ring[off:], p); c < n {
		copy(q.ring, p[c:])
	}
	i := q.fhead + q.fcount
	if i >= len(q.frames) {
		i -= len(q.frames)
	}
	q.frames[i] = frame{off: off, n: n, at: at, kind: kind}
	q.fcount++
	q.used += n
	if q.waiting {
		q.cond.Signal()
	}
	q.mu.Unlock()
	return n, nil
}

// maxFrames bounds the frame table: one descriptor per 64 bytes of MaxBytes (RTP packets are
// rarely smaller), at least minFrames.
func maxFrames(maxBytes int) int { return max(minFrames, maxBytes/64) }

// growRing makes the ring at least need bytes (at most MaxBytes), oldest frame first.
func (q *Queue) growRing(need int) {
	size := max(minRing, len(q.ring))
	for size < need {
		size *= 2
	}
	size = min(size, q.cfg.MaxBytes)
	ring := make([]byte, size)
	if q.used > 0 {
		c := copy(ring, q.ring[q.head:min(len(q.ring), q.head+q.used)])
		copy(ring[c:], q.ring[:q.used-c])
	}
	off := 0
	for k := range q.fcount {
		f := &q.frames[(q.fhead+k)%len(q.frames)]
		f.off = off
		off += f.n
	}
	q.ring, q.head = ring, 0
}

// growFrames doubles the frame table, oldest first.
func (q *Queue) growFrames() {
	frames := make([]frame, min(max(minFrames, 2*len(q.frames)), maxFrames(q.cfg.MaxBytes)))
	for k := range q.fcount {
		frames[k] = q.frames[(q.fhead+k)%len(q.frames)]
	}
	q.frames, q.fhead = frames, 0
}

// pop removes the oldest frame and returns it. q.mu is held and fcount > 0.
func (q *Queue) pop() frame {
	f := q.frames[q.fhead]
	q.fhead++
	if q.fhead == len(q.frames) {
		q.fhead = 0
	}
	q.fcount--
	q.head += f.n
	if q.head >= len(q.ring) {
		q.head -= len(q.ring)
	}
	q.used -= f.n
	if q.used == 0 {
		q.head = 0 // keeps the next frames contiguous
	}
	return f
}

// dropStale drops the frames older than MaxAge at now. q.mu is held.
func (q *Queue) dropStale(now time.Duration) {
	for q.fcount > 0 && now-q.frames[q.fhead].at > q.cfg.MaxAge {
		q.dropOldest(cStale)
	}
}

// dropOldest drops the oldest frame for reason (cStale or cFull). q.mu is held and fcount > 0.
func (q *Queue) dropOldest(reason int) {
	f := q.pop()
	q.dropped(reason, f.kind, f.n)
}

func (q *Queue) dropped(reason int, kind Kind, n int) {
	q.count(reason, 1, n)
	if kind == Media {
		q.count(cMedia, 1, n)
	}
}

// count adds to counter i of the queue and of the shared totals.
func (q *Queue) count(i, frames, bytes int) {
	q.own.c[i].add(frames, bytes)
	if t := q.cfg.Totals; t != nil {
		t.c[i].add(frames, bytes)
	}
}

// run is the writer: it drops what has grown stale, then writes the next batch of frames, until
// Close or a write error.
func (q *Queue) run() {
	defer close(q.done)
	q.scratch = make([]byte, 0, batchBytes)
	for {
		q.mu.Lock()
		for q.fcount == 0 && !q.closed {
			q.waiting = true
			q.cond.Wait()
			q.waiting = false
		}
		if q.closed {
			q.mu.Unlock()
			return
		}
		q.dropStale(q.cfg.now())
		b, frames := q.scratch[:0], 0
		for q.fcount > 0 {
			n := q.frames[q.fhead].n
			if len(b) > 0 && len(b)+n > batchBytes {
				break
			}
			if n > cap(b) { // a frame larger than any so far: the only allocation after start
				b = make([]byte, 0, n)
				q.scratch = b
			}
			f := q.pop()
			end := f.off + f.n
			if end <= len(q.ring) {
				b = append(b, q.ring[f.off:end]...)
			} else {
				b = append(b, q.ring[f.off:]...)
				b = append(b, q.ring[:end-len(q.ring)]...)
			}
			frames++
		}
		q.mu.Unlock()
		if frames == 0 {
			continue
		}
		if _, err := q.w.Write(b); err != nil {
			q.mu.Lock()
			q.err = err
			for q.fcount > 0 {
				q.pop() // never to be sent; not counted as dropped: the connection is gone
			}
			q.mu.Unlock()
			return
		}
		q.count(cSent, frames, len(b))
	}
}

// Stats returns the queue's own counters and what it holds now.
func (q *Queue) Stats() Stats {
	st := q.own.Stats()
	q.mu.Lock()
	st.Queued = Count{uint64(q.fcount), uint64(q.used)}
	q.mu.Unlock()
	return st
}

// Close stops the queue: frames still queued are discarded, Write fails with ErrClosed, and Close
// returns once the writer has ended (which needs the writer's connection closed first if its
// Write blocks).
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
	<-q.done
}
