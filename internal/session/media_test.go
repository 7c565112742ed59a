package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeMedia is hand-written media under the model: connections that count their Close, and hooks
// to run while a negotiation is in flight.
type fakeMedia struct {
	closed     atomic.Int32
	duringPub  func() // runs inside Publish, before it answers
	duringSub  func()
	publishErr error
	pubReq     PublishRequest   // the last Publish request
	subReq     SubscribeRequest // the last Subscribe request
	cands      atomic.Int32     // candidates applied to any connection
}

type fakeConn struct{ m *fakeMedia }

func (f *fakeMedia) Publish(_ context.Context, r PublishRequest) (PublishedMedia, string, error) {
	f.pubReq = r
	if f.duringPub != nil {
		f.duringPub()
	}
	if f.publishErr != nil {
		return nil, "", f.publishErr
	}
	return fakeConn{f}, "answer", nil
}

func (f *fakeMedia) Subscribe(_ context.Context, _ PublishedMedia, r SubscribeRequest) (SubscribedMedia, string, error) {
	f.subReq = r
	if f.duringSub != nil {
		f.duringSub()
	}
	return fakeConn{f}, "answer", nil
}

func (f *fakeMedia) SubscribeOffer(ctx context.Context, p PublishedMedia, r SubscribeRequest) (SubscribedMedia, string, error) {
	return f.Subscribe(ctx, p, r)
}

func (fakeConn) Tracks() (audio, video bool)                         { return true, true }
func (c fakeConn) AddCandidate(Candidate) error                      { c.m.cands.Add(1); return nil }
func (fakeConn) Renegotiate(context.Context, string) (string, error) { return "answer", nil }
func (fakeConn) Path() MediaPath                                     { return MediaPath{} }
func (fakeConn) SetAnswer(string) error                              { return nil }
func (c fakeConn) Close()                                            { c.m.closed.Add(1) }

func newMediaManager(t *testing.T) (*Manager, *fakeMedia) {
	t.Helper()
	m, _ := newTestManager(t)
	f := &fakeMedia{}
	m.opts.Media = f
	if _, err := m.CreateSession(Properties{CustomSessionID: "s"}); err != nil {
		t.Fatal(err)
	}
	return m, f
}

// TestMediaOfAParticipantGoneIsClosed: media negotiated for a participant that left meanwhile is
// closed before the call returns, not by an orphaned goroutine.
func TestMediaOfAParticipantGoneIsClosed(t *testing.T) {
	t.Run("publish", func(t *testing.T) {
		m, f := newMediaManager(t)
		p, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
		f.duringPub = p.Leave
		if _, _, err := p.Publish(context.Background(), PublishParams{Offer: "o"}); err == nil {
			t.Fatal("publish of a participant that left succeeded")
		}
		if n := f.closed.Load(); n != 1 {
			t.Fatalf("%d media connections closed when Publish returned, want 1", n)
		}
	})
	t.Run("subscribe", func(t *testing.T) {
		m, f := newMediaManager(t)
		pub, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
		sub, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RoleSubscriber}, "")
		st, _, err := pub.Publish(context.Background(), PublishParams{Offer: "o"})
		if err != nil {
			t.Fatal(err)
		}
		f.duringSub = sub.Leave
		if _, err := sub.Subscribe(context.Background(), st.ID, "o"); err == nil {
			t.Fatal("subscribe of a participant that left succeeded")
		}
		if n := f.closed.Load(); n != 1 {
			t.Fatalf("%d media connections closed when Subscribe returned, want 1", n)
		}
	})
}

