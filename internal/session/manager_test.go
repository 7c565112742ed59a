package session

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/config"
)

// recorder is a Sink that keeps what it was told.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Notify(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) kinds() []EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []EventKind
	for _, e := range r.events {
		out = append(out, e.Kind)
	}
	return out
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestManager(t *testing.T) (*Manager, *clock) {
	t.Helper()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	m := NewManager(Options{WebSocketURL: "ws://localhost:4443/openvidu", Now: c.now,
		Config: config.SessionConfig{GarbageInterval: time.Minute, GarbageThreshold: time.Hour}})
	return m, c
}

func mustJoin(t *testing.T, m *Manager, sid SessionID, o ConnectionOptions, metadata string) (*Participant, *recorder, JoinResult) {
	t.Helper()
	ci, err := m.Room(sid).CreateConnection(o)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	c, res, err := m.Join(sid, ci.Token, JoinInfo{Metadata: metadata}, rec)
	if err != nil {
		t.Fatal(err)
	}
	return c, rec, res
}

func kindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

func TestTokensAreSingleUse(t *testing.T) {
	m, _ := newTestManager(t)
	if _, err := m.CreateSession(Properties{CustomSessionID: "s"}); err != nil {
		t.Fatal(err)
	}
	ci, _ := m.Room("s").CreateConnection(ConnectionOptions{Role: RolePublisher})
	if _, _, err := m.Join("s", ci.Token, JoinInfo{}, &recorder{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Join("s", ci.Token, JoinInfo{}, &recorder{}); kindOf(err) != KindUnauthorized {
		t.Fatalf("second use of a token: want unauthorized, got %v", err)
	}
	if _, _, err := m.Join("other", ci.Token, JoinInfo{}, &recorder{}); kindOf(err) != KindNotFound {
		t.Fatalf("token on another session: want not found, got %v", err)
	}
}

func TestMetadataJoinRule(t *testing.T) {
	m, _ := newTestManager(t)
	_, _ = m.CreateSession(Properties{CustomSessionID: "s"})
	cases := []struct{ name, client, server, want string }{
		{"client only", `{"clientData":"a"}`, "", `{"clientData":"a"}`},
		{"server only", "", "srv", "srv"},
		{"both", "cli", "srv", "cli%/%srv"},
		{"neither", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, res := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher, Data: tc.server}, tc.client)
			if res.Self.Metadata != tc.want {
				t.Fatalf("metadata %q, want %q", res.Self.Metadata, tc.want)
			}
		})
	}
}

func TestLastParticipantLeavingDestroysSession(t *testing.T) {
	m, _ := newTestManager(t)
	var heard []EventKind
	m.Listen(func(e Event) { heard = append(heard, e.Kind) })
	_, _ = m.CreateSession(Properties{CustomSessionID: "s"})
	a, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
	b, recB, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
	pending, _ := m.Room("s").CreateConnection(ConnectionOptions{Role: RolePublisher})
	a.Leave()
	if got := recB.kinds(); !slices.Equal(got, []EventKind{ParticipantLeft}) {
		t.Fatalf("b heard %v, want [participantLeft]", got)
	}
	b.Leave()
	if _, err := m.Room("s").Info(true); kindOf(err) != KindNotFound {
		t.Fatalf("session after the last participant left: %v", err)
	}
	if _, _, err := m.Join("s", pending.Token, JoinInfo{}, &recorder{}); err == nil {
		t.Fatal("a pending token must die with its session")
	}
	if heard[len(heard)-1] != SessionDestroyed {
		t.Fatalf("listener heard %v, want sessionDestroyed last", heard)
	}
}

func TestSignals(t *testing.T) {
	m, _ := newTestManager(t)
	_, _ = m.CreateSession(Properties{CustomSessionID: "s"})
	a, recA, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
	b, recB, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
	recA.events, recB.events = nil, nil
	if err := a.Signal(nil, "signal:chat", "hi"); err != nil {
		t.Fatal(err)
	}
	if len(recA.events) != 1 || len(recB.events) != 1 || recB.events[0].Signal.From != a.ID() {
		t.Fatalf("broadcast must reach everyone, sender included: a=%v b=%v", recA.events, recB.events)
	}
	if err := a.Signal([]ConnectionID{b.ID(), "con_nobody"}, "signal", "x"); kindOf(err) != KindNotAcceptable {
		t.Fatalf("unknown recipient: want not acceptable, got %v", err)
	}
	if len(recB.events) != 1 {
		t.Fatal("a signal with an unknown recipient must reach nobody")
	}
	if err := a.Signal(nil, "signal:chat", strings.Repeat("x", MaxSignalData)); err != nil {
		t.Fatalf("a signal of the largest size: %v", err)
	}
	for name, sig := range map[string][2]string{
		"data": {"signal:chat", strings.Repeat("x", MaxSignalData+1)},
		"type": {"signal:" + strings.Repeat("t", MaxSignalType), "x"},
	} {
		err := a.Signal(nil, sig[0], sig[1])
		var se *Error
		if !errors.As(err, &se) || se.Kind != KindInvalid || se.Code != CodeSignalFormat {
			t.Errorf("a signal whose %s is too long: %v, want invalid with code %d", name, err, CodeSignalFormat)
		}
		if err = m.Room("s").Signal(nil, sig[0], sig[1]); kindOf(err) != KindInvalid {
			t.Errorf("a REST signal whose %s is too long: %v, want invalid", name, err)
		}
	}
	if len(recB.events) != 2 {
		t.Errorf("b heard %d signals, want 2: one too long reached it", len(recB.events))
	}
}

