package turn

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// peerPolicy is the relay allow-list. It is built once in New and never changes, so the per-packet
// checks read it without locks.
//
// Why an allow-list and not a deny-list of address classes (loopback, private, link-local, …):
// on-prem nodes have private media IPs, so class filters would block the one peer we need, while
// still letting the relay reach the whole public Internet. Every bypass trick in coturn's CVE
// history (0.0.0.0, [::], ::1, ::ffff:127.0.0.1, 6to4 and NAT64 encodings) is simply "not on the
// list" once the address is unmapped.
type peerPolicy struct {
	// ips are the distinct IPs a client may name in CreatePermission / ChannelBind. pion's
	// PermissionHandler sees only the IP, never the port (RFC 5766 §8: permissions are per IP).
	ips []netip.Addr
	// named are the exact ip:port destinations a client may send to, as the client names them:
	// every local media address, plus every announced alias of one.
	named []namedPeer
	// locals are the sockets the relay really talks to (Config.MediaAddrs).
	locals []netip.AddrPort
}

// namedPeer is one destination a client may name, and the local socket it is delivered to.
type namedPeer struct {
	addr  netip.AddrPort
	local int // index into peerPolicy.locals
	// udp is addr as a *net.UDPAddr, built once: ReadFrom hands it to pion for every datagram, so
	// the hot path allocates nothing. pion only reads it.
	udp *net.UDPAddr
}

// newPeerPolicy validates the media addresses and builds the allow-list. aliases maps an announced
// address (the one in the SFU's ICE candidates, e.g. a 1:1-NAT public IP) to the local one.
func newPeerPolicy(media []netip.AddrPort, aliases map[netip.AddrPort]netip.AddrPort) (*peerPolicy, error) {
	if len(media) == 0 {
		return nil, fmt.Errorf("turn: MediaAddrs is empty: the relay would have nowhere to go")
	}
	p := &peerPolicy{}
	for _, m := range media {
		m = unmapAddrPort(m)
		if err := checkMediaAddr(m); err != nil {
			return nil, fmt.Errorf("turn: MediaAddrs %s: %w", m, err)
		}
		if slices.Contains(p.locals, m) {
			continue
		}
		p.locals = append(p.locals, m)
		p.add(m, len(p.locals)-1)
	}
	// Sorted so that the configuration, not map order, decides the table; it only matters for
	// reproducible tests.
	keys := make([]netip.AddrPort, 0, len(aliases))
	for k := range aliases {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b netip.AddrPort) int { return a.Compare(b) })
	for _, announced := range keys {
		local := unmapAddrPort(aliases[announced])
		announced = unmapAddrPort(announced)
		if err := checkMediaAddr(announced); err != nil {
			return nil, fmt.Errorf("turn: MediaAliases key %s: %w", announced, err)
		}
		i := slices.Index(p.locals, local)
		if i < 0 {
			return nil, fmt.Errorf("turn: MediaAliases %s → %s: target is not one of MediaAddrs", announced, local)
		}
		// An alias naming a media address for itself (announce and listen IPs both 127.0.0.1, say)
		// adds nothing; only one name for two different sockets is a contradiction.
		if j := slices.IndexFunc(p.named, func(n namedPeer) bool { return n.addr == announced }); j >= 0 {
			if p.named[j].local == i {
				continue
			}
			return nil, fmt.Errorf("turn: MediaAliases %s: already the name of media address %s", announced, p.locals[p.named[j].local])
		}
		p.add(announced, i)
	}
	return p, nil
}

func (p *peerPolicy) add(addr netip.AddrPort, local int) {
	p.named = append(p.named, namedPeer{addr: addr, local: local, udp: net.UDPAddrFromAddrPort(addr)})
	if !slices.Contains(p.ips, addr.Addr()) {
		p.ips = append(p.ips, addr.Addr())
	}
}

// checkMediaAddr refuses addresses that can never be a real media socket. Loopback is allowed:
// an all-in-one dev node may well announce 127.0.0.1, and the allow-list stays exact anyway.
func checkMediaAddr(a netip.AddrPort) error {
	switch {
	case !a.IsValid():
		return fmt.Errorf("invalid address")
	case a.Port() == 0:
		return fmt.Errorf("port 0")
	case a.Addr().IsUnspecified():
		return fmt.Errorf("unspecified address (0.0.0.0 or ::) reaches every local service")
	case a.Addr().IsMulticast():
		return fmt.Errorf("multicast address")
	case a.Addr().Zone() != "":
		return fmt.Errorf("zoned address")
	}
	return nil
}

// allowIP is the PermissionHandler check (CreatePermission, ChannelBind and, were it enabled,
// RFC 6062 Connect). It has pion's signature minus the client address, which we do not use:
// quotas and policy are per credential, never per source IP (many users share a proxy's IP).
func (p *peerPolicy) allowIP(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	return slices.Contains(p.ips, a.Unmap())
}

// route finds the destination a client named. It returns the index into named.
func (p *peerPolicy) route(dst netip.AddrPort) (int, bool) {
	dst = unmapAddrPort(dst)
	for i := range p.named {
		if p.named[i].addr == dst {
			return i, true
		}
	}
	return 0, false
}

// localIndex finds the local media socket a datagram came from.
func (p *peerPolicy) localIndex(src netip.AddrPort) (int, bool) {
	src = unmapAddrPort(src)
	for i, l := range p.locals {
		if l == src {
			return i, true
		}
	}
	return 0, false
}

// unmapAddrPort turns ::ffff:a.b.c.d into a.b.c.d and drops any zone, so that comparisons cannot be
// dodged by re-encoding an address (coturn CVE-2026-27624).
func unmapAddrPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
}

// addrPortOf converts the net.Addr pion hands the relay into a netip.AddrPort without allocating.
func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		ap := a.AddrPort()
		return ap, ap.IsValid()
	case *net.TCPAddr:
		ap := a.AddrPort()
		return ap, ap.IsValid()
	}
	return netip.AddrPort{}, false
}
