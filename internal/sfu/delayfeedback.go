package sfu

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// A delay signal for a subscriber's link (transport-wide congestion control, draft-holmer-rmcat-
// transport-wide-cc-extensions-01). Loss says a link is full only once its bottleneck's queue has
// overflowed: a layer probe or a layer too big for the link has then already cost the picture
// packets (the weak-network bed: a probe for the top layer on a 300 kbit/s link lost a keyframe and
// froze the picture for 5 s). A queue shows earlier as delay. So the packets of a simulcast video
// down-track carry a transport-wide sequence number (header extension, when the subscriber
// negotiated transport-cc, which browsers do when offered), we note when each was sent, and the
// subscriber's feedback tells when each arrived: arrival − send is the one-way delay plus an
// unknown clock offset; over its least value lately it is the queue in front of the subscriber.
// The feedback also tells what the link delivered (bytes received over the arrival span), which
// is what the link carries when a queue stands.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  ID   | L=1   |transport-wide sequence number | zero padding  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The sender side is a few atomic operations per packet, with no allocation (the extension's
// bytes live in the writer's scratch header); the feedback is read on the down-track's RTCP
// goroutine, which publishes the signal in atomics for the layer choice (simulcast.go step).

const (
	// tccRing is how many sent packets are remembered for their feedback: seconds of video at any
	// rate a subscriber gets (feedback comes every 50–250 ms).
	tccRing = 4096
	// tccBaseEpoch: the least one-way delay is kept over two epochs of this length, so a route
	// that got longer is learnt within twice this, and one late packet is not taken for a queue.
	tccBaseEpoch = 5 * time.Second
	// tccRateSpan is the least arrival span the delivered rate is measured over.
	tccRateSpan = 200 * time.Millisecond
	// tccFresh: feedback older than this says nothing of the link now.
	tccFresh = 500 * time.Millisecond
	// tccSlowFor is how much of the subscriber's arrival time a run of spans delivered slower
	// than sent must cover before it says the link is full. A browser short of CPU (the weak-
	// network bed's unshaped subscribers at load 5-10) also takes its packets in slower than
	// they were sent, for some hundred milliseconds, then catches up in a burst; a link never
	// delivers faster than its rate, so it stays slower for as long as it is sent too much. At
	// 200 ms a span (tccRateSpan), two slower spans in a row (the first landing's rule) could
	// take such subscribers down from the top layer to the lowest.
	tccSlowFor = time.Second
	// tccRateWindow: what the spans closed within this long delivered together is what the link
	// is known to carry (a starved receiver's catch-up burst included; a token bucket's burst
	// spread over the window rather than read as one 200 ms span's rate).
	tccRateWindow = time.Second
	// tccSpans is how many recent spans are kept for tccRateWindow: at least 200 ms each.
	tccSpans = 8
	// tccSlowForLossy is the shorter run that says the link is full when the bottleneck also
	// dropped at least tccSpanLoss of what was sent in the latest span (sent 1.4 times its rate or
	// more). A receiver short of CPU takes its packets in late but loses none (its socket holds
	// seconds of video), or only what the network loses at random; a token bucket that overflows
	// drops what it cannot queue. Waiting the whole tccSlowFor after a squeeze kept the bed's
	// subscriber on a layer the link could not carry for 0.9-1.3 s: its "down" came 2.0-2.5 s
	// after the squeeze. The latest span's loss, not the run's: a starved receiver's slower spans
	// before the squeeze, lossless, made the run's too little for the first spans after it.
	tccSlowForLossy = tccRateSpan
	tccSpanLoss     = 0.3
)

// hdrScratch is one writer goroutine's scratch for an outgoing RTP header, with room for the
// transport-wide sequence number so that adding it allocates nothing.
type hdrScratch struct {
	rtp.Header
	ext [1]rtp.Extension
	tcc [2]byte
}

// tccSent is what we remember of one sent packet.
type tccSent struct {
	seq  atomic.Uint32 // transport-wide sequence number +1 (0: empty)
	at   atomic.Int64  // monotonic nanoseconds
	size atomic.Uint32 // bytes on the wire, RTP header and padding included
}

