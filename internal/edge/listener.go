package edge

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// peekedConn is a connection whose first bytes were read into r while sniffing: Read returns
// them before anything else, so whoever gets the connection sees the stream from its first byte
// (pion's TCPMux and TURN server parse the first message themselves). Once r is drained, reads
// go straight to the connection, with no copy through the bufio buffer.
//
// Every other method, LocalAddr and RemoteAddr above all, is the real connection's: pion's
// TCPMux needs LocalAddr to be a *net.TCPAddr, and TURN puts RemoteAddr into
// XOR-MAPPED-ADDRESS.
type peekedConn struct {
	net.Conn
	r *bufio.Reader // nil once drained; only Read touches it, and a conn has one reader at a time
}

var _ net.Conn = (*peekedConn)(nil)

// Read implements net.Conn.
func (c *peekedConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p) // never reaches the conn: bufio reads only when its buffer is empty
		}
		c.r = nil
	}
	return c.Conn.Read(p)
}

// NetConn returns the wrapped connection, as *tls.Conn does.
func (c *peekedConn) NetConn() net.Conn { return c.Conn }

// handoffListener is a net.Listener whose connections the edge's sniffer hands over, one per
// Accept: the HTTP server and pion's TCPMux each read one, as if they owned a socket.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn // unbuffered: a conn belongs to the sniffer until Accept has taken it
	done chan struct{}
	once sync.Once
}

var _ net.Listener = (*handoffListener)(nil)

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// Accept implements net.Listener. After Close it returns net.ErrClosed, which both net/http and
// pion's TCPMux treat as the end of their accept loop.
func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener. Connections already accepted stay open: they belong to whoever
// accepted them.
func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener: the shared port's real address. pion's TCPMux announces this
// port in passive candidates and skips interface addresses other than this IP.
func (l *handoffListener) Addr() net.Addr { return l.addr }

// offer hands c to the next Accept and reports whether one took it before the listener closed
// or timeout passed. A consumer that stops accepting (or never started: nobody gave the ICE-TCP
// listener to a TCPMux) therefore costs each connection at most timeout, not forever.
func (l *handoffListener) offer(c net.Conn, timeout time.Duration) bool {
	select {
	case <-l.done: // checked first so that no conn is handed over once Close has returned
		return false
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	case <-t.C:
		return false
	}
}
