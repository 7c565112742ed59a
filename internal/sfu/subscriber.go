package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
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
}

// Subscriber is one subscription: a PeerConnection carrying one publisher's tracks to one browser.
type Subscriber struct {
	sfu   *SFU
	pc    *webrtc.PeerConnection
	downs []*downTrack
	// srSlice is the tenth of each second in which this subscriber's sender reports go out.
	srSlice uint32
	wg      sync.WaitGroup
	once    sync.Once
}

// downTrack is one forwarded track of one subscriber.
type downTrack struct {
	fwd     *forwarder
	track   *boundTrack // nil for a tap
	tap     Tap
	hdr     rtp.Header // scratch for the forwarder's writes; only its read loop touches it
	sent    atomic.Uint64
	bytes   atomic.Uint64
	payload atomic.Uint64 // payload octets, for sender reports
	errs    atomic.Uint64 // writes that failed (not yet connected, closed)
	nacks   atomic.Uint64 // sequence numbers the subscriber asked for again
	resent  atomic.Uint64 // of those, found in the buffer and sent
	lost    atomic.Uint64 // cumulative packets lost, as the subscriber's receiver reports say
}

// write sends one packet. The network write happens with no lock held; pion's UDP path does not
// block on a slow receiver, so one subscriber cannot stall the publisher's read loop.
func (d *downTrack) write(p *rtp.Packet) { d.writeWith(&d.hdr, p) }

// writeWith is write with the caller's scratch header: a goroutine other than the forwarder's (the
// NACK answers) brings its own.
func (d *downTrack) writeWith(h *rtp.Header, p *rtp.Packet) {
	if d.tap != nil {
		d.tap.WriteRTP(p)
		return
	}
	if !d.track.write(h, p) {
		d.errs.Add(1)
		return
	}
	d.sent.Add(1)
	d.payload.Add(uint64(len(p.Payload)))
	d.bytes.Add(uint64(p.Header.MarshalSize() + len(p.Payload)))
}

// Subscribe creates a PeerConnection for a browser's recvonly offer carrying pub's tracks.
func (s *SFU) Subscribe(ctx context.Context, pub *Publisher, req SubscribeRequest) (*Subscriber, string, error) {
	pub.mu.Lock()
	audio, video, closed := pub.audio, pub.video, pub.closed
	pub.mu.Unlock()
	if closed {
		return nil, "", errors.New("publisher closed")
	}
	pc, err := s.subAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", err
	}
	sub := &Subscriber{sfu: s, pc: pc, srSlice: s.srNext.Add(1) % srSlices}
	fail := func(err error) (*Subscriber, string, error) { sub.Close(); return nil, "", err }
	var senders []*webrtc.RTPSender
	for _, f := range []*forwarder{audio, video} {
		if f == nil {
			continue
		}
		tr, err := newBoundTrack(f.codec, f.kind.String(), req.StreamID)
		if err != nil {
			return fail(err)
		}
		snd, err := pc.AddTrack(tr)
		if err != nil {
			return fail(err)
		}
		senders = append(senders, snd)
		sub.downs = append(sub.downs, &downTrack{fwd: f, track: tr})
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: req.Offer}); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrSDP, err))
	}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			// Video starts at once instead of at the publisher's next periodic keyframe.
			for _, d := range sub.downs {
				d.fwd.requestKeyframe()
			}
		}
		if req.OnState != nil {
			req.OnState(st.String())
		}
	})
	watchPath(pc, req.OnPath)
	ans, err := answer(ctx, pc)
	if err != nil {
		return fail(err)
	}
	s.track(nil, sub)
	for i, d := range sub.downs {
		d.fwd.attach(d)
		sub.wg.Add(1)
		go sub.readRTCP(senders[i], d)
	}
	return sub, ans, nil
}

// readRTCP serves the subscriber's feedback: NACKs from the shared retransmission buffer (the loss of
// one subscriber never reaches the publisher), PLI/FIR as throttled keyframe requests.
func (sub *Subscriber) readRTCP(snd *webrtc.RTPSender, d *downTrack) {
	defer sub.wg.Done()
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	var hdr rtp.Header
	var ssrc uint32
	if enc := snd.GetParameters().Encodings; len(enc) > 0 {
		ssrc = uint32(enc[0].SSRC)
	}
	for {
		pkts, _, err := snd.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.ReceiverReport:
				d.reportLoss(ssrc, p.Reports)
			case *rtcp.SenderReport: // a subscriber that also sends puts its reports here
				d.reportLoss(ssrc, p.Reports)
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				d.fwd.requestKeyframe()
			case *rtcp.TransportLayerNack:
				if d.fwd.ring == nil {
					continue
				}
				for _, pair := range p.Nacks {
					for _, seq := range pair.PacketList() {
						d.nacks.Add(1)
						n, ok := d.fwd.ring.get(seq, buf)
						if ok && pkt.Unmarshal(buf[:n]) == nil {
							d.resent.Add(1)
							d.writeWith(&hdr, &pkt)
						}
					}
				}
			}
		}
	}
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

// AddCandidate applies a browser candidate.
func (sub *Subscriber) AddCandidate(c Candidate) error { return addCandidate(sub.pc, c) }

// Sent reports the RTP packets forwarded to this subscriber so far.
func (sub *Subscriber) Sent() uint64 {
	var n uint64
	for _, d := range sub.downs {
		n += d.sent.Load()
	}
	return n
}

// Close detaches from the publisher and closes the PeerConnection.
func (sub *Subscriber) Close() {
	sub.once.Do(func() {
		for _, d := range sub.downs {
			d.fwd.detach(d)
		}
		_ = sub.pc.Close()
		sub.wg.Wait()
		sub.sfu.untrack(nil, sub)
	})
}
