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
	// DefaultUnsentBytes is the kernel's budget of unsent bytes per socket (TCP_NOTSENT_LOWAT).
	// With the writer's batch on top, at most ~4 KiB wait in the kernel: 0.2 s at 150 kbit/s,
	// while on a fast link 2 KiB still spares the writer a wake-up per packet.
	DefaultUnsentBytes = 2 << 10
	// DefaultInFlightDelay bounds how long the bytes the kernel holds for the peer (written and
	// not yet acknowledged) may have been there, beyond the connection's minimum round trip.
	// TCP_NOTSENT_LOWAT bounds only the unsent ones; the congestion window can hold seconds: on a
	// 150 kbit/s token bucket BBR kept 56 KB (3 s) unacknowledged, a third of it retransmissions
	// (weak-network bed, TURN/TCP). Past the bound the writer waits, and what waits, waits here,
	// where its age is checked.
	DefaultInFlightDelay = 100 * time.Millisecond
	// DefaultMinInFlight is what the kernel may always hold, however old: two full-size packets.
	DefaultMinInFlight = 3 << 10
	// inFlightPoll is how often a writer held by the in-flight bound looks again: the kernel says
	// nothing when acknowledgements arrive.
	inFlightPoll = 5 * time.Millisecond
	// ackLog is how many samples of the acknowledged byte count the writer keeps, one per
	// inFlightPoll at most: ackLog × inFlightPoll (320 ms) is the longest window it measures the
	// delivery rate over.
	ackLog = 64
	// writeLog is how many of the writer's recent writes it remembers (where each began in the
	// socket's byte stream, and when), to tell how old the oldest unacknowledged byte is.
	writeLog = 64
	// batchBytes is what the writer hands the connection per call (at least one frame): several
	// small frames per system call, but little enough that what it commits stays bounded.
	batchBytes = 2 << 10
	// minRing is the ring's first size; it doubles up to MaxBytes as the backlog needs.
	minRing = 8 << 10
	// minFrames is the frame table's first size; it doubles up to maxFrames(MaxBytes).
	minFrames = 32
	// paddingMaxAge is how long a Padding frame may wait for room: padding that could not go
	// within it is a link without room for more, which is what a probe asks (the weak-network
	// bed's 150 kbit/s link shows it within two of the prober's 100 ms ticks).
	paddingMaxAge = 100 * time.Millisecond
	// paddingDelay: padding goes only while the socket's oldest unacknowledged byte is younger
	// than the minimum round trip plus this, i.e. while the link holds no queue of ours; so the
	// padding in front of the next audio packet is one padding frame at most (15 ms at
	// 150 kbit/s), where padding that filled the in-flight bound (3 KiB and more) held the audio of
	// a 150 kbit/s subscriber 160 ms and longer at every probe.
	paddingDelay = 30 * time.Millisecond
	// paddingInFlight is what the socket may hold unacknowledged when padding goes, however old:
	// a receiver acknowledges a lone segment only after its delayed-ACK timer (40 ms and more on
	// Linux), which the age rule alone would read as a queue, pacing padding to one packet per
	// timer on any link. Five padding packets, 80 ms at 150 kbit/s.
	paddingInFlight = 1500
)

var (
	// ErrClosed is returned by Write after Close.
	ErrClosed = errors.New("sendq: closed")
	// ErrTooLarge is returned by Write for a frame larger than the queue's MaxBytes.
	ErrTooLarge = errors.New("sendq: frame larger than the queue")
)

// Kind says what a frame carries. Control and Audio frames go first: they are small and few, and
// what a participant on a weak link needs most (the connection's own signalling, then sound);
// Video takes the rest of the link, and Padding only what is left. Within a kind, frames keep
// their order. Audio and Video are media: their drops are counted in MediaDropped too, so an
// owner can take them out of what it counted as sent.
type Kind uint8

const (
	// Control is anything but media: STUN, DTLS, RTCP, TURN control messages.
	Control Kind = iota
	// Audio is a media packet that goes before video (callers pass audio-sized RTP).
	Audio
	// Video is any other media packet.
	Video
	// Padding is a bandwidth probe's filler (RTP padding-only packets): it goes only when nothing
	// else waits, one frame per write, and only while the socket shows no queue (paddingDelay),
	// so it never waits in front of audio; what finds no room within paddingMaxAge is dropped and
	// counted as Padding (not media): how a probe learns that the link has no room for more.
	Padding
)

// lanes: Control and Audio share the first, Video has the second, Padding the third.
func (k Kind) lane() int {
	switch k {
	case Video:
		return 1
	case Padding:
		return 2
	}
	return 0
}

