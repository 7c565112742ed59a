package sendq

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley/parley/internal/poll"
)

// gate is a writer the test drives: each Write hands its bytes to the test on entered, then
// blocks until the test sends on release. It plays a peer that has stopped reading.
type gate struct {
	entered chan []byte
	release chan struct{}
	stop    chan struct{} // closed: writes fail, as on a closed connection
}

func newGate() *gate {
	return &gate{entered: make(chan []byte), release: make(chan struct{}), stop: make(chan struct{})}
}

func (g *gate) Write(p []byte) (int, error) {
	select {
	case g.entered <- append([]byte(nil), p...):
	case <-g.stop:
		return 0, net.ErrClosed
	}
	select {
	case <-g.release:
		return len(p), nil
	case <-g.stop:
		return 0, net.ErrClosed
	}
}

// clock is a hand-stepped clock.
type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Duration   { return time.Duration(c.t.Load()) }
func (c *clock) step(d time.Duration) { c.t.Add(int64(d)) }

// framed returns an RFC 4571 frame of n payload bytes carrying seq, filled so that a frame cut
// or mixed with another one does not decode.
func framed(seq uint32, n int) []byte {
	b := make([]byte, 2+n)
	binary.BigEndian.PutUint16(b, uint16(n))
	for i := 2; i < len(b); i++ {
		b[i] = byte(seq) ^ byte(i)
	}
	binary.BigEndian.PutUint32(b[2:], seq)
	return b
}

// decode splits a byte stream into RFC 4571 frames and checks each one whole, returning their
// sequence numbers; rest is an incomplete frame at the end.
func decode(t *testing.T, b []byte) (seqs []uint32, rest []byte) {
	t.Helper()
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			break
		}
		f := b[:2+n]
		seq := binary.BigEndian.Uint32(f[2:])
		for i := 6; i < len(f); i++ {
			if f[i] != byte(seq)^byte(i) {
				t.Fatalf("frame %d corrupt at byte %d", seq, i)
			}
		}
		seqs = append(seqs, seq)
		b = b[2+n:]
	}
	return seqs, b
}

func wholeFrames(t *testing.T, b []byte) []uint32 {
	t.Helper()
	seqs, rest := decode(t, b)
	if len(rest) != 0 {
		t.Fatalf("a write ended inside a frame: %d bytes left over", len(rest))
	}
	return seqs
}

func newTestQueue(t *testing.T, w io.Writer, cfg Config) (*Queue, *clock) {
	t.Helper()
	c := &clock{}
	cfg.now = c.now
	q := New(w, cfg)
	return q, c
}

func TestStalledWriterNeverBlocksWriteAndBoundHolds(t *testing.T) {
	goroutineLeakCheck(t)
	g := newGate()
	const bound = 20 << 10
	var totals Counters
	q, _ := newTestQueue(t, g, Config{MaxBytes: bound, Totals: &totals})
	if _, err := q.Write(framed(0, 1000)); err != nil {
		t.Fatal(err)
	}
	first := <-g.entered // the writer now hangs in Write, as on a peer that stopped reading
	if got := wholeFrames(t, first); len(got) != 1 || got[0] != 0 {
		t.Fatalf("first write carried %v", got)
	}
	// Far more than the bound, from the test goroutine: a blocking Write would hang here.
	const frames = 500
	for seq := uint32(1); seq < frames; seq++ {
		if n, err := q.Write(framed(seq, 1000)); err != nil || n != 1002 {
			t.Fatalf("write %d: %d, %v", seq, n, err)
		}
		if st := q.Stats(); st.Queued.Bytes > bound {
			t.Fatalf("after frame %d: %d bytes queued, bound %d", seq, st.Queued.Bytes, bound)
		}
	}
	st := q.Stats()
	if st.Full.Frames == 0 || st.Stale.Frames != 0 {
		t.Fatalf("drops: %+v", st)
	}
	if kept := st.Queued.Frames; kept+st.Full.Frames != frames-1 || st.Full.Bytes != st.Full.Frames*1002 {
		t.Fatalf("queued %d + dropped %d != written %d (%+v)", kept, st.Full.Frames, frames-1, st)
	}
	// The peer reads again: what comes is the newest frames, whole and in order.
	g.release <- struct{}{}
	var got []uint32
	for len(got) < int(st.Queued.Frames) {
		got = append(got, wholeFrames(t, <-g.entered)...)
		g.release <- struct{}{}
	}
	for i, seq := range got {
		if want := frames - uint32(len(got)) + uint32(i); seq != want {
			t.Fatalf("received %v, want the last %d frames in order", got, len(got))
		}
	}
	q.Close()
	st = q.Stats()
	if st.Sent.Frames != 1+uint64(len(got)) || totals.Stats() != (Stats{Sent: st.Sent, Full: st.Full, MediaDropped: st.MediaDropped}) {
		t.Fatalf("queue %+v, totals %+v", st, totals.Stats())
	}
}

