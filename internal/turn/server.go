package turn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	pionturn "github.com/pion/turn/v5"

	"github.com/parley/parley/internal/sendq"
)

// Liveness tells the TURN server whether a connection may still use its credentials. The session
// model implements it.
type Liveness interface {
	// Alive reports whether the connection (a participant) is still in its session. It is called
	// on every authenticated TURN request, from pion's goroutines, never with the TURN server's
	// lock held; it must be cheap and must not call back into the Server.
	Alive(connectionID string) bool
}

// LivenessFunc adapts a function to Liveness.
type LivenessFunc func(connectionID string) bool

// Alive implements Liveness.
func (f LivenessFunc) Alive(connectionID string) bool { return f(connectionID) }

// Server is the embedded TURN server. Create it with New, hand it client connections with
// HandleConn (or ServeTCP), mint credentials with Credentials, and call Revoke when a participant
// leaves. All methods are safe for concurrent use.
type Server struct {
	cfg     Config
	live    Liveness
	log     *slog.Logger
	policy  *peerPolicy
	handoff *handoffListener
	udp     net.PacketConn // nil unless Config.UDPAddr is set
	pion    *pionturn.Server

	mu      sync.Mutex
	closed  bool
	conns   map[string]*connState // connection ID → state, present while credentials are valid
	handles map[string]*connState // credential handle → state
	relays  map[*relayConn]struct{}
	// relayByAddr finds a relay by its relayed address, for pion's channel events.
	relayByAddr map[netip.AddrPort]*relayConn
	tcp         map[string]*tcpConn // fiveTupleKey → client connection
	groups      groupCounts         // allocations per session and source, for shares
	done        relayTotals         // counters of relays already closed

	allocationsTotal atomic.Uint64
	authFailures     atomic.Uint64
	quotaRejections  atomic.Uint64
	tcpRelayRefusals atomic.Uint64
	revocations      atomic.Uint64

	udpErrorsSuppressed atomic.Uint64
	clientQ             sendq.Counters // totals of the TCP/TLS client send queues

	closeOnce sync.Once
	closeErr  error
}

// connState is what the server knows about one connection that holds credentials.
// All fields except id and handle are guarded by Server.mu.
type connState struct {
	id     string
	handle string
	relays map[*relayConn]struct{}
	tcp    map[*tcpConn]struct{}
	// limit, session and source size the credential's share (share.go); set by quota before
	// each Allocate, session and source only while it holds no allocation.
	limit   int
	session string
	source  netip.Prefix
}

type relayTotals struct {
	toPeerPackets, toPeerBytes, fromPeerPackets, fromPeerBytes, dropped uint64
}

// New checks cfg, binds the TURN/UDP socket if one is configured, and starts the server. live is
// required. A nil log discards logs.
func New(cfg Config, live Liveness, log *slog.Logger) (*Server, error) {
	if live == nil {
		return nil, errors.New("turn: nil Liveness")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := cfg.withDefaults()
	policy, perr := newPeerPolicy(cfg.MediaAddrs, cfg.MediaAliases)
	if err = errors.Join(err, perr); err != nil {
		return nil, err
	}

	s := &Server{
		cfg:     cfg,
		live:    live,
		log:     log,
		policy:  policy,
		handoff: newHandoffListener(),
		conns:   map[string]*connState{},
		handles: map[string]*connState{},
		relays:  map[*relayConn]struct{}{},
		tcp:     map[string]*tcpConn{},
		groups:  groupCounts{bySession: map[string]int{}, bySource: map[netip.Prefix]int{}},

		relayByAddr: map[netip.AddrPort]*relayConn{},
	}

	gen := relayGenerator{s: s}
	perm := func(_ net.Addr, peer net.IP) bool { return s.policy.allowIP(peer) }
	pcfg := pionturn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   s.authenticate,
		QuotaHandler:  s.quota,
		LoggerFactory: pionLoggerFactory(log),
		EventHandler: pionturn.EventHandler{
			OnAuth:              s.onAuth,
			OnAllocationCreated: s.onAllocationCreated,
			OnAllocationDeleted: s.onAllocationDeleted,
			OnChannelCreated:    s.onChannelCreated,
			OnChannelDeleted:    s.onChannelDeleted,
		},
		ListenerConfigs: []pionturn.ListenerConfig{{
			Listener:              s.handoff,
			RelayAddressGenerator: gen,
			PermissionHandler:     perm,
		}},
	}
	if cfg.UDPAddr != "" {
		// Bind before reporting ready: a port clash is a start-up error, not a log line later.
		s.udp, err = net.ListenPacket("udp", cfg.UDPAddr)
		if err != nil {
			return nil, fmt.Errorf("turn: listen on UDPAddr %q: %w", cfg.UDPAddr, err)
		}
		pcfg.PacketConnConfigs = []pionturn.PacketConnConfig{{
			PacketConn:            newUDPGuard(s.udp, func() { s.udpErrorsSuppressed.Add(1) }),
			RelayAddressGenerator: gen,
			PermissionHandler:     perm,
		}}
	}
	s.pion, err = pionturn.NewServer(pcfg)
	if err != nil {
		if s.udp != nil {
			_ = s.udp.Close()
		}
		return nil, fmt.Errorf("turn: start pion server: %w", err)
	}
	log.Info("turn server started", "realm", cfg.Realm, "relay_ip", cfg.RelayIP.String(),
		"media", fmt.Sprint(cfg.MediaAddrs), "udp", s.UDPAddr())
	return s, nil
}

