package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/sendq"
)

// SubscribeRequest asks for a subscription PeerConnection to a publisher.
type SubscribeRequest struct {
	// Offer is the browser's recvonly offer.
	Offer string
	// StreamID labels our tracks (the browser's MediaStream id).
	StreamID string
	Log      *slog.Logger
	// OnState is told about connection state changes; optional, must return quickly.
	OnState func(state string)
	// OnPath is told each candidate pair ICE selects (see PublishRequest.OnPath).
	OnPath func(Path)
	// OnVideoPaused is told when this subscription's video is paused because its link cannot
	// carry it (true), and when it flows again (false). Optional; it runs on the SFU's report
	// goroutine and must return quickly.
	OnVideoPaused func(paused bool)
	// MaxKbps is the connection's videoMaxSendBandwidth (OpenVidu kurentoOptions; 0 =
	// unconstrained); nil takes Config.MaxSendBandwidth.
	MaxKbps *int
}

// Subscriber is one subscription: a PeerConnection carrying one publisher's tracks to one browser.
type Subscriber struct {
	sfu   *SFU
	pc    *webrtc.PeerConnection
	log   *slog.Logger
	downs []*downTrack
	// onPaused is SubscribeRequest.OnVideoPaused.
	onPaused func(bool)
	// srSlice is the tenth of each second in which this subscriber's sender reports go out.
	srSlice uint32
	// cc is the subscription's down-path state (congestion.go), updated with its sender reports;
	// nil for an inter-node link's, which is not adapted (relay.go).
	cc *congestion
	// sc is its video's layer choice when the publisher sends simulcast, stepped every 100 ms
	// with the probes (simulcast.go); nil otherwise.
	sc *simulcast
	// maxBps caps the video it is sent (0 = none): SubscribeRequest.MaxKbps.
	maxBps float32
	// queue is the send queue in front of the connection carrying the subscription (ICE-TCP,
	// TURN/TCP, TURN/TLS), nil over UDP; set when ICE selects a path.
	queue atomic.Pointer[sendq.Conn]
	path  atomic.Pointer[Path] // the selected path, for a queue not found at first (TURN binds channels later)
	// loopback: the publisher's own media sent back on its PeerConnection (PublishRequest.Loopback).
	loopback bool
	// relayed: one stream on an inter-node link, whose PeerConnection the link owns (relay.go).
	relayed bool
	wg      sync.WaitGroup
	once    sync.Once

	// answered is set once the PeerConnection has both descriptions; until then (server offer,
	// see SubscribeOffer) the browser's candidates wait in early.
	answered atomic.Bool
	earlyMu  sync.Mutex
	early    []Candidate
}

