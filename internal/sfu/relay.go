package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/pion/webrtc/v4"
)

// Inter-node links (cascading, internal/cascade): a stream published on node A and subscribed on
// node B crosses A→B once, whatever the number of its subscribers on B, on the one PeerConnection
// the two nodes share (Relay), which carries both directions.
//
// One PeerConnection per node pair, not one per direction: a node's media all goes through one
// UDP port per address, demultiplexed by the remote address (pion's UDP mux), so two
// PeerConnections between the same two nodes' addresses cannot be told apart. Their packets went
// to either, half of each stream failing SRTP authentication in the wrong one (the two-node browser
// test lost ~50 % of each stream when both nodes sent).
//
// One end always offers (the cascade picks it: the lower node id), so the two never offer at
// once. Streams the offering end sends get sendonly m-lines it adds (Add); streams it receives get
// recvonly m-lines it adds (Expect), on which the answering end puts its tracks (Answer).
//
// On the sending end each stream is a subscription of the link (the stream's top layer only: the
// other node's subscribers share it) with no congestion state: the other node adapts each of its
// own subscribers, and pausing the link would take the video from all of them. It answers NACKs
// from the publisher's retransmission buffer, bounded by the once-per-round-trip and age rules
// only (the link is between our own nodes), and passes PLIs to the publisher through its merged,
// rate-bounded keyframe requests. On the receiving end each stream is a local publisher, like an
// ingested one, whose subscribers are that node's participants; its NACK generator and receiver
// reports go back over the link. internal/cascade authenticates the signalling.

// MaxLinkMLines bounds the m-lines of one link (both directions, every kind): past it a stream
// that needs a new one is refused (its subscribers on the other node get an error). pion never
// removes an m-line (pion/webrtc#3007), so the m-lines of a stream that stopped crossing are reused
// for the next stream of their kind: a link has about as many as streams cross it at once, two per
// audio-and-video stream, not one per stream that ever crossed. 500 keeps the link's offer, whose
// m-lines take 1-2 KB each, under the signalling's 1 MiB bound (internal/cascade).
const MaxLinkMLines = 500

// ErrLinkFull is what a stream gets that would take a link past MaxLinkMLines.
var ErrLinkFull = errors.New("the inter-node link carries as many streams as it may")

// RelayCodec is the codec of one track of a relayed stream, as the sending node tells the
// receiving one, so the receiving node's publisher exists, with its codecs, before media arrives.
type RelayCodec struct {
	Kind      string `json:"kind"` // "audio" or "video"
	MimeType  string `json:"mimeType"`
	ClockRate uint32 `json:"clockRate"`
	Channels  uint16 `json:"channels,omitempty"`
	Fmtp      string `json:"fmtp,omitempty"`
}

func (c RelayCodec) capability() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{MimeType: c.MimeType, ClockRate: c.ClockRate, Channels: c.Channels, SDPFmtpLine: c.Fmtp}
}

// Relay is this node's end of the link with one other node.
type Relay struct {
	s       *SFU
	pc      *webrtc.PeerConnection
	log     *slog.Logger
	offerer bool

	// mu is taken before the PeerConnection's own locks (adding and listing transceivers run
	// under it); pion's callbacks take it while holding none of theirs.
	mu     sync.Mutex
	out    map[string]*relayedOut // the streams this node sends
	in     map[string]*relayedIn  // the streams it receives
	closed bool
	// gone are the counts of the streams taken off, so Stats' counters never go back.
	gone RelayStats
	// On the offering end, the m-lines of streams that stopped crossing, for the next stream of
	// their kind: freeOut were sending (Remove), freeIn receiving (Drop).
	freeOut, freeIn []*webrtc.RTPTransceiver
	wg              sync.WaitGroup // the received tracks' read loops
}

type relayedOut struct {
	sub     *Subscriber
	senders []*webrtc.RTPSender // nil on the answering end until an offer gives it m-lines
	codecs  []RelayCodec
	started bool
}

type relayedIn struct {
	pub *Publisher
	// trs are the recvonly transceivers the offering end added for the stream, by kind.
	trs []*webrtc.RTPTransceiver
}

// NewRelay creates this node's end of a link; offerer says whether it makes the offers. onState
// (optional) is told the connection's states.
func (s *SFU) NewRelay(log *slog.Logger, offerer bool, onState func(string)) (*Relay, error) {
	if log == nil {
		log = s.log
	}
	pc, err := s.relayAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	r := &Relay{s: s, pc: pc, log: log, offerer: offerer, out: map[string]*relayedOut{}, in: map[string]*relayedIn{}}
	pc.OnTrack(r.onTrack)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			r.requestKeyframes()
		}
		if onState != nil {
			onState(st.String())
		}
	})
	return r, nil
}

