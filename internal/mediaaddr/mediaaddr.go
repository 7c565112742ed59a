// Package mediaaddr decides which of this host's addresses carry media: which ones the media port
// is bound on and which are skipped (and why), as the kernel reports them, and when that changes;
// and which addresses our ICE candidates announce (announce.go).
//
// It imports nothing of ours and no pion package: the SFU binds what Select returns, and
// `parley ports` prints the same choice.
package mediaaddr

import (
	"net/netip"
	"strings"
)

// Addr is one address of a network interface, with what the kernel says about it.
type Addr struct {
	IP        netip.Addr
	Interface string
	// Up and Loopback are the interface's flags.
	Up, Loopback bool
	// Tentative: IPv6 duplicate address detection is still running (IFA_F_TENTATIVE). The kernel
	// refuses to bind the address until it ends, a second or two after the interface came up.
	Tentative bool
	// Duplicate: duplicate address detection failed (IFA_F_DADFAILED); it never becomes usable.
	Duplicate bool
}

// Policy is what the operator's configuration says about the choice.
type Policy struct {
	// Loopback keeps loopback addresses (dev mode: browser and server on one machine).
	Loopback bool
}

// Skipped is an address Select left out, with the reason in words for the log and `parley ports`.
type Skipped struct {
	Addr   Addr
	Reason string
}

// Select splits addrs into the ones worth binding the media port on and the ones skipped.
// Link-local addresses need a zone and reach nobody a browser can route from; tentative ones cannot
// be bound yet (Watch reports when they can); container bridges are never how a participant
// reaches us and only add dead candidates.
func Select(addrs []Addr, p Policy) (bind []netip.Addr, skipped []Skipped) {
	for _, a := range addrs {
		if why := skipReason(a, p); why != "" {
			skipped = append(skipped, Skipped{a, why})
			continue
		}
		bind = append(bind, a.IP.Unmap())
	}
	return bind, skipped
}

func skipReason(a Addr, p Policy) string {
	ip := a.IP.Unmap()
	switch {
	case !a.Up:
		return "interface down"
	case a.Loopback || ip.IsLoopback():
		if !p.Loopback {
			return "loopback"
		}
	case strings.HasPrefix(a.Interface, "docker") || strings.HasPrefix(a.Interface, "br-") || strings.HasPrefix(a.Interface, "veth"):
		return "container bridge"
	}
	switch {
	case !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast():
		return "not a unicast address"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case a.Duplicate:
		return "duplicate address (DAD failed)"
	case a.Tentative:
		return "tentative (duplicate address detection running)"
	case ip == netip.IPv6Loopback():
		return "IPv6 loopback (no ICE candidate; 127.0.0.1 serves this machine)"
	case ip.Is6() && isDeprecatedIPv6(ip):
		// RFC 8445 §5.1.1.1: IPv4-compatible and site-local IPv6 addresses are never candidates.
		return "IPv4-compatible or site-local IPv6"
	}
	return ""
}

func isDeprecatedIPv6(ip netip.Addr) bool {
	b := ip.As16()
	compat := true
	for _, x := range b[:12] {
		compat = compat && x == 0
	}
	return compat || b[0] == 0xfe && b[1]&0xc0 == 0xc0
}
