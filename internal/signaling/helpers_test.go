package signaling

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/session"
)

const testSession = "ses_Test"

func newTestModel(t *testing.T) *session.Manager {
	t.Helper()
	m := session.NewManager(session.Options{WebSocketURL: "ws://test/openvidu"})
	if _, err := m.CreateSession(session.Properties{CustomSessionID: testSession}); err != nil {
		t.Fatal(err)
	}
	return m
}

func newToken(t *testing.T, m *session.Manager) string {
	t.Helper()
	c, err := m.CreateConnection(testSession, session.ConnectionOptions{Role: session.RolePublisher})
	if err != nil {
		t.Fatal(err)
	}
	return c.Token
}

func joinDirect(t *testing.T, m *session.Manager, r *rpcSession) *session.Connection {
	t.Helper()
	c, _, err := m.Join(testSession, newToken(t, m), session.JoinInfo{}, r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testClient speaks JSON-RPC to a Handler over a real WebSocket, as the SDK does.
type testClient struct {
	t      *testing.T
	ws     *websocket.Conn
	nextID atomic.Int64
	closed chan struct{}

	mu      sync.Mutex
	pending map[int64]chan map[string]any
	notes   []map[string]any
}

func dialTest(t *testing.T, url string) *testClient {
	t.Helper()
	ws, err := dialWS(url)
	if err != nil {
		t.Fatal(err)
	}
	c := &testClient{t: t, ws: ws, pending: map[int64]chan map[string]any{}, closed: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { _ = ws.CloseNow() })
	return c
}

func (c *testClient) read() {
	defer close(c.closed)
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		c.mu.Lock()
		if id, ok := m["id"].(float64); ok && c.pending[int64(id)] != nil {
			c.pending[int64(id)] <- m
		} else {
			c.notes = append(c.notes, m)
		}
		c.mu.Unlock()
	}
}

// call sends a request and returns the whole response frame.
func (c *testClient) call(method string, params any) map[string]any {
	c.t.Helper()
	id := c.nextID.Add(1)
	ch := make(chan map[string]any, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	frame := map[string]any{"id": id, "jsonrpc": "2.0", "method": method}
	if params != nil {
		frame["params"] = params
	}
	b, _ := json.Marshal(frame)
	if err := c.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
	select {
	case m := <-ch:
		return m
	case <-c.closed:
		c.t.Fatalf("%s: socket closed before the response", method)
	}
	return nil
}

func (c *testClient) result(method string, params any) map[string]any {
	c.t.Helper()
	m := c.call(method, params)
	r, ok := m["result"].(map[string]any)
	if !ok {
		c.t.Fatalf("%s: want result, got %v", method, m)
	}
	return r
}

// waitClosed waits until the server has closed the socket.
func (c *testClient) waitClosed() {
	c.t.Helper()
	select {
	case <-c.closed:
	case <-time.After(30 * time.Second):
		c.t.Fatal("server never closed the socket")
	}
}
