package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/poll"
)

// whipDo sends one WHIP request and returns the status, the Location header and the body.
func whipDo(t *testing.T, method, url, token, contentType, body string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// TestWHIPPublisher: a pion WHIP client (as OBS or GStreamer would) publishes into a session with
// a connection token as its Bearer token; a participant of the OpenVidu protocol sees it join and
// publish, subscribes and receives its audio and video; DELETE of the resource makes it leave.
func TestWHIPPublisher(t *testing.T) {
	srv, base := startServer(t)
	api := base + "/openvidu/api"
	if st, _ := rest(t, "POST", api+"/sessions", map[string]any{"customSessionId": "whip"}); st != 200 {
		t.Fatalf("create session: %d", st)
	}
	token := func() string {
		st, c := rest(t, "POST", api+"/sessions/whip/connection", map[string]any{"role": "PUBLISHER"})
		if st != 200 {
			t.Fatalf("create connection: %d", st)
		}
		return c["token"].(string)
	}
	endpoint := base + "/openvidu/whip"
	pubToken := token()

	// Refusals, each in WHIP's own terms.
	for _, tc := range []struct {
		name, token, ctype, body string
		want                     int
	}{
		{"no token", "", "application/sdp", "v=0\r\n", http.StatusUnauthorized},
		{"a token REST never gave", strings.Replace(pubToken, "tok_", "tok_X", 1), "application/sdp", "v=0\r\n", http.StatusUnauthorized},
		{"not SDP", pubToken, "application/json", "{}", http.StatusUnsupportedMediaType},
	} {
		if st, _, body := whipDo(t, "POST", endpoint, tc.token, tc.ctype, tc.body); st != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.name, st, body, tc.want)
		}
	}

	pub, video, audio := newAVPublisher(t)
	st, loc, answer := whipDo(t, "POST", endpoint, pubToken, "application/sdp", pub.offer(t))
	if st != http.StatusCreated || !strings.HasPrefix(loc, "/openvidu/whip/") || !strings.HasPrefix(answer, "v=0") {
		t.Fatalf("WHIP POST: %d %q %q", st, loc, answer)
	}
	pub.answer(t, answer)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go publishMedia(ctx, video, audio)

	// A browser-protocol participant sees the WHIP publisher as any other.
	bob := dial(t, base)
	bj := bob.result("joinRoom", map[string]any{"token": token(), "session": "whip", "metadata": `{"clientData":"bob"}`})
	value := bj["value"].([]any)
	if len(value) != 1 {
		t.Fatalf("joinRoom value: %v", value)
	}
	p := value[0].(map[string]any)
	whipID := p["id"].(string)
	s := p["streams"].([]any)[0].(map[string]any)
	if s["hasAudio"] != true || s["hasVideo"] != true || s["typeOfVideo"] != "CUSTOM" {
		t.Fatalf("the WHIP stream as participants see it: %v", s)
	}
	sub := newPeer(t)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := sub.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	sr := bob.result("receiveVideoFrom", map[string]any{"sender": s["id"], "sdpOffer": sub.offer(t)})
	sub.answer(t, sr["sdpAnswer"].(string))
	waitFor(t, "the WHIP publisher's media at the subscriber", func() bool {
		_, a := sub.kinds.Load("audio")
		_, v := sub.kinds.Load("video")
		return a && v && sub.received.Load() > 50
	})

	// WHEP: a viewer without openvidu-browser watches the same stream with a token of its own.
	viewer := newPeer(t)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := viewer.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	viewerToken := token()
	wst, wloc, wanswer := whipDo(t, "POST", base+"/openvidu/whep/"+s["id"].(string), viewerToken, "application/sdp", viewer.offer(t))
	if wst != http.StatusCreated || !strings.HasPrefix(wloc, "/openvidu/whep/"+s["id"].(string)+"/") {
		t.Fatalf("WHEP POST: %d %q %q", wst, wloc, wanswer)
	}
	viewer.answer(t, wanswer)
	waitFor(t, "the WHIP publisher's media at the WHEP viewer", func() bool {
		_, a := viewer.kinds.Load("audio")
		_, v := viewer.kinds.Load("video")
		return a && v && viewer.received.Load() > 50
	})
	if st, _, body := whipDo(t, "POST", base+"/openvidu/whep/str_CAM_Nope_con_Nope", token(), "application/sdp", viewer.offer(t)); st != http.StatusNotFound {
		t.Errorf("WHEP of a stream that does not exist: %d %q, want 404", st, body)
	}
	if st, _, _ := whipDo(t, "DELETE", base+wloc, viewerToken, "", ""); st != http.StatusOK {
		t.Fatalf("WHEP DELETE: %d", st)
	}

	// REST shows it with its platform.
	st2, c := rest(t, "GET", api+"/sessions/whip/connection/"+whipID, nil)
	if st2 != 200 || !strings.HasPrefix(c["platform"].(string), "WHIP") {
		t.Fatalf("the WHIP connection in REST: %d %v", st2, c)
	}

	// Trickle: a fragment's candidates are taken (204); PATCH and DELETE need the resource's token.
	frag := "a=ice-ufrag:abcd\r\na=ice-pwd:efghijklmnopqrstuvwxyz12\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
	if st, _, body := whipDo(t, "PATCH", base+loc, pubToken, "application/trickle-ice-sdpfrag", frag); st != http.StatusNoContent {
		t.Errorf("PATCH: %d %q", st, body)
	}
	// An offer the SFU cannot take: 400, and its participant leaves again.
	if st, _, body := whipDo(t, "POST", endpoint, token(), "application/sdp", "hello"); st != http.StatusBadRequest {
		t.Errorf("an offer that is no SDP: %d %q", st, body)
	}
	if st, _, _ := whipDo(t, "DELETE", base+loc, token(), "", ""); st != http.StatusNotFound {
		t.Errorf("DELETE with another connection's token: %d, want 404", st)
	}
	if st, _, _ := whipDo(t, "DELETE", base+loc, pubToken, "", ""); st != http.StatusOK {
		t.Fatalf("DELETE: %d", st)
	}
	bob.waitNote("participantLeft", func(p map[string]any) bool { return p["connectionId"] == whipID && p["reason"] == "disconnect" })
	if st, _, _ := whipDo(t, "DELETE", base+loc, pubToken, "", ""); st != http.StatusNotFound {
		t.Errorf("DELETE twice: %d, want 404", st)
	}
	if n := srv.whip.Resources(); n != 0 {
		t.Errorf("%d WHIP resources left", n)
	}

	// An encoder that goes away without DELETE leaves when its media connection ends.
	gone, _, _ := newAVPublisher(t)
	st, gc := rest(t, "POST", api+"/sessions/whip/connection", map[string]any{"role": "PUBLISHER"})
	if st != 200 {
		t.Fatalf("create connection: %d", st)
	}
	if st, _, answer := whipDo(t, "POST", endpoint, gc["token"].(string), "application/sdp", gone.offer(t)); st != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %q", st, answer)
	} else {
		gone.answer(t, answer)
	}
	waitFor(t, "the second WHIP publisher connected", func() bool { return gone.pc.ConnectionState() == webrtc.PeerConnectionStateConnected })
	_ = gone.pc.Close()
	// pion's ICE gives up on a silent peer after its failed timeout (25 s).
	poll.Until(t, 45*time.Second, "the vanished WHIP publisher to leave", func() bool {
		return bob.hasNote("participantLeft", func(p map[string]any) bool { return p["connectionId"] == gc["connectionId"] })
	})
	if n := srv.whip.Resources(); n != 0 {
		t.Errorf("%d WHIP resources left after the encoder vanished", n)
	}
}

// hasNote tells whether c has received a notification with the given method matching pred.
func (c *rpcClient) hasNote(method string, pred func(p map[string]any) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.notes {
		if p, _ := n["params"].(map[string]any); n["method"] == method && pred(p) {
			return true
		}
	}
	return false
}
