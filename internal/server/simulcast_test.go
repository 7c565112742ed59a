package server

import (
	"context"
	"testing"

	"github.com/pion/webrtc/v4"
)

// answerOffer makes p answer a server offer, candidates included.
func (p *peer) answerOffer(t *testing.T, offer string) string {
	t.Helper()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	a, err := p.pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(a); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return p.pc.LocalDescription().SDP
}

// TestMediasoupModeSubscriptions: with OPENVIDU_WEBRTC_SIMULCAST the stock client is told
// mediaServer "mediasoup" and videoSimulcast, and subscribes the way it then does: our offer from
// prepareReceiveVideoFrom, its answer in receiveVideoFrom, and after an ICE failure
// prepareReceiveVideoFrom{reconnect} and reconnectStream with the answer in sdpString.
func TestMediasoupModeSubscriptions(t *testing.T) {
	_, base := startServer(t, "OPENVIDU_WEBRTC_SIMULCAST", "true")
	api := base + "/openvidu/api"
	if st, _ := rest(t, "POST", api+"/sessions", map[string]any{"customSessionId": "sim"}); st != 200 {
		t.Fatalf("create session: %d", st)
	}
	join := func() (*rpcClient, map[string]any) {
		st, c := rest(t, "POST", api+"/sessions/sim/connection", map[string]any{"role": "PUBLISHER"})
		if st != 200 {
			t.Fatalf("create connection: %d", st)
		}
		rc := dial(t, base)
		j := rc.result("joinRoom", map[string]any{"token": c["token"], "session": "sim", "metadata": ""})
		if j["mediaServer"] != "mediasoup" || j["videoSimulcast"] != true {
			t.Fatalf("joinRoom result: %v", j)
		}
		return rc, j
	}
	alice, _ := join()
	pub, video, audio := newAVPublisher(t)
	pr := alice.result("publishVideo", map[string]any{"sdpOffer": pub.offer(t), "hasAudio": true, "hasVideo": true,
		"audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": `{"width":640,"height":480}`})
	streamID := pr["id"].(string)
	pub.answer(t, pr["sdpAnswer"].(string))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go publishMedia(ctx, video, audio)

	bob, _ := join()
	if e := bob.call("receiveVideoFrom", map[string]any{"sender": streamID, "sdpAnswer": "v=0"})["error"]; e == nil {
		t.Fatal("an answer without a prepared subscription was accepted")
	}
	sub := newPeer(t)
	prep := bob.result("prepareReceiveVideoFrom", map[string]any{"sender": streamID, "reconnect": false})
	if r := bob.result("receiveVideoFrom", map[string]any{"sender": streamID, "sdpAnswer": sub.answerOffer(t, prep["sdpOffer"].(string))}); r["sdpAnswer"] != nil {
		t.Fatalf("receiveVideoFrom with an answer returned %v, want no sdpAnswer", r)
	}
	waitFor(t, "media forwarded to the subscriber", func() bool {
		_, a := sub.kinds.Load("audio")
		_, v := sub.kinds.Load("video")
		return a && v && sub.received.Load() > 50
	})

	// The client's reconnection of a subscription in this mode.
	again := newPeer(t)
	prep = bob.result("prepareReceiveVideoFrom", map[string]any{"sender": streamID, "reconnect": true})
	bob.result("reconnectStream", map[string]any{"stream": streamID, "sdpString": again.answerOffer(t, prep["sdpOffer"].(string)), "forciblyReconnect": false})
	waitFor(t, "media on the reconnected subscription", func() bool { return again.received.Load() > 50 })
}
