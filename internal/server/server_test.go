package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/poll"
)

// startServer runs an in-process Parley in dev mode on kernel-chosen ports.
func startServer(t *testing.T, overrides ...string) (*Server, string) {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("PARLEY_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return startServerLog(t, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), overrides...)
}

// startServerLog is startServer with the given logger.
func startServerLog(t *testing.T, log *slog.Logger, overrides ...string) (*Server, string) {
	t.Helper()
	env := map[string]string{"HTTPS_PORT": "0", "PARLEY_MEDIA_PORT": "0", "PARLEY_RECONNECT_GRACE": "2", "PARLEY_PING_TIMEOUT": "60"}
	for i := 0; i+1 < len(overrides); i += 2 {
		env[overrides[i]] = overrides[i+1]
	}
	cfg, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server run: %v", err)
			}
		})
	}
	stops.Store(s, stop)
	t.Cleanup(stop)
	return s, fmt.Sprintf("http://%s", s.Addr())
}

// stops holds each test server's clean shutdown (stopServer), which its test's cleanup also runs.
var stops sync.Map // *Server → func()

// stopServer shuts s down cleanly, as SIGTERM does, and returns once its Run has returned.
func stopServer(s *Server) {
	if f, ok := stops.LoadAndDelete(s); ok {
		f.(func())()
	}
}

// rest calls the REST API as openvidu-node-client does.
func rest(t *testing.T, method, url string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.SetBasicAuth("OPENVIDUAPP", "MY_SECRET")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// rpcClient is a minimal JSON-RPC client over a real WebSocket, framing like openvidu-browser.
type rpcClient struct {
	t      *testing.T
	ws     *websocket.Conn
	nextID atomic.Int64

	mu      sync.Mutex
	pending map[int64]chan map[string]any
	notes   []map[string]any
	noteCh  chan struct{}
}

func dial(t *testing.T, base string) *rpcClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/openvidu", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	c := &rpcClient{t: t, ws: ws, pending: map[int64]chan map[string]any{}, noteCh: make(chan struct{}, 1)}
	go c.read()
	t.Cleanup(func() { _ = ws.CloseNow() })
	return c
}

func (c *rpcClient) read() {
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		c.mu.Lock()
		if id, ok := m["id"].(float64); ok {
			if ch := c.pending[int64(id)]; ch != nil {
				ch <- m
			}
		} else {
			c.notes = append(c.notes, m)
			select {
			case c.noteCh <- struct{}{}:
			default:
			}
		}
		c.mu.Unlock()
	}
}

// call sends a request and returns the whole response frame.
func (c *rpcClient) call(method string, params any) map[string]any {
	c.t.Helper()
	id := c.nextID.Add(1)
	ch := make(chan map[string]any, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	frame := map[string]any{"id": id, "jsonrpc": "2.0", "method": method}
	if params != nil {
		frame["params"] = params
	}
	b, _ := json.Marshal(frame)
	if err := c.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s: no response within the SDK's 10 s timeout", method)
		return nil
	}
}

func (c *rpcClient) result(method string, params any) map[string]any {
	c.t.Helper()
	m := c.call(method, params)
	r, ok := m["result"].(map[string]any)
	if !ok {
		c.t.Fatalf("%s: want result, got %v", method, m)
	}
	return r
}

// waitNote waits for a notification with the given method matching pred.
func (c *rpcClient) waitNote(method string, pred func(p map[string]any) bool) map[string]any {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		for _, n := range c.notes {
			p, _ := n["params"].(map[string]any)
			if n["method"] == method && (pred == nil || pred(p)) {
				c.mu.Unlock()
				return p
			}
		}
		c.mu.Unlock()
		select {
		case <-c.noteCh:
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			c.t.Fatalf("no %s notification within 10 s; got %v", method, c.notes)
			return nil
		}
	}
}

// peer is a pion PeerConnection standing in for a browser.
type peer struct {
	pc       *webrtc.PeerConnection
	received atomic.Int64
	kinds    sync.Map
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{pc: pc}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p.kinds.Store(tr.Kind().String(), true)
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			p.received.Add(1)
		}
	})
	t.Cleanup(func() { _ = pc.Close() })
	return p
}

// newAVPublisher is a peer sending one Opus and one VP8 track, as a camera publisher does.
func newAVPublisher(t *testing.T) (p *peer, video, audio *webrtc.TrackLocalStaticRTP) {
	t.Helper()
	p = newPeer(t)
	video, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam")
	audio, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "cam")
	for _, tr := range []*webrtc.TrackLocalStaticRTP{audio, video} {
		if _, err := p.pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	return p, video, audio
}

