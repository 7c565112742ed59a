package cascade

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/poll"
	"github.com/parley/parley/internal/sfu"
)

// memBus delivers each node's messages straight to the other node's Links, in order.
type memBus struct {
	from  string
	nodes map[string]*Links
}

func (b memBus) Send(_ context.Context, node string, p []byte) error {
	to := b.nodes[node]
	if to == nil {
		return fmt.Errorf("no node %s", node)
	}
	return to.Handle(b.from, p)
}

// testNode is one Parley node as far as media goes: its SFU on one address (as a production node
// with one public address: every link to another node shares one address pair) and its links.
type testNode struct {
	id    string
	sfu   *sfu.SFU
	links *Links
	mu    sync.Mutex
	pubs  map[string]*sfu.Publisher
}

func newTestNodes(t *testing.T, ids ...string) []*testNode {
	t.Helper()
	all := map[string]*Links{}
	var nodes []*testNode
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, id := range ids {
		s, err := sfu.New(sfu.Config{Port: 0, ListenIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Loopback: true}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		n := &testNode{id: id, sfu: s, pubs: map[string]*sfu.Publisher{}}
		local := func(stream string) (*sfu.Publisher, error) {
			n.mu.Lock()
			defer n.mu.Unlock()
			if p := n.pubs[stream]; p != nil {
				return p, nil
			}
			return nil, fmt.Errorf("no stream %s", stream)
		}
		n.links = New(Config{NodeID: id, Secret: "shared"}, s, memBus{from: id, nodes: all}, local, nil)
		all[id] = n.links
		wg.Add(1)
		go func() { defer wg.Done(); _ = n.links.Run(ctx) }()
		nodes = append(nodes, n)
	}
	return nodes
}

// peer is a pion PeerConnection standing in for a browser.
type peer struct {
	pc   *webrtc.PeerConnection
	mu   sync.Mutex
	seqs map[uint16]bool
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
	t.Cleanup(func() { _ = pc.Close() })
	p := &peer{pc: pc, seqs: map[uint16]bool{}}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.seqs[pkt.SequenceNumber] = true
			p.mu.Unlock()
		}
	})
	return p
}

func (p *peer) offer(t *testing.T) string {
	t.Helper()
	o, err := p.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-done
	return p.pc.LocalDescription().SDP
}

func (p *peer) answer(t *testing.T, sdp string) {
	t.Helper()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		t.Fatal(err)
	}
}

// received returns how many packets arrived and how many the span of their sequence numbers
// (first to last) held.
func (p *peer) received() (got, span int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first, last uint16
	for s := range p.seqs {
		if got == 0 || int16(s-first) < 0 {
			first = s
		}
		if got == 0 || int16(s-last) > 0 {
			last = s
		}
		got++
	}
	if got == 0 {
		return 0, 0
	}
	return got, int(last-first) + 1
}

// publish puts a VP8 stream from a new peer on n as stream id, sending a packet every 5 ms until
// the test ends.
func (n *testNode) publish(t *testing.T, id string) {
	t.Helper()
	p := newPeer(t)
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	pub, ans, err := n.sfu.Publish(context.Background(), sfu.PublishRequest{Offer: p.offer(t), VideoCodec: sfu.CodecVP8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	p.answer(t, ans)
	n.mu.Lock()
	n.pubs[id] = pub
	n.mu.Unlock()
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			// Every 30th packet starts a VP8 keyframe, so a subscriber's video starts at once.
			payload := []byte{0x10, 0x01, 2, 3}
			if seq%30 == 0 {
				payload[1] = 0x00
			}
			_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: true}, Payload: payload})
		}
	}()
}

