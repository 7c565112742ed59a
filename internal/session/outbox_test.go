package session

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/poll"
)

// lockProbe is a Sink that records whether the model's lock was free each time it was told
// something: a sink or listener running under the lock would stall every REST call and TURN
// liveness check behind it, and deadlock the moment it called back into the model.
type lockProbe struct {
	m      *Manager
	mu     sync.Mutex
	locked []EventKind
	calls  int
}

func (p *lockProbe) Notify(e Event) {
	free := p.m.mu.TryLock()
	if free {
		p.m.mu.Unlock()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if !free {
		p.locked = append(p.locked, e.Kind)
	}
}

func TestEventsAreDeliveredWithoutTheLock(t *testing.T) {
	m, _ := newTestManager(t)
	sinkProbe, listenProbe := &lockProbe{m: m}, &lockProbe{m: m}
	m.Listen(listenProbe.Notify)
	if _, err := m.CreateSession(Properties{CustomSessionID: "s"}); err != nil {
		t.Fatal(err)
	}
	ci, _ := m.Room("s").CreateConnection(ConnectionOptions{Role: RoleModerator})
	a, _, err := m.Join("s", ci.Token, JoinInfo{}, sinkProbe)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")
	if err := b.Signal(nil, "chat", "hi"); err != nil {
		t.Fatal(err)
	}
	if err := a.ForceDisconnect(b.ID()); err != nil {
		t.Fatal(err)
	}
	if err := m.Room("s").Close(); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*lockProbe{"sink": sinkProbe, "listener": listenProbe} {
		if p.calls == 0 {
			t.Errorf("%s was told nothing", name)
		}
		if len(p.locked) > 0 {
			t.Errorf("%s ran with the model's lock held for %v", name, p.locked)
		}
	}
}

// TestListenerMayCallBack: a listener that calls into the model (here: a recorder-like listener
// that opens a companion session when one is created) neither deadlocks nor reorders events.
func TestListenerMayCallBack(t *testing.T) {
	m, _ := newTestManager(t)
	var got []SessionID
	m.Listen(func(e Event) {
		if e.Kind != SessionCreated {
			return
		}
		got = append(got, e.Session)
		if e.Session == "a" {
			if _, err := m.CreateSession(Properties{CustomSessionID: "b"}); err != nil {
				t.Error(err)
			}
			if len(m.Sessions(false)) != 2 {
				t.Error("the listener's own change is not visible to it")
			}
		}
	})
	if _, err := m.CreateSession(Properties{CustomSessionID: "a"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []SessionID{"a", "b"}) {
		t.Fatalf("sessionCreated for %v, want [a b]", got)
	}
}

// TestEventOrderAcrossCallers: while one caller is still delivering a participant's join, another
// evicts it. Everyone must hear the join before the leave; delivering each caller's events itself
// after unlocking would let the eviction overtake the join.
func TestEventOrderAcrossCallers(t *testing.T) {
	m, _ := newTestManager(t)
	if _, err := m.CreateSession(Properties{CustomSessionID: "s"}); err != nil {
		t.Fatal(err)
	}
	_, other, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")

	delivering, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var heard []EventKind
	m.Listen(func(e Event) {
		mu.Lock()
		heard = append(heard, e.Kind)
		mu.Unlock()
		if e.Kind == ParticipantJoined {
			close(delivering)
			<-release // a slow listener, still busy with the join
		}
	})
	ci, _ := m.Room("s").CreateConnection(ConnectionOptions{Role: RolePublisher})
	joined := make(chan *Participant)
	go func() {
		p, _, err := m.Join("s", ci.Token, JoinInfo{}, &recorder{})
		if err != nil {
			t.Error(err)
		}
		joined <- p
	}()
	<-delivering
	// The join is committed; its delivery is stuck in the listener. This returns without waiting for
	// it: its events queue behind the join's.
	if err := m.Room("s").DeleteConnection(ci.ID); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-joined

	mu.Lock()
	defer mu.Unlock()
	if want := []EventKind{ParticipantJoined, ParticipantLeft}; !slices.Equal(heard, want) {
		t.Errorf("listener heard %v, want %v", heard, want)
	}
	if want := []EventKind{ParticipantJoined, ParticipantLeft, ParticipantEvicted}; !slices.Equal(other.kinds(), want) {
		t.Errorf("the other participant heard %v, want %v", other.kinds(), want)
	}
}

// TestShutdownWaitsForDelivery: the server flushes participants' sockets right after Shutdown, so
// Shutdown must not return while another caller is still delivering its evictions.
func TestShutdownWaitsForDelivery(t *testing.T) {
	m, _ := newTestManager(t)
	if _, err := m.CreateSession(Properties{CustomSessionID: "s"}); err != nil {
		t.Fatal(err)
	}
	_, other, _ := mustJoin(t, m, "s", ConnectionOptions{Role: RolePublisher}, "")

	delivering, release := make(chan struct{}), make(chan struct{})
	m.Listen(func(e Event) {
		if e.Kind == ParticipantJoined {
			close(delivering)
			<-release // a slow listener, still busy with the join
		}
	})
	ci, _ := m.Room("s").CreateConnection(ConnectionOptions{Role: RolePublisher})
	joined := make(chan struct{})
	go func() {
		defer close(joined)
		if _, _, err := m.Join("s", ci.Token, JoinInfo{}, &recorder{}); err != nil {
			t.Error(err)
		}
	}()
	<-delivering
	heardAtReturn := make(chan []EventKind, 1)
	go func() {
		m.Shutdown()
		heardAtReturn <- other.kinds()
	}()
	// Shutdown's evictions are queued behind the join being delivered; only then let it go.
	poll.Until(t, 10*time.Second, "the evictions to be queued", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.outbox) > 0
	})
	close(release)
	<-joined
	got := <-heardAtReturn
	if !slices.Contains(got, ParticipantEvicted) {
		t.Fatalf("Shutdown returned when the other participant had heard %v, before its eviction", got)
	}
}
