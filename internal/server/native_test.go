package server

import (
	"context"
	"strconv"
	"testing"

	"github.com/pion/webrtc/v4"
)

// trickleOffer makes an offer without candidates, as the native samples send it, and returns
// the candidates gathered for it, to be sent next.
func (p *peer) trickleOffer(t *testing.T) (string, []webrtc.ICECandidateInit) {
	t.Helper()
	var cands []webrtc.ICECandidateInit
	p.pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			cands = append(cands, c.ToJSON()) // read after gathering completes
		}
	})
	o, err := p.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return o.SDP, cands
}

// trickle sends candidates as the native samples do: onIceCandidate with every param a string,
// sdpMLineIndex included, for endpoint (the publisher's connection id).
func trickle(c *rpcClient, endpoint string, cands []webrtc.ICECandidateInit) {
	c.t.Helper()
	for _, ci := range cands {
		params := map[string]string{"endpointName": endpoint, "candidate": ci.Candidate, "sdpMid": "0", "sdpMLineIndex": "0"}
		if ci.SDPMid != nil {
			params["sdpMid"] = *ci.SDPMid
		}
		if ci.SDPMLineIndex != nil {
			params["sdpMLineIndex"] = strconv.Itoa(int(*ci.SDPMLineIndex))
		}
		c.result("onIceCandidate", params)
	}
}

// TestNativeClientsMedia replays the native samples against a real server with pion peers: an
// openvidu-android publisher (every param a string, trickle ICE with string indexes) and an iOS
// sample subscriber (joinRoom with recorder "false" and the secret next to its token) that
// receives the publisher's audio and video.
func TestNativeClientsMedia(t *testing.T) {
	_, base := startServer(t)
	api := base + "/openvidu/api"
	if st, _ := rest(t, "POST", api+"/sessions", map[string]any{"customSessionId": "native"}); st != 200 {
		t.Fatalf("create session: %d", st)
	}
	token := func() string {
		st, c := rest(t, "POST", api+"/sessions/native/connection", map[string]any{"role": "PUBLISHER"})
		if st != 200 {
			t.Fatalf("create connection: %d", st)
		}
		return c["token"].(string)
	}

	android := dial(t, base)
	android.result("ping", map[string]string{"interval": "5000"})
	aj := android.result("joinRoom", map[string]string{"metadata": `{"clientData": "Participant42"}`, "secret": "", "session": "native",
		"platform": "Android 34", "token": token(), "sdkVersion": "2.32.2"})
	androidID := aj["id"].(string)
	pub, video, audio := newAVPublisher(t)
	offer, cands := pub.trickleOffer(t)
	pr := android.result("publishVideo", map[string]string{"audioActive": "true", "videoActive": "true", "doLoopback": "false", "frameRate": "30",
		"hasAudio": "true", "hasVideo": "true", "typeOfVideo": "CAMERA", "videoDimensions": `{"width":320, "height":240}`, "sdpOffer": offer})
	streamID := pr["id"].(string)
	pub.answer(t, pr["sdpAnswer"].(string))
	trickle(android, androidID, cands)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go publishMedia(ctx, video, audio)

	ios := dial(t, base)
	ios.result("ping", map[string]string{"interval": "5000"})
	ij := ios.result("joinRoom", map[string]string{"recorder": "false", "platform": "iOS", "metadata": `{"clientData": "iOSUser"}`,
		"secret": "MY_SECRET", "session": "native", "token": token()})
	if ij["role"] != "PUBLISHER" {
		t.Fatalf("the iOS sample joins with its token's role: %v", ij)
	}
	value := ij["value"].([]any)
	if len(value) != 1 {
		t.Fatalf("joinRoom value: %v", value)
	}
	p := value[0].(map[string]any)
	st := p["streams"].([]any)[0].(map[string]any)
	if p["id"] != androidID || st["id"] != streamID || st["frameRate"] != float64(30) || st["audioActive"] != true || st["hasVideo"] != true {
		t.Fatalf("the Android publisher as others see it: %v", p)
	}
	sub := newPeer(t)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := sub.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, cands = sub.trickleOffer(t)
	sr := ios.result("receiveVideoFrom", map[string]string{"sdpOffer": offer, "sender": streamID})
	sub.answer(t, sr["sdpAnswer"].(string))
	trickle(ios, androidID, cands)
	waitFor(t, "the Android publisher's media at the iOS subscriber", func() bool {
		_, a := sub.kinds.Load("audio")
		_, v := sub.kinds.Load("video")
		return a && v && sub.received.Load() > 50
	})

	// A native client's string value for a boolean property reaches others as the browser's.
	android.result("streamPropertyChanged", map[string]string{"streamId": streamID, "property": "audioActive", "newValue": "false", "reason": "publishAudio"})
	ios.waitNote("streamPropertyChanged", func(p map[string]any) bool { return p["newValue"] == "false" && p["property"] == "audioActive" })
	android.result("leaveRoom", map[string]string{})
	ios.waitNote("participantLeft", func(p map[string]any) bool { return p["connectionId"] == androidID })
}