func (r *Relay) requestKeyframes() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.out {
		if o.started {
			for _, d := range o.sub.downs {
				d.requestKeyframe(true)
			}
		}
	}
}

// ---- sending ----

// Add puts pub's tracks on the link as stream id and returns their codecs: on the offering end in
// m-lines of its next offer, on the answering end on the m-lines the next offer names for it
// (Answer). A stream the link carries already keeps its tracks.
func (r *Relay) Add(id string, pub *Publisher) ([]RelayCodec, error) {
	pub.mu.Lock()
	audio, video, closed := pub.audio, pub.video, pub.closed
	pub.mu.Unlock()
	if closed {
		return nil, errors.New("publisher closed")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("link closed")
	}
	if o := r.out[id]; o != nil {
		return o.codecs, nil
	}
	sub := &Subscriber{sfu: r.s, pc: r.pc, log: r.log, srSlice: r.s.srNext.Add(1) % srSlices, relayed: true}
	o := &relayedOut{sub: sub}
	for _, f := range []*forwarder{audio, video} {
		if f == nil {
			continue
		}
		tr, err := newBoundTrack(f.codec, f.kind.String(), id)
		if err != nil {
			return nil, err
		}
		if r.offerer {
			snd, err := r.sendOn(tr, f.kind)
			if err != nil {
				for _, snd := range o.senders {
					_ = r.pc.RemoveTrack(snd)
				}
				return nil, err
			}
			o.senders = append(o.senders, snd)
		}
		// Ungated, with no congestion state (see the top of this file).
		sub.downs = append(sub.downs, &downTrack{fwd: f, track: tr, sub: sub})
		o.codecs = append(o.codecs, RelayCodec{Kind: f.kind.String(), MimeType: f.codec.MimeType, ClockRate: f.codec.ClockRate,
			Channels: f.codec.Channels, Fmtp: f.codec.SDPFmtpLine})
	}
	r.out[id] = o
	return o.codecs, nil
}

// sendOn puts track on an m-line of the offering end: one a stream taken off left (the answering
// end sees its old track's SSRC gone and the new one's come, and starts a new receiver for it), or a
// new one within MaxLinkMLines. Called with r.mu held.
func (r *Relay) sendOn(track webrtc.TrackLocal, kind webrtc.RTPCodecType) (*webrtc.RTPSender, error) {
	if t := takeFree(&r.freeOut, kind, func(t *webrtc.RTPTransceiver) bool { return t.Sender() == nil }); t != nil {
		snd, err := r.s.relayAPI.NewRTPSender(track, r.pc.SCTP().Transport())
		if err != nil {
			return nil, err
		}
		if err := t.SetSender(snd, track); err != nil {
			_ = snd.Stop()
			return nil, err
		}
		return snd, nil
	}
	if len(r.pc.GetTransceivers()) >= MaxLinkMLines {
		return nil, ErrLinkFull
	}
	t, err := r.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, err
	}
	return t.Sender(), nil
}

// takeFree takes from free the first m-line of kind that ok accepts, or returns nil.
func takeFree(free *[]*webrtc.RTPTransceiver, kind webrtc.RTPCodecType, ok func(*webrtc.RTPTransceiver) bool) *webrtc.RTPTransceiver {
	for i, t := range *free {
		if t.Kind() == kind && ok(t) {
			*free = append((*free)[:i], (*free)[i+1:]...)
			return t
		}
	}
	return nil
}

// Remove takes stream id off the link. On the offering end its m-lines go to the next stream
// added; on the answering end the offering end reuses them once an answer showed them unused.
func (r *Relay) Remove(id string) {
	r.mu.Lock()
	o := r.out[id]
	delete(r.out, id)
	if o != nil {
		for _, d := range o.sub.downs {
			r.gone.Packets += d.sent.Load()
			r.gone.Bytes += d.bytes.Load()
		}
	}
	r.mu.Unlock()
	if o == nil {
		return
	}
	var freed []*webrtc.RTPTransceiver
	for _, snd := range o.senders {
		if r.offerer {
			for _, t := range r.pc.GetTransceivers() {
				if t.Sender() == snd {
					freed = append(freed, t)
				}
			}
		}
		_ = r.pc.RemoveTrack(snd) // ends the sender's RTCP reader
	}
	if len(freed) > 0 {
		r.mu.Lock()
		if !r.closed {
			r.freeOut = append(r.freeOut, freed...)
		}
		r.mu.Unlock()
	}
	o.sub.Close()
}

// MLines returns the number of m-lines the link has (MaxLinkMLines bounds it).
func (r *Relay) MLines() int { return len(r.pc.GetTransceivers()) }