// offer creates a complete (non-trickle) offer.
func (p *peer) offer(t *testing.T) string {
	t.Helper()
	o, err := p.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return p.pc.LocalDescription().SDP
}

func (p *peer) answer(t *testing.T, sdp string) {
	t.Helper()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		t.Fatal(err)
	}
}

// publishMedia sends synthetic VP8 and Opus RTP until ctx ends.
func publishMedia(ctx context.Context, video, audio *webrtc.TrackLocalStaticRTP) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	payload := make([]byte, 600)
	payload[0] = 0x10 // VP8 payload descriptor: start of partition
	for i := uint32(0); ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		seq++
		_ = video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: i * 900, Marker: true}, Payload: payload})
		_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: i * 480}, Payload: payload[:80]})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, cond)
}

// TestPublishSubscribeMedia drives two participants through REST and JSON-RPC with real pion peers
// and checks media actually flows through the SFU.
func TestPublishSubscribeMedia(t *testing.T) {
	_, base := startServer(t, "OPENVIDU_WEBRTC_SIMULCAST", "false")
	api := base + "/openvidu/api"
	if st, _ := rest(t, "POST", api+"/sessions", map[string]any{"customSessionId": "media-test"}); st != 200 {
		t.Fatalf("create session: %d", st)
	}
	tokens := make([]string, 2)
	for i := range tokens {
		st, c := rest(t, "POST", api+"/sessions/media-test/connection", map[string]any{"role": "PUBLISHER"})
		if st != 200 {
			t.Fatalf("create connection: %d", st)
		}
		tokens[i] = c["token"].(string)
	}

	alice := dial(t, base)
	if pong := alice.result("ping", map[string]any{"interval": 5000}); pong["value"] != "pong" {
		t.Fatalf("ping before join: %v", pong)
	}
	aj := alice.result("joinRoom", map[string]any{"token": tokens[0], "session": "media-test", "platform": "test", "metadata": `{"clientData":"alice"}`, "secret": "", "sdkVersion": "2.32.2"})
	if aj["role"] != "PUBLISHER" || aj["version"] != "2.32.2" || aj["mediaServer"] != "kurento" || aj["sessionId"] == "" {
		t.Fatalf("joinRoom result: %v", aj)
	}
	if ice, _ := aj["customIceServers"].([]any); len(ice) == 0 {
		t.Fatal("joinRoom must always carry customIceServers")
	}
	aliceID := aj["id"].(string)

	// Alice publishes audio and video.
	pub, video, audio := newAVPublisher(t)
	pr := alice.result("publishVideo", map[string]any{"sdpOffer": pub.offer(t), "doLoopback": false, "hasAudio": true, "hasVideo": true,
		"audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": `{"width":640,"height":480}`})
	streamID := pr["id"].(string)
	if !strings.HasPrefix(streamID, "str_CAM_") || !strings.HasSuffix(streamID, "_"+aliceID) {
		t.Fatalf("stream id %q must be str_CAM_…_%s", streamID, aliceID)
	}
	pub.answer(t, pr["sdpAnswer"].(string))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go publishMedia(ctx, video, audio)

	// Bob joins and sees Alice's stream in the joinRoom value.
	bob := dial(t, base)
	bj := bob.result("joinRoom", map[string]any{"token": tokens[1], "session": "media-test", "metadata": `{"clientData":"bob"}`})
	value := bj["value"].([]any)
	if len(value) != 1 || value[0].(map[string]any)["id"] != aliceID {
		t.Fatalf("joinRoom value: %v", value)
	}
	if streams := value[0].(map[string]any)["streams"].([]any); streams[0].(map[string]any)["id"] != streamID {
		t.Fatalf("existing stream: %v", streams)
	}
	alice.waitNote("participantJoined", func(p map[string]any) bool { return p["id"] == bj["id"] })

	// Bob subscribes with a recvonly offer (client-offer mode).
	sub := newPeer(t)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := sub.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	sr := bob.result("receiveVideoFrom", map[string]any{"sender": streamID, "sdpOffer": sub.offer(t)})
	sub.answer(t, sr["sdpAnswer"].(string))
	waitFor(t, "media forwarded to the subscriber", func() bool {
		_, a := sub.kinds.Load("audio")
		_, v := sub.kinds.Load("video")
		return a && v && sub.received.Load() > 50
	})

	// A signal to everyone reaches both, with the sender.
	bob.result("sendMessage", map[string]any{"message": `{"to":[],"data":"hi","type":"signal:chat"}`})
	for _, c := range []*rpcClient{alice, bob} {
		c.waitNote("sendMessage", func(p map[string]any) bool { return p["data"] == "hi" && p["from"] == bj["id"] })
	}

	// Property changes are relayed as JSON text.
	alice.result("streamPropertyChanged", map[string]any{"streamId": streamID, "property": "videoActive", "newValue": false, "reason": "publishVideo"})
	bob.waitNote("streamPropertyChanged", func(p map[string]any) bool { return p["newValue"] == "false" && p["streamId"] == streamID })

	// REST shows both participants with their publisher and subscriber.
	st, s := rest(t, "GET", api+"/sessions/media-test", nil)
	if st != 200 || s["connections"].(map[string]any)["numberOfElements"].(float64) != 2 {
		t.Fatalf("session: %d %v", st, s)
	}

	// Alice leaves: Bob is told, and the session survives with Bob alone.
	alice.result("leaveRoom", nil)
	bob.waitNote("participantLeft", func(p map[string]any) bool { return p["connectionId"] == aliceID && p["reason"] == "disconnect" })
	bob.result("leaveRoom", nil)
	if st, _ := rest(t, "GET", api+"/sessions/media-test", nil); st != 404 {
		t.Fatalf("session after the last participant left: %d, want 404", st)
	}
}

