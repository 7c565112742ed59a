package server

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/cluster/redistest"
	"github.com/parley/parley/internal/poll"
	"github.com/parley/parley/internal/session"
)

// startCluster runs n Parley nodes in-process on one real redis-server (skipped, saying why, when
// redis-server is not installed; make test installs it).
func startCluster(t *testing.T, ids ...string) []string {
	t.Helper()
	_, bases := startClusterEnv(t, nil, ids...)
	return bases
}

// startClusterEnv is startCluster with each node's own settings (env(id, the Redis URL), pairs of
// name and value), returning the redis-server too.
func startClusterEnv(t *testing.T, env func(id, redisURL string) []string, ids ...string) (*redistest.Server, []string) {
	t.Helper()
	srv, _, bases := startClusterServersEnv(t, env, ids...)
	return srv, bases
}

// startClusterServers is startCluster returning the servers too.
func startClusterServers(t *testing.T, ids ...string) ([]*Server, []string) {
	t.Helper()
	_, servers, bases := startClusterServersEnv(t, nil, ids...)
	return servers, bases
}

// startClusterServersEnv is startClusterEnv returning the servers too.
func startClusterServersEnv(t *testing.T, env func(id, redisURL string) []string, ids ...string) (*redistest.Server, []*Server, []string) {
	t.Helper()
	srv, err := redistest.Start()
	if errors.Is(err, redistest.ErrAbsent) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop) // after the nodes' own cleanups: they leave the registry on the way out
	var servers []*Server
	var bases []string
	for _, id := range ids {
		over := []string{"PARLEY_REDIS_URL", srv.URL, "PARLEY_NODE_ID", id}
		if env != nil {
			over = append(over, env(id, srv.URL)...)
		}
		s, base := startServer(t, over...)
		servers = append(servers, s)
		bases = append(bases, base)
	}
	return srv, servers, bases
}

// TestClusterAnyNodeAnswers drives two nodes as openvidu-node-client and openvidu-browser would:
// REST on one, the participant on the other.
func TestClusterAnyNodeAnswers(t *testing.T) {
	t.Parallel()
	bases := startCluster(t, "node-a", "node-b")
	a, b := bases[0], bases[1]

	if st, _ := rest(t, "POST", a+"/openvidu/api/sessions", map[string]any{"customSessionId": "spread"}); st != 200 {
		t.Fatalf("create on A: %d", st)
	}
	if st, _ := rest(t, "POST", b+"/openvidu/api/sessions", map[string]any{"customSessionId": "spread"}); st != 409 {
		t.Fatalf("create the same id on B: %d, want 409", st)
	}
	st, list := rest(t, "GET", b+"/openvidu/api/sessions", nil)
	if st != 200 || list["numberOfElements"] != float64(1) {
		t.Fatalf("list on B: %d %v", st, list)
	}
	if st, s := rest(t, "GET", b+"/openvidu/api/sessions/spread", nil); st != 200 || s["id"] != "spread" {
		t.Fatalf("fetch on B: %d %v", st, s)
	}

	// A token made on A joins on B, once.
	st, c := rest(t, "POST", a+"/openvidu/api/sessions/spread/connection", map[string]any{"role": "PUBLISHER"})
	if st != 200 {
		t.Fatalf("connection on A: %d", st)
	}
	onB := dial(t, b)
	r := onB.result("joinRoom", map[string]any{"token": c["token"], "session": "spread", "metadata": "{}", "platform": "test"})
	if r["id"] != c["id"] {
		t.Fatalf("joined on B as %v, want %v", r["id"], c["id"])
	}
	again := dial(t, a).call("joinRoom", map[string]any{"token": c["token"], "session": "spread", "metadata": "{}"})
	if e, _ := again["error"].(map[string]any); e == nil || e["code"] != float64(401) {
		t.Fatalf("second join on A: %v, want error 401", again)
	}
	cid := c["id"].(string)
	if st, conn := rest(t, "GET", a+"/openvidu/api/sessions/spread/connection/"+cid, nil); st != 200 || conn["status"] != "active" {
		t.Fatalf("the participant on B, fetched on A: %d %v", st, conn)
	}

	// A second participant joins on A with a token made on B.
	_, c2 := rest(t, "POST", b+"/openvidu/api/sessions/spread/connection", map[string]any{"role": "PUBLISHER"})
	onA := dial(t, a)
	onA.result("joinRoom", map[string]any{"token": c2["token"], "session": "spread", "metadata": "{}", "platform": "test"})

	// A forceDisconnect through A reaches B's participant; closing through B evicts A's.
	if st, _ := rest(t, "DELETE", a+"/openvidu/api/sessions/spread/connection/"+cid, nil); st != 204 {
		t.Fatalf("forceDisconnect on A: %d", st)
	}
	onB.waitNote("participantEvicted", func(p map[string]any) bool { return p["reason"] == "forceDisconnectByServer" })
	poll.Until(t, 10*time.Second, "the evicted participant gone from A's listing", func() bool {
		st, s := rest(t, "GET", a+"/openvidu/api/sessions/spread", nil)
		conns, _ := s["connections"].(map[string]any)
		return st == 200 && conns["numberOfElements"] == float64(1)
	})
	if st, _ := rest(t, "DELETE", b+"/openvidu/api/sessions/spread", nil); st != 204 {
		t.Fatalf("close on B: %d", st)
	}
	onA.waitNote("participantEvicted", func(p map[string]any) bool { return p["reason"] == "sessionClosedByServer" })
	if st, _ := rest(t, "GET", a+"/openvidu/api/sessions/spread", nil); st != 404 {
		t.Fatalf("fetch on A after the close: %d, want 404", st)
	}
}