// UDPAddr returns the bound TURN/UDP address, or nil if TURN/UDP is disabled.
func (s *Server) UDPAddr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// Realm returns the realm clients authenticate in.
func (s *Server) Realm() string { return s.cfg.Realm }

// Revoke ends a connection's TURN access, for a participant that left or was evicted. New
// requests with its credentials get 401, and its allocations and the TURN/TCP or TURN/TLS
// connections carrying them are closed before Revoke returns. Revoking an unknown or already
// revoked connection does nothing. Credentials may be called again afterwards (a reconnecting
// participant); the new credentials share nothing with the old ones.
func (s *Server) Revoke(connectionID string) {
	s.mu.Lock()
	st := s.conns[connectionID]
	s.mu.Unlock()
	if st != nil {
		s.revoke(st)
	}
}

// revoke forgets st and closes everything it holds. The sockets are closed outside s.mu (their
// Close takes s.mu, and closing a relay makes pion take its manager lock).
func (s *Server) revoke(st *connState) {
	s.mu.Lock()
	if s.conns[st.id] == st {
		delete(s.conns, st.id)
		s.revocations.Add(1)
	}
	delete(s.handles, st.handle)
	relays := make([]*relayConn, 0, len(st.relays))
	for rc := range st.relays {
		relays = append(relays, rc)
	}
	conns := make([]*tcpConn, 0, len(st.tcp))
	for c := range st.tcp {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, c := range conns {
		_ = c.Close()
	}
	for _, rc := range relays {
		_ = rc.Close()
	}
	if len(relays) > 0 || len(conns) > 0 {
		s.log.Debug("turn credentials revoked", "connection", st.id, "allocations", len(relays))
	}
}

// Run sweeps, once a minute, connections that Liveness reports dead but nobody revoked (a
// safety net: the session model should call Revoke), until ctx ends; then it closes the server.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return s.Close()
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep revokes every connection Liveness reports dead. Liveness is called without s.mu.
func (s *Server) sweep() {
	s.mu.Lock()
	states := make([]*connState, 0, len(s.conns))
	for _, st := range s.conns {
		states = append(states, st)
	}
	s.mu.Unlock()
	for _, st := range states {
		if !s.live.Alive(st.id) {
			s.revoke(st)
		}
	}
}

// Close stops the server: no more connections are accepted, and every client connection, relay
// socket and the TURN/UDP socket is closed. Idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		relays := make([]*relayConn, 0, len(s.relays))
		for rc := range s.relays {
			relays = append(relays, rc)
		}
		conns := make([]*tcpConn, 0, len(s.tcp))
		for _, c := range s.tcp {
			conns = append(conns, c)
		}
		s.mu.Unlock()

		// pion closes the hand-off listener and the UDP socket; its read loops end with them.
		s.closeErr = s.pion.Close()
		for _, c := range conns {
			_ = c.Close()
		}
		for _, rc := range relays {
			_ = rc.Close()
		}
	})
	return s.closeErr
}

// onAuth counts integrity failures (a wrong password). pion calls it only after our AuthHandler
// accepted the username; our own refusals are counted in authFail.
func (s *Server) onAuth(_, _ net.Addr, _, _, _, _ string, verdict bool) {
	if !verdict {
		s.authFailures.Add(1)
	}
}

// onAllocationCreated ties a TCP/TLS client connection to the connection that allocated on it, so
// Revoke can close it, and stops its idle timer.
func (s *Server) onAllocationCreated(src, dst net.Addr, _, userID, _ string, _ net.Addr, _ int) {
	key := fiveTupleKey(src, dst)
	s.mu.Lock()
	tc := s.tcp[key]
	if tc == nil { // TURN/UDP, or the connection is already gone
		s.mu.Unlock()
		return
	}
	st := s.conns[userID]
	if st != nil {
		tc.idle.Stop()
		tc.owner = st
		st.tcp[tc] = struct{}{}
	}
	s.mu.Unlock()
	if st == nil {
		// Revoked between the allocation and this event: the relay is closed already, close
		// the connection too.
		_ = tc.Close()
	}
}

// onAllocationDeleted unties the client connection and restarts its idle timer: a TCP client whose
// allocation expired or was deallocated may allocate again, but must not sit idle forever.
func (s *Server) onAllocationDeleted(src, dst net.Addr, _, _, _ string) {
	key := fiveTupleKey(src, dst)
	s.mu.Lock()
	defer s.mu.Unlock()
	tc := s.tcp[key]
	if tc == nil {
		return
	}
	if tc.owner != nil {
		delete(tc.owner.tcp, tc)
		tc.owner = nil
	}
	tc.idle.Reset(s.cfg.IdleTimeout)
}

