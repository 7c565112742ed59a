package session

import (
	"testing"
	"time"
)

// A session and a token made on another node are adopted silently and then joined like local ones.
func TestReplicaJoinsLikeALocalSession(t *testing.T) {
	t.Parallel()
	m, _ := newTestManager(t)
	var heard []EventKind
	m.Listen(func(e Event) { heard = append(heard, e.Kind) })
	created := time.Unix(1_600_000_000, 0)
	if err := m.AdoptSession(SessionInfo{ID: "remote", CreatedAt: created, Props: Properties{RecordingMode: "MANUAL"}}); err != nil {
		t.Fatal(err)
	}
	ci := ConnectionInfo{ID: "con_Remote1234", CreatedAt: created, Token: "ws://x/openvidu?sessionId=remote&token=tok_A",
		Options: ConnectionOptions{Type: "WEBRTC", Role: RoleSubscriber}}
	if err := m.AdoptConnection("remote", ci); err != nil {
		t.Fatal(err)
	}
	// A PATCH made elsewhere reaches the pending copy when it is adopted again.
	ci.Options.Role = RoleModerator
	if err := m.AdoptConnection("remote", ci); err != nil {
		t.Fatal(err)
	}
	if len(heard) != 0 {
		t.Fatalf("adopting emitted %v; the node that created them announced them", heard)
	}
	si, err := m.Room("remote").Info(true)
	if err != nil || !si.CreatedAt.Equal(created) || len(si.Connections) != 1 || si.Connections[0].ID != ci.ID {
		t.Fatalf("session %+v, %v", si, err)
	}
	p, res, err := m.Join("remote", ci.Token, JoinInfo{}, &recorder{})
	if err != nil || p.ID() != ci.ID || res.Role != RoleModerator {
		t.Fatalf("join: %v, %+v", err, res)
	}
	if m.DropReplica("remote") {
		t.Fatal("a session with a participant here was dropped")
	}
	if err := m.AdoptConnection("remote", ConnectionInfo{ID: "con_NoToken"}); err == nil {
		t.Fatal("a connection without a token was adopted")
	}
	if err := m.AdoptConnection("unknown", ci); err == nil {
		t.Fatal("a connection of an unknown session was adopted")
	}
	p.Leave()
	heard = nil
	if err := m.AdoptSession(SessionInfo{ID: "empty", CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	if !m.DropReplica("empty") || m.SessionCount() != 0 || len(heard) != 0 {
		t.Fatalf("drop: %d sessions left, events %v", m.SessionCount(), heard)
	}
}
