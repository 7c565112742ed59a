package sfu

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// TestRelayAnswersNACKs: the other node's NACKs for a stream on the link are answered from the
// publisher's buffer. The link's subscription has no congestion state, so no retransmission
// budget of a subscriber's stops them (its budget stayed 0 while its adaptation was skipped, and
// every NACK across the link went unanswered).
func TestRelayAnswersNACKs(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	pubB := newBrowser(t)
	track, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam")
	if _, err := pubB.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	pub, ans, err := s.Publish(context.Background(), PublishRequest{Offer: pubB.offer(t), VideoCodec: CodecVP8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	pubB.answer(t, ans)

	r, err := s.NewRelay(nil, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if _, err := r.Add("str_X", pub); err != nil {
		t.Fatal(err)
	}
	offer, _, err := r.Offer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	other := newBrowser(t) // the other node's end, as far as this test goes
	if err := other.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	a, err := other.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(other.pc)
	if err := other.pc.SetLocalDescription(a); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if err := r.SetAnswer(other.pc.LocalDescription().SDP); err != nil {
		t.Fatal(err)
	}

	next := uint16(0)
	eventually(t, "the stream arriving over the link", func() bool {
		next++
		send(track, next)
		return other.received() > 20 && other.ssrc.Load() != 0
	})
	lost := next - 3
	before := other.count(lost)
	nack := &rtcp.TransportLayerNack{MediaSSRC: other.ssrc.Load(), Nacks: []rtcp.NackPair{{PacketID: lost}}}
	eventually(t, "the retransmission over the link", func() bool {
		_ = other.pc.WriteRTCP([]rtcp.Packet{nack})
		next++
		send(track, next)
		return other.count(lost) > before
	})
	if st := s.Stats(); st.Retransmitted == 0 {
		t.Fatalf("no retransmission counted: %+v", st)
	}
}

// TestRelayMLinesBounded: the offering end refuses a stream whose m-lines would take the link past
// MaxLinkMLines (ErrLinkFull), and a stream dropped since gives its m-lines to the next one, so
// that one fits again.
func TestRelayMLinesBounded(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	r, err := s.NewRelay(nil, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	av := []RelayCodec{{Kind: "audio", MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, {Kind: "video", MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}}
	for i := range MaxLinkMLines / 2 {
		if _, err := r.Expect(fmt.Sprintf("str_%d", i), av); err != nil {
			t.Fatalf("stream %d of %d: %v", i+1, MaxLinkMLines/2, err)
		}
	}
	if _, err := r.Expect("str_over", av); !errors.Is(err, ErrLinkFull) {
		t.Fatalf("a stream past %d m-lines: %v, want ErrLinkFull", MaxLinkMLines, err)
	}
	r.Drop("str_0") // never answered: its m-lines carry nothing and are free at once
	if _, err := r.Expect("str_next", av); err != nil {
		t.Fatalf("a stream after one was dropped: %v", err)
	}
	if got := r.MLines(); got != MaxLinkMLines {
		t.Fatalf("%d m-lines, want %d", got, MaxLinkMLines)
	}
}