// Config sets a queue's bounds. Zero values take the defaults above.
type Config struct {
	// MaxAge is how long a frame may wait in the queue before it is dropped instead of sent.
	MaxAge time.Duration
	// MaxBytes bounds the queued video bytes, and a quarter of it (at least 8 KiB) the others;
	// also the largest frame accepted.
	MaxBytes int
	// UnsentBytes is the TCP_NOTSENT_LOWAT set on the connection (NewConn only); negative leaves
	// the socket alone.
	UnsentBytes int
	// FramePerWrite writes each frame on its own instead of several per call. NewConn sets it
	// over TLS, where a write is a record: coturn's TURN client, for one, reads one message per
	// record and loses the others (browsers parse the stream and do not care).
	FramePerWrite bool
	// InFlightDelay bounds how long written bytes may wait for the peer's acknowledgement beyond
	// the minimum round trip before the writer holds back (see DefaultInFlightDelay); negative
	// leaves the socket to TCP. Only for a TCP socket that NewConn finds (Linux).
	InFlightDelay time.Duration
	// MinInFlight is what the socket may hold unacknowledged regardless of age.
	MinInFlight int
	// Totals, when set, counts this queue's frames too, so an owner of many queues can keep
	// totals that outlive them.
	Totals *Counters

	// now is the clock (tests step it by hand).
	now func() time.Duration
	// socket reads the TCP socket's progress; nil without one.
	socket progressReader
	// sleep waits while the writer is held (tests replace it).
	sleep func(time.Duration)
}

// progressReader reads how far a TCP connection has got.
type progressReader interface {
	progress() (progress, bool)
}

// progress is a TCP socket's position: bytes written to it and acknowledged by the peer so far.
type progress struct {
	written, acked uint64
	minRTT         time.Duration
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
	if c.InFlightDelay == 0 {
		c.InFlightDelay = DefaultInFlightDelay
	}
	if c.MinInFlight <= 0 {
		c.MinInFlight = DefaultMinInFlight
	}
	if c.now == nil {
		c.now = monotonic
	}
	if c.sleep == nil {
		c.sleep = time.Sleep
	}
	return c
}

var epoch = time.Now()

func monotonic() time.Duration { return time.Since(epoch) }

// Queue is a bounded, time-limited queue of whole frames in front of one writer. Write may be
// called from any number of goroutines; frames of one lane (see Kind) leave in the order their
// Writes returned.
type Queue struct {
	w   io.Writer
	cfg Config

	mu      sync.Mutex
	cond    sync.Cond // the writer waits on it for frames
	lanes   [3]lane
	waiting bool  // the writer waits on cond
	closed  bool  // Close was called
	err     error // the connection's write error; the writer has ended

	scratch []byte // the writer's batch; only the writer touches it
	own     Counters
	// writes is the writer's log of its recent writes, oldest first: wn of them from whead.
	writes    [writeLog]write
	whead, wn int
	// acks samples the socket's acknowledged bytes, oldest first: an of them from ahead.
	acks      [ackLog]write
	ahead, an int
	// logged: roomInFlight added an entry to writes for a write that may not happen.
	logged bool
	// accepted counts the bytes Write took (see Accepted).
	accepted atomic.Uint64
	// videoWait is how long the video frames of the writer's latest batch waited at most, in
	// nanoseconds (see VideoWait).
	videoWait atomic.Int64
	// delay is how long the video frames written since the last Delay waited; under mu.
	delay Delay
	done  chan struct{} // closed when the writer returns
}

// New starts a queue writing to w. Close must be called to stop its writer; if w.Write can block
// (a connection to a stalled peer), close the connection first, as Conn.Close does.
func New(w io.Writer, cfg Config) *Queue {
	q := &Queue{w: w, cfg: cfg.withDefaults(), done: make(chan struct{})}
	q.cond.L = &q.mu
	// The first lane carries little (control messages, audio): a quarter of the bound is
	// seconds of it.
	q.lanes[0].maxBytes = max(q.cfg.MaxBytes/4, min(q.cfg.MaxBytes, minRing))
	q.lanes[1].maxBytes = q.cfg.MaxBytes
	q.lanes[2].maxBytes = q.lanes[0].maxBytes
	go q.run()
	return q
}

// Write queues a copy of p as one frame of kind Control. See WriteKind.
func (q *Queue) Write(p []byte) (int, error) { return q.WriteKind(p, Control) }

