package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ALPN protocol IDs (RFC 7301) the edge routes on.
const (
	// ALPNHTTP1 is HTTP/1.1 (RFC 7301 §6). REST, signaling (WebSocket) and the app all fit in it.
	ALPNHTTP1 = "http/1.1"
	// ALPNHTTP2 is HTTP/2 (RFC 9113 §3.2). Not offered unless the caller's tls.Config lists it.
	ALPNHTTP2 = "h2"
	// ALPNTURN is TURN over TLS (RFC 7443 §3).
	ALPNTURN = "stun.turn"
	// ALPNACME is the ACME TLS-ALPN-01 challenge (RFC 8737 §6): the handshake is the answer.
	ALPNACME = "acme-tls/1"
)

// Defaults for the zero values of Config.
const (
	DefaultSniffTimeout     = 5 * time.Second
	DefaultFirstByteTimeout = 3 * time.Second
	DefaultMaxPendingSniffs = 1024
	DefaultMaxPendingPerIP  = 64
	DefaultShutdownTimeout  = 5 * time.Second
)

// Config is what the edge serves on its port. It knows handlers, not what they do.
type Config struct {
	// TLS terminates TLS on the shared port (production: see TLSConfig). nil means plain
	// connections only (dev mode): a TLS ClientHello is then dropped. The edge works on a clone
	// whose NextProtos always include "http/1.1" and "stun.turn" (Go's TLS server aborts a
	// handshake whose client offers ALPN and finds no match, so a TURN client that says
	// "stun.turn" must find it). "h2" is offered only if listed here: such connections go to
	// the HTTP server as the bare *tls.Conn, the only form net/http speaks HTTP/2 on.
	TLS *tls.Config
	// HTTP serves REST, signaling and the app. Required. In TLS mode, a plain-text HTTP request
	// to the shared port gets 400 without reaching it.
	HTTP http.Handler
	// TURN takes TURN/TCP and TURN/TLS connections (TLS already terminated), first bytes
	// included. It must return promptly: the connection is its own from the call on. nil drops
	// them. Meant for (*turn.Server).HandleConn.
	TURN func(net.Conn)
	// SniffTimeout bounds the time from accept to hand-off: first bytes, TLS handshake and the
	// first bytes inside TLS. A peer that has not said enough by then is dropped. Default
	// DefaultSniffTimeout.
	SniffTimeout time.Duration
	// FirstByteTimeout bounds the wait for a connection's first byte, within SniffTimeout.
	// Every protocol on the port starts with the client speaking right after the TCP
	// handshake; 3 s covers a lost first segment resent after TCP's initial 1 s timeout. A
	// silent peer gives up its slot this quickly. Default DefaultFirstByteTimeout.
	FirstByteTimeout time.Duration
	// MaxPendingSniffs bounds the connections being sniffed at once. Accepting never waits:
	// when the bound is reached, the oldest connection of the source holding the most is
	// dropped for the newcomer, so idle connections from a few addresses cannot delay anyone
	// else. Default DefaultMaxPendingSniffs.
	MaxPendingSniffs int
	// MaxPendingPerIP bounds the connections being sniffed at once from one IPv4 address or
	// IPv6 /64; past it, that source's oldest is dropped. A browser has a handful of
	// connections in their first round trip; a NAT with many users rarely more than a few at
	// the same instant. Default DefaultMaxPendingPerIP.
	MaxPendingPerIP int
	// Relays, optional, names peers exempt from MaxPendingPerIP (they still count toward
	// MaxPendingSniffs): the operator's reverse proxy passing TURN/TLS through by server name,
	// whose one address carries every participant limited to TCP 443.
	Relays func(netip.Addr) bool
	// ProxyProtocolFrom, optional, names the L4 load balancers in front of the port
	// (PARLEY_PROXY_PROTOCOL_FROM). A connection from one of them must open with a PROXY
	// protocol header, v1 or v2, and is refused without one; the header's client address is
	// then the connection's RemoteAddr for every handler (HTTP requests, TURN allocations,
	// ICE-TCP), and it counts against MaxPendingPerIP as that client's. A connection from any
	// other peer that opens with a PROXY header is refused: anyone can write one. A v2 LOCAL
	// (or v1 UNKNOWN) header, a balancer's health check, keeps the socket's addresses.
	ProxyProtocolFrom func(netip.Addr) bool
	// ShutdownTimeout bounds the graceful HTTP shutdown in Run; after it, remaining HTTP
	// connections are closed. Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// Server owns the shared TCP port: it accepts connections, sniffs them and hands each to the
// HTTP server, the TURN handler or the ICE-TCP listener.
type Server struct {
	cfg     Config
	tls     *tls.Config // cfg.TLS with the NextProtos we route on; nil in plain mode
	log     *slog.Logger
	ln      net.Listener
	httpLn  *handoffListener
	iceLn   *handoffListener
	http    *http.Server
	stopCtx context.Context // canceled when Run starts shutting down; parent of handshakes
	stop    context.CancelFunc
	started atomic.Bool
	wg      sync.WaitGroup // serveConn goroutines

	mu      sync.Mutex
	pending *pendingSet // accepted, not yet handed over; closed on shutdown
	closing bool

	stats            counters
	lastNoHeaderWarn atomic.Int64 // unix seconds of the last warning of a balancer without PROXY headers
}

// NewServer returns an edge that will serve cfg on ln once Run is called. It takes ownership of
// ln. The ICE-TCP listener exists from here on, so that the SFU can be built before Run.
func NewServer(ln net.Listener, cfg Config, log *slog.Logger) (*Server, error) {
	if cfg.HTTP == nil {
		return nil, errors.New("edge: Config.HTTP is required")
	}
	if cfg.SniffTimeout <= 0 {
		cfg.SniffTimeout = DefaultSniffTimeout
	}
	if cfg.FirstByteTimeout <= 0 {
		cfg.FirstByteTimeout = DefaultFirstByteTimeout
	}
	if cfg.MaxPendingSniffs <= 0 {
		cfg.MaxPendingSniffs = DefaultMaxPendingSniffs
	}
	if cfg.MaxPendingPerIP <= 0 {
		cfg.MaxPendingPerIP = DefaultMaxPendingPerIP
	}
	cfg.MaxPendingPerIP = min(cfg.MaxPendingPerIP, cfg.MaxPendingSniffs)
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	s := &Server{
		cfg:     cfg,
		tls:     routedTLS(cfg.TLS),
		log:     log,
		ln:      ln,
		httpLn:  newHandoffListener(ln.Addr()),
		iceLn:   newHandoffListener(ln.Addr()),
		pending: newPendingSet(cfg.MaxPendingSniffs, cfg.MaxPendingPerIP),
	}
	if cfg.Relays != nil || cfg.ProxyProtocolFrom != nil {
		// A balancer carries everyone's connections; once its PROXY header is read, each counts
		// against its client (rekey).
		s.pending.relay = func(a netip.Addr) bool {
			return cfg.Relays != nil && cfg.Relays(a) || cfg.ProxyProtocolFrom != nil && cfg.ProxyProtocolFrom(a)
		}
	}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second, // slowloris: headers must arrive promptly
		IdleTimeout:       2 * time.Minute,
		// No ReadTimeout or WriteTimeout: signaling WebSockets live for hours (they are hijacked,
		// so the server's timeouts would not reach them anyway) and REST bodies are small.
		ConnContext: connContext,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// routedTLS clones c and makes sure it offers the protocols the edge routes on.
func routedTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	c = c.Clone()
	for _, p := range []string{ALPNHTTP1, ALPNTURN} {
		if !slices.Contains(c.NextProtos, p) {
			c.NextProtos = append(c.NextProtos, p)
		}
	}
	return c
}

// Addr is the shared port's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// ICETCPListener yields the connections that open with an RFC 4571-framed STUN message, for
// pion's ice.NewTCPMuxDefault(ice.TCPMuxParams{Listener: ...}). Its Addr is the shared port's,
// and each connection's LocalAddr and RemoteAddr are the real ones, as TCPMux needs. A
// connection nobody accepts within SniffTimeout is dropped. Closed by Run on shutdown.
func (s *Server) ICETCPListener() net.Listener { return s.iceLn }

// Run serves until ctx ends or accepting fails, then shuts down: it stops accepting, drops the
// connections still being sniffed, closes the ICE-TCP listener (connections already accepted
// belong to the TCPMux), and shuts the HTTP server down gracefully within ShutdownTimeout
// (hijacked connections, WebSockets, belong to their handler). It closes the port. It returns
// nil after a clean shutdown. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("edge: Run called twice")
	}
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.http.Serve(s.httpLn) }()
	acceptDone := make(chan error, 1)
	go func() { acceptDone <- s.acceptLoop() }()
	s.log.Debug("edge serving", "addr", s.ln.Addr(), "tls", s.tls != nil, "turn", s.cfg.TURN != nil)

	var err error
	select {
	case <-ctx.Done():
	case err = <-acceptDone:
		acceptDone <- err
	case err = <-httpDone: // our listener never fails, so this is unexpected
		err = fmt.Errorf("edge: http server: %w", err)
		httpDone <- nil
	}

	// Order matters: stop taking new connections first, so that nothing arrives at a handler
	// that is already shutting down.
	s.stop()
	_ = s.ln.Close()
	if e := <-acceptDone; err == nil {
		err = e
	}
	s.closePending()
	_ = s.iceLn.Close()

	sctx, cancel := context.WithTimeoutCause(context.Background(), s.cfg.ShutdownTimeout,
		errors.New("edge: HTTP shutdown timeout"))
	defer cancel()
	if e := s.http.Shutdown(sctx); e != nil {
		_ = s.http.Close() // the timeout passed: in-flight requests are cut
		if err == nil {
			err = fmt.Errorf("edge: shut down HTTP: %w", context.Cause(sctx))
		}
	}
	if e := <-httpDone; e != nil && !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("edge: http server: %w", e)
	}
	s.wg.Wait() // every conn has been handed over or closed: closePending and the closed listeners see to it
	return err
}