// downTrack is one forwarded track of one subscriber.
type downTrack struct {
	fwd   *forwarder
	track *boundTrack // nil for a tap
	tap   Tap
	// cc is the subscription's congestion state, shared by its down-tracks (nil for a tap and an
	// inter-node link); gate applies it to video (gated: a subscriber's video down-track; audio,
	// taps and links pass ungated).
	cc    *congestion
	gate  videoGate
	gated bool
	rtx   retransmitter // used only by the down-track's RTCP reader

	hdr     hdrScratch    // scratch for the forwarder's writes; only its read loop touches it
	padding rtp.Packet    // scratch for pad; only the forwarder's read loop touches it
	padded  atomic.Uint64 // padding-only packets sent as probes
	padB    atomic.Uint64 // their bytes (in bytes too)
	rtxB    atomic.Uint64 // bytes of retransmissions (in bytes too)
	padAt   int64         // monotonic nanoseconds of the last padding; only the forwarder touches it
	sent    atomic.Uint64
	bytes   atomic.Uint64
	payload atomic.Uint64 // payload octets, for sender reports
	errs    atomic.Uint64 // writes that failed (not yet connected, closed)
	nacks   atomic.Uint64 // sequence numbers the subscriber asked for again
	// nackHoles counts, of those, the ones whose packet never reached us (lost on the
	// publisher's uplink and not repaired): asked for as its link's loss would be, but no sign of
	// it (stored).
	nackHoles atomic.Uint64
	// nackedNew counts video sequence numbers asked for the first time (newer than any asked
	// before) and sent since the last resume: the packets the link lost, whatever the subscriber's
	// receiver reports say (congestion.go).
	nackedNew atomic.Uint64
	resent    atomic.Uint64 // of those, found in the buffer and sent
	rtxSent   atomic.Uint64 // of those, sent on the RTX stream (not in sent: the media stream's sender reports count sent)
	lost      atomic.Uint64 // cumulative packets lost, as the subscriber's receiver reports say
	plisCut   atomic.Uint64 // keyframe requests of this subscriber not passed on (congested)
	// holes counts the outgoing sequence numbers of the video left empty because their packet
	// never reached us (lost on the publisher's uplink: the gap is forwarded as it came), less
	// those a late packet filled since: what the subscriber's receiver reports count as lost
	// that its link did not lose (onReports). Written by the forwarding goroutines.
	holes atomic.Int64
	// filled counts the late packets forwarded (in holes already): the subscriber counts one
	// as it arrives, before or after the report that covers its place, which holeLog cannot tell.
	filled atomic.Int64
	// holeLog is holes as of each outgoing sequence number, fills left out (nil until the first
	// hole).
	holeLog atomic.Pointer[holeLog]
	// rrHighest and rrHoles are the latest video report's extended highest sequence number and
	// holes as of it (holesAt; rrSet: there was one); owned by the RTCP reader.
	rrHighest uint32
	rrHoles   int64
	rrSet     bool

	sc *simulcast // set when the publisher sends simulcast layers (simulcast.go)

	// Continuity across the publisher's reconnectStream: its new track (forwarder.gen) brings
	// numbering of its own, which the subscriber would take for packets far in the past or the
	// future. The outgoing stream goes on where it was instead (restart). Owned by the forwarder
	// goroutine, except tsOff, which the NACK answers and sender reports read.
	gen     uint32
	started bool
	lastOut uint16 // last outgoing sequence number
	seqOff  uint16 // subtracted from an ungated track's sequence numbers (the gate keeps its own)
	// seqOffN is seqOff for the NACK answers (an inter-node link's video is ungated).
	seqOffN atomic.Uint32
	tsOff   atomic.Uint32
	// sub is the subscription it belongs to (nil for a tap).
	sub *Subscriber
	// queueWait says how long video waits now in the send queue in front of the subscription's
	// TCP path, the media it dropped so far, and whether it has one (Subscriber.queueWait; nil:
	// never one): the NACK answers read it (retransmit).
	queueWait func() (wait time.Duration, drops uint64, ok bool)
}

// capBps is the most the subscription may be sent, in bps (0 = no cap).
func (d *downTrack) capBps() float32 {
	if d.sub == nil {
		return 0
	}
	return d.sub.maxBps
}

// write forwards one packet of the publisher (key: it starts a keyframe). The network write happens
// with no lock held, and no transport blocks on a slow receiver (UDP; TCP through a bounded queue),
// so one subscriber cannot stall the publisher's read loop.
func (d *downTrack) write(p *rtp.Packet, key bool) {
	if d.tap != nil {
		d.tap.WriteRTP(p)
		return
	}
	if gen := d.fwd.gen.Load(); gen != d.gen {
		d.restart(p, gen)
	}
	seq := p.SequenceNumber - d.seqOff
	if d.gated {
		g := &d.gate
		if g.dropping || g.pause.Load() {
			var ok bool
			if seq, ok = g.admit(seq, p.Timestamp, key); !ok {
				if g.probe.Load() {
					if q := d.cc.probeQ.Load(); q != nil && (q.MediaDropped() != d.cc.probeBase.Load() || q.VideoWait() > ccQueueDelay) {
						g.probe.Store(false) // the link has answered: it cannot take the video
					} else {
						d.pad(p, monotonicNow())
					}
				}
				return
			}
		} else {
			seq -= g.off
		}
		g.lastTS = p.Timestamp
	}
	if d.gated && d.started {
		// A gap is what never reached us (the gate closes up what it drops); a packet
		// behind the latest fills one (holes).
		d.countHoles(seq, int16(seq-d.lastOut))
	}
	// send, by hand: this is the per-subscriber cost of every forwarded packet.
	if int16(seq-d.lastOut) > 0 || !d.started {
		d.lastOut, d.started = seq, true
	}
	if !d.track.write(&d.hdr, p, seq, d.tsOff.Load()) {
		d.errs.Add(1)
		return
	}
	d.sent.Add(1)
	d.payload.Add(uint64(len(p.Payload)))
	d.bytes.Add(uint64(p.Header.MarshalSize() + len(p.Payload)))
}

