package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/ports"
)

// announceAddrs decides which addresses our ICE candidates carry, and says in plain words when the
// setup cannot work. The classic OpenVidu failure, "I only see myself", is a media server announcing
// a private address to browsers on the Internet; we check for it at start-up instead.
//
// Configured PARLEY_MEDIA_ANNOUNCE_IPS replace the interface addresses. Otherwise, in production,
// DOMAIN_OR_PUBLIC_IP is resolved: addresses that are not on this host (1:1 NAT, cloud VMs) are
// added to the candidates, so browsers on the Internet and on the LAN both reach us.
func announceAddrs(ctx context.Context, dev bool, domain string, configured []netip.Addr, local []netip.Addr, port int, log *slog.Logger) (addrs []netip.Addr, replace bool) {
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

// warnPrivateLowPorts says at start-up what `parley ports` says: Chromium ignores our candidates at
// a private address on a port below 1024. bound are the media socket's addresses, announced along
// with announce unless replace.
func warnPrivateLowPorts(announce []netip.Addr, replace bool, bound []netip.AddrPort, cfg *config.Config, log *slog.Logger) {
	addrs := announce
	if !replace {
		for _, b := range bound {
			if !slices.Contains(addrs, b.Addr()) {
				addrs = append(addrs[:len(addrs):len(addrs)], b.Addr())
			}
		}
	}
	iceTCP := cfg.HTTPSPort
	if cfg.Proxy.Enabled {
		iceTCP = cfg.Proxy.MediaTCPPort
	}
	for _, w := range ports.PrivateLowPorts(addrs, cfg.Media.Port, iceTCP) {
		log.Warn(w)
	}
}
