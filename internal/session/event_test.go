package session

import (
	"sync"
	"testing"
	"time"
)

// TestEventsCarryRecordFields checks the fields webhooks and call records need: the session's
// creation on every event, the start of what ends, and what the participant told about itself.
func TestEventsCarryRecordFields(t *testing.T) {
	m, clk := newTestManager(t)
	var mu sync.Mutex
	var got []Event
	m.Listen(func(e Event) { mu.Lock(); got = append(got, e); mu.Unlock() })

	created := clk.t
	if _, err := m.CreateSession(Properties{CustomSessionID: "rec"}); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(2 * time.Second)
	joined := clk.t
	ci, _ := m.Room("rec").CreateConnection(ConnectionOptions{Role: RolePublisher, Data: "server-data"})
	c, _, err := m.Join("rec", ci.Token, JoinInfo{Metadata: "client-data", Platform: "Chrome", IP: "192.0.2.7"}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(3 * time.Second)
	c.Leave()

	mu.Lock()
	defer mu.Unlock()
	want := []EventKind{SessionCreated, ParticipantJoined, ParticipantLeft, SessionDestroyed}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	client := ClientInfo{IP: "192.0.2.7", Platform: "Chrome", ClientData: "client-data", ServerData: "server-data"}
	for i, e := range got {
		if e.Kind != want[i] {
			t.Fatalf("event %d is %v, want %v", i, e.Kind, want[i])
		}
		if !e.SessionCreatedAt.Equal(created) {
			t.Errorf("%v: SessionCreatedAt %v, want %v", e.Kind, e.SessionCreatedAt, created)
		}
	}
	checks := []struct {
		e             Event
		time, started time.Time
		client        bool
	}{
		{got[0], created, time.Time{}, false},
		{got[1], joined, time.Time{}, true},
		{got[2], clk.t, joined, true},
		{got[3], clk.t, created, false},
	}
	for _, ck := range checks {
		if !ck.e.Time.Equal(ck.time) || !ck.e.Started.Equal(ck.started) {
			t.Errorf("%v: time %v started %v, want %v and %v", ck.e.Kind, ck.e.Time, ck.e.Started, ck.time, ck.started)
		}
		if ck.client != (ck.e.Client != nil) || ck.client && *ck.e.Client != client {
			t.Errorf("%v: client %+v", ck.e.Kind, ck.e.Client)
		}
	}
}
