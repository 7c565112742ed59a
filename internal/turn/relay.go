package turn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	pionturn "github.com/pion/turn/v5"
)

var (
	// errForbiddenPeer is returned by a relay WriteTo to a destination outside the allow-list.
	// pion turns it into a debug log line and moves on; the datagram is not sent.
	errForbiddenPeer = errors.New("turn: relay destination is not a media address")
	// errTCPRelay refuses RFC 6062 allocations: browsers always ask for UDP relays
	// (REQUESTED-TRANSPORT 17, even over TCP/TLS), so TCP relays would only widen the attack
	// surface (a SOCKS-like proxy to SSH, Redis, metadata services…).
	errTCPRelay = errors.New("turn: TCP relay allocations (RFC 6062) are not offered")
	// errQuota is returned when a connection or the node is at its allocation limit.
	errQuota = errors.New("turn: allocation quota reached")
	// errNoCredential is returned when an allocation arrives for a connection that is no longer
	// known (revoked between authentication and allocation).
	errNoCredential = errors.New("turn: no live credential for allocation")
	// errFamily is returned for an allocation of an address family we have no relay IP for.
	errFamily = errors.New("turn: requested address family differs from the relay IP")
)

// relayConn wraps the UDP socket of one allocation and enforces the allow-list on every datagram,
// whatever pion's permissions say: pion grants permissions per IP, we need ip:port.
//
// Concurrency: pion calls ReadFrom from the allocation's single relay goroutine and WriteTo from
// the client connection's read loop; Close may come from anywhere (pion, Revoke, Server.Close).
// The counters are per conn, so the two directions never contend on a shared cache line; Stats
// sums them.
type relayConn struct {
	pc     *net.UDPConn
	policy *peerPolicy
	srv    *Server
	owner  *connState // never changes; nil for pion's EVEN-PORT probe, which is not counted

	// reportAs[i] is the index into policy.named that datagrams from local socket i are reported
	// as: the form (local address or announced alias) the client last sent to, so that its ICE
	// checks see replies from the address they targeted.
	reportAs []atomic.Int32

	// addr is the relayed address, the key of Server.relayByAddr.
	addr netip.AddrPort
	// chanFor[i] is the channel number bound to policy.named[i] on this allocation, 0 for none,
	// and client the TURN/TCP or TURN/TLS connection that carries it: the fast path's mirror of
	// pion's channel bindings (see fastpath.go). fbuf is ReadFrom's buffer while a channel is
	// bound, with room for the ChannelData header in front and the padding behind.
	chanFor []atomic.Uint32
	client  atomic.Pointer[tcpConn]
	fbuf    []byte

	toPeerPackets, toPeerBytes     atomic.Uint64
	fromPeerPackets, fromPeerBytes atomic.Uint64
	dropped                        atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

var _ net.PacketConn = (*relayConn)(nil)

func newRelayConn(pc *net.UDPConn, policy *peerPolicy, srv *Server, owner *connState) *relayConn {
	rc := &relayConn{pc: pc, policy: policy, srv: srv, owner: owner, addr: relayAddrOf(pc)}
	rc.reportAs = make([]atomic.Int32, len(policy.locals))
	rc.chanFor = make([]atomic.Uint32, len(policy.named))
	// Until the client names a form, report the local address itself: newPeerPolicy puts each
	// local address in named at the index of its first appearance.
	for i := range policy.named {
		n := policy.named[i]
		if n.addr == policy.locals[n.local] {
			rc.reportAs[n.local].Store(int32(i))
		}
	}
	return rc
}

// ReadFrom returns the next datagram from a media address. Datagrams from anyone else (another
// process on the host, a spoofer, a scanner) are dropped and counted, never shown to the client.
// Datagrams for a channel bound by a TURN/TCP or TURN/TLS client are sent to it here, framed as
// ChannelData, and not returned (fastpath.go).
func (rc *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		fast := rc.client.Load() != nil
		buf := p
		if fast {
			if len(rc.fbuf) < channelDataHeader+len(p)+3 {
				rc.fbuf = make([]byte, channelDataHeader+len(p)+3)
			}
			buf = rc.fbuf[channelDataHeader : channelDataHeader+len(p)]
		}
		n, src, err := rc.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return 0, nil, err
		}
		i, ok := rc.policy.localIndex(src)
		if !ok {
			rc.dropped.Add(1)
			continue
		}
		rc.fromPeerPackets.Add(1)
		rc.fromPeerBytes.Add(uint64(n))
		named := rc.reportAs[i].Load()
		if fast {
			if rc.relayToClient(n, named) {
				continue
			}
			copy(p, buf[:n])
		}
		return n, rc.policy.named[named].udp, nil
	}
}