// acceptLoop accepts until the listener closes. It never waits for a sniff slot: track makes
// room by dropping the oldest connection of the source that holds the most, so a flood of
// silent peers costs its own connections, never a newcomer's wait in the kernel's queue.
func (s *Server) acceptLoop() error {
	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.stopCtx.Done():
				return nil
			default:
			}
			var te interface{ Temporary() bool }
			if !errors.As(err, &te) || !te.Temporary() {
				return fmt.Errorf("edge: accept on %s: %w", s.ln.Addr(), err)
			}
			// Out of file descriptors and the like: back off as net/http does, and keep serving
			// the connections we have.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.stopCtx.Done():
				t.Stop()
				return nil
			}
			continue
		}
		delay = 0
		s.stats.accepted.Add(1)
		if !s.track(c) {
			_ = c.Close()
			return nil
		}
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

// track records c as being sniffed, unless shutdown has begun, and drops the connection it
// displaces, if any.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	evicted := s.pending.add(c)
	s.mu.Unlock()
	if evicted != nil {
		s.stats.drop(dropEvicted)
		_ = evicted.Close() // its serveConn sees the read fail and finds it untracked
	}
	return true
}

// rekey counts raw, from a load balancer, against the client its PROXY header named from now
// on, and drops the connection that displaces, if any (that client's oldest, past
// MaxPendingPerIP).
func (s *Server) rekey(raw net.Conn, client net.Addr) {
	s.mu.Lock()
	evicted := s.pending.rekey(raw, client)
	s.mu.Unlock()
	if evicted != nil {
		s.stats.drop(dropEvicted)
		_ = evicted.Close()
	}
}

