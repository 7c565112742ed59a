package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// PublishRequest asks for a new publisher PeerConnection.
type PublishRequest struct {
	// Offer is the browser's SDP offer (sendonly, or sendrecv for loopback).
	Offer string
	// VideoCodec is the codec the stream must use (CodecVP8…), or CodecAny.
	VideoCodec string
	// Log carries the caller's fields (session, connection, stream).
	Log *slog.Logger
	// OnState is told about ICE/DTLS state changes ("connected", "failed", "closed"…). Optional; it
	// runs on a pion goroutine and must return quickly.
	OnState func(state string)
	// OnPath is told the candidate pair carrying the media each time ICE selects one (see
	// watchPath). Optional; it runs on a pion goroutine and must return quickly.
	OnPath func(Path)
	// MaxKbps and MinKbps are the connection's own videoMaxRecvBandwidth and
	// videoMinRecvBandwidth (OpenVidu kurentoOptions; 0 = unconstrained); nil takes Config's.
	MaxKbps, MinKbps *int
	// Loopback sends the publisher's own media back to it on the same PeerConnection (OpenVidu's
	// doLoopback, Publisher.subscribeToRemote: Kurento connected the publisher's endpoint to
	// itself). The offer's m-lines are then sendrecv and so is our answer; the media come back
	// through the forwarders like any subscriber's. It holds across Renegotiate.
	Loopback bool
}

// Publisher is one published stream: its PeerConnection and one forwarder per track kind.
type Publisher struct {
	sfu     *SFU
	log     *slog.Logger
	onState func(string)
	onPath  func(Path)
	codec   string
	// maxBps and minBps bound the REMB sent to the publisher (0 = none): see PublishRequest.
	maxBps, minBps float32
	// loopback: PublishRequest.Loopback.
	loopback bool

	mu     sync.Mutex
	pc     *webrtc.PeerConnection // replaced by Renegotiate
	closed bool

	audio, video *forwarder // nil when the offer has no such m-line
	// layers are the simulcast video's forwarders, lowest first (video is the top one); nil
	// without simulcast.
	layers []*forwarder
	// ingest are the loopback sockets of a publisher fed by Ingest instead of a PeerConnection.
	ingest     []*net.UDPConn
	stopIngest func()
	// relayed: a stream of another node, fed by an inter-node link (relay.go), which owns the
	// PeerConnection and the read loops.
	relayed bool
	// loop carries the media back to the publisher on pc when loopback is set (nil otherwise);
	// replaced with pc.
	loop *Subscriber
	// taps are the video taps (recordings): RequestKeyframe asks for the layer they forward.
	taps []*downTrack
	wg   sync.WaitGroup
	stop chan struct{}
}

// Publish creates the PeerConnection for a browser's publisher offer and returns our answer.
func (s *SFU) Publish(ctx context.Context, req PublishRequest) (*Publisher, string, error) {
	if err := checkSDP(req.Offer); err != nil {
		return nil, "", err
	}
	log := req.Log
	if log == nil {
		log = s.log
	}
	p := &Publisher{sfu: s, log: log, onState: req.OnState, onPath: req.OnPath, codec: req.VideoCodec, stop: make(chan struct{}),
		maxBps: kbps(req.MaxKbps, s.cfg.MaxRecvBandwidth), minBps: kbps(req.MinKbps, s.cfg.MinRecvBandwidth), loopback: req.Loopback}
	ans, err := p.negotiate(ctx, req.Offer)
	if err != nil {
		return nil, "", err
	}
	s.track(p, nil)
	if p.video != nil {
		p.wg.Add(1)
		go p.remb()
	}
	return p, ans, nil
}

