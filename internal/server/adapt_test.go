package server

import (
	"context"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// TestWeakSubscriberToldItsVideoIsPaused: a subscriber whose receiver reports say its link loses
// most of the video is told, and only it, that the stream's video is paused for it
// (streamPropertyChanged videoActive "false", reason networkConstrained), as openvidu-browser
// shows a camera turned off; the publisher and another subscriber hear nothing of it.
func TestWeakSubscriberToldItsVideoIsPaused(t *testing.T) {
	_, base := startServer(t)
	if st, _ := rest(t, "POST", base+"/openvidu/api/sessions", map[string]any{"customSessionId": "weak"}); st != 200 {
		t.Fatalf("create session: %d", st)
	}
	alice, _ := join(t, base, "weak", "PUBLISHER")
	pub, video, audio := newAVPublisher(t)
	pr := alice.result("publishVideo", map[string]any{"sdpOffer": pub.offer(t), "doLoopback": false, "hasAudio": true, "hasVideo": true,
		"audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": `{"width":640,"height":480}`})
	streamID := pr["id"].(string)
	pub.answer(t, pr["sdpAnswer"].(string))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go publishMedia(ctx, video, audio)

	subscribe := func(c *rpcClient) *peer {
		p := newPeer(t)
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if _, err := p.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				t.Fatal(err)
			}
		}
		r := c.result("receiveVideoFrom", map[string]any{"sender": streamID, "sdpOffer": p.offer(t)})
		p.answer(t, r["sdpAnswer"].(string))
		return p
	}
	bob, _ := join(t, base, "weak", "SUBSCRIBER")
	carol, _ := join(t, base, "weak", "SUBSCRIBER")
	weak, strong := subscribe(bob), subscribe(carol)
	var videoSSRC uint32
	waitFor(t, "media at both subscribers", func() bool {
		for _, r := range weak.pc.GetReceivers() {
			if tr := r.Track(); tr != nil && tr.Kind() == webrtc.RTPCodecTypeVideo {
				videoSSRC = uint32(tr.SSRC())
			}
		}
		return videoSSRC != 0 && weak.received.Load() > 20 && strong.received.Load() > 20
	})
	rr := []rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: videoSSRC, FractionLost: 192}}}}
	paused := func(p map[string]any) bool {
		return p["streamId"] == streamID && p["property"] == "videoActive" && p["newValue"] == "false" && p["reason"] == "networkConstrained"
	}
	waitFor(t, "the weak subscriber told its video is paused", func() bool {
		_ = weak.pc.WriteRTCP(rr)
		bob.mu.Lock()
		defer bob.mu.Unlock()
		for _, n := range bob.notes {
			if p, _ := n["params"].(map[string]any); n["method"] == "streamPropertyChanged" && paused(p) {
				return true
			}
		}
		return false
	})
	// A change everyone hears, after which the others must not have heard of the pause.
	alice.result("streamPropertyChanged", map[string]any{"streamId": streamID, "property": "audioActive", "newValue": false, "reason": "publishAudio"})
	carol.waitNote("streamPropertyChanged", func(p map[string]any) bool { return p["property"] == "audioActive" })
	for name, c := range map[string]*rpcClient{"the other subscriber": carol, "the publisher": alice} {
		c.mu.Lock()
		for _, n := range c.notes {
			if p, _ := n["params"].(map[string]any); n["method"] == "streamPropertyChanged" && p["reason"] == "networkConstrained" {
				t.Errorf("%s was told about another subscriber's pause: %v", name, p)
			}
		}
		c.mu.Unlock()
	}
}
