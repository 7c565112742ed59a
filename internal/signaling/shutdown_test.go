package signaling

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/session"
)

// TestShutdownLockOrder forces the interleaving of issue 13: a socket drop, a reconnection or a grace
// timer forgets its JSON-RPC session (holding rpcSession.mu) exactly while Shutdown holds Handler.mu
// and reaches for that session's lock. Before the fix each case deadlocked.
func TestShutdownLockOrder(t *testing.T) {
	cases := []struct {
		name   string
		joined bool // a participant: the drop arms a grace timer (ReconnectGrace 0), which forgets
		forget func(r *rpcSession, sock *socket)
	}{
		{"socket drop", false, func(r *rpcSession, sock *socket) { r.detach(sock) }},
		{"replaced by a reconnection", false, func(r *rpcSession, _ *socket) { r.discard() }},
		{"grace timer", true, func(r *rpcSession, sock *socket) { r.detach(sock) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newFakeModel()
			m.evicted = make(chan session.ConnectionID, 1)
			h := New(Config{ReconnectGrace: 0, PingTimeout: time.Hour}, m, slog.New(slog.DiscardHandler))
			sock := newSocket(nil, "", DefaultLimits)
			r := h.newRPC(sock)
			if tc.joined {
				r.part = &fakeParticipant{f: m, id: "con_Joined"}
			}
			forgetting, shutdownLocked := make(chan struct{}), make(chan struct{})
			h.testHooks.forgetting = func() {
				close(forgetting)
				<-shutdownLocked // the forgetter holds rpcSession.mu until Shutdown holds Handler.mu
			}
			h.testHooks.shutdownLocked = func() { close(shutdownLocked) }

			forgot := make(chan struct{})
			go func() { tc.forget(r, sock); close(forgot) }()
			<-forgetting
			shut := make(chan struct{})
			go func() { h.Shutdown(context.Background()); close(shut) }()
			<-shut
			<-forgot
			if tc.joined {
				<-m.evicted // the grace timer's goroutine forgets the session, then evicts
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.rpcs[r.id] != nil {
				t.Errorf("session %s still reconnectable after it was forgotten", r.id)
			}
		})
	}
}

// TestShutdownRacesDropsAndGraceTimers runs Shutdown while participants' sockets drop, grace timers
// fire and a participant reconnects. Run it with -race -count 1000: every interleaving must end with
// Shutdown returning and every socket closed.
func TestShutdownRacesDropsAndGraceTimers(t *testing.T) {
	// A grace of a nanosecond fires the eviction timers while Shutdown runs.
	s := newTestServer(t, Config{ReconnectGrace: time.Nanosecond})
	h := s.h

	const n = 6
	clients := make([]*testClient, n)
	ids := make([]string, n)
	for i := range clients {
		var res map[string]any
		clients[i], res = s.joined(t)
		ids[i], _ = res["sessionId"].(string)
	}

	var wg sync.WaitGroup
	for i := range n / 2 { // drop half of the sockets
		wg.Go(func() { _ = clients[i].ws.CloseNow() })
	}
	wg.Go(func() { // one participant reconnects on a new socket
		c, err := dialWS(s.url)
		if err != nil {
			return // the handler already refuses new sockets
		}
		defer c.CloseNow()
		b := `{"id":1,"jsonrpc":"2.0","method":"connect","params":{"sessionId":"` + ids[n-1] + `"}}`
		_ = c.Write(context.Background(), websocket.MessageText, []byte(b))
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	})
	wg.Go(func() { h.Shutdown(context.Background()) })
	wg.Wait()

	for i := n / 2; i < n; i++ {
		clients[i].waitClosed()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.sockets) != 0 {
		t.Errorf("%d sockets still registered after Shutdown", len(h.sockets))
	}
}
