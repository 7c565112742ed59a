package sendq

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"syscall"
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

// NewConn puts a queue in front of c's writes and limits the unsent bytes c's socket keeps
// (cfg.UnsentBytes), if a TCP socket can be found under c (through NetConn, as *tls.Conn and
// the edge's connections offer it).
func NewConn(c net.Conn, cfg Config) *Conn {
	cfg = cfg.withDefaults()
	if cfg.UnsentBytes > 0 {
		_ = limitUnsent(c, cfg.UnsentBytes) // best effort: without it only the kernel's own buffer grows
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

// limitUnsent sets TCP_NOTSENT_LOWAT on the socket under c.
func limitUnsent(c net.Conn, bytes int) error {
	for {
		if sc, ok := c.(syscall.Conn); ok {
			rc, err := sc.SyscallConn()
			if err != nil {
				return err
			}
			var serr error
			if err := rc.Control(func(fd uintptr) { serr = setNotSentLowat(fd, bytes) }); err != nil {
				return err
			}
			return serr
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return errNoSocket
		}
		c = u.NetConn()
	}
}
