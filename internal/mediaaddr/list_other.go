//go:build !linux

package mediaaddr

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// List reads every interface address. Outside Linux the flags of duplicate address detection are
// not read: a tentative address fails to bind and is reported then.
func List() ([]Addr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var out []Addr
	for _, i := range ifs {
		addrs, err := i.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			p, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			ip := p.Addr()
			if ip.Is6() && ip.IsLinkLocalUnicast() {
				ip = ip.WithZone(i.Name)
			}
			out = append(out, Addr{IP: ip, Interface: i.Name, Up: i.Flags&net.FlagUp != 0, Loopback: i.Flags&net.FlagLoopback != 0})
		}
	}
	return out, nil
}

// Watch calls changed once and reports no changes after that outside Linux: the addresses found at
// start-up are the ones bound.
func Watch(ctx context.Context, changed func()) error {
	changed()
	<-ctx.Done()
	return nil
}