// transportCC is one subscription's transport-wide feedback state.
type transportCC struct {
	seq  atomic.Uint32 // last transport-wide sequence number given out
	sent [tccRing]tccSent

	// Published by onFeedback for the layer choice.
	queue      atomic.Int64  // ns: the queue delay of the latest packet in the latest feedback
	prevQueue  atomic.Int64  // ns: the same for the feedback before it
	rate       atomic.Uint64 // bps the link delivered over the latest full span
	sentRate   atomic.Uint64 // bps at which the same packets were sent
	slower     atomic.Uint32 // spans in a row, up to the latest, delivered under tccSlower of their sending rate
	slowFor    atomic.Int64  // ns of arrival time those spans cover
	runRate    atomic.Uint64 // bps: what those spans delivered together
	spanSent   atomic.Uint32 // packets sent in the latest span's range of sequence numbers
	spanLost   atomic.Uint32 // … of which the feedback reported no arrival
	recentRate atomic.Uint64 // bps: what the spans closed within tccRateWindow delivered together
	// rxBytes is every byte the feedback reported delivered, added up; rxAt the latest arrival
	// (ns, the subscriber's clock): what arrived between two readings over the arrival time
	// between them, the gaps between spans included (see probeDelivered in simulcast.go).
	rxBytes atomic.Uint64
	rxAt    atomic.Int64
	// lostBytes is every byte of ours the feedback reported lost, added up: beside rxBytes, what
	// the link was offered (a probe on a path that loses at random, probeDelivered).
	lostBytes atomic.Uint64
	fbAt      atomic.Int64 // unix nanos of the latest feedback with a packet we know
	rateAt    atomic.Int64 // unix nanos when rate was published
	feedbacks atomic.Uint64

	// Owned by onFeedback (the RTCP reader).
	base    [2]int64 // least one-way delay (ns, with the clocks' offset) of this epoch and the last
	baseSet [2]bool
	epochAt time.Time
	// spanBytes counts the span's packets but its earliest: the span's time runs from that one's
	// arrival to the latest's, which covers the others' passage through the bottleneck only (a
	// link at its limit read 15 % over its rate in 200 ms spans of 1000-byte packets at 300
	// kbit/s, enough to take a layer it cannot carry). firstBytes is the earliest's size.
	spanBytes  uint64
	firstBytes uint64
	spanPkts   uint32 // the span's packets, its earliest included
	spanFrom   int64  // arrival (ns, the subscriber's clock) of the span's first packet, 0: none
	spanTo     int64
	sendFrom   int64 // monotonic send time (ns) of the span's first and last packets
	sendTo     int64
	seqFrom    uint32 // their transport-wide sequence numbers (full)
	seqTo      uint32
	recent     [tccSpans]spanRate // the latest closed spans, for recentRate
	nrecent    int
	slowSpan   int64  // arrival time (ns) covered by the current run of slower spans
	slowBytes  uint64 // the bytes they delivered
}

// spanRate is one closed span's delivered bytes over its arrival time, and when its feedback came.
type spanRate struct {
	at    time.Time
	bytes uint64
	span  int64
}

// stamp gives the next transport-wide sequence number to a packet of size bytes about to be sent
// now, and notes when.
func (t *transportCC) stamp(size int) uint16 {
	n := t.seq.Add(1)
	s := &t.sent[n%tccRing]
	s.seq.Store(0) // the slot is being rewritten: a feedback read meanwhile skips it
	s.at.Store(monotonicNow())
	s.size.Store(uint32(size))
	s.seq.Store(uint32(uint16(n)) + 1)
	return uint16(n)
}

// setTCC puts the transport-wide sequence number of a packet of size bytes into h (id: the
// negotiated extension id), in place of any extension the publisher's packet carried: the
// subscriber negotiated none of those under their ids.
func (h *hdrScratch) setTCC(t *transportCC, id uint8, size int) {
	binary.BigEndian.PutUint16(h.tcc[:], t.stamp(size+8)) // the extension adds 8 bytes
	h.Extension, h.Extensions = false, h.ext[:0]
	_ = h.SetExtension(id, h.tcc[:]) // 2 bytes under a one-byte id: cannot fail
}