// Streams returns the ids of the streams this end sends.
func (r *Relay) Streams() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.out))
	for id := range r.out {
		out = append(out, id)
	}
	return out
}

// RelayStats are a link's counters of what this end sends.
type RelayStats struct {
	// Tracks is the number of tracks the link sends.
	Tracks int
	// Packets and Bytes are the RTP sent on the link so far (headers included, SRTP overhead not),
	// streams taken off included.
	Packets, Bytes uint64
}

// Stats returns the counters of what this end sends.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.gone
	for _, o := range r.out {
		for _, d := range o.sub.downs {
			st.Tracks++
			st.Packets += d.sent.Load()
			st.Bytes += d.bytes.Load()
		}
	}
	return st
}

// startOut starts the streams whose m-lines have been negotiated. Called with r.mu held.
func (r *Relay) startOut(connected bool) {
	for _, o := range r.out {
		if o.started || len(o.senders) != len(o.sub.downs) {
			continue
		}
		o.started = true
		o.sub.answered.Store(true)
		o.sub.start(o.senders)
		if connected { // else the connection's start asks
			for _, d := range o.sub.downs {
				d.requestKeyframe(true)
			}
		}
	}
}

// ---- receiving ----

// Expect makes the local publisher of stream id, with codecs, before media arrives; on the
// offering end it also adds the stream's recvonly m-lines to its next offer. A stream expected
// already keeps its publisher.
func (r *Relay) Expect(id string, codecs []RelayCodec) (*Publisher, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("link closed")
	}
	if in := r.in[id]; in != nil {
		return in.pub, nil
	}
	p := &Publisher{sfu: r.s, log: r.log, stop: make(chan struct{}), relayed: true}
	in := &relayedIn{pub: p}
	for _, c := range codecs {
		var kind webrtc.RTPCodecType
		switch c.Kind {
		case webrtc.RTPCodecTypeVideo.String():
			if p.video != nil {
				continue
			}
			kind = webrtc.RTPCodecTypeVideo
			p.video = newForwarder(kind, c.capability(), r.log)
		case webrtc.RTPCodecTypeAudio.String():
			if p.audio != nil {
				continue
			}
			kind = webrtc.RTPCodecTypeAudio
			p.audio = newForwarder(kind, c.capability(), r.log)
		default:
			continue
		}
		if !r.offerer {
			continue
		}
		// An m-line a dropped stream left, once an answer showed its sender gone: pion then gave it
		// a new receiver, which starts (onTrack) for the next stream the answering end puts on it.
		t := takeFree(&r.freeIn, kind, func(t *webrtc.RTPTransceiver) bool { return t.Receiver() != nil && len(t.Receiver().Tracks()) == 0 })
		if t == nil {
			if len(r.pc.GetTransceivers()) >= MaxLinkMLines {
				r.freeIn = append(r.freeIn, in.trs...)
				return nil, ErrLinkFull
			}
			var err error
			if t, err = r.pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				r.freeIn = append(r.freeIn, in.trs...)
				return nil, err
			}
		}
		if pc, ok := relayCodec(c); ok {
			// One codec per m-line: the sending end's track binds to it.
			if err := t.SetCodecPreferences([]webrtc.RTPCodecParameters{pc}); err != nil {
				r.freeIn = append(r.freeIn, append(in.trs, t)...)
				return nil, fmt.Errorf("%w: %v", ErrSDP, err)
			}
		}
		in.trs = append(in.trs, t)
	}
	if p.audio == nil && p.video == nil {
		return nil, fmt.Errorf("%w: stream %s has no audio or video", ErrSDP, id)
	}
	r.in[id] = in
	r.s.track(p, nil)
	return p, nil
}

// relayCodec is our registered codec matching c.
func relayCodec(c RelayCodec) (webrtc.RTPCodecParameters, bool) {
	if strings.EqualFold(c.MimeType, opus.MimeType) {
		return opus, true
	}
	for _, v := range videoCodecs {
		if strings.EqualFold(v.MimeType, c.MimeType) && fmtpCompatible(v.MimeType, v.SDPFmtpLine, c.Fmtp) {
			return v, true
		}
	}
	return webrtc.RTPCodecParameters{}, false
}

// Drop closes stream id's publisher (its last subscriber here left). On the offering end its
// m-lines go to a later stream (Expect).
func (r *Relay) Drop(id string) {
	r.mu.Lock()
	in := r.in[id]
	delete(r.in, id)
	if in != nil && !r.closed {
		r.freeIn = append(r.freeIn, in.trs...)
	}
	r.mu.Unlock()
	if in != nil {
		in.pub.Close()
	}
}