// restart moves d to the forwarder's new track (generation gen), whose first packet is p: the
// outgoing sequence numbers go on from the last one sent, the timestamps from the last one plus
// the time since, and video waits for the new track's first keyframe, as after a pause (nothing
// sent before is worth sending again). A down-track that has sent nothing adopts the track as is.
func (d *downTrack) restart(p *rtp.Packet, gen uint32) {
	d.gen = gen
	if !d.started {
		return
	}
	f := d.fwd
	ticks := uint32(1)
	if at := f.prevAt.Load(); at != 0 {
		if dt := f.lastAt.Load() - at; dt > 0 {
			ticks = max(uint32(dt*int64(f.codec.ClockRate)/int64(time.Second)), 1)
		}
	}
	d.tsOff.Store(f.prevTS.Load() + d.tsOff.Load() + ticks - p.Timestamp)
	if !d.gated {
		d.seqOff = p.SequenceNumber - d.lastOut - 1
		d.seqOffN.Store(uint32(d.seqOff))
		return
	}
	g := &d.gate
	d.seqOff = 0
	g.off = p.SequenceNumber - d.lastOut - 1
	g.offset.Store(uint32(g.off))
	if !g.dropping {
		g.dropping = true
		g.validFrom.Store(1 << 17)
	}
}

// padMax is the most padding one RTP packet carries (its last byte counts it).
const padMax = 255

// ccProbeGain is the rate a probe pads at, as a share of what the video needs.
const ccProbeGain = 1.5

// padBurst bounds the padding sent in place of one packet (a publisher silent for a while).
const padBurst = 16 << 10

// pad sends padding-only RTP packets in place of p, which the gate has just dropped while the
// subscription's video is paused: the probe of ccProbeGap, at the probe's rate (congestion
// probeBps) since the previous padding, whatever the publisher sends right now (a probe passed
// in a dip of its encoder would resume into a link that cannot take the video). They take the
// outgoing sequence numbers from p's on, so the subscriber sees no gap (receivers take
// padding-only packets as such: browsers' own bandwidth probes are made of them); the gate's
// offset moves back by as many, and NACKs are not answered while paused anyway.
func (d *downTrack) pad(p *rtp.Packet, now int64) {
	g := &d.gate
	since := now - d.padAt
	// Up to padSpan between two video packets is owed: a loaded publisher's frames come 100 ms
	// and more apart, and padding owed only 20 ms per gap fell short of what the video needs, so
	// probes of a freed link failed (not back within 10 s in the weak-network bed, TCP).
	if d.padAt == 0 || since > int64(padSpan) || since < 0 {
		since = int64(20 * time.Millisecond) // the probe's first packet
	}
	d.padAt = now
	n := min(int(d.cc.probeBps.Load()*uint64(since)/uint64(time.Second)), padBurst)
	if n <= 0 {
		return
	}
	k := (n + padMax - 1) / padMax
	out := p.SequenceNumber - g.off + 1 // admit counted p as dropped
	pp := &d.padding
	pp.Header = p.Header
	pp.Marker, pp.Padding, pp.Payload = false, true, nil
	for i := range k {
		size := min(padMax, n-i*padMax)
		pp.Header.PaddingSize = byte(size)
		if !d.track.write(&d.hdr, pp, out+uint16(i), d.tsOff.Load()) {
			d.errs.Add(1)
		}
		n := uint64(pp.Header.MarshalSize() + size)
		d.bytes.Add(n)
		d.padB.Add(n)
	}
	// The probe's sequence numbers, for a probe over UDP to tell its NACKs and reports
	// (probeFeedback): stored +1, so 0 means none yet.
	d.cc.padFirst.CompareAndSwap(0, uint32(out)+1)
	d.cc.padLast.Store(uint32(out+uint16(k-1)) + 1)
	d.lastOut, d.started = out+uint16(k-1), true // no hole, and a restart goes on after it
	g.off -= uint16(k)
	g.offset.Store(uint32(g.off))
	d.padded.Add(uint64(k))
}

