package sfu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"

	"github.com/parley/parley/internal/mediaaddr"
)

// udpMuxSet is the media port on every address it is bound on: one pion UDPMuxDefault per
// address, as pion's MultiUDPMuxDefault, but addresses come and go while it runs. pion's
// NewMultiUDPMuxFromPort binds every address once at creation and fails as a whole when one
// cannot be bound, such as an IPv6 address still in duplicate address detection; an address that
// appears later would never be served. ICE agents read GetListenAddresses when they gather, so a
// PeerConnection created after an address was added offers it.
type udpMuxSet struct {
	port      int
	logger    logging.LeveledLogger
	bufferLen int

	mu     sync.RWMutex
	muxes  map[netip.Addr]*ice.UDPMuxDefault // by the IP it is bound on
	closed bool
}

var _ ice.UDPMux = (*udpMuxSet)(nil)

func newUDPMuxSet(port int, logger logging.LeveledLogger) *udpMuxSet {
	return &udpMuxSet{port: port, logger: logger, bufferLen: 4 << 20, muxes: map[netip.Addr]*ice.UDPMuxDefault{}}
}

// add binds the media port on ip; binding an address twice is a no-op.
func (m *udpMuxSet) add(ip netip.Addr) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return net.ErrClosed
	}
	if _, ok := m.muxes[ip]; ok {
		return nil
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(m.port))))
	if err != nil {
		return err
	}
	_ = conn.SetReadBuffer(m.bufferLen)
	_ = conn.SetWriteBuffer(m.bufferLen)
	m.muxes[ip] = ice.NewUDPMuxDefault(ice.UDPMuxParams{Logger: m.logger, UDPConn: conn})
	return nil
}

// remove closes the port on ip: the address is gone, and the PeerConnections that used it lose
// that candidate pair only.
func (m *udpMuxSet) remove(ip netip.Addr) {
	m.mu.Lock()
	mux, ok := m.muxes[ip]
	delete(m.muxes, ip)
	m.mu.Unlock()
	if ok {
		_ = mux.Close()
	}
}

// bound lists the IPs the port is bound on.
func (m *udpMuxSet) bound() []netip.Addr {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]netip.Addr, 0, len(m.muxes))
	for ip := range m.muxes {
		out = append(out, ip)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// GetConn implements ice.UDPMux: the muxed conn for ufrag on the local address addr.
func (m *udpMuxSet) GetConn(ufrag string, addr net.Addr) (net.PacketConn, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return nil, fmt.Errorf("media port: %v is not a UDP address", addr)
	}
	m.mu.RLock()
	mux, ok := m.muxes[ua.AddrPort().Addr().Unmap()]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("media port: not bound on %v", addr)
	}
	c, err := mux.GetConn(ufrag, addr)
	if err == nil && ua.IP.IsLoopback() && m.boundBeyondLoopback(ua.AddrPort().Addr().Unmap().Is4()) {
		c = loopbackOnly{c}
	}
	return c, err
}

// boundBeyondLoopback tells whether the port is also bound on an address of that family that is
// not loopback: a peer on this machine then reaches that one, and our loopback candidate need
// reach nothing else. Bound on loopback alone (the benches), it is the only way in, and a
// browser, which checks from its host address, needs its answers.
func (m *udpMuxSet) boundBeyondLoopback(v4 bool) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for ip := range m.muxes {
		if !ip.IsLoopback() && ip.Is4() == v4 {
			return true
		}
	}
	return false
}

// errLoopbackOnly refuses a packet from a loopback candidate to another address.
var errLoopbackOnly = errors.New("media port: a loopback candidate only reaches loopback addresses")

// loopbackOnly keeps a loopback candidate (dev mode announces one) to loopback peers, when the
// port has another address for the rest (boundBeyondLoopback). Linux
// delivers 127.0.0.1 → 192.0.2.2 on the same machine, so ICE would pair our 127.0.0.1 with a
// browser's host address. Firefox answers our check from there but never checks back to a
// loopback address (media.peerconnection.ice.loopback is off): when we, controlling, nominated
// that pair first (our host candidates tie), Firefox stayed in "checking" and its subscription
// never connected (4 of 6 in a row against the dev server).
type loopbackOnly struct{ net.PacketConn }

func (c loopbackOnly) WriteTo(p []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok && !ua.IP.IsLoopback() {
		return 0, errLoopbackOnly
	}
	return c.PacketConn.WriteTo(p, addr)
}