// WriteTo sends a datagram to a media address; anything else is dropped with errForbiddenPeer.
func (rc *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	dst, ok := addrPortOf(addr)
	if !ok {
		rc.dropped.Add(1)
		return 0, errForbiddenPeer
	}
	i, ok := rc.policy.route(dst)
	if !ok {
		rc.dropped.Add(1)
		return 0, errForbiddenPeer
	}
	return rc.sendTo(p, i)
}

// sendTo sends a datagram to policy.named[i], which the caller found with policy.route.
func (rc *relayConn) sendTo(p []byte, i int) (int, error) {
	np := &rc.policy.named[i]
	if rc.reportAs[np.local].Load() != int32(i) {
		rc.reportAs[np.local].Store(int32(i))
	}
	n, err := rc.pc.WriteToUDPAddrPort(p, rc.policy.locals[np.local])
	if err == nil {
		rc.toPeerPackets.Add(1)
		rc.toPeerBytes.Add(uint64(n))
	}
	return n, err
}

// Close closes the socket and gives the allocation's quota back. Idempotent. Closing is also how
// Revoke kills an allocation: pion's relay goroutine sees ReadFrom fail and deletes it.
func (rc *relayConn) Close() error {
	rc.closeOnce.Do(func() {
		rc.closeErr = rc.pc.Close()
		rc.srv.releaseRelay(rc)
	})
	return rc.closeErr
}

// LocalAddr is the relayed transport address (XOR-RELAYED-ADDRESS).
func (rc *relayConn) LocalAddr() net.Addr { return rc.pc.LocalAddr() }

// SetDeadline implements net.PacketConn.
func (rc *relayConn) SetDeadline(t time.Time) error { return rc.pc.SetDeadline(t) }

// SetReadDeadline implements net.PacketConn.
func (rc *relayConn) SetReadDeadline(t time.Time) error { return rc.pc.SetReadDeadline(t) }

// SetWriteDeadline implements net.PacketConn.
func (rc *relayConn) SetWriteDeadline(t time.Time) error { return rc.pc.SetWriteDeadline(t) }

// relayGenerator is the pion RelayAddressGenerator. It binds one UDP socket per allocation on
// RelayIP, wrapped in a relayConn, and refuses TCP relays. The quota is enforced here under the
// same lock as Revoke, so an allocation can neither exceed a limit through a race with another
// Allocate nor slip in between Revoke and the auth check that preceded it.
type relayGenerator struct{ s *Server }

var _ pionturn.RelayAddressGenerator = relayGenerator{}

// Validate implements pionturn.RelayAddressGenerator.
func (g relayGenerator) Validate() error { return nil }

// AllocatePacketConn implements pionturn.RelayAddressGenerator. pion answers an error with 508
// (Insufficient Capacity).
func (g relayGenerator) AllocatePacketConn(c pionturn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	pc, addr, err := g.allocate(c)
	if err != nil {
		g.s.log.Debug("turn relay allocation refused", "connection", c.UserID, "network", c.Network, "err", err)
	}
	return pc, addr, err
}