func TestStaleFramesDroppedWholeAndCounted(t *testing.T) {
	goroutineLeakCheck(t)
	g := newGate()
	q, clk := newTestQueue(t, g, Config{MaxAge: 300 * time.Millisecond})
	_, _ = q.Write(framed(1, 500))
	<-g.entered
	// Frames 2–4 wait behind the stalled write for a second; 3 and 4 are media.
	_, _ = q.Write(framed(2, 100))
	_, _ = q.WriteKind(framed(3, 1200), Video)
	clk.step(100 * time.Millisecond)
	_, _ = q.WriteKind(framed(4, 1200), Video)
	clk.step(900 * time.Millisecond)
	_, _ = q.Write(framed(5, 300))
	clk.step(300 * time.Millisecond) // exactly MaxAge: still sent
	g.release <- struct{}{}
	if got := wholeFrames(t, <-g.entered); len(got) != 1 || got[0] != 5 {
		t.Fatalf("after the stall the peer got %v, want only the fresh frame 5", got)
	}
	g.release <- struct{}{}
	q.Close() // the writer has counted what it wrote
	want := Stats{Sent: Count{2, 502 + 302}, Stale: Count{3, 102 + 1202 + 1202}, MediaDropped: Count{2, 2404}}
	if st := q.Stats(); st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
}

// TestAudioAndControlGoFirst: on a link that cannot take everything, audio and control frames
// are written before the video queued ahead of them, and video filling its bound never pushes
// them out.
func TestAudioAndControlGoFirst(t *testing.T) {
	goroutineLeakCheck(t)
	g := newGate()
	q, _ := newTestQueue(t, g, Config{MaxBytes: 8 << 10})
	_, _ = q.WriteKind(framed(0, 100), Video)
	<-g.entered                              // the link is busy
	for seq := uint32(1); seq <= 40; seq++ { // 40 KB of video into an 8 KiB bound
		_, _ = q.WriteKind(framed(seq, 1000), Video)
		if seq == 20 {
			_, _ = q.WriteKind(framed(100, 80), Audio)
			_, _ = q.Write(framed(200, 40))
		}
	}
	g.release <- struct{}{}
	got := wholeFrames(t, <-g.entered)
	if len(got) < 3 || got[0] != 100 || got[1] != 200 || got[2] <= 20 {
		t.Fatalf("first batch after the stall: %v, want audio 100, control 200, then the newest video", got)
	}
	for i := 3; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("video out of order: %v", got)
		}
	}
	close(g.stop) // the connection closes
	q.Close()
	if st := q.Stats(); st.Full.Frames == 0 || st.MediaDropped != st.Full {
		t.Fatalf("stats %+v: only video dropped, for the bound", st)
	}
}

// TestOneFramePerWriteOverTLS: over TLS every frame is a write (a record) of its own.
func TestOneFramePerWriteOverTLS(t *testing.T) {
	goroutineLeakCheck(t)
	a, b := net.Pipe()
	defer b.Close()
	c := NewConn(tls.Client(a, &tls.Config{}), Config{})
	if !c.q.cfg.FramePerWrite {
		t.Fatal("a TLS connection batches frames")
	}
	c.Close()
	if plain := NewConn(a, Config{}); plain.q.cfg.FramePerWrite {
		t.Fatal("a plain connection writes frame by frame")
	} else {
		plain.Close()
	}

	g := newGate()
	q, _ := newTestQueue(t, g, Config{FramePerWrite: true})
	_, _ = q.Write(framed(0, 10))
	<-g.entered
	for seq := uint32(1); seq <= 3; seq++ {
		_, _ = q.Write(framed(seq, 10))
	}
	for seq := uint32(1); seq <= 3; seq++ {
		g.release <- struct{}{}
		if got := wholeFrames(t, <-g.entered); len(got) != 1 || got[0] != seq {
			t.Fatalf("write %d carried %v", seq, got)
		}
	}
	g.release <- struct{}{}
	q.Close()
}

func TestTooLargeFrameRefusedAndCounted(t *testing.T) {
	q, _ := newTestQueue(t, io.Discard, Config{MaxBytes: 1000})
	defer q.Close()
	if _, err := q.WriteKind(make([]byte, 1001), Video); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
	if st := q.Stats(); st.Full != (Count{1, 1001}) || st.MediaDropped != (Count{1, 1001}) {
		t.Fatalf("stats %+v", st)
	}
}