// TestClusterParticipantsSeeEachOther joins participants of one session on two nodes: each sees the
// others as on one node (joinRoom's value, participantJoined/Left, participantPublished/Unpublished,
// streamPropertyChanged, signals, a moderator's forceDisconnect), and REST on either node shows all.
func TestClusterParticipantsSeeEachOther(t *testing.T) {
	t.Parallel()
	bases := startCluster(t, "node-a", "node-b")
	a, b := bases[0], bases[1]
	if st, _ := rest(t, "POST", a+"/openvidu/api/sessions", map[string]any{"customSessionId": "span"}); st != 200 {
		t.Fatalf("create on A: %d", st)
	}
	token := func(role string) string {
		st, c := rest(t, "POST", a+"/openvidu/api/sessions/span/connection", map[string]any{"role": role})
		if st != 200 {
			t.Fatalf("connection: %d", st)
		}
		return c["token"].(string)
	}
	join := func(base, tok, name string) (*rpcClient, string) {
		c := dial(t, base)
		r := c.result("joinRoom", map[string]any{"token": tok, "session": "span", "platform": "test", "metadata": `{"clientData":"` + name + `"}`})
		return c, r["id"].(string)
	}

	// Alice joins on A and publishes.
	alice, aliceID := join(a, token("PUBLISHER"), "alice")
	pub, video, audio := newAVPublisher(t)
	pr := alice.result("publishVideo", map[string]any{"sdpOffer": pub.offer(t), "hasAudio": true, "hasVideo": true,
		"audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": `{"width":640,"height":480}`})
	streamID := pr["id"].(string)
	pub.answer(t, pr["sdpAnswer"].(string))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go publishMedia(ctx, video, audio)

	// Bob joins on B: joinRoom lists Alice and her stream; Alice hears of Bob.
	bob := dial(t, b)
	bj := bob.result("joinRoom", map[string]any{"token": token("MODERATOR"), "session": "span", "platform": "test", "metadata": `{"clientData":"bob"}`})
	bobID := bj["id"].(string)
	value, _ := bj["value"].([]any)
	if len(value) != 1 || value[0].(map[string]any)["id"] != aliceID || value[0].(map[string]any)["metadata"] != `{"clientData":"alice"}` {
		t.Fatalf("joinRoom on B lists %v, want alice", value)
	}
	if streams, _ := value[0].(map[string]any)["streams"].([]any); len(streams) != 1 || streams[0].(map[string]any)["id"] != streamID {
		t.Fatalf("alice's streams seen on B: %v", value[0])
	}
	alice.waitNote("participantJoined", func(p map[string]any) bool { return p["id"] == bobID && p["metadata"] == `{"clientData":"bob"}` })

	// Signals cross, to everyone and to one participant.
	bob.result("sendMessage", map[string]any{"message": `{"to":[],"data":"hi all","type":"signal:chat"}`})
	for _, c := range []*rpcClient{alice, bob} {
		c.waitNote("sendMessage", func(p map[string]any) bool { return p["data"] == "hi all" && p["from"] == bobID })
	}
	alice.result("sendMessage", map[string]any{"message": `{"to":["` + bobID + `"],"data":"hi bob","type":"signal:chat"}`})
	bob.waitNote("sendMessage", func(p map[string]any) bool { return p["data"] == "hi bob" && p["from"] == aliceID })

	// Property changes and a second publisher cross.
	alice.result("streamPropertyChanged", map[string]any{"streamId": streamID, "property": "audioActive", "newValue": false, "reason": "publishAudio"})
	bob.waitNote("streamPropertyChanged", func(p map[string]any) bool { return p["streamId"] == streamID && p["newValue"] == "false" })
	bpub, _, _ := newAVPublisher(t)
	bpr := bob.result("publishVideo", map[string]any{"sdpOffer": bpub.offer(t), "hasAudio": true, "hasVideo": true,
		"audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": `{"width":640,"height":480}`})
	bpub.answer(t, bpr["sdpAnswer"].(string))
	alice.waitNote("participantPublished", func(p map[string]any) bool { return p["id"] == bobID })

	// A third participant, on A, sees both (Bob mirrored from B) in joinRoom.
	carol := dial(t, a)
	cj := carol.result("joinRoom", map[string]any{"token": token("PUBLISHER"), "session": "span", "platform": "test", "metadata": "{}"})
	carolID := cj["id"].(string)
	if v, _ := cj["value"].([]any); len(v) != 2 {
		t.Fatalf("joinRoom on A after Bob published: %v", v)
	}
	bob.waitNote("participantJoined", func(p map[string]any) bool { return p["id"] == carolID })

	// REST on either node shows the whole session.
	for _, base := range []string{a, b} {
		poll.Until(t, 10*time.Second, "three participants, two publishing, listed on "+base, func() bool {
			st, s := rest(t, "GET", base+"/openvidu/api/sessions/span", nil)
			conns, _ := s["connections"].(map[string]any)
			if st != 200 || conns["numberOfElements"] != float64(3) {
				return false
			}
			publishing := 0
			for _, c := range conns["content"].([]any) {
				if p, _ := c.(map[string]any)["publishers"].([]any); len(p) == 1 {
					publishing++
				}
			}
			return publishing == 2
		})
	}

	// Bob, a moderator on B, evicts Carol on A: everyone hears it with the moderator's reason.
	bob.result("forceDisconnect", map[string]any{"connectionId": carolID})
	carol.waitNote("participantEvicted", func(p map[string]any) bool { return p["reason"] == "forceDisconnectByUser" })
	bob.waitNote("participantLeft", func(p map[string]any) bool {
		return p["connectionId"] == carolID && p["reason"] == "forceDisconnectByUser"
	})

	// Alice unpublishes and leaves; Bob hears both.
	alice.result("unpublishVideo", nil)
	bob.waitNote("participantUnpublished", func(p map[string]any) bool { return p["connectionId"] == aliceID && p["reason"] == "unpublish" })
	alice.result("leaveRoom", nil)
	bob.waitNote("participantLeft", func(p map[string]any) bool { return p["connectionId"] == aliceID && p["reason"] == "disconnect" })
}

