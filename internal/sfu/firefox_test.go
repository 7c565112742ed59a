package sfu

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// firefoxCodecs registers what Firefox offers under Firefox's own payload numbers: Opus as 109
// and VP8 as 120, where Chrome (and pion's defaults) use 111 and 96.
func firefoxCodecs(m *webrtc.MediaEngine) error {
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "maxplaybackrate=48000;stereo=1;useinbandfec=1"},
		PayloadType: 109}, webrtc.RTPCodecTypeAudio); err != nil {
		return err
	}
	return m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, SDPFmtpLine: "max-fs=12288;max-fr=60", RTCPFeedback: videoFeedback},
		PayloadType: 120}, webrtc.RTPCodecTypeVideo)
}

// TestFirefoxOpusPayloadTypeReachesSubscribers: a publisher that offers Opus under another number
// than ours (Firefox: 109) is answered with its own number, and its audio reaches a subscriber.
// Answered with 111, Firefox sent 109 all the same and every subscriber heard nothing.
func TestFirefoxOpusPayloadTypeReachesSubscribers(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	pubB := newBrowserCodecs(t, nil, firefoxCodecs)
	mic, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "cam")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pubB.pc.AddTransceiverFromTrack(mic, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	pub, ans, err := s.Publish(context.Background(), PublishRequest{Offer: pubB.offer(t), VideoCodec: CodecVP8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	if !strings.Contains(ans, "m=audio 9 UDP/TLS/RTP/SAVPF 109\r\n") || !strings.Contains(ans, "a=rtpmap:109 opus/48000/2") {
		t.Fatalf("the answer does not take Opus as the offer's 109:\n%s", ans)
	}
	pubB.answer(t, ans)

	subB := newBrowser(t)
	var heard atomic.Int64
	subB.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			heard.Add(1)
		}
	})
	if _, err := subB.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	sub, ans, err := s.Subscribe(context.Background(), pub, SubscribeRequest{Offer: subB.offer(t), StreamID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	subB.answer(t, ans)

	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for seq := uint16(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				_ = mic.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 480}, Payload: []byte{0xf8, 0xff, 0xfe}})
			}
		}
	}()
	eventually(t, "the subscriber to hear the publisher's audio", func() bool { return heard.Load() >= 10 })
}
