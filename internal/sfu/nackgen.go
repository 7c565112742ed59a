package sfu

import (
	"context"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// The NACKs we send a publisher (and the receiving end of an inter-node link) for the packets
// missing from its streams. pion's generator asks for every missing packet of its last 512 every
// 100 ms, without end: a publisher on a weak uplink (the bed's pub-udp cells) got 10 NACKs a second
// for 30 s after its last loss, for packets long gone from its history, and, while its queue held
// a retransmission, asked again for each packet two or three times, so that at the onset of
// congestion retransmissions took half to all of its uplink. Here, as libwebrtc's receivers do,
// a packet is asked for again only after the repair time (from a NACK to the retransmission's
// arrival, which a queue lengthens), at most nackMaxTries times, and not once it is older than
// nackMaxAge: the sender keeps about a second of history and the subscribers' jitter buffers
// wait no longer either.
const (
	nackTick       = 25 * time.Millisecond  // how often due NACKs go out
	nackMaxTries   = 6                      // requests per missing packet
	nackMaxAge     = time.Second            // from its loss being seen
	nackMinRetry   = 40 * time.Millisecond  // the soonest a packet is asked for again
	nackMaxRetry   = 400 * time.Millisecond // the latest, whatever the repair time says
	nackRepair0    = 100 * time.Millisecond // the repair time before any was measured
	nackMaxMissing = 256                    // packets tracked per stream; the oldest go first
)

// A publisher's uplink that loses more than nackCongested of what it is sent is full (random loss
// on a radio link is a few percent; a full queue drops the excess, half or more at a simulcast
// publisher's onset, when Chrome sends all its layers for a second before its estimate follows).
// Then a simulcast publisher that still sends a layer above its lowest is asked for nothing
// again: a retransmission takes the place of new media in that uplink (Chrome's pacer sends them
// first), the upper layers are the ones Chrome stops when its estimate falls, and the subscribers
// that must change layer start at a keyframe anyway. The bed's 150 kbit/s uplink (15 packets a
// second) carried resends of the stopped 540p and 270p layers for 3.5 s after the onset, and not
// one new packet of the 135p layer the subscribers had to switch to, nor its keyframe: they froze
// 4.5-5 s. Repairing the lowest layer still (the one Chrome goes on sending) kept its new packets a
// further 0.5 s behind resends. Once no upper layer has sent new media for nackUpperLive (Chrome's
// padding probes on a stopped layer's SSRC are none), the lowest is repaired again, as a video
// without simulcast always is: the subscribers are on it, and its losses left unrepaired froze
// them until their own keyframe request, 3 s later in the bed. The loss is an average over the
// last nackLossEvents packets of the PeerConnection's streams.
const (
	nackCongested  = 0.3
	nackLossEvents = 20
	nackUpperLive  = 500 * time.Millisecond
)

// nackEntry is one missing packet.
type nackEntry struct {
	seq   uint16
	tries uint8
	lost  int64 // when its gap was seen (unix nanos)
	first int64 // when it was first asked for (unix nanos); 0 never
	sent  int64 // when it was last asked for (unix nanos); 0 never
}

// nackList is the missing packets of one incoming stream and when to ask for them again. It holds
// no clock: the times are passed in, so the policy is tested on a modelled link.
type nackList struct {
	started bool
	highest uint16
	missing []nackEntry // ascending sequence (by arrival of the gap), at most nackMaxMissing
	repair  time.Duration
	// For the debug log (nackGen.loop): packets first asked for, asked for again, that arrived
	// after a request, and given up on (too old or asked for too often).
	asked, again, repaired, gaveUp int
}

func newNackList() *nackList {
	return &nackList{missing: make([]nackEntry, 0, nackMaxMissing), repair: nackRepair0}
}

// received records the arrival of seq at now; it returns how many packets its arrival shows
// missing, and -1 for a packet behind the highest (late: a retransmission, or reordered).
func (l *nackList) received(seq uint16, now int64) int {
	if !l.started {
		l.started, l.highest = true, seq
		return 0
	}
	d := int16(seq - l.highest)
	switch {
	case d > 0:
		gap := int(d) - 1
		if gap >= nackMaxMissing {
			// More than we track went missing at once: ask for the newest we can hold.
			l.missing = l.missing[:0]
			gap = nackMaxMissing
		}
		for s := seq - uint16(gap); s != seq; s++ {
			if len(l.missing) == nackMaxMissing {
				copy(l.missing, l.missing[1:]) // the oldest goes
				l.missing = l.missing[:nackMaxMissing-1]
			}
			l.missing = append(l.missing, nackEntry{seq: s, lost: now})
		}
		l.highest = seq
		return gap
	case d < 0:
		for i := range l.missing {
			if e := l.missing[i]; e.seq == seq {
				if e.first != 0 {
					l.repaired++
					// The repair time, from the first request: too long when that request's
					// answer was lost too, which the average absorbs.
					l.repair += (time.Duration(now-e.first) - l.repair) / 4
				}
				l.missing = append(l.missing[:i], l.missing[i+1:]...)
				break
			}
		}
		return -1
	}
	return 0
}

// forget drops every missing packet: none is to be asked for.
func (l *nackList) forget() {
	l.gaveUp += len(l.missing)
	l.missing = l.missing[:0]
}

// due appends to out the packets to ask for at now, marks them asked, and forgets the ones asked
// for often enough or too old to be wanted. A packet is asked for again after the repair time and
// a quarter, twice that after its second request and so on (a queue may have grown faster than
// the repair time shows), between nackMinRetry and nackMaxRetry.
func (l *nackList) due(now int64, out []uint16) []uint16 {
	retry := min(max(l.repair+l.repair/4, nackMinRetry), nackMaxRetry)
	keep := l.missing[:0]
	for _, e := range l.missing {
		if now-e.lost > int64(nackMaxAge) || e.tries >= nackMaxTries {
			l.gaveUp++
			continue
		}
		if e.sent == 0 || now-e.sent >= int64(min(retry<<(e.tries-1), nackMaxRetry)) {
			out = append(out, e.seq)
			if e.first == 0 {
				e.first = now
				l.asked++
			} else {
				l.again++
			}
			e.sent, e.tries = now, e.tries+1
		}
		keep = append(keep, e)
	}
	l.missing = keep
	return out
}

// nackGenFactory makes a nackGen per PeerConnection, and finds it by the PeerConnection's ID
// (upperLayer); log (may be nil) gets, at debug level, what each stream was asked for once a second.
type nackGenFactory struct {
	log  *slog.Logger
	gens sync.Map // PeerConnection ID → *nackGen
}

func (g *nackGenFactory) NewInterceptor(id string) (interceptor.Interceptor, error) {
	n := newNackGen()
	if g.log != nil && g.log.Enabled(context.Background(), slog.LevelDebug) {
		n.log = g.log
	}
	if id != "" {
		n.id, n.gens = id, &g.gens
		g.gens.Store(id, n)
	}
	return n, nil
}

// upperLayer tells the generator of PeerConnection pcID that the stream ssrc is a simulcast layer
// above the lowest, whose last new media arrived at mediaAt() (unix nanos; see nackCongested).
func (g *nackGenFactory) upperLayer(pcID string, ssrc uint32, mediaAt func() int64) {
	if v, ok := g.gens.Load(pcID); ok {
		n := v.(*nackGen)
		n.mu.Lock()
		n.upper[ssrc] = mediaAt
		n.mu.Unlock()
	}
}

func newNackGen() *nackGen {
	return &nackGen{streams: map[uint32]*nackList{}, upper: map[uint32]func() int64{}, done: make(chan struct{})}
}

// nackGen is the interceptor: it watches the sequence numbers of the incoming streams that
// negotiated NACK and sends the due NACKs every nackTick.
type nackGen struct {
	interceptor.NoOp
	mu      sync.Mutex
	streams map[uint32]*nackList
	upper   map[uint32]func() int64 // simulcast layers above the lowest: their last new media (nackGenFactory.upperLayer)
	loss    float64                 // share of packets missing, over about the last nackLossEvents
	id      string                  // the PeerConnection's, in gens
	gens    *sync.Map
	started bool
	closed  bool
	done    chan struct{}
	wg      sync.WaitGroup
	log     *slog.Logger // nil unless debug logging is on
}

func (n *nackGen) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.started && !n.closed {
		n.started = true
		n.wg.Add(1)
		go n.loop(w)
	}
	return w
}

