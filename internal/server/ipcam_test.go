package server

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/ipcam/rtsptest"
)

// TestIPCamConnection: an IPCAM connection made by REST pulls the camera, is active at once with
// OpenVidu's connection JSON, appears to a participant who joins as a publisher of typeOfVideo
// IPCAM, its H.264 and (transcoded) Opus reach a subscriber, the camera is pulled only while
// someone subscribes (onlyPlayWithSubscribers, unless false), DELETE of its stream alone is 405 (as
// OpenVidu), and DELETE of the connection removes it and stops the pull.
func TestIPCamConnection(t *testing.T) {
	cam := startCamera(t)
	_, base := startServer(t)
	api := base + "/openvidu/api"
	if st, _ := rest(t, "POST", api+"/sessions", map[string]any{"customSessionId": "cams"}); st != 200 {
		t.Fatalf("create session: %d", st)
	}
	for _, bad := range []map[string]any{
		{"type": "IPCAM"},
		{"type": "IPCAM", "rtspUri": "file:///etc/passwd"},
		{"type": "IPCAM", "rtspUri": "http://169.254.169.254/latest"},
	} {
		if st, _ := rest(t, "POST", api+"/sessions/cams/connection", bad); st != 400 {
			t.Errorf("IPCAM connection %v: %d, want 400", bad, st)
		}
	}
	st, c := rest(t, "POST", api+"/sessions/cams/connection", map[string]any{"type": "IPCAM", "rtspUri": cam.URL, "data": "lobby camera",
		"adaptativeBitrate": nil, "onlyPlayWithSubscribers": nil, "networkCache": nil})
	if st != 200 {
		t.Fatalf("create IPCAM connection: %d %v", st, c)
	}
	camID, _ := c["connectionId"].(string)
	if !strings.HasPrefix(camID, "ipc_") || c["type"] != "IPCAM" || c["status"] != "active" || c["platform"] != "IPCAM" ||
		c["token"] != nil || c["role"] != nil || c["rtspUri"] != cam.URL || c["adaptativeBitrate"] != true ||
		c["onlyPlayWithSubscribers"] != true || c["networkCache"] != float64(2000) || c["serverData"] != "lobby camera" {
		t.Fatalf("IPCAM connection JSON: %v", c)
	}
	pubs, _ := c["publishers"].([]any)
	if len(pubs) != 1 {
		t.Fatalf("IPCAM publishers: %v", c["publishers"])
	}
	streamID := pubs[0].(map[string]any)["streamId"].(string)
	mo := pubs[0].(map[string]any)["mediaOptions"].(map[string]any)
	if !strings.HasPrefix(streamID, "str_IPC_") || !strings.HasSuffix(streamID, "_"+camID) || mo["typeOfVideo"] != "IPCAM" ||
		mo["hasAudio"] != true || mo["hasVideo"] != true || mo["videoDimensions"] != `{"width":320,"height":240}` {
		t.Fatalf("IPCAM stream %s: %v", streamID, mo)
	}

	// A participant sees the camera as a publisher and receives its media.
	viewer := dial(t, base)
	_, tok := rest(t, "POST", api+"/sessions/cams/connection", map[string]any{"role": "SUBSCRIBER"})
	jr := viewer.result("joinRoom", map[string]any{"token": tok["token"], "session": "cams", "metadata": ""})
	value, _ := jr["value"].([]any)
	var seen bool
	for _, v := range value {
		p := v.(map[string]any)
		if p["id"] != camID {
			continue
		}
		streams, _ := p["streams"].([]any)
		seen = len(streams) == 1 && streams[0].(map[string]any)["id"] == streamID && streams[0].(map[string]any)["typeOfVideo"] == "IPCAM"
	}
	if !seen {
		t.Fatalf("joinRoom value does not show the camera's stream: %v", value)
	}
	// onlyPlayWithSubscribers (true by default): the camera is pulled from the first subscriber,
	// and no longer once the last has gone; a new subscriber starts it again.
	subscribe := func() {
		t.Helper()
		sub := newPeer(t)
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if _, err := sub.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				t.Fatal(err)
			}
		}
		sr := viewer.result("receiveVideoFrom", map[string]any{"sender": streamID, "sdpOffer": sub.offer(t)})
		answer := sr["sdpAnswer"].(string)
		if !strings.Contains(answer, "H264") {
			t.Fatalf("subscriber answer without H.264:\n%s", answer)
		}
		sub.answer(t, answer)
		waitFor(t, "the camera's audio and video at the subscriber", func() bool {
			_, a := sub.kinds.Load("audio")
			_, v := sub.kinds.Load("video")
			return a && v && sub.received.Load() > 50
		})
	}
	subscribe()
	viewer.result("unsubscribeFromVideo", map[string]any{"sender": streamID})
	waitFor(t, "the camera no longer pulled once nobody subscribes", func() bool { return cam.Players() == 0 })
	subscribe()

	// Its stream cannot be deleted on its own: 405, as OpenVidu answers; the camera goes on.
	if st, _ := rest(t, "DELETE", api+"/sessions/cams/stream/"+streamID, nil); st != 405 {
		t.Errorf("DELETE of the IPCAM stream: %d, want 405", st)
	}
	if cam.Players() == 0 {
		t.Error("the camera stopped playing after the refused DELETE of its stream")
	}

	// DELETE removes it like any participant, and the camera is no longer pulled.
	if st, _ := rest(t, "DELETE", api+"/sessions/cams/connection/"+camID, nil); st != 204 {
		t.Fatalf("delete IPCAM connection: %d", st)
	}
	viewer.waitNote("participantEvicted", func(p map[string]any) bool { return p["connectionId"] == camID })
	waitFor(t, "the camera no longer played", func() bool { return cam.Players() == 0 })

	// onlyPlayWithSubscribers false: pulled from the start, nobody subscribing.
	st, c = rest(t, "POST", api+"/sessions/cams/connection", map[string]any{"type": "IPCAM", "rtspUri": cam.URL, "onlyPlayWithSubscribers": false})
	if st != 200 || c["onlyPlayWithSubscribers"] != false {
		t.Fatalf("create IPCAM connection always playing: %d %v", st, c)
	}
	waitFor(t, "the camera pulled without subscribers", func() bool { return cam.Players() == 1 })
	if st, _ := rest(t, "DELETE", api+"/sessions/cams/connection/"+c["connectionId"].(string), nil); st != 204 {
		t.Fatalf("delete IPCAM connection: %d", st)
	}
	waitFor(t, "the camera no longer played", func() bool { return cam.Players() == 0 })
}