// onTrack feeds a track of the link to its stream's publisher until the track ends (the sending
// node took it off) or the link closes. A publisher closed meanwhile still takes the packets, with
// nobody attached, until then.
func (r *Relay) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	r.mu.Lock()
	in := r.in[tr.StreamID()]
	if r.closed || in == nil {
		r.mu.Unlock()
		return
	}
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()
	f := in.pub.audio
	if tr.Kind() == webrtc.RTPCodecTypeVideo {
		f = in.pub.video
	}
	if f == nil {
		return
	}
	f.ssrc.Store(uint32(tr.SSRC()))
	f.pc.Store(r.pc)
	f.requestKeyframe(true) // subscribers may already be waiting
	f.run(tr)
}

// ---- negotiation ----

// Offer returns the offering end's complete offer for what the link carries now, and the m-lines
// (mids) on which the answering end is to send each stream this end expects.
func (r *Relay) Offer(ctx context.Context) (string, map[string][]string, error) {
	if !r.offerer {
		return "", nil, errors.New("the answering end of a link does not offer")
	}
	o, err := r.pc.CreateOffer(nil)
	if err != nil {
		return "", nil, err
	}
	if err := setLocal(ctx, r.pc, o); err != nil {
		return "", nil, err
	}
	recv := map[string][]string{}
	r.mu.Lock()
	for id, in := range r.in {
		for _, t := range in.trs {
			recv[id] = append(recv[id], t.Mid())
		}
	}
	r.mu.Unlock()
	return r.pc.LocalDescription().SDP, recv, nil
}

// SetAnswer applies the answering end's answer; the streams this end sends start.
func (r *Relay) SetAnswer(answer string) error {
	if err := r.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("%w: %v", ErrSDP, err)
	}
	connected := r.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
	r.mu.Lock()
	defer r.mu.Unlock()
	r.startOut(connected)
	return nil
}

// Answer applies the offering end's offer, puts each stream this end sends (Add) on the m-lines
// send names for it, and returns our complete answer; those streams start.
func (r *Relay) Answer(ctx context.Context, offer string, send map[string][]string) (string, error) {
	if r.offerer {
		return "", errors.New("the offering end of a link does not answer")
	}
	if err := r.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrSDP, err)
	}
	r.mu.Lock()
	for id, mids := range send {
		if o := r.out[id]; o != nil && o.senders == nil {
			if err := r.attach(o, mids); err != nil {
				r.log.Warn("cascade: a stream could not be put on the link", "stream", id, "err", err)
			}
		}
	}
	r.mu.Unlock()
	ans, err := answer(ctx, r.pc)
	if err != nil {
		return "", err
	}
	connected := r.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
	r.mu.Lock()
	r.startOut(connected)
	r.mu.Unlock()
	return ans, nil
}

// attach puts o's tracks on the offered recvonly m-lines mids, one per track, by kind. Called
// with r.mu held.
func (r *Relay) attach(o *relayedOut, mids []string) error {
	byMid := map[string]*webrtc.RTPTransceiver{}
	for _, t := range r.pc.GetTransceivers() {
		byMid[t.Mid()] = t
	}
	var senders []*webrtc.RTPSender
	used := map[string]bool{}
	for _, d := range o.sub.downs {
		var t *webrtc.RTPTransceiver
		for _, mid := range mids {
			if c := byMid[mid]; c != nil && !used[mid] && c.Kind() == d.fwd.kind && c.Sender() == nil {
				t = c
				used[mid] = true
				break
			}
		}
		if t == nil {
			return fmt.Errorf("no offered %s m-line among %v", d.fwd.kind, mids)
		}
		snd, err := r.s.relayAPI.NewRTPSender(d.track, r.pc.SCTP().Transport())
		if err != nil {
			return err
		}
		if err := t.SetSender(snd, d.track); err != nil {
			_ = snd.Stop()
			return err
		}
		senders = append(senders, snd)
	}
	o.senders = senders
	return nil
}

// Close ends the link: every stream it sends and every publisher it feeds.
func (r *Relay) Close() {
	r.mu.Lock()
	r.closed = true
	out, in := r.out, r.in
	r.out, r.in = map[string]*relayedOut{}, map[string]*relayedIn{}
	for _, o := range out {
		for _, d := range o.sub.downs {
			r.gone.Packets += d.sent.Load()
			r.gone.Bytes += d.bytes.Load()
		}
	}
	r.mu.Unlock()
	_ = r.pc.Close()
	for _, o := range out {
		o.sub.Close()
	}
	r.wg.Wait()
	for _, p := range in {
		p.pub.Close()
	}
}