var monoEpoch = time.Now()

// monotonicNow is nanoseconds on the monotonic clock.
func monotonicNow() int64 { return int64(time.Since(monoEpoch)) }

// send writes p as outgoing sequence number seq with the caller's scratch header: a goroutine
// other than the forwarder's (the NACK answers) brings its own.
func (d *downTrack) send(h *hdrScratch, p *rtp.Packet, seq uint16) {
	if !d.track.write(h, p, seq, d.tsOff.Load()) {
		d.errs.Add(1)
		return
	}
	d.sent.Add(1)
	d.payload.Add(uint64(len(p.Payload)))
	d.bytes.Add(uint64(p.Header.MarshalSize() + len(p.Payload)))
}

// Subscribe creates a PeerConnection for a browser's recvonly offer carrying pub's tracks.
func (s *SFU) Subscribe(ctx context.Context, pub *Publisher, req SubscribeRequest) (*Subscriber, string, error) {
	if err := checkSDP(req.Offer); err != nil {
		return nil, "", err
	}
	sub, senders, err := s.newSubscriber(pub, req, false)
	if err != nil {
		return nil, "", err
	}
	fail := func(err error) (*Subscriber, string, error) { sub.Close(); return nil, "", err }
	if err := sub.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: req.Offer}); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrSDP, err))
	}
	sub.answered.Store(true)
	ans, err := answer(ctx, sub.pc)
	if err != nil {
		return fail(err)
	}
	sub.start(senders)
	return sub, ans, nil
}

// newSubscriber makes the PeerConnection of a subscription with one track per publisher track (as
// sendonly transceivers when we are to offer) and its state callbacks; start attaches it.
func (s *SFU) newSubscriber(pub *Publisher, req SubscribeRequest, offering bool) (*Subscriber, []*webrtc.RTPSender, error) {
	pub.mu.Lock()
	audio, video, layers, closed := pub.audio, pub.video, pub.layers, pub.closed
	pub.mu.Unlock()
	if closed {
		return nil, nil, errors.New("publisher closed")
	}
	pc, err := s.subAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, err
	}
	sub, senders, err := s.subscriberOn(pc, audio, video, layers, req, offering)
	if err != nil {
		_ = pc.Close()
		return nil, nil, err
	}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			// Video starts at once instead of at the publisher's next periodic keyframe.
			for _, d := range sub.downs {
				d.requestKeyframe(true)
			}
		}
		if req.OnState != nil {
			req.OnState(st.String())
		}
	})
	watchPath(pc, func(p Path) {
		sub.path.Store(&p)
		sub.queue.Store(s.sendQueue(p))
		if req.OnPath != nil {
			req.OnPath(p)
		}
	})
	return sub, senders, nil
}