func (g relayGenerator) allocate(c pionturn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	s := g.s
	var relayIP netip.Addr
	for _, ip := range []netip.Addr{s.cfg.RelayIP, s.cfg.RelayIP6} {
		if ip.IsValid() && (c.Network == "udp4" && ip.Is4() || c.Network == "udp6" && ip.Is6()) {
			relayIP = ip
		}
	}
	if !relayIP.IsValid() {
		return nil, nil, fmt.Errorf("turn: relay network %q: %w", c.Network, errFamily)
	}
	// A specific port arrives only through EVEN-PORT / RESERVATION-TOKEN (RFC 5766 §6.2, used by
	// SIP-style clients and coturn's uclient, never by browsers). Honouring it gives a client
	// nothing but a port number on RelayIP, behind the same wrapper; ports below 1024 are never
	// handed out, so a client cannot squat a privileged port if we run as root.
	port := uint16(0)
	if c.RequestedPort >= 1024 && c.RequestedPort <= 65535 {
		port = uint16(c.RequestedPort)
	}
	laddr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(relayIP, port))

	if c.UserID == "" {
		// pion's EVEN-PORT probe (allocation.Manager.GetRandomEvenPort): it binds, reads the
		// port and closes at once, before any allocation exists. Every real allocation carries
		// the user our AuthHandler returned, which is never empty. The socket is still wrapped
		// (and not counted), so even a future pion that relayed on it would hit the allow-list.
		pc, err := net.ListenUDP(c.Network, laddr)
		if err != nil {
			return nil, nil, fmt.Errorf("turn: probe relay port on %s: %w", laddr, err)
		}
		return newRelayConn(pc, s.policy, s, nil), pc.LocalAddr(), nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, net.ErrClosed
	}
	st := s.conns[c.UserID]
	if st == nil {
		return nil, nil, errNoCredential
	}
	if !s.shareOKLocked(st) {
		s.quotaRejections.Add(1)
		return nil, nil, errQuota
	}
	// Binding under the lock keeps the quota check and the insertion atomic; it is one syscall.
	pc, err := net.ListenUDP(c.Network, laddr)
	if err != nil {
		return nil, nil, fmt.Errorf("turn: bind relay on %s: %w", laddr, err)
	}
	rc := newRelayConn(pc, s.policy, s, st)
	st.relays[rc] = struct{}{}
	s.relays[rc] = struct{}{}
	s.countLocked(st, 1)
	s.relayByAddr[rc.addr] = rc
	s.allocationsTotal.Add(1)
	return rc, pc.LocalAddr(), nil
}

// AllocateListener implements pionturn.RelayAddressGenerator: TCP relays are refused (pion answers
// 508 Insufficient Capacity).
func (g relayGenerator) AllocateListener(pionturn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	g.s.tcpRelayRefusals.Add(1)
	return nil, nil, errTCPRelay
}

// AllocateConn implements pionturn.RelayAddressGenerator: no outbound TCP (RFC 6062 Connect).
func (g relayGenerator) AllocateConn(pionturn.AllocateConnConfig) (net.Conn, error) {
	g.s.tcpRelayRefusals.Add(1)
	return nil, errTCPRelay
}

// quota is pion's QuotaHandler: checked before the relay is allocated, so that an over-quota
// Allocate gets the proper 486 (Allocation Quota Reached). relayGenerator checks again under the
// lock, since two Allocates may pass here together.
func (s *Server) quota(userID, _ string, src net.Addr) bool {
	session, pcs := "", -1
	if fp, ok := s.live.(Footprint); ok {
		session, pcs = fp.Footprint(userID) // outside our lock, as Liveness
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.conns[userID]
	if st == nil {
		return true // relayGenerator refuses it with errNoCredential
	}
	st.limit = s.credentialLimit(pcs)
	if len(st.relays) == 0 {
		// A credential's allocations count against the session and address it first
		// allocated from; regrouping one with relays would unbalance the counts.
		st.session, st.source = session, sourceOf(src)
	}
	if s.shareOKLocked(st) {
		return true
	}
	s.quotaRejections.Add(1)
	return false
}

// releaseRelay forgets a closed relay and folds its counters into the totals.
func (s *Server) releaseRelay(rc *relayConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.relays[rc]; !ok {
		return
	}
	delete(s.relays, rc)
	delete(s.relayByAddr, rc.addr)
	delete(rc.owner.relays, rc)
	s.countLocked(rc.owner, -1)
	rc.client.Store(nil)
	s.done.toPeerPackets += rc.toPeerPackets.Load()
	s.done.toPeerBytes += rc.toPeerBytes.Load()
	s.done.fromPeerPackets += rc.fromPeerPackets.Load()
	s.done.fromPeerBytes += rc.fromPeerBytes.Load()
	s.done.dropped += rc.dropped.Load()
}
