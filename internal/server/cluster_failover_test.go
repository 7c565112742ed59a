package server

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/pion/webrtc/v4"
)

// cutter forwards TCP connections to target until cut: then it closes them all and refuses new
// ones, as a node whose process died (or whose network to Redis went) looks to Redis.
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
}

func newCutter(t *testing.T, target string) *cutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() { c.Cut(); _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			c.mu.Lock()
			if err != nil || c.cut {
				c.mu.Unlock()
				_ = in.Close()
				if out != nil {
					_ = out.Close()
				}
				continue
			}
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
	return c
}

// Cut closes every forwarded connection and refuses the next ones.
func (c *cutter) Cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = true
	for _, x := range c.conns {
		_ = x.Close()
	}
	c.conns = nil
}

// TestClusterRestoresALostNodesParticipant: a publisher's node loses Redis for good (as a node
// killed with kill -9 does); the publisher's SDK reconnects its WebSocket to another node, whose
// `connect` restores it under its old JSON-RPC session and connection ids, and its reconnectStream
// publishes its stream there again: a participant of that node is told it joined and published,
// subscribes and receives its media.
func TestClusterRestoresALostNodesParticipant(t *testing.T) {
	t.Parallel()
	cut, a, b := startClusterCuttingA(t)
	if st, _ := rest(t, "POST", b+"/openvidu/api/sessions", map[string]any{"customSessionId": "survive"}); st != 200 {
		t.Fatalf("create: %d", st)
	}
	st, c := rest(t, "POST", b+"/openvidu/api/sessions/survive/connection", map[string]any{"role": "PUBLISHER", "data": "pub-data"})
	if st != 200 {
		t.Fatalf("connection: %d", st)
	}
	onA := dial(t, a)
	j := onA.result("joinRoom", map[string]any{"token": c["token"], "session": "survive", "metadata": `{"clientData":"pub"}`, "platform": "test"})
	rpcID, pubID := j["sessionId"].(string), j["id"].(string)
	pub, _, _ := newAVPublisher(t)
	pr := onA.result("publishVideo", map[string]any{"sdpOffer": pub.offer(t), "doLoopback": false, "hasAudio": true, "hasVideo": true,
		"audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": `{"width":640,"height":480}`})
	streamID := pr["id"].(string)
	pub.answer(t, pr["sdpAnswer"].(string))
	watcher, _ := join(t, b, "survive", "SUBSCRIBER")

	// Node A is gone for Redis, and the publisher's socket to it with it.
	cut.Cut()
	_ = onA.ws.CloseNow()
	onB := dial(t, b)
	if r := onB.result("connect", map[string]any{"sessionId": rpcID, "reconnect": true}); r["value"] != "reconnection successful" || r["sessionId"] != rpcID {
		t.Fatalf("connect on B: %v", r)
	}
	// The watcher (which found the publisher in joinRoom's answer) saw it leave with its node, as
	// OpenVidu tells of a crashed media node, then come back.
	watcher.waitNote("participantLeft", func(p map[string]any) bool { return p["connectionId"] == pubID && p["reason"] == "nodeCrashed" })
	watcher.waitNote("participantJoined", func(p map[string]any) bool { return p["id"] == pubID })
	if st, conn := rest(t, "GET", b+"/openvidu/api/sessions/survive/connection/"+pubID, nil); st != 200 || conn["status"] != "active" || conn["serverData"] != "pub-data" {
		t.Fatalf("the restored publisher through REST: %d %v", st, conn)
	}

	// Its media connection to A is broken: the SDK reconnects the stream, on B now.
	pub2, video2, audio2 := newAVPublisher(t)
	rr := onB.result("reconnectStream", map[string]any{"stream": streamID, "sdpOffer": pub2.offer(t)})
	if rr["id"] != streamID {
		t.Fatalf("reconnectStream answered stream %v, want %s", rr["id"], streamID)
	}
	pub2.answer(t, rr["sdpAnswer"].(string))
	ctx, stop := context.WithCancel(context.Background())
	sending := make(chan struct{})
	go func() { defer close(sending); publishMedia(ctx, video2, audio2) }()
	defer func() { stop(); <-sending }()

	watcher.waitNote("participantPublished", func(p map[string]any) bool { return p["id"] == pubID })
	sub := newPeer(t)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := sub.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	sr := watcher.result("receiveVideoFrom", map[string]any{"sender": streamID, "sdpOffer": sub.offer(t)})
	sub.answer(t, sr["sdpAnswer"].(string))
	waitFor(t, "the restored publisher's media at a subscriber on B", func() bool {
		_, hasVideo := sub.kinds.Load("video")
		return sub.received.Load() > 50 && hasVideo
	})
}

