package mediaaddr

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
)

// Address flags of rtnetlink (linux/if_addr.h); the low eight are also in ifa_flags.
const (
	ifaFlagsAttr  = 8 // IFA_FLAGS: all 32 bits of the flags
	ifaFDADFailed = 0x08
	ifaFTentative = 0x40

	// Multicast groups of rtnetlink (linux/rtnetlink.h), which package syscall does not name.
	rtmgrpLink       = 0x1
	rtmgrpIPv4IfAddr = 0x10
	rtmgrpIPv6IfAddr = 0x100
)

// List reads every interface address with its flags over rtnetlink (RTM_GETADDR): the flags
// that say an IPv6 address is still tentative are not in net.Interfaces' answer.
func List() ([]Addr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	byIndex := make(map[uint32]net.Interface, len(ifs))
	for _, i := range ifs {
		byIndex[uint32(i.Index)] = i
	}
	rib, err := syscall.NetlinkRIB(syscall.RTM_GETADDR, syscall.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	var out []Addr
	for _, m := range msgs {
		if a, ok := parseAddrMsg(m, byIndex); ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// parseAddrMsg reads one RTM_NEWADDR message: struct ifaddrmsg (family, prefix length, flags,
// scope: one byte each; interface index: 4 bytes) and its attributes.
func parseAddrMsg(m syscall.NetlinkMessage, byIndex map[uint32]net.Interface) (Addr, bool) {
	if m.Header.Type != syscall.RTM_NEWADDR || len(m.Data) < syscall.SizeofIfAddrmsg {
		return Addr{}, false
	}
	flags := uint32(m.Data[2])
	iface, ok := byIndex[binary.NativeEndian.Uint32(m.Data[4:8])]
	if !ok {
		return Addr{}, false // an interface that appeared after net.Interfaces: the next List has it
	}
	attrs, err := syscall.ParseNetlinkRouteAttr(&m)
	if err != nil {
		return Addr{}, false
	}
	var addr, local netip.Addr
	for _, at := range attrs {
		switch at.Attr.Type {
		case syscall.IFA_ADDRESS:
			addr, _ = netip.AddrFromSlice(at.Value)
		case syscall.IFA_LOCAL: // on point-to-point links IFA_ADDRESS is the far end
			local, _ = netip.AddrFromSlice(at.Value)
		case ifaFlagsAttr:
			if len(at.Value) >= 4 {
				flags = binary.NativeEndian.Uint32(at.Value)
			}
		}
	}
	if local.IsValid() {
		addr = local
	}
	if !addr.IsValid() {
		return Addr{}, false
	}
	if addr.Is6() && addr.IsLinkLocalUnicast() {
		addr = addr.WithZone(iface.Name)
	}
	return Addr{
		IP: addr, Interface: iface.Name,
		Up: iface.Flags&net.FlagUp != 0, Loopback: iface.Flags&net.FlagLoopback != 0,
		Tentative: flags&ifaFTentative != 0, Duplicate: flags&ifaFDADFailed != 0,
	}, true
}

// Watch calls changed once it listens, then after every change of the host's addresses or links
// (rtnetlink's address and link groups), until ctx ends; it returns nil then. The first call
// covers what changed between the caller's last List and the subscription. Changes come in
// bursts; changed re-reads everything, so a missed one (the socket overflowed) is made up by the
// next.
func Watch(ctx context.Context, changed func()) error {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, syscall.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("watch interface addresses: %w", err)
	}
	groups := uint32(rtmgrpLink | rtmgrpIPv4IfAddr | rtmgrpIPv6IfAddr)
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: groups}); err != nil {
		_ = syscall.Close(fd)
		return fmt.Errorf("watch interface addresses: %w", err)
	}
	// A non-blocking descriptor under os.File goes to the runtime's poller, so Close below ends a
	// pending Read.
	f := os.NewFile(uintptr(fd), "rtnetlink")
	stop := make(chan struct{})
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		select {
		case <-ctx.Done():
		case <-stop:
		}
		_ = f.Close()
	}()
	defer func() { close(stop); <-closed }()
	changed()
	buf := make([]byte, 64<<10)
	for {
		_, err := f.Read(buf)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, syscall.ENOBUFS): // events were lost: read the whole table again
		case err != nil:
			return fmt.Errorf("watch interface addresses: %w", err)
		}
		changed()
	}
}
