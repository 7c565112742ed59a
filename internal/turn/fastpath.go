package turn

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/parley/parley/internal/sendq"
)

// The ChannelData fast path. pion/turn handles every relayed datagram with a few heap
// allocations (its STUNConn copies each TCP read twice, ChannelData.Encode allocates each frame),
// debug-log arguments formatted whether or not they are logged, and two locked lookups. On
// TURN/TCP and TURN/TLS (what browsers behind firewalls use) we relay bound channels ourselves,
// in both directions, on the goroutines pion already runs: the connection's read loop (client →
// SFU, inside tcpConn.Read) and the allocation's relay loop (SFU → client, inside
// relayConn.ReadFrom, writing to the connection's send queue, which never blocks). Everything
// else (STUN requests, Send and Data indications, channels we do not know) still goes to pion
// untouched.
//
// The channel table is a mirror of pion's, kept by pion's own OnChannelCreated and
// OnChannelDeleted events, so expiry, refresh and deallocation stay pion's decisions. pion
// raises OnChannelCreated before it answers the ChannelBind, so a client never sends ChannelData
// for a channel the mirror does not have yet. The allow-list is not bypassed: a channel is only
// mirrored if its peer is a media address (policy.route), and relayConn sends only there.

const (
	channelDataHeader = 4
	// pionInboundMTU is pion's read buffer per client connection (defaultInboundMTU): it drops
	// frames of this size or more. The fast path drops them too, so both paths agree.
	pionInboundMTU = 1600
	// tcpReadBuffer is the per-connection buffer that frames are cut from: a few frames, so
	// that one read syscall can deliver a burst.
	tcpReadBuffer = 8 << 10
	// audioSized is the largest ChannelData frame the client's send queue takes ahead of video:
	// an Opus packet at what browsers send, as SRTP, framed. Sound goes first on a weak link; the
	// few small video packets that go with it cost nothing.
	audioSized = channelDataHeader + 300
	// frameInvalid is what frameSize returns for bytes that are neither STUN nor ChannelData.
	frameInvalid = -1
)

// fastChannel is one mirrored channel binding of the allocation on a client connection.
type fastChannel struct {
	number uint16
	rc     *relayConn
	named  int // index into policy.named: the destination as the client named it
}

// frameSize returns the size of the TURN frame at the start of b on a stream transport (RFC 5766
// §11.5: ChannelData padded to 4 bytes; STUN is 20 bytes plus its length), 0 if b is too short
// to tell, or frameInvalid.
func frameSize(b []byte) int {
	if len(b) < channelDataHeader {
		return 0
	}
	l := int(binary.BigEndian.Uint16(b[2:4]))
	switch b[0] >> 6 {
	case 0: // STUN: the two top bits of the message type are zero
		return 20 + l
	case 1: // ChannelData: channel numbers 0x4000–0x7FFF
		return channelDataHeader + (l+3)&^3
	}
	return frameInvalid
}

// Read implements net.Conn for pion's STUNConn: it returns one whole TURN frame per call (or,
// for a frame larger than the buffers, its bytes in order), after relaying every ChannelData
// frame of a mirrored channel itself. Frame boundaries are tracked from the first byte, so a
// frame is never split between the two paths.
func (c *tcpConn) Read(p []byte) (int, error) {
	if c.rbuf == nil {
		c.rbuf = make([]byte, tcpReadBuffer)
	}
	for {
		buf := c.rbuf[c.r:c.w]
		if c.pass > 0 { // the rest of a frame too large to cut out: straight to pion
			if len(buf) == 0 {
				if err := c.fill(); err != nil {
					return 0, err
				}
				continue
			}
			n := copy(p, buf[:min(len(buf), c.pass)])
			c.r += n
			c.pass -= n
			return n, nil
		}
		size := frameSize(buf)
		switch {
		case size == frameInvalid:
			// Not TURN: pion fails on these bytes and closes the connection.
			n := copy(p, buf)
			c.r += n
			return n, nil
		case size > len(c.rbuf) || size > len(p):
			c.pass = size
			continue
		case size == 0 || size > len(buf):
			if err := c.fill(); err != nil {
				return 0, err
			}
			continue
		}
		frame := buf[:size]
		c.r += size
		if c.relayChannelData(frame) {
			continue
		}
		return copy(p, frame), nil
	}
}

// fill reads more bytes from the connection, first moving what is buffered to the front.
func (c *tcpConn) fill() error {
	if c.r > 0 { // what is left is less than a frame: cheap to move
		c.w = copy(c.rbuf, c.rbuf[c.r:c.w])
		c.r = 0
	}
	n, err := c.Conn.Read(c.rbuf[c.w:])
	c.w += n
	if n > 0 {
		return nil // a sticky error comes back on the next call
	}
	return err
}