// untrack reports whether c was still ours (eviction and shutdown close pending conns and
// forget them).
func (s *Server) untrack(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending.remove(c)
}

// closePending closes the connections still being sniffed, so that shutdown does not wait up to
// SniffTimeout for silent peers.
func (s *Server) closePending() {
	s.mu.Lock()
	s.closing = true
	conns := s.pending.takeAll()
	s.mu.Unlock()
	for _, c := range conns {
		s.stats.drop(dropShutdown)
		_ = c.Close()
	}
}

// serveConn sniffs raw and hands it over, or drops it.
func (s *Server) serveConn(raw net.Conn) {
	defer s.wg.Done()

	c, k, why, err := s.sniff(raw)
	if !s.untrack(raw) {
		return // shutdown closed it and counted it
	}
	if why != dropNone {
		s.drop(raw, why, err)
		return
	}
	_ = raw.SetDeadline(time.Time{}) // the sniff deadline is not the new owner's

	switch k {
	case kindHTTP:
		if !s.httpLn.offer(c, s.cfg.SniffTimeout) {
			s.drop(raw, dropHandoff, errors.New("http server not accepting"))
			return
		}
		s.stats.http.Add(1)
	case kindICETCP:
		if !s.iceLn.offer(c, s.cfg.SniffTimeout) {
			s.drop(raw, dropHandoff, errors.New("ICE-TCP listener not accepting"))
			return
		}
		s.stats.iceTCP.Add(1)
	case kindTURN:
		s.stats.turn.Add(1)
		s.cfg.TURN(c)
	}
}

