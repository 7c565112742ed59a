package turn

import (
	"maps"
	"net/netip"
	"testing"
)

func TestChooseRelay(t *testing.T) {
	ap := netip.MustParseAddrPort
	ip := netip.MustParseAddr
	cases := []struct {
		name     string
		media    []netip.AddrPort
		announce []netip.Addr
		ip4, ip6 string
		aliases  map[netip.AddrPort]netip.AddrPort
	}{
		{name: "loopback only (dev)", media: []netip.AddrPort{ap("127.0.0.1:4443")}, ip4: "127.0.0.1"},
		{name: "a LAN address beats loopback, whatever the order",
			media: []netip.AddrPort{ap("127.0.0.1:443"), ap("10.0.0.5:443"), ap("[::1]:443"), ap("[2001:db8::5]:443")},
			ip4:   "10.0.0.5", ip6: "2001:db8::5"},
		{name: "link-local is never a relay", media: []netip.AddrPort{ap("[fe80::1]:443"), ap("10.0.0.5:443")}, ip4: "10.0.0.5"},
		{name: "IPv6-only host relays on IPv6", media: []netip.AddrPort{ap("[2001:db8::5]:443")}, ip4: "2001:db8::5"},
		{name: "1:1 NAT: the public address is an alias of the local socket",
			media: []netip.AddrPort{ap("10.0.0.5:443"), ap("127.0.0.1:443")}, announce: []netip.Addr{ip("203.0.113.7")},
			ip4: "10.0.0.5", aliases: map[netip.AddrPort]netip.AddrPort{ap("203.0.113.7:443"): ap("10.0.0.5:443")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{MediaAddrs: tc.media}
			c.ChooseRelay(tc.announce)
			if c.RelayIP.String() != tc.ip4 && !(tc.ip4 == "" && !c.RelayIP.IsValid()) {
				t.Errorf("RelayIP %v, want %s", c.RelayIP, tc.ip4)
			}
			if want := tc.ip6; c.RelayIP6.IsValid() != (want != "") || want != "" && c.RelayIP6.String() != want {
				t.Errorf("RelayIP6 %v, want %q", c.RelayIP6, want)
			}
			if tc.aliases == nil {
				tc.aliases = map[netip.AddrPort]netip.AddrPort{}
			}
			if !maps.Equal(c.MediaAliases, tc.aliases) {
				t.Errorf("aliases %v, want %v", c.MediaAliases, tc.aliases)
			}
		})
	}
}