// TestRPCErrors checks that bad frames get JSON-RPC errors, never silence.
func TestRPCErrors(t *testing.T) {
	_, base := startServer(t)
	c := dial(t, base)
	cases := []struct {
		name, method string
		params       any
		code         float64
	}{
		{"unknown method", "nope", nil, -32601},
		{"method before joinRoom", "publishVideo", map[string]any{"sdpOffer": "x"}, 803},
		{"join unknown session", "joinRoom", map[string]any{"token": "ws://x/openvidu?sessionId=none&token=tok_A", "session": "none"}, 202},
		{"join without token", "joinRoom", map[string]any{"session": "none"}, -32602},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := c.call(tc.method, tc.params)
			e, ok := m["error"].(map[string]any)
			if !ok || e["code"].(float64) != tc.code {
				t.Fatalf("want error %v, got %v", tc.code, m)
			}
		})
	}
	t.Run("malformed frame", func(t *testing.T) {
		if err := c.ws.Write(context.Background(), websocket.MessageText, []byte("{nope")); err != nil {
			t.Fatal(err)
		}
		// The socket survives and answers the next request.
		if r := c.result("ping", nil); r["value"] != "pong" {
			t.Fatalf("ping after a malformed frame: %v", r)
		}
	})
}

// join creates a connection with role and joins it on a new socket.
func join(t *testing.T, base, sessionID, role string) (*rpcClient, string) {
	t.Helper()
	st, c := rest(t, "POST", base+"/openvidu/api/sessions/"+sessionID+"/connection", map[string]any{"role": role})
	if st != 200 {
		t.Fatalf("create %s connection: %d", role, st)
	}
	cl := dial(t, base)
	r := cl.result("joinRoom", map[string]any{"token": c["token"], "session": sessionID, "metadata": ""})
	return cl, r["id"].(string)
}

// publishFake publishes a video-only stream from a pion peer and returns its stream id.
func publishFake(t *testing.T, c *rpcClient) string {
	t.Helper()
	p := newPeer(t)
	if _, err := p.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	r := c.result("publishVideo", map[string]any{"sdpOffer": p.offer(t), "doLoopback": false, "hasAudio": false, "hasVideo": true, "typeOfVideo": "CAMERA", "frameRate": -1})
	p.answer(t, r["sdpAnswer"].(string))
	return r["id"].(string)
}