// sniff reads the first bytes of raw under the sniff deadline, terminating TLS if they say so,
// and returns the connection to hand over (first bytes replayed) and where it goes, or why it
// is dropped.
func (s *Server) sniff(raw net.Conn) (net.Conn, kind, dropReason, error) {
	// One deadline for reads and writes covers the whole sniff, TLS handshake included: a peer
	// that stops reading mid-handshake is cut as surely as one that stops writing.
	now := time.Now()
	deadline := now.Add(s.cfg.SniffTimeout)
	if err := raw.SetDeadline(idleDeadline(now, s.cfg.FirstByteTimeout, s.cfg.SniffTimeout)); err != nil {
		return nil, 0, dropRead, err
	}
	fromBalancer := s.cfg.ProxyProtocolFrom != nil && s.cfg.ProxyProtocolFrom(peerIP(raw.RemoteAddr()))
	bufSize := peekBufSize
	if fromBalancer {
		bufSize = proxyBufSize
	}
	br := bufio.NewReaderSize(raw, bufSize)
	if _, err := br.Peek(1); err != nil {
		return nil, 0, readDropReason(err), err
	}
	if err := raw.SetDeadline(deadline); err != nil {
		return nil, 0, dropRead, err
	}
	conn := raw
	if s.cfg.ProxyProtocolFrom != nil {
		var why dropReason
		var err error
		if conn, why, err = s.proxyVerdict(raw, fromBalancer, br); why != dropNone {
			return nil, 0, why, err
		}
		if conn != raw {
			s.rekey(raw, conn.RemoteAddr())
		}
	}
	k, err := peekKind(br, classify)
	if err != nil {
		return nil, 0, readDropReason(err), err
	}
	c := net.Conn(&peekedConn{Conn: conn, r: br})
	switch k {
	case kindTURN:
		if s.cfg.TURN == nil {
			return nil, 0, dropNoTURN, nil
		}
		return c, k, dropNone, nil
	case kindICETCP, kindHTTP:
		return c, k, dropNone, nil
	}

	// kindTLS
	if s.tls == nil {
		return nil, 0, dropNoTLS, nil
	}
	tc := tls.Server(c, s.tls)
	// The context reaches GetCertificate as ClientHelloInfo.Context: a certificate source that
	// may block (Let's Encrypt issuing) can give up at the sniff deadline or at shutdown.
	hctx, cancel := context.WithDeadline(s.stopCtx, deadline)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		return nil, 0, dropTLSHandshake, err
	}
	s.stats.tls.Add(1)
	switch tc.ConnectionState().NegotiatedProtocol {
	case ALPNACME:
		// autocert answered the TLS-ALPN-01 challenge with the certificate it chose in the
		// handshake; the validator reads nothing more (RFC 8737 §3).
		s.stats.acme.Add(1)
		return nil, 0, dropACMEDone, nil
	case ALPNTURN:
		if s.cfg.TURN == nil {
			return nil, 0, dropNoTURN, nil
		}
		return tc, kindTURN, dropNone, nil
	case ALPNHTTP2:
		return tc, kindHTTP, dropNone, nil // bare *tls.Conn: net/http serves h2 only on that
	}
	// No ALPN (browsers' turns: URLs) or http/1.1: the first bytes inside tell TURN from HTTP.
	ibr := bufio.NewReaderSize(tc, peekBufSize)
	k, err = peekKind(ibr, classifyInTLS)
	if err != nil {
		return nil, 0, readDropReason(err), err
	}
	if k == kindTURN && s.cfg.TURN == nil {
		return nil, 0, dropNoTURN, nil
	}
	return &peekedConn{Conn: tc, r: ibr}, k, dropNone, nil
}

