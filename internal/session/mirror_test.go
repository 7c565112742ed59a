package session

import (
	"slices"
	"testing"
)

// A participant of another node shows here as a mirror: listed to joiners, its changes told to this
// node's participants only (never to listeners, which its own node informs), and never counted as
// this node's own.
func TestMirrorIsSeenButNotOwned(t *testing.T) {
	t.Parallel()
	m, _ := newTestManager(t)
	var heard []EventKind
	m.Listen(func(e Event) { heard = append(heard, e.Kind) })
	if _, err := m.CreateSession(Properties{CustomSessionID: "span"}); err != nil {
		t.Fatal(err)
	}
	alice, rec, _ := mustJoin(t, m, "span", ConnectionOptions{Role: RolePublisher}, "alice")
	heard = nil

	remote := ConnectionInfo{ID: "con_Remote0001", Active: true, ClientData: "bob", Options: ConnectionOptions{Data: "srv", Role: RolePublisher},
		Publishers: []StreamInfo{{ID: "str_CAM_Abcd_con_Remote0001", Media: MediaOptions{HasVideo: true, VideoActive: true}}}}
	if err := m.MirrorJoined("span", "node-b", remote); err != nil {
		t.Fatal(err)
	}
	if err := m.MirrorJoined("nowhere", "node-b", remote); kindOf(err) != KindNotFound {
		t.Fatalf("a mirror of a session not held here: %v", err)
	}
	if got := rec.kinds(); !slices.Equal(got, []EventKind{ParticipantJoined, StreamPublished}) {
		t.Fatalf("alice was told %v", got)
	}
	if p := rec.events[0].Participant; p.Metadata != "bob%/%srv" {
		t.Fatalf("mirror metadata %q", p.Metadata)
	}

	// A joiner is shown the mirror and its stream; the mirror is not this node's.
	_, _, res := mustJoin(t, m, "span", ConnectionOptions{Role: RoleSubscriber}, "carol")
	if len(res.Existing) != 2 || res.Existing[1].ID != remote.ID || res.Existing[1].Stream == nil {
		t.Fatalf("carol is shown %+v", res.Existing)
	}
	si, _ := m.Room("span").Info(false)
	if len(si.Connections) != 2 || m.ParticipantCount() != 2 || m.Alive(string(remote.ID)) {
		t.Fatalf("the mirror counts as this node's: %d listed, %d participants", len(si.Connections), m.ParticipantCount())
	}
	if _, err := m.Room("span").Connection(remote.ID); kindOf(err) != KindNotFound {
		t.Fatalf("REST on the mirror: %v", err)
	}

	// Its signals reach the named participants here; its leaving is told and forgets it.
	m.MirrorSignal("span", Signal{Type: "signal:x", Data: "hi", From: remote.ID, To: []ConnectionID{alice.ID()}})
	m.MirrorLeft("span", remote.ID, ReasonForceDisconnectByUser)
	if got := rec.kinds()[2:]; !slices.Equal(got, []EventKind{ParticipantJoined, SignalSent, ParticipantLeft, ParticipantEvicted}) {
		t.Fatalf("alice was then told %v", got)
	}
	for _, k := range heard {
		if k != ParticipantJoined { // carol's own join
			t.Fatalf("listeners heard %v of a mirror", heard)
		}
	}

	// A session whose only other participants are mirrors ends when its last own one leaves.
	if err := m.MirrorJoined("span", "node-b", remote); err != nil {
		t.Fatal(err)
	}
	for _, c := range si.Connections {
		if err := m.Room("span").DeleteConnection(c.ID); err != nil {
			t.Fatal(err)
		}
	}
	if m.SessionCount() != 0 {
		t.Fatal("a mirror kept the session alive on this node")
	}
}