func TestRolesAndModeration(t *testing.T) {
	_, base := startServer(t)
	if st, _ := rest(t, "POST", base+"/openvidu/api/sessions", map[string]any{"customSessionId": "mod"}); st != 200 {
		t.Fatal(st)
	}
	mod, _ := join(t, base, "mod", "MODERATOR")
	pub, pubID := join(t, base, "mod", "PUBLISHER")
	sub, subID := join(t, base, "mod", "SUBSCRIBER")

	t.Run("subscriber cannot publish", func(t *testing.T) {
		p := newPeer(t)
		_, _ = p.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		m := sub.call("publishVideo", map[string]any{"sdpOffer": p.offer(t), "doLoopback": false, "hasAudio": false, "hasVideo": true})
		if e, _ := m["error"].(map[string]any); e == nil || e["code"].(float64) != 401 {
			t.Fatalf("want error 401, got %v", m)
		}
	})
	streamID := publishFake(t, pub)
	t.Run("second publish refused", func(t *testing.T) {
		p := newPeer(t)
		_, _ = p.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		m := pub.call("publishVideo", map[string]any{"sdpOffer": p.offer(t), "doLoopback": false, "hasAudio": false, "hasVideo": true})
		if e, _ := m["error"].(map[string]any); e == nil || e["code"].(float64) != 106 {
			t.Fatalf("want error 106, got %v", m)
		}
	})
	t.Run("publisher cannot force", func(t *testing.T) {
		m := pub.call("forceDisconnect", map[string]any{"connectionId": subID})
		if e, _ := m["error"].(map[string]any); e == nil || e["code"].(float64) != 401 {
			t.Fatalf("want error 401, got %v", m)
		}
	})
	t.Run("filters not supported", func(t *testing.T) {
		m := pub.call("applyFilter", map[string]any{"streamId": streamID, "type": "GStreamerFilter", "options": "{}"})
		if e, _ := m["error"].(map[string]any); e == nil || e["code"].(float64) != 406 {
			t.Fatalf("want error 406, got %v", m)
		}
	})
	t.Run("moderator force-unpublishes", func(t *testing.T) {
		mod.result("forceUnpublish", map[string]any{"streamId": streamID})
		for _, c := range []*rpcClient{pub, sub} {
			c.waitNote("participantUnpublished", func(p map[string]any) bool {
				return p["connectionId"] == pubID && p["reason"] == "forceUnpublishByUser"
			})
		}
	})
	t.Run("moderator force-disconnects", func(t *testing.T) {
		mod.result("forceDisconnect", map[string]any{"connectionId": subID})
		pub.waitNote("participantLeft", func(p map[string]any) bool {
			return p["connectionId"] == subID && p["reason"] == "forceDisconnectByUser"
		})
		sub.waitNote("participantEvicted", func(p map[string]any) bool {
			return p["connectionId"] == subID && p["reason"] == "forceDisconnectByUser"
		})
	})
	t.Run("REST delete session evicts everyone", func(t *testing.T) {
		if st, _ := rest(t, "DELETE", base+"/openvidu/api/sessions/mod", nil); st != 204 {
			t.Fatalf("delete session: %d", st)
		}
		for _, c := range []*rpcClient{mod, pub} {
			c.waitNote("participantEvicted", func(p map[string]any) bool { return p["reason"] == "sessionClosedByServer" })
		}
	})
}

func TestReconnection(t *testing.T) {
	_, base := startServer(t) // grace 2 s
	if st, _ := rest(t, "POST", base+"/openvidu/api/sessions", map[string]any{"customSessionId": "rc"}); st != 200 {
		t.Fatal(st)
	}
	st, conn := rest(t, "POST", base+"/openvidu/api/sessions/rc/connection", nil)
	if st != 200 {
		t.Fatal(st)
	}
	watcher, _ := join(t, base, "rc", "PUBLISHER")
	c := dial(t, base)
	r := c.result("joinRoom", map[string]any{"token": conn["token"], "session": "rc"})
	rpcID, connID := r["sessionId"].(string), r["id"].(string)

	// Drop the socket and come back within the grace period: same participant, nobody told.
	_ = c.ws.CloseNow()
	c2 := dial(t, base)
	if res := c2.result("connect", map[string]any{"sessionId": rpcID, "reconnect": true}); res["value"] != "reconnection successful" || res["sessionId"] != rpcID {
		t.Fatalf("connect: %v", res)
	}
	c2.result("sendMessage", map[string]any{"message": `{"to":[],"data":"back","type":"signal"}`})
	watcher.waitNote("sendMessage", func(p map[string]any) bool { return p["data"] == "back" && p["from"] == connID })

	// Drop it again and stay away: evicted with networkDisconnect, and connect then fails with 40007.
	_ = c2.ws.CloseNow()
	watcher.waitNote("participantLeft", func(p map[string]any) bool {
		return p["connectionId"] == connID && p["reason"] == "networkDisconnect"
	})
	c3 := dial(t, base)
	m := c3.call("connect", map[string]any{"sessionId": rpcID, "reconnect": true})
	if e, _ := m["error"].(map[string]any); e == nil || e["code"].(float64) != 40007 {
		t.Fatalf("connect after eviction: want 40007, got %v", m)
	}
}