// TestClusterRestoredSubscriberGetsItsStreamsBack: a subscriber's node is lost; its SDK's
// `connect` restores it on another node, which at once offers it the stream it was subscribed to
// (forciblyReconnectSubscriber) instead of leaving it to the SDK, which reconnects a subscription
// only once its browser's ICE has given up on the lost node, about ten seconds later. Its answer
// (reconnectStream with sdpString) brings the media back.
func TestClusterRestoredSubscriberGetsItsStreamsBack(t *testing.T) {
	t.Parallel()
	cut, a, b := startClusterCuttingA(t)
	if st, _ := rest(t, "POST", b+"/openvidu/api/sessions", map[string]any{"customSessionId": "resub"}); st != 200 {
		t.Fatalf("create: %d", st)
	}
	publisher, pubID := join(t, b, "resub", "PUBLISHER")
	pub, video, audio := newAVPublisher(t)
	pr := publisher.result("publishVideo", map[string]any{"sdpOffer": pub.offer(t), "doLoopback": false, "hasAudio": true, "hasVideo": true,
		"audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": `{"width":640,"height":480}`})
	streamID := pr["id"].(string)
	pub.answer(t, pr["sdpAnswer"].(string))
	ctx, stop := context.WithCancel(context.Background())
	sending := make(chan struct{})
	go func() { defer close(sending); publishMedia(ctx, video, audio) }()
	defer func() { stop(); <-sending }()

	st, c := rest(t, "POST", b+"/openvidu/api/sessions/resub/connection", map[string]any{"role": "SUBSCRIBER"})
	if st != 200 {
		t.Fatalf("connection: %d", st)
	}
	onA := dial(t, a)
	j := onA.result("joinRoom", map[string]any{"token": c["token"], "session": "resub", "metadata": "", "platform": "test"})
	rpcID, subID := j["sessionId"].(string), j["id"].(string)
	old := recvPeer(t)
	sr := onA.result("receiveVideoFrom", map[string]any{"sender": streamID, "sdpOffer": old.offer(t)})
	old.answer(t, sr["sdpAnswer"].(string))
	waitFor(t, "the publisher's media at the subscriber on A", func() bool { return old.received.Load() > 50 })
	waitFor(t, "the subscription in the shared record", func() bool {
		st, conn := rest(t, "GET", b+"/openvidu/api/sessions/resub/connection/"+subID, nil)
		subs, _ := conn["subscribers"].([]any)
		return st == 200 && len(subs) == 1
	})

	// Node A is gone for Redis, and the subscriber's socket to it with it.
	cut.Cut()
	_ = onA.ws.CloseNow()
	onB := dial(t, b)
	if r := onB.result("connect", map[string]any{"sessionId": rpcID, "reconnect": true}); r["value"] != "reconnection successful" {
		t.Fatalf("connect on B: %v", r)
	}
	offer := onB.waitNote("forciblyReconnectSubscriber", func(p map[string]any) bool { return p["streamId"] == streamID })
	if offer["connectionId"] != pubID {
		t.Fatalf("forciblyReconnectSubscriber names connection %v, want the publisher %s", offer["connectionId"], pubID)
	}
	again := newPeer(t)
	onB.result("reconnectStream", map[string]any{"stream": streamID, "sdpString": again.answerOffer(t, offer["sdpOffer"].(string)), "forciblyReconnect": true})
	waitFor(t, "the publisher's media on the restored subscription", func() bool {
		_, hasVideo := again.kinds.Load("video")
		return again.received.Load() > 50 && hasVideo
	})
}

// startClusterCuttingA starts nodes a and b on one Redis, node a's connection to it through a
// cutter, so a test can take Redis from a for good as a node killed with kill -9 loses it. env are
// more settings of both nodes.
func startClusterCuttingA(t *testing.T, env ...string) (cut *cutter, a, b string) {
	_, bases := startClusterEnv(t, func(id, redisURL string) []string {
		if id != "node-a" {
			return env
		}
		u, err := url.Parse(redisURL)
		if err != nil {
			t.Fatal(err)
		}
		cut = newCutter(t, u.Host)
		u.Host = cut.ln.Addr().String()
		return append([]string{"PARLEY_REDIS_URL", u.String()}, env...)
	}, "node-a", "node-b")
	return cut, bases[0], bases[1]
}

// TestClusterLostNodesRecordingFails: the node running a recording is lost. As a crashed media
// node's recording does in OpenVidu, the recording ends for the cluster: failed in REST on the
// other nodes, their participants told recordingStopped, the session no longer shown as recorded,
// and a new recording of it can start on a live node.
func TestClusterLostNodesRecordingFails(t *testing.T) {
	t.Parallel()
	m := recordingMedia(t)
	cut, a, b := startClusterCuttingA(t, "OPENVIDU_RECORDING", "true", "OPENVIDU_RECORDING_PATH", t.TempDir())
	if st, _ := rest(t, "POST", b+"/openvidu/api/sessions", map[string]any{"customSessionId": "rec-lost"}); st != 200 {
		t.Fatalf("create: %d", st)
	}
	onA, _ := joinOn(t, b+"/openvidu/api", a, "rec-lost", "PUBLISHER")
	onB, _ := joinOn(t, b+"/openvidu/api", b, "rec-lost", "PUBLISHER")
	pa, pb := publishReal(t, onA, m), publishReal(t, onB, m)
	pa.waitPlayed(t, 300)
	pb.waitPlayed(t, 300)
	if st, r := rest(t, "POST", a+"/openvidu/api/recordings/start", map[string]any{"session": "rec-lost", "outputMode": "INDIVIDUAL"}); st != 200 {
		t.Fatalf("start on A: %d %v", st, r)
	}
	onB.waitNote("recordingStarted", func(n map[string]any) bool { return n["id"] == "rec-lost" })

	cut.Cut()
	_ = onA.ws.CloseNow()
	onB.waitNote("recordingStopped", func(n map[string]any) bool { return n["id"] == "rec-lost" })
	if st, r := rest(t, "GET", b+"/openvidu/api/recordings/rec-lost", nil); st != 200 || r["status"] != "failed" {
		t.Fatalf("the lost node's recording on B: %d %v", st, r)
	}
	if st, s := rest(t, "GET", b+"/openvidu/api/sessions/rec-lost", nil); st != 200 || s["recording"] != false {
		t.Fatalf("the session on B after its recording's node was lost: %d recording=%v", st, s["recording"])
	}
	if st, r := rest(t, "POST", b+"/openvidu/api/recordings/start", map[string]any{"session": "rec-lost", "outputMode": "INDIVIDUAL"}); st != 200 || r["status"] != "started" {
		t.Fatalf("a new recording on B: %d %v", st, r)
	}
}