// TestMediaErrorsKeepTheirCause: a media failure becomes a model error with the OpenVidu code and
// still says what failed underneath.
func TestMediaErrorsKeepTheirCause(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cause error
		code  int
	}{
		{"sdp", fmt.Errorf("no m-line: %w", ErrMediaSDP), CodeMediaSDPError},
		{"codec", fmt.Errorf("%w: VP9 not offered", ErrMediaCodec), CodeForcedCodec},
		{"other", errors.New("dtls: boom"), CodeMediaEndpointError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, f := newMediaManager(t)
			p, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
			f.publishErr = tc.cause
			_, _, err := p.Publish(context.Background(), PublishParams{Offer: "o"})
			var se *Error
			if !errors.As(err, &se) || se.Code != tc.code {
				t.Fatalf("error %v, want code %d", err, tc.code)
			}
			if !errors.Is(err, tc.cause) {
				t.Errorf("error %v lost its cause %v", err, tc.cause)
			}
		})
	}
}

// TestResubscribeEndsTheOldSubscription: a browser that subscribes again to the same stream (after
// a reconnection) replaces its subscription; the old one's end is an event like any other, so
// webhooks, CDR and the subscribed-streams gauge stay balanced.
func TestResubscribeEndsTheOldSubscription(t *testing.T) {
	m, f := newMediaManager(t)
	var mu sync.Mutex
	count := map[EventKind]int{}
	m.Listen(func(e Event) {
		if e.Subscriber != "" {
			mu.Lock()
			count[e.Kind]++
			mu.Unlock()
		}
	})
	pub, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
	sub, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RoleSubscriber}, "")
	st, _, err := pub.Publish(context.Background(), PublishParams{Offer: "o"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := sub.Subscribe(context.Background(), st.ID, "o"); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	created, destroyed := count[WebRTCConnectionCreated], count[WebRTCConnectionDestroyed]
	mu.Unlock()
	if created != 3 || destroyed != 2 {
		t.Fatalf("subscription events: %d created, %d destroyed; want 3 and 2", created, destroyed)
	}
	if n := f.closed.Load(); n != 2 {
		t.Fatalf("%d old subscriptions closed, want 2", n)
	}
	sub.Leave()
	mu.Lock()
	defer mu.Unlock()
	if count[WebRTCConnectionCreated] != count[WebRTCConnectionDestroyed] {
		t.Fatalf("after leaving: %v", count)
	}
}

// TestMalformedVideoDimensionsRejected: a videoDimensions change that is not the JSON text of a
// string is refused, and nobody is told of it.
func TestMalformedVideoDimensionsRejected(t *testing.T) {
	m, _ := newMediaManager(t)
	p, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
	_, other, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RoleSubscriber}, "")
	if _, _, err := p.Publish(context.Background(), PublishParams{Offer: "o", Media: MediaOptions{HasVideo: true, VideoDimensions: `{"width":640,"height":480}`}}); err != nil {
		t.Fatal(err)
	}
	other.mu.Lock()
	other.events = nil
	other.mu.Unlock()
	for _, bad := range []string{`{"width":1}`, `"{\"width\"`, `12`, ``} {
		if err := p.ChangeStreamProperty("videoDimensions", bad, "screenResized"); kindOf(err) != KindInvalid {
			t.Errorf("videoDimensions %q: error %v, want invalid", bad, err)
		}
	}
	if k := other.kinds(); len(k) != 0 {
		t.Fatalf("others told of malformed changes: %v", k)
	}
	if err := p.ChangeStreamProperty("videoDimensions", `"{\"width\":320,\"height\":240}"`, "screenResized"); err != nil {
		t.Fatal(err)
	}
	ci, _ := m.Room("s").Connection(p.ID())
	if got := ci.Publishers[0].Media.VideoDimensions; got != `{"width":320,"height":240}` {
		t.Fatalf("videoDimensions %q", got)
	}
}

