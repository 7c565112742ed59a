package mediaaddr

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
)

func TestAnnounce(t *testing.T) {
	local := []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("127.0.0.1")}
	cases := []struct {
		name       string
		dev        bool
		domain     string
		configured []netip.Addr
		want       []netip.Addr
		replace    bool
		warn       string
	}{
		{name: "dev announces interfaces", dev: true},
		{name: "domain is a local IP", domain: "10.0.0.5"},
		{name: "1:1 NAT public IP is added", domain: "203.0.113.7", want: []netip.Addr{netip.MustParseAddr("203.0.113.7")}},
		{name: "foreign private IP is a warning", domain: "192.168.9.9", warn: "private address that is not on this machine"},
		{name: "configured replaces", configured: []netip.Addr{netip.MustParseAddr("10.0.0.5")}, want: []netip.Addr{netip.MustParseAddr("10.0.0.5")}, replace: true},
		{name: "configured foreign is a warning", configured: []netip.Addr{netip.MustParseAddr("198.51.100.1")}, want: []netip.Addr{netip.MustParseAddr("198.51.100.1")}, replace: true, warn: "only see themselves"},
		{name: "unresolvable domain is a warning", domain: "nonexistent.invalid", warn: "does not resolve"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			got, replace := Announce(context.Background(), AnnouncePolicy{Dev: tc.dev, Domain: tc.domain, Configured: tc.configured, Port: 443}, local, log)
			if len(got) != len(tc.want) || replace != tc.replace {
				t.Fatalf("got %v replace=%v, want %v replace=%v", got, replace, tc.want, tc.replace)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
			if tc.warn != "" && !strings.Contains(logs.String(), tc.warn) {
				t.Fatalf("logs lack %q: %s", tc.warn, logs.String())
			}
			if tc.warn == "" && strings.Contains(logs.String(), "WARN") {
				t.Fatalf("unexpected warning: %s", logs.String())
			}
		})
	}
}

// TestAdvertised: the interface addresses are advertised along with announced ones unless these
// replace them (what the private-low-port warning and `parley ports` look at).
func TestAdvertised(t *testing.T) {
	bound := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.5:443"), netip.MustParseAddrPort("127.0.0.1:443")}
	pub := []netip.Addr{netip.MustParseAddr("203.0.113.7")}
	for _, tc := range []struct {
		name     string
		announce []netip.Addr
		replace  bool
		want     string
	}{
		{"interface addresses", nil, false, "[10.0.0.5 127.0.0.1]"},
		{"public address added to them", pub, false, "[203.0.113.7 10.0.0.5 127.0.0.1]"},
		{"public address replacing them", pub, true, "[203.0.113.7]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fmt.Sprint(Advertised(tc.announce, tc.replace, bound)); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}
