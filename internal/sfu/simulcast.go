package sfu

import (
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Simulcast: a publisher sends one video in two or three encodings ("layers", RFC 8853), each its
// own RTP stream named by a rid: the stock openvidu-browser in mediasoup mode sends rdiv4, rdiv2
// and rdiv1 (a quarter, half and full resolution; fewer for small captures). Each layer has its
// own forwarder; a subscriber's video down-track listens to all of them and forwards one, which
// it may change only where a keyframe of the new layer starts. Its browser sees one RTP stream:
// our SSRC (boundTrack), sequence numbers and timestamps that continue across switches, and VP8 /
// VP9 picture IDs (and TL0PICIDX) that do too.
//
// The layer is the highest one at or under the down-track's maximum (setMaxLayer: what the
// subscriber's link allows, all of them by default) that the publisher is sending: browsers stop
// sending their upper layers when their own uplink shrinks.
//
// Temporal layers (VP8): Chrome encodes each VP8 simulcast layer in three temporal layers (TID 0, 2, 1,
// 2, … at 30 fps: TID 0 alone is 7.5 fps, with TID 1 15 fps), and frames of TID 2 are referenced
// by no other frame. What the link carries is chosen on a ladder of rungs (layer, highest TID
// forwarded), lowest first: the lowest layer at its full frame rate, then every higher layer at
// half its frame rate (TID ≤ 1, about 60 % of its bitrate) and then at its full rate. The rule
// is the most pixels per second at 15 fps or more: the next layer up at half the frame rate
// shows twice the pixels per second of the one below at its full rate (four times the pixels,
// half the frames), for a little more bitrate; a quarter of the frame rate (7.5 fps) would show
// no more pixels per second than the layer below at its full rate, so it is no rung. The rungs
// at half rate appear once the layers are seen to carry temporal layers (ladder); without them
// the ladder is the layers. Dropped frames leave no trace the decoder could take for loss: the
// sequence numbers and picture IDs after them close up (seqOff, pidOff), and a change of the
// highest TID forwarded takes effect at a frame of TID 0, which references nothing the
// subscriber may lack.

const (
	// layerIdle is how long a layer may send nothing before the down-tracks take it for stopped.
	// Generous because screen shares send a frame only when the screen changes.
	layerIdle = 2 * time.Second
	// layerGone: a layer silent this long while a lower one has gone on sending for as long is
	// stopped (Chrome drops its upper layers when its uplink estimate falls, the lower ones carry
	// on; waiting out layerIdle froze a weak publisher's subscribers 2-5 s at each onset). A screen
	// share's layers fall silent together. 400 ms is twelve frames at 30 fps: in the weak-network
	// bed's rounds an upper layer fell silent that long only at its uplink's onsets (its picture
	// frozen already) and when it stopped; 700 ms cost each onset's picture 300 ms more.
	layerGone = 400 * time.Millisecond
	// keyframeRetry is how long a down-track waiting to switch waits before it asks for the
	// keyframe again, doubling with each request up to keyframeRetryMax: a layer whose keyframes
	// do not come (its publisher stopped encoding it) must not draw two requests a second.
	keyframeRetry    = 500 * time.Millisecond
	keyframeRetryMax = 2 * time.Second
	// padSpan is the most time one padding burst makes up for: a publisher short of CPU or
	// bandwidth may send a frame only every few hundred milliseconds, and padding owed only after
	// frames must still reach the probe's rate.
	padSpan = 250 * time.Millisecond
	// switchHistory is how many mapping changes back a NACK can still be answered: layer switches,
	// two per padding burst of a probe (the padding, then the layer's packets after it) and one
	// after each frame dropped for its temporal layer (15 a second at half rate), so about a
	// second of a probe at half rate.
	switchHistory = 128
	// tlAll as the highest temporal layer forwarded: every frame.
	tlAll int8 = 7
	// maxRungs bounds the ladder: the lowest layer, and each higher one at half and full rate.
	maxRungs = 2*maxLayers - 1
	// peakSeconds: a layer is taken up only if the link carries the most it sent in any of the
	// last this many seconds. A publisher short of CPU sends a layer under its rate for a while:
	// the bed's probe took 270p when it sent 121 kbit/s, on a 300 kbit/s link that delivered 227,
	// and lost 14 packets and a second of picture when it was back at 230.
	peakSeconds = 4
	// halfRateFPS is the least frame rate (of its frames of TID ≤ 1) a rung at half rate is taken
	// at: 15 fps, less a frame of the publisher's jitter.
	halfRateFPS = 14
)

// rung is one step of a subscriber's video ladder: a simulcast layer, and the highest temporal
// layer of it forwarded (tlAll: every frame).
type rung struct {
	s int32
	t int8
}

// packed is r as fitMax holds it: the layer's index for a rung of every frame (so that the
// ladder without temporal layers is the layers), and 8 × (t+1) more for one with fewer.
func (r rung) packed() int32 {
	if r.t >= tlAll {
		return r.s
	}
	return r.s + 8*(int32(r.t)+1)
}

// unpackRung undoes packed.
func unpackRung(v int32) rung {
	if v < 8 {
		return rung{s: v, t: tlAll}
	}
	return rung{s: v & 7, t: int8(v/8 - 1)}
}

// orderLayers returns the rids of a simulcast offer lowest layer first: rdivN by N, largest N
// first (the stock client's names); other names keep the offer's order, which by convention is
// lowest first as well.
func orderLayers(rids []string) []string {
	out := append([]string(nil), rids...)
	div := func(r string) int {
		n, err := strconv.Atoi(strings.TrimPrefix(r, "rdiv"))
		if !strings.HasPrefix(r, "rdiv") || err != nil {
			return 0
		}
		return n
	}
	sort.SliceStable(out, func(i, j int) bool { return div(out[i]) > div(out[j]) })
	return out
}

// simulcast is the layer choice and the rewriting state of one down-track of a simulcast video.
// Its layers' forwarders call it from their own goroutines, so the state is under mu, held only
// for a few integer operations; the write to the network happens outside it.
type simulcast struct {
	main   *downTrack    // the subscriber's video down-track (or a recording tap)
	layers []*forwarder  // lowest first
	sinks  []*downTrack  // one per layer, attached to that layer's forwarder
	codec  int           // codecVP8…, for the picture numbering
	clock  uint32        // RTP clock rate
	limit  atomic.Int32  // highest layer allowed by setMaxLayer; -1 pauses the video
	fitMax atomic.Int32  // the highest rung the subscriber's link carries (step), packed
	cur    atomic.Int32  // layer being forwarded, -1 before the first keyframe
	tgt    atomic.Int32  // layer wanted, -1 when paused or none is sending
	tsOff  atomic.Uint32 // current timestamp offset, for sender reports
	// downAt is when the layer last went down for congestion (step; see downSettle).
	downAt time.Time
	// lowSince is when the lowest layer became the one forwarded (unix nanos; see atLowest).
	lowSince atomic.Int64
	// congestedAt is when step last saw the link short of what it was sent (unix nanos; see
	// atLowest).
	congestedAt atomic.Int64
	// log is the subscription's, for its layer changes; nil for a recording's tap.
	log *slog.Logger
	// tcc is the subscriber's transport-wide feedback (delayfeedback.go); nil for a tap. Its
	// signal is there only when the subscriber negotiated transport-cc.
	tcc   *transportCC
	swaps atomic.Uint64 // layer switches done
	// shed: the layer choice went down for congestion (congestedDown); until the lower layer's
	// keyframe, nothing more of the current one is sent.
	shed atomic.Bool
	// held: after such a down, the lower layer's keyframe is neither asked for nor switched at
	// until the link's queue has drained (downHold); step releases it at holdUntil.
	held      atomic.Bool
	holdUntil time.Time // owned by step
	// stale: after such a down, what was sent before the new layer's keyframe (outgoing sequence
	// numbers before staleBefore, under mu) is not sent again: the decoder starts over at that
	// keyframe, and repairs of the old layer would only fill the queue in front of it. Cleared by
	// step after downStale.
	stale atomic.Bool

	mu       sync.Mutex
	started  bool   // something was forwarded: the offsets below continue a stream
	startSeq uint16 // incoming sequence number of the keyframe the current layer began with
	curGen   uint32 // the current layer's forwarder gen at that keyframe
	seqOff   uint16
	pidOff   uint16
	tl0Off   uint8
	lastSeq  uint16 // highest outgoing sequence number
	lastTS   uint32 // highest outgoing timestamp, sent at lastAt (unix nanos)
	lastAt   int64
	lastPID  uint16 // highest outgoing picture ID
	lastTL0  uint8
	hasPID   bool
	hasTL0   bool
	askedAt  int64 // last keyframe request for a switch (unix nanos)
	asks     uint8 // requests again for the same switch: each waits twice as long, up to keyframeRetryMax
	history  [switchHistory]segment
	nhistory int
	// Temporal layers of the current layer (see the top of the file).
	tl          int8   // the highest forwarded, changed at frames of TID 0
	lastIn      uint16 // highest incoming sequence number of the current layer seen
	segIn       uint16 // the incoming sequence number the current mapping (segment) began at
	remap       bool   // frames were dropped, or tl changed: the next packet forwarded starts a segment
	dropping    bool   // dropPID is the picture ID of the last frame dropped
	dropPID     uint16
	staleBefore uint16 // see stale

	// probeBps is the padding, in bytes per second, the forwarder adds after each frame of the
	// current layer while an up-probe runs (step); 0 when none does.
	probeBps atomic.Uint64
	// probeFrom is the first outgoing sequence number of the running probe, +1 (0: none), and
	// probeNacks counts the NACKs of sequence numbers from there on: loss of the probe's time, not
	// the repair of earlier loss.
	probeFrom  atomic.Uint32
	probeNacks atomic.Uint64
	// pausedNacks counts the NACKs of a paused video's probes' padding (padPaused): the
	// subscriber asks for what the link dropped of a failed probe once a later packet shows the
	// gap, which for the last one is the resumed video's first. That probe was judged when it
	// ran (congestion.go), so these say nothing of the link the resumed layer runs on (measure
	// leaves them out of nackRatio): counted, they held the bed's freed subscriber's first layer
	// probe back a second.
	pausedNacks atomic.Uint64
	padTS       uint32 // outgoing timestamp of the frame the last padding followed; under mu
	padded      bool   // padTS is set

	// Owned by step (the sender-report goroutine).
	fitAt     time.Time
	fitBytes  [maxLayers]uint64
	fitUpper  [maxLayers][2]uint64
	fitFrames [maxLayers]uint64
	skip      [maxRungs]bool    // a rung at half rate the choice passes over (skipped)
	ladder    [maxRungs]rung    // the rungs, lowest first (see the top of the file)
	nrungs    int32             // how many
	temporal  bool              // the ladder has the rungs at half rate
	rate      [maxRungs]float64 // bits per second each rung carried in the last interval
	// peak is the most each rung carried in one of the last peakSeconds intervals: what a layer
	// is taken up on (peakRate).
	peak      [peakSeconds][maxRungs]float64
	npeak     int
	sentBytes uint64  // the down-track's bytes (media, retransmissions, padding) at fitAt
	sentPkts  uint64  // its media packets at fitAt
	nacksAt   uint64  // the sequence numbers its subscriber asked for again, at fitAt
	sentRate  float64 // bits per second sent to the subscriber in the last interval
	nackRatio float64 // sequence numbers asked for again per media packet sent, last interval
	lastRep   int64   // the last receiver report step has seen (unix nanos)
	lastLoss  float64 // its fraction lost
	up        upProbe
	// ceil is what the link delivered (bps of video, transport-wide feedback) at its limit when a
	// probe last failed or the layer last went down; 0 when unknown or a probe since carried
	// more. Probes stop a little above it until one shows the link carries more (see upCeilGain).
	ceil float64
	// q is the send queue in front of the subscriber's TCP path, nil over UDP (set before each
	// step); qDropped says it dropped media in the last measured second; tcp is what a probe
	// over it started from (tcpprobe.go).
	q        queueCounters
	qDropped bool
	tcp      tcpProbe
}

// upProbe is the state of a simulcast down-track's probes for a higher layer (step).
type upProbe struct {
	running  bool
	start    time.Time
	target   int32
	top      int32         // the highest rung being sent when it began
	next     time.Time     // no probe starts before
	gap      time.Duration // between failed probes, doubling to upGapMax
	toTop    bool          // the next probe aims at the top layer, not the next one up
	nacks    uint64        // probeNacks when the probe began
	pkts     uint64        // the down-track's packets (media and padding) then
	baseLoss float64       // the link's loss before the probe
	baseNack float64       // its NACKs per packet before the probe
	baseRTT  time.Duration // the round trip before the probe (0 unknown)
	baseQ    time.Duration // the queue delay the feedback showed before the probe
	delay    bool          // the probe is judged by the delay feedback (fresh when it began)
	queue    bool          // the probe is judged by the send queue of a TCP path (tcpprobe.go)
	from     float64       // bps of the layer forwarded when it began
	full     time.Time     // when the padding reached pad (zero before)
	// rxBytes and rxAt are the transport-wide feedback's delivered bytes and latest arrival at
	// the first step after full (rxSet): what a probe judged by delay passes on (probeDelivered).
	rxBytes uint64
	rxAt    int64
	rxSet   bool
	// lossy: the probe began on a path that loses at random (lossyPath); lossBase is the share of
	// its packets that path lost then (its NACKs per packet or the congestion tick's loss, at most
	// ccCongestedLoss), and lostBytes the feedback's lost bytes at rxSet.
	lossy     bool
	lossBase  float64
	lostBytes uint64
	got       float64 // the latest rate probeDelivered measured, for logs
	topped    bool    // the padding made up for a shortfall once (checkProbe)
	pad       float64 // bps the padding reaches after upRamp
	// capped: the padding stops at upCeilGain × the link's ceiling (pad) until the link carries
	// more than the ceiling, then ramps on, from rampFrom bps at rampAt, to upLiftGain^lifts ×
	// the new ceiling, and so on up to fullPad.
	capped     bool
	lifts      int
	fullPad    float64
	rampAt     time.Time
	rampFrom   float64
	quietUntil time.Time // receiver reports until then may count the last probe's padding
	probes     uint64    // probes started, passed: for tests and logs
	passed     uint64
	lastReason string // why the last probe failed, for logs
	// resumed: the video was paused over TCP; its next probe may start once a layer switch
	// (swaps) is done since resumeSwaps, the resumed layer's keyframe forwarded.
	resumed     bool
	resumeSwaps uint64
}

// segment is the mapping in force from one switch on: what NACKs for its packets need.
type segment struct {
	startOut uint16 // first outgoing sequence number
	layer    int8   // -1: padding, never sent again; padPaused: a paused video's probe's padding
	tl       int8   // highest temporal layer forwarded
	seqOff   uint16
	tsOff    uint32
	pidOff   uint16
	tl0Off   uint8
}

// layerEntry is what one layer's forwarder holds for a simulcast down-track: the layer's index
// and scratch space for the rewritten packet, owned by that forwarder's goroutine.
type layerEntry struct {
	sc    *simulcast
	layer int
	pkt   rtp.Packet
	hdr   hdrScratch
	pad   rtp.Packet // a probe's padding
	buf   [1500]byte
}

func newSimulcast(main *downTrack, layers []*forwarder) *simulcast {
	sc := &simulcast{main: main, layers: layers, codec: codecKind(layers[0].codec.MimeType), clock: layers[0].codec.ClockRate}
	if sc.clock == 0 {
		sc.clock = 90000
	}
	sc.limit.Store(int32(len(layers) - 1))
	sc.fitMax.Store(int32(len(layers) - 1))
	sc.tl = tlAll
	for i := range layers {
		sc.ladder[i] = rung{s: int32(i), t: tlAll}
	}
	sc.nrungs = int32(len(layers))
	sc.cur.Store(-1)
	sc.tgt.Store(-1)
	for i := range layers {
		// A tap to the forwarder: the subscribers without simulcast pay no extra branch for it.
		sc.sinks = append(sc.sinks, &downTrack{fwd: layers[i], tap: &layerEntry{sc: sc, layer: i}})
	}
	return sc
}

// setMaxLayer sets the highest layer d may forward (0 = lowest); a value past the top means the
// top, a negative one pauses d's video until it is raised again. The switch itself waits for a
// keyframe of the new layer, which is requested on the next packet.
func (sc *simulcast) setMaxLayer(n int) {
	if n >= len(sc.layers) {
		n = len(sc.layers) - 1
	}
	if n < 0 {
		n = -1
	}
	sc.limit.Store(int32(n))
}

// pick returns the layer d should forward at now: the highest that is sending at or under both
// setMaxLayer's limit and what the link carries (step).
// When none of those is, the lowest sending one; -1 when paused or nothing is sending.
func (sc *simulcast) pick(now int64) int32 {
	top := min(sc.limit.Load(), unpackRung(sc.fitMax.Load()).s)
	if top < 0 || (sc.main.cc != nil && sc.main.cc.pause.Load()) {
		return -1 // paused: by the hook, or by the subscription's congestion state
	}
	for l := top; l >= 0; l-- {
		if sc.sending(l, now) {
			return l
		}
	}
	for l := top + 1; int(l) < len(sc.layers); l++ {
		if sc.sending(l, now) {
			return l
		}
	}
	return -1
}

// sending reports whether the publisher is sending layer l at now: media within layerGone, or
// within layerIdle while no lower layer has sent media for layerGone past l's last.
func (sc *simulcast) sending(l int32, now int64) bool {
	at := sc.layers[l].mediaAt.Load()
	switch {
	case at == 0 || now-at >= int64(layerIdle):
		return false
	case now-at < int64(layerGone):
		return true // the common case: one load
	}
	for k := l - 1; k >= 0; k-- {
		if b := sc.layers[k].mediaAt.Load(); b-at >= int64(layerGone) {
			return false
		}
	}
	return true
}

// tcap returns the highest temporal layer of layer l to forward: the fitting rung's when it is a
// rung of l, else every frame (a lower layer, when the rung's is not being sent or setMaxLayer
// limits).
func (sc *simulcast) tcap(l int32) int8 {
	if r := unpackRung(sc.fitMax.Load()); r.s == l {
		return r.t
	}
	return tlAll
}

// WriteRTP implements Tap: the forwarder found the keyframe for its subscribers, a tap looks again
// (a few byte reads).
func (e *layerEntry) WriteRTP(p *rtp.Packet) {
	e.write(p, isKeyframeStart(e.sc.codec, p.Payload))
}

// write takes one packet of layer e.layer, on that layer's forwarder goroutine: forwards it
// rewritten if it belongs to the forwarded layer, or switches to it at a keyframe if it is the
// wanted one, else drops it.
func (e *layerEntry) write(p *rtp.Packet, key bool) {
	sc := e.sc
	l := int32(e.layer)
	now := sc.layers[l].lastAt.Load() // stamped by forward just before
	tgt := sc.pick(now)
	if tgt < 0 && l == 0 && p.Marker && sc.main.tap == nil && sc.main.gate.probe.Load() {
		e.pausedProbe(p) // paused over TCP: padding probes the link (congestion.go)
	}
	if c := sc.cur.Load(); l != c && l != tgt && tgt == sc.tgt.Load() && !(key && sc.interim(l, tgt, c, now)) {
		return // the common case for the layers nobody here wants: no lock
	}
	pic, _ := parsePicture(sc.codec, p.Payload)

	sc.mu.Lock()
	var ask, also *forwarder // keyframe requests, made once mu is released
	if tgt != sc.tgt.Load() {
		if log := sc.log; log != nil && log.Enabled(context.Background(), slog.LevelDebug) {
			// Rare (the choice changed); under mu, so that the lines come in order.
			var ages [maxLayers]int64
			for i, f := range sc.layers {
				ages[i] = -1
				if at := f.mediaAt.Load(); at != 0 {
					ages[i] = (now - at) / 1e6
				}
			}
			log.Debug("simulcast: layer wanted", "from", sc.tgt.Load(), "to", tgt, "cur", sc.cur.Load(), "fit", unpackRung(sc.fitMax.Load()).s,
				"limit", sc.limit.Load(), "media_age_ms", ages[:len(sc.layers)], "by", l, "held", sc.held.Load())
		}
		sc.tgt.Store(tgt)
		sc.asks = 0
		if tgt < 0 || tgt >= sc.cur.Load() {
			sc.shed.Store(false) // not on the way down (any more)
			sc.held.Store(false)
			sc.stale.Store(false)
		}
		if tgt < 0 {
			sc.cur.Store(-1) // paused: resuming needs a keyframe
		} else if tgt != sc.cur.Load() {
			sc.askedAt = now
			if !sc.held.Load() { // else step asks when the hold ends
				ask = sc.layers[tgt]
				if c := sc.cur.Load(); tgt > 0 && c > tgt && !sc.sending(c, now) && sc.sending(0, now) {
					also = sc.layers[0] // for interim, which may well come first
				}
			}
		}
	}
	if c := sc.cur.Load(); c >= 0 && sc.layers[c].gen.Load() != sc.curGen {
		// The publisher reconnected: the layer arrives on a new track whose numbering has nothing
		// to do with the offsets in force. Start over at its next keyframe, continuing our output.
		sc.cur.Store(-1)
		if tgt >= 0 {
			ask, sc.askedAt = sc.layers[tgt], now
		}
	}
	cur := sc.cur.Load()
	switch {
	case l == tgt && l != cur:
		if sc.held.Load() {
			// Down for congestion, the link's queue still draining (downHold): this keyframe
			// would meet it full, and step asks for one when it has drained.
			sc.mu.Unlock()
			return
		}
		if !key {
			if now-sc.askedAt >= int64(min(keyframeRetry<<sc.asks, keyframeRetryMax)) {
				ask, sc.askedAt = sc.layers[tgt], now
				sc.asks = min(sc.asks+1, 8)
			}
			sc.mu.Unlock()
			askKeyframes(ask, also)
			return
		}
		from := cur
		sc.switchTo(l, p, pic, now)
		log := sc.log // the subscription's; a recording's tap has none
		if log == nil {
			log = sc.layers[l].log
		}
		if log != nil && log.Enabled(context.Background(), slog.LevelDebug) {
			log.Debug("simulcast layer switch", "from", from, "to", l, "rid", sc.layers[l].rid, "vp8_tid", pic.tidAt != 0, "seq", p.SequenceNumber+sc.seqOff) // rare: at keyframes, when the choice changed
		}
	case key && sc.interim(l, tgt, cur, now):
		from := cur
		sc.switchTo(l, p, pic, now)
		if log := sc.log; log != nil && log.Enabled(context.Background(), slog.LevelDebug) {
			log.Debug("simulcast layer switch", "from", from, "to", l, "rid", sc.layers[l].rid, "vp8_tid", pic.tidAt != 0, "seq", p.SequenceNumber+sc.seqOff, "interim", true)
		}
	case l == cur:
		if int16(p.SequenceNumber-sc.startSeq) < 0 || int16(p.SequenceNumber-sc.segIn) < 0 {
			// Older than the keyframe we switched at (the decoder cannot use it), or than the
			// mapping in force, which a frame dropped since changed: a NACK gets it as it was.
			sc.mu.Unlock()
			return
		}
		if tgt >= 0 && tgt < l && sc.shed.Load() {
			// Down because the link cannot carry this layer: sending more of it until the lower
			// layer's keyframe would keep the link's queue full in front of that keyframe (the
			// bed: 540p on after a squeeze, the 135p keyframe lost in the queue, 3.7 s frozen).
			sc.mu.Unlock()
			askKeyframes(ask, also)
			return
		}
		if pic.tidAt != 0 && sc.dropTemporal(l, p, pic) {
			sc.mu.Unlock()
			askKeyframes(ask, also)
			return
		}
	default:
		sc.mu.Unlock()
		askKeyframes(ask, also)
		return
	}
	// Forward l's packet with the current offsets.
	seq, ts := p.SequenceNumber+sc.seqOff, p.Timestamp+uint32(sc.tsOff.Load())
	if sc.remap {
		sc.remap, sc.dropping, sc.segIn = false, false, p.SequenceNumber
		sc.history[sc.nhistory%switchHistory] = segment{startOut: seq, layer: int8(l), tl: sc.tl,
			seqOff: sc.seqOff, tsOff: sc.tsOff.Load(), pidOff: sc.pidOff, tl0Off: sc.tl0Off}
		sc.nhistory++
	}
	if int16(p.SequenceNumber-sc.lastIn) > 0 {
		sc.lastIn = p.SequenceNumber
	}
	if sc.started {
		// A gap is what never reached us (dropped frames and the switches close theirs up); a
		// packet behind the latest fills one (downTrack holes).
		sc.main.countHoles(seq, int16(seq-sc.lastSeq))
	}
	if int16(seq-sc.lastSeq) > 0 || !sc.started {
		sc.lastSeq = seq
	}
	if int32(ts-sc.lastTS) > 0 || !sc.started {
		sc.lastTS, sc.lastAt = ts, now
	}
	sc.started = true
	payload := p.Payload
	if pic.pidAt != 0 || pic.tl0At != 0 {
		n := copy(e.buf[:], p.Payload)
		payload = e.buf[:n]
		if pic.pidAt != 0 {
			id := (pic.pictureID(payload) + sc.pidOff) & pic.pidMask()
			pic.setPictureID(payload, id)
			if d := (id - sc.lastPID) & pic.pidMask(); !sc.hasPID || (d != 0 && d <= pic.pidMask()/2) {
				sc.lastPID, sc.hasPID = id, true
			}
		}
		if pic.tl0At != 0 && int(pic.tl0At) < n {
			v := payload[pic.tl0At] + sc.tl0Off
			payload[pic.tl0At] = v
			if !sc.hasTL0 || int8(v-sc.lastTL0) > 0 {
				sc.lastTL0, sc.hasTL0 = v, true
			}
		}
	}
	// A probe pads after the last packet of a frame, where the padding splits no frame.
	var padFrom uint16
	var padBytes int
	if p.Marker && sc.main.tap == nil {
		if bps := sc.probeBps.Load(); bps > 0 {
			padFrom, padBytes = sc.reservePadding(bps, ts)
		}
	}
	sc.mu.Unlock()
	askKeyframes(ask, also)
	e.pkt.Header = p.Header
	e.pkt.SequenceNumber, e.pkt.Timestamp = seq, ts
	e.pkt.Payload = payload
	e.pkt.PaddingSize = p.PaddingSize
	if sc.main.tap != nil {
		sc.main.tap.WriteRTP(&e.pkt)
		return
	}
	sc.main.send(&e.hdr, &e.pkt, seq)
	if padBytes > 0 {
		e.sendPadding(&e.pkt, padFrom, padBytes)
	}
}

// askKeyframes asks for a keyframe of each layer given (nil: none).
func askKeyframes(a, b *forwarder) {
	if a != nil {
		a.requestKeyframe(true)
	}
	if b != nil {
		b.requestKeyframe(true)
	}
}

// interim reports whether a keyframe of layer l may end the wait for one of the wanted layer tgt
// under the current layer cur: cur has stopped (its picture is frozen), and l is under tgt and
// sending. Chrome stops its upper layers together when its estimate falls, and the frames of the
// middle one it had already encoded keep it "sending" for a while after the top one is taken for
// stopped: its keyframe, asked for then, never came, and the bed's subscribers waited for it
// 0.24-0.8 s more, frozen, until it too was taken for stopped. So the lowest layer's keyframe is
// asked for with it, and whichever comes first is taken: the wanted one's, when it comes, takes
// the subscriber up again. Called with or without mu held.
func (sc *simulcast) interim(l, tgt, cur int32, now int64) bool {
	return l < tgt && tgt < cur && !sc.held.Load() && !sc.sending(cur, now) && sc.sending(l, now)
}

// dropTemporal applies the highest temporal layer to forward of the current layer l to its packet
// p and reports whether p is to be dropped for it; a dropped packet's sequence number, and a
// dropped frame's picture ID, are taken out of the outgoing numbering. Called with mu held.
func (sc *simulcast) dropTemporal(l int32, p *rtp.Packet, pic picture) bool {
	tid := pic.tid(p.Payload)
	if tid == 0 && pic.frameStart(p.Payload) {
		if t := sc.tcap(l); t != sc.tl {
			sc.tl, sc.remap = t, true // at a frame that references only frames of TID 0
		}
	}
	if tid <= sc.tl {
		return false
	}
	if int16(p.SequenceNumber-sc.lastIn) <= 0 {
		return true // late: its number was not taken out, a NACK for it is refused (stored)
	}
	sc.lastIn = p.SequenceNumber
	sc.seqOff--
	if pic.pidAt != 0 {
		if id := pic.pictureID(p.Payload); !sc.dropping || id != sc.dropPID {
			sc.pidOff--
			sc.dropPID, sc.dropping = id, true
		}
	}
	sc.remap = true
	return true
}

// reservePadding takes the outgoing sequence numbers for the padding a probe at bps bytes per
// second owes since the last one (by the media's clock: ts is the frame just forwarded; at most
// padBurst), after that frame's last packet, and records that they carry nothing to send again.
// Called with mu held.
func (sc *simulcast) reservePadding(bps uint64, ts uint32) (from uint16, n int) {
	since := min(uint64(ts-sc.padTS)*uint64(time.Second)/uint64(sc.clock), uint64(padSpan))
	if !sc.padded || since == 0 || ts-sc.padTS >= 1<<31 {
		since = uint64(33 * time.Millisecond) // the first padding: about one frame's worth
	}
	sc.padTS, sc.padded = ts, true
	n = min(int(bps*since/uint64(time.Second)), padBurst)
	if n <= 0 {
		return 0, 0
	}
	k := uint16((n + padMax - 1) / padMax)
	from = sc.lastSeq + 1
	sc.history[sc.nhistory%switchHistory] = segment{startOut: from, layer: -1}
	sc.nhistory++
	sc.seqOff += k
	sc.lastSeq += k
	sc.history[sc.nhistory%switchHistory] = segment{startOut: from + k, layer: int8(sc.cur.Load()), tl: sc.tl,
		seqOff: sc.seqOff, tsOff: sc.tsOff.Load(), pidOff: sc.pidOff, tl0Off: sc.tl0Off}
	sc.nhistory++
	return from, n
}

// pausedProbe sends, while the video is paused and the subscription probes its link (ccProbeGap
// over TCP, probeFeedbackStep over UDP), the padding owed since the last (congestion probeBps,
// by wall clock) after a frame of the lowest layer, continuing the outgoing sequence numbers;
// over TCP the probe ends at the first sign of a queue, as the gate's does.
func (e *layerEntry) pausedProbe(p *rtp.Packet) {
	sc, d := e.sc, e.sc.main
	if q := d.cc.probeQ.Load(); q != nil && (q.MediaDropped() != d.cc.probeBase.Load() || q.VideoWait() > ccQueueDelay) {
		d.gate.probe.Store(false) // the link has answered: it cannot take the video
		return
	}
	now := monotonicNow()
	sc.mu.Lock()
	if !sc.started {
		sc.mu.Unlock()
		return // nothing sent yet: no numbering to continue
	}
	since := min(now-d.padAt, int64(padSpan))
	if d.padAt == 0 || since <= 0 || d.cc.probeQ.Load() == nil && now-d.padAt > int64(padSpan) {
		// A probe's first padding (over UDP: its last one was the previous probe's) is about a
		// frame's worth: padSpan of it at once put 7 kB into the bed's 150 kbit/s link, whose tbf
		// holds 8, and filled its queue before the first feedback could tell.
		since = int64(33 * time.Millisecond)
	}
	d.padAt = now
	n := min(int(d.cc.probeBps.Load()*uint64(since)/uint64(time.Second)), padBurst)
	if n <= 0 {
		sc.mu.Unlock()
		return
	}
	from := sc.lastSeq + 1
	sc.history[sc.nhistory%switchHistory] = segment{startOut: from, layer: padPaused}
	sc.nhistory++
	k := uint16((n + padMax - 1) / padMax)
	sc.lastSeq += k
	e.pkt.Header = p.Header
	e.pkt.Timestamp = sc.lastTS
	sc.mu.Unlock()
	// The probe's sequence numbers, for a probe over UDP to tell its NACKs and reports
	// (probeFeedback), as the gate's pad records them.
	d.cc.padFirst.CompareAndSwap(0, uint32(from)+1)
	d.cc.padLast.Store(uint32(from+k-1) + 1)
	e.sendPadding(&e.pkt, from, n)
}

// sendPadding writes n bytes of padding-only packets as outgoing sequence numbers from on, with
// the timestamp of p, the frame just forwarded (receivers take padding-only packets as such:
// browsers' own bandwidth probes are made of them).
func (e *layerEntry) sendPadding(p *rtp.Packet, from uint16, n int) {
	d := e.sc.main
	pp := &e.pad
	pp.Header = p.Header
	pp.Marker, pp.Padding, pp.Payload = false, true, nil
	k := 0
	for ; n > 0; k++ {
		size := min(padMax, n)
		n -= size
		pp.Header.PaddingSize = byte(size)
		if !d.track.write(&e.hdr, pp, from+uint16(k), 0) {
			d.errs.Add(1)
		}
		d.bytes.Add(uint64(pp.Header.MarshalSize() + size))
		d.padB.Add(uint64(pp.Header.MarshalSize() + size))
	}
	d.padded.Add(uint64(k))
}

// switchTo makes layer l, starting at its keyframe p, the forwarded one, choosing offsets that
// continue the outgoing stream: the next sequence number, a timestamp advanced by the wall-clock
// time since the last packet sent, the next picture ID and TL0PICIDX. Called with mu held.
func (sc *simulcast) switchTo(l int32, p *rtp.Packet, pic picture, now int64) {
	if sc.started {
		sc.seqOff = sc.lastSeq + 1 - p.SequenceNumber
		ticks := uint32(1)
		if d := now - sc.lastAt; d > 0 {
			ticks = max(uint32(d*int64(sc.clock)/int64(time.Second)), 1)
		}
		sc.tsOff.Store(sc.lastTS + ticks - p.Timestamp)
		if pic.pidAt != 0 {
			if sc.hasPID {
				sc.pidOff = sc.lastPID + 1 - pic.pictureID(p.Payload)
			}
			if pic.tl0At != 0 && int(pic.tl0At) < len(p.Payload) && sc.hasTL0 {
				sc.tl0Off = sc.lastTL0 + 1 - p.Payload[pic.tl0At]
			}
		}
		sc.swaps.Add(1)
	}
	sc.startSeq = p.SequenceNumber
	sc.segIn, sc.lastIn, sc.remap, sc.dropping = p.SequenceNumber, p.SequenceNumber, false, false
	sc.tl = sc.tcap(l) // a keyframe is of TID 0
	sc.asks = 0
	if sc.shed.Load() && sc.stale.Load() {
		sc.staleBefore = p.SequenceNumber + sc.seqOff // the congestion down's switch
	}
	sc.shed.Store(false)
	sc.held.Store(false)
	if cc := sc.main.cc; cc != nil {
		cc.rearmPLI()
	}
	sc.curGen = sc.layers[l].gen.Load()
	sc.cur.Store(l)
	if l == 0 {
		sc.lowSince.Store(now)
	}
	sc.history[sc.nhistory%switchHistory] = segment{startOut: p.SequenceNumber + sc.seqOff, layer: int8(l), tl: sc.tl,
		seqOff: sc.seqOff, tsOff: sc.tsOff.Load(), pidOff: sc.pidOff, tl0Off: sc.tl0Off}
	sc.nhistory++
}

// stored copies into buf, rewritten as it was sent, the packet d sent as sequence number seq (a
// NACK), from the buffer of the layer it came from.
func (sc *simulcast) stored(seq uint16, buf []byte) (n int, at int64, ok bool) {
	sc.mu.Lock()
	var seg segment
	found := false
	for i := 1; i <= min(sc.nhistory, switchHistory); i++ {
		s := sc.history[(sc.nhistory-i)%switchHistory]
		if int16(seq-s.startOut) >= 0 {
			seg, found = s, true
			break
		}
	}
	inProbe := sc.probeFrom.Load() != 0 && int16(seq-uint16(sc.probeFrom.Load())) >= 0
	if found && seg.layer == padPaused {
		sc.pausedNacks.Add(1)
	}
	sc.mu.Unlock()
	if !found || seg.layer < 0 {
		if inProbe {
			sc.probeNacks.Add(1) // lost during the probe
		}
		return 0, 0, false
	}
	f := sc.layers[seg.layer]
	if n, at, ok = f.ring.get(seq-seg.seqOff, buf); !ok {
		// Never reached us: the publisher's uplink lost it, not the subscriber's link, whose
		// probe it says nothing of (the bed's weak publisher: the top layer's NACKs of what
		// never came, 49 for 3 packets sent, took an unshaped subscriber down "for congestion").
		sc.main.nackHoles.Add(1)
		return 0, 0, false
	}
	if inProbe {
		sc.probeNacks.Add(1)
	}
	b := buf[:n]
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], binary.BigEndian.Uint32(b[4:])+seg.tsOff)
	if off := rtpPayloadOffset(b); off > 0 {
		payload := b[off:]
		if pic, ok := parsePicture(sc.codec, payload); ok {
			if pic.tid(payload) > seg.tl {
				return 0, 0, false // a frame dropped for its temporal layer: its number went to another packet
			}
			if pic.pidAt != 0 {
				pic.setPictureID(payload, (pic.pictureID(payload)+seg.pidOff)&pic.pidMask())
			}
			if pic.tl0At != 0 && int(pic.tl0At) < len(payload) {
				payload[pic.tl0At] += seg.tl0Off
			}
		}
	}
	return n, at, true
}

