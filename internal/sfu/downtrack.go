package sfu

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
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
	// tcc, when set (a simulcast video's track), numbers every packet transport-wide for the
	// subscriber's delay feedback (delayfeedback.go), if it negotiated transport-cc.
	tcc *transportCC
}

// binding is what a write needs from webrtc.TrackLocalContext.
type binding struct {
	id     string
	ssrc   uint32
	pt     uint8
	stream webrtc.TrackLocalWriter
	// rtxSSRC and rtxPT are the retransmission stream's (RFC 4588) when the subscriber
	// negotiated one (0: retransmissions go on the media stream); rtxSeq numbers its packets.
	rtxSSRC uint32
	rtxPT   uint8
	rtxSeq  atomic.Uint32
	// tccID is the negotiated id of the transport-wide sequence number extension (0: none).
	tccID uint8
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
		b := &binding{id: ctx.ID(), ssrc: uint32(ctx.SSRC()), pt: uint8(codec.PayloadType), stream: ctx.WriteStream()}
		for _, e := range ctx.HeaderExtensions() {
			if e.URI == sdp.TransportCCURI && e.ID > 0 && e.ID < 15 {
				b.tccID = uint8(e.ID)
			}
		}
		if ssrc := uint32(ctx.SSRCRetransmission()); ssrc != 0 {
			if pt, ok := rtxPayloadType(ctx.CodecParameters(), codec.PayloadType); ok {
				b.rtxSSRC, b.rtxPT = ssrc, pt
				b.rtxSeq.Store(rand.Uint32N(1 << 16)) // RFC 3550: a random first sequence number
			}
		}
		t.out.Store(b)
	}
	return codec, err
}

// rtxPayloadType finds the negotiated RTX payload type whose apt is pt.
func rtxPayloadType(codecs []webrtc.RTPCodecParameters, pt webrtc.PayloadType) (uint8, bool) {
	for _, c := range codecs {
		if !strings.EqualFold(c.MimeType, webrtc.MimeTypeRTX) {
			continue
		}
		for _, kv := range strings.Split(c.SDPFmtpLine, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == "apt" && v == strconv.Itoa(int(pt)) {
				return uint8(c.PayloadType), true
			}
		}
	}
	return 0, false
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
func (t *boundTrack) write(h *hdrScratch, p *rtp.Packet, seq uint16, tsOff uint32) bool {
	b := t.out.Load()
	if b == nil {
		return false
	}
	h.Header = p.Header
	h.SSRC, h.PayloadType, h.SequenceNumber = b.ssrc, b.pt, seq
	h.Timestamp += tsOff
	if p.PaddingSize != 0 && h.PaddingSize == 0 {
		h.PaddingSize = p.PaddingSize // the payload goes separately, so padding must ride in the header
	}
	if t.tcc != nil && b.tccID != 0 {
		h.setTCC(t.tcc, b.tccID, 12+len(p.Payload)+int(h.PaddingSize))
	}
	_, err := b.stream.WriteRTP(&h.Header, p.Payload)
	return err == nil
}

// writeRTX sends p again on b's RTX stream as the retransmission of outgoing sequence number osn
// (RFC 4588 §4: its own SSRC, payload type and sequence numbers, the original sequence number
// ahead of the payload), with h and buf (at least 2 bytes more than the payload) the caller's
// scratch. It returns the bytes sent, and false if the write failed.
func writeRTX(b *binding, tcc *transportCC, h *hdrScratch, buf []byte, p *rtp.Packet, osn uint16, tsOff uint32) (int, bool) {
	if len(buf) < 2+len(p.Payload) {
		return 0, false
	}
	h.Header = p.Header
	h.SSRC, h.PayloadType, h.SequenceNumber = b.rtxSSRC, b.rtxPT, uint16(b.rtxSeq.Add(1))
	h.Timestamp += tsOff
	h.Padding, h.PaddingSize = false, 0
	buf = buf[:2+len(p.Payload)]
	binary.BigEndian.PutUint16(buf, osn)
	copy(buf[2:], p.Payload)
	if tcc != nil && b.tccID != 0 {
		h.setTCC(tcc, b.tccID, 12+len(buf))
	}
	if _, err := b.stream.WriteRTP(&h.Header, buf); err != nil {
		return 0, false
	}
	return h.MarshalSize() + len(buf), true
}
