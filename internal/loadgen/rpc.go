package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// rpcConn is the JSON-RPC 2.0 client side of OpenVidu's /openvidu WebSocket, framed as
// openvidu-browser frames it (protocol note §1.2): integer ids from 0, every call a request, and
// server notifications (no id) handed to onNote in arrival order on the reader goroutine.
type rpcConn struct {
	ws     *websocket.Conn
	onNote func(method string, params json.RawMessage)

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan rpcReply
	closed  error

	wmu  sync.Mutex // one writer at a time (coder/websocket allows concurrent writes, order matters)
	done chan struct{}
}

type rpcReply struct {
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message) }

// dialRPC opens the WebSocket and starts its reader.
func dialRPC(ctx context.Context, url string, onNote func(string, json.RawMessage)) (*rpcConn, error) {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(4 << 20)
	c := &rpcConn{ws: ws, onNote: onNote, pending: map[int64]chan rpcReply{}, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *rpcConn) read() {
	defer close(c.done)
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.closed = err
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		var m struct {
			ID     *int64          `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			rpcReply
		}
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		if m.ID == nil {
			if m.Method != "" && c.onNote != nil {
				c.onNote(m.Method, m.Params)
			}
			continue
		}
		c.mu.Lock()
		ch := c.pending[*m.ID]
		delete(c.pending, *m.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m.rpcReply
		}
	}
}

// send writes a request and returns the channel its reply arrives on; the frame is on the wire
// when send returns, so later frames (trickled candidates) follow it in order.
func (c *rpcConn) send(ctx context.Context, method string, params any) (<-chan rpcReply, error) {
	c.mu.Lock()
	if c.closed != nil {
		c.mu.Unlock()
		return nil, c.closed
	}
	id := c.nextID
	c.nextID++
	ch := make(chan rpcReply, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	frame := map[string]any{"id": id, "jsonrpc": "2.0", "method": method}
	if params != nil {
		frame["params"] = params
	}
	b, err := json.Marshal(frame)
	if err != nil {
		return nil, err
	}
	c.wmu.Lock()
	err = c.ws.Write(ctx, websocket.MessageText, b)
	c.wmu.Unlock()
	if err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, err
	}
	return ch, nil
}

// wait waits for a reply within the SDK's 10 s request timeout and decodes its result into out.
func wait(ctx context.Context, method string, ch <-chan rpcReply, out any) error {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: connection closed", method)
		}
		if r.Error != nil {
			return fmt.Errorf("%s: %w", method, r.Error)
		}
		if out != nil {
			if err := json.Unmarshal(r.Result, out); err != nil {
				return fmt.Errorf("%s: result: %w", method, err)
			}
		}
		return nil
	case <-t.C:
		return fmt.Errorf("%s: no reply within 10 s", method)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call is send then wait.
func (c *rpcConn) call(ctx context.Context, method string, params, out any) error {
	ch, err := c.send(ctx, method, params)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	return wait(ctx, method, ch, out)
}

// close ends the socket with the client's normal close code (protocol note §1.5) and waits for
// the reader.
func (c *rpcConn) close() {
	_ = c.ws.Close(4102, "Connection closed by client")
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
		_ = c.ws.CloseNow()
		<-c.done
	}
}
