package sendq

import (
	"sync/atomic"
	"time"
)

// Count is a number of frames and their bytes.
type Count struct{ Frames, Bytes uint64 }

// Stats is a snapshot of a queue's (or a Counters') totals.
type Stats struct {
	// Sent were handed to the connection.
	Sent Count
	// Stale were dropped because they waited longer than MaxAge; Full because newer frames needed
	// the room (MaxBytes) or were larger than the queue.
	Stale, Full Count
	// MediaDropped are the frames of kind Audio or Video among Stale and Full.
	MediaDropped Count
	// Padding were probes' padding frames dropped (in neither Stale nor Full): the link had no
	// room for them.
	Padding Count
	// Queued is what waits now (a queue's own Stats only).
	Queued Count
	// Held counts the writer's waits because the socket had as much in flight as its bound.
	Held uint64
	// VideoWaits counts the video frames written by how long they waited in the queue: index i
	// those under WaitBuckets[i] (and at least the bucket before), the last those longer; and
	// VideoWaitSum is their total wait. Dropped frames are not in it.
	VideoWaits   [len(WaitBuckets) + 1]uint64
	VideoWaitSum time.Duration
}

// WaitBuckets are the bounds of Stats.VideoWaits: a few tens of ms is a link that keeps up, the
// age limit (DefaultMaxAge) is where frames are dropped instead.
var WaitBuckets = [...]time.Duration{10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}

// Add adds o's counters to s (not Queued).
func (s *Stats) Add(o Stats) {
	s.Held += o.Held
	for i, n := range o.VideoWaits {
		s.VideoWaits[i] += n
	}
	s.VideoWaitSum += o.VideoWaitSum
	s.Sent.add(o.Sent)
	s.Stale.add(o.Stale)
	s.Full.add(o.Full)
	s.MediaDropped.add(o.MediaDropped)
	s.Padding.add(o.Padding)
}

func (c *Count) add(o Count) { c.Frames += o.Frames; c.Bytes += o.Bytes }

// Counters are totals that many queues may add to at once.
type Counters struct {
	c       [nCounts]atomicCount
	held    atomic.Uint64
	waits   [len(WaitBuckets) + 1]atomic.Uint64
	waitSum atomic.Int64
}

// waited counts one video frame written after waiting w.
func (c *Counters) waited(w time.Duration) {
	i := 0
	for i < len(WaitBuckets) && w >= WaitBuckets[i] {
		i++
	}
	c.waits[i].Add(1)
	c.waitSum.Add(int64(w))
}

// The counters of a Counters, by index.
const (
	cSent = iota
	cStale
	cFull
	cMedia   // media among the dropped
	cPadding // padding dropped (not in cStale, cFull)
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
	s := Stats{Sent: c.c[cSent].load(), Stale: c.c[cStale].load(), Full: c.c[cFull].load(), MediaDropped: c.c[cMedia].load(), Padding: c.c[cPadding].load(), Held: c.held.Load(),
		VideoWaitSum: time.Duration(c.waitSum.Load())}
	for i := range c.waits {
		s.VideoWaits[i] = c.waits[i].Load()
	}
	return s
}
