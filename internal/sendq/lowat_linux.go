package sendq

import (
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func setNotSentLowat(fd uintptr, bytes int) error {
	return unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, bytes)
}

// tcpInfo reads a socket's TCP_INFO into memory of its own, so that a sample allocates nothing
// (unix.GetsockoptTCPInfo allocates, and a closure per Control call would too).
type tcpInfo struct {
	rc   syscall.RawConn
	read func(fd uintptr) // tcpInfo.get, bound once
	ti   unix.TCPInfo
	err  syscall.Errno
}

// socketProgress returns a reader of the TCP socket's progress.
func socketProgress(rc syscall.RawConn) progressReader {
	p := &tcpInfo{rc: rc}
	p.read = p.get
	return p
}

func (p *tcpInfo) get(fd uintptr) {
	n := uint32(unsafe.Sizeof(p.ti))
	_, _, p.err = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_INFO, uintptr(unsafe.Pointer(&p.ti)), uintptr(unsafe.Pointer(&n)), 0)
}

// progress implements progressReader: bytes written to the socket so far are those sent once
// (sent minus retransmitted) plus those not yet sent.
func (p *tcpInfo) progress() (progress, bool) {
	if p.rc.Control(p.read) != nil || p.err != 0 {
		return progress{}, false
	}
	written := p.ti.Bytes_sent - min(p.ti.Bytes_retrans, p.ti.Bytes_sent) + uint64(p.ti.Notsent_bytes)
	return progress{written: written, acked: p.ti.Bytes_acked, minRTT: time.Duration(p.ti.Min_rtt) * time.Microsecond}, true
}
