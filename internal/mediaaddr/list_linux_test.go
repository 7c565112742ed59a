package mediaaddr

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"testing"
)

// addrMsg builds an RTM_NEWADDR message as the kernel sends it: ifaddrmsg, then attributes.
func addrMsg(family, flags uint8, index uint32, attrs map[uint16][]byte) syscall.NetlinkMessage {
	data := make([]byte, syscall.SizeofIfAddrmsg)
	data[0], data[2] = family, flags
	binary.NativeEndian.PutUint32(data[4:8], index)
	for _, typ := range []uint16{syscall.IFA_ADDRESS, syscall.IFA_LOCAL, ifaFlagsAttr} {
		v, ok := attrs[typ]
		if !ok {
			continue
		}
		a := make([]byte, 4+(len(v)+3)&^3)
		binary.NativeEndian.PutUint16(a[0:2], uint16(4+len(v)))
		binary.NativeEndian.PutUint16(a[2:4], typ)
		copy(a[4:], v)
		data = append(data, a...)
	}
	return syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: syscall.RTM_NEWADDR}, Data: data}
}

func TestParseAddrMsg(t *testing.T) {
	t.Parallel()
	ifs := map[uint32]net.Interface{2: {Index: 2, Name: "eth0", Flags: net.FlagUp}}
	v6 := netip.MustParseAddr("2001:db8::1").AsSlice()
	flags32 := func(f uint32) []byte { b := make([]byte, 4); binary.NativeEndian.PutUint32(b, f); return b }
	tests := []struct {
		name string
		msg  syscall.NetlinkMessage
		want Addr
		ok   bool
	}{
		{"settled IPv6", addrMsg(syscall.AF_INET6, 0, 2, map[uint16][]byte{syscall.IFA_ADDRESS: v6}),
			Addr{IP: netip.MustParseAddr("2001:db8::1"), Interface: "eth0", Up: true}, true},
		{"tentative in ifa_flags", addrMsg(syscall.AF_INET6, ifaFTentative, 2, map[uint16][]byte{syscall.IFA_ADDRESS: v6}),
			Addr{IP: netip.MustParseAddr("2001:db8::1"), Interface: "eth0", Up: true, Tentative: true}, true},
		{"IFA_FLAGS wins", addrMsg(syscall.AF_INET6, 0, 2, map[uint16][]byte{syscall.IFA_ADDRESS: v6, ifaFlagsAttr: flags32(ifaFDADFailed | 0x100)}),
			Addr{IP: netip.MustParseAddr("2001:db8::1"), Interface: "eth0", Up: true, Duplicate: true}, true},
		{"point-to-point: IFA_LOCAL is ours", addrMsg(syscall.AF_INET, 0, 2, map[uint16][]byte{
			syscall.IFA_ADDRESS: {10, 0, 0, 2}, syscall.IFA_LOCAL: {10, 0, 0, 1}}),
			Addr{IP: netip.MustParseAddr("10.0.0.1"), Interface: "eth0", Up: true}, true},
		{"link-local gets its zone", addrMsg(syscall.AF_INET6, 0, 2, map[uint16][]byte{syscall.IFA_ADDRESS: netip.MustParseAddr("fe80::1").AsSlice()}),
			Addr{IP: netip.MustParseAddr("fe80::1%eth0"), Interface: "eth0", Up: true}, true},
		{"unknown interface", addrMsg(syscall.AF_INET6, 0, 9, map[uint16][]byte{syscall.IFA_ADDRESS: v6}), Addr{}, false},
		{"no address", addrMsg(syscall.AF_INET6, 0, 2, nil), Addr{}, false},
		{"truncated", syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: syscall.RTM_NEWADDR}, Data: []byte{10, 64}}, Addr{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseAddrMsg(tc.msg, ifs)
			if ok != tc.ok || got != tc.want {
				t.Errorf("parseAddrMsg = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
