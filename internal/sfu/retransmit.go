package sfu

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/parley/parley/internal/sendq"
)

// Retransmission is budgeted per subscriber. Chrome asks again for a missing packet every round
// trip until it arrives; on a link that cannot carry the stream, answering every request at once
// sent one 150 kbit/s subscriber 26–34 Mbit/s. So a sequence number is sent again at most once per
// round trip, never when it is older than a player would still wait for, never when it predates the
// last pause of this subscriber's video, and never beyond the bytes its estimate leaves for
// retransmissions this second (congestion.go).
const (
	// maxRetransmitAge: Chrome's jitter buffer does not hold a frame this long; a later copy is waste.
	maxRetransmitAge = time.Second
	// tcpRepairAge: over a TCP path (ICE-TCP, TURN/TCP, TURN/TLS) a copy waits in the send queue
	// behind what is queued there, then in the link's buffers (the socket's in-flight bound, a
	// token bucket's queue: 200-300 ms in the weak-network bed), and the frame it completes is
	// shown only then, with every frame that waited behind it. So a packet is sent again there
	// only while its age plus what the copy will wait in the queue is under this, which keeps
	// the frame under a second late. A queue that dropped media within tcpStanding stands: a copy
	// may wait there up to its MaxAge, whatever the latest video written waited. Later copies made
	// the frames the bed's 150 kbit/s TCP subscribers showed 1.0-1.6 s late in the seconds before
	// their video paused: the queue had dropped a packet 300 ms stale, Chrome asked for it once
	// the next one came (~0.6 s after it arrived from the publisher) and the copy waited out the
	// queue again. Over TCP the queue's drops are the only loss, so what this refuses is the
	// repair of a packet a standing queue dropped stale; the subscriber waits for a keyframe
	// instead (it asks, or its video pauses and resumes with one).
	tcpRepairAge = 600 * time.Millisecond
	tcpStanding  = time.Second
	// The round trip assumed before a receiver report gives one, and its bounds for the once-per-RTT
	// rule (a report's value can be garbage or huge on a bufferbloated link).
	defaultRTT = 100 * time.Millisecond
	minRTT     = 20 * time.Millisecond
	maxRTT     = 500 * time.Millisecond
	// rtxHistory sequence numbers of recent retransmissions are remembered, like the shared ring.
	rtxHistory = ringSize
)

// Reasons a requested packet is not sent again; indexes of retransmitter.skipped.
const (
	rtxSkipStale   = iota // before the subscriber's last video pause, or while paused, or the keyframe of a congestion down
	rtxSkipRepeat         // already sent again within the round trip
	rtxSkipOld            // older than maxRetransmitAge (over TCP: tcpRepairAge, the send queue's wait included)
	rtxSkipMissing        // no longer (or never) in the buffer
	rtxSkipBudget         // over the subscriber's retransmission budget
	rtxSkipReasons
)

// RetransmitSkipReasons names the reasons in Stats.RetransmitSkipped, in order.
var RetransmitSkipReasons = [rtxSkipReasons]string{"stale", "repeat", "old", "missing", "budget"}

// retransmitter is one down-track's NACK state, owned by its RTCP reader.
type retransmitter struct {
	buf     []byte
	rtxBuf  []byte // an RTX packet's payload: the original sequence number and buf's payload
	pkt     rtp.Packet
	hdr     hdrScratch
	recent  *[rtxHistory]rtxEntry // allocated at the first NACK: most subscribers never send one
	skipped [rtxSkipReasons]atomic.Uint64
	// top is the newest sequence number asked for so far (valid once topSet): a request for an
	// older one is the subscriber asking again, not a new loss.
	top    uint16
	topSet bool
	// qDrops is the media the send queue in front of a TCP path had dropped at a NACK, and
	// qDropAt when that count was seen to grow (unix nanos; 0: never).
	qDrops  uint64
	qDropAt int64
}

// nackFar: a requested sequence number this far behind top is not a repeat but the numbering having
// moved on (Chrome keeps at most 1000 packets of NACK history).
const nackFar = 4096

// firstAsk reports whether out is asked for the first time, and remembers it.
func (r *retransmitter) firstAsk(out uint16) bool {
	if diff := int16(out - r.top); r.topSet && diff <= 0 && diff > -nackFar {
		return false
	}
	r.top, r.topSet = out, true
	return true
}