func TestForcedRemovalNotifiesEvictedToo(t *testing.T) {
	m, _ := newTestManager(t)
	_, _ = m.CreateSession(Properties{CustomSessionID: "s"})
	mod, recMod, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RoleModerator}, "")
	pub, recPub, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
	_, _, _ = mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
	if err := pub.ForceDisconnect(mod.ID()); kindOf(err) != KindUnauthorized {
		t.Fatalf("publisher forcing: want unauthorized, got %v", err)
	}
	recMod.events = nil
	if err := mod.ForceDisconnect(pub.ID()); err != nil {
		t.Fatal(err)
	}
	if got := recMod.kinds(); !slices.Equal(got, []EventKind{ParticipantLeft, ParticipantEvicted}) {
		t.Fatalf("moderator heard %v", got)
	}
	if got := recPub.kinds(); got[len(got)-1] != ParticipantEvicted {
		t.Fatalf("evicted participant heard %v, want participantEvicted last", got)
	}
}

func TestGarbageCollection(t *testing.T) {
	m, clk := newTestManager(t)
	_, _ = m.CreateSession(Properties{CustomSessionID: "idle"})
	_, _ = m.CreateSession(Properties{CustomSessionID: "busy"})
	_, _, _ = mustJoin(t, m, "busy", ConnectionOptions{Role: RolePublisher}, "")
	clk.t = clk.t.Add(59 * time.Minute)
	m.CollectGarbage()
	if _, err := m.Room("idle").Info(false); err != nil {
		t.Fatal("collected before the threshold")
	}
	clk.t = clk.t.Add(2 * time.Minute)
	m.CollectGarbage()
	if _, err := m.Room("idle").Info(false); kindOf(err) != KindNotFound {
		t.Fatal("an idle session past the threshold must be collected")
	}
	if _, err := m.Room("busy").Info(false); err != nil {
		t.Fatal("a session with participants must never be collected")
	}
}

func TestStreamIDOwner(t *testing.T) {
	id := newStreamID("SCREEN", true, "con_Abc123XYZ0")
	if id.Owner() != "con_Abc123XYZ0" || id[:8] != "str_SCR_" {
		t.Fatalf("stream id %q", id)
	}
	if newStreamID("", false, "con_X").Owner() != "con_X" {
		t.Fatal("audio-only stream owner")
	}
}

// TestMediaPathFollowsICE: connectionPath is what ICE selected last, not only what it had at
// "connected" (Chromium moves from a TURN relay to ICE-TCP after connecting), and the move is logged.
func TestMediaPathFollowsICE(t *testing.T) {
	var logs bytes.Buffer
	m, _ := newTestManager(t)
	m.opts.DescribePath = func(p MediaPath) MediaPath { p.ViaTURN = p.RemoteType == "relay"; return p }
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := m.CreateSession(Properties{CustomSessionID: "paths"}); err != nil {
		t.Fatal(err)
	}
	p, _, _ := mustJoin(t, m, "paths", ConnectionOptions{Role: RolePublisher}, "")
	c := p.c
	sid := newStreamID("CAMERA", true, c.id)
	m.mu.Lock()
	c.stream = &stream{id: sid}
	m.mu.Unlock()
	relay := MediaPath{Protocol: "udp", LocalType: "host", RemoteType: "relay", Local: "203.0.113.1:443", Remote: "203.0.113.1:50000"}
	tcp := MediaPath{Protocol: "tcp", LocalType: "host", RemoteType: "prflx", Local: "203.0.113.1:443", Remote: "198.51.100.7:61000"}

	path := func() MediaPath {
		ci, err := m.Room("paths").Connection(c.id)
		if err != nil || len(ci.Publishers) != 1 {
			t.Fatalf("connection %+v, %v", ci, err)
		}
		return ci.Publishers[0].Path
	}
	m.mediaPath(c, sid, "", relay, log) // selected before DTLS is up
	m.mediaConnected(c, sid, "", relay, log)
	if p := path(); !p.ViaTURN || p.RemoteType != "relay" {
		t.Fatalf("at connection: %+v", p)
	}
	m.mediaPath(c, sid, "", relay, log) // the same pair again: nothing to say
	m.mediaPath(c, sid, "", tcp, log)
	if p := path(); p.Protocol != "tcp" || p.ViaTURN {
		t.Fatalf("after the move: %+v", p)
	}
	out := logs.String()
	if strings.Count(out, "media connected") != 1 || strings.Count(out, "media path changed") != 1 ||
		!strings.Contains(out, `path="tcp host→prflx 198.51.100.7:61000" was="udp host→relay 203.0.113.1:50000 (via embedded TURN)"`) {
		t.Fatalf("log:\n%s", out)
	}
}
