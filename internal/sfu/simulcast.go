package sfu

import (
	"context"
	"encoding/binary"
	"log/slog"
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

const (
	// layerIdle is how long a layer may send nothing before the down-tracks take it for stopped.
	// Generous because screen shares send a frame only when the screen changes.
	layerIdle = 2 * time.Second
	// keyframeRetry is how often a down-track waiting to switch asks for the keyframe again.
	keyframeRetry = 500 * time.Millisecond
	// switchHistory is how many switches back a NACK can still be answered.
	switchHistory = 8
)

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
	fitMax atomic.Int32  // highest layer the subscriber's estimate carries (fit)
	cur    atomic.Int32  // layer being forwarded, -1 before the first keyframe
	tgt    atomic.Int32  // layer wanted, -1 when paused or none is sending
	tsOff  atomic.Uint32 // current timestamp offset, for sender reports
	swaps  atomic.Uint64 // layer switches done

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
	history  [switchHistory]segment
	nhistory int

	// Owned by fit (the sender-report goroutine).
	fitAt    time.Time
	fitBytes [maxLayers]uint64
	rate     [maxLayers]float64 // bits per second each layer carried in the last interval
}

// segment is the mapping in force from one switch on: what NACKs for its packets need.
type segment struct {
	startOut uint16 // first outgoing sequence number
	layer    int8
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
	hdr   rtp.Header
	buf   [1500]byte
}

func newSimulcast(main *downTrack, layers []*forwarder) *simulcast {
	sc := &simulcast{main: main, layers: layers, codec: codecKind(layers[0].codec.MimeType), clock: layers[0].codec.ClockRate}
	if sc.clock == 0 {
		sc.clock = 90000
	}
	sc.limit.Store(int32(len(layers) - 1))
	sc.fitMax.Store(int32(len(layers) - 1))
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
// setMaxLayer's limit and what the estimate carries (fit).
// When none of those is, the lowest sending one; -1 when paused or nothing is sending.
func (sc *simulcast) pick(now int64) int32 {
	top := min(sc.limit.Load(), sc.fitMax.Load())
	if top < 0 || (sc.main.cc != nil && sc.main.cc.pause.Load()) {
		return -1 // paused: by the hook, or by the subscription's congestion state
	}
	for l := top; l >= 0; l-- {
		if at := sc.layers[l].lastAt.Load(); at != 0 && now-at < int64(layerIdle) {
			return l
		}
	}
	for l := top + 1; int(l) < len(sc.layers); l++ {
		if at := sc.layers[l].lastAt.Load(); at != 0 && now-at < int64(layerIdle) {
			return l
		}
	}
	return -1
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
	if l != sc.cur.Load() && l != tgt && tgt == sc.tgt.Load() {
		return // the common case for the layers nobody here wants: no lock
	}
	pic, _ := parsePicture(sc.codec, p.Payload)

	sc.mu.Lock()
	var ask *forwarder
	if tgt != sc.tgt.Load() {
		sc.tgt.Store(tgt)
		if tgt < 0 {
			sc.cur.Store(-1) // paused: resuming needs a keyframe
		} else if tgt != sc.cur.Load() {
			ask, sc.askedAt = sc.layers[tgt], now
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
		if !key {
			if now-sc.askedAt >= int64(keyframeRetry) {
				ask, sc.askedAt = sc.layers[tgt], now
			}
			sc.mu.Unlock()
			if ask != nil {
				ask.requestKeyframe(true)
			}
			return
		}
		from := cur
		sc.switchTo(l, p, pic, now)
		if log := sc.layers[l].log; log != nil && log.Enabled(context.Background(), slog.LevelDebug) {
			log.Debug("simulcast layer switch", "from", from, "to", l, "rid", sc.layers[l].rid) // rare: at keyframes, when the choice changed
		}
	case l == cur:
		if int16(p.SequenceNumber-sc.startSeq) < 0 {
			sc.mu.Unlock() // older than the keyframe we switched at: the decoder cannot use it
			return
		}
	default:
		sc.mu.Unlock()
		if ask != nil {
			ask.requestKeyframe(true)
		}
		return
	}
	// Forward l's packet with the current offsets.
	seq, ts := p.SequenceNumber+sc.seqOff, p.Timestamp+uint32(sc.tsOff.Load())
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
	sc.mu.Unlock()
	if ask != nil {
		ask.requestKeyframe(true)
	}
	e.pkt.Header = p.Header
	e.pkt.SequenceNumber, e.pkt.Timestamp = seq, ts
	e.pkt.Payload = payload
	e.pkt.PaddingSize = p.PaddingSize
	if sc.main.tap != nil {
		sc.main.tap.WriteRTP(&e.pkt)
		return
	}
	sc.main.send(&e.hdr, &e.pkt, seq)
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
	sc.curGen = sc.layers[l].gen.Load()
	sc.cur.Store(l)
	sc.history[sc.nhistory%switchHistory] = segment{startOut: p.SequenceNumber + sc.seqOff, layer: int8(l),
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
	sc.mu.Unlock()
	if !found {
		return 0, 0, false
	}
	f := sc.layers[seg.layer]
	if n, at, ok = f.ring.get(seq-seg.seqOff, buf); !ok {
		return 0, 0, false
	}
	b := buf[:n]
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], binary.BigEndian.Uint32(b[4:])+seg.tsOff)
	if off := rtpPayloadOffset(b); off > 0 {
		payload := b[off:]
		if pic, ok := parsePicture(sc.codec, payload); ok {
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

// requestKeyframe asks for a keyframe of the layer d wants (or forwards).
func (sc *simulcast) requestKeyframe(prompt bool) {
	l := sc.tgt.Load()
	if l < 0 {
		l = sc.pick(time.Now().UnixNano())
	}
	if l < 0 {
		l = int32(len(sc.layers) - 1)
	}
	sc.layers[l].requestKeyframe(prompt)
}

// fit chooses the highest layer the subscription's estimate (bps; 0 = no limit known) carries,
// from the rates the layers were sent at over the last interval; called once a second with the
// subscription's congestion tick. When even the lowest does not fit, the congestion state pauses
// the video (srcBytes makes the lowest layer what the stream needs).
func (sc *simulcast) fit(now time.Time, est float64) {
	dt := now.Sub(sc.fitAt).Seconds()
	for i, f := range sc.layers {
		b := f.bytes.Load()
		if !sc.fitAt.IsZero() && dt > 0 {
			sc.rate[i] = float64(b-sc.fitBytes[i]) * 8 / dt
		}
		sc.fitBytes[i] = b
	}
	sc.fitAt = now
	top, cur := len(sc.layers)-1, int(sc.fitMax.Load())
	l := top
	if est > 0 {
		// A layer above the current one must fit entirely; the current one and those under it
		// are kept until the estimate falls under ccPauseBelow of their rate, as the pause is:
		// a layer's rate swings by a keyframe or a ramp-up from one second to the next, and each
		// switch costs a keyframe.
		for l = top; l > 0; l-- {
			need := sc.rate[l]
			if l <= cur {
				need *= ccPauseBelow
			}
			if sc.rate[l] > 0 && need <= est {
				break
			}
		}
	}
	sc.fitMax.Store(int32(l))
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
	return d.fwd.ring.get(seq, buf)
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