// WriteKind queues a copy of p, one whole frame, and returns at once: len(p), or the writer's
// error once the connection has failed, ErrClosed after Close, or ErrTooLarge. To make room it
// drops the oldest frames of the same lane.
func (q *Queue) WriteKind(p []byte, kind Kind) (int, error) {
	n := len(p)
	l := &q.lanes[kind.lane()]
	if n > l.maxBytes {
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
	q.dropStale(l, at)
	for l.used+n > len(l.ring) {
		if len(l.ring) < l.maxBytes {
			l.growRing(l.used + n)
		} else {
			q.dropOldest(l, cFull)
		}
	}
	if l.fcount == len(l.frames) {
		if len(l.frames) < maxFrames(l.maxBytes) {
			l.growFrames()
		} else {
			q.dropOldest(l, cFull)
		}
	}
	l.push(p, at, kind)
	q.accepted.Add(uint64(n))
	if q.waiting {
		q.cond.Signal()
	}
	q.mu.Unlock()
	return n, nil
}

// dropStale drops the frames of l older than MaxAge (padding: paddingMaxAge) at now. q.mu is
// held.
func (q *Queue) dropStale(l *lane, now time.Duration) {
	age := q.cfg.MaxAge
	if l == &q.lanes[2] {
		age = min(age, paddingMaxAge)
	}
	for l.fcount > 0 && now-l.frames[l.fhead].at > age {
		q.dropOldest(l, cStale)
	}
}

// dropOldest drops the oldest frame of l for reason (cStale or cFull). q.mu is held; fcount > 0.
func (q *Queue) dropOldest(l *lane, reason int) {
	f := l.pop()
	q.dropped(reason, f.kind, f.n)
}

func (q *Queue) dropped(reason int, kind Kind, n int) {
	if kind == Padding {
		q.count(cPadding, 1, n) // a probe's answer, not a loss: counted apart
		return
	}
	q.count(reason, 1, n)
	if kind != Control {
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

// queued is the number of frames waiting. q.mu is held.
func (q *Queue) queued() int { return q.lanes[0].fcount + q.lanes[1].fcount + q.lanes[2].fcount }

// run is the writer: it drops what has grown stale, then writes the next batch of frames (the
// first lane's before the second's), until Close or a write error.
func (q *Queue) run() {
	defer close(q.done)
	q.scratch = make([]byte, 0, batchBytes)
	for {
		q.mu.Lock()
		for q.queued() == 0 && !q.closed {
			q.waiting = true
			q.cond.Wait()
			q.waiting = false
		}
		if q.closed {
			q.mu.Unlock()
			return
		}
		// Padding alone waits: it goes only into a link that shows no queue (paddingDelay).
		padding := q.lanes[0].fcount == 0 && q.lanes[1].fcount == 0
		if padding {
			q.dropStale(&q.lanes[2], q.cfg.now())
			if q.lanes[2].fcount == 0 {
				q.mu.Unlock()
				continue
			}
		}
		if q.cfg.socket != nil && q.cfg.InFlightDelay > 0 {
			q.mu.Unlock()
			if !q.roomInFlight(padding) {
				continue // waited: what is queued may have gone stale, or the queue closed
			}
			q.mu.Lock()
		}
		now := q.cfg.now()
		b, frames := q.scratch[:0], 0
		wait := time.Duration(-1)
		for i := range q.lanes[:2] {
			l := &q.lanes[i]
			q.dropStale(l, now)
			for l.fcount > 0 {
				n := l.frames[l.fhead].n
				if len(b) > 0 && (len(b)+n > batchBytes || q.cfg.FramePerWrite) {
					break
				}
				if n > cap(b) { // a frame larger than any so far: the only allocation after start
					b = make([]byte, 0, n)
					q.scratch = b
				}
				f := l.pop()
				if f.kind == Video {
					q.delay.add(now - f.at)
					wait = max(wait, now-f.at)
					q.own.waited(now - f.at)
					if t := q.cfg.Totals; t != nil {
						t.waited(now - f.at)
					}
				}
				b = l.appendFrame(b, f)
				frames++
			}
		}
		if l := &q.lanes[2]; padding && frames == 0 {
			// One padding frame per write: the most that waits in front of the next audio.
			q.dropStale(l, now)
			if l.fcount > 0 {
				f := l.pop()
				if f.n > cap(b) {
					b = make([]byte, 0, f.n)
					q.scratch = b
				}
				b = l.appendFrame(b, f)
				frames++
			}
		}
		if frames == 0 && q.logged {
			q.wn-- // the write roomInFlight logged does not happen: all went stale
		}
		q.logged = false
		q.mu.Unlock()
		if wait >= 0 {
			q.videoWait.Store(int64(wait))
		}
		if frames == 0 {
			continue
		}
		if _, err := q.w.Write(b); err != nil {
			q.mu.Lock()
			q.err = err
			for i := range q.lanes {
				for q.lanes[i].fcount > 0 {
					q.lanes[i].pop() // never to be sent; not counted as dropped: the connection is gone
				}
			}
			q.mu.Unlock()
			return
		}
		q.count(cSent, frames, len(b))
	}
}

// write is one write of the writer: where it began in the socket's byte stream, and when.
type write struct {
	start uint64
	at    time.Duration
}

// roomInFlight reports whether the socket may take another batch: what it holds unacknowledged
// is under MinInFlight, or was written at most InFlightDelay beyond the minimum round trip ago;
// for a batch of padding, that the socket holds at most paddingInFlight unacknowledged, or
// nothing written more than paddingDelay beyond the minimum round trip ago (no queue on the
// link). Otherwise it waits a
// moment and reports false. Only the writer calls it.
func (q *Queue) roomInFlight(padding bool) bool {
	p, ok := q.cfg.socket.progress()
	if !ok {
		return true
	}
	now := q.cfg.now()
	// Forget the writes whose bytes are all acknowledged: the oldest remaining one holds the
	// oldest unacknowledged byte.
	for q.wn > 1 && q.writes[(q.whead+1)%writeLog].start <= p.acked {
		q.whead = (q.whead + 1) % writeLog
		q.wn--
	}
	out := p.written - min(p.acked, p.written)
	if q.wn == 1 && out == 0 {
		q.wn = 0
	}
	window := p.minRTT + q.cfg.InFlightDelay
	if padding {
		if out > paddingInFlight && q.wn > 0 && now-q.writes[q.whead].at > p.minRTT+paddingDelay {
			q.cfg.sleep(inFlightPoll) // not counted in Held: padding waits by design
			return false
		}
	} else if out >= uint64(q.cfg.MinInFlight) && (q.wn > 0 && now-q.writes[q.whead].at > window || out > q.ackedWithin(now, window, p.acked)) {
		q.own.held.Add(1)
		if t := q.cfg.Totals; t != nil {
			t.held.Add(1)
		}
		q.cfg.sleep(inFlightPoll)
		return false
	}
	// This batch begins at p.written. With the log full the last entry stands for this write too:
	// its time is earlier, so the age the bound sees errs long, never short.
	if q.wn < writeLog {
		q.writes[(q.whead+q.wn)%writeLog] = write{start: p.written, at: now}
		q.wn++
		q.logged = true
	}
	return true
}

// ackedWithin samples the socket's acknowledged bytes and returns how many were acknowledged in
// the last window (scaled up from the longest window it has, and at least MinInFlight): what
// the link delivers in the time the bytes in flight may take, so that a burst (a keyframe) does
// not go into the kernel at once only because the bytes before it were young.
func (q *Queue) ackedWithin(now, window time.Duration, acked uint64) uint64 {
	if q.an == 0 || now-q.acks[(q.ahead+q.an-1)%ackLog].at >= inFlightPoll {
		if q.an == ackLog {
			q.ahead = (q.ahead + 1) % ackLog
			q.an--
		}
		q.acks[(q.ahead+q.an)%ackLog] = write{start: acked, at: now}
		q.an++
	}
	// The newest sample at least window old, else the oldest.
	from := q.acks[q.ahead]
	for i := q.an - 1; i >= 0; i-- {
		if s := q.acks[(q.ahead+i)%ackLog]; now-s.at >= window {
			from = s
			break
		}
	}
	d := acked - min(from.start, acked)
	if span := now - from.at; span > 0 && span < window {
		d = uint64(float64(d) * float64(window) / float64(span))
	}
	return max(d, uint64(q.cfg.MinInFlight))
}

// Delay is how long the video frames written in some interval waited in the queue.
type Delay struct {
	Frames   int
	Min, Max time.Duration
}

func (d *Delay) add(w time.Duration) {
	if d.Frames == 0 || w < d.Min {
		d.Min = w
	}
	d.Max = max(d.Max, w)
	d.Frames++
}

// Delay returns how long the video frames written since the previous call waited, and starts
// over (audio and control go first: their wait says little). A sender reads it as a delay-based congestion signal: a queue whose shortest wait over
// an interval stays high never drained in it (a standing queue: more media than the link
// carries), while a keyframe's burst only raises the longest.
func (q *Queue) Delay() Delay {
	q.mu.Lock()
	defer q.mu.Unlock()
	d := q.delay
	q.delay = Delay{}
	return d
}

// VideoWait returns how long the video frames of the writer's latest batch waited at most (0
// until some were written, or since ResetVideoWait): one atomic load, for a caller on a hot path
// that wants to know at once when video starts to queue.
func (q *Queue) VideoWait() time.Duration { return time.Duration(q.videoWait.Load()) }

// Accepted returns how many bytes Write has queued so far (one atomic load): against the bytes
// sent in the same time, whether the connection keeps up with what it is given.
func (q *Queue) Accepted() uint64 { return q.accepted.Load() }

// ResetVideoWait forgets the wait of the latest video written.
func (q *Queue) ResetVideoWait() { q.videoWait.Store(0) }

// Stats returns the queue's own counters and what it holds now.
func (q *Queue) Stats() Stats {
	st := q.own.Stats()
	q.mu.Lock()
	st.Queued = Count{uint64(q.queued()), uint64(q.lanes[0].used + q.lanes[1].used + q.lanes[2].used)}
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
