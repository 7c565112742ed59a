package sfu

import (
	"net"
	"net/netip"
	"sync"

	"github.com/parley/parley/internal/sendq"
)

// ICE-TCP sending. pion's TCPMux writes each packet as one RFC 4571 frame (length and datagram in
// a single Write, tcp_mux.go writeStreamingPacket). With TCPMuxParams.WriteBufferSize 0 it
// writes straight to the connection and would block the forwarding goroutine on a slow peer;
// with a buffer it queues megabytes (seconds of media at a weak link's rate) and reports a packet
// it drops as written. So pion writes without a buffer, to a connection whose Write is a
// sendq: bounded in bytes and in age, never blocking, and counting what it drops.

// queuedListener hands pion's TCPMux its connections with a send queue in front of their writes,
// and keeps them by remote address so that a subscription carried by one finds its queue.
type queuedListener struct {
	net.Listener
	totals *sendq.Counters
	conns  *sync.Map // netip.AddrPort (unmapped) → *sendq.Conn
}

// Accept implements net.Listener.
func (l queuedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	q := sendq.NewConn(c, sendq.Config{Totals: l.totals})
	key := addrPortOf(c.RemoteAddr())
	l.conns.Store(key, q)
	return iceTCPConn{Conn: q, conns: l.conns, key: key}, nil
}

// iceTCPConn tells the queue which frames are RTP, so that Stats can take dropped packets out of
// what subscribers were sent.
type iceTCPConn struct {
	*sendq.Conn
	conns *sync.Map
	key   netip.AddrPort
}

// Write implements net.Conn: p is one RFC 4571 frame.
func (c iceTCPConn) Write(p []byte) (int, error) { return c.WriteKind(p, frameKind(p)) }

// Close implements net.Conn.
func (c iceTCPConn) Close() error {
	c.conns.CompareAndDelete(c.key, c.Conn)
	return c.Conn.Close()
}

// addrPortOf is a's address and port, IPv4 unmapped; zero if a is not an IP address.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// sendQueue finds the send queue in front of the connection that carries a selected path: an
// ICE-TCP connection of ours, or a TURN/TCP or TURN/TLS client's (Config.SendQueue); nil for
// UDP, where nothing queues.
func (s *SFU) sendQueue(p Path) *sendq.Conn {
	ap, err := netip.ParseAddrPort(p.Remote)
	if err != nil {
		return nil
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if p.Protocol == "tcp" {
		if q, ok := s.tcpConns.Load(ap); ok {
			return q.(*sendq.Conn)
		}
		return nil
	}
	if s.cfg.SendQueue != nil {
		return s.cfg.SendQueue(ap)
	}
	return nil
}

// frameKind classifies an RFC 4571 frame: RTP (version 2, RFC 7983) and not RTCP (packet types
// 192–223, RFC 5761 §4) is media, audio-sized packets first; small ones with the padding bit
// set are a probe's padding (pad), which goes only into room the link has left; STUN, DTLS and
// RTCP are control.
func frameKind(p []byte) sendq.Kind {
	if len(p) < 4 || p[2]>>6 != 2 || p[3] >= 192 && p[3] <= 223 {
		return sendq.Control
	}
	switch {
	case len(p) <= paddingSized && p[2]&0x20 != 0:
		return sendq.Padding
	case len(p) <= audioSized:
		return sendq.Audio
	}
	return sendq.Video
}

// audioSized is the largest RFC 4571 frame sent ahead of video: an Opus packet at what browsers
// send (20 ms at up to ~64 kbit/s: 160 bytes) with its RTP header, extensions and SRTP tag.
// Payload types are the browser's choice per connection, so size is what the queue can tell by;
// the few small video packets (a frame's tail) that go first with audio cost nothing.
const audioSized = 2 + 300

// paddingSized is the largest RFC 4571 frame with the RTP padding bit taken for a probe's padding:
// 255 bytes of padding behind the publisher's header, whose extensions (Chrome sends several) made
// some probes' packets larger than audioSized, and video then (the weak-network bed).
const paddingSized = 2 + 512

// srtpOverhead is what SRTP adds to each RTP packet with the AEAD-GCM profile we prefer (its
// tag); BytesOut counts packets before protection.
const srtpOverhead = 16

// subtractDropped takes the RTP packets that ICE-TCP queues dropped out of what Stats says was
// sent: the forwarding path counted them when it handed them to pion.
func (st *Stats) subtractDropped(q sendq.Stats) {
	st.ICETCP = q
	frames := q.MediaDropped.Frames
	bytes := q.MediaDropped.Bytes - min(q.MediaDropped.Bytes, frames*(2+srtpOverhead))
	st.PacketsOut -= min(st.PacketsOut, frames)
	st.BytesOut -= min(st.BytesOut, bytes)
}
