package mediaaddr

import (
	"net/netip"
	"slices"
	"testing"
)

func TestSelect(t *testing.T) {
	t.Parallel()
	addr := func(ip, iface string, mod ...func(*Addr)) Addr {
		a := Addr{IP: netip.MustParseAddr(ip), Interface: iface, Up: true}
		for _, m := range mod {
			m(&a)
		}
		return a
	}
	loop := func(a *Addr) { a.Loopback = true }
	down := func(a *Addr) { a.Up = false }
	tentative := func(a *Addr) { a.Tentative = true }
	dup := func(a *Addr) { a.Duplicate = true }
	host := []Addr{
		addr("127.0.0.1", "lo", loop),
		addr("::1", "lo", loop),
		addr("192.0.2.10", "eth0"),
		addr("2001:db8::10", "eth0"),
		addr("fe80::1%eth0", "eth0"),
		addr("169.254.3.4", "eth0"),
		addr("2001:db8::11", "eth0", tentative),
		addr("2001:db8::12", "eth0", dup),
		addr("198.51.100.7", "eth1", down),
		addr("172.17.0.1", "docker0"),
		addr("172.18.0.1", "br-1a2b"),
		addr("10.200.0.1", "veth12"),
		addr("fec0::1", "eth0"),
		addr("::192.0.2.10", "eth0"),
	}
	tests := []struct {
		name   string
		policy Policy
		bind   []string
		why    map[string]string
	}{
		{"production", Policy{}, []string{"192.0.2.10", "2001:db8::10"}, map[string]string{
			"127.0.0.1": "loopback", "::1": "loopback", "fe80::1%eth0": "link-local", "169.254.3.4": "link-local",
			"2001:db8::11": "tentative (duplicate address detection running)", "2001:db8::12": "duplicate address (DAD failed)",
			"198.51.100.7": "interface down", "172.17.0.1": "container bridge", "172.18.0.1": "container bridge",
			"10.200.0.1": "container bridge", "fec0::1": "IPv4-compatible or site-local IPv6", "::192.0.2.10": "IPv4-compatible or site-local IPv6",
		}},
		// ::1 never was a candidate (pion leaves out every address of the IPv4-compatible form).
		{"dev keeps loopback", Policy{Loopback: true}, []string{"127.0.0.1", "192.0.2.10", "2001:db8::10"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bind, skipped := Select(host, tc.policy)
			var got []string
			for _, b := range bind {
				got = append(got, b.String())
			}
			if !slices.Equal(got, tc.bind) {
				t.Errorf("bind = %v, want %v", got, tc.bind)
			}
			if len(bind)+len(skipped) != len(host) {
				t.Errorf("%d bound + %d skipped, want %d addresses accounted for", len(bind), len(skipped), len(host))
			}
			for _, s := range skipped {
				if want, ok := tc.why[s.Addr.IP.String()]; ok && s.Reason != want {
					t.Errorf("%s skipped as %q, want %q", s.Addr.IP, s.Reason, want)
				}
				if s.Reason == "" {
					t.Errorf("%s skipped without a reason", s.Addr.IP)
				}
			}
		})
	}
}

// TestListSeesThisHost checks List against the kernel: loopback is up, flagged and has 127.0.0.1.
func TestListSeesThisHost(t *testing.T) {
	t.Parallel()
	addrs, err := List()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IP == netip.MustParseAddr("127.0.0.1") {
			if !a.Up || !a.Loopback || a.Tentative || a.Duplicate {
				t.Errorf("127.0.0.1 = %+v, want up, loopback, settled", a)
			}
			return
		}
	}
	t.Fatalf("List() = %+v, no 127.0.0.1", addrs)
}
