package signaling

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/poll"
)

// rawClient is a socket from a chosen address (the test server's ClientIP reads X-Test-IP) that
// the test reads itself, to see how the server closes it.
type rawClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialFrom(t *testing.T, url, ip string) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(url, "http", "ws", 1), &websocket.DialOptions{HTTPHeader: http.Header{"X-Test-Ip": {ip}}})
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &rawClient{t: t, ws: ws}
}

func testIP(r *http.Request) string { return r.Header.Get("X-Test-Ip") }

// roundTrip sends frame and returns the next frame the server sends.
func (c *rawClient) roundTrip(frame string) (map[string]any, error) {
	if err := c.ws.Write(context.Background(), websocket.MessageText, []byte(frame)); err != nil {
		return nil, err
	}
	_, data, err := c.ws.Read(context.Background())
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(data, &m)
}

// alive checks that the socket still answers a ping.
func (c *rawClient) alive(name string) {
	c.t.Helper()
	m, err := c.roundTrip(`{"id":1,"jsonrpc":"2.0","method":"ping"}`)
	if err != nil {
		c.t.Fatalf("%s: closed: %v", name, err)
	}
	if r, _ := m["result"].(map[string]any); r["value"] != "pong" {
		c.t.Fatalf("%s: ping answered %v", name, m)
	}
}

func (c *rawClient) join() {
	c.t.Helper()
	m, err := c.roundTrip(`{"id":1,"jsonrpc":"2.0","method":"joinRoom","params":{"token":"tok","session":"ses_Test"}}`)
	if err != nil || m["result"] == nil {
		c.t.Fatalf("joinRoom: %v %v", m, err)
	}
}

// closed reads until the server closes the socket and returns how.
func (c *rawClient) closed() websocket.CloseError {
	c.t.Helper()
	for {
		_, _, err := c.ws.Read(context.Background())
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("socket ended without a close frame: %v", err)
		}
		return ce
	}
}

