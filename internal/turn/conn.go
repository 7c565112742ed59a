package turn

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley/parley/internal/sendq"
)

// handoffListener is the net.Listener pion's ListenerConfig reads from. The edge owns the real
// TCP socket and sniffs the first bytes, so connections arrive one by one through HandleConn
// rather than from an Accept loop of ours.
type handoffListener struct {
	ch        chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

var _ net.Listener = (*handoffListener)(nil)

func newHandoffListener() *handoffListener {
	return &handoffListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

// Accept implements net.Listener.
func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener. Connections already handed to pion stay open; Server.Close
// closes them.
func (l *handoffListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener. pion does not use it for stream listeners.
func (l *handoffListener) Addr() net.Addr { return handoffAddr{} }

// offer hands c to pion's accept loop, or reports false once the listener is closed.
func (l *handoffListener) offer(c net.Conn) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

type handoffAddr struct{}

func (handoffAddr) Network() string { return "tcp" }
func (handoffAddr) String() string  { return "turn-handoff" }

// tcpConn is a TURN/TCP or TURN/TLS client connection handed over by the edge. We track it so that
// Revoke can close the connection that carries a revoked allocation (one allocation per TCP
// connection: RFC 6062 §4.1 ties the allocation's 5-tuple to it), and so that a connection that
// never gets an allocation is closed after IdleTimeout.
type tcpConn struct {
	// Conn is out: writes (pion's and the fast path's) go through a send queue, so a client that
	// reads slowly never blocks the allocation's relay loop or pion's read loop, and gets recent
	// datagrams rather than a backlog.
	net.Conn
	out  *sendq.Conn
	srv  *Server
	key  string      // five-tuple key, see fiveTupleKey
	idle *time.Timer // closes the conn while it holds no allocation; set and stopped under srv.mu

	owner *connState // guarded by srv.mu: the connection whose allocation this carries

	// channels mirrors the channel bindings of the allocation on this connection, replaced
	// whole under srv.mu (fastpath.go). nil when there are none.
	channels atomic.Pointer[[]fastChannel]
	// rbuf[r:w] is read but not yet handed on; pass counts bytes of a frame too large to cut
	// out that still go to pion as they come. Only Read (pion's read loop) touches them.
	rbuf       []byte
	r, w, pass int

	closeOnce sync.Once
	closeErr  error
}

// Close closes the connection and forgets it. Idempotent: pion, Revoke, the idle timer and
// Server.Close may all call it.
func (c *tcpConn) Close() error {
	c.closeOnce.Do(func() {
		c.srv.forgetTCP(c)
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

// fiveTupleKey names a client transport connection the way pion's allocation events do (client
// address, server address). The network is part of it so that a TURN/UDP client can never be
// mistaken for a TCP one with the same numbers.
func fiveTupleKey(client, server net.Addr) string {
	return client.Network() + "|" + client.String() + "|" + server.String()
}

// HandleConn serves one TURN client connection: plain TCP or TLS already terminated (or still to
// be handshaken: a *tls.Conn handshakes on first read). The first bytes must be STUN (a TURN
// Allocate or Binding request, RFC 5389 framing, no RFC 4571 length prefix). HandleConn returns at
// once; the connection belongs to the server from then on, and is closed by it.
//
// The edge must keep c's RemoteAddr and LocalAddr real: the client's address goes back to it in
// XOR-MAPPED-ADDRESS (Firefox drops allocations whose mapped address is bogus), and the pair keys
// the allocation. If the edge peeked bytes, c must replay them (a reader that returns the peeked
// bytes first).
func (s *Server) HandleConn(c net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	qc := s.cfg.clientQueue
	qc.Totals = &s.clientQ
	out := sendq.NewConn(c, qc)
	tc := &tcpConn{Conn: out, out: out, srv: s, key: fiveTupleKey(c.RemoteAddr(), c.LocalAddr())}
	tc.idle = time.AfterFunc(s.cfg.IdleTimeout, func() { _ = tc.Close() })
	if old := s.tcp[tc.key]; old != nil {
		// Two live connections with one 5-tuple cannot happen with real sockets; if a broken
		// hand-off produced it, pion could not tell them apart either. Keep the newer one.
		defer func() { _ = old.Close() }()
	}
	s.tcp[tc.key] = tc
	s.mu.Unlock()

	if !s.handoff.offer(tc) {
		_ = tc.Close()
	}
}

// ServeTCP accepts TURN/TCP (or, given a tls.Listener, TURN/TLS) connections from ln and passes
// each to HandleConn, until ln fails or the server closes. It is for a dedicated TURN port and for
// tests; on the shared port the edge calls HandleConn itself. It returns nil after Close.
func (s *Server) ServeTCP(ln net.Listener) error {
	// Close unblocks Accept by closing ln; the watcher ends with ServeTCP either way.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-s.handoff.done:
			_ = ln.Close()
		case <-stop:
		}
	})
	defer wg.Wait()
	defer close(stop)
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-s.handoff.done:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.HandleConn(c)
	}
}

// forgetTCP drops a closed connection from the tables.
func (s *Server) forgetTCP(c *tcpConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// idle is read under s.mu because HandleConn assigns it under s.mu, after the timer exists:
	// the lock is what orders the assignment before a timer that fires at once.
	c.idle.Stop()
	if s.tcp[c.key] == c {
		delete(s.tcp, c.key)
	}
	if c.owner != nil {
		delete(c.owner.tcp, c)
		c.owner = nil
	}
}