// negotiate builds a PeerConnection for offer, wires its tracks to the forwarders (created on the
// first negotiation and kept across renegotiations, so subscribers stay attached), and answers.
func (p *Publisher) negotiate(ctx context.Context, offer string) (string, error) {
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(offer); err != nil {
		return "", fmt.Errorf("%w: %v", ErrSDP, err)
	}
	pc, err := p.sfu.pubAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", err
	}
	fail := func(err error) (string, error) { _ = pc.Close(); return "", err }
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrSDP, err))
	}
	var audio, video *forwarder
	var layers []*forwarder // simulcast video, lowest first
	for _, t := range pc.GetTransceivers() {
		mid := t.Mid()
		var md *sdp.MediaDescription
		for _, m := range parsed.MediaDescriptions {
			if v, _ := m.Attribute("mid"); v == mid {
				md = m
			}
		}
		switch {
		case md == nil:
		case t.Kind() == webrtc.RTPCodecTypeVideo && video == nil:
			c, err := chooseVideoCodec(md, p.codec)
			if err != nil {
				return fail(err)
			}
			if err := t.SetCodecPreferences([]webrtc.RTPCodecParameters{c}); err != nil {
				return fail(fmt.Errorf("%w: %v", ErrSDP, err))
			}
			if rids := offeredRIDs(md); len(rids) > 0 {
				layers = p.layersFor(rids, c.RTPCodecCapability)
				video = layers[len(layers)-1]
			} else {
				video = p.forwarderFor(webrtc.RTPCodecTypeVideo, c.RTPCodecCapability)
			}
		case t.Kind() == webrtc.RTPCodecTypeAudio && audio == nil:
			c, ok := chooseAudioCodec(md)
			if !ok {
				return fail(fmt.Errorf("%w: the offer has no Opus audio", ErrSDP))
			}
			if err := t.SetCodecPreferences([]webrtc.RTPCodecParameters{c}); err != nil {
				return fail(fmt.Errorf("%w: the offer has no Opus audio", ErrSDP))
			}
			audio = p.forwarderFor(webrtc.RTPCodecTypeAudio, opus.RTPCodecCapability)
		}
	}
	if audio == nil && video == nil {
		return fail(fmt.Errorf("%w: no audio or video to receive", ErrSDP))
	}
	var loop *Subscriber
	var loopSenders []*webrtc.RTPSender
	if p.loopback {
		// Our tracks go on the transceivers the offer made (AddTrack reuses them), which turns
		// their direction in the answer to sendrecv.
		loop, loopSenders, err = p.sfu.subscriberOn(pc, audio, video, layers, SubscribeRequest{StreamID: "loopback", Log: p.log}, false)
		if err != nil {
			return fail(err)
		}
		loop.loopback = true
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		f := audio
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			f = layerOf(layers, tr.RID(), video)
		}
		if f == nil {
			return
		}
		f.ssrc.Store(uint32(tr.SSRC()))
		f.pc.Store(pc)
		if len(layers) > 1 && f != layers[0] {
			p.sfu.nacks.upperLayer(pc.ID(), uint32(tr.SSRC()), f.mediaAt.Load) // not asked to resend while the uplink is full
		}
		f.requestKeyframe(true) // subscribers may already be waiting
		// Close waits for the read loops: one may only start while Close has not begun, or the
		// WaitGroup would be added to during (or after) its Wait.
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.wg.Add(1)
		p.mu.Unlock()
		defer p.wg.Done()
		f.run(tr)
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if loop != nil && st == webrtc.PeerConnectionStateConnected {
			for _, d := range loop.downs {
				d.requestKeyframe(true)
			}
		}
		if p.onState != nil {
			p.onState(st.String())
		}
	})
	watchPath(pc, p.onPath)
	ans, err := answer(ctx, pc)
	if err != nil {
		return fail(err)
	}
	ans = startBitrate(ans, int(p.maxBps/1000))
	if loop != nil {
		loop.start(loopSenders)
	}
	p.mu.Lock()
	old, oldLoop, closed := p.pc, p.loop, p.closed
	if !closed {
		p.pc, p.audio, p.video, p.layers, p.loop = pc, audio, video, layers, loop
	}
	p.mu.Unlock()
	if closed {
		_ = pc.Close()
		if loop != nil {
			loop.Close()
		}
		return "", errors.New("publisher closed")
	}
	if old != nil {
		_ = old.Close()
	}
	if oldLoop != nil {
		oldLoop.Close() // after its PeerConnection: that ends its RTCP readers
	}
	return ans, nil
}

// forwarderFor keeps the existing forwarder of that kind across renegotiations.
func (p *Publisher) forwarderFor(kind webrtc.RTPCodecType, c webrtc.RTPCodecCapability) *forwarder {
	p.mu.Lock()
	defer p.mu.Unlock()
	existing := p.audio
	if kind == webrtc.RTPCodecTypeVideo {
		existing = p.video
	}
	if existing != nil && existing.codec.MimeType == c.MimeType {
		return existing
	}
	return newForwarder(kind, c, p.log)
}

