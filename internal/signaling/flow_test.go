package signaling

import (
	"context"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/session"
)

// TestFrames checks answers to frames that never reach a method (JSON-RPC 2.0 §5).
func TestFrames(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{})
	c := dialTest(t, s.url)
	for _, tc := range []struct {
		name, frame, want string
	}{
		{"not JSON", `{"id":1,`, `{"id":null,"jsonrpc":"2.0","error":{"code":-32700,`},
		{"no method", `{"id":7,"jsonrpc":"2.0","params":{}}`, `{"id":7,"jsonrpc":"2.0","error":{"code":-32600,`},
		{"no id", `{"jsonrpc":"2.0","method":"nosuch"}`, `{"id":null,"jsonrpc":"2.0","error":{"code":-32601,`},
		{"string id", `{"id":"a","jsonrpc":"2.0","method":"ping"}`, `{"id":"a","jsonrpc":"2.0","result":{"value":"pong"}}`},
	} {
		c.send(tc.frame)
		if got := string(c.nextNote()); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: got %s, want %s…", tc.name, got, tc.want)
		}
	}
}

// TestLeaveRoomEndsTheParticipant: after leaveRoom the socket is a fresh one again.
func TestLeaveRoomEndsTheParticipant(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{})
	c, _ := s.joined(t)
	c.result("leaveRoom", nil)
	checkResponse(t, c.call("publishVideo", map[string]any{"sdpOffer": "o"}), "", 803, "", "publishVideo")
	c.result("joinRoom", map[string]any{"token": "tok2", "session": testSession})
	if got := s.m.takeCalls(); len(got) != 2 || got[0] != "Leave" || !strings.HasPrefix(got[1], "Join ") {
		t.Errorf("model calls %q, want Leave then Join", got)
	}
}

// TestReconnection: a dropped socket's participant is kept for the grace period; `connect` on a new
// socket re-attaches it and notifications follow it there (protocol note §1.4).
func TestReconnection(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{})
	old, res := s.joined(t)
	rpcID := res["sessionId"].(string)
	_ = old.ws.CloseNow()
	old.waitClosed()

	c := dialTest(t, s.url)
	got := c.result("connect", map[string]any{"sessionId": rpcID})
	if got["value"] != "reconnection successful" || got["sessionId"] != rpcID {
		t.Fatalf("connect: %v", got)
	}
	// The participant's methods work on the new socket, under the old JSON-RPC session.
	checkResponse(t, c.call("unpublishVideo", nil), `{}`, 0, rpcID, "unpublishVideo")
	s.m.notify("con_Fake000001", session.Event{Kind: session.ParticipantLeft, Connection: "con_Bob", Reason: "disconnect"})
	if n := string(c.nextNote()); !strings.Contains(n, `"participantLeft"`) {
		t.Fatalf("notification after reconnecting: %s", n)
	}
	if calls := s.m.takeCalls(); len(calls) != 1 || calls[0] != "Unpublish" {
		t.Errorf("model calls %q: a reconnection must not evict", calls)
	}
	// The socket that connected has no session of its own left behind.
	s.h.onlyRPC(t)
}

// TestGraceRunsOut: a participant whose socket dropped and who did not reconnect in time is evicted
// with networkDisconnect, and its JSON-RPC session can no longer be re-attached.
func TestGraceRunsOut(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{ReconnectGrace: time.Nanosecond})
	s.m.evicted = make(chan session.ConnectionID, 1)
	c, res := s.joined(t)
	_ = c.ws.CloseNow()
	if id := <-s.m.evicted; id != "con_Fake000001" {
		t.Fatalf("evicted %s", id)
	}
	if calls := s.m.takeCalls(); len(calls) != 1 || calls[0] != "Evict networkDisconnect" {
		t.Fatalf("model calls %q", calls)
	}
	c2 := dialTest(t, s.url)
	checkResponse(t, c2.call("connect", map[string]any{"sessionId": res["sessionId"]}), "", 40007, "", "connect")
}

// TestSlowConsumer: a client that stops reading is disconnected once QueueFrames notifications,
// or QueueBytes bytes, wait for it, with a reason; the model never waits for it and another
// participant gets everything.
func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		lim  Limits
		data int // bytes of each signal
		n    int // notifications sent, more than the queue (and the kernel's share) holds
	}{
		{"frames", Limits{}, 1024, 2 * DefaultLimits.QueueFrames},
		{"bytes", Limits{QueueBytes: 64 << 10, QueueFrames: 1 << 20}, 8 << 10, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testSlowConsumer(t, tc.lim, tc.data, tc.n)
		})
	}
}

func testSlowConsumer(t *testing.T, lim Limits, data, n int) {
	// Small kernel buffers on both ends, so the queue, not the kernel, holds what the client
	// does not read.
	s := newTestServerOn(t, Config{Limits: lim}, func(l net.Listener) net.Listener { return smallBuffers{l} })
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	ctx := context.Background()
	slow, _, err := websocket.Dial(ctx, strings.Replace(s.url, "http", "ws", 1), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	slow.SetReadLimit(1 << 20)
	// The slow client joins, then stops reading.
	if err := slow.Write(ctx, websocket.MessageText, []byte(`{"id":1,"jsonrpc":"2.0","method":"joinRoom","params":{"token":"t","session":"s"}}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := slow.Read(ctx); err != nil {
		t.Fatal(err)
	}
	fast, _ := s.joined(t)

	e := session.Event{Kind: session.SignalSent, Signal: &session.Signal{Type: "signal", Data: strings.Repeat("x", data)}}
	for range n {
		s.m.notify("con_Fake000001", e) // returns at once: the model never waits for a client
	}
	s.m.notify("con_Fake000002", e)
	fast.nextNote() // the other participant is served

	// The slow client, reading at last, gets what the kernel held, then the close with its reason.
	read := 0
	for {
		_, _, err := slow.Read(ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != websocket.StatusPolicyViolation {
				t.Errorf("slow client closed with %v (%v), want policy violation", st, err)
			}
			break
		}
		if read++; read == n {
			t.Fatalf("the slow client read all %d notifications: it was never cut off", read)
		}
	}
}

// smallBuffers gives accepted connections a small kernel send buffer.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}
