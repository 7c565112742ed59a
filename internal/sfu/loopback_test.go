package sfu

import (
	"context"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// TestLoopback: a publisher that asks for loopback (OpenVidu doLoopback) gets a sendrecv answer and
// its own video back on the same PeerConnection, also after Renegotiate (reconnectStream), while
// ordinary subscribers keep receiving; closing the publisher leaves no subscription registered.
func TestLoopback(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	b := newBrowser(t)
	track, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam")
	if _, err := b.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	pub, ans, err := s.Publish(context.Background(), PublishRequest{Offer: b.offer(t), VideoCodec: CodecVP8, Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	if !strings.Contains(ans, "a=sendrecv") || strings.Contains(ans, "a=recvonly") {
		t.Fatalf("a loopback's answer must be sendrecv:\n%s", ans)
	}
	b.answer(t, ans)
	stream(t, track)
	eventually(t, "the publisher receiving its own video", func() bool { return b.received() > 20 })
	if st := s.Stats(); st.Subscribers != 1 {
		t.Fatalf("%d subscriptions registered, want the loopback's 1", st.Subscribers)
	}

	// reconnectStream: a new offer on a new PeerConnection, loopback again. Its encoder starts
	// anew, with keyframes: the loopback may have sent a packet of the old PeerConnection's track
	// first, and then waits for the new track's keyframe (downTrack.restart), as a subscriber does.
	b2 := newBrowser(t)
	track2, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam")
	if _, err := b2.pc.AddTransceiverFromTrack(track2, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	streamWith(t, track2, func(uint16) []byte { return []byte{0x10, 0x00, 1, 2} })
	ans, err = pub.Renegotiate(context.Background(), b2.offer(t))
	if err != nil {
		t.Fatal(err)
	}
	b2.answer(t, ans)
	eventually(t, "the reconnected publisher receiving its own video", func() bool { return b2.received() > 20 })
	if st := s.Stats(); st.Subscribers != 1 {
		t.Fatalf("%d subscriptions registered after reconnecting, want 1: the old loopback must go", st.Subscribers)
	}
	pub.Close()
	if st := s.Stats(); st.Subscribers != 0 {
		t.Fatalf("%d subscriptions registered after the publisher closed", st.Subscribers)
	}
}

// TestNoLoopbackWithoutAsking: a sendrecv offer without Loopback is answered recvonly, as before.
func TestNoLoopbackWithoutAsking(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	b := newBrowser(t)
	track, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam")
	if _, err := b.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	pub, ans, err := s.Publish(context.Background(), PublishRequest{Offer: b.offer(t), VideoCodec: CodecVP8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	if !strings.Contains(ans, "a=recvonly") {
		t.Fatalf("answer without loopback must be recvonly:\n%s", ans)
	}
}
