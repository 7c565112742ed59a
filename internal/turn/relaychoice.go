package turn

import "net/netip"

// ChooseRelay sets RelayIP, RelayIP6 and MediaAliases from MediaAddrs (which must be set) and the
// addresses the SFU announces in its candidates (PARLEY_MEDIA_ANNOUNCE_IPS, or DOMAIN_OR_PUBLIC_IP
// behind 1:1 NAT).
//
// One relay IP per family, preferring a non-loopback one: browsers that reach TURN over IPv6 ask
// for an IPv6 relay. Link-local addresses need a zone and reach nobody useful. Each announced
// address is an alias of the media socket on the relay IP, so a relayed packet to the announced
// public address is delivered to the local socket directly, with no hairpin through the NAT.
func (c *Config) ChooseRelay(announce []netip.Addr) {
	var relayIP, relayIP6 netip.Addr
	for _, a := range c.MediaAddrs {
		ip := a.Addr().Unmap()
		if ip.IsLinkLocalUnicast() {
			continue
		}
		pick := &relayIP
		if ip.Is6() {
			pick = &relayIP6
		}
		if !pick.IsValid() || pick.IsLoopback() && !ip.IsLoopback() {
			*pick = ip
		}
	}
	if !relayIP.IsValid() {
		relayIP, relayIP6 = relayIP6, netip.Addr{}
	}
	aliases := map[netip.AddrPort]netip.AddrPort{}
	for _, a := range announce {
		for _, m := range c.MediaAddrs {
			if m.Addr().Unmap() == relayIP {
				aliases[netip.AddrPortFrom(a, m.Port())] = m
			}
		}
	}
	c.RelayIP, c.RelayIP6, c.MediaAliases = relayIP, relayIP6, aliases
}
