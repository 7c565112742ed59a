package loadgen

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// trackStats counts one received track. Its reader goroutine is the only writer; snapshots read
// the atomics from elsewhere.
type trackStats struct {
	video    bool
	start    time.Time // when the participant started joining
	packets  atomic.Uint64
	bytes    atomic.Uint64
	expected atomic.Uint64 // extended highest sequence number - first + 1 (RFC 3550 A.3)
	jitter   atomic.Uint64 // RFC 3550 interarrival jitter, in 1/16 timestamp units
	firstPkt atomic.Int64  // ns from start to the first packet, 0 = none yet
	firstKey atomic.Int64  // ns from start to the first keyframe (video)
	clock    float64       // RTP clock rate
}

// snapshot is what a measurement window subtracts.
type trackSnap struct {
	packets, bytes, expected uint64
}

func (s *trackStats) snap() trackSnap {
	return trackSnap{s.packets.Load(), s.bytes.Load(), s.expected.Load()}
}

// jitterMs is the current interarrival jitter in milliseconds.
func (s *trackStats) jitterMs() float64 {
	return float64(s.jitter.Load()) / 16 / s.clock * 1000
}

// read consumes a track until it ends, parsing only the RTP fixed header it needs (no per-packet
// allocation, no logging), and asks for a keyframe while video has started without one.
func (s *trackStats) read(rt RemoteTrack) {
	tr := rt.Track
	s.clock = float64(tr.Codec().ClockRate)
	if s.clock == 0 {
		s.clock = 90000
	}
	h264 := tr.Codec().MimeType == webrtc.MimeTypeH264
	buf := make([]byte, 1600)
	var (
		started        bool
		base, cycles   uint32
		maxSeq         uint16
		lastTransit    int64
		jitter         float64
		lastPLI        time.Time
		haveKey        bool
		clockPerSecond = s.clock
	)
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		if n < 12 {
			continue
		}
		now := time.Now()
		seq := binary.BigEndian.Uint16(buf[2:4])
		ts := binary.BigEndian.Uint32(buf[4:8])
		if !started {
			started, base, maxSeq = true, uint32(seq), seq
			s.firstPkt.Store(int64(now.Sub(s.start)))
		} else if d := seq - maxSeq; d < 0x8000 {
			if seq < maxSeq {
				cycles += 1 << 16
			}
			maxSeq = seq
		}
		s.expected.Store(uint64(cycles) + uint64(maxSeq) - uint64(base) + 1)
		s.packets.Add(1)
		s.bytes.Add(uint64(n))
		// RFC 3550 6.4.1: J += (|D| - J) / 16, D the change in transit time.
		transit := int64(float64(now.UnixNano())*clockPerSecond/1e9) - int64(ts)
		if lastTransit != 0 {
			d := transit - lastTransit
			if d < 0 {
				d = -d
			}
			jitter += (float64(d) - jitter) / 16
			s.jitter.Store(uint64(jitter * 16))
		}
		lastTransit = transit
		if s.video && !haveKey {
			if isKeyframe(buf[:n], h264) {
				haveKey = true
				s.firstKey.Store(int64(now.Sub(s.start)))
			} else if rt.PLI != nil && now.Sub(lastPLI) > time.Second {
				// A browser that cannot decode asks again; the server may coalesce these.
				lastPLI = now
				_ = rt.PLI()
			}
		}
	}
}

// rtpPayload returns the payload of a raw RTP packet, or nil.
func rtpPayload(b []byte) []byte {
	if len(b) < 12 {
		return nil
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // header extension
		if len(b) < off+4 {
			return nil
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:off+4]))
	}
	end := len(b)
	if b[0]&0x20 != 0 && end > off { // padding
		end -= int(b[end-1])
	}
	if off >= end {
		return nil
	}
	return b[off:end]
}

// isKeyframe tells whether an RTP packet starts a keyframe: VP8 (RFC 7741 §4.2–4.3) or H.264
// (RFC 6184: an IDR slice or SPS, alone, in a STAP-A or at the start of an FU-A).
func isKeyframe(pkt []byte, h264 bool) bool {
	p := rtpPayload(pkt)
	if len(p) == 0 {
		return false
	}
	if h264 {
		switch t := p[0] & 0x1f; t {
		case 5, 7:
			return true
		case 24: // STAP-A: 16-bit sizes then NAL units
			for i := 1; i+2 < len(p); {
				size := int(binary.BigEndian.Uint16(p[i:]))
				if i+2 < len(p) {
					if nt := p[i+2] & 0x1f; nt == 5 || nt == 7 {
						return true
					}
				}
				i += 2 + size
			}
		case 28: // FU-A start fragment
			return len(p) > 1 && p[1]&0x80 != 0 && (p[1]&0x1f == 5 || p[1]&0x1f == 7)
		}
		return false
	}
	// VP8 payload descriptor: X|R|N|S|R|PID, then optional I|L|T|K and their fields.
	x, start, pid := p[0]&0x80 != 0, p[0]&0x10 != 0, p[0]&0x07
	if !start || pid != 0 {
		return false
	}
	i := 1
	if x {
		if len(p) < 2 {
			return false
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 { // picture id, 7 or 15 bits
			if len(p) > i && p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if ext&0x40 != 0 {
			i++
		}
		if ext&0x30 != 0 {
			i++
		}
	}
	// VP8 payload header: the P bit (inverse keyframe flag) is bit 0 of the first byte.
	return len(p) > i && p[i]&0x01 == 0
}