// requestKeyframe asks for a keyframe of the layer d wants (or forwards); none while a switch
// down is held (downHold), whose end asks for one.
func (sc *simulcast) requestKeyframe(prompt bool) {
	if sc.held.Load() {
		return
	}
	l := sc.tgt.Load()
	if l < 0 {
		l = sc.pick(time.Now().UnixNano())
	}
	if l < 0 {
		l = int32(len(sc.layers) - 1)
	}
	sc.layers[l].requestKeyframe(prompt)
}

// Layer choice (step). Down is prompt: at a receiver report with more than ccHighLoss of loss the
// subscriber gets the highest layer under what got through (what was sent × (1 − loss)), and
// under the estimate; the current layer is kept while the estimate stays over ccPauseBelow of its
// rate (a layer's rate swings by a keyframe from one second to the next, and each switch costs a
// keyframe). Up is never on the estimate's word: a loss-based estimate only learns a link's limit
// by overrunning it, and overrunning it with a higher layer's keyframe freezes the picture for
// seconds. So the link is probed first: padding after each frame raises what the subscriber
// receives, over upRamp, to what the higher layer would be (upGain × its rate), and the layer is
// raised only if no sign of a queue came back: no more NACKs than before the probe, no more loss
// and no longer round trip in a receiver report sent after the ramp. The ramp makes a failed probe
// cheap: the link overflows only a little, just before the first NACKs end the probe. The next
// probe waits longer (upGapMin doubling to upGapMax), so a freed link gets its top layer within
// about upGapMax + upProbeMax + a keyframe. Probes alternate between the next layer up and the top
// one, so a freed link climbs in one step. The padding's own loss is the probe's answer, not the
// link's state: until upQuiet after a probe, the subscription's congestion state and the down rule
// do not read receiver reports (most of the packets a report counts were padding).
const (
	upGain      = 1.15
	upRamp      = time.Second
	upProbeMin  = 1500 * time.Millisecond
	upProbeMax  = 3 * time.Second
	upReportLag = upRamp + 200*time.Millisecond // a report this far into the probe covers its full rate
	upQuiet     = 1500 * time.Millisecond
	upGapMin    = 2 * time.Second
	upGapMax    = 4 * time.Second
	upAfterPass = time.Second           // the next probe after a passed one (the switch's keyframe first)
	upRTTRise   = 80 * time.Millisecond // a round trip this much longer than before: a queue built up
	upMinPad    = 20e3                  // bps: the least a probe pads at
	upNackDown  = 0.2                   // NACKed sequence numbers per packet sent in a second that take the layer down
	upNackPause = 0.05                  // … and that hold back the next probe
)