// Stats is a snapshot of the server's counters, for metrics. Counters only grow; the gauges
// (Allocations, Connections, Clients) go both ways.
type Stats struct {
	// Allocations is the number of live relay allocations (gauge).
	Allocations int
	// Connections is the number of connections holding valid credentials (gauge).
	Connections int
	// Clients is the number of TURN/TCP and TURN/TLS client connections open (gauge).
	Clients int
	// AllocationsTotal counts allocations ever created.
	AllocationsTotal uint64
	// ToPeerPackets and ToPeerBytes count datagrams relayed from clients to the SFU.
	ToPeerPackets, ToPeerBytes uint64
	// FromPeerPackets and FromPeerBytes count datagrams relayed from the SFU to clients; over
	// TCP/TLS, not those the client's send queue dropped (their bytes to within padding).
	FromPeerPackets, FromPeerBytes uint64
	// DroppedForbidden counts datagrams the relay allow-list dropped, in either direction.
	DroppedForbidden uint64
	// AuthFailures counts refused authenticated requests: unknown, malformed, expired, revoked or
	// dead credentials, wrong realm, and wrong passwords.
	AuthFailures uint64
	// QuotaRejections counts allocations refused by the per-connection or global quota.
	QuotaRejections uint64
	// TCPRelayRefusals counts refused RFC 6062 TCP allocations and Connect requests.
	TCPRelayRefusals uint64
	// Revocations counts connections whose credentials were revoked (by Revoke, or because
	// Liveness reported them dead).
	Revocations uint64
	// UDPErrorsSuppressed counts STUN error responses (mostly 401s) not sent on TURN/UDP because
	// their destination exceeded its rate (see udpGuard): a sign of reflection attempts.
	UDPErrorsSuppressed uint64
	// ClientQueue counts the frames written to TURN/TCP and TURN/TLS clients: sent, and dropped
	// by the connection's send queue as stale or over its bound; MediaDropped are relayed
	// datagrams (ChannelData of the fast path).
	ClientQueue sendq.Stats
}

// Stats returns a snapshot of the counters. A datagram relayed while its allocation closes may be
// missed by the byte and packet counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	t := s.done
	st := Stats{Allocations: len(s.relays), Connections: len(s.conns), Clients: len(s.tcp)}
	for rc := range s.relays {
		t.toPeerPackets += rc.toPeerPackets.Load()
		t.toPeerBytes += rc.toPeerBytes.Load()
		t.fromPeerPackets += rc.fromPeerPackets.Load()
		t.fromPeerBytes += rc.fromPeerBytes.Load()
		t.dropped += rc.dropped.Load()
	}
	s.mu.Unlock()
	st.AllocationsTotal = s.allocationsTotal.Load()
	st.ToPeerPackets, st.ToPeerBytes = t.toPeerPackets, t.toPeerBytes
	st.FromPeerPackets, st.FromPeerBytes = t.fromPeerPackets, t.fromPeerBytes
	st.DroppedForbidden = t.dropped
	st.AuthFailures = s.authFailures.Load()
	st.QuotaRejections = s.quotaRejections.Load()
	st.TCPRelayRefusals = s.tcpRelayRefusals.Load()
	st.Revocations = s.revocations.Load()
	st.UDPErrorsSuppressed = s.udpErrorsSuppressed.Load()
	st.ClientQueue = s.clientQ.Stats()
	// A dropped datagram was counted when read from the peer, but never reached the client.
	drop := st.ClientQueue.MediaDropped
	st.FromPeerPackets -= min(st.FromPeerPackets, drop.Frames)
	st.FromPeerBytes -= min(st.FromPeerBytes, drop.Bytes-min(drop.Bytes, channelDataHeader*drop.Frames))
	return st
}

// ClientQueue returns the send queue toward the TURN/TCP or TURN/TLS client of the allocation
// whose relayed address is relay, once that client has bound a channel (browsers send media over
// channels); nil otherwise, and for TURN/UDP clients.
func (s *Server) ClientQueue(relay netip.AddrPort) *sendq.Conn {
	s.mu.Lock()
	rc := s.relayByAddr[unmapAddrPort(relay)]
	s.mu.Unlock()
	if rc == nil {
		return nil
	}
	if tc := rc.client.Load(); tc != nil {
		return tc.out
	}
	return nil
}

// IsRelayAddr reports whether addr is the relayed address of a live allocation: the SFU sees it as
// the remote end of a participant who reaches us through TURN, which is worth telling apart from a
// direct path when someone asks why their call is slow.
func (s *Server) IsRelayAddr(addr netip.AddrPort) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.conns {
		for rc := range st.relays {
			if la, ok := rc.pc.LocalAddr().(*net.UDPAddr); ok && la.AddrPort().Addr().Unmap() == addr.Addr().Unmap() && la.AddrPort().Port() == addr.Port() {
				return true
			}
		}
	}
	return false
}
