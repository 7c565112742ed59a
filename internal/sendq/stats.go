package sendq

import "sync/atomic"

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
	// Queued is what waits now (a queue's own Stats only).
	Queued Count
	// Held counts the writer's waits because the socket had as much in flight as its bound.
	Held uint64
}

// Add adds o's counters to s (not Queued).
func (s *Stats) Add(o Stats) {
	s.Held += o.Held
	s.Sent.add(o.Sent)
	s.Stale.add(o.Stale)
	s.Full.add(o.Full)
	s.MediaDropped.add(o.MediaDropped)
}

func (c *Count) add(o Count) { c.Frames += o.Frames; c.Bytes += o.Bytes }

// Counters are totals that many queues may add to at once.
type Counters struct {
	c    [nCounts]atomicCount
	held atomic.Uint64
}

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
	return Stats{Sent: c.c[cSent].load(), Stale: c.c[cStale].load(), Full: c.c[cFull].load(), MediaDropped: c.c[cMedia].load(), Held: c.held.Load()}
}
