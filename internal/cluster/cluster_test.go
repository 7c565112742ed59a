package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley/parley/internal/cluster/redistest"
	"github.com/parley/parley/internal/poll"
	"github.com/parley/parley/internal/session"
)

const within = 10 * time.Second

// runs numbers the tests' Redis namespaces.
var runs atomic.Int64

// clock is a settable clock shared by the nodes of a test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// node is one Parley node of a test: its session model and its cluster membership.
type node struct {
	m *session.Manager
	n *Node
	// stop ends the node cleanly (its Run returns, as at SIGTERM) before the test does.
	stop func()
}

// newNodes starts count nodes sharing one Redis namespace of the test's own, each running until
// the test ends.
func newNodes(t *testing.T, count int, clk *clock) []node {
	t.Helper()
	return newNodesWith(t, count, func(c *Config) {
		if clk != nil {
			c.Now = clk.Now
		}
	})
}

// newNodesWith is newNodes with each node's Config changed by set.
func newNodesWith(t *testing.T, count int, set func(*Config)) []node {
	t.Helper()
	url := needRedis(t)
	// Unique per run too: with -count=N every run of a test shares the one redis-server.
	prefix := fmt.Sprintf("test:%s:%d:", t.Name(), runs.Add(1))
	var out []node
	for i := range count {
		m := session.NewManager(session.Options{WebSocketURL: "ws://parley.test/openvidu"})
		cfg := Config{RedisURL: url, NodeID: fmt.Sprintf("node-%c", 'a'+i), Prefix: prefix, MediaAddrs: []string{fmt.Sprintf("192.0.2.%d:443", i+1)}}
		set(&cfg)
		n, err := New(context.Background(), cfg, m, nil)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			})
		}
		t.Cleanup(func() {
			stop()
			_ = n.Close()
		})
		out = append(out, node{m, n, stop})
	}
	return out
}

// newNodesOn starts count nodes on a redis-server of the test's own (one the test kills or
// restarts), with a fast heartbeat and a short Redis timeout.
func newNodesOn(t *testing.T, srv *redistest.Server, count int) []node {
	t.Helper()
	return newNodesWith(t, count, func(c *Config) {
		c.RedisURL, c.Heartbeat, c.Timeout = srv.URL, 50*time.Millisecond, time.Second
	})
}

// sink records the notifications a participant gets.
type sink struct {
	mu     sync.Mutex
	events []session.Event
}

func (s *sink) Notify(e session.Event) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

func (s *sink) has(kind session.EventKind, reason string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(s.events, func(e session.Event) bool { return e.Kind == kind && (reason == "" || e.Reason == reason) })
}

func kindOf(err error) session.Kind {
	var se *session.Error
	if errors.As(err, &se) {
		return se.Kind
	}
	return 0
}

func join(t *testing.T, on node, id session.SessionID, token string) (*session.Participant, *sink) {
	t.Helper()
	s := &sink{}
	p, _, err := on.n.Join(id, token, session.JoinInfo{Metadata: "{}", Platform: "test"}, s)
	if err != nil {
		t.Fatalf("join on %s: %v", on.n.ID(), err)
	}
	return p, s
}

// connections lists a session's connections as REST shows them.
func (r Room) connections(pending bool) ([]session.ConnectionInfo, error) {
	si, err := r.Info(pending)
	return si.Connections, err
}