// failing fails every write, as a connection the peer reset.
type failing struct{}

var errReset = errors.New("connection reset")

func (failing) Write([]byte) (int, error) { return 0, errReset }

func TestWriteErrorReachesTheWriters(t *testing.T) {
	goroutineLeakCheck(t)
	q, _ := newTestQueue(t, failing{}, Config{})
	_, _ = q.Write(framed(1, 10))
	<-q.done // the writer ended on the error
	if _, err := q.Write(framed(2, 10)); !errors.Is(err, errReset) {
		t.Fatalf("write after the connection failed: %v", err)
	}
	q.Close()
	q.Close()
	if _, err := q.Write(framed(3, 10)); !errors.Is(err, errReset) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestCloseWithStalledPeerEndsWriter(t *testing.T) {
	goroutineLeakCheck(t)
	local, peer := net.Pipe() // a Write on it waits until the peer reads, which it never does
	defer peer.Close()
	c := NewConn(local, Config{})
	for seq := range uint32(100) {
		if _, err := c.Write(framed(seq, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(framed(100, 10)); err == nil {
		t.Fatal("write after close succeeded")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// TestSlowPeerDecodesOnlyWholeFrames runs the queue over real TCP to a peer that first stops
// reading and then reads in small pieces, with several goroutines writing at once: every frame
// the peer decodes is whole and each writer's frames arrive in order, and every frame is either
// sent or counted as dropped.
func TestSlowPeerDecodesOnlyWholeFrames(t *testing.T) {
	goroutineLeakCheck(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = client.(*net.TCPConn).SetReadBuffer(4 << 10)
	_ = server.(*net.TCPConn).SetWriteBuffer(4 << 10)
	// No age limit here: the clock is real, so only the byte bound may drop, and the last frame
	// written (the newest) always arrives.
	c := NewConn(server, Config{MaxBytes: 32 << 10, MaxAge: time.Hour})
	defer c.Close()

	const writers, perWriter = 4, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				seq := uint32(w)<<24 | uint32(i)
				if _, err := c.WriteKind(framed(seq, 200+(i*37)%1100), Video); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait() // the peer has not read a byte: every Write returned regardless
	const end = writers << 24
	if _, err := c.WriteKind(framed(end, 10), Video); err != nil {
		t.Fatal(err)
	}

	last := make([]int, writers)
	for i := range last {
		last[i] = -1
	}
	var buf, stream []byte = make([]byte, 700), nil
	var received int
	for done := false; !done; {
		n, err := client.Read(buf)
		if err != nil {
			t.Fatalf("read after %d frames: %v", received, err)
		}
		stream = append(stream, buf[:n]...)
		var seqs []uint32
		seqs, stream = decode(t, stream)
		for _, seq := range seqs {
			received++
			if seq == end {
				done = true
				continue
			}
			w, i := int(seq>>24), int(seq&0xffffff)
			if i <= last[w] {
				t.Fatalf("writer %d: frame %d after %d", w, i, last[w])
			}
			last[w] = i
		}
	}
	// The writer counts a batch as sent once its Write returned, which may be after the peer read it.
	var st Stats
	poll.Until(t, 10*time.Second, "the writer to count what the peer received", func() bool {
		st = c.Stats()
		return int(st.Sent.Frames) >= received
	})
	if st.Full.Frames == 0 {
		t.Fatalf("the bound never dropped anything (%+v): the test did not stall the queue", st)
	}
	if int(st.Sent.Frames) != received || st.Sent.Frames+st.Full.Frames != writers*perWriter+1 || st.MediaDropped != st.Full {
		t.Fatalf("received %d, stats %+v", received, st)
	}
}

func TestWriteAllocatesNothing(t *testing.T) {
	q, _ := newTestQueue(t, io.Discard, Config{})
	defer q.Close()
	p := framed(1, 1200)
	for range 1000 { // let the ring and the writer's batch reach their size
		_, _ = q.Write(p)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = q.WriteKind(p, Video) }); n != 0 {
		t.Fatalf("%v allocations per Write", n)
	}
}

// BenchmarkWrite measures Write of a 1200-byte RTP-sized frame with the writer draining to
// io.Discard (the socket's cost is not the queue's).
func BenchmarkWrite(b *testing.B) {
	q := New(io.Discard, Config{})
	defer q.Close()
	p := framed(1, 1200)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		_, _ = q.WriteKind(p, Video)
	}
}

// BenchmarkWriteParallel is Write from every CPU at once into one queue.
func BenchmarkWriteParallel(b *testing.B) {
	q := New(io.Discard, Config{})
	defer q.Close()
	p := framed(1, 1200)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = q.WriteKind(p, Video)
		}
	})
}

// goroutineLeakCheck fails the test if goroutines started during it are still running at the end
// (after every other cleanup, since cleanups run last-in first-out).
func goroutineLeakCheck(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(),
					strings.TrimSpace(string(buf[:n])))
				return
			}
			time.Sleep(5 * time.Millisecond) // poll interval
		}
	})
}