// subscriberOn adds to pc one track per forwarder (audio, video; either may be nil), as sendonly
// transceivers when we are to offer, else on the transceivers the remote offer made, and returns
// the subscription they make up, not yet started.
func (s *SFU) subscriberOn(pc *webrtc.PeerConnection, audio, video *forwarder, layers []*forwarder, req SubscribeRequest, offering bool) (*Subscriber, []*webrtc.RTPSender, error) {
	log := req.Log
	if log == nil {
		log = s.log
	}
	sub := &Subscriber{sfu: s, pc: pc, log: log, onPaused: req.OnVideoPaused, srSlice: s.srNext.Add(1) % srSlices, cc: &congestion{},
		maxBps: kbps(req.MaxKbps, s.cfg.MaxSendBandwidth)}
	var senders []*webrtc.RTPSender
	for _, f := range []*forwarder{audio, video} {
		if f == nil {
			continue
		}
		tr, err := newBoundTrack(f.codec, f.kind.String(), req.StreamID)
		if err != nil {
			return nil, nil, err
		}
		var snd *webrtc.RTPSender
		if offering {
			var t *webrtc.RTPTransceiver
			if t, err = pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err == nil {
				snd = t.Sender()
			}
		} else {
			snd, err = pc.AddTrack(tr)
		}
		if err != nil {
			return nil, nil, err
		}
		senders = append(senders, snd)
		d := &downTrack{fwd: f, track: tr, cc: sub.cc, sub: sub, queueWait: sub.queueWait}
		if f.kind == webrtc.RTPCodecTypeVideo {
			d.gated = true
			// Every subscriber's video is numbered transport-wide: the feedback shows a link too
			// slow for the stream as a queue within a few hundred milliseconds, where receiver
			// reports take a second or two (congestion.go fbShort), and judges probes by delay.
			tr.tcc = &transportCC{}
			if f == video && len(layers) > 1 {
				d.sc = newSimulcast(d, layers) // it rewrites sequence numbers itself; the gate stays unused
				d.sc.tcc = tr.tcc              // its layer choice reads the link's delay
				sub.sc, d.sc.log = d.sc, log
				d.sc.startLow()
			}
		}
		sub.downs = append(sub.downs, d)
	}
	return sub, senders, nil
}

// queueWait is how long the latest video written waited in the send queue in front of the
// subscription's TCP path (ICE-TCP, TURN/TCP, TURN/TLS), the media frames it dropped so far, and
// whether there is one: atomic loads, for the NACK answers.
func (sub *Subscriber) queueWait() (time.Duration, uint64, bool) {
	q := sub.queue.Load()
	if q == nil {
		return 0, 0, false
	}
	return q.VideoWait(), q.MediaDropped(), true
}

// start attaches a negotiated subscription to its publisher and serves its feedback.
func (sub *Subscriber) start(senders []*webrtc.RTPSender) {
	// The congestion state's counts start now, before the sender-report goroutine sees the
	// subscription: its first tick would only start them, up to a second after the media did,
	// and a link too slow for the stream can show in the feedback before that (fbPause).
	sub.adapt(time.Now())
	sub.sfu.track(nil, sub)
	for i, d := range sub.downs {
		d.attach()
		sub.wg.Add(1)
		go sub.readRTCP(senders[i], d)
	}
}

// readRTCP serves the subscriber's feedback: NACKs from the shared retransmission buffer within
// the subscriber's budget (the loss of one subscriber never reaches the publisher), PLI/FIR as
// keyframe requests unless its link is congested, receiver reports into its congestion state.
func (sub *Subscriber) readRTCP(snd *webrtc.RTPSender, d *downTrack) {
	defer sub.wg.Done()
	var ssrc uint32
	if enc := snd.GetParameters().Encodings; len(enc) > 0 {
		ssrc = uint32(enc[0].SSRC)
	}
	for {
		pkts, _, err := snd.ReadRTCP()
		if err != nil {
			return
		}
		now := time.Now()
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.ReceiverReport:
				d.onReports(ssrc, p.Reports, now)
			case *rtcp.SenderReport: // a subscriber that also sends puts its reports here
				d.onReports(ssrc, p.Reports, now)
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				ok := d.cc == nil || d.cc.allowPLI(now)
				if ok {
					d.requestKeyframe(false)
				} else {
					d.plisCut.Add(1)
				}
				if d.sc != nil && sub.log.Enabled(context.Background(), slog.LevelDebug) {
					sub.log.Debug("keyframe request from the subscriber", "passed", ok) // rare
				}
			case *rtcp.TransportLayerNack:
				d.retransmit(p, now)
			case *rtcp.TransportLayerCC:
				d.onTransportCC(p, now)
			}
		}
	}
}

