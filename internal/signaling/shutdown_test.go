package signaling

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
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
			h := New(Config{ReconnectGrace: 0, PingTimeout: time.Hour}, newTestModel(t), slog.New(slog.DiscardHandler))
			sock := &socket{out: make(chan []byte, outQueue)}
			r := h.newRPC(sock)
			evicted := make(chan struct{})
			if tc.joined {
				r.part = joinDirect(t, h.m, r)
				h.m.Listen(func(e session.Event) {
					if e.Kind == session.ParticipantLeft {
						close(evicted)
					}
				})
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
				<-evicted // the grace timer's goroutine forgets the session, then evicts
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
	m := newTestModel(t)
	// A grace of zero fires the eviction timers while Shutdown runs.
	h := New(Config{ReconnectGrace: 0, PingTimeout: time.Hour}, m, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(h)
	defer srv.Close()

	const n = 6
	clients := make([]*testClient, n)
	ids := make([]string, n)
	for i := range clients {
		clients[i] = dialTest(t, srv.URL)
		res := clients[i].result("joinRoom", map[string]any{"token": newToken(t, m), "session": testSession})
		ids[i], _ = res["sessionId"].(string)
	}

	var wg sync.WaitGroup
	for i := range n / 2 { // drop half of the sockets
		wg.Go(func() { _ = clients[i].ws.CloseNow() })
	}
	wg.Go(func() { // one participant reconnects on a new socket
		c, err := dialWS(srv.URL)
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

func dialWS(base string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1), nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(maxFrame)
	return ws, nil
}