// Renegotiate replaces the PeerConnection with one for a new offer (OpenVidu reconnectStream) and
// keeps every subscriber attached.
func (p *Publisher) Renegotiate(ctx context.Context, offer string) (string, error) {
	if p.ingest != nil || p.relayed {
		return "", fmt.Errorf("%w: an ingested or relayed stream has no PeerConnection of its own", ErrSDP)
	}
	if err := checkSDP(offer); err != nil {
		return "", err
	}
	return p.negotiate(ctx, offer)
}

// AddCandidate applies a browser candidate.
func (p *Publisher) AddCandidate(c Candidate) error {
	p.mu.Lock()
	pc := p.pc
	p.mu.Unlock()
	if pc == nil {
		return errors.New("an ingested stream takes no candidates")
	}
	return addCandidate(pc, c)
}

// HasAudio and HasVideo tell which kinds the stream carries.
func (p *Publisher) HasAudio() bool { return p.audio != nil }

// HasVideo tells whether the stream carries video.
func (p *Publisher) HasVideo() bool { return p.video != nil }

// Close ends the publisher. Subscribers must be closed by their owners; they stop receiving at once.
func (p *Publisher) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	pc, loop := p.pc, p.loop
	p.mu.Unlock()
	close(p.stop)
	if pc != nil {
		_ = pc.Close()
	}
	if p.stopIngest != nil {
		p.stopIngest()
	}
	for _, c := range p.ingest {
		_ = c.Close()
	}
	if loop != nil {
		loop.Close()
	}
	p.wg.Wait()
	p.sfu.untrack(p, nil)
}

// remb tells the browser the most it may send (remBitrate), once a second. Without any feedback
// Chrome would stay near its start bitrate; its own transport-cc and loss-based control still back
// off under it.
func (p *Publisher) remb() {
	defer p.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		bps := p.remBitrate()
		if bps <= 0 {
			continue // unconstrained
		}
		ssrcs, pc := p.videoSSRCs()
		if len(ssrcs) == 0 || pc == nil {
			continue
		}
		_ = pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: bps, SSRCs: ssrcs}})
	}
}

// remBitrate is the REMB for the publisher in bps (0 = none): its videoMaxRecvBandwidth and,
// without simulcast, the lowest videoMaxSendBandwidth of its subscribers, as Kurento did: an
// application that caps what one connection is sent gets a stream that fits it, not a paused one.
// Never under the publisher's videoMinRecvBandwidth on a subscriber's account. With simulcast, a
// subscriber's cap picks its layer instead and the others keep the top one.
func (p *Publisher) remBitrate() float32 {
	p.mu.Lock()
	video, simulcast := p.video, len(p.layers) > 1
	p.mu.Unlock()
	bps := p.maxBps
	if video == nil || simulcast {
		return bps
	}
	var subs float32
	for _, d := range *video.subs.Load() {
		if c := d.capBps(); c > 0 && (subs == 0 || c < subs) {
			subs = c
		}
	}
	if subs > 0 {
		subs = max(subs, p.minBps)
		if bps == 0 || subs < bps {
			bps = subs
		}
	}
	return bps
}

// kbps resolves a per-connection bandwidth (nil: the server's setting) to bps.
func kbps(own *int, server int) float32 {
	if own != nil {
		return float32(*own) * 1000
	}
	return float32(server) * 1000
}