func connIDs(cs []session.ConnectionInfo) []session.ConnectionID {
	var out []session.ConnectionID
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func TestSessionCreatedOnOneNodeIsSeenOnAnother(t *testing.T) {
	t.Parallel()
	nodes := newNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]

	si, err := a.n.CreateSession(session.Properties{CustomSessionID: "room-1", MediaMode: "ROUTED", RecordingMode: "MANUAL"})
	if err != nil {
		t.Fatalf("create on A: %v", err)
	}
	list := b.n.Sessions(false)
	if len(list) != 1 || list[0].ID != "room-1" || !list[0].CreatedAt.Equal(si.CreatedAt) || list[0].Props.RecordingMode != "MANUAL" {
		t.Fatalf("B lists %+v, want room-1 as created on A (%v)", list, si.CreatedAt)
	}
	got, err := b.n.Room("room-1").Info(true)
	if err != nil || got.ID != "room-1" || got.Props.CustomSessionID != "room-1" {
		t.Fatalf("B fetches %+v, %v", got, err)
	}
	if _, err := b.n.CreateSession(session.Properties{CustomSessionID: "room-1"}); kindOf(err) != session.KindConflict {
		t.Fatalf("B creating room-1 again: %v, want a conflict", err)
	}
	if _, err := b.n.Room("nope").Info(false); kindOf(err) != session.KindNotFound {
		t.Fatalf("B fetching an unknown session: %v, want not found", err)
	}

	// A connection made on B is listed on A, pending.
	ci, err := b.n.Room("room-1").CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher, Data: "srv"})
	if err != nil {
		t.Fatalf("connection on B: %v", err)
	}
	conns, err := a.n.Room("room-1").connections(true)
	if err != nil || !slices.Equal(connIDs(conns), []session.ConnectionID{ci.ID}) || conns[0].Active || conns[0].Token != ci.Token {
		t.Fatalf("A lists %+v, %v; want pending %s", conns, err, ci.ID)
	}
	if active, _ := a.n.Room("room-1").connections(false); len(active) != 0 {
		t.Fatalf("A lists active %+v, want none", active)
	}

	// Two sessions list oldest first on both nodes.
	if _, err := b.n.CreateSession(session.Properties{}); err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodes {
		l := nd.n.Sessions(false)
		if len(l) != 2 || l[0].ID != "room-1" || !strings.HasPrefix(string(l[1].ID), "ses_") {
			t.Fatalf("%s lists %v", nd.n.ID(), l)
		}
	}
}

func TestTokenMadeOnOneNodeJoinsOnAnotherOnce(t *testing.T) {
	t.Parallel()
	nodes := newNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	si, err := a.n.CreateSession(session.Properties{})
	if err != nil {
		t.Fatal(err)
	}
	ci, err := a.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RoleModerator, Data: "server-data"})
	if err != nil {
		t.Fatal(err)
	}

	s := &sink{}
	p, res, err := b.n.Join(si.ID, ci.Token, session.JoinInfo{Metadata: "client", Platform: "test"}, s)
	if err != nil {
		t.Fatalf("join on B with A's token: %v", err)
	}
	if p.ID() != ci.ID || res.Role != session.RoleModerator || res.Self.Metadata != "client%/%server-data" {
		t.Fatalf("joined as %s %+v; want %s, MODERATOR, both datas", p.ID(), res, ci.ID)
	}
	for _, nd := range nodes {
		if _, _, err := nd.n.Join(si.ID, ci.Token, session.JoinInfo{}, &sink{}); kindOf(err) != session.KindUnauthorized {
			t.Fatalf("second join on %s: %v, want unauthorized", nd.n.ID(), err)
		}
		if err != nil && strings.Contains(err.Error(), ci.Token) {
			t.Fatalf("error %q echoes the token", err)
		}
	}
	// A sees the participant as active, at once (the join writes it before it answers).
	got, err := a.n.Room(si.ID).Connection(ci.ID)
	if err != nil || !got.Active || got.Platform != "test" {
		t.Fatalf("A fetches %+v, %v; want active", got, err)
	}
	if l, _ := a.n.Room(si.ID).connections(false); !slices.Equal(connIDs(l), []session.ConnectionID{ci.ID}) {
		t.Fatalf("A lists active %v", connIDs(l))
	}
	if _, _, err := a.n.Join(si.ID, "ws://parley.test/openvidu?sessionId="+string(si.ID)+"&token=tok_Guessed", session.JoinInfo{}, &sink{}); kindOf(err) != session.KindUnauthorized {
		t.Fatalf("unknown token: %v", err)
	}
	if _, _, err := a.n.Join("no-such", ci.Token, session.JoinInfo{}, &sink{}); kindOf(err) != session.KindNotFound {
		t.Fatalf("unknown session: %v", err)
	}
}