// onReports takes the reception reports about our stream: cumulative loss for the counters, and for
// video the fraction lost and the round trip for the congestion state.
func (d *downTrack) onReports(ssrc uint32, reports []rtcp.ReceptionReport, now time.Time) {
	d.reportLoss(ssrc, reports)
	if !d.gated || d.cc == nil {
		return
	}
	for _, r := range reports {
		if r.SSRC != ssrc {
			continue
		}
		// The subscriber's loss counts the packets that never reached us either: a publisher
		// on a weak uplink (the bed's pub-udp cells) lost 37–54 % of its video there, which cut
		// the estimates of unshaped subscribers to 23–45 kbit/s. What their own link lost is
		// the rest: the report's share less that of the holes we left in the numbering since
		// the report before (per layer, as the forwarder counted its loss, the correction
		// missed the loss of the layer left at a switch, and overcut at half frame rate).
		holes := d.holesAt(uint16(r.LastSequenceNumber))
		expected := int64(r.LastSequenceNumber - d.rrHighest)
		if !d.rrSet || expected <= 0 || expected >= 1<<15 {
			expected = int64(d.sent.Load()) + holes // the first report: since the start
		}
		up := holes - d.rrHoles
		if !d.rrSet {
			up = holes
		}
		frac := int(r.FractionLost)
		if up > 0 {
			frac -= int(min(up*256/max(expected, 1), 256))
		}
		if log := d.reportLog(); log != nil && r.FractionLost > 0 { // debug: reports with loss only
			log.Debug("receiver report with loss", "fraction_pct", int(r.FractionLost)*100/256, "own_pct", max(0, frac)*100/256,
				"expected", expected, "holes", up, "highest", r.LastSequenceNumber, "total_lost", r.TotalLost)
		}
		d.rrHighest, d.rrHoles, d.rrSet = r.LastSequenceNumber, holes, true
		d.cc.fraction.Store(uint32(max(0, frac)))
		d.cc.rrHighest.Store(r.LastSequenceNumber)
		d.cc.rrLost.Store(r.TotalLost)
		d.cc.rrHoles.Store(holes)
		d.cc.reportAt.Store(now.UnixNano())
		if r.LastSenderReport != 0 {
			// RFC 3550 6.4.1: now − LSR − DLSR, in 1/65536 s, from the middle 32 bits of NTP time.
			mid := uint32(ntpTime(now) >> 16)
			if rtt := mid - r.LastSenderReport - r.Delay; rtt < 1<<20 { // under 16 s: not garbage
				d.cc.rtt.Store(int64(rtt) * int64(time.Second) >> 16)
			}
		}
	}
}

// reportLog returns the subscription's logger for a simulcast video's reports, when debug logging
// is on (the weak-network bed reads them); nil otherwise.
func (d *downTrack) reportLog() *slog.Logger {
	if d.sc == nil || d.sc.log == nil || !d.sc.log.Enabled(context.Background(), slog.LevelDebug) {
		return nil
	}
	return d.sc.log
}

// holeLogSize is how many outgoing sequence numbers holeLog keeps: seconds of video.
const holeLogSize = 1024

// holeLog is a video down-track's holes as of each outgoing sequence number sent as the newest,
// its 16 bits and the count's low 48 in one word: a receiver report counts the gaps under its
// highest sequence number only, and libwebrtc sends the report of a NACK before it counts the
// packet that showed the gap (the bed's unshaped subscriber of a weak publisher, the holes read
// as of the report's arrival, read 15 % lost on a clean link and went down a layer).
type holeLog [holeLogSize]atomic.Uint64

// countHoles counts, for the video packet forwarded as outgoing sequence number seq gap after the
// newest before it, the holes it leaves or fills, and notes the count as of seq when it is the
// newest. Called by the forwarder (under the simulcast state's lock, for a simulcast video).
func (d *downTrack) countHoles(seq uint16, gap int16) {
	switch {
	case gap > 1:
		d.holes.Add(int64(gap - 1))
	case gap <= 0:
		d.holes.Add(-1)
		d.filled.Add(1)
		return
	}
	lg := d.holeLog.Load()
	if lg == nil {
		if gap == 1 {
			return // no hole yet: the common case costs one load
		}
		lg = new(holeLog)
		for i := range uint16(holeLogSize) {
			s := seq - 1 - i
			lg[s%holeLogSize].Store(uint64(s) << 48) // none before
		}
		d.holeLog.Store(lg)
	}
	h := d.holes.Load() + d.filled.Load() // the holes left, fills left out
	lg[seq%holeLogSize].Store(uint64(seq)<<48 | uint64(h)&(1<<48-1))
}