// socket plays a TCP connection's kernel side for the in-flight bound: it counts what the writer
// wrote and acknowledges what the test says.
type socket struct {
	mu             sync.Mutex
	written, acked uint64
	wrote          chan []byte
}

func (s *socket) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.written += uint64(len(p))
	s.mu.Unlock()
	s.wrote <- append([]byte(nil), p...)
	return len(p), nil
}

func (s *socket) progress() (progress, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return progress{written: s.written, acked: s.acked, minRTT: 10 * time.Millisecond}, true
}

func (s *socket) ackAll() {
	s.mu.Lock()
	s.acked = s.written
	s.mu.Unlock()
}

// TestInFlightBoundHoldsTheWriter: while the peer has not acknowledged what the kernel holds, and
// that is more than the link delivered lately, the writer holds the next frames back in the queue,
// where they go stale instead of waiting in the kernel; once acknowledged, the fresh ones go.
func TestInFlightBoundHoldsTheWriter(t *testing.T) {
	goroutineLeakCheck(t)
	sock := &socket{wrote: make(chan []byte, 16)}
	held, resume := make(chan struct{}), make(chan struct{})
	c := &clock{}
	q := New(sock, Config{MaxAge: 300 * time.Millisecond, MinInFlight: 1000, InFlightDelay: 100 * time.Millisecond,
		now: c.now, socket: sock, sleep: func(time.Duration) { held <- struct{}{}; <-resume }})
	_, _ = q.WriteKind(framed(1, 1500), Video)
	if got := wholeFrames(t, <-sock.wrote); len(got) != 1 || got[0] != 1 {
		t.Fatalf("first write carried %v", got)
	}
	// 1502 bytes unacknowledged and nothing acknowledged yet: frame 2 waits in the queue.
	_, _ = q.WriteKind(framed(2, 1500), Video)
	<-held
	if st := q.Stats(); st.Queued.Frames != 1 || st.Held != 1 {
		t.Fatalf("while held: %+v", st)
	}
	c.step(400 * time.Millisecond) // frame 2 is now older than MaxAge
	sock.ackAll()
	_, _ = q.WriteKind(framed(3, 500), Video)
	close(resume)
	if got := wholeFrames(t, <-sock.wrote); len(got) != 1 || got[0] != 3 {
		t.Fatalf("after the acknowledgement the peer got %v, want only the fresh frame 3", got)
	}
	q.Close()
	if st := q.Stats(); st.Stale.Frames != 1 || st.Sent.Frames != 2 || st.Held != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestInFlightBoundFollowsTheLink: on a link that acknowledges steadily, the writer keeps about
// what the link delivers in the allowed delay in flight, not what the burst offers.
func TestInFlightBoundFollowsTheLink(t *testing.T) {
	c := &clock{}
	sock := &socket{}
	q := &Queue{cfg: Config{MinInFlight: 1000, InFlightDelay: 100 * time.Millisecond, now: c.now, socket: sock,
		sleep: func(time.Duration) {}}.withDefaults()}
	// 20 kB/s acknowledged for a second, 1 kB in flight each time: room.
	for range 200 {
		c.step(5 * time.Millisecond)
		sock.written += 100
		sock.acked = sock.written - 1000
		if !q.roomInFlight(false) {
			t.Fatalf("held with 1 kB in flight on a 20 kB/s link")
		}
	}
	// A burst: 4 kB in flight where the link delivers 2.2 kB in 110 ms: held.
	sock.written += 3000
	if q.roomInFlight(false) {
		t.Fatal("not held with twice what the link delivers in the bound in flight")
	}
}

// TestDelayIsVideos: Delay reports how long the written video frames waited (audio goes first
// and does not count), then starts over.
func TestDelayIsVideos(t *testing.T) {
	goroutineLeakCheck(t)
	g := newGate()
	var totals Counters
	q, clk := newTestQueue(t, g, Config{MaxAge: time.Second, Totals: &totals})
	_, _ = q.Write(framed(0, 10))
	<-g.entered
	_, _ = q.WriteKind(framed(1, 1000), Video)
	clk.step(50 * time.Millisecond)
	_, _ = q.WriteKind(framed(2, 1000), Video)
	_, _ = q.WriteKind(framed(3, 100), Audio)
	clk.step(150 * time.Millisecond)
	g.release <- struct{}{}
	for n := 0; n < 3; {
		n += len(wholeFrames(t, <-g.entered))
		g.release <- struct{}{}
	}
	close(g.stop)
	q.Close()
	if d := q.Delay(); d != (Delay{Frames: 2, Min: 150 * time.Millisecond, Max: 200 * time.Millisecond}) {
		t.Fatalf("delay %+v", d)
	}
	if d := q.Delay(); d != (Delay{}) {
		t.Fatalf("second delay %+v, want none", d)
	}
	// The histogram of the video's waits, in the queue's counters and its owner's totals: one
	// frame under 200 ms (150), one under 300 (200), the audio not at all.
	want := [len(WaitBuckets) + 1]uint64{4: 1, 5: 1}
	for _, st := range []Stats{q.Stats(), totals.Stats()} {
		if st.VideoWaits != want || st.VideoWaitSum != 350*time.Millisecond {
			t.Fatalf("video waits %v (sum %v), want %v (350ms)", st.VideoWaits, st.VideoWaitSum, want)
		}
	}
}

// TestPaddingOnlyIntoAnIdleLink: a probe's padding goes one frame per write while the link holds
// no queue, never before audio or video, and waits while the socket holds bytes written longer
// ago than the round trip plus paddingDelay; padding that found no room within paddingMaxAge is
// dropped and counted as padding, not as media or stale, so the probe reads the link's answer
// without padding ever waiting in front of the subscriber's audio.
func TestPaddingOnlyIntoAnIdleLink(t *testing.T) {
	goroutineLeakCheck(t)
	sock := &socket{wrote: make(chan []byte, 16)}
	held, resume := make(chan struct{}), make(chan struct{})
	c := &clock{}
	q := New(sock, Config{MaxAge: time.Second, MinInFlight: 1 << 20, InFlightDelay: 100 * time.Millisecond,
		now: c.now, socket: sock, sleep: func(time.Duration) { held <- struct{}{}; <-resume }})
	next := func(what string) []uint32 {
		t.Helper()
		got := wholeFrames(t, <-sock.wrote)
		if len(got) != 1 {
			t.Fatalf("%s: a write carried %v, want one frame", what, got)
		}
		return got
	}
	// An idle link: padding flows, one frame per write.
	_, _ = q.WriteKind(framed(1, 200), Padding)
	_, _ = q.WriteKind(framed(2, 200), Padding)
	if a, b := next("idle")[0], next("idle")[0]; a != 1 || b != 2 {
		t.Fatalf("idle link got %d, %d", a, b)
	}
	// Unacknowledged for 50 ms, but only two small packets: a receiver's delayed ACK, not a queue.
	c.step(50 * time.Millisecond)
	_, _ = q.WriteKind(framed(7, 200), Padding)
	if got := next("delayed ack"); got[0] != 7 {
		t.Fatalf("the peer got %v, want padding 7", got)
	}
	sock.ackAll()
	// Video went 50 ms ago and is not acknowledged (10 ms round trip), more than paddingInFlight:
	// a queue on the link.
	_, _ = q.WriteKind(framed(3, 2000), Video)
	next("video")
	c.step(50 * time.Millisecond)
	_, _ = q.WriteKind(framed(4, 200), Padding)
	<-held
	_, _ = q.WriteKind(framed(5, 100), Audio)
	c.step(60 * time.Millisecond)
	resume <- struct{}{}
	if got := next("audio behind held padding"); got[0] != 5 {
		t.Fatalf("the peer got %v, want the audio before the padding", got)
	}
	<-held // the padding still finds no room
	c.step(50 * time.Millisecond)
	resume <- struct{}{}
	poll.Until(t, 10*time.Second, "the padding dropped", func() bool { return q.Stats().Padding.Frames == 1 })
	if st := q.Stats(); st.Stale.Frames != 0 || st.MediaDropped.Frames != 0 || st.Padding != (Count{1, 202}) {
		t.Fatalf("stats %+v: padding drops must be counted apart", st)
	}
	// The link has caught up: padding goes again.
	sock.ackAll()
	_, _ = q.WriteKind(framed(6, 200), Padding)
	if got := next("caught up"); got[0] != 6 {
		t.Fatalf("the peer got %v, want padding 6", got)
	}
	q.Close()
}