// With the subscriber's transport-wide feedback (delayfeedback.go) a queue shows as delay some
// hundred milliseconds before the bottleneck drops anything: a probe ends when one stands
// (upQueueRise over what stood before it), long before its NACKs would come, so a failed probe
// costs the link a short queue rather than lost packets, and probes may ramp faster and come more
// often. What the link delivered meanwhile tells how far a failed probe got: the layers it covered
// are taken. Down, a queue of downQueue standing in two feedbacks in a row takes the layer down
// to what the link delivers, before the loss that a receiver report would show a second later.
// The ramp of such a probe is geometric, upGrowDelay per 100 ms from the current layer's rate:
// past the link's rate the queue grows by at most a fifth of the time sent, so it is seen at
// upQueueRise, two feedbacks later, well before the bottleneck's queue (200 ms in the bed)
// overflows, whatever the distance to the target.
const (
	upGrowDelay = 1.2
	// A probe judged by delay passes when the link delivered upPassGain × the target's peak over
	// upPassSpan or more of arrival time from its full rate on (the gaps between spans included),
	// a queue not standing: not on one 200 ms span's rate (a receiver's jitter or a token
	// bucket's burst made one span of the bed's 300 kbit/s link read 308 kbit/s of video, and the
	// probe took 270p with no margin), and never on a receiver report alone (at 600 kbit/s one
	// passed on a clean report while the link delivered 287 kbit/s, and 540p froze 3.1 s). More
	// than upGain's share of it: the probe sends upGain × the peak, and a link that carries only
	// the peak leaves its keyframes none. Two spans' worth: 600 ms cost the bed's freed link half
	// a second of its climb.
	upPassGain    = 1.05
	upPassSpan    = 400 * time.Millisecond
	upQueueRise   = 50 * time.Millisecond
	upGapMinDelay = time.Second
	upGapMaxDelay = 2 * time.Second
	downQueue     = 100 * time.Millisecond
	// After a failed probe (or a layer down) the link's ceiling is known: what it delivered at its
	// limit. The next probe pads only up to upCeilGain × that, a short queue where a probe for
	// the top built one of 100-180 ms (the bed at 300 kbit/s: each failed probe for 540p cost the
	// 270p or 135p picture a freeze). If a span closed upLiftDelay after it got there was sent at
	// upLift × the ceiling or more and the link kept up with it, the link has more room now: what
	// it delivered is the ceiling, and the probe ramps on to upLiftGain × that, then upLiftGain²
	// × the next, and so on up to its target (a freed link gets its top layer within seconds);
	// otherwise it ends.
	upCeilGain  = 1.2
	upLift      = 1.1
	upLiftGain  = 1.4
	upLiftDelay = 200 * time.Millisecond
	upLiftWait  = time.Second // after the padding got there, a span the link kept up with lifts it even if sent under upLift
	// upLiftsStale: lifts after which the ceiling no longer holds the probe back.
	upLiftsStale = 2
	// upTakeGain is the margin a layer below a failed probe's target needs under what the link
	// delivered at its limit: more than upGain, since that layer's keyframes will meet a full
	// link's queue (in the bed, a 270p keyframe is more than a 300 kbit/s link's 200 ms of queue).
	upTakeGain = 1.35
	// upTopGain is that margin for the top layer, over its mean rate (meanRate), not its peak:
	// once there, no probe tests the link above it, so its packets meet no probe's queue, only
	// its own swings (the bed at 600 kbit/s: a 540p layer of 450-530 kbit/s on a link that
	// delivered 470-560 of video was never taken on 1.05 × its peak nor 1.35 × it, yet kept
	// once held with 0-0.26 s frozen). The keep rule (step) lets it go when the link, full,
	// delivers less than its last second's rate: a narrower bar, so a layer taken is not
	// given back at its next swing.
	upTopGain = 1.05
	// upLossySlack: a probe on a path that loses at random ends on NACKs, or is judged by what the
	// link was offered rather than what it delivered, only while its packets are lost at no more
	// than this over the share lost before it (lossBase): more is the probe's own overflow (a
	// policer that drops without queueing), not the path's radio.
	upLossySlack = 0.1
	upLossyNacks = 5 // NACKs a lossy probe may see over its share (a burst of random loss)
	// lossyFor: a path that lost at random counts as lossy for this long after the last tick
	// that saw it do so (a second of 15 % random loss can count no loss at all).
	lossyFor = 5 * time.Second
	// lowCongested is how long after the layer choice last saw congestion the subscription may
	// pause the lowest layer (atLowest): the unshaped subscribers of the bed, new on the lowest
	// layer, were paused for 3 s at join on an estimate that had seen only a part of a second.
	lowCongested = 5 * time.Second
	// downSettle: after the layer went down for congestion, receiver reports, NACKs and the
	// transport-wide spans describe the old layer for about a second (a report covers the second
	// before it; a span after the shed measures the link idle while the new layer's keyframe is
	// awaited): nothing takes it further down for this long. The bed's squeeze went 540p -> 270p
	// after 0.66 s, and 0.3 s later on to 135p on a span that "delivered" 105 kbit/s of a 300
	// kbit/s link, the 135p keyframe queued behind the 270p one.
	downSettle = time.Second
	// downHoldLead and downHoldMax bound the hold of a switch down (downHold). The lead: a
	// keyframe reaches us some 30-100 ms after it is asked for, and by then the queue has room
	// for it; it still waits behind what is left, so holding longer only delays it (the bed,
	// holding until 100 ms were left: the first 135p frame 0.45-0.49 s after the down, against
	// 0.32-0.40 unheld).
	downHoldLead = 200 * time.Millisecond
	downHoldMax  = 500 * time.Millisecond
	// stepSlack: step runs every 100 ms; a hold ending within this of a step ends at it.
	stepSlack = 50 * time.Millisecond
	// downStale: after a congestion down, NACKs for what was sent before the new layer's keyframe
	// are refused for this long (then such packets are too old to be sent again anyway).
	downStale = 2 * time.Second
)