// forwarder fans one incoming track out to its subscribers.
type forwarder struct {
	kind  webrtc.RTPCodecType
	codec webrtc.RTPCodecCapability
	log   *slog.Logger
	rid   string // the simulcast layer it carries, "" without simulcast

	ssrc atomic.Uint32                         // publisher's SSRC, for PLI and REMB
	pc   atomic.Pointer[webrtc.PeerConnection] // where keyframe requests go

	subsMu sync.Mutex
	subs   atomic.Pointer[[]*downTrack] // copy-on-write: the read loop never locks
	onSubs func()                       // told of every attach and detach (IngestRequest.OnSubscribers)

	ring *ring // retransmission buffer shared by all subscribers (video only)
	// ckind is the codec as an int, for keyframe detection on the hot path (codecOther for audio).
	ckind int

	kf keyframeRequests

	// Counters are per forwarder so publishers on different cores never share a cache line;
	// SFU.Stats sums them.
	packets atomic.Uint64 // received from the publisher
	bytes   atomic.Uint64
	lost    atomic.Uint64 // missing from the publisher's sequence (seqLoss)
	plis    atomic.Uint64 // keyframe requests sent to the publisher
	// upperBytes counts the bytes of a simulcast layer's packets in temporal layer 1 and in 2 or
	// more (VP8/VP9): what a subscriber is spared of the layer at a lower frame rate (simulcast.go).
	upperBytes [2]atomic.Uint64
	halfFrames atomic.Uint64 // and the frames of temporal layer 0 or 1 it began

	// The publisher's last RTP timestamp and its arrival (unix nanos), for the subscribers' sender
	// reports: they carry the publisher's timestamps unchanged.
	lastTS atomic.Uint32
	lastAt atomic.Int64
	// mediaAt is the arrival (unix nanos) of the last packet that carried new media: whether a
	// simulcast layer is being sent. Padding-only packets do not count: Chrome keeps sending its
	// bandwidth probes on the SSRC of a layer it stopped encoding when no RTX is negotiated, and
	// a layer kept alive by them had every subscriber wait for its keyframe (ci11's bed: nobody
	// got video for 13 s, keyframe requests at 2/s). Nor do retransmissions (behind the highest
	// sequence number): at a weak publisher's onset those of the layers Chrome had just stopped
	// kept them "sending" for 2-3 s more.
	mediaAt atomic.Int64
	// gen counts the incoming tracks this forwarder has carried: a reconnectStream brings a new
	// track with its own sequence numbers and timestamps, which a simulcast down-track must not
	// take for a continuation of the old one.
	gen atomic.Uint32
	// prevTS and prevAt are lastTS and lastAt of the track before the current one (newTrack), so
	// that down-tracks continue their timestamps from it.
	prevTS atomic.Uint32
	prevAt atomic.Int64
}

// newTrack starts a new incoming track (a new generation) on the forwarder.
func (f *forwarder) newTrack() {
	f.prevTS.Store(f.lastTS.Load())
	f.prevAt.Store(f.lastAt.Load())
	f.gen.Add(1)
}

func newForwarder(kind webrtc.RTPCodecType, c webrtc.RTPCodecCapability, log *slog.Logger) *forwarder {
	f := &forwarder{kind: kind, codec: c, log: log}
	if kind == webrtc.RTPCodecTypeVideo {
		f.ckind = codecKind(c.MimeType)
	}
	empty := []*downTrack{}
	f.subs.Store(&empty)
	if kind == webrtc.RTPCodecTypeVideo {
		f.ring = newRing()
	}
	return f
}

// run reads the publisher's track until it ends. The buffer and packet are reused: no allocation per
// packet on this path, and the subscriber list is read without a lock.
func (f *forwarder) run(tr *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	var loss seqLoss // per track: a renegotiated track starts its own sequence
	f.newTrack()
	var dbg *trackDebug // what arrives of a video, by the second, for PARLEY_LOG_LEVEL=debug
	if f.kind == webrtc.RTPCodecTypeVideo && f.log != nil && f.log.Enabled(context.Background(), slog.LevelDebug) {
		dbg = &trackDebug{f: f, ssrc: uint32(tr.SSRC())}
	}
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		f.forward(&pkt, buf[:n], &loss)
		if dbg != nil {
			dbg.packet(&pkt, n, loss.lost)
		}
	}
}

// trackDebug logs, at debug level, what arrives of one incoming video track: once a second its
// packets, the late ones (behind the highest sequence number: retransmissions, reordering), the
// missing ones, the frames and keyframes and the longest gap between packets of new media; each
// keyframe and each gap of new media over debugGap as it ends. Owned by the track's read
// goroutine; costs nothing unless debug logging is on.
type trackDebug struct {
	f                                          *forwarder
	ssrc                                       uint32
	started                                    bool
	highest                                    uint16
	at                                         int64 // start of the current second (unix nanos)
	newAt                                      int64 // arrival of the last packet of new media
	lost0                                      uint64
	pkts, late, lateMedia, frames, keys, bytes int
	maxGap                                     int64
}

// debugGap: a pause of new media this long is logged as it ends.
const debugGap = 250 * time.Millisecond

