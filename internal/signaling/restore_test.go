package signaling

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/parley/parley/internal/session"
)

// TestRestoredParticipantIsOfferedItsStreamsAgain: a participant of a lost node whose `connect`
// reaches this node is restored and offered each stream it was subscribed to there that is still
// published (forciblyReconnectSubscriber, as the SDK expects it), so its subscriptions come back
// without waiting for its SDK to notice its old ones died. The offers come before `connect`'s
// answer, so the SDK takes them before it could start reconnections of its own. Its answer in
// reconnectStream's sdpString completes the subscription.
func TestRestoredParticipantIsOfferedItsStreamsAgain(t *testing.T) {
	t.Parallel()
	s := newTestServerOf(t, Config{}, nil, func(m *fakeModel) Model { return restoringModel{m} })
	alive, other, gone := session.StreamID("str_CAM_Abcd_con_Alice"), session.StreamID("str_CAM_Efgh_con_Carol"), session.StreamID("str_CAM_Ijkl_con_Dave")
	s.m.mu.Lock()
	s.m.restorable = map[string][]session.StreamID{"rpc-lost": {alive, gone, other}}
	s.m.unpublished = map[session.StreamID]bool{gone: true}
	s.m.mu.Unlock()

	c := dialTest(t, s.url)
	// Sent raw, so the answer queues with the notifications and their order shows.
	c.send(`{"id":1,"jsonrpc":"2.0","method":"connect","params":{"sessionId":"rpc-lost","reconnect":true}}`)
	first := c.nextNote()
	golden(t, "notification_forciblyReconnectSubscriber", first)
	offered := []session.StreamID{}
	for _, frame := range [][]byte{first, c.nextNote()} {
		var n struct {
			Method string `json:"method"`
			Params struct {
				ConnectionID string `json:"connectionId"`
				StreamID     string `json:"streamId"`
				SDPOffer     string `json:"sdpOffer"`
			} `json:"params"`
		}
		if err := json.Unmarshal(frame, &n); err != nil || n.Method != "forciblyReconnectSubscriber" {
			t.Fatalf("want forciblyReconnectSubscriber before connect's answer, got %s", frame)
		}
		sid := session.StreamID(n.Params.StreamID)
		if n.Params.ConnectionID != string(sid.Owner()) || n.Params.SDPOffer != "offer for "+string(sid) {
			t.Fatalf("offer of %s: %s", sid, frame)
		}
		offered = append(offered, sid)
	}
	if want := []session.StreamID{alive, other}; !slices.Equal(offered, want) {
		t.Fatalf("offered %v, want %v (the unpublished stream skipped)", offered, want)
	}
	var reply struct {
		ID     int `json:"id"`
		Result struct {
			Value     string `json:"value"`
			SessionID string `json:"sessionId"`
		} `json:"result"`
	}
	if frame := c.nextNote(); json.Unmarshal(frame, &reply) != nil || reply.ID != 1 || reply.Result.Value != "reconnection successful" || reply.Result.SessionID != "rpc-lost" {
		t.Fatalf("want connect's answer after the offers, got %s", frame)
	}

	// The SDK's answer to a forced reconnection.
	c.result("reconnectStream", map[string]any{"stream": alive, "sdpString": "answer", "forciblyReconnect": true})
	calls := s.m.takeCalls()
	// The offers are made in parallel: their order is not the wire's.
	slices.Sort(calls[1:4])
	want := []string{
		"Restore rpc-lost ip=127.0.0.1",
		fmt.Sprintf("PrepareSubscribe %s", alive), fmt.Sprintf("PrepareSubscribe %s", other), fmt.Sprintf("PrepareSubscribe %s", gone),
		fmt.Sprintf("AnswerSubscribe %s answer=%q", alive, "answer"),
	}
	if !slices.Equal(calls, want) {
		t.Fatalf("model calls:\n%q\nwant\n%q", calls, want)
	}
}