// startLow makes a new subscriber's video start on the lowest layer, whose keyframe any link
// carries, and its first probe aim at the top at once: a new subscriber on the top layer of a
// weak link saw nothing for its first 3-4 s (the top layer's loss shows only in the next
// receiver report, then a keyframe of a lower layer is needed), and a probe judged by delay
// reaches the top of a free link in about a second.
func (sc *simulcast) startLow() {
	sc.fitMax.Store(0)
	sc.up.toTop = true
}

// step runs the layer choice of a subscriber's simulcast video every 100 ms on the sender-report
// goroutine: rates once a second, the receiver reports as they come. est is the subscription's
// estimate (bps, 0 unknown), cap its videoMaxSendBandwidth (bps, 0 none).
func (sc *simulcast) step(now time.Time, est, cap float64) {
	d, cc := sc.main, sc.main.cc
	sc.releaseHold(now)
	measured := sc.fitAt.IsZero() || now.Sub(sc.fitAt) >= time.Second
	if measured {
		sc.measure(now)
		sc.measureQueue()
	}
	if f := sc.fit(); sc.skipped(f) {
		// The layer sends no frames of TID 2 (its every frame is no more), or too few of
		// TID ≤ 1: its full rate if the rung above did not carry much more, else the rung below.
		if sc.rate[f] >= 0.95*sc.rate[f+1] {
			sc.setFit(f + 1)
		} else {
			sc.setFit(f - 1)
		}
	}
	if cap > 0 {
		// The connection's cap picks the layer: no probing above it.
		l := sc.fit()
		for l > 0 && sc.rate[l] > cap {
			l--
		}
		sc.setFit(l)
	}
	top := sc.topSending(now.UnixNano(), cap)
	cur := min(sc.fit(), top)
	fresh := false
	if rep := cc.reportAt.Load(); rep != 0 && rep != sc.lastRep && now.Sub(time.Unix(0, rep)) < ccReportMaxAge {
		sc.lastRep, sc.lastLoss, fresh = rep, float64(cc.fraction.Load())/256, true
	}
	if cc.pause.Load() || top < 0 {
		sc.endProbe(now, false, "paused")
		sc.fitMax.Store(0) // video resumes on the lowest layer, and probes its way up
		if sc.q != nil {
			// Over TCP not before its keyframe has been forwarded (resumeSwaps; upAfterPass at
			// the latest): the probe pads after the frames of the layer forwarded. Then for the
			// top at once: one that falls short takes the layer the link carried, so a freed
			// link is not climbed a probe a layer.
			sc.up.next = now.Add(upAfterPass)
			sc.up.toTop = true
			sc.up.resumed, sc.up.resumeSwaps = true, sc.swaps.Load()
		}
		return
	}

	// Down: what the link carries, when it says so: loss now, or an estimate cut by congestion
	// lately (the estimate of a clean link only trails what it was sent).
	sig := sc.tcc.signal(now)
	// With transport-wide feedback, what the link delivered over the last second is a floor of
	// what it carries, whatever the loss or an estimate cut on the congestion state's own signals
	// say (a browser short of CPU drops what its socket cannot hold and reports long round
	// trips: the bed's unshaped subscribers at load 18 were cut to 151 kbit/s on a link that had
	// just delivered 511).
	floor := 0.0
	if sig.ok && now.Sub(sig.rateAt) < tccFresh {
		floor = sig.recentRate
	}
	// The estimate cut lately counts only without fresh transport-wide feedback or with a queue
	// standing in it: the feedback says better what the link carries (a loss-cut estimate took
	// the bed's subscriber down 270p -> 135p 2 s after its link was freed).
	// A path that loses at random (the congestion state found its loss with no queue behind it:
	// a round trip at its least, no standing queue in the transport-wide feedback) says nothing
	// of its room by its loss or NACKs, which are repaired (rtxRepairMax): a link losing 15 % at
	// random kept the bed's subscriber on 135p for good (every probe held back by the NACKs, the
	// reports read as the link's limit), where kurento mode showed it 540p. Only the queue and
	// what the link delivered speak for it.
	lossy := sc.lossyPath(now, sig)
	avail := 0.0
	if now.Before(cc.holdUntil) && (!sig.ok || now.Sub(sig.rateAt) >= tccFresh || sig.standing(downQueue)) {
		avail = max(est, floor)
	}
	// Over TCP the receiver's loss and NACKs are what the send queue dropped, a probe's padding
	// included: they count only when the queue dropped media (tcpprobe.go).
	linkLoss := sc.q == nil || sc.qDropped
	if fresh && sc.lastLoss > ccHighLoss && sc.sentRate > 0 && !sc.quiet(now) && linkLoss && !lossy {
		got := max(sc.sentRate*(1-sc.lastLoss), floor)
		if avail <= 0 || got < avail {
			avail = got
		}
	}
	// NACKs say it sooner than the next receiver report: Chrome asks for what it misses within a
	// round trip. (They count repeats too, hence the higher bar.) With transport-wide feedback
	// the link says what it delivered: NACKs for packets the publisher never sent us, or a
	// receiver starved of CPU asking again and again, are no reason to go down (the bed took
	// unshaped subscribers down to "100 kbit/s" of a link that delivered 1.2 Mbit/s).
	// A subscriber that sends transport-wide feedback but sent none lately is not running (a
	// browser starved of CPU): its NACKs, sent when it runs again, are for packets it may well
	// have, and say nothing of its link.
	stalled := sc.hasFeedback() && !sig.ok
	if measured && sc.nackRatio > upNackDown && sc.sentRate > 0 && !sc.quiet(now) && !stalled && linkLoss && !lossy {
		// What it delivered over the last second, not in its latest span: a receiver short of
		// CPU takes its packets in slowly, then in a burst.
		got := max(sc.sentRate*(1-min(sc.nackRatio, 0.9)), floor)
		if avail <= 0 || got < avail {
			avail = got
		}
	}
	// A standing queue at a link that delivers less than it was sent says it sooner still
	// (transport-wide feedback): the link carries what it delivered, over the run of spans it fell
	// behind in or in the latest span, whichever is less: the run's first span may be half before
	// the squeeze, and a saturated bottleneck has no idle tokens to burst with.
	full := false // the link delivers less than it is sent, with a queue standing
	if sig.bottleneck(downQueue) && now.Sub(sig.rateAt) < tccFresh && !sc.quiet(now) {
		full = true
		if got := min(sig.runRate, sig.rate); avail <= 0 || got < avail {
			avail = got
		}
	}
	if avail > 0 || sc.qDropped {
		sc.congestedAt.Store(now.UnixNano())
	}
	if avail > 0 && now.Sub(sc.downAt) < downSettle {
		avail = 0 // what says so now may still be the old layer's
	}
	if avail > 0 {
		l := cur
		for ; l > 0; l-- {
			// The current layer is kept while it is not clearly over (its rate swings by a
			// keyframe from one second to the next); a lower one is taken only with the margin
			// of one taken on a failed probe (upTakeGain), since its keyframe meets the same full
			// queue: a squeezed 300 kbit/s link went 540p -> 270p -> 135p, frozen 3.6 s on the
			// 270p layer (210 kbit/s under the 251 the link had delivered).
			// Both on the most the layer sent lately (peakRate): the bed's squeeze took 270p on a
			// second it sent 190 kbit/s, and the 300 kbit/s link froze 3.3 s when it was back at
			// 268. And a link seen full keeps the current layer only if it delivers all of it: a
			// 268 kbit/s layer stayed 7 s on a link delivering 230 of video, its queue standing.
			need := sc.peakRate(l) * upTakeGain
			if l == cur {
				need = sc.rate[l] * ccPauseBelow
				if full {
					need = sc.rate[l]
				}
			} else if sc.skipped(l) {
				continue
			}
			if need <= avail {
				break
			}
		}
		if l < cur {
			sc.downAt = now
			sc.congestedDown(l, cur, now, sc.downHold(sig))
			if sig.ok {
				sc.ceil = avail
			}
			sc.endProbe(now, false, "loss")
			sc.up.next = now.Add(max(sc.up.gap, upGapMin))
			if log := sc.log; log != nil {
				log.Info("simulcast: layer down", "from", cur, "to", l, "layer", sc.ladder[l].s, "tl", sc.ladder[l].t, "avail_kbps", int(avail/1000), "loss_pct", int(sc.lastLoss*100), "rate_kbps", int(sc.rate[cur]/1000),
					"queue_ms", sig.queue.Milliseconds(), "delivered_kbps", int(sig.rate/1000), "sent_kbps", int(sig.sentRate/1000),
					"slow_ms", sig.slowFor.Milliseconds(), "span_loss", sig.spanLoss, "run_kbps", int(sig.runRate/1000), "recent_kbps", int(sig.recentRate/1000), "est_kbps", int(est/1000), "nack_ratio", sc.nackRatio, "lossy", lossy,
					"ceil_kbps", int(sc.ceil/1000))
			}
			return
		}
	}

	// Up: probe first.
	if sc.up.running {
		sc.checkProbe(now, fresh, sig)
		return
	}
	// Not while the feedback has stopped: the probe would be judged by receiver reports alone,
	// which see its queue only once the bottleneck drops (the bed: a probe passed on a report
	// with 171 ms queued, and the layer it gave lost 29 % a few seconds later).
	// Nor while the link still loses what it was sent (NACKs; the last probe's padding included):
	// probing a link that has not drained its queue overruns it.
	busy := sc.lastLoss > ccHighLoss || sig.ok && sig.queue > upQueueRise || sc.nackRatio > upNackPause
	if sc.q != nil {
		busy = sc.qDropped // the others count the last probe's padding over TCP
	} else if lossy {
		busy = false // its queue is short (lossyPath), and its NACKs count repeats and padding: 0.49 a packet at 15 % lost
	}
	if sc.up.resumed && sc.swaps.Load() != sc.up.resumeSwaps {
		// The video resumed over TCP and its keyframe went out: the probe need not wait out
		// upAfterPass (the bed's freed TCP links showed 540p 1.8 s after the video resumed, a
		// second of it this wait). Padding never goes in front of media in the send queue, so
		// the keyframe's burst costs a link too narrow for the probe only that probe.
		sc.up.resumed, sc.up.next = false, now
	}
	if cur >= top || now.Before(sc.up.next) || sc.cur.Load() != sc.tgt.Load() || busy || stalled {
		return
	}
	target := cur + 1
	if sc.up.toTop || sig.ok && sc.q == nil {
		// Judged by delay a probe for the top ends at the link's limit having measured it, and
		// takes the layers under that: one probe, not one a layer, after a link is freed.
		target = top
	}
	for target > cur+1 && sc.rate[target] <= 0 {
		target--
	}
	for target < top && sc.skipped(target) {
		target++
	}
	if sc.rate[target] <= 0 || sc.rate[cur] <= 0 {
		return
	}
	sc.mu.Lock()
	sc.probeFrom.Store(uint32(sc.lastSeq+1) + 1)
	sc.mu.Unlock()
	pad := max(upGain*sc.peakRate(target)-sc.rate[cur], upMinPad)
	sc.up = upProbe{running: true, start: now, target: target, gap: sc.up.gap, toTop: sc.up.toTop, nacks: sc.probeNacks.Load(), pkts: d.sent.Load() + d.padded.Load(),
		baseLoss: sc.lastLoss, baseNack: sc.nackRatio, baseRTT: time.Duration(cc.rtt.Load()), probes: sc.up.probes + 1, passed: sc.up.passed,
		pad: pad, fullPad: pad, delay: sig.ok, baseQ: max(sig.queue, 0), from: sc.rate[cur], rampAt: now, rampFrom: sc.rate[cur],
		lossy: lossy, lossBase: min(max(sc.nackRatio, cc.randomLoss), ccCongestedLoss), top: top}
	if sc.q != nil {
		sc.startQueueProbe(now) // over TCP: judged by the send queue
		return
	}
	if sc.ceil > 0 {
		// Never under what the link carries now: a receiver short of CPU made one probe read a
		// 38 kbit/s ceiling under a 107 kbit/s layer.
		sc.ceil = max(sc.ceil, sc.rate[cur])
	}
	if c := max(upCeilGain*sc.ceil-sc.rate[cur], upMinPad); sig.ok && sc.ceil > 0 && c < pad {
		sc.up.pad, sc.up.capped = c, true // a link that failed a probe lately: a little above what it carried
	}
	sc.ramp(now)
}

