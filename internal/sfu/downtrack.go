package sfu

import (
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// boundTrack is the local track of one subscription. pion's TrackLocalStaticRTP does the codec
// matching when it is bound; we then keep that one binding's write stream, SSRC and payload type and
// write to it directly. The static track's own WriteRTP takes a pooled packet copy, a read lock and
// an error slice per packet for a list of bindings that here is always one long (≈ 5 % of the audio
// room's CPU in the profile).
type boundTrack struct {
	*webrtc.TrackLocalStaticRTP
	out atomic.Pointer[binding]
}

// binding is what a write needs from webrtc.TrackLocalContext.
type binding struct {
	id     string
	ssrc   uint32
	pt     uint8
	stream webrtc.TrackLocalWriter
}

func newBoundTrack(c webrtc.RTPCodecCapability, id, streamID string) (*boundTrack, error) {
	t, err := webrtc.NewTrackLocalStaticRTP(c, id, streamID)
	if err != nil {
		return nil, err
	}
	return &boundTrack{TrackLocalStaticRTP: t}, nil
}

// Bind implements webrtc.TrackLocal.
func (t *boundTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codec, err := t.TrackLocalStaticRTP.Bind(ctx)
	if err == nil {
		t.out.Store(&binding{id: ctx.ID(), ssrc: uint32(ctx.SSRC()), pt: uint8(codec.PayloadType), stream: ctx.WriteStream()})
	}
	return codec, err
}

// Unbind implements webrtc.TrackLocal.
func (t *boundTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	if b := t.out.Load(); b != nil && b.id == ctx.ID() {
		t.out.CompareAndSwap(b, nil)
	}
	return t.TrackLocalStaticRTP.Unbind(ctx)
}

// write sends p with this binding's SSRC and payload type and the sequence number seq, using h
// (owned by the caller's goroutine, so the header handed to pion needs no allocation) as scratch. It
// reports false when the track is not bound (before negotiation, after close) or the write failed.
func (t *boundTrack) write(h *rtp.Header, p *rtp.Packet, seq uint16, tsOff uint32) bool {
	b := t.out.Load()
	if b == nil {
		return false
	}
	*h = p.Header
	h.SSRC, h.PayloadType, h.SequenceNumber = b.ssrc, b.pt, seq
	h.Timestamp += tsOff
	if p.PaddingSize != 0 && h.PaddingSize == 0 {
		h.PaddingSize = p.PaddingSize // the payload goes separately, so padding must ride in the header
	}
	_, err := b.stream.WriteRTP(h, p.Payload)
	return err == nil
}