// recvPeer is a pion subscriber with a recvonly audio and video transceiver.
func recvPeer(t *testing.T) *peer {
	t.Helper()
	p := newPeer(t)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := p.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// TestClusterMediaCrossesOnce publishes on node A and subscribes three participants on node B: each
// receives the stream's audio and video, which crosses A→B on one link carrying one copy of each
// track; B's subscribers' keyframe requests reach the publisher on A. A subscriber on A makes no
// link, and the link closes when nobody on B subscribes any more.
func TestClusterMediaCrossesOnce(t *testing.T) {
	t.Parallel()
	srvs, bases := startClusterServers(t, "node-a", "node-b")
	a, b := bases[0], bases[1]
	if st, _ := rest(t, "POST", a+"/openvidu/api/sessions", map[string]any{"customSessionId": "cascade"}); st != 200 {
		t.Fatalf("create on A: %d", st)
	}
	join := func(base string) *rpcClient {
		_, c := rest(t, "POST", a+"/openvidu/api/sessions/cascade/connection", map[string]any{"role": "PUBLISHER"})
		r := dial(t, base)
		r.result("joinRoom", map[string]any{"token": c["token"], "session": "cascade", "platform": "test", "metadata": "{}"})
		return r
	}

	alice := join(a)
	pub, video, audio := newAVPublisher(t)
	pr := alice.result("publishVideo", map[string]any{"sdpOffer": pub.offer(t), "hasAudio": true, "hasVideo": true,
		"audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": `{"width":640,"height":480}`})
	streamID := pr["id"].(string)
	pub.answer(t, pr["sdpAnswer"].(string))
	var plis atomic.Int64
	for _, tr := range pub.pc.GetTransceivers() {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			continue
		}
		go func(snd *webrtc.RTPSender) {
			for {
				pkts, _, err := snd.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if _, ok := p.(*rtcp.PictureLossIndication); ok {
						plis.Add(1)
					}
				}
			}
		}(tr.Sender())
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go publishMedia(ctx, video, audio)

	subscribe := func(c *rpcClient) *peer {
		p := recvPeer(t)
		r := c.result("receiveVideoFrom", map[string]any{"sender": streamID, "sdpOffer": p.offer(t)})
		p.answer(t, r["sdpAnswer"].(string))
		return p
	}
	receives := func(p *peer) func() bool {
		return func() bool {
			_, au := p.kinds.Load("audio")
			_, vi := p.kinds.Load("video")
			return au && vi && p.received.Load() > 100
		}
	}

	// A subscriber on A: a session on one node never touches the link.
	local := subscribe(join(a))
	waitFor(t, "media on A's own subscriber", receives(local))
	if st := srvs[0].links.Stats(); len(st) != 0 {
		t.Fatalf("a subscriber on the publisher's node made links: %+v", st)
	}

	// Three subscribers on B: one link A→B, one copy of each track.
	before := plis.Load()
	var onB []*rpcClient
	for range 3 {
		c := join(b)
		onB = append(onB, c)
		waitFor(t, "media on B's subscriber", receives(subscribe(c)))
	}
	st := srvs[0].links.Stats()
	if len(st) != 1 || !st[0].Live || st[0].Node != "node-b" || st[0].Streams != 1 || st[0].Tracks != 2 {
		t.Fatalf("A's links with three subscribers on B: %+v, want one to node-b with 1 stream of 2 tracks", st)
	}
	if back := srvs[1].links.Stats(); len(back) != 0 {
		t.Fatalf("B sends on links though it publishes nothing: %+v", back)
	}
	waitFor(t, "a keyframe request from B's subscribers reaching the publisher on A", func() bool { return plis.Load() > before })

	// Nobody on B subscribes any more: the link closes.
	for _, c := range onB {
		c.result("unsubscribeFromVideo", map[string]any{"sender": string(session.StreamID(streamID).Owner())})
	}
	waitFor(t, "the link closed once nothing crosses it", func() bool {
		st := srvs[0].links.Stats()
		return len(st) == 1 && !st[0].Live && st[0].Tracks == 0 && st[0].Bytes > 0
	})
}