// ramp sets the padding of the running probe for now: rising to its full rate over upRamp.
func (sc *simulcast) ramp(now time.Time) {
	if sc.up.delay {
		steps := float64(now.Sub(sc.up.rampAt)+100*time.Millisecond) / float64(100*time.Millisecond)
		pad := min(max(sc.up.rampFrom*math.Pow(upGrowDelay, steps)-sc.up.from, upMinPad), sc.up.pad)
		if pad >= sc.up.pad && sc.up.full.IsZero() {
			sc.up.full = now
		}
		sc.probeBps.Store(uint64(pad / 8))
		return
	}
	share := min(float64(now.Sub(sc.up.start)+100*time.Millisecond)/float64(upRamp), 1)
	sc.probeBps.Store(uint64(sc.up.pad * share / 8))
}

// quiet reports whether receiver reports may still count a probe's padding (see upQuiet).
func (sc *simulcast) quiet(now time.Time) bool {
	return sc.up.running || now.Before(sc.up.quietUntil)
}

// checkProbe ends a running probe when the link answered it, or its time is up.
func (sc *simulcast) checkProbe(now time.Time, fresh bool, sig delaySignal) {
	if sc.up.queue || sc.q != nil {
		if sc.q == nil || !sc.up.queue {
			// The path changed under the probe: a probe begun before its TCP path was known
			// passed on a report while the send queue held 400 ms (the bed's ICE-TCP join).
			sc.endProbe(now, false, "path changed")
		} else {
			sc.checkQueueProbe(now)
		}
		return
	}
	d, cc := sc.main, sc.main.cc
	ran := now.Sub(sc.up.start)
	nacks, pkts := sc.probeNacks.Load()-sc.up.nacks, d.sent.Load()+d.padded.Load()-sc.up.pkts
	got, need := 0.0, upPassGain*sc.peakRate(sc.up.target)
	if sc.up.delay && !sc.up.capped {
		got = sc.probeDelivered(sig)
	}
	nackBar, nackSlack := min(sc.up.baseNack, 0.1)+0.01, 1.0
	if sc.up.lossy {
		// A few packets lost at random in a row are no overflow: 7 of a probe's first 23 at 15 %.
		nackBar, nackSlack = sc.up.lossBase+upLossySlack, upLossyNacks
	}
	switch {
	case float64(nacks) > nackSlack+float64(pkts)*nackBar:
		sc.endProbe(now, false, "nacks")
	case sc.up.delay && sig.standing(sc.up.baseQ+upQueueRise):
		// A queue builds: the link is full. What it delivered meanwhile may still carry a layer
		// between the current one and the target.
		if l := sc.deliveredLayer(sig, now); l > sc.fit() {
			sc.up.target = l
			sc.endProbe(now, true, "queue")
			return
		}
		sc.endProbe(now, false, "delay")
	case sc.up.capped && !sc.up.full.IsZero() && sig.ok && now.Sub(sig.rateAt) < tccFresh && sig.rateAt.After(sc.up.full.Add(upLiftDelay)) &&
		(sig.rate >= upLift*sc.ceil || sig.sentRate >= upLift*sc.ceil || now.Sub(sc.up.full) > upLiftWait):
		// A span delivered or sent over the ceiling, or the padding has run a while: did the
		// link carry more than its ceiling? Delivered upLift × it, or all but a twentieth of a
		// span sent over it (the layer may send less than its last second's rate: a freed link
		// delivered 560 kbit/s against a ceiling of 509 and failed). Not against the span's
		// send rate alone: padding goes out in bursts after frames, and a receiver short of CPU
		// stamps its arrivals late, so a free link's span can read "slower than sent".
		if rate := sc.offered(sig.rate); rate < upLift*sc.ceil && (sig.sentRate <= sc.ceil || rate < 0.95*sig.sentRate) {
			sc.endProbe(now, false, "ceiling") // the link still carries what it did
			return
		}
		// The link carries more than when it last failed a probe: that is its ceiling now, and
		// the probe ramps on to upLiftGain × it (or its target). Step by step, not at once: a
		// ceiling read low (a receiver short of CPU stamps its arrivals late) let the next step
		// overrun the bed's link by 2.5× until its NACKs ended it.
		if log := sc.log; log != nil {
			log.Debug("simulcast: probe past the ceiling", "ceil_kbps", int(sc.ceil/1000), "delivered_kbps", int(sig.rate/1000), "target", sc.up.target)
		}
		sc.ceil = max(sc.offered(sig.rate), sc.ceil)
		sc.up.lifts++
		sc.up.rampFrom, sc.up.rampAt = sc.up.from+sc.up.pad, now
		sc.up.full, sc.up.start, sc.up.rxSet = time.Time{}, now, false
		// What was lost before the link showed more room is no answer to the padding from here
		// on: the NACKs of packets the bed's tbf dropped just before it freed the link ended a
		// lifted probe 100 ms later, and the top layer came 2 s after that.
		sc.mu.Lock()
		sc.probeFrom.Store(uint32(sc.lastSeq+1) + 1)
		sc.mu.Unlock()
		sc.up.nacks, sc.up.pkts = sc.probeNacks.Load(), d.sent.Load()+d.padded.Load()
		sc.up.pad = max(math.Pow(upLiftGain, float64(sc.up.lifts))*sc.ceil-sc.up.from, upMinPad)
		if sc.up.pad >= sc.up.fullPad || sc.up.lifts >= upLiftsStale {
			// Carried past its ceiling upLiftsStale times in a row, the link is not the one
			// the ceiling was read on (a freed link): the probe ramps on to its target as one
			// with no ceiling does, judged by the queue it builds, without a wait at each
			// further step (modelled, a 300 kbit/s link freed took 2.8 s of probe to reach a
			// 1.5 Mbit/s top layer, 2.5 s without).
			sc.up.pad, sc.up.capped = sc.up.fullPad, false
		}
		sc.ramp(now)
	case sc.up.delay && !sc.up.capped && got >= need:
		sc.endProbe(now, true, "")
	case fresh && ran >= upReportLag && (!sc.up.lossy && sc.lastLoss > max(ccLowLoss, sc.up.baseLoss+0.02) ||
		sc.up.baseRTT > 0 && time.Duration(cc.rtt.Load()) > sc.up.baseRTT+upRTTRise):
		sc.endProbe(now, false, "report")
	case sc.up.delay && !sig.ok:
		sc.endProbe(now, false, "no feedback") // the receiver stalled: nothing tells the queue
	case fresh && ran >= upProbeMin && !sc.up.capped && !sc.up.delay:
		// Without transport-wide feedback a clean report is all there is.
		sc.endProbe(now, true, "")
	case ran >= upProbeMax && sc.up.delay:
		// The link never delivered the target with its margin, nor showed a queue: the padding
		// did not all go out (a publisher short of CPU sends few frames to pad after).
		sc.endProbe(now, false, "not delivered")
	case ran >= upProbeMax:
		sc.endProbe(now, false, "no report")
	case got > 0 && !sc.up.topped && sig.queue < sc.up.baseQ+upQueueRise/2:
		// The link kept up but was sent too little to show the target: the current layer sends
		// under the rate the padding was sized on (a loaded publisher's swings), or the target's
		// peak is its own. The padding makes up the shortfall once and the link is measured
		// again: an unshaped subscriber's probe ran its 3 s sending 20 kbit/s of padding over a
		// 270p layer that sent less than its 540p needed.
		sc.up.topped, sc.up.rxSet = true, false
		sc.up.pad = min(sc.up.pad+upGain*sc.peakRate(sc.up.target)-got, sc.up.pad+sc.peakRate(sc.up.target))
		sc.ramp(now)
	default:
		sc.ramp(now)
		if sc.up.delay && !sc.up.capped {
			sc.probeDelivered(sig) // from the step the padding got to its full rate
		}
	}
}

