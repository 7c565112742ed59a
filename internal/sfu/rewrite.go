package sfu

import "encoding/binary"

// What a simulcast down-track must know about a codec's payload beyond where a keyframe starts
// (keyframe.go): the picture numbering that must stay continuous across layers. Each layer is its own RTP stream with its own sequence numbers, timestamps and VP8/VP9
// picture IDs; a decoder that sees them change abruptly reports loss or drops frames until the
// next keyframe. Everything here works in place on one packet, with no allocation.

// picture is the picture numbering of one VP8 or VP9 packet: where its picture ID and TL0PICIDX
// sit in the payload (0 = absent; both follow the first byte, so 0 is never a real offset).
type picture struct {
	pidAt  uint8 // offset of the picture ID
	pidLen uint8 // 1 (7 bits) or 2 (15 bits)
	tl0At  uint8 // offset of TL0PICIDX
	tidAt  uint8 // offset of the byte whose top bits are the temporal layer (TID)
	vp9    bool
}

// parsePicture reads the payload descriptor of a VP8 (RFC 7741 §4.2) or VP9 (RFC 9628 §4.2) packet.
//
// VP8:                                VP9:
//
//	  0 1 2 3 4 5 6 7                     0 1 2 3 4 5 6 7
//	 +-+-+-+-+-+-+-+-+                   +-+-+-+-+-+-+-+-+
//	 |X|R|N|S|R| PID |                   |I|P|L|F|B|E|V|Z|
//	 +-+-+-+-+-+-+-+-+                   +-+-+-+-+-+-+-+-+
//	X|I|L|T|K| RSV   |                 I |M| PICTURE ID  |
//	 +-+-+-+-+-+-+-+-+                   +-+-+-+-+-+-+-+-+
//	I|M| PICTURE ID  |                 M | PICTURE ID    |
//	 +-+-+-+-+-+-+-+-+                   +-+-+-+-+-+-+-+-+
//	M| PICTURE ID    |                 L | TID |U| SID |D|
//	 +-+-+-+-+-+-+-+-+                   +-+-+-+-+-+-+-+-+
//	L|   TL0PICIDX   |            (F=0)  |   TL0PICIDX   |
//	 +-+-+-+-+-+-+-+-+                   +-+-+-+-+-+-+-+-+
//	T/K|TID|Y| KEYIDX|
//	 +-+-+-+-+-+-+-+-+
//
// ok is false for a truncated descriptor or another codec.
func parsePicture(codec int, b []byte) (p picture, ok bool) {
	if len(b) == 0 {
		return p, false
	}
	i := 1
	switch codec {
	case codecVP8:
		x := b[0]&0x80 != 0
		var hasI, hasL, hasTK bool
		if x {
			if len(b) < 2 {
				return p, false
			}
			hasI, hasL, hasTK = b[1]&0x80 != 0, b[1]&0x40 != 0, b[1]&0x30 != 0
			i = 2
		}
		if hasI {
			if len(b) <= i {
				return p, false
			}
			p.pidAt, p.pidLen = uint8(i), 1
			if b[i]&0x80 != 0 {
				p.pidLen = 2
			}
			i += int(p.pidLen)
		}
		if hasL {
			p.tl0At = uint8(i)
			i++
		}
		if hasTK {
			if b[1]&0x20 != 0 { // T: TID present
				p.tidAt = uint8(i)
			}
			i++
		}
		if len(b) <= i {
			return p, false
		}
	case codecVP9:
		hasI, hasL, flex := b[0]&0x80 != 0, b[0]&0x20 != 0, b[0]&0x10 != 0
		if hasI {
			if len(b) <= i {
				return p, false
			}
			p.pidAt, p.pidLen = uint8(i), 1
			if b[i]&0x80 != 0 {
				p.pidLen = 2
			}
			i += int(p.pidLen)
		}
		p.vp9 = true
		if hasL {
			if len(b) <= i {
				return p, false
			}
			p.tidAt = uint8(i)
			i++
			if !flex {
				p.tl0At = uint8(i)
				i++
			}
		}
		if len(b) < i {
			return p, false
		}
	default:
		return p, false
	}
	return p, true
}

// tid returns the temporal layer of the packet p describes (0 when it carries none). VP8 and VP9
// both put it in the top three bits of its byte; VP8 uses two of them.
func (p picture) tid(b []byte) int8 {
	if p.tidAt == 0 {
		return 0
	}
	if p.vp9 {
		return int8(b[p.tidAt] >> 5)
	}
	return int8(b[p.tidAt] >> 6)
}

// frameStart reports whether b is the first packet of a frame (VP8: S set in partition 0; VP9:
// B set).
func (p picture) frameStart(b []byte) bool {
	if p.vp9 {
		return b[0]&0x08 != 0
	}
	return b[0]&0x10 != 0 && b[0]&0x07 == 0
}

// pictureID reads the picture ID p locates in b.
func (p picture) pictureID(b []byte) uint16 {
	if p.pidLen == 2 {
		return binary.BigEndian.Uint16(b[p.pidAt:]) & 0x7fff
	}
	return uint16(b[p.pidAt] & 0x7f)
}

// setPictureID writes id into the picture ID field, keeping its width (the M bit).
func (p picture) setPictureID(b []byte, id uint16) {
	if p.pidLen == 2 {
		binary.BigEndian.PutUint16(b[p.pidAt:], 0x8000|id&0x7fff)
		return
	}
	b[p.pidAt] = byte(id & 0x7f)
}

// pidMask is the modulus of a picture ID of p's width.
func (p picture) pidMask() uint16 {
	if p.pidLen == 2 {
		return 0x7fff
	}
	return 0x7f
}

// rtpPayloadOffset returns where the payload of the raw RTP packet b starts (RFC 3550 §5.1, with
// CSRCs and a header extension), or 0 if b is too short.
func rtpPayloadOffset(b []byte) int {
	if len(b) < 12 {
		return 0
	}
	n := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < n+4 {
			return 0
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(b[n+2:]))
	}
	if n > len(b) {
		return 0
	}
	return n
}
