package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// Inter-node links (cascading, internal/cascade): a stream published on node A and subscribed on
// node B crosses A→B once, on one PeerConnection per ordered node pair, whatever the number of its
// subscribers on B. On A the link is a subscriber of each stream it carries (RelayOut), with the
// subscriber's feedback handling: NACKs answered from the publisher's retransmission buffer, PLIs
// passed to the publisher through its merged, rate-bounded keyframe requests. On B each stream is a
// publisher (RelayIn), like an ingested one, whose subscribers are B's participants; B's own
// feedback (its NACK generator and receiver reports) goes back over the link. The PeerConnections
// are ordinary DTLS-SRTP ones on the media port; internal/cascade authenticates their signalling.

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

// RelayOut is the sending end of a link: the streams of this node that one other node subscribes
// to. Add and Remove change what it carries; Offer and SetAnswer negotiate the change.
type RelayOut struct {
	s   *SFU
	pc  *webrtc.PeerConnection
	log *slog.Logger

	mu      sync.Mutex
	streams map[string]*relayedOut
	// gone are the counts of the streams taken off, so Stats' counters never go back.
	gone RelayStats
}

type relayedOut struct {
	sub     *Subscriber
	senders []*webrtc.RTPSender
	codecs  []RelayCodec
	started bool
}

// NewRelayOut creates the sending end of a link; onState (optional) is told its connection states.
func (s *SFU) NewRelayOut(log *slog.Logger, onState func(string)) (*RelayOut, error) {
	if log == nil {
		log = s.log
	}
	pc, err := s.subAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	r := &RelayOut{s: s, pc: pc, log: log, streams: map[string]*relayedOut{}}
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

func (r *RelayOut) requestKeyframes() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.streams {
		if o.started {
			for _, d := range o.sub.downs {
				d.requestKeyframe(true)
			}
		}
	}
}

// Add puts pub's tracks on the link as stream id, from the next negotiation on, and returns their
// codecs. A stream the link carries already keeps its tracks.
func (r *RelayOut) Add(id string, pub *Publisher) ([]RelayCodec, error) {
	pub.mu.Lock()
	audio, video, closed := pub.audio, pub.video, pub.closed
	pub.mu.Unlock()
	if closed {
		return nil, errors.New("publisher closed")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if o := r.streams[id]; o != nil {
		return o.codecs, nil
	}
	// The top layer of a simulcast stream only: the receiving node's subscribers share it.
	sub, senders, err := r.s.subscriberOn(r.pc, audio, video, nil, SubscribeRequest{StreamID: id, Log: r.log}, true)
	if err != nil {
		return nil, err
	}
	sub.relayed = true
	o := &relayedOut{sub: sub, senders: senders}
	for _, f := range []*forwarder{audio, video} {
		if f != nil {
			o.codecs = append(o.codecs, RelayCodec{Kind: f.kind.String(), MimeType: f.codec.MimeType, ClockRate: f.codec.ClockRate,
				Channels: f.codec.Channels, Fmtp: f.codec.SDPFmtpLine})
		}
	}
	r.streams[id] = o
	return o.codecs, nil
}

// Remove takes stream id off the link, from the next negotiation on.
func (r *RelayOut) Remove(id string) {
	r.mu.Lock()
	o := r.streams[id]
	delete(r.streams, id)
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
	for _, snd := range o.senders {
		_ = r.pc.RemoveTrack(snd) // ends the sender's RTCP reader
	}
	o.sub.Close()
}

// Streams returns the ids of the streams the link carries.
func (r *RelayOut) Streams() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.streams))
	for id := range r.streams {
		out = append(out, id)
	}
	return out
}

// RelayStats are a link's counters.
type RelayStats struct {
	// Tracks is the number of tracks the link sends.
	Tracks int
	// Packets and Bytes are the RTP sent on the link so far (headers included, SRTP overhead not),
	// streams taken off included.
	Packets, Bytes uint64
}

// Stats returns the link's counters.
func (r *RelayOut) Stats() RelayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.gone
	for _, o := range r.streams {
		for _, d := range o.sub.downs {
			st.Tracks++
			st.Packets += d.sent.Load()
			st.Bytes += d.bytes.Load()
		}
	}
	return st
}