// peekBufSize is bufio's minimum; we never peek more than maxPeek bytes.
const peekBufSize = 16

// peekKind peeks at br until classify decides. Each round asks for one byte more than what has
// arrived, so it returns as soon as the bytes allow, however the peer splits its writes.
func peekKind(br *bufio.Reader, classify func([]byte) kind) (kind, error) {
	for n := 1; ; {
		if _, err := br.Peek(n); err != nil {
			return kindNeedMore, err
		}
		b, _ := br.Peek(br.Buffered())
		if k := classify(b); k != kindNeedMore {
			return k, nil
		}
		n = len(b) + 1 // ≤ maxPeek < peekBufSize: classify decides on maxPeek bytes
	}
}

func readDropReason(err error) dropReason {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return dropTimeout
	}
	return dropRead
}

// drop closes c and counts why. Only at debug level: scanners make this common, and the counts
// say more than lines do.
func (s *Server) drop(c net.Conn, why dropReason, err error) {
	s.stats.drop(why)
	_ = c.Close()
	if why != dropACMEDone && s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("connection dropped", "remote", c.RemoteAddr().String(), "reason", why.String(), "err", err)
	}
}

// tlsStateKey carries the TLS state of a connection whose first bytes were peeked inside TLS:
// net/http fills Request.TLS only for a bare *tls.Conn, so serveHTTP restores it.
type tlsStateKey struct{}

func connContext(ctx context.Context, c net.Conn) context.Context {
	if pc, ok := c.(*peekedConn); ok {
		if tc, ok := pc.Conn.(*tls.Conn); ok {
			st := tc.ConnectionState()
			return context.WithValue(ctx, tlsStateKey{}, &st)
		}
	}
	return ctx
}

// serveHTTP restores Request.TLS for peeked TLS connections, refuses plain HTTP when the port
// speaks TLS, and calls the configured handler.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
			r.TLS = st
		}
	}
	if r.TLS == nil && s.tls != nil {
		// Like net/http's answer to plain HTTP on an HTTPS port; signaling and REST carry
		// secrets, so there is no plain-text fallback. Redirects live on HTTP_PORT.
		w.Header().Set("Connection", "close")
		http.Error(w, "Client sent an HTTP request to an HTTPS server.", http.StatusBadRequest)
		return
	}
	s.cfg.HTTP.ServeHTTP(w, r)
}
