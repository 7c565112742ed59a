package sfu

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TestIngestReachesSubscribers: RTP sent to an ingest publisher's loopback address reaches a
// subscriber negotiated like any other, as H.264; a feeder that restarts with a new SSRC and
// numbering is followed; closing the publisher releases its sockets.
func TestIngestReachesSubscribers(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	pub, addrs, err := s.Ingest(IngestRequest{Video: true, Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	if !pub.HasVideo() || !pub.HasAudio() || addrs.Video == nil || addrs.Audio == nil {
		t.Fatalf("ingest publisher %v/%v at %+v", pub.HasVideo(), pub.HasAudio(), addrs)
	}
	if _, err := pub.Renegotiate(context.Background(), "v=0"); err == nil {
		t.Error("an ingested stream accepted a renegotiation")
	}
	if err := pub.AddCandidate(Candidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host"}); err == nil {
		t.Error("an ingested stream accepted a candidate")
	}

	subB := newBrowser(t)
	if _, err := subB.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	sub, ans, err := s.Subscribe(context.Background(), pub, SubscribeRequest{Offer: subB.offer(t), StreamID: "cam"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	subB.answer(t, ans)

	feeder, err := net.DialUDP("udp4", nil, addrs.Video)
	if err != nil {
		t.Fatal(err)
	}
	defer feeder.Close()
	feed := func(ssrc uint32, first uint16, stop <-chan struct{}) {
		for seq := first; ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			// A single-NAL IDR slice each time: enough for the SFU, which never decodes.
			raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: ssrc, Marker: true},
				Payload: []byte{0x65, 0x88, 0x84, 0x00}}).Marshal()
			_, _ = feeder.Write(raw)
		}
	}
	stop := make(chan struct{})
	go feed(1111, 100, stop)
	eventually(t, "the subscriber receiving the ingested video", func() bool { return subB.received() > 20 })
	if codec := sub.downs[1].fwd.codec.MimeType; codec != webrtc.MimeTypeH264 {
		t.Fatalf("subscriber got %s", codec)
	}
	close(stop)
	// The feeder restarts: new SSRC, numbering far away.
	n, gen := subB.received(), pub.video.gen.Load()
	stop2 := make(chan struct{})
	t.Cleanup(func() { close(stop2) })
	go feed(2222, 40000, stop2)
	eventually(t, "the restarted feed reaching the subscriber", func() bool { return subB.received() > n+20 })
	if pub.video.gen.Load() == gen {
		t.Error("the new SSRC was not taken for a new track")
	}
	pub.Close()
	if c, err := net.ListenUDP("udp4", addrs.Video); err != nil {
		t.Errorf("the video socket was not released: %v", err)
	} else {
		_ = c.Close()
	}
}