func (t *trackDebug) packet(p *rtp.Packet, n int, lost uint64) {
	f := t.f
	now := time.Now().UnixNano()
	if t.at == 0 {
		t.at, t.lost0 = now, lost
	}
	t.pkts++
	t.bytes += n
	media := len(p.Payload) > 0
	if !t.started || int16(p.SequenceNumber-t.highest) > 0 {
		t.started, t.highest = true, p.SequenceNumber
		if media {
			if t.newAt != 0 {
				gap := now - t.newAt
				t.maxGap = max(t.maxGap, gap)
				if gap >= int64(debugGap) {
					f.log.Debug("publisher video: new media after a gap", "rid", f.rid, "ssrc", t.ssrc, "gap_ms", gap/1e6, "seq", p.SequenceNumber)
				}
			}
			t.newAt = now
			if p.Marker {
				t.frames++
			}
		}
	} else {
		t.late++
		if media {
			t.lateMedia++
		}
	}
	if media && isKeyframeStart(f.ckind, p.Payload) {
		t.keys++
		f.kf.mu.Lock()
		asked := f.kf.lim.last
		f.kf.mu.Unlock()
		since := int64(-1)
		if !asked.IsZero() {
			since = time.Since(asked).Milliseconds()
		}
		f.log.Debug("publisher video: keyframe", "rid", f.rid, "ssrc", t.ssrc, "seq", p.SequenceNumber, "late", int16(p.SequenceNumber-t.highest) < 0, "since_asked_ms", since)
	}
	if now-t.at >= int64(time.Second) {
		f.log.Debug("publisher video: second", "rid", f.rid, "ssrc", t.ssrc, "pkts", t.pkts, "kbps", int64(t.bytes)*8*1e6/(now-t.at),
			"late", t.late, "late_media", t.lateMedia, "missing", lost-t.lost0, "frames", t.frames, "keys", t.keys, "max_gap_ms", t.maxGap/1e6)
		t.at, t.lost0 = now, lost
		t.pkts, t.late, t.lateMedia, t.frames, t.keys, t.bytes, t.maxGap = 0, 0, 0, 0, 0, 0, 0
	}
}

// forward counts one packet received from the publisher and fans it out.
func (f *forwarder) forward(pkt *rtp.Packet, raw []byte, loss *seqLoss) {
	f.forwardAt(pkt, raw, loss, time.Now().UnixNano())
}

// forwardAt is forward for a packet that arrived at now (unix nanos; a model clock in tests).
func (f *forwarder) forwardAt(pkt *rtp.Packet, raw []byte, loss *seqLoss, now int64) {
	f.packets.Add(1)
	f.bytes.Add(uint64(len(raw)))
	f.lastTS.Store(pkt.Timestamp)
	f.lastAt.Store(now)
	n, ahead := loss.update(pkt.SequenceNumber)
	if len(pkt.Payload) > 0 && ahead {
		f.mediaAt.Store(now)
	}
	if n > 0 {
		f.lost.Add(n)
	}
	if f.ring != nil {
		f.ring.put(pkt.SequenceNumber, raw, now)
	}
	key := f.ckind != codecOther && isKeyframeStart(f.ckind, pkt.Payload)
	if f.rid != "" {
		f.countTemporal(pkt.Payload, len(raw))
	}
	for _, d := range *f.subs.Load() {
		d.write(pkt, key)
	}
}

// maxDropout is the forward jump RFC 3550 (A.1) takes for a restarted sequence rather than loss.
const maxDropout = 3000

// seqLoss counts the packets missing from one incoming RTP sequence as RFC 3550 A.3 does
// (expected - received), kept as a running maximum because a counter must not go back: a packet
// that arrives late (reordered, or retransmitted after our NACK) makes up for the next loss
// instead of lowering the count. A few integer operations per packet, owned by the track's read
// goroutine.
type seqLoss struct {
	started        bool
	base, highest  uint64 // extended sequence numbers (cycles counted)
	received, lost uint64
}

// update takes the next packet's sequence number and returns how many more packets are now known
// to be missing, and whether it is new: past the highest so far (not a retransmission, a
// reordered packet or a duplicate).
func (l *seqLoss) update(seq uint16) (uint64, bool) {
	d := seq - uint16(l.highest)
	ahead := true
	switch {
	case !l.started || (d >= maxDropout && d < 0x8000):
		*l = seqLoss{started: true, base: uint64(seq), highest: uint64(seq)}
	case d != 0 && d < 0x8000:
		l.highest += uint64(d)
	default:
		ahead = false
	}
	l.received++
	expected := l.highest - l.base + 1
	if expected > l.received && expected-l.received > l.lost {
		n := expected - l.received - l.lost
		l.lost += n
		return n, ahead
	}
	return 0, ahead
}

