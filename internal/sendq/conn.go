package sendq

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// Conn is a net.Conn whose Write goes through a Queue: every Write must be one whole frame.
// Reads and everything else are the wrapped connection's.
type Conn struct {
	net.Conn
	q         *Queue
	closeOnce sync.Once
	closeErr  error
}

var _ net.Conn = (*Conn)(nil)

// NewConn puts a queue in front of c's writes and, if a TCP socket can be found under c (through
// NetConn, as *tls.Conn and the edge's connections offer it), limits the unsent bytes the socket
// keeps (cfg.UnsentBytes) and the bytes in flight (cfg.InFlightDelay).
func NewConn(c net.Conn, cfg Config) *Conn {
	cfg = cfg.withDefaults()
	if rc, err := rawConn(c); err == nil { // best effort: without it only the kernel's own buffer grows
		if cfg.UnsentBytes > 0 {
			_ = rc.Control(func(fd uintptr) { _ = setNotSentLowat(fd, cfg.UnsentBytes) })
		}
		if cfg.InFlightDelay > 0 && cfg.socket == nil {
			cfg.socket = socketProgress(rc)
		}
	}
	if overTLS(c) {
		cfg.FramePerWrite = true
	}
	return &Conn{Conn: c, q: New(c, cfg)}
}

// Write queues p, one whole frame, and never blocks. See Queue.WriteKind.
func (c *Conn) Write(p []byte) (int, error) { return c.q.WriteKind(p, Control) }

// WriteKind queues p as a frame of kind k.
func (c *Conn) WriteKind(p []byte, k Kind) (int, error) { return c.q.WriteKind(p, k) }

// Stats returns the queue's counters.
func (c *Conn) Stats() Stats { return c.q.Stats() }

// VideoWait returns how long the latest video frames written waited. See Queue.VideoWait.
func (c *Conn) VideoWait() time.Duration { return c.q.VideoWait() }

// ResetVideoWait forgets the wait of the latest video written.
func (c *Conn) ResetVideoWait() { c.q.ResetVideoWait() }

// Accepted returns how many bytes the queue has taken so far. See Queue.Accepted.
func (c *Conn) Accepted() uint64 { return c.q.Accepted() }

// SentBytes returns how many bytes the queue has handed the connection so far (one atomic load).
func (c *Conn) SentBytes() uint64 { return c.q.own.c[cSent].bytes.Load() }

// MediaDropped returns how many media frames the queue has dropped so far: one atomic load, for
// a caller on a hot path.
func (c *Conn) MediaDropped() uint64 { return c.q.own.c[cMedia].frames.Load() }

// PaddingDropped returns how many padding frames the queue has dropped so far (one atomic load):
// a probe's padding that found no room on the link.
func (c *Conn) PaddingDropped() uint64 { return c.q.own.c[cPadding].frames.Load() }

// Delay returns how long the video frames written since the previous call waited. See
// Queue.Delay.
func (c *Conn) Delay() Delay { return c.q.Delay() }

// NetConn returns the wrapped connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Close closes the connection, which ends a write blocked on it, then stops the queue and waits
// for its writer. Idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		c.q.Close()
	})
	return c.closeErr
}

// overTLS reports whether c is, or wraps (through NetConn), a TLS connection.
func overTLS(c net.Conn) bool {
	for {
		if _, ok := c.(*tls.Conn); ok {
			return true
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return false
		}
		c = u.NetConn()
	}
}

var errNoSocket = errors.New("sendq: no socket under the connection")

// rawConn finds the socket under c.
func rawConn(c net.Conn) (syscall.RawConn, error) {
	for {
		if sc, ok := c.(syscall.Conn); ok {
			return sc.SyscallConn()
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil, errNoSocket
		}
		c = u.NetConn()
	}
}