// subscribe pulls stream from node from and subscribes a new peer to it on n.
func (n *testNode) subscribe(t *testing.T, from, stream string) *peer {
	t.Helper()
	pub, release, err := n.links.Pull(context.Background(), from, stream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	p := newPeer(t)
	if _, err := p.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	sub, ans, err := n.sfu.Subscribe(context.Background(), pub, sfu.SubscribeRequest{Offer: p.offer(t), StreamID: stream})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	p.answer(t, ans)
	return p
}

// wholeStream waits until p got n packets and checks that they are nearly all of what was sent
// in their span: the relayed stream arrives whole on a loss-free network.
func wholeStream(t *testing.T, what string, p *peer, n int) {
	t.Helper()
	poll.Until(t, 20*time.Second, fmt.Sprintf("%d packets of %s", n, what), func() bool { got, _ := p.received(); return got >= n })
	if got, span := p.received(); float64(got) < 0.95*float64(span) {
		t.Fatalf("%s: %d of %d packets arrived (%.0f %% lost) on a loss-free network", what, got, span, 100*(1-float64(got)/float64(span)))
	}
}

// Two nodes each subscribing to the other's stream: both streams cross between the same two media
// addresses at once, and each arrives whole. (Two PeerConnections between one address pair, one
// per direction, cannot be told apart on the shared media port: the two-node browser test lost
// half of each stream that way.)
func TestStreamsCrossBothWays(t *testing.T) {
	nodes := newTestNodes(t, "node-a", "node-b")
	a, b := nodes[0], nodes[1]
	a.publish(t, "str_A")
	b.publish(t, "str_B")
	onB := b.subscribe(t, "node-a", "str_A")
	onA := a.subscribe(t, "node-b", "str_B")
	wholeStream(t, "A's stream on B", onB, 400)
	wholeStream(t, "B's stream on A", onA, 400)
}

// subscribeUntil is subscribe with a func that ends the subscription and releases the pull.
func (n *testNode) subscribeUntil(t *testing.T, from, stream string) (*peer, func()) {
	t.Helper()
	pub, release, err := n.links.Pull(context.Background(), from, stream)
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer(t)
	if _, err := p.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	sub, ans, err := n.sfu.Subscribe(context.Background(), pub, sfu.SubscribeRequest{Offer: p.offer(t), StreamID: stream})
	if err != nil {
		release()
		t.Fatal(err)
	}
	p.answer(t, ans)
	var once sync.Once
	end := func() { once.Do(func() { sub.Close(); release() }) }
	t.Cleanup(end)
	return p, end
}

// mlines returns the m-lines of n's link with node (0 without one).
func (n *testNode) mlines(node string) int {
	n.links.mu.Lock()
	lk := n.links.links[node]
	n.links.mu.Unlock()
	if lk == nil || lk.relay == nil {
		return 0
	}
	return lk.relay.MLines()
}

// A link that lives long (a stream crosses it all along) while streams come and go both ways keeps
// about as many m-lines as streams cross it at once: those of ended streams carry the next ones,
// and each of those arrives whole. pion never removes an m-line (pion/webrtc#3007): without the
// reuse, the link grew by one m-line per stream that ever crossed it.
func TestLinkReusesMLines(t *testing.T) {
	nodes := newTestNodes(t, "node-a", "node-b") // A offers
	a, b := nodes[0], nodes[1]
	a.publish(t, "str_keep")
	wholeStream(t, "the stream that keeps the link", b.subscribe(t, "node-a", "str_keep"), 50)
	const rounds = 6
	for i := range rounds {
		sa, sb := fmt.Sprintf("str_A%d", i), fmt.Sprintf("str_B%d", i)
		a.publish(t, sa)
		b.publish(t, sb)
		onB, endB := b.subscribeUntil(t, "node-a", sa) // offering end sends
		onA, endA := a.subscribeUntil(t, "node-b", sb) // offering end receives
		wholeStream(t, sa+" on B", onB, 50)
		wholeStream(t, sb+" on A", onA, 50)
		endB()
		endA()
	}
	// The kept stream, one sending (reused at once) and at most two receiving m-lines: one carrying
	// a stream, one whose stream ended after the last answer. Without reuse: 1 + 2×rounds.
	for _, n := range []struct {
		node *testNode
		peer string
	}{{a, "node-b"}, {b, "node-a"}} {
		if got := n.node.mlines(n.peer); got > 4 {
			t.Errorf("%s's end of the link has %d m-lines after %d streams came and went each way, want at most 4", n.node.id, got, rounds)
		}
	}
}