// onFeedback reads one transport-wide feedback packet: each reported arrival against its send
// time, and the bytes delivered.
func (t *transportCC) onFeedback(fb *rtcp.TransportLayerCC, now time.Time) {
	if t.epochAt.IsZero() || now.Sub(t.epochAt) >= tccBaseEpoch {
		t.base[1], t.baseSet[1] = t.base[0], t.baseSet[0]
		t.baseSet[0], t.epochAt = false, now
	}
	arrival := int64(fb.ReferenceTime) * 64 * int64(time.Millisecond)
	seq := fb.BaseSequenceNumber
	deltas := fb.RecvDeltas
	left := int(fb.PacketStatusCount)
	var last, lastQ int64 // the latest arrival and its queue delay
	var known bool
	var rx, lost uint64 // bytes delivered, and reported lost
	take := func(sym uint16) {
		if left <= 0 {
			return
		}
		left--
		s := seq
		seq++
		received := sym == rtcp.TypeTCCPacketReceivedSmallDelta || sym == rtcp.TypeTCCPacketReceivedLargeDelta
		if received {
			if len(deltas) == 0 {
				return
			}
			arrival += deltas[0].Delta * int64(time.Microsecond)
			deltas = deltas[1:]
		}
		n := t.seq.Load()
		// The slot of s: the latest sent number with these 16 low bits.
		full := n&^0xFFFF | uint32(s)
		if full > n {
			full -= 1 << 16
		}
		slot := &t.sent[full%tccRing]
		if slot.seq.Load() != uint32(s)+1 || n-full >= tccRing {
			return // not ours, or too old to be remembered
		}
		at, size := slot.at.Load(), slot.size.Load()
		if slot.seq.Load() != uint32(s)+1 {
			return // rewritten while read
		}
		if !received {
			lost += uint64(size)
			return
		}
		rx += uint64(size)
		owd := arrival - at
		if !t.baseSet[0] || owd < t.base[0] {
			t.base[0], t.baseSet[0] = owd, true
		}
		base := t.base[0]
		if t.baseSet[1] && t.base[1] < base {
			base = t.base[1]
		}
		if !known || arrival >= last {
			last, lastQ = arrival, owd-base
		}
		known = true
		if t.spanFrom == 0 || arrival < t.spanFrom {
			if t.spanFrom != 0 && t.spanFrom-arrival > int64(time.Second) {
				t.spanBytes, t.firstBytes = 0, 0 // the subscriber's clock jumped: start over
			}
			t.spanFrom = arrival
			t.spanBytes += t.firstBytes // no longer the earliest
			t.firstBytes = uint64(size)
			size = 0
		}
		t.spanTo = max(t.spanTo, arrival)
		if t.sendFrom == 0 || at < t.sendFrom {
			t.sendFrom, t.seqFrom = at, full
		}
		if at > t.sendTo {
			t.sendTo, t.seqTo = at, full
		}
		t.spanBytes += uint64(size)
		t.spanPkts++
	}
	for _, c := range fb.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for range int(c.RunLength) {
				if left <= 0 {
					break
				}
				take(c.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			for _, sym := range c.SymbolList {
				take(sym)
			}
		}
	}
	t.lostBytes.Add(lost)
	if !known {
		return
	}
	t.prevQueue.Store(t.queue.Load())
	t.queue.Store(lastQ)
	// rxAt before rxBytes, which signal reads first: a reading between the two takes the
	// bytes of before over the time of now, never the other way round. (A clock that jumped back
	// starts it over, as the spans do.)
	if at := t.rxAt.Load(); last > at || at-last > int64(time.Second) {
		t.rxAt.Store(last)
	}
	t.rxBytes.Add(rx)
	t.fbAt.Store(now.UnixNano())
	t.feedbacks.Add(1)
	if span := t.spanTo - t.spanFrom; span >= int64(tccRateSpan) {
		t.rate.Store(uint64(float64(t.spanBytes) * 8 / (float64(span) / float64(time.Second))))
		sentB, sentN := t.sentBetween(t.seqFrom, t.seqTo)
		t.sentRate.Store(uint64(float64(sentB) * 8 / (float64(max(t.sendTo-t.sendFrom, int64(time.Millisecond))) / float64(time.Second))))
		t.rateAt.Store(now.UnixNano())
		rate := float64(t.rate.Load())
		if rate < tccSlower*float64(t.sentRate.Load()) {
			t.slower.Add(1)
			t.slowSpan += span
			t.slowBytes += t.spanBytes
		} else {
			t.slower.Store(0)
			t.slowSpan, t.slowBytes = 0, 0
		}
		t.slowFor.Store(t.slowSpan)
		t.spanSent.Store(sentN)
		t.spanLost.Store(sentN - min(t.spanPkts, sentN))
		if t.slowSpan > 0 {
			t.runRate.Store(uint64(float64(t.slowBytes) * 8 / (float64(t.slowSpan) / float64(time.Second))))
		} else {
			t.runRate.Store(0)
		}
		t.recent[t.nrecent%tccSpans] = spanRate{at: now, bytes: t.spanBytes, span: span}
		t.nrecent++
		var bytes uint64
		var within int64
		for _, r := range t.recent {
			if !r.at.IsZero() && now.Sub(r.at) < tccRateWindow {
				bytes, within = bytes+r.bytes, within+r.span
			}
		}
		t.recentRate.Store(uint64(float64(bytes) * 8 / (float64(max(within, 1)) / float64(time.Second))))
		t.spanBytes, t.firstBytes, t.spanFrom, t.spanTo, t.sendFrom, t.sendTo, t.spanPkts = 0, 0, 0, 0, 0, 0, 0
	}
}

