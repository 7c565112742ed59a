package edge

// This file decides, from the first bytes a client sends, which protocol a connection speaks. It
// is pure (no I/O) so that the fuzz test can hammer it; the sniffer in edge.go feeds it whatever
// bytes have arrived so far and asks again when it says "need more".

// kind is what the first bytes of a connection say it carries.
type kind uint8

const (
	// kindNeedMore means the bytes seen so far are a prefix of more than one kind: read more.
	kindNeedMore kind = iota
	// kindHTTP is anything that matches no other rule: HTTP/1.x, and garbage, which the HTTP
	// server answers with 400 Bad Request (a clear error for a misdirected client, at no cost).
	kindHTTP
	// kindTLS is a TLS handshake record: terminate TLS, then classify again inside.
	kindTLS
	// kindTURN is a bare STUN message: TURN over TCP (or, inside TLS, TURN over TLS).
	kindTURN
	// kindICETCP is a STUN message framed by RFC 4571: ICE-TCP to a passive candidate.
	kindICETCP
)

func (k kind) String() string {
	switch k {
	case kindNeedMore:
		return "need-more"
	case kindHTTP:
		return "http"
	case kindTLS:
		return "tls"
	case kindTURN:
		return "turn"
	case kindICETCP:
		return "ice-tcp"
	}
	return "invalid"
}

// maxPeek is the most bytes any rule needs to decide (the RFC 4571 rule: 2 + 8). The sniffer
// never asks for more, so a client that sends a short first message is never kept waiting for
// bytes that will not come.
const maxPeek = 10

// stunMagicCookie is the fixed second word of every STUN header since RFC 5389 (RFC 8489 §5).
var stunMagicCookie = [4]byte{0x21, 0x12, 0xA4, 0x42}

// verdict is one rule's opinion of a prefix.
type verdict uint8

const (
	no    verdict = iota // no continuation of these bytes can match
	maybe                // a prefix of a match: more bytes needed
	yes                  // matches, whatever follows
)

// classify decides what a plain TCP connection carries from its first bytes b (any length;
// extra bytes are ignored). The rules are tried in order of priority; a rule that could still
// match makes the caller wait even if a later rule already matches, so the answer never
// depends on how the bytes were split across reads (the fuzz test checks this). Any b of
// maxPeek bytes or more gets a decision.
//
// The rules are disjoint for real traffic: a TLS record starts 16 03, a STUN message's cookie
// sits at offset 4 and an RFC 4571 frame's at offset 6 (the two cookie positions overlap in a
// way no 8 bytes can satisfy), and HTTP starts with an ASCII method whose bytes all have the
// 0x40 bit set, which STUN's first byte never has.
func classify(b []byte) kind {
	switch isTLSRecord(b) {
	case yes:
		return kindTLS
	case maybe:
		return kindNeedMore
	}
	switch isSTUN(b) {
	case yes:
		return kindTURN
	case maybe:
		return kindNeedMore
	}
	switch isFramedSTUN(b) {
	case yes:
		return kindICETCP
	case maybe:
		return kindNeedMore
	}
	return kindHTTP
}

// classifyInTLS decides what a connection carries from the first bytes after the TLS handshake,
// when ALPN did not already say: a TURN client (browsers send no ALPN for turns: URLs, and a
// TLS-inspecting proxy may re-originate with "http/1.1") starts with a bare STUN message, and
// anything else is HTTP. ICE-TCP is never wrapped in TLS.
func classifyInTLS(b []byte) kind {
	switch isSTUN(b) {
	case yes:
		return kindTURN
	case maybe:
		return kindNeedMore
	}
	return kindHTTP
}

// isTLSRecord matches the header of a TLS handshake record (RFC 8446 §5.1; RFC 5246 §6.2.1):
//
//	 0        1        2        3        4
//	+--------+--------+--------+--------+--------+----
//	|  0x16  |  0x03  |  0x00  |  record length  | ClientHello ...
//	|handshk.| legacy version  |                 |
//	+--------+--------+--------+--------+--------+----
//	                   0x00-0x04
//
// A ClientHello's record version is 0x0301 (TLS 1.3 clients, for middleboxes) or 0x0303, but
// 3.0 to 3.4 are accepted: the TLS stack gives the precise error for an old one, which helps
// more than HTTP's 400. Checking three bytes rather than one keeps an RFC 4571 frame whose
// length happens to start 0x16 from being mistaken for TLS.
func isTLSRecord(b []byte) verdict {
	const contentTypeHandshake = 0x16
	if len(b) > 0 && b[0] != contentTypeHandshake {
		return no
	}
	if len(b) > 1 && b[1] != 0x03 {
		return no
	}
	if len(b) > 2 && b[2] > 0x04 {
		return no
	}
	if len(b) < 3 {
		return maybe
	}
	return yes
}

// isSTUN matches a STUN message header at the start of b (RFC 8489 §5, formerly RFC 5389 §6),
// which is how a TURN client opens a TCP or TLS connection (RFC 8656 §3.1, no framing: STUN
// carries its own length):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|0 0|     STUN Message Type     |         Message Length    |0 0|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Magic Cookie = 0x2112A442                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                Transaction ID (96 bits) ...
//
// The two leading zero bits tell STUN from ChannelData and HTTP; the length's two trailing zero
// bits hold because attributes are padded to 4 bytes. Chromium's first TURN message, an
// Allocate, starts 00 03 00 08 21 12 A4 42.
func isSTUN(b []byte) verdict { return stunAt(b, 0) }

// isFramedSTUN matches an RFC 4571 frame (§2: a 16-bit big-endian length, then the packet)
// holding a STUN message, which is how ICE-TCP (RFC 6544 §3) opens a connection to a passive
// candidate with its first connectivity check, a Binding request:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     RFC 4571 LENGTH = 20 + N  |0 0|     STUN Message Type     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     STUN Message Length = N   |    Magic Cookie 0x2112 ...    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  ... 0xA442                   |    Transaction ID ...
//
// The frame must hold exactly one STUN message (frame length = 20-byte header + message length),
// which pion's TCPMux also requires of the first frame; the check makes a false match on
// garbage rarer still.
func isFramedSTUN(b []byte) verdict {
	if v := stunAt(b, 2); v == no {
		return no
	}
	if len(b) >= 6 {
		frameLen := int(b[0])<<8 | int(b[1])
		msgLen := int(b[4])<<8 | int(b[5])
		if frameLen != 20+msgLen {
			return no
		}
	}
	if len(b) < 2+8 {
		return maybe
	}
	return yes
}

// stunAt matches the first 8 bytes of a STUN header (drawn at isSTUN) starting at b[off]; bytes
// before off are not looked at.
func stunAt(b []byte, off int) verdict {
	for i := off; i < len(b) && i < off+8; i++ {
		c := b[i]
		switch j := i - off; {
		case j == 0 && c&0xC0 != 0: // the two leading bits of a STUN message are zero
			return no
		case j == 3 && c&0x03 != 0: // message length is a multiple of 4
			return no
		case j >= 4 && c != stunMagicCookie[j-4]:
			return no
		}
	}
	if len(b) < off+8 {
		return maybe
	}
	return yes
}
