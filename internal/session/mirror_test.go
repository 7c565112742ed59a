package session

import (
	"slices"
	"testing"
	"time"
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

// A recorder here records the whole session: another node's participants count, their streams are
// listed with their node (the recorder pulls them) and their changes reach mirror listeners, with
// the node, while ordinary listeners (webhooks, call records) never hear of them.
func TestMirrorsReachARecorderHere(t *testing.T) {
	t.Parallel()
	m, _ := newTestManager(t)
	var heard, mirrored []Event
	m.Listen(func(e Event) { heard = append(heard, e) })
	m.ListenMirrors(func(e Event) { mirrored = append(mirrored, e) })
	if _, err := m.CreateSession(Properties{CustomSessionID: "span"}); err != nil {
		t.Fatal(err)
	}
	mustJoin(t, m, "span", ConnectionOptions{Role: RolePublisher, Record: true}, "alice")
	heard = nil

	sid := StreamID("str_CAM_Abcd_con_Remote0001")
	remote := ConnectionInfo{ID: "con_Remote0001", Active: true, Options: ConnectionOptions{Role: RolePublisher, Record: true},
		Publishers: []StreamInfo{{ID: sid, Media: MediaOptions{HasVideo: true, VideoActive: true}}}}
	if err := m.MirrorJoined("span", "node-b", remote); err != nil {
		t.Fatal(err)
	}
	tg, err := m.Room("span").RecordingTarget()
	if err != nil {
		t.Fatal(err)
	}
	if tg.Participants != 2 || !slices.ContainsFunc(tg.Streams, func(rs RecordableStream) bool {
		return rs.ID == sid && rs.Node == "node-b" && rs.Record && rs.Publisher == nil
	}) {
		t.Fatalf("recording target %+v", tg)
	}
	if rs, ok := m.Room("span").RecordableStream(sid); !ok || rs.Node != "node-b" {
		t.Fatalf("the mirror's stream: %+v %v", rs, ok)
	}
	// Pulling goes to the stream's node (a lone node's model has no way there).
	if _, err := m.Room("span").PullStream(t.Context(), sid); err == nil {
		t.Fatal("pulled a stream with no cluster")
	}
	if _, err := m.Room("span").PullStream(t.Context(), "str_CAM_Zzzz_con_Nobody"); kindOf(err) != KindNotFound {
		t.Fatalf("pulling a stream that is not another node's: %v", err)
	}

	m.MirrorUnpublished("span", remote.ID, sid, ReasonUnpublish)
	m.MirrorPublished("span", remote.ID, StreamInfo{ID: sid + "2"})
	m.MirrorLeft("span", remote.ID, ReasonDisconnect)
	var got []string
	for _, e := range mirrored {
		if e.Node != "node-b" {
			t.Fatalf("a mirror event without its node: %+v", e)
		}
		got = append(got, e.Kind.String()+" "+string(e.Stream))
	}
	want := []string{"participantPublished " + string(sid), "participantUnpublished " + string(sid),
		"participantPublished " + string(sid) + "2", "participantUnpublished " + string(sid) + "2", "participantLeft "}
	if !slices.Equal(got, want) {
		t.Fatalf("mirror listeners heard\n%q\nwant\n%q", got, want)
	}
	if len(heard) != 0 {
		t.Fatalf("listeners heard %d events of a mirror, first %v", len(heard), heard[0].Kind)
	}
}

// A recording another node runs shows here: participants are told recordingStarted and
// recordingStopped, REST and joiners see the session as recorded, listeners (webhooks) hear
// nothing, and it does not keep this node's copy of the session alive.
func TestAnotherNodesRecordingShowsHere(t *testing.T) {
	t.Parallel()
	m, _ := newTestManager(t)
	var heard []EventKind
	m.Listen(func(e Event) { heard = append(heard, e.Kind) })
	si, err := m.CreateSession(Properties{CustomSessionID: "span"})
	if err != nil {
		t.Fatal(err)
	}
	_, rec, _ := mustJoin(t, m, "span", ConnectionOptions{Role: RolePublisher}, "alice")
	heard = nil

	ri := RecordingInfo{ID: "span", Name: "meeting", Session: "span", SessionCreatedAt: si.CreatedAt, Status: RecordingStarted}
	old := ri
	old.SessionCreatedAt = si.CreatedAt.Add(-time.Hour) // an earlier session of the same id
	m.MirrorRecording(old)
	m.MirrorRecording(ri)
	m.MirrorRecording(ri) // told again: by the shared record a joiner read and by the message
	if got := rec.kinds(); !slices.Equal(got, []EventKind{RecordingStatusChanged}) {
		t.Fatalf("alice was told %v, want one recordingStarted", got)
	}
	if info, _ := m.Room("span").Info(false); !info.Recording {
		t.Fatal("REST does not show the session as recorded")
	}
	_, _, res := mustJoin(t, m, "span", ConnectionOptions{Role: RoleModerator}, "bob")
	if res.RecordingID != "span" || res.RecordingName != "meeting" {
		t.Fatalf("a joiner is told recording %q %q", res.RecordingID, res.RecordingName)
	}
	ri.Status = RecordingStopped
	m.MirrorRecording(ri)
	if got := rec.kinds(); len(got) != 3 || got[2] != RecordingStatusChanged || rec.events[2].Recording.Status != RecordingStopped {
		t.Fatalf("alice was then told %v", got)
	}
	if info, _ := m.Room("span").Info(false); info.Recording {
		t.Fatal("REST still shows the session as recorded")
	}
	for _, k := range heard {
		if k == RecordingStatusChanged {
			t.Fatal("listeners heard of another node's recording")
		}
	}

	// A start read before the stop but applied after it shows nothing.
	ri.Status = RecordingStarted
	m.MirrorRecording(ri)
	if info, _ := m.Room("span").Info(false); info.Recording || len(rec.kinds()) != 3 {
		t.Fatalf("a stopped recording's late start: recording=%v, alice told %v", info.Recording, rec.kinds())
	}

	// Recorded elsewhere, the session here still ends with its last own participant.
	ri.ID = "span-1"
	m.MirrorRecording(ri)
	if info, _ := m.Room("span").Info(false); !info.Recording {
		t.Fatal("the next recording is not shown")
	}
	info, _ := m.Room("span").Info(false)
	for _, c := range info.Connections { // alice and bob
		if err := m.Room("span").DeleteConnection(c.ID); err != nil {
			t.Fatal(err)
		}
	}
	if m.SessionCount() != 0 {
		t.Fatal("another node's recording kept the session alive here")
	}
}
