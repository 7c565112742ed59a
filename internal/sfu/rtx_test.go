package sfu

import (
	"context"
	"strings"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// TestRetransmissionAsRTX: a subscriber that negotiates RTX (as Chrome does, apt= its VP8) gets the
// packet it NACKs on the RTX stream, with the original sequence number in it; one that offers no
// RTX gets it on the media stream, as before.
func TestRetransmissionAsRTX(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	_, track, _, subB, pub, _ := setup(t, s)
	vp8Only := func(m *webrtc.MediaEngine) error {
		return m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}}}, PayloadType: 96}, webrtc.RTPCodecTypeVideo)
	}
	plainB := newBrowserCodecs(t, nil, vp8Only)
	if _, err := plainB.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	plain, ans, err := s.Subscribe(context.Background(), pub, SubscribeRequest{Offer: plainB.offer(t), StreamID: "p"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plain.Close)
	if strings.Contains(ans, "rtx/90000") {
		t.Fatal("RTX answered to a subscriber that did not offer it")
	}
	plainB.answer(t, ans)
	next := uint16(0)
	eventually(t, "both subscribers receiving", func() bool {
		next++
		send(track, next)
		return subB.received() > 20 && subB.ssrc.Load() != 0 && plainB.received() > 20 && plainB.ssrc.Load() != 0
	})
	if !strings.Contains(subB.pc.RemoteDescription().SDP, "a=ssrc-group:FID") {
		t.Fatal("the RTX stream is not announced to the subscriber that offered RTX")
	}
	lost := next - 3
	for _, b := range []*browser{subB, plainB} {
		before := b.count(lost)
		nack := &rtcp.TransportLayerNack{MediaSSRC: b.ssrc.Load(), Nacks: []rtcp.NackPair{{PacketID: lost}}}
		eventually(t, "the retransmission", func() bool {
			_ = b.pc.WriteRTCP([]rtcp.Packet{nack})
			next++
			send(track, next) // pion hands an RTX packet over with the media stream's next one
			return b.count(lost) > before
		})
	}
	subB.mu.Lock()
	viaRTX := subB.rtx[lost]
	subB.mu.Unlock()
	plainB.mu.Lock()
	plainRTX := len(plainB.rtx)
	plainB.mu.Unlock()
	if viaRTX == 0 || plainRTX != 0 {
		t.Fatalf("retransmissions on the RTX stream: %d to the RTX subscriber (want ≥ 1), %d to the other (want 0)", viaRTX, plainRTX)
	}
	if st := s.Stats(); st.RetransmittedRTX == 0 || st.Retransmitted <= st.RetransmittedRTX || st.RetransmittedBytes == 0 {
		t.Fatalf("stats do not show the RTX retransmission: %+v", st)
	}
}
