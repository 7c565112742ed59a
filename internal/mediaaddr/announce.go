package mediaaddr

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"
)

// AnnouncePolicy is what the operator's configuration says about announced addresses.
type AnnouncePolicy struct {
	// Dev: dev mode announces the interface addresses only.
	Dev bool
	// Domain is DOMAIN_OR_PUBLIC_IP.
	Domain string
	// Configured is PARLEY_MEDIA_ANNOUNCE_IPS.
	Configured []netip.Addr
	// Port is the media port, named in the warnings.
	Port int
}

// Announce decides which addresses our ICE candidates carry, and says in plain words when the
// setup cannot work. The classic OpenVidu failure, "I only see myself", is a media server announcing
// a private address to browsers on the Internet; we check for it at start-up instead.
//
// Configured PARLEY_MEDIA_ANNOUNCE_IPS replace the interface addresses. Otherwise, in production,
// DOMAIN_OR_PUBLIC_IP is resolved: addresses that are not on this host (1:1 NAT, cloud VMs) are
// added to the candidates, so browsers on the Internet and on the LAN both reach us.
// local are this machine's addresses; replace says the result replaces the addresses the media
// socket is bound on in candidates instead of being added to them.
func Announce(ctx context.Context, p AnnouncePolicy, local []netip.Addr, log *slog.Logger) (addrs []netip.Addr, replace bool) {
	dev, domain, configured, port := p.Dev, p.Domain, p.Configured, p.Port
	isLocal := func(a netip.Addr) bool {
		for _, l := range local {
			if l.Unmap() == a.Unmap() {
				return true
			}
		}
		return false
	}
	if len(configured) > 0 {
		for _, a := range configured {
			if !isLocal(a) {
				log.Warn(fmt.Sprintf("PARLEY_MEDIA_ANNOUNCE_IPS has %s, which is not an address of this machine: "+
					"browsers will send media there, so UDP %d (and TCP for ICE-TCP) must be forwarded from it to this host, "+
					"or participants will only see themselves", a, port))
			}
		}
		return configured, true
	}
	if dev || domain == "" {
		return nil, false
	}
	var ips []netip.Addr
	if a, err := netip.ParseAddr(domain); err == nil {
		ips = []netip.Addr{a}
	} else {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		res, err := net.DefaultResolver.LookupNetIP(rctx, "ip", domain)
		if err != nil {
			log.Warn(fmt.Sprintf("DOMAIN_OR_PUBLIC_IP %s does not resolve (%v): browsers will not reach this server until it does", domain, err))
			return nil, false
		}
		ips = res
	}
	for _, a := range ips {
		a = a.Unmap()
		if isLocal(a) {
			continue
		}
		if a.IsPrivate() || a.IsLoopback() {
			log.Warn(fmt.Sprintf("DOMAIN_OR_PUBLIC_IP %s resolves to %s, a private address that is not on this machine: "+
				"check the DNS record, or set PARLEY_MEDIA_ANNOUNCE_IPS", domain, a))
			continue
		}
		log.Info(fmt.Sprintf("DOMAIN_OR_PUBLIC_IP %s resolves to %s, which is not an interface of this machine (1:1 NAT?): "+
			"announcing it in ICE candidates; UDP %d must be forwarded from it to this host", domain, a, port))
		addrs = append(addrs, a)
	}
	return addrs, false
}

// Advertised is every address browsers get in our candidates: announce, plus the addresses the
// media socket is bound on unless announce replaces them.
func Advertised(announce []netip.Addr, replace bool, bound []netip.AddrPort) []netip.Addr {
	addrs := announce
	if !replace {
		for _, b := range bound {
			if !slices.Contains(addrs, b.Addr()) {
				addrs = append(addrs[:len(addrs):len(addrs)], b.Addr())
			}
		}
	}
	return addrs
}