// RemoveConnByUfrag implements ice.UDPMux.
func (m *udpMuxSet) RemoveConnByUfrag(ufrag string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, mux := range m.muxes {
		mux.RemoveConnByUfrag(ufrag)
	}
}

// GetListenAddresses implements ice.UDPMux, in a stable order so candidates are too.
func (m *udpMuxSet) GetListenAddresses() []net.Addr {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]net.Addr, 0, len(m.muxes))
	for _, mux := range m.muxes {
		out = append(out, mux.LocalAddr())
	}
	slices.SortFunc(out, func(a, b net.Addr) int {
		return a.(*net.UDPAddr).AddrPort().Compare(b.(*net.UDPAddr).AddrPort())
	})
	return out
}

// Close implements ice.UDPMux: it closes every port and refuses new ones.
func (m *udpMuxSet) Close() error {
	m.mu.Lock()
	muxes := m.muxes
	m.muxes, m.closed = map[netip.Addr]*ice.UDPMuxDefault{}, true
	m.mu.Unlock()
	var errs []error
	for _, mux := range muxes {
		errs = append(errs, mux.Close())
	}
	return errors.Join(errs...)
}

// bindMedia binds the media port at start-up. Addresses the operator listed
// (PARLEY_MEDIA_LISTEN_IPS) must all bind. Otherwise every usable address is tried, one that fails
// is a warning, and the SFU watches for addresses that appear later (watchAddrs).
func (s *SFU) bindMedia() error {
	if len(s.cfg.ListenIPs) > 0 {
		for _, ip := range s.cfg.ListenIPs {
			if err := s.udpMux.add(ip.Unmap()); err != nil {
				return fmt.Errorf("bind media port udp/%d on %s (PARLEY_MEDIA_LISTEN_IPS): %w", s.cfg.Port, ip, err)
			}
		}
		return nil
	}
	if err := s.syncAddrs(true); err != nil {
		return err
	}
	if bound := s.udpMux.bound(); len(bound) > 0 {
		s.log.Info("media port bound", "port", s.cfg.Port, "addrs", bound)
	} else {
		s.log.Warn(fmt.Sprintf("media port udp/%d is bound on no address yet: it will be when an interface gets one", s.cfg.Port))
	}
	return nil
}

// syncAddrs binds the media port on every usable address not yet bound and releases addresses that
// are gone. s.skipped remembers what was said about each skipped address, so a burst of changes
// does not repeat it. Only New and then watchAddrs call it, one after the other.
func (s *SFU) syncAddrs(startup bool) error {
	addrs, err := mediaaddr.List()
	if err != nil {
		return err
	}
	want, skip := mediaaddr.Select(addrs, mediaaddr.Policy{Loopback: s.cfg.Loopback})
	for _, sk := range skip {
		if s.skipped[sk.Addr.IP] != sk.Reason {
			s.log.Debug("media port not bound on an address", "addr", sk.Addr.IP, "interface", sk.Addr.Interface, "reason", sk.Reason)
			s.skipped[sk.Addr.IP] = sk.Reason
		}
	}
	bound := s.udpMux.bound()
	for _, ip := range want {
		if slices.Contains(bound, ip) {
			continue
		}
		if err := s.udpMux.add(ip); err != nil {
			s.log.Warn(fmt.Sprintf("media port udp/%d not bound on %s: %v", s.cfg.Port, ip, err))
			continue
		}
		delete(s.skipped, ip)
		if !startup { // New's caller reports the start-up set
			s.log.Info("media port bound on a new address", "addr", ip, "port", s.cfg.Port)
		}
	}
	for _, ip := range bound {
		present := false
		for _, a := range addrs {
			present = present || a.IP.Unmap() == ip
		}
		if !present {
			s.log.Info("media port released on an address that is gone", "addr", ip, "port", s.cfg.Port)
			s.udpMux.remove(ip)
		}
	}
	return nil
}

// watchAddrs keeps the bound addresses in step with the host's until ctx ends (Close).
func (s *SFU) watchAddrs(ctx context.Context) {
	defer s.wg.Done()
	err := mediaaddr.Watch(ctx, func() {
		if err := s.syncAddrs(false); err != nil {
			s.log.Warn("media addresses not updated", "error", err)
		}
	})
	if err != nil {
		s.log.Warn("media port will not follow address changes", "error", err)
	}
}