// TestClusterIPCamSpansNodes: an IPCAM connection made through A is a participant of the whole
// cluster: a participant joining on B sees the camera in joinRoom and receives its media over the
// inter-node link, REST on B lists it active, and its DELETE through B evicts it on every node.
func TestClusterIPCamSpansNodes(t *testing.T) {
	cam := startCamera(t)
	bases := startCluster(t, "node-a", "node-b")
	a, b := bases[0]+"/openvidu/api", bases[1]+"/openvidu/api"
	if st, _ := rest(t, "POST", a+"/sessions", map[string]any{"customSessionId": "cams"}); st != 200 {
		t.Fatalf("create session on A: %d", st)
	}
	st, c := rest(t, "POST", a+"/sessions/cams/connection", map[string]any{"type": "IPCAM", "rtspUri": cam.URL})
	if st != 200 || c["status"] != "active" {
		t.Fatalf("create IPCAM connection on A: %d %v", st, c)
	}
	camID, _ := c["connectionId"].(string)
	streamID := c["publishers"].([]any)[0].(map[string]any)["streamId"].(string)
	if st, cb := rest(t, "GET", b+"/sessions/cams/connection/"+camID, nil); st != 200 || cb["status"] != "active" || cb["type"] != "IPCAM" {
		t.Fatalf("the camera on B's REST: %d %v", st, cb)
	}

	viewer, jr := joinOn(t, a, bases[1], "cams", "SUBSCRIBER")
	var seen bool
	for _, v := range jr["value"].([]any) {
		if p := v.(map[string]any); p["id"] == camID {
			streams, _ := p["streams"].([]any)
			seen = len(streams) == 1 && streams[0].(map[string]any)["id"] == streamID
		}
	}
	if !seen {
		t.Fatalf("joinRoom on B does not show the camera's stream: %v", jr["value"])
	}
	sub := newPeer(t)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := sub.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	sr := viewer.result("receiveVideoFrom", map[string]any{"sender": streamID, "sdpOffer": sub.offer(t)})
	sub.answer(t, sr["sdpAnswer"].(string))
	waitFor(t, "the camera's audio and video at B's subscriber", func() bool {
		_, au := sub.kinds.Load("audio")
		_, v := sub.kinds.Load("video")
		return au && v && sub.received.Load() > 50
	})

	if st, _ := rest(t, "DELETE", b+"/sessions/cams/connection/"+camID, nil); st != 204 {
		t.Fatalf("delete the IPCAM connection through B: %d", st)
	}
	viewer.waitNote("participantEvicted", func(p map[string]any) bool { return p["connectionId"] == camID })
	waitFor(t, "the camera no longer played", func() bool { return cam.Players() == 0 })
}

// startCamera starts an RTSP camera with audio for the test (ffmpeg serves it), or skips the test
// without ffmpeg.
func startCamera(t *testing.T) *rtsptest.Camera {
	t.Helper()
	for _, b := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (make test installs it)", b)
		}
	}
	cam, err := rtsptest.Start(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Stop)
	return cam
}