// probeDelivered returns the bps the link delivered from the first step after the running
// probe's padding reached its full rate to the latest feedback, by the subscriber's arrival
// clock, once that covers upPassSpan; 0 before, or without fresh feedback.
func (sc *simulcast) probeDelivered(sig delaySignal) float64 {
	if !sig.ok || sc.up.full.IsZero() {
		return 0
	}
	if !sc.up.rxSet {
		sc.up.rxBytes, sc.up.rxAt, sc.up.lostBytes, sc.up.rxSet = sig.rxBytes, sig.rxAt, sig.lostBytes, true
		return 0
	}
	span := time.Duration(sig.rxAt - sc.up.rxAt)
	if span < 0 || sig.rxBytes < sc.up.rxBytes || sig.lostBytes < sc.up.lostBytes {
		// The subscriber's clock jumped (or a new feedback state): measure from here.
		sc.up.rxBytes, sc.up.rxAt, sc.up.lostBytes = sig.rxBytes, sig.rxAt, sig.lostBytes
		return 0
	}
	if span < upPassSpan {
		return 0
	}
	rx := float64(sig.rxBytes - sc.up.rxBytes)
	if lost := float64(sig.lostBytes - sc.up.lostBytes); sc.up.lossy && lost > 0 && lost/(rx+lost) <= sc.up.lossBase+upLossySlack {
		// On a path that loses at random, what the link was offered and let through but for
		// its usual loss: that loss is repaired, and the room is what a layer needs.
		rx += lost
	}
	sc.up.got = rx * 8 / span.Seconds()
	return sc.up.got
}

// probeLinkRate is what the link delivered at its limit during the probe (linkRate), as offered
// on a lossy path: there every span delivers less than it was sent, so the run of slower spans
// reaches back before the probe and reads what the link was sent then (the model at 1 Mbit/s
// with a seventh lost: 418 kbit/s where it delivered 960); the spans of the last second instead.
func (sc *simulcast) probeLinkRate(sig delaySignal) float64 {
	if sc.up.lossy {
		return sc.offered(min(sig.rate, sig.recentRate))
	}
	return linkRate(sig)
}

// offered returns what a link that delivered r bps was offered and let through, but for its
// random loss when the probe is on a lossy path (lossBase of what it is sent never arrives,
// whatever the rate): the link's room, as a layer needs it.
func (sc *simulcast) offered(r float64) float64 {
	if sc.up.lossy {
		return r / (1 - sc.up.lossBase)
	}
	return r
}

// lossyPath reports whether the subscriber's UDP path loses at random: the congestion state's
// ticks saw it lose with no queue behind it lately and none since with a queue (randomLately),
// and the transport-wide feedback, fresh, shows no queue now.
func (sc *simulcast) lossyPath(now time.Time, sig delaySignal) bool {
	return sc.q == nil && sig.ok && sig.queue < upQueueRise && sc.main.cc.randomLately(now)
}

// deliveredLayer returns the highest layer up to the probe's target whose rate (its peak lately),
// with upTakeGain's margin, fits what the link delivered at its limit during the probe
// (linkRate), the top layer's mean with upTopGain's; -1 if none does.
func (sc *simulcast) deliveredLayer(sig delaySignal, now time.Time) int32 {
	if !sig.ok || now.Sub(sig.rateAt) >= tccFresh || !sig.rateAt.After(sc.up.start) {
		return -1
	}
	got := sc.probeLinkRate(sig)
	for l := sc.up.target; l >= 0; l-- {
		if sc.rate[l] <= 0 || sc.skipped(l) {
			continue
		}
		if upTakeGain*sc.peakRate(l) <= got || l == sc.up.top && upTopGain*sc.meanRate(l) <= got {
			return l
		}
	}
	return -1
}