// TestTokenIsSingleUseUnderRace joins with each token on two nodes at once: exactly one wins.
func TestTokenIsSingleUseUnderRace(t *testing.T) {
	t.Parallel()
	nodes := newNodes(t, 2, nil)
	si, err := nodes[0].n.CreateSession(session.Properties{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		ci, err := nodes[i%2].n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
		if err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for _, nd := range nodes {
			wg.Go(func() {
				if _, _, err := nd.n.Join(si.ID, ci.Token, session.JoinInfo{}, &sink{}); err == nil {
					wins.Add(1)
				} else if kindOf(err) != session.KindUnauthorized {
					t.Errorf("join: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("token %d joined %d times", i, wins.Load())
		}
	}
	if l, _ := nodes[1].n.Room(si.ID).connections(false); len(l) != 20 {
		t.Fatalf("%d participants listed, want 20", len(l))
	}
}

func TestCloseOnOneNodeEvictsEverywhere(t *testing.T) {
	t.Parallel()
	nodes := newNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	si, _ := a.n.CreateSession(session.Properties{CustomSessionID: "closing"})
	c1, _ := a.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	pending, _ := a.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	_, onA := join(t, a, si.ID, c1.Token)

	if err := b.n.Room(si.ID).Close(); err != nil {
		t.Fatalf("close on B: %v", err)
	}
	poll.Until(t, within, "the participant on A evicted with sessionClosedByServer", func() bool {
		return onA.has(session.ParticipantEvicted, session.ReasonSessionClosedByServer)
	})
	for _, nd := range nodes {
		if _, err := nd.n.Room(si.ID).Info(true); kindOf(err) != session.KindNotFound {
			t.Fatalf("%s still has the session: %v", nd.n.ID(), err)
		}
		if l := nd.n.Sessions(true); len(l) != 0 {
			t.Fatalf("%s lists %v", nd.n.ID(), l)
		}
	}
	if _, _, err := b.n.Join(si.ID, pending.Token, session.JoinInfo{}, &sink{}); err == nil {
		t.Fatal("a token of the closed session still joins")
	}
	if err := a.n.Room(si.ID).Close(); kindOf(err) != session.KindNotFound {
		t.Fatalf("closing again: %v, want not found", err)
	}
	// The id is free again, on either node.
	poll.Until(t, within, "A's copy of the session dropped", func() bool { return a.m.SessionCount() == 0 })
	if _, err := a.n.CreateSession(session.Properties{CustomSessionID: "closing"}); err != nil {
		t.Fatalf("re-creating the closed id: %v", err)
	}
}

func TestOperationsReachTheParticipantsNode(t *testing.T) {
	t.Parallel()
	nodes := newNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	si, _ := a.n.CreateSession(session.Properties{})
	c1, _ := a.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	c2, _ := a.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	_, onA := join(t, a, si.ID, c1.Token)
	_, onB := join(t, b, si.ID, c2.Token)

	t.Run("signal", func(t *testing.T) {
		if err := a.n.Room(si.ID).Signal(nil, "signal:chat", "hello"); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, within, "both participants got the REST signal", func() bool {
			return onA.has(session.SignalSent, "") && onB.has(session.SignalSent, "")
		})
		if err := a.n.Room(si.ID).Signal([]session.ConnectionID{"con_Nobody"}, "x", "y"); kindOf(err) != session.KindNotAcceptable {
			t.Fatalf("signal to a stranger: %v", err)
		}
	})
	t.Run("patch", func(t *testing.T) {
		mod := session.RoleModerator
		got, err := a.n.Room(si.ID).UpdateConnection(c2.ID, &mod, nil)
		if err != nil || got.Options.Role != session.RoleModerator {
			t.Fatalf("PATCH on A of B's participant: %+v, %v", got, err)
		}
		poll.Until(t, within, "B's participant a MODERATOR, as listed on A", func() bool {
			ci, err := a.n.Room(si.ID).Connection(c2.ID)
			return err == nil && ci.Options.Role == session.RoleModerator
		})
	})
	t.Run("forceDisconnect", func(t *testing.T) {
		if err := a.n.Room(si.ID).DeleteConnection(c2.ID); err != nil {
			t.Fatalf("DELETE on A of B's participant: %v", err)
		}
		poll.Until(t, within, "B's participant evicted with forceDisconnectByServer", func() bool {
			return onB.has(session.ParticipantEvicted, session.ReasonForceDisconnectByServer)
		})
		poll.Until(t, within, "B's participant gone from A's listing", func() bool {
			l, err := a.n.Room(si.ID).connections(true)
			return err == nil && slices.Equal(connIDs(l), []session.ConnectionID{c1.ID})
		})
		if err := b.n.Room(si.ID).DeleteConnection(c2.ID); kindOf(err) != session.KindNotFound {
			t.Fatalf("deleting it again: %v", err)
		}
	})
	t.Run("pending token deleted elsewhere", func(t *testing.T) {
		c3, _ := a.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
		if err := b.n.Room(si.ID).DeleteConnection(c3.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.n.Join(si.ID, c3.Token, session.JoinInfo{}, &sink{}); kindOf(err) != session.KindUnauthorized {
			t.Fatalf("join with a deleted token: %v", err)
		}
	})
}

func TestSessionEndsWithItsLastParticipantAnywhere(t *testing.T) {
	t.Parallel()
	nodes := newNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	si, _ := a.n.CreateSession(session.Properties{})
	c1, _ := a.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	c2, _ := a.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	p1, _ := join(t, a, si.ID, c1.Token)
	p2, _ := join(t, b, si.ID, c2.Token)

	p1.Leave()
	a.n.Flush(context.Background())
	l, err := b.n.Room(si.ID).connections(false)
	if err != nil || !slices.Equal(connIDs(l), []session.ConnectionID{c2.ID}) {
		t.Fatalf("after A's participant left, B lists %v, %v; want B's participant only", connIDs(l), err)
	}
	p2.Leave()
	b.n.Flush(context.Background())
	if _, err := a.n.Room(si.ID).Info(true); kindOf(err) != session.KindNotFound {
		t.Fatalf("the session outlived its last participant: %v", err)
	}
}

func TestNodeRegistryExpiresSilentNodes(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	nodes := newNodes(t, 2, clk)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()

	live, err := a.n.Nodes(ctx)
	if err != nil || len(live) != 2 || live[0].ID != "node-a" || live[1].ID != "node-b" || live[1].MediaAddrs[0] != "192.0.2.2:443" {
		t.Fatalf("nodes %+v, %v", live, err)
	}
	// B holds a participant when it falls silent.
	si, _ := a.n.CreateSession(session.Properties{})
	ci, _ := a.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	join(t, b, si.ID, ci.Token)

	// A beats on; B misses every beat of a TTL.
	clk.Advance(DefaultNodeTTL / 2)
	if err := a.n.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if live, _ := a.n.Nodes(ctx); len(live) != 2 {
		t.Fatalf("before B's TTL ran out: %+v", live)
	}
	clk.Advance(DefaultNodeTTL / 2)
	if err := a.n.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	live, err = a.n.Nodes(ctx)
	if err != nil || len(live) != 1 || live[0].ID != "node-a" {
		t.Fatalf("after B's TTL ran out: %+v, %v; want node-a only", live, err)
	}
	if l, err := a.n.Room(si.ID).connections(false); err != nil || len(l) != 0 {
		t.Fatalf("the silent node's participant is still listed: %v, %v", connIDs(l), err)
	}
	// B comes back with its next beat.
	if err := b.n.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if live, _ := a.n.Nodes(ctx); len(live) != 2 {
		t.Fatalf("after B beat again: %+v", live)
	}
}

func TestUnreachableRedisFailsClearly(t *testing.T) {
	t.Parallel()
	_, err := New(context.Background(), Config{RedisURL: "redis://:s3cret@127.0.0.1:1/0", NodeID: "x", Timeout: time.Second},
		session.NewManager(session.Options{}), nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("New = %v; want an error naming the address, not the password", err)
	}
	_, err = New(context.Background(), Config{RedisURL: "http://:s3cret@x", NodeID: "x"}, session.NewManager(session.Options{}), nil)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("New = %v; want an error without the password", err)
	}
}

func TestGarbageCollectsSessionsNobodyIsIn(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Now()}
	nodes := newNodes(t, 2, clk)
	a, b := nodes[0], nodes[1]
	idle, _ := a.n.CreateSession(session.Properties{CustomSessionID: "idle"})
	busy, _ := a.n.CreateSession(session.Properties{CustomSessionID: "busy"})
	ci, _ := a.n.Room(busy.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	join(t, b, busy.ID, ci.Token)
	b.n.cfg.GarbageThreshold = time.Hour

	if err := b.n.CollectGarbage(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l := a.n.Sessions(true); len(l) != 2 {
		t.Fatalf("sessions younger than the threshold were collected: %v", l)
	}
	clk.Advance(2 * time.Hour)
	if err := b.n.CollectGarbage(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l := a.n.Sessions(true); len(l) != 1 || l[0].ID != busy.ID {
		t.Fatalf("after the threshold A lists %v; want the session with a participant only", l)
	}
	if _, err := b.n.Room(idle.ID).Info(true); kindOf(err) != session.KindNotFound {
		t.Fatalf("the idle session: %v, want not found", err)
	}
	poll.Until(t, within, "A's copy of the idle session dropped", func() bool {
		_, err := a.m.Room(idle.ID).Info(true)
		return err != nil
	})
}

// TestRedisLostMidCall: participants already in keep their session; a new join gets a clear error
// instead of hanging, and listings fall back to this node's own sessions.
func TestRedisLostMidCall(t *testing.T) {
	t.Parallel()
	needRedis(t)
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	m := session.NewManager(session.Options{WebSocketURL: "ws://parley.test/openvidu"})
	n, err := New(context.Background(), Config{RedisURL: srv.URL, NodeID: "alone", Timeout: time.Second}, m, nil)
	if err != nil {
		srv.Stop()
		t.Fatal(err)
	}
	defer n.Close()
	si, _ := n.CreateSession(session.Properties{})
	c1, _ := n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	c2, _ := n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	p, _, err := n.Join(si.ID, c1.Token, session.JoinInfo{}, &sink{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()

	_, _, err = n.Join(si.ID, c2.Token, session.JoinInfo{}, &sink{})
	if kindOf(err) != session.KindInternal || !strings.Contains(err.Error(), "Redis") {
		t.Fatalf("join without Redis: %v; want an internal error naming Redis", err)
	}
	if l := n.Sessions(false); len(l) != 1 || len(l[0].Connections) != 1 || l[0].Connections[0].ID != p.ID() {
		t.Fatalf("listing without Redis: %+v; want this node's session and participant", l)
	}
	if err := p.Signal(nil, "chat", "still here"); err != nil {
		t.Fatalf("a participant in the call: %v", err)
	}
}

// crash ends a node as kill -9 would: its connections to Redis close, it leaves nothing behind on
// purpose, and its Run returns (its pub/sub channel closed).
func (nd node) crash() {
	_ = nd.n.sub.Close()
	_ = nd.n.rdb.Close()
}

// TestLostNodesParticipantsAreRestoredOrLeave: a node dies with two participants. One comes back
// through another node before the registry noticed (connect with its JSON-RPC session id) and is
// restored there with its id; the other never does: it leaves the listings at once, is reported
// gone once (nodeCrashed), and its session, with nobody else in it, ends when the restore window
// passes.
func TestLostNodesParticipantsAreRestoredOrLeave(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Now()}
	nodes := newNodes(t, 2, clk)
	a, b := nodes[0], nodes[1]
	kept, _ := a.n.CreateSession(session.Properties{CustomSessionID: "kept"})
	alone, _ := a.n.CreateSession(session.Properties{CustomSessionID: "alone"})
	mk := func(id session.SessionID) session.ConnectionInfo {
		ci, err := a.n.Room(id).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RoleModerator, Data: "server-data"})
		if err != nil {
			t.Fatal(err)
		}
		return ci
	}
	c1, c2, c3 := mk(kept.ID), mk(kept.ID), mk(alone.ID)
	if _, _, err := a.n.Join(kept.ID, c1.Token, session.JoinInfo{Metadata: `{"n":1}`, Platform: "p1", RPC: "rpc-1"}, &sink{}); err != nil {
		t.Fatal(err)
	}
	join(t, b, kept.ID, c2.Token)
	if _, _, err := a.n.Join(alone.ID, c3.Token, session.JoinInfo{RPC: "rpc-3"}, &sink{}); err != nil {
		t.Fatal(err)
	}
	a.n.Flush(context.Background())
	var mu sync.Mutex
	var reported []string
	b.n.Report(func(e session.Event) {
		mu.Lock()
		reported = append(reported, fmt.Sprint(e.Kind, " ", e.Session, " ", e.Reason))
		mu.Unlock()
	})
	if _, _, err := b.n.Restore("rpc-1", "192.0.2.9", &sink{}); err == nil {
		t.Fatal("restored a participant whose node is alive")
	}

	a.crash()
	back := &sink{}
	p, _, err := b.n.Restore("rpc-1", "192.0.2.9", back)
	if err != nil {
		t.Fatalf("restore on B: %v", err)
	}
	if p.ID() != c1.ID {
		t.Fatalf("restored as %s, want %s", p.ID(), c1.ID)
	}
	ci, err := b.n.Room(kept.ID).Connection(c1.ID)
	if err != nil || !ci.Active || ci.Options.Role != session.RoleModerator || ci.Options.Data != "server-data" || ci.ClientData != `{"n":1}` || ci.IP != "192.0.2.9" {
		t.Fatalf("the restored participant as REST shows it: %+v, %v", ci, err)
	}
	if _, _, err := b.n.Restore("rpc-1", "192.0.2.9", &sink{}); err == nil {
		t.Fatal("restored the same participant twice")
	}
	if _, _, err := b.n.Restore("rpc-unknown", "192.0.2.9", &sink{}); err == nil {
		t.Fatal("restored an unknown JSON-RPC session")
	}
	// No ghost: the participant that did not come back is not listed anywhere.
	if l, err := b.n.Room(alone.ID).connections(false); err != nil || len(l) != 0 {
		t.Fatalf("the lost participant is still listed: %v, %v", connIDs(l), err)
	}
	if l, _ := b.n.Room(kept.ID).connections(false); len(l) != 2 {
		t.Fatalf("kept lists %v; want the restored participant and B's own", connIDs(l))
	}
	if live, _ := b.n.Nodes(context.Background()); len(live) != 1 || live[0].ID != "node-b" {
		t.Fatalf("nodes after the loss: %+v", live)
	}

	clk.Advance(DefaultRestoreWindow + time.Second)
	if err := b.n.collectLost(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.n.Room(alone.ID).Info(true); kindOf(err) != session.KindNotFound {
		t.Fatalf("the session only the lost participant was in: %v; want ended", err)
	}
	if _, err := b.n.Room(kept.ID).Info(false); err != nil {
		t.Fatalf("the session with participants: %v", err)
	}
	mu.Lock()
	got := slices.Clone(reported)
	mu.Unlock()
	want := []string{
		"participantLeft kept nodeCrashed", "participantLeft alone nodeCrashed", "participantJoined kept ",
		"sessionDestroyed alone nodeCrashed",
	}
	for _, w := range want {
		if n := slices.Index(got, w); n < 0 || slices.Contains(got[n+1:], w) {
			t.Errorf("reported %q not exactly once in %v", w, got)
		}
	}
	if slices.Index(got, "participantLeft kept nodeCrashed") > slices.Index(got, "participantJoined kept ") {
		t.Errorf("the restored participant joined before its lost self left: %v", got)
	}
}

// TestRedisRestartedEmptyGetsTheStateBack: Redis dies mid-call and comes back without its data;
// calls go on meanwhile, a join is refused with an error naming Redis, and once it is back each
// node writes its sessions and participants again: both nodes list everyone, and joins work.
func TestRedisRestartedEmptyGetsTheStateBack(t *testing.T) {
	t.Parallel()
	srv := ownRedis(t)
	nodes := newNodesOn(t, srv, 2)
	a, b := nodes[0], nodes[1]
	si, _ := a.n.CreateSession(session.Properties{CustomSessionID: "outlives-redis"})
	c1, _ := a.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	c2, _ := a.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	c3, _ := a.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	p1, _ := join(t, a, si.ID, c1.Token)
	p2, _ := join(t, b, si.ID, c2.Token)

	srv.Kill()
	if _, _, err := b.n.Join(si.ID, c3.Token, session.JoinInfo{}, &sink{}); kindOf(err) != session.KindInternal || !strings.Contains(err.Error(), "Redis") {
		t.Fatalf("join without Redis: %v; want an internal error naming Redis", err)
	}
	if err := p1.Signal(nil, "chat", "still here"); err != nil {
		t.Fatalf("a participant in the call: %v", err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	want := []session.ConnectionID{p1.ID(), p2.ID()}
	slices.Sort(want)
	for _, on := range nodes {
		poll.Until(t, within, on.n.ID()+" lists both participants again", func() bool {
			l, err := on.n.Room(si.ID).connections(false)
			got := connIDs(l)
			slices.Sort(got)
			return err == nil && slices.Equal(got, want)
		})
	}
	// The session is there for new tokens, made and used on either node.
	c4, err := b.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	if err != nil {
		t.Fatalf("a connection after Redis came back: %v", err)
	}
	join(t, a, si.ID, c4.Token)
}

// TestSentinelURL: a PARLEY_REDIS_URL naming Sentinels and a master (go-redis's FailoverClient)
// reaches the master the Sentinel names: a session created through it is seen by a node connected
// to the master directly.
func TestSentinelURL(t *testing.T) {
	t.Parallel()
	needRedis(t)
	master, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(master.Stop)
	sentinel, err := redistest.StartSentinel(master)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sentinel.Stop)
	var nodes []*Node
	for i, u := range []string{sentinel.URL, master.URL} {
		n, err := New(context.Background(), Config{RedisURL: u, NodeID: fmt.Sprint("node-", i)}, session.NewManager(session.Options{}), nil)
		if err != nil {
			t.Fatalf("node through %s: %v", []string{"the sentinel", "the master"}[i], err)
		}
		t.Cleanup(func() { _ = n.Close() })
		nodes = append(nodes, n)
	}
	if _, err := nodes[0].CreateSession(session.Properties{CustomSessionID: "via-sentinel"}); err != nil {
		t.Fatal(err)
	}
	if si, err := nodes[1].Room("via-sentinel").Info(false); err != nil || si.ID != "via-sentinel" {
		t.Fatalf("the master has %+v, %v", si, err)
	}
	if _, err := New(context.Background(), Config{RedisURL: "redis://:s3cret@127.0.0.1:1/0?master_name=nobody", NodeID: "x", Timeout: time.Second},
		session.NewManager(session.Options{}), nil); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("an unreachable Sentinel: %v; want an error without the password", err)
	}
}

// TestDepartedNodeIsLostBeforeItsEntryExpires: a node killed (its connections to Redis closed) is
// forgotten by the others long before its registry entry would expire (here: never within the
// test), so its participant is reported gone (nodeCrashed) and leaves the listings; a registered
// node that has no subscription but keeps renewing its entry is never taken for gone.
func TestDepartedNodeIsLostBeforeItsEntryExpires(t *testing.T) {
	t.Parallel()
	nodes := newNodesWith(t, 2, func(c *Config) { c.Heartbeat, c.NodeTTL = 50*time.Millisecond, time.Hour })
	a, b := nodes[0], nodes[1]
	si, _ := b.n.CreateSession(session.Properties{CustomSessionID: "departed"})
	ci, err := b.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	if err != nil {
		t.Fatal(err)
	}
	join(t, a, si.ID, ci.Token)
	a.n.Flush(context.Background())
	// node-z: registered and renewing, never subscribed (its pub/sub connection not back yet).
	ctx, stop := context.WithCancel(context.Background())
	renewing := make(chan struct{})
	go func() {
		defer close(renewing)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			_ = b.n.rdb.ZAdd(ctx, b.n.keys.nodes(), zmember(float64(time.Now().Add(time.Hour).UnixMilli()), "node-z")).Err()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { stop(); <-renewing }()
	var mu sync.Mutex
	var left []string
	b.n.Report(func(e session.Event) {
		if e.Kind == session.ParticipantLeft {
			mu.Lock()
			left = append(left, fmt.Sprint(e.Connection, " ", e.Reason))
			mu.Unlock()
		}
	})

	a.crash()
	poll.Until(t, 10*time.Second, "node-b to forget node-a and report its participant gone", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(left) == 1
	})
	if want := fmt.Sprint(ci.ID, " ", session.ReasonNodeCrashed); left[0] != want {
		t.Fatalf("reported %q, want %q", left[0], want)
	}
	if l, err := b.n.Room(si.ID).connections(false); err != nil || len(l) != 0 {
		t.Fatalf("the lost participant is still listed: %v, %v", connIDs(l), err)
	}
	live, err := b.n.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ni := range live {
		ids = append(ids, ni.ID)
	}
	if !slices.Equal(ids, []string{"node-b", "node-z"}) {
		t.Fatalf("live nodes %v; want node-b and the renewing node-z", ids)
	}
}