func (n *nackGen) BindRemoteStream(info *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	nack := false
	for _, fb := range info.RTCPFeedback {
		nack = nack || (fb.Type == "nack" && fb.Parameter == "")
	}
	if !nack {
		return r
	}
	l := newNackList()
	n.mu.Lock()
	n.streams[info.SSRC] = l
	n.mu.Unlock()
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		i, a, err := r.Read(b, a)
		if err != nil || i < 4 {
			return i, a, err
		}
		seq := binary.BigEndian.Uint16(b[2:4]) // the fixed header's sequence number: no parse
		n.received(l, seq, time.Now().UnixNano())
		return i, a, err
	})
}

// received records the arrival of seq on stream l at now, and the loss it shows.
func (n *nackGen) received(l *nackList, seq uint16, now int64) {
	n.mu.Lock()
	if gap := l.received(seq, now); gap >= 0 {
		for range min(gap, nackLossEvents) {
			n.loss += (1 - n.loss) / nackLossEvents
		}
		n.loss -= n.loss / nackLossEvents
	}
	n.mu.Unlock()
}

// collect returns the NACKs due at now, from sender; none from a simulcast publisher whose uplink
// is full while it sends an upper layer (nackCongested): its missing packets are forgotten
// instead. Called with mu held.
func (n *nackGen) collect(now int64, sender uint32, seqs []uint16, pkts []rtcp.Packet) ([]uint16, []rtcp.Packet) {
	congested, full := n.loss > nackCongested, false
	if congested {
		for _, mediaAt := range n.upper {
			full = full || now-mediaAt() < int64(nackUpperLive)
		}
	}
	for ssrc, l := range n.streams {
		if full || congested && n.upper[ssrc] != nil {
			l.forget()
			continue
		}
		if seqs = l.due(now, seqs[:0]); len(seqs) > 0 {
			pkts = append(pkts, &rtcp.TransportLayerNack{SenderSSRC: sender, MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)})
		}
	}
	return seqs, pkts
}