// relayChannelData sends the payload of a ChannelData frame of a mirrored channel to its peer and
// reports true, or reports false for pion to handle the frame.
func (c *tcpConn) relayChannelData(frame []byte) bool {
	if frame[0]>>6 != 1 || len(frame) >= pionInboundMTU {
		return false
	}
	tbl := c.channels.Load()
	if tbl == nil {
		return false
	}
	number := binary.BigEndian.Uint16(frame[0:2])
	for i := range *tbl {
		ch := &(*tbl)[i]
		if ch.number == number {
			l := int(binary.BigEndian.Uint16(frame[2:4]))
			_, _ = ch.rc.sendTo(frame[channelDataHeader:channelDataHeader+l], ch.named)
			return true
		}
	}
	return false
}

// relayToClient frames a datagram that relayConn.ReadFrom read into rc.fbuf[channelDataHeader:]
// as ChannelData and writes it to the client, if its source (as the client names it) has a
// mirrored channel. It reports whether it did.
func (rc *relayConn) relayToClient(n int, named int32) bool {
	number := rc.chanFor[named].Load()
	if number == 0 {
		return false
	}
	tc := rc.client.Load()
	if tc == nil {
		return false
	}
	b := rc.fbuf
	binary.BigEndian.PutUint16(b[0:2], uint16(number))
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
	end := channelDataHeader + n
	padded := channelDataHeader + (n+3)&^3
	clear(b[end:padded])
	// The queue copies the frame and never blocks. A failed write (the client went away) is what
	// pion would log and ignore too; the allocation ends when the connection's read loop does.
	_, _ = tc.out.WriteKind(b[:padded], datagramKind(b[channelDataHeader:end]))
	return true
}

// datagramKind classifies a datagram relayed to a TCP or TLS client for its send queue: small
// ones go ahead of video (audio; also STUN, DTLS and RTCP, as small), except small RTP packets
// with the padding bit (RFC 3550 §5.1), the SFU's probes, which take only the room the link has
// left (sendq.Padding); the rest is video.
func datagramKind(d []byte) sendq.Kind {
	switch {
	case len(d) <= paddingSized && len(d) > 1 && d[0]>>6 == 2 && d[0]&0x20 != 0 && (d[1] < 192 || d[1] > 223):
		return sendq.Padding
	case channelDataHeader+(len(d)+3)&^3 > audioSized:
		return sendq.Video
	}
	return sendq.Audio
}

// paddingSized is the largest relayed RTP packet with the padding bit taken for a probe's padding:
// 255 bytes of padding behind the publisher's header, whose extensions (Chrome sends several) made
// some probes' packets larger than audioSized.
const paddingSized = 512

// onChannelCreated mirrors a new channel binding of a TURN/TCP or TURN/TLS client.
func (s *Server) onChannelCreated(src, dst net.Addr, _, _, _ string, relayAddr, peer net.Addr, number uint16) {
	ra, ok := addrPortOf(relayAddr)
	if !ok {
		return
	}
	pa, ok := addrPortOf(peer)
	if !ok {
		return
	}
	named, ok := s.policy.route(pa)
	if !ok {
		return // not a media address: pion's path asks relayConn, which drops and counts it
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tc := s.tcp[fiveTupleKey(src, dst)]
	rc := s.relayByAddr[unmapAddrPort(ra)]
	if tc == nil || rc == nil {
		return // TURN/UDP, or already closing
	}
	var tbl []fastChannel
	if old := tc.channels.Load(); old != nil {
		tbl = append(tbl, *old...)
	}
	tbl = append(tbl, fastChannel{number: number, rc: rc, named: named})
	tc.channels.Store(&tbl)
	rc.chanFor[named].Store(uint32(number))
	rc.client.Store(tc)
}

// onChannelDeleted forgets a mirrored channel binding (expired, or its allocation ended).
func (s *Server) onChannelDeleted(src, dst net.Addr, _, _, _ string, relayAddr, _ net.Addr, number uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tc := s.tcp[fiveTupleKey(src, dst)]; tc != nil {
		if old := tc.channels.Load(); old != nil {
			var tbl []fastChannel
			for _, ch := range *old {
				if ch.number != number {
					tbl = append(tbl, ch)
				}
			}
			if len(tbl) == 0 {
				tc.channels.Store(nil)
			} else {
				tc.channels.Store(&tbl)
			}
		}
	}
	if ra, ok := addrPortOf(relayAddr); ok {
		if rc := s.relayByAddr[unmapAddrPort(ra)]; rc != nil {
			for i := range rc.chanFor {
				rc.chanFor[i].CompareAndSwap(uint32(number), 0)
			}
		}
	}
}

// relayAddrOf is the key of relayByAddr for a relay socket.
func relayAddrOf(pc *net.UDPConn) netip.AddrPort {
	return unmapAddrPort(pc.LocalAddr().(*net.UDPAddr).AddrPort())
}