func frameOfSize(method string, n int) string {
	head := `{"id":1,"jsonrpc":"2.0","method":"` + method + `","params":{"pad":"`
	tail := `"}}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

// TestFrameLimits: before joining a socket may send only small frames; once joined, up to the
// larger limit; past either the server closes it with 1009.
func TestFrameLimits(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{ClientIP: testIP})
	lim := DefaultLimits

	c := dialFrom(t, s.url, "192.0.2.1")
	if _, err := c.roundTrip(frameOfSize("joinRoom", int(lim.PreJoinFrame))); err != nil {
		t.Fatalf("a pre-join frame of exactly the limit: %v", err)
	}
	big := dialFrom(t, s.url, "192.0.2.1")
	_ = big.ws.Write(context.Background(), websocket.MessageText, []byte(frameOfSize("joinRoom", int(lim.PreJoinFrame)+1)))
	if ce := big.closed(); ce.Code != websocket.StatusMessageTooBig {
		t.Errorf("a pre-join frame over the limit: closed with %v, want 1009", ce)
	}

	c.join()
	if m, err := c.roundTrip(frameOfSize("echo", int(lim.Frame))); err != nil || m["result"] == nil {
		t.Fatalf("a joined socket's frame of the joined limit: %v %v", m, err)
	}
	_ = c.ws.Write(context.Background(), websocket.MessageText, []byte(frameOfSize("echo", int(lim.Frame)+1)))
	if ce := c.closed(); ce.Code != websocket.StatusMessageTooBig {
		t.Errorf("a joined frame over the limit: closed with %v, want 1009", ce)
	}
}

// TestJoinDeadline: a socket that has not joined is closed at the deadline with a reason; one
// that joined, opened earlier, is still served after it.
func TestJoinDeadline(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{ClientIP: testIP, Limits: Limits{JoinDeadline: 100 * time.Millisecond}})
	joined := dialFrom(t, s.url, "192.0.2.1")
	joined.join()
	idle := dialFrom(t, s.url, "192.0.2.1") // opened later, so its deadline is the later one
	idle.alive("the idle socket before its deadline")
	if ce := idle.closed(); ce.Code != websocket.StatusPolicyViolation || ce.Reason == "" {
		t.Errorf("idle socket closed with %v, want 1008 with a reason", ce)
	}
	joined.alive("the joined socket after the deadline")
}

// TestPreJoinCaps: past the per-address cap an address's oldest socket that has not joined is
// closed, past the total cap the oldest of the address holding the most; joined sockets and
// other addresses are not touched, and a newcomer always gets in.
func TestPreJoinCaps(t *testing.T) {
	t.Parallel()
	t.Run("per address", func(t *testing.T) {
		t.Parallel()
		s := newTestServer(t, Config{ClientIP: testIP, Limits: Limits{PreJoinPerSource: 2}})
		member := dialFrom(t, s.url, "192.0.2.1")
		member.join() // joined sockets do not count
		first := dialFrom(t, s.url, "192.0.2.1")
		first.alive("first")
		second := dialFrom(t, s.url, "192.0.2.1")
		second.alive("second")
		third := dialFrom(t, s.url, "192.0.2.1")
		third.alive("third")
		if ce := first.closed(); ce.Code != websocket.StatusPolicyViolation || !strings.Contains(ce.Reason, "address") {
			t.Errorf("the address's oldest: closed with %v, want 1008 naming the address", ce)
		}
		other := dialFrom(t, s.url, "2001:db8:1:2::1")
		sameBlock := dialFrom(t, s.url, "2001:db8:1:2::2")
		sameBlock.alive("same /64")
		other.alive("another address")
		for name, c := range map[string]*rawClient{"member": member, "second": second, "third": third} {
			c.alive(name)
		}
		if got := countPreJoin(s.h); got != 4 {
			t.Errorf("%d sockets counted as not joined, want 4", got)
		}
	})
	t.Run("total", func(t *testing.T) {
		t.Parallel()
		s := newTestServer(t, Config{ClientIP: testIP, Limits: Limits{PreJoinSockets: 3, PreJoinPerSource: 10}})
		a1 := dialFrom(t, s.url, "192.0.2.1")
		a1.alive("a1")
		a2 := dialFrom(t, s.url, "192.0.2.1")
		a2.alive("a2")
		b := dialFrom(t, s.url, "192.0.2.2")
		b.alive("b")
		newcomer := dialFrom(t, s.url, "192.0.2.3")
		newcomer.alive("newcomer")
		if ce := a1.closed(); ce.Code != websocket.StatusPolicyViolation {
			t.Errorf("the fullest address's oldest: closed with %v, want 1008", ce)
		}
		for name, c := range map[string]*rawClient{"a2": a2, "b": b} {
			c.alive(name)
		}
	})
}

func countPreJoin(h *Handler) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.preJoin.n
}

// TestQueueBytes: what waits for one socket never passes QueueBytes (plus the one frame that
// goes over it into an empty queue), and the socket is closed when a frame would pass it.
func TestQueueBytes(t *testing.T) {
	t.Parallel()
	const queueBytes = 64 << 10
	lim := Limits{QueueBytes: queueBytes, QueueFrames: 1 << 20}.withDefaults()

	large := newSocket(nil, "", lim) // no writer: nothing leaves the queue
	large.send(make([]byte, 2*queueBytes))
	if sockClosed(large) {
		t.Fatal("a frame larger than the bound, into an empty queue, closed the socket")
	}
	large.send([]byte("{}"))
	if !sockClosed(large) {
		t.Fatal("a frame behind one larger than the bound was queued")
	}

	s := newSocket(nil, "", lim)
	frame := make([]byte, 4<<10)
	sent := 0
	for ; sent < 1000 && !sockClosed(s); sent++ {
		if q := queuedBytes(s); q > queueBytes {
			t.Fatalf("%d bytes queued, bound %d", q, queueBytes)
		}
		s.send(frame)
	}
	if want := queueBytes/len(frame) + 1; sent != want {
		t.Errorf("closed after %d frames of %d bytes, want %d", sent, len(frame), want)
	}
	if q := queuedBytes(s); q != 0 {
		t.Errorf("%d bytes still held after the close", q)
	}
}

func sockClosed(s *socket) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func queuedBytes(s *socket) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued
}

// lineCounter is a slog handler that keeps every line it is given.
type lineCounter struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *lineCounter) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *lineCounter) WithGroup(string) slog.Handler            { return l }
func (l *lineCounter) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}

func (l *lineCounter) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

// TestPeerLogBounds: a socket sending a flood of bad requests with a huge method name causes a
// few short log lines, not one long line per request; another socket's error is still logged,
// with the count of what was left out; and a crowd of sockets cannot flood the log either.
func TestPeerLogBounds(t *testing.T) {
	t.Parallel()
	logs := &lineCounter{}
	m := newFakeModel()
	h := New(Config{PingTimeout: time.Hour, ReconnectGrace: time.Hour}, m, slog.New(logs))
	clock := time.Unix(1_700_000_000, 0)
	h.now = func() time.Time { return clock } // the budgets never refill during the test
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Shutdown(context.Background()); srv.Close() })

	flooder := dialTest(t, srv.URL)
	method := strings.Repeat("m", 5000) // within the frame limit of a socket that has not joined
	for range 200 {
		flooder.call(method, nil)
	}
	lines := logs.take()
	if len(lines) != socketLogBurst {
		t.Errorf("200 bad requests from one socket: %d log lines, want %d", len(lines), socketLogBurst)
	}
	for _, l := range lines {
		if len(l) > 1000 {
			t.Errorf("a log line of %d bytes: %.200s…", len(l), l)
		}
	}
	if m := flooder.call(method, nil); len(m["error"].(map[string]any)["message"].(string)) > 1000 {
		t.Error("the error answer echoes the whole method name")
	}

	other := dialTest(t, srv.URL)
	other.call("nonsense", nil)
	lines = logs.take()
	if len(lines) != 1 || !strings.Contains(lines[0], "nonsense") || !strings.Contains(lines[0], "suppressed=") {
		t.Errorf("another socket's error: lines %q, want one naming it and the suppressed count", lines)
	}

	for range 2 * allLogBurst {
		c := dialTest(t, srv.URL)
		c.call("nonsense", nil)
	}
	if n := len(logs.take()); n >= allLogBurst {
		t.Errorf("%d sockets with one bad request each: %d log lines, want fewer than %d", 2*allLogBurst, n, allLogBurst)
	}
}

// TestAdmitRefusesJoins: while Admit says no (the server near its memory limit), joinRoom is
// refused with error 999 saying why, before the model is asked; once it says yes, joins work.
func TestAdmitRefusesJoins(t *testing.T) {
	t.Parallel()
	var full atomic.Bool
	full.Store(true)
	s := newTestServer(t, Config{Admit: func() error {
		if full.Load() {
			return errors.New("the server is near its memory limit; try again later")
		}
		return nil
	}})
	c := dialTest(t, s.url)
	resp := c.call("joinRoom", map[string]any{"token": "tok", "session": testSession})
	e, _ := resp["error"].(map[string]any)
	if e["code"] != float64(999) || !strings.Contains(e["message"].(string), "memory limit") {
		t.Fatalf("joinRoom while full: %v, want error 999 naming the memory limit", resp)
	}
	if calls := s.m.takeCalls(); len(calls) != 0 {
		t.Errorf("the model was asked: %q", calls)
	}
	full.Store(false)
	c.result("joinRoom", map[string]any{"token": "tok", "session": testSession})
}

// TestReconnectedSocketIsJoined: a socket that comes back with connect to a joined session is
// joined: the deadline spares it and it reads joined-size frames.
func TestReconnectedSocketIsJoined(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{ClientIP: testIP, Limits: Limits{JoinDeadline: 100 * time.Millisecond, PreJoinFrame: 8 << 10}})
	first := dialFrom(t, s.url, "192.0.2.1")
	m, err := first.roundTrip(`{"id":1,"jsonrpc":"2.0","method":"joinRoom","params":{"token":"tok","session":"ses_Test"}}`)
	if err != nil {
		t.Fatal(err)
	}
	rpcID := m["result"].(map[string]any)["sessionId"].(string)
	_ = first.ws.CloseNow()

	back := dialFrom(t, s.url, "192.0.2.1")
	m, err = back.roundTrip(`{"id":2,"jsonrpc":"2.0","method":"connect","params":{"sessionId":"` + rpcID + `","reconnect":true}}`)
	if err != nil || m["result"] == nil {
		t.Fatalf("connect: %v %v", m, err)
	}
	idle := dialFrom(t, s.url, "192.0.2.1") // opened later, so its deadline is the later one
	idle.closed()
	back.alive("the reconnected socket after the deadline")
	if m, err := back.roundTrip(frameOfSize("echo", 16<<10)); err != nil || m["result"] == nil {
		t.Fatalf("a reconnected socket's frame larger than the pre-join limit: %v %v", m, err)
	}
}

// TestLargeMetadataJoins: a joinRoom carrying 40 K characters of client metadata joins with the
// default limits, as on openvidu-server (its frames go up to 50 K characters), and the others
// are told the metadata whole.
func TestLargeMetadataJoins(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Config{ClientIP: testIP})
	c := dialFrom(t, s.url, "192.0.2.1")
	meta := `{"clientData":"` + strings.Repeat("m", 40_000) + `"}`
	params, _ := json.Marshal(map[string]any{"token": "tok", "session": "ses_Test", "metadata": meta})
	m, err := c.roundTrip(`{"id":1,"jsonrpc":"2.0","method":"joinRoom","params":` + string(params) + `}`)
	if err != nil {
		t.Fatalf("joinRoom with 40 K of metadata: %v", err)
	}
	r, _ := m["result"].(map[string]any)
	if r == nil || r["metadata"] != meta {
		t.Fatalf("joinRoom with 40 K of metadata answered %.200v", m)
	}
	c.alive("the joined socket")
	if b := budgetHeld(s.h); b != 0 {
		t.Errorf("%d bytes still counted against the pre-join budget after the join", b)
	}
}

// TestPreJoinFrameBudget: past PreJoinFree, the bytes of unfinished frames of sockets that have
// not joined come from a budget per address and one for the node. Past its address's share a
// frame closes its socket with 1013, while small joins are never refused; with the node's budget
// full, a frame from another address makes room by closing the oldest unfinished frame of the
// address holding the most, and is answered.
func TestPreJoinFrameBudget(t *testing.T) {
	t.Parallel()
	lim := Limits{PreJoinFrame: 8 << 10, PreJoinFree: 1 << 10, PreJoinSourceBytes: 8 << 10, PreJoinBytes: 16 << 10}
	s := newTestServer(t, Config{ClientIP: testIP, Limits: lim})
	// Past the free KiB a frame takes a buffer of the whole 8 KiB (+2): 7 KiB and 2 bytes.
	const held = 8<<10 + 2 - 1<<10
	a1 := unfinishedFrame(t, s.url, "192.0.2.1", 8<<10, 5000)
	poll.Until(t, 10*time.Second, "the first socket's bytes counted", func() bool { return budgetHeld(s.h) == held })

	overSource := dialFrom(t, s.url, "192.0.2.1") // another 7 KiB for 192.0.2.1
	_ = overSource.ws.Write(context.Background(), websocket.MessageText, []byte(joinOfSize(3000)))
	if ce := overSource.closed(); ce.Code != websocket.StatusTryAgainLater {
		t.Errorf("a frame past the address's budget: closed with %v, want 1013", ce)
	}
	small := dialFrom(t, s.url, "192.0.2.1")
	small.join() // within the free part: never refused

	b1 := unfinishedFrame(t, s.url, "192.0.2.2", 8<<10, 5000)
	b2 := unfinishedFrame(t, s.url, "192.0.2.2", 8<<10, 500) // within the free part: holds nothing
	poll.Until(t, 10*time.Second, "the second address's bytes counted", func() bool { return budgetHeld(s.h) == 2*held })
	newcomer := dialFrom(t, s.url, "192.0.2.3")
	if m, err := newcomer.roundTrip(joinOfSize(3000)); err != nil || m["result"] == nil {
		t.Fatalf("a 3,000-byte joinRoom with the node's budget full: %v %v", m, err)
	}
	// The two addresses hold as much: one of their frames made room, the other is still read.
	// The victim's connection was closed before the newcomer was read on, so a read on it ends at
	// once; a read on one still open only ends at its deadline.
	open := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return isTimeout(err)
	}
	if open(a1) == open(b1) {
		t.Errorf("the two addresses' unfinished frames: both closed or both kept, want one closed")
	}
	if !open(b2) {
		t.Errorf("a socket holding no budget was closed")
	}
	poll.Until(t, 10*time.Second, "the evicted and the answered frames' bytes given back", func() bool { return budgetHeld(s.h) == held })
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// joinOfSize is a joinRoom of n bytes, padded with metadata.
func joinOfSize(n int) string {
	head := `{"id":1,"jsonrpc":"2.0","method":"joinRoom","params":{"token":"tok","session":"ses_Test","metadata":"`
	tail := `"}}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

func budgetHeld(h *Handler) int64 {
	h.budget.mu.Lock()
	defer h.budget.mu.Unlock()
	return h.budget.n
}

// unfinishedFrame opens /openvidu from ip by hand and sends a text frame announcing size bytes
// but only the first sent of them, as an attacker holding the server's memory would.
func unfinishedFrame(t *testing.T, url, ip string, size, sent int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Test-Ip: %s\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", ip)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	// A masked text frame with a zero mask, FIN set: a client's frames are masked.
	hdr := []byte{0x81, 0x80 | 126, byte(size >> 8), byte(size), 0, 0, 0, 0}
	if _, err := c.Write(append(hdr, bytes.Repeat([]byte("a"), sent)...)); err != nil {
		t.Fatal(err)
	}
	return c
}