// TestAlive follows a connection's life as the TURN server sees it.
func TestAlive(t *testing.T) {
	m, _ := newMediaManager(t)
	pending, _ := m.Room("s").CreateConnection(ConnectionOptions{Role: RolePublisher})
	p, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
	q, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
	if m.Alive(string(pending.ID)) || !m.Alive(string(p.ID())) || m.Alive("con_Nobody") {
		t.Fatal("alive: only joined participants")
	}
	p.Leave()
	if m.Alive(string(p.ID())) || !m.Alive(string(q.ID())) {
		t.Fatal("a participant that left is not alive; the others are")
	}
	if err := m.Room("s").Close(); err != nil {
		t.Fatal(err)
	}
	if m.Alive(string(q.ID())) {
		t.Fatal("alive after its session closed")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.conns) != 0 {
		t.Fatalf("index holds %d connections of closed sessions", len(m.conns))
	}
}

// TestKurentoOptionsReachMedia: a connection's kurentoOptions bandwidths go with its publisher
// (videoMax/MinRecvBandwidth) and its subscriptions (videoMaxSendBandwidth); a connection without
// them leaves the server's settings (nil).
func TestKurentoOptionsReachMedia(t *testing.T) {
	m, f := newMediaManager(t)
	maxRecv, minRecv, maxSend := 800, 200, 250
	k := &KurentoOptions{VideoMaxRecvBandwidth: &maxRecv, VideoMinRecvBandwidth: &minRecv, VideoMaxSendBandwidth: &maxSend}
	pub, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher, KurentoOptions: k}, "")
	plain, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RoleSubscriber}, "")
	st, _, err := pub.Publish(context.Background(), PublishParams{Offer: "o"})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.pubReq; r.MaxKbps == nil || *r.MaxKbps != 800 || r.MinKbps == nil || *r.MinKbps != 200 {
		t.Fatalf("publish request bandwidths %v %v, want 800 and 200", r.MaxKbps, r.MinKbps)
	}
	if _, err := plain.Subscribe(context.Background(), st.ID, "o"); err != nil {
		t.Fatal(err)
	}
	if f.subReq.MaxKbps != nil {
		t.Fatalf("a connection without kurentoOptions asked for %d kbps", *f.subReq.MaxKbps)
	}
	capped, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RoleSubscriber, KurentoOptions: k}, "")
	if _, err := capped.Subscribe(context.Background(), st.ID, "o"); err != nil {
		t.Fatal(err)
	}
	if r := f.subReq; r.MaxKbps == nil || *r.MaxKbps != 250 {
		t.Fatalf("subscribe request cap %v, want 250", r.MaxKbps)
	}
}

// TestPendingCandidatesBounded: candidates sent before their endpoint exists are kept for it, at
// most maxPendingCandidates and maxPendingBytes per participant, and applied when it appears;
// what was applied no longer counts against the bound.
func TestPendingCandidatesBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int // bytes of each candidate
	}{
		{"count", 200},
		{"bytes", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, f := newMediaManager(t)
			pub, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
			other, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
			cand := Candidate{Candidate: strings.Repeat("c", tc.size)}
			own := string(pub.ID())
			want := min(maxPendingCandidates, maxPendingBytes/(len(own)+tc.size))
			for range 3 * maxPendingCandidates {
				if err := pub.AddCandidate(own, cand); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := pub.Publish(context.Background(), PublishParams{Offer: "o"}); err != nil {
				t.Fatal(err)
			}
			if n := int(f.cands.Swap(0)); n != want {
				t.Errorf("%d candidates of %d bytes applied at publish, want %d (the bound)", n, tc.size, want)
			}

			// The publish took its candidates out of the budget: a subscription gets as many.
			st, _, err := other.Publish(context.Background(), PublishParams{Offer: "o"})
			if err != nil {
				t.Fatal(err)
			}
			f.cands.Store(0)
			for range 3 * maxPendingCandidates {
				if err := pub.AddCandidate(string(other.ID()), cand); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := pub.Subscribe(context.Background(), st.ID, "o"); err != nil {
				t.Fatal(err)
			}
			if n := int(f.cands.Load()); n != want {
				t.Errorf("%d candidates applied at subscribe, want %d", n, want)
			}
		})
	}
}
