package signaling

import (
	"strings"
	"testing"

	"github.com/parley/parley/internal/session"
)

// TestJoinRoomGolden pins joinRoom's result on the wire (protocol note §3.2) for the shapes it takes.
func TestJoinRoomGolden(t *testing.T) {
	t.Parallel()
	video := session.StreamInfo{ID: "str_CAM_Abcd_con_Bob", CreatedAt: fakeEpoch,
		Media: session.MediaOptions{HasAudio: true, HasVideo: true, AudioActive: true, VideoActive: false, TypeOfVideo: "CAMERA", FrameRate: 30, VideoDimensions: `{"width":640,"height":480}`}}
	audio := session.StreamInfo{ID: "str_MIC_Efgh_con_Carol", CreatedAt: fakeEpoch,
		Media: session.MediaOptions{HasAudio: true, AudioActive: true, FrameRate: -1}}
	cases := []struct {
		name string
		res  session.JoinResult
		ice  []session.IceServer // what Config.IceServers returns
	}{
		{name: "joinroom_alone", res: session.JoinResult{Role: session.RolePublisher},
			ice: []session.IceServer{{URL: "stun:203.0.113.1:3478"}}},
		{name: "joinroom_others", res: session.JoinResult{Role: session.RoleModerator, Record: true, Existing: []session.ParticipantInfo{
			{ID: "con_Bob", CreatedAt: fakeEpoch, Metadata: `{"clientData":"bob"}%/%server`, Stream: &video},
			{ID: "con_Carol", CreatedAt: fakeEpoch, Stream: &audio},
			{ID: "con_Dave", CreatedAt: fakeEpoch, Metadata: "dave"},
		}}, ice: []session.IceServer{{URL: "stun:203.0.113.1:3478"}}},
		{name: "joinroom_recording", res: session.JoinResult{Role: session.RoleSubscriber, RecordingID: "ses_A", RecordingName: "ses_A"},
			ice: []session.IceServer{{URL: "stun:203.0.113.1:3478"}}},
		{name: "joinroom_turn", res: session.JoinResult{Role: session.RolePublisher}, ice: []session.IceServer{
			{URL: "stun:203.0.113.1:443"},
			{URL: "turn:203.0.113.1:443?transport=tcp", Username: "1700000000:con_X", Credential: "c2VjcmV0"},
			{URL: "turns:parley.example.com:443?transport=tcp", Username: "1700000000:con_X", Credential: "c2VjcmV0"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, Config{IceServers: func(session.ConnectionID, []session.IceServer) []session.IceServer { return tc.ice }})
			s.m.res = tc.res
			c := dialTest(t, s.url)
			c.send(`{"id":1,"jsonrpc":"2.0","method":"joinRoom","params":{"token":"tok","session":"ses_A","metadata":"{\"clientData\":\"alice\"}"}}`)
			frame := c.nextNote() // the response: its id is not one call() is waiting for
			rpcID := s.h.onlyRPC(t)
			// The JSON-RPC session id is random: name it.
			wire := strings.ReplaceAll(string(frame), rpcID, "RPCSESSIONID")
			wire = strings.ReplaceAll(wire, strings.ToUpper(rpcID[:16]), "FINALUSERID")
			golden(t, tc.name, []byte(wire))
		})
	}
}

// onlyRPC returns the id of the handler's one JSON-RPC session.
func (h *Handler) onlyRPC(t *testing.T) string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.rpcs) != 1 {
		t.Fatalf("%d JSON-RPC sessions, want 1", len(h.rpcs))
	}
	for id := range h.rpcs {
		return id
	}
	return ""
}