type rtxEntry struct {
	seq uint16
	at  int64
}

// retransmit answers one NACK from the forwarder's ring.
func (d *downTrack) retransmit(nack *rtcp.TransportLayerNack, now time.Time) {
	r := &d.rtx
	if d.fwd.ring == nil || d.track == nil {
		return
	}
	if r.recent == nil {
		r.recent, r.buf, r.rtxBuf = new([rtxHistory]rtxEntry), make([]byte, 1500), make([]byte, 1502)
	}
	var rtt time.Duration
	if d.cc != nil {
		rtt = time.Duration(d.cc.rtt.Load())
	}
	if rtt == 0 {
		rtt = defaultRTT
	}
	rtt = min(max(rtt, minRTT), maxRTT)
	nowNs := now.UnixNano()
	oldest := int64(maxRetransmitAge)
	if d.queueWait != nil {
		if wait, drops, ok := d.queueWait(); ok {
			if drops != r.qDrops {
				r.qDrops, r.qDropAt = drops, nowNs
			}
			if r.qDropAt != 0 && nowNs-r.qDropAt < int64(tcpStanding) {
				wait = max(wait, sendq.DefaultMaxAge)
			}
			oldest = int64(tcpRepairAge - wait)
		}
	}
	for _, pair := range nack.Nacks {
		for _, out := range pair.PacketList() {
			d.nacks.Add(1)
			in, ok, first := out+uint16(d.seqOffN.Load()), true, false
			if d.gated {
				if d.cc.probeLoss(out, d.padded.Load()) {
					d.gate.probe.Store(false) // the link dropped the probe's padding: end it now
				}
				in, ok = d.gate.nackable(out)
				// Only video sent since the last resume counts as lost: a paused video's probe
				// padding is the probe's to judge, and its lost packets are asked for once the
				// resumed video's first packet shows their gap (the bed read a freed link as
				// losing 54 % of it and paused it again).
				first = ok && r.firstAsk(out)
			}
			if !ok || d.sc != nil && d.sc.superseded(in) {
				r.skipped[rtxSkipStale].Add(1)
				continue
			}
			e := &r.recent[out%rtxHistory]
			if e.seq == out && e.at != 0 && nowNs-e.at < int64(rtt) {
				r.skipped[rtxSkipRepeat].Add(1)
				continue
			}
			n, at, ok := d.stored(in, r.buf)
			if first && ok {
				// Asked for the first time, and we have it: this link lost it. A packet we
				// never had was lost on the publisher's uplink, not on this one.
				d.nackedNew.Add(1)
			}
			switch {
			case !ok:
				r.skipped[rtxSkipMissing].Add(1)
				continue
			case nowNs-at > oldest:
				r.skipped[rtxSkipOld].Add(1)
				continue
			case d.cc != nil && d.cc.rtxBudget.Add(-int64(n)) < 0: // an inter-node link has no budget
				// Refused, it costs nothing: the browser asks again, and each ask taken off
				// the budget would keep it short after a refill (topUpRepairs).
				d.cc.rtxBudget.Add(int64(n))
				r.skipped[rtxSkipBudget].Add(1)
				continue
			}
			if r.pkt.Unmarshal(r.buf[:n]) != nil {
				continue
			}
			e.seq, e.at = out, nowNs
			d.resent.Add(1)
			if b := d.track.out.Load(); b != nil && b.rtxSSRC != 0 {
				// On the RTX stream: the subscriber's loss statistics of the media stream stay
				// the link's, and the repair is told apart from the original.
				n, ok := writeRTX(b, d.track.tcc, &r.hdr, r.rtxBuf, &r.pkt, out, d.tsOff.Load())
				if !ok {
					d.errs.Add(1)
					continue
				}
				d.rtxSent.Add(1)
				d.bytes.Add(uint64(n))
				d.rtxB.Add(uint64(n))
				continue
			}
			d.rtxB.Add(uint64(r.pkt.Header.MarshalSize() + len(r.pkt.Payload)))
			d.send(&r.hdr, &r.pkt, out)
		}
	}
}