// sentBetween returns the bytes and packets sent as transport-wide numbers from to to, lost
// packets included.
func (t *transportCC) sentBetween(from, to uint32) (b uint64, n uint32) {
	if to-from >= tccRing {
		return 0, 0
	}
	for k := from; k != to+1; k++ {
		if s := &t.sent[k%tccRing]; s.seq.Load() == uint32(uint16(k))+1 {
			b += uint64(s.size.Load())
			n++
		}
	}
	return b, n
}

// delaySignal is what the layer choice reads of the feedback at one step.
type delaySignal struct {
	ok           bool          // fresh feedback
	queue, prevQ time.Duration // the latest two feedbacks' least queue delay
	rate         float64       // bps delivered over the latest span
	sentRate     float64       // bps at which that span's packets were sent
	slower       uint32        // spans in a row delivered slower than sent
	slowFor      time.Duration // the arrival time those spans cover
	runRate      float64       // bps: what they delivered together (a token bucket's burst
	// makes one 200 ms span of a 300 kbit/s link read up to 460 kbit/s)
	recentRate float64 // bps: what the spans of the last tccRateWindow delivered together
	spanLoss   float64 // the share of the packets sent in the latest span's range that never arrived
	rateAt     time.Time
	rxBytes    uint64 // bytes delivered, all added up, as of the arrival rxAt (ns, the subscriber's clock)
	rxAt       int64
	lostBytes  uint64 // bytes reported lost, all added up
}

// signal returns the latest feedback's reading, ok only when it is fresh at now.
func (t *transportCC) signal(now time.Time) delaySignal {
	if t == nil {
		return delaySignal{}
	}
	at := t.fbAt.Load()
	if at == 0 || now.Sub(time.Unix(0, at)) > tccFresh {
		return delaySignal{}
	}
	return delaySignal{ok: true, queue: time.Duration(t.queue.Load()), prevQ: time.Duration(t.prevQueue.Load()),
		rate: float64(t.rate.Load()), sentRate: float64(t.sentRate.Load()), slower: t.slower.Load(), slowFor: time.Duration(t.slowFor.Load()),
		runRate: float64(t.runRate.Load()), recentRate: float64(t.recentRate.Load()), rateAt: time.Unix(0, t.rateAt.Load()),
		spanLoss: float64(t.spanLost.Load()) / float64(max(t.spanSent.Load(), 1)), rxBytes: t.rxBytes.Load(), rxAt: t.rxAt.Load(), lostBytes: t.lostBytes.Load()}
}

// bottleneck reports whether a queue of at least d stands and the link delivered its packets
// clearly slower than they were sent for tccSlowFor of its arrival time (tccSlowForLossy when it
// also dropped tccSpanLoss of them lately): a link at its limit. A receiver starved of CPU (the loaded
// bed) also stamps its arrivals late and for a while slower than sent, but then catches up in a
// burst, which ends the run, and loses nothing; a delay that jumps once (a stall, a new route)
// slows one span only. What the link carries is then runRate.
func (s delaySignal) bottleneck(d time.Duration) bool {
	return s.standing(d) && s.runRate > 0 && (s.slowFor >= tccSlowFor || s.slowFor >= tccSlowForLossy && s.spanLoss >= tccSpanLoss)
}

// tccSlower: a span delivered under this share of its sending rate was held by a bottleneck.
const tccSlower = 0.9

// standing reports whether both of the latest feedbacks saw a queue of at least d: one feedback's
// latest packet delayed can be a burst (a keyframe) draining, or jitter.
func (s delaySignal) standing(d time.Duration) bool {
	return s.ok && s.queue >= d && s.prevQ >= d
}