// TestNotificationsGolden pins every notification a participant receives (protocol note §4), as it
// arrives on the socket.
func TestNotificationsGolden(t *testing.T) {
	t.Parallel()
	stream := session.StreamInfo{ID: "str_SCR_Abcd_con_Bob", CreatedAt: fakeEpoch,
		Media: session.MediaOptions{HasAudio: false, HasVideo: true, AudioActive: false, VideoActive: true, TypeOfVideo: "SCREEN", FrameRate: -1, VideoDimensions: `{"width":1920,"height":1080}`}}
	bob := session.ParticipantInfo{ID: "con_Bob", CreatedAt: fakeEpoch, Metadata: `{"clientData":"bob"}`}
	events := []struct {
		name string
		e    session.Event
	}{
		{"participantJoined", session.Event{Kind: session.ParticipantJoined, Connection: "con_Bob", Participant: &bob}},
		{"participantPublished", session.Event{Kind: session.StreamPublished, Connection: "con_Bob", Stream: stream.ID, StreamInfo: &stream}},
		{"participantUnpublished", session.Event{Kind: session.StreamUnpublished, Connection: "con_Bob", Reason: "unpublish"}},
		{"participantLeft", session.Event{Kind: session.ParticipantLeft, Connection: "con_Bob", Reason: "disconnect"}},
		{"participantEvicted", session.Event{Kind: session.ParticipantEvicted, Connection: "con_Bob", Reason: "forceDisconnectByUser"}},
		{"streamPropertyChanged", session.Event{Kind: session.StreamPropertyChanged, Connection: "con_Bob", Stream: stream.ID,
			Property: &session.PropertyChange{Property: "videoDimensions", NewValue: `"{\"width\":800,\"height\":600}"`, Reason: "screenResized"}}},
		{"recordingStarted", session.Event{Kind: session.RecordingStatusChanged, Recording: &session.RecordingInfo{ID: "ses_A", Name: "meeting", Status: session.RecordingStarted}}},
		{"recordingStopped", session.Event{Kind: session.RecordingStatusChanged, Recording: &session.RecordingInfo{ID: "ses_A", Name: "meeting", Status: session.RecordingStopped, Reason: "sessionClosedByServer"}}},
		{"sendMessage", session.Event{Kind: session.SignalSent, Connection: "con_Bob", Signal: &session.Signal{Type: "signal:chat", Data: "hi", From: "con_Bob", To: []session.ConnectionID{"con_Fake000001"}}}},
		{"sendMessage_rest", session.Event{Kind: session.SignalSent, Signal: &session.Signal{Type: "signal", Data: `{"x":1}`}}},
	}
	s := newTestServer(t, Config{})
	c, _ := s.joined(t)
	// Events participants are not told about produce nothing: the next frame must be the first
	// notification below.
	for _, k := range []session.EventKind{session.SessionCreated, session.SessionDestroyed, session.WebRTCConnectionCreated, session.WebRTCConnectionDestroyed} {
		s.m.notify("con_Fake000001", session.Event{Kind: k, Connection: "con_Bob"})
	}
	for _, ev := range events {
		s.m.notify("con_Fake000001", ev.e)
		golden(t, "notification_"+ev.name, c.nextNote())
	}
}

// TestNotificationEncodedOnce: an event for many participants is marshalled once, not once per
// recipient under the model's lock.
func TestNotificationEncodedOnce(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{})
	var clients []*testClient
	for range 3 {
		c, _ := s.joined(t)
		clients = append(clients, c)
	}
	bob := session.ParticipantInfo{ID: "con_Bob", CreatedAt: fakeEpoch, Metadata: "bob"}
	e := session.Event{Kind: session.ParticipantJoined, Connection: "con_Bob", Participant: &bob}
	for _, id := range []session.ConnectionID{"con_Fake000001", "con_Fake000002", "con_Fake000003"} {
		s.m.notify(id, e)
	}
	for _, c := range clients {
		if n := string(c.nextNote()); !strings.Contains(n, `"participantJoined"`) {
			t.Fatalf("got %s", n)
		}
	}
	s.h.notes.mu.Lock()
	defer s.h.notes.mu.Unlock()
	if s.h.notes.encodes != 1 {
		t.Fatalf("%d encodings for one event to three participants, want 1", s.h.notes.encodes)
	}
}