// linkRate is what the link delivered at its limit: over the run of spans it fell behind in, or,
// with none, over the last second's spans together. Never one span's: a token bucket's burst
// made one 200 ms span of the bed's 300 kbit/s link read 313 kbit/s of video alone, and a probe
// took the 480x270 layer (200-270 kbit/s) it could not carry beside the audio.
func linkRate(sig delaySignal) float64 {
	if sig.slowFor > 0 && sig.runRate > 0 {
		return sig.runRate
	}
	return min(sig.rate, sig.recentRate)
}

// endProbe stops a running probe; passed raises the layer to its target. why: what ended it
// (for a passed probe, on what it took the layer, for logs).
func (sc *simulcast) endProbe(now time.Time, passed bool, why string) {
	if !sc.up.running {
		return
	}
	sc.up.running = false
	sc.probeFrom.Store(0)
	sc.up.quietUntil = now.Add(upQuiet)
	sc.probeBps.Store(0)
	sc.up.toTop = !sc.up.toTop
	if passed {
		sc.up.passed++
		sc.up.gap = 0
		sc.ceil = 0
		sc.up.next = now.Add(upAfterPass)
		sc.setFit(sc.up.target)
		// The estimate takes what the probe showed the link carries, or the loss-based state,
		// having seen the lower layer only, would soon take the new one for too much.
		if cc := sc.main.cc; cc.est > 0 {
			cc.est = max(cc.est, upGain*sc.rate[sc.up.target])
		}
		if log := sc.log; log != nil {
			sig := sc.tcc.signal(now)
			log.Info("simulcast: probe passed, layer up", "at", why, "link_kbps", int(sc.probeLinkRate(sig)/1000), "mean_kbps", int(sc.meanRate(sc.up.target)/1000), "to", sc.up.target, "lossy", sc.up.lossy, "layer", sc.ladder[sc.up.target].s, "tl", sc.ladder[sc.up.target].t, "rate_kbps", int(sc.rate[sc.up.target]/1000), "pad_kbps", int(sc.up.pad/1000),
				"delay", sc.up.delay, "queue_ms", sig.queue.Milliseconds(), "delivered_kbps", int(sig.rate/1000),
				"loss_pct", int(sc.lastLoss*100), "rtt_ms", time.Duration(sc.main.cc.rtt.Load()).Milliseconds(), "base_rtt_ms", sc.up.baseRTT.Milliseconds(),
				"nacks", sc.probeNacks.Load()-sc.up.nacks, "pkts", sc.main.sent.Load()+sc.main.padded.Load()-sc.up.pkts, "padded", sc.main.padded.Load(), "ran_ms", now.Sub(sc.up.start).Milliseconds())
		}
		return
	}
	if sig := sc.tcc.signal(now); sc.up.delay && (why == "delay" || why == "nacks" || why == "report") &&
		sig.ok && now.Sub(sig.rateAt) < tccFresh && sig.slowFor > 0 && sig.runRate > 0 {
		// What the link carried at its limit, the spans it fell behind in: the next probes stop
		// a little above it. (A probe that ended without the link falling behind says nothing.)
		if sc.up.lossy {
			sc.ceil = sc.probeLinkRate(sig)
		} else {
			sc.ceil = min(sig.runRate, sig.rate)
		}
	}
	lo, hi := upGapMin, upGapMax
	if (sc.up.delay || sc.up.queue) && why != "no report" {
		// Judged by delay (NACKs end one only after a queue it did not see in time): it cost the
		// link a short queue. A 4 s wait after such a probe's NACKs, just as the bed freed the
		// link, kept its top layer away 9.4 s.
		lo, hi = upGapMinDelay, upGapMaxDelay
	}
	sc.up.gap = min(max(2*sc.up.gap, lo), hi)
	sc.up.next = now.Add(sc.up.gap)
	sc.up.lastReason = why
	if log := sc.log; log != nil && why != "paused" && why != "loss" {
		sig := sc.tcc.signal(now)
		log.Debug("simulcast: probe failed", "target", sc.up.target, "why", why, "lossy", sc.up.lossy, "loss_base", sc.up.lossBase, "pad_kbps", int(sc.up.pad/1000), "capped", sc.up.capped, "ceil_kbps", int(sc.ceil/1000),
			"from_kbps", int(sc.up.from/1000), "target_kbps", int(sc.rate[sc.up.target]/1000), "target_peak_kbps", int(sc.peakRate(sc.up.target)/1000),
			"link_kbps", int(linkRate(sig)/1000), "recent_kbps", int(sig.recentRate/1000), "got_kbps", int(sc.up.got/1000),
			"queue_ms", sig.queue.Milliseconds(), "delivered_kbps", int(sig.rate/1000),
			"loss_pct", int(sc.lastLoss*100), "rtt_ms", time.Duration(sc.main.cc.rtt.Load()).Milliseconds(), "base_rtt_ms", sc.up.baseRTT.Milliseconds(),
			"nacks", sc.probeNacks.Load()-sc.up.nacks, "pkts", sc.main.sent.Load()+sc.main.padded.Load()-sc.up.pkts, "padded", sc.main.padded.Load(), "ran_ms", now.Sub(sc.up.start).Milliseconds())
	}
}

// congestedDown moves the subscriber down from rung cur to rung l because its link cannot carry
// the current one: when that is a lower layer, what is left of the current one is no longer
// forwarded while the new layer's keyframe is awaited (shed); a lower rung of the same layer
// takes effect at its next frame of TID 0.
func (sc *simulcast) congestedDown(l, cur int32, now time.Time, hold time.Duration) {
	if sc.ladder[l].s < sc.ladder[cur].s {
		if hold > 0 {
			sc.holdUntil = now.Add(hold)
			sc.held.Store(true) // before setFit: the forwarders must not ask first
		}
		sc.mu.Lock()
		sc.staleBefore = sc.lastSeq + 1
		sc.mu.Unlock()
		sc.stale.Store(true)
		sc.shed.Store(true)
	}
	sc.setFit(l)
}

// downHold is how long the switch of a congestion down to a lower layer is held (congestedDown):
// the queue the transport-wide feedback showed at the link (queue), less downHoldLead, up to
// downHoldMax; 0 without that feedback or over TCP (its send queue is ours, and drops whole
// frames). The down sheds the old layer at once, but what it sent already fills the bottleneck's
// queue; a keyframe asked for at once reached us 30-100 ms later, into that full queue, and lost
// its packets there (the bed's squeeze of a 300 kbit/s link: 300 ms of queue, the 135p keyframe
// lost and the picture frozen 1.3-4 s). Asked for downHoldLead before the queue has drained, the
// keyframe finds room in it and arrives whole about when it would have behind the full queue.
func (sc *simulcast) downHold(sig delaySignal) time.Duration {
	if !sig.ok || sc.q != nil {
		return 0
	}
	return min(sig.queue-downHoldLead, downHoldMax)
}

// releaseHold ends a held switch down (congestedDown) once its time has come, asking for the
// keyframe the switch waits for; and forgets the stale sequence numbers of a down long past.
// On the step goroutine.
func (sc *simulcast) releaseHold(now time.Time) {
	if sc.held.Load() && !now.Add(stepSlack).Before(sc.holdUntil) {
		sc.held.Store(false)
		if t := sc.tgt.Load(); t >= 0 && t != sc.cur.Load() {
			sc.layers[t].requestKeyframe(true)
			if log := sc.log; log != nil && log.Enabled(context.Background(), slog.LevelDebug) {
				log.Debug("simulcast: switch down's keyframe asked for", "layer", t, "held_ms", now.Sub(sc.downAt).Milliseconds())
			}
		}
	}
	if sc.stale.Load() && now.Sub(sc.downAt) >= downStale {
		sc.stale.Store(false)
	}
}