func (n *nackGen) UnbindRemoteStream(info *interceptor.StreamInfo) {
	n.mu.Lock()
	delete(n.streams, info.SSRC)
	delete(n.upper, info.SSRC)
	n.mu.Unlock()
}

func (n *nackGen) Close() error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.done)
	}
	n.mu.Unlock()
	if n.gens != nil {
		n.gens.CompareAndDelete(n.id, n)
	}
	n.wg.Wait()
	return nil
}

func (n *nackGen) loop(w interceptor.RTCPWriter) {
	defer n.wg.Done()
	t := time.NewTicker(nackTick)
	defer t.Stop()
	sender := rand.Uint32()
	var seqs []uint16
	var pkts []rtcp.Packet
	logAt := time.Now().UnixNano()
	for {
		select {
		case <-n.done:
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		pkts = pkts[:0]
		n.mu.Lock()
		if n.log != nil && now-logAt >= int64(time.Second) {
			logAt = now
			for ssrc, l := range n.streams {
				if l.asked+l.again+l.repaired+l.gaveUp > 0 {
					n.log.Debug("NACKs to the publisher", "ssrc", ssrc, "asked", l.asked, "again", l.again, "repaired", l.repaired,
						"gave_up", l.gaveUp, "missing", len(l.missing), "repair_ms", l.repair.Milliseconds(), "loss", n.loss)
					l.asked, l.again, l.repaired, l.gaveUp = 0, 0, 0, 0
				}
			}
		}
		seqs, pkts = n.collect(now, sender, seqs, pkts)
		n.mu.Unlock()
		if len(pkts) > 0 {
			_, _ = w.Write(pkts, interceptor.Attributes{})
		}
	}
}