// holesAt returns holes as of a receiver report whose highest sequence number is seq: those left
// under it (noted at it, or at the newest before it: padding is not noted, it leaves no hole),
// less the late packets forwarded by now, which it counts once they arrived (a fill counted as
// of the packet noted before it made the report after read two packets of the bed's 135p layer
// lost on a clean link: 15 %); the count now if those are no longer kept.
func (d *downTrack) holesAt(seq uint16) int64 {
	filled := d.filled.Load() // before the log: a fill is counted in holes first
	lg := d.holeLog.Load()
	if lg == nil {
		return d.holes.Load()
	}
	for i := range uint16(256) {
		s := seq - i
		if v := lg[s%holeLogSize].Load(); uint16(v>>48) == s {
			return int64(v<<16)>>16 - filled
		}
	}
	return d.holes.Load()
}

// reportLoss keeps the cumulative loss a receiver report gives for our stream. Duplicates can make
// the reported number shrink; the counter keeps its maximum, as counters must not go back.
func (d *downTrack) reportLoss(ssrc uint32, reports []rtcp.ReceptionReport) {
	for _, r := range reports {
		if r.SSRC != ssrc {
			continue
		}
		for {
			old := d.lost.Load()
			if uint64(r.TotalLost) <= old || d.lost.CompareAndSwap(old, uint64(r.TotalLost)) {
				break
			}
		}
	}
}

// AddCandidate applies a browser candidate; before the browser's answer to our offer it is kept.
func (sub *Subscriber) AddCandidate(c Candidate) error {
	if !sub.answered.Load() && sub.keepCandidate(c) {
		return nil
	}
	return addCandidate(sub.pc, c)
}

// Sent reports the RTP packets forwarded to this subscriber so far, retransmissions included (on
// its RTX stream too), as Stats.PacketsOut counts them.
func (sub *Subscriber) Sent() uint64 {
	var n uint64
	for _, d := range sub.downs {
		n += d.sent.Load() + d.rtxSent.Load()
	}
	return n
}

// Close detaches from the publisher and closes the PeerConnection. A loopback's PeerConnection is
// its publisher's, which closes it before closing the loopback.
func (sub *Subscriber) Close() {
	sub.once.Do(func() {
		for _, d := range sub.downs {
			d.detach()
		}
		if !sub.loopback && !sub.relayed {
			_ = sub.pc.Close()
		}
		sub.wg.Wait()
		sub.sfu.untrack(nil, sub)
		sub.logWeak()
	})
}

// logWeak says, for a subscription whose video was ever paused, where the bytes it was sent went:
// what an operator needs to tell a weak link's cost (and what the weak-network bed reads).
func (sub *Subscriber) logWeak() {
	if sub.cc == nil || sub.cc.pauses.Load() == 0 {
		return
	}
	var audio, video, rtx, pad, dropped uint64
	for _, d := range sub.downs {
		n := d.bytes.Load() - d.rtxB.Load() - d.padB.Load()
		if d.gated {
			video += n
			dropped += d.gate.dropped.Load()
		} else {
			audio += n
		}
		rtx += d.rtxB.Load()
		pad += d.padB.Load()
	}
	sub.log.Info("subscription with paused video ended", "video_kB", video/1000, "audio_kB", audio/1000, "retransmitted_kB", rtx/1000,
		"padding_kB", pad/1000, "video_packets_dropped", dropped, "pauses", sub.cc.pauses.Load(), "resumes", sub.cc.resumes.Load(),
		"probes", sub.cc.probes.Load(), "probes_passed", sub.cc.probesPass.Load())
}