func (f *forwarder) attach(d *downTrack) {
	f.subsMu.Lock()
	defer f.subsMu.Unlock()
	old := *f.subs.Load()
	next := make([]*downTrack, len(old), len(old)+1)
	copy(next, old)
	next = append(next, d)
	f.subs.Store(&next)
	if f.onSubs != nil {
		f.onSubs()
	}
}

func (f *forwarder) detach(d *downTrack) {
	f.subsMu.Lock()
	defer f.subsMu.Unlock()
	old := *f.subs.Load()
	next := make([]*downTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			next = append(next, x)
		}
	}
	f.subs.Store(&next)
	if f.onSubs != nil && len(next) != len(old) {
		f.onSubs()
	}
}

// ringSize packets of history (about 2–5 s of 1 Mbit/s video) answer subscriber NACKs.
const ringSize = 512

type ringSlot struct {
	seq uint16
	n   int
	at  int64 // arrival, unix nanos: too old a packet is not worth sending again
	buf [1500]byte
}

// ring is a fixed retransmission buffer indexed by sequence number.
type ring struct {
	mu    sync.Mutex // held only for a copy, never across a network write
	slots [ringSize]ringSlot
}

func newRing() *ring { return &ring{} }

func (r *ring) put(seq uint16, b []byte, at int64) {
	s := &r.slots[seq%ringSize]
	r.mu.Lock()
	s.seq, s.n, s.at = seq, copy(s.buf[:], b), at
	r.mu.Unlock()
}

// get copies packet seq into dst and reports its arrival time and whether it was still buffered.
func (r *ring) get(seq uint16, dst []byte) (int, int64, bool) {
	s := &r.slots[seq%ringSize]
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.n == 0 || s.seq != seq {
		return 0, 0, false
	}
	return copy(dst, s.buf[:s.n]), s.at, true
}

// Tap receives a copy of every RTP packet a publisher sends, on the forwarding goroutine: it must
// not block and must copy what it keeps (the packet and its payload are reused). Recording uses it.
type Tap interface {
	WriteRTP(p *rtp.Packet)
}

// AddTap attaches t to the stream's track of kind ("audio" or "video") and asks for a keyframe so a
// recording starts decodable. It returns a func that detaches it, or nil if there is no such track.
func (p *Publisher) AddTap(kind string, t Tap) (remove func()) {
	p.mu.Lock()
	f := p.audio
	if kind == webrtc.RTPCodecTypeVideo.String() {
		f = p.video
	}
	p.mu.Unlock()
	if f == nil {
		return nil
	}
	d := &downTrack{fwd: f, tap: t}
	if layers := p.simulcastLayers(f); len(layers) > 1 {
		d.sc = newSimulcast(d, layers) // the best layer being sent, whatever the subscribers take
	}
	d.attach()
	d.requestKeyframe(true)
	if kind != webrtc.RTPCodecTypeVideo.String() {
		return d.detach
	}
	p.mu.Lock()
	p.taps = append(p.taps, d)
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.taps = slices.DeleteFunc(p.taps, func(x *downTrack) bool { return x == d })
		p.mu.Unlock()
		d.detach()
	}
}

// Codec returns the codec of the stream's track of kind ("audio" or "video"); ok is false when the
// stream has no such track.
func (p *Publisher) Codec(kind string) (c webrtc.RTPCodecCapability, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.audio
	if kind == webrtc.RTPCodecTypeVideo.String() {
		f = p.video
	}
	if f == nil {
		return c, false
	}
	return f.codec, true
}

// RequestKeyframe asks the publisher for a keyframe of what its video taps receive (throttled like
// every request). With simulcast that is the layer each tap forwards, not the top one: a browser
// answers a request for one layer with a keyframe of that layer only, and the top layer may not be
// arriving at all (Chrome starts it late, or stops it when short of bandwidth or CPU), so a
// recording that asked for it would never get the keyframe it waits for.
func (p *Publisher) RequestKeyframe() {
	p.mu.Lock()
	f, taps := p.video, slices.Clone(p.taps)
	p.mu.Unlock()
	if len(taps) > 0 {
		for _, d := range taps {
			d.requestKeyframe(true)
		}
		return
	}
	if f != nil {
		f.requestKeyframe(true)
	}
}
