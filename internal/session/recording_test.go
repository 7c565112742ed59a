package session

import (
	"testing"
	"time"
)

// TestRecordedSessionOutlivesItsParticipants: while a recorder holds a session, its last
// participant leaving does not destroy it and garbage collection leaves it alone; once the
// recording stopped, CloseIfEmpty does.
func TestRecordedSessionOutlivesItsParticipants(t *testing.T) {
	m, clk := newTestManager(t)
	var destroyed []string
	m.Listen(func(e Event) {
		if e.Kind == SessionDestroyed {
			destroyed = append(destroyed, e.Reason)
		}
	})
	si, err := m.CreateSession(Properties{CustomSessionID: "rec"})
	if err != nil {
		t.Fatal(err)
	}
	_, aliceSink, _ := mustJoin(t, m, "rec", ConnectionOptions{Role: RolePublisher, Record: true}, "")
	_, subSink, _ := mustJoin(t, m, "rec", ConnectionOptions{Role: RoleSubscriber, Record: true}, "")
	r := RecordingInfo{ID: "rec", Name: "n", Session: "rec", SessionCreatedAt: si.CreatedAt, CreatedAt: clk.now(), Status: RecordingStarted}
	if err := m.RecordingStatus(r); err != nil {
		t.Fatal(err)
	}
	other := r
	other.ID = "rec~1"
	if err := m.RecordingStatus(other); err == nil {
		t.Fatal("a second recording of the same session was accepted")
	}
	if k := aliceSink.kinds(); len(k) == 0 || k[len(k)-1] != RecordingStatusChanged {
		t.Fatalf("publisher not told: %v", k)
	}
	for _, k := range subSink.kinds() {
		if k == RecordingStatusChanged {
			t.Fatal("subscriber told under publisher_moderator")
		}
	}
	if got, _ := m.Room("rec").Info(false); !got.Recording {
		t.Fatal("session not shown as recording")
	}
	for _, c := range m.activeConnsOf("rec") {
		m.evict(c, "disconnect")
	}
	clk.t = clk.t.Add(2 * time.Hour)
	m.CollectGarbage()
	m.Room("rec").CloseIfEmpty("automaticStop") // still recording: kept
	if _, err := m.Room("rec").Info(false); err != nil || len(destroyed) != 0 {
		t.Fatalf("recorded session gone after its participants: %v %v", err, destroyed)
	}
	r.Status = RecordingStopped
	if err := m.RecordingStatus(r); err != nil {
		t.Fatal(err)
	}
	m.Room("rec").CloseIfEmpty("automaticStop")
	if _, err := m.Room("rec").Info(false); err == nil || len(destroyed) != 1 || destroyed[0] != "automaticStop" {
		t.Fatalf("after the stop: %v, destroyed %v", err, destroyed)
	}
	// The late ready status still reaches listeners, for webhooks.
	r.Status = RecordingReady
	if err := m.RecordingStatus(r); err != nil {
		t.Fatalf("status of a recording whose session is gone: %v", err)
	}
}

// activeConnsOf lists a session's participants (test helper).
func (m *Manager) activeConnsOf(id SessionID) []*Connection {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.activeConns(m.sessions[id], nil)
}