// superseded reports whether outgoing sequence number seq was sent before the keyframe of a
// congestion down's new layer (stale): not to be sent again.
func (sc *simulcast) superseded(seq uint16) bool {
	if !sc.stale.Load() {
		return false
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.stale.Load() && int16(seq-sc.staleBefore) < 0
}

// atLowest reports whether the lowest layer has been forwarded for a second or more (or nothing
// is), the link showed congestion lately (lowCongested) and, with transport-wide feedback, it
// delivers less than the lowest layer with a margin: only then may the subscription's
// congestion state pause the video, since a higher layer's overrun of the link says nothing of
// whether the lowest fits, and a new subscriber starts on the lowest layer (startLow) before its
// estimate has seen a full second of it.
func (sc *simulcast) atLowest(now time.Time) bool {
	if sc.fitMax.Load() > 0 {
		return false
	}
	if at := sc.congestedAt.Load(); at == 0 || now.UnixNano()-at > int64(lowCongested) {
		return false
	}
	// Nor while the transport-wide feedback shows the link delivering all of the lowest layer
	// without a standing queue: the congestion state's estimate, cut by a failed probe's loss or
	// a receiver short of CPU, paused the bed's 300 kbit/s subscriber twice for 2-4 s on a link
	// that had just delivered 250 kbit/s of video under a 130 kbit/s lowest layer.
	// Over TCP, a queue that dropped media says the lowest layer does not fit, whatever got through.
	if sig := sc.tcc.signal(now); !sc.qDropped && sig.ok && now.Sub(sig.rateAt) < tccFresh && sc.rate[0] > 0 &&
		sig.recentRate >= tccSlower*sc.rate[0] && !sig.standing(downQueue) {
		return false
	}
	cur := sc.cur.Load()
	return cur < 0 || cur == 0 && now.UnixNano()-sc.lowSince.Load() >= int64(time.Second)
}

// lowShort reports whether, over UDP, the lowest layer is the one the link carries and the
// transport-wide feedback shows the link at its limit (a standing queue, falling behind what it is sent: see
// bottleneck) delivering less of it than the layer sends: the lowest layer does not fit. The
// loss-based estimate alone did not say so: the bed's 150 kbit/s link lost 20-40 % of the 135p
// layer and its audio (about 155 kbit/s) for 22 s, the estimate at 85-95 % of the need, within
// the margin that keeps a radio's random loss from pausing video; the picture froze 29-43 s a
// minute and lagged half a second. (Random loss builds no queue; a receiver short of CPU catches
// up in bursts, which ends the run.) Over TCP the send queue says so (ccQueueFullTicks).
// The layer's rate is its last second's or its mean over peakSeconds, whichever is less: a burst
// of its keyframes (new subscribers, layer switches: 4-5 a second took the bed's 135p layer to
// 298 kbit/s for 2 s) queues on a link that carries the layer well, and read as the layer's
// rate it paused the make-test bed's 300 kbit/s subscriber for 10 s.
func (sc *simulcast) lowShort(now time.Time) bool {
	if sc.q != nil || sc.fitMax.Load() != 0 || sc.rate[0] <= 0 {
		return false
	}
	sig := sc.tcc.signal(now)
	return sig.ok && now.Sub(sig.rateAt) < tccFresh && sig.bottleneck(downQueue) && linkRate(sig) < min(sc.rate[0], sc.meanRate(0))
}

// measure updates, once a second, the rate of each layer and of what the subscriber was sent.
func (sc *simulcast) measure(now time.Time) {
	d := sc.main
	dt := now.Sub(sc.fitAt).Seconds()
	// Not the NACKs of a paused video's probes, nor of packets that never reached us (the
	// publisher's uplink lost them). Both read before d.nacks, which the RTCP reader counts first.
	paused, holes := sc.pausedNacks.Load(), d.nackHoles.Load()
	sent, pkts, nacks := d.bytes.Load(), d.sent.Load(), d.nacks.Load()-paused-holes
	first := sc.fitAt.IsZero() || dt <= 0
	var full, upper, fps [maxLayers]float64 // each layer's bps, those of its TID ≥ 2, its frames a second of TID ≤ 1
	for i, f := range sc.layers {
		b, u1, u2, fr := f.bytes.Load(), f.upperBytes[0].Load(), f.upperBytes[1].Load(), f.halfFrames.Load()
		if !first {
			full[i] = float64(b-sc.fitBytes[i]) * 8 / dt
			upper[i] = float64(u2-sc.fitUpper[i][1]) * 8 / dt
			fps[i] = float64(fr-sc.fitFrames[i]) / dt
			if i > 0 && u2 > sc.fitUpper[i][1] && u1 > sc.fitUpper[i][0] && sc.codec != codecOther && !sc.temporal {
				sc.useTemporal()
			}
		}
		sc.fitBytes[i], sc.fitUpper[i], sc.fitFrames[i] = b, [2]uint64{u1, u2}, fr
	}
	if !first {
		for r := range sc.nrungs {
			g := sc.ladder[r]
			sc.rate[r] = full[g.s]
			if g.t < 2 {
				sc.rate[r] -= upper[g.s]
			}
		}
		sc.peak[sc.npeak%peakSeconds] = sc.rate
		sc.npeak++
		for r := range sc.nrungs {
			// A rung at half rate is passed over when it is the layer (no frames of TID 2) or
			// shows fewer than halfRateFPS: a publisher short of CPU encodes 20 fps, and half of
			// that would break the 15 fps the ladder promises.
			g := sc.ladder[r]
			sc.skip[r] = g.t < tlAll && (sc.rate[r+1] > 0 && sc.rate[r] >= 0.95*sc.rate[r+1] || fps[g.s] < halfRateFPS)
		}
	}
	if !first {
		sc.sentRate = float64(sent-sc.sentBytes) * 8 / dt
		sc.nackRatio = float64(max(int64(nacks-sc.nacksAt), 0)) / float64(max(pkts-sc.sentPkts, 1))
	}
	sc.sentBytes, sc.sentPkts, sc.nacksAt, sc.fitAt = sent, pkts, nacks, now
}

// peakRate is the most rung r carried in one of the last peakSeconds intervals (measure).
func (sc *simulcast) peakRate(r int32) float64 {
	p := sc.rate[r]
	for i := range min(sc.npeak, peakSeconds) {
		p = max(p, sc.peak[i][r])
	}
	return p
}

// meanRate is what rung r carried on average over the last peakSeconds intervals (measure).
// Only over a full window of seconds it sent in: a layer just started (or a subscriber just
// come) has seconds of nothing in its window, which read a 500 kbit/s layer as 182 and had the
// make-test bed's 300 kbit/s link take it; then its peak stands for its mean.
func (sc *simulcast) meanRate(r int32) float64 {
	if sc.npeak < peakSeconds {
		return sc.peakRate(r)
	}
	sum := 0.0
	for i := range peakSeconds {
		if sc.peak[i][r] <= 0 {
			return sc.peakRate(r)
		}
		sum += sc.peak[i][r]
	}
	return sum / peakSeconds
}

// useTemporal extends the ladder with the rungs at half rate, once the layers are seen to carry
// temporal layers. Called by step; fitMax (packed) keeps its rung, a running probe its target
// and top.
func (sc *simulcast) useTemporal() {
	target := sc.ladder[max(min(sc.up.target, sc.nrungs-1), 0)]
	top := sc.ladder[max(min(sc.up.top, sc.nrungs-1), 0)]
	sc.temporal = true
	sc.nrungs, sc.npeak = 0, 0 // the rates' indices change
	for i := range sc.layers {
		if i > 0 {
			sc.ladder[sc.nrungs] = rung{s: int32(i), t: 1}
			sc.nrungs++
		}
		sc.ladder[sc.nrungs] = rung{s: int32(i), t: tlAll}
		sc.nrungs++
	}
	sc.up.target, sc.up.top = sc.rungIndex(target.packed()), sc.rungIndex(top.packed())
	if log := sc.log; log != nil {
		log.Debug("simulcast: the layers carry temporal layers", "rungs", sc.nrungs)
	}
}

// rungIndex returns the ladder's index of the packed rung v, or of the highest rung under it.
func (sc *simulcast) rungIndex(v int32) int32 {
	want := unpackRung(v)
	for i := sc.nrungs - 1; i > 0; i-- {
		if r := sc.ladder[i]; r.s < want.s || r.s == want.s && r.t <= want.t {
			return i
		}
	}
	return 0
}

// fit returns the ladder's index of the rung the link carries (fitMax); setFit sets it.
func (sc *simulcast) fit() int32 { return sc.rungIndex(sc.fitMax.Load()) }

func (sc *simulcast) setFit(i int32) { sc.fitMax.Store(sc.ladder[i].packed()) }

// skipped reports whether the choice passes over rung i (measure): a rung at half rate that
// carries as much as the layer, or too few frames.
func (sc *simulcast) skipped(i int32) bool { return sc.skip[i] }

// topSending is the highest rung of a layer the publisher is sending that setMaxLayer allows and
// whose rate fits cap (bps, 0 none); the lowest such when none fits; -1 when nothing is sent.
func (sc *simulcast) topSending(now int64, cap float64) int32 {
	lowest := int32(-1)
	limit := sc.limit.Load()
	for r := sc.nrungs - 1; r >= 0; r-- {
		l := sc.ladder[r].s
		if l > limit {
			continue
		}
		if !sc.sending(l, now) {
			continue
		}
		lowest = r
		if cap <= 0 || sc.rate[r] <= cap {
			return r
		}
	}
	return lowest
}

// timestamp returns d's outgoing RTP clock as of its current layer's last packet, and that
// packet's arrival (unix nanos), for sender reports.
func (sc *simulcast) timestamp() (uint32, int64) {
	l := sc.cur.Load()
	if l < 0 {
		return 0, 0
	}
	f := sc.layers[l]
	return f.lastTS.Load() + sc.tsOff.Load(), f.lastAt.Load()
}

// countTemporal counts a packet of n bytes of simulcast layer f in its temporal layer, for the
// rates of the rungs at half rate (measure): once per packet from the publisher, a few byte reads.
// VP8 only: VP9 in its non-flexible mode tells a frame's references by the distance of picture
// IDs in its group of frames, which the closed-up numbering of dropped frames would break, so VP9
// gets no rungs at half rate.
func (f *forwarder) countTemporal(payload []byte, n int) {
	if f.ckind != codecVP8 {
		return
	}
	p, ok := parsePicture(f.ckind, payload)
	if !ok {
		return
	}
	t := p.tid(payload)
	if t > 0 {
		f.upperBytes[min(t, 2)-1].Add(uint64(n))
	}
	if t <= 1 && p.frameStart(payload) {
		f.halfFrames.Add(1)
	}
}

// The down-track side: what subscriber.go and publisher.go call, simulcast or not.

// attach connects d to what it forwards: its forwarder, or each layer's.
func (d *downTrack) attach() {
	if d.sc == nil {
		d.fwd.attach(d)
		return
	}
	for _, x := range d.sc.sinks {
		x.fwd.attach(x)
	}
}

// detach undoes attach.
func (d *downTrack) detach() {
	if d.sc == nil {
		d.fwd.detach(d)
		return
	}
	for _, x := range d.sc.sinks {
		x.fwd.detach(x)
	}
}

// requestKeyframe asks the publisher for a keyframe of what d forwards (prompt: see keyframe.go).
func (d *downTrack) requestKeyframe(prompt bool) {
	if d.sc != nil {
		d.sc.requestKeyframe(prompt)
		return
	}
	d.fwd.requestKeyframe(prompt)
}

// stored copies the packet d sent as seq into buf, as it was sent (for a NACK), and tells when it
// arrived from the publisher.
func (d *downTrack) stored(seq uint16, buf []byte) (int, int64, bool) {
	if d.sc != nil {
		return d.sc.stored(seq, buf)
	}
	n, at, ok := d.fwd.ring.get(seq, buf)
	if !ok {
		d.nackHoles.Add(1) // never reached us (see simulcast stored)
	}
	return n, at, ok
}

// clock returns d's outgoing RTP timestamp as of the last packet forwarded, and its arrival.
func (d *downTrack) clock() (uint32, int64) {
	if d.sc != nil {
		return d.sc.timestamp()
	}
	return d.fwd.lastTS.Load() + d.tsOff.Load(), d.fwd.lastAt.Load()
}

// srcBytes counts what the publisher sent of what d forwards, for its congestion state: with
// simulcast the lowest layer, the least d's video needs.
func (d *downTrack) srcBytes() uint64 {
	if d.sc != nil {
		return d.sc.layers[0].bytes.Load()
	}
	return d.fwd.bytes.Load()
}

// setMaxLayer limits d's video to layer n and under (0 = lowest; negative pauses it). It is the
// hook for a subscriber's congestion control; without simulcast it does nothing.
func (d *downTrack) setMaxLayer(n int) {
	if d.sc != nil {
		d.sc.setMaxLayer(n)
	}
}

// The publisher side.

// offeredRIDs returns the rids a publisher's video m-line offers to send (RFC 8851 a=rid lines
// with direction send), lowest layer first.
func offeredRIDs(md *sdp.MediaDescription) []string {
	var rids []string
	for _, a := range md.Attributes {
		if a.Key != "rid" {
			continue
		}
		if id, rest, ok := strings.Cut(a.Value, " "); ok && strings.HasPrefix(strings.TrimSpace(rest), "send") && id != "" {
			rids = append(rids, id)
		}
	}
	if len(rids) > maxLayers {
		rids = rids[:maxLayers]
	}
	return orderLayers(rids)
}

// padPaused is the layer of a segment of padding sent by a paused video's probe (pausedProbe).
const padPaused int8 = -2

// maxLayers bounds the layers we forward per stream: browsers send at most three.
const maxLayers = 3

// layersFor returns one forwarder per rid, keeping those of an earlier negotiation with the same
// rid and codec so that subscribers stay attached across reconnectStream.
func (p *Publisher) layersFor(rids []string, c webrtc.RTPCodecCapability) []*forwarder {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*forwarder, len(rids))
	for i, rid := range rids {
		for _, old := range p.layers {
			if old.rid == rid && old.codec.MimeType == c.MimeType {
				out[i] = old
			}
		}
		if out[i] == nil {
			out[i] = newForwarder(webrtc.RTPCodecTypeVideo, c, p.log)
			out[i].rid = rid
		}
	}
	return out
}

// layerOf returns the forwarder of the layer rid, or def for a stream without simulcast.
func layerOf(layers []*forwarder, rid string, def *forwarder) *forwarder {
	for _, f := range layers {
		if f.rid == rid {
			return f
		}
	}
	return def
}

// simulcastLayers returns the layers f is the top of, or nil.
func (p *Publisher) simulcastLayers(f *forwarder) []*forwarder {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.layers) > 0 && p.layers[len(p.layers)-1] == f {
		return p.layers
	}
	return nil
}

// videoSSRCs returns the SSRCs the publisher's video arrives on (one per layer) and where its
// feedback goes.
func (p *Publisher) videoSSRCs() ([]uint32, *webrtc.PeerConnection) {
	p.mu.Lock()
	fs := p.layers
	if len(fs) == 0 && p.video != nil {
		fs = []*forwarder{p.video}
	}
	p.mu.Unlock()
	var ssrcs []uint32
	var pc *webrtc.PeerConnection
	for _, f := range fs {
		if s := f.ssrc.Load(); s != 0 {
			ssrcs = append(ssrcs, s)
			pc = f.pc.Load()
		}
	}
	return ssrcs, pc
}

// Layers returns the rids of the stream's simulcast layers, lowest first; none without simulcast.
func (p *Publisher) Layers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, f := range p.layers {
		out = append(out, f.rid)
	}
	return out
}

// hasFeedback reports whether the subscriber has sent transport-wide feedback for this video (nil:
// not simulcast).
func (sc *simulcast) hasFeedback() bool {
	return sc != nil && sc.tcc != nil && sc.tcc.feedbacks.Load() > 0
}
