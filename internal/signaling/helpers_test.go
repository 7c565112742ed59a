package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

const testSession = "ses_Test"

// testServer is a Handler on a fake model behind a real HTTP server.
type testServer struct {
	h   *Handler
	m   *fakeModel
	url string
}

func newTestServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	return newTestServerOn(t, cfg, nil)
}

// newTestServerOn is newTestServer whose listener, when wrap is set, is wrap's.
func newTestServerOn(t testing.TB, cfg Config, wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	return newTestServerOf(t, cfg, wrap, func(m *fakeModel) Model { return m })
}

// newTestServerOf is newTestServerOn whose handler serves model(the fake).
func newTestServerOf(t testing.TB, cfg Config, wrap func(net.Listener) net.Listener, model func(*fakeModel) Model) *testServer {
	t.Helper()
	if cfg.PingTimeout == 0 {
		cfg.PingTimeout = time.Hour
	}
	if cfg.ReconnectGrace == 0 {
		cfg.ReconnectGrace = time.Hour
	}
	m := newFakeModel()
	h := New(cfg, model(m), slog.New(slog.DiscardHandler))
	srv := httptest.NewUnstartedServer(h)
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.Start()
	t.Cleanup(func() {
		h.Shutdown(context.Background())
		srv.Close()
	})
	return &testServer{h: h, m: m, url: srv.URL}
}

// joined dials and joins; the fake model accepts any token.
func (s *testServer) joined(t *testing.T) (*testClient, map[string]any) {
	t.Helper()
	c := dialTest(t, s.url)
	res := c.result("joinRoom", map[string]any{"token": "tok", "session": testSession})
	s.m.takeCalls()
	return c, res
}

func dialWS(base string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1), nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 20) // the client reads whatever the server sends
	return ws, nil
}

// testClient speaks JSON-RPC to a Handler over a real WebSocket, as the SDK does.
type testClient struct {
	t      *testing.T
	ws     *websocket.Conn
	nextID atomic.Int64
	closed chan struct{}

	mu      sync.Mutex
	pending map[int64]chan map[string]any
	notes   [][]byte
	noteCh  chan struct{}
}

func dialTest(t *testing.T, url string) *testClient {
	t.Helper()
	ws, err := dialWS(url)
	if err != nil {
		t.Fatal(err)
	}
	c := &testClient{t: t, ws: ws, pending: map[int64]chan map[string]any{}, closed: make(chan struct{}), noteCh: make(chan struct{}, 1)}
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
			c.notes = append(c.notes, data)
			select {
			case c.noteCh <- struct{}{}:
			default:
			}
		}
		c.mu.Unlock()
	}
}

// send writes one frame as it is.
func (c *testClient) send(frame string) {
	c.t.Helper()
	if err := c.ws.Write(context.Background(), websocket.MessageText, []byte(frame)); err != nil {
		c.t.Fatal(err)
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
	c.send(string(b))
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

// nextNote waits for the next notification frame.
func (c *testClient) nextNote() []byte {
	c.t.Helper()
	for {
		c.mu.Lock()
		if len(c.notes) > 0 {
			n := c.notes[0]
			c.notes = c.notes[1:]
			c.mu.Unlock()
			return n
		}
		c.mu.Unlock()
		select {
		case <-c.noteCh:
		case <-c.closed:
			c.t.Fatal("socket closed while waiting for a notification")
		}
	}
}

// waitClosed waits until the server has closed the socket.
func (c *testClient) waitClosed() {
	c.t.Helper()
	<-c.closed
}

// golden compares JSON text with testdata/name.golden, keeping its key order (the wire's).
func golden(t *testing.T, name string, wire []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, wire, "", "  "); err != nil {
		t.Fatalf("%s: not JSON: %q", name, wire)
	}
	buf.WriteByte('\n')
	got := buf.Bytes()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}