func TestShutdownTellsParticipants(t *testing.T) {
	s, base := startServer(t)
	if st, _ := rest(t, "POST", base+"/openvidu/api/sessions", map[string]any{"customSessionId": "bye"}); st != 200 {
		t.Fatal(st)
	}
	c, _ := join(t, base, "bye", "PUBLISHER")
	s.Manager().Shutdown()
	c.waitNote("participantEvicted", func(p map[string]any) bool { return p["reason"] == "openviduServerStopped" })
}

// TestPingWatchdog: a client that stops pinging is disconnected and, after the grace period,
// evicted with networkDisconnect.
func TestPingWatchdog(t *testing.T) {
	_, base := startServer(t, "PARLEY_PING_TIMEOUT", "1", "PARLEY_RECONNECT_GRACE", "1")
	if st, _ := rest(t, "POST", base+"/openvidu/api/sessions", map[string]any{"customSessionId": "wd"}); st != 200 {
		t.Fatal(st)
	}
	watcher, _ := join(t, base, "wd", "PUBLISHER")
	silent, silentID := join(t, base, "wd", "PUBLISHER")
	_ = silent
	stop, stopped := make(chan struct{}), make(chan struct{})
	defer func() { close(stop); <-stopped }()
	go func() { // the watcher keeps pinging like the SDK; errors here are not the test's business
		defer close(stopped)
		ping := []byte(`{"id":0,"jsonrpc":"2.0","method":"ping"}`)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				if watcher.ws.Write(context.Background(), websocket.MessageText, ping) != nil {
					return
				}
			}
		}
	}()
	watcher.waitNote("participantLeft", func(p map[string]any) bool {
		return p["connectionId"] == silentID && p["reason"] == "networkDisconnect"
	})
}

func TestJoinRoomIceServers(t *testing.T) {
	_, base := startServer(t)
	if st, _ := rest(t, "POST", base+"/openvidu/api/sessions", map[string]any{"customSessionId": "ice"}); st != 200 {
		t.Fatal(st)
	}
	t.Run("embedded TURN with per-participant credentials", func(t *testing.T) {
		_, c := rest(t, "POST", base+"/openvidu/api/sessions/ice/connection", nil)
		r := dial(t, base).result("joinRoom", map[string]any{"token": c["token"], "session": "ice"})
		ice := r["customIceServers"].([]any)
		first := ice[0].(map[string]any)
		if !strings.HasPrefix(first["url"].(string), "turn:") || first["username"] == "" || first["credential"] == "" {
			t.Fatalf("customIceServers %v", ice)
		}
		if r["turnUsername"] != first["username"] || r["coturnPort"] == nil {
			t.Fatalf("legacy TURN fields missing: %v", r)
		}
	})
	t.Run("connection's own servers, staticAuthSecret minted at join", func(t *testing.T) {
		st, c := rest(t, "POST", base+"/openvidu/api/sessions/ice/connection", map[string]any{
			"customIceServers": []any{map[string]any{"url": "turns:turn.example.com:443?transport=tcp", "staticAuthSecret": "s3cret"}}})
		if st != 200 {
			t.Fatalf("create connection: %d", st)
		}
		r := dial(t, base).result("joinRoom", map[string]any{"token": c["token"], "session": "ice"})
		ice := r["customIceServers"].([]any)
		e := ice[0].(map[string]any)
		if len(ice) != 1 || e["url"] != "turns:turn.example.com:443?transport=tcp" || !strings.Contains(e["username"].(string), ":") || e["credential"] == "" {
			t.Fatalf("customIceServers %v", ice)
		}
	})
}

// TestFixedPortTakenOnUDP: a media port the operator chose is never swapped for another when it
// is taken (only kernel-picked ports are picked again): start-up fails and says which port.
func TestFixedPortTakenOnUDP(t *testing.T) {
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	port := strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port)
	env := map[string]string{"HTTPS_PORT": "0", "PARLEY_MEDIA_PORT": port, "PARLEY_MEDIA_LISTEN_IPS": "127.0.0.1"}
	cfg, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = s.Run(ctx)
		t.Fatalf("started although udp/%s is taken", port)
	}
	if !strings.Contains(err.Error(), "udp/"+port) {
		t.Fatalf("error %q does not name udp/%s", err, port)
	}
}