// Offer returns our complete offer for what the link carries now.
func (r *RelayOut) Offer(ctx context.Context) (string, error) {
	o, err := r.pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(r.pc)
	if err := r.pc.SetLocalDescription(o); err != nil {
		return "", err
	}
	t := time.NewTimer(gatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return r.pc.LocalDescription().SDP, nil
}

// SetAnswer applies the other node's answer; the streams it now receives start.
func (r *RelayOut) SetAnswer(answer string) error {
	if err := r.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("%w: %v", ErrSDP, err)
	}
	connected := r.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.streams {
		if o.started {
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
	return nil
}

// Close ends the link and every stream on it.
func (r *RelayOut) Close() {
	r.mu.Lock()
	streams := r.streams
	r.streams = map[string]*relayedOut{}
	r.mu.Unlock()
	_ = r.pc.Close()
	for _, o := range streams {
		o.sub.Close()
	}
}

// RelayIn is the receiving end of a link: the other node's streams, each a local publisher.
type RelayIn struct {
	s   *SFU
	pc  *webrtc.PeerConnection
	log *slog.Logger

	mu     sync.Mutex
	pubs   map[string]*Publisher
	closed bool
	wg     sync.WaitGroup // the tracks' read loops
}

// NewRelayIn creates the receiving end of a link; onState (optional) is told its connection states.
func (s *SFU) NewRelayIn(log *slog.Logger, onState func(string)) (*RelayIn, error) {
	if log == nil {
		log = s.log
	}
	pc, err := s.pubAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	r := &RelayIn{s: s, pc: pc, log: log, pubs: map[string]*Publisher{}}
	pc.OnTrack(r.onTrack)
	if onState != nil {
		pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) { onState(st.String()) })
	}
	return r, nil
}

// onTrack feeds a track of the link to its stream's publisher until the track ends (the sending
// node took it off) or the link closes. A publisher closed meanwhile still takes the packets, with
// nobody attached, until then.
func (r *RelayIn) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	r.mu.Lock()
	p := r.pubs[tr.StreamID()]
	if r.closed || p == nil {
		r.mu.Unlock()
		return
	}
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()
	f := p.audio
	if tr.Kind() == webrtc.RTPCodecTypeVideo {
		f = p.video
	}
	if f == nil {
		return
	}
	f.ssrc.Store(uint32(tr.SSRC()))
	f.pc.Store(r.pc)
	f.requestKeyframe(true) // subscribers may already be waiting
	f.run(tr)
}

// Expect makes the local publisher of stream id, with codecs, before the offer that carries it;
// a stream expected already keeps its publisher.
func (r *RelayIn) Expect(id string, codecs []RelayCodec) (*Publisher, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("link closed")
	}
	if p := r.pubs[id]; p != nil {
		return p, nil
	}
	p := &Publisher{sfu: r.s, log: r.log, stop: make(chan struct{}), relayed: true}
	for _, c := range codecs {
		switch c.Kind {
		case webrtc.RTPCodecTypeVideo.String():
			if p.video == nil {
				p.video = newForwarder(webrtc.RTPCodecTypeVideo, c.capability(), r.log)
			}
		case webrtc.RTPCodecTypeAudio.String():
			if p.audio == nil {
				p.audio = newForwarder(webrtc.RTPCodecTypeAudio, c.capability(), r.log)
			}
		}
	}
	if p.audio == nil && p.video == nil {
		return nil, fmt.Errorf("%w: stream %s has no audio or video", ErrSDP, id)
	}
	r.pubs[id] = p
	r.s.track(p, nil)
	return p, nil
}

// Drop closes stream id's publisher (its last subscriber here left).
func (r *RelayIn) Drop(id string) {
	r.mu.Lock()
	p := r.pubs[id]
	delete(r.pubs, id)
	r.mu.Unlock()
	if p != nil {
		p.Close()
	}
}

// Answer applies the sending node's offer and returns our complete answer.
func (r *RelayIn) Answer(ctx context.Context, offer string) (string, error) {
	if err := r.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrSDP, err)
	}
	return answer(ctx, r.pc)
}

// Close ends the link and closes every stream's publisher.
func (r *RelayIn) Close() {
	r.mu.Lock()
	r.closed = true
	pubs := r.pubs
	r.pubs = map[string]*Publisher{}
	r.mu.Unlock()
	_ = r.pc.Close()
	r.wg.Wait()
	for _, p := range pubs {
		p.Close()
	}
}
