package sfu

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Keyframe requests cost the publisher a large frame and every subscriber its bitrate, so the
// forwarder merges them. Two classes:
//
//   - prompt: a subscriber that just connected, or a recording tap that must start decodable:
//     nothing is on screen yet, so it goes out within keyframePromptGap of the previous request.
//   - repair: a subscriber's decoder lost its reference (PLI/FIR): merged across the whole fleet
//     of subscribers to at most one request per keyframeRepairGap. A congested subscriber's repair
//     requests are filtered before they get here (see congestion.go).
//
// A request inside its gap is deferred to the gap's end rather than dropped, so nobody waits for the
// publisher's next periodic keyframe (Chrome sends one only every few minutes).
const (
	keyframePromptGap = 300 * time.Millisecond
	keyframeRepairGap = time.Second
)

// keyframeLimiter decides when a keyframe request may go to the publisher. It holds no clock of its
// own, so the policy is tested with made-up times.
type keyframeLimiter struct {
	last time.Time // when the last request went out
	due  time.Time // when a deferred request is to go out; zero when none is pending
}

// request records a request at now and reports whether to send one now; otherwise, when defer is
// non-zero, the caller must call fire at that time.
func (l *keyframeLimiter) request(now time.Time, prompt bool) (send bool, deferTo time.Time) {
	gap := keyframeRepairGap
	if prompt {
		gap = keyframePromptGap
	}
	at := l.last.Add(gap)
	if l.last.IsZero() || !now.Before(at) {
		l.last, l.due = now, time.Time{} // one keyframe answers every pending request
		return true, time.Time{}
	}
	if l.due.IsZero() || at.Before(l.due) {
		l.due = at
		return false, at
	}
	return false, time.Time{} // an earlier deferred request already covers this one
}

// fire is the deferred request's time arriving: it reports whether to send (false when a request
// sent in between already answered it, or a later deferral replaced this one).
func (l *keyframeLimiter) fire(now time.Time, due time.Time) bool {
	if l.due.IsZero() || !l.due.Equal(due) {
		return false
	}
	l.last, l.due = now, time.Time{}
	return true
}

// keyframeRequests is a forwarder's limiter with its lock; requests are rare (not per packet).
type keyframeRequests struct {
	mu  sync.Mutex
	lim keyframeLimiter
	// asked, when set, is told of every request before the limiter: a test's model publisher,
	// which answers them on its own clock.
	asked func()
}

// requestKeyframe asks the publisher for a keyframe under the limiter's rules.
func (f *forwarder) requestKeyframe(prompt bool) {
	if f.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	if f.kf.asked != nil {
		f.kf.asked()
	}
	f.kf.mu.Lock()
	send, due := f.kf.lim.request(time.Now(), prompt)
	f.kf.mu.Unlock()
	if send {
		f.sendPLI(prompt, false)
	} else if !due.IsZero() {
		time.AfterFunc(time.Until(due), func() {
			f.kf.mu.Lock()
			ok := f.kf.lim.fire(time.Now(), due)
			f.kf.mu.Unlock()
			if ok {
				f.sendPLI(prompt, true)
			}
		})
	}
}

// sendPLI asks the publisher for a keyframe; prompt and deferred are for the debug log.
func (f *forwarder) sendPLI(prompt, deferred bool) {
	ssrc, pc := f.ssrc.Load(), f.pc.Load()
	if ssrc == 0 || pc == nil {
		return
	}
	if f.log != nil && f.log.Enabled(context.Background(), slog.LevelDebug) {
		f.log.Debug("keyframe asked of the publisher", "rid", f.rid, "ssrc", ssrc, "prompt", prompt, "deferred", deferred)
	}
	f.plis.Add(1)
	_ = pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
}

// Keyframe detection, from the first bytes of an RTP payload: a few byte reads per video packet,
// done once per publisher packet (not per subscriber).
const (
	codecOther = iota
	codecVP8
	codecVP9
	codecH264
)

func codecKind(mime string) int {
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeVP8):
		return codecVP8
	case strings.EqualFold(mime, webrtc.MimeTypeVP9):
		return codecVP9
	case strings.EqualFold(mime, webrtc.MimeTypeH264):
		return codecH264
	}
	return codecOther
}

// isKeyframeStart reports whether payload is the first packet of a keyframe (a decoder can start
// there).
func isKeyframeStart(codec int, payload []byte) bool {
	switch codec {
	case codecVP8:
		return vp8KeyframeStart(payload)
	case codecVP9:
		return vp9KeyframeStart(payload)
	case codecH264:
		return h264KeyframeStart(payload)
	}
	return false
}

// vp8KeyframeStart reads the VP8 payload descriptor (RFC 7741 §4.2) and the first payload header
// byte: start of partition 0 with the inverse key frame bit P clear.
func vp8KeyframeStart(b []byte) bool {
	if len(b) < 1 || b[0]&0x10 == 0 || b[0]&0x07 != 0 { // S set, partition index 0
		return false
	}
	i := 1
	if b[0]&0x80 != 0 { // X: extension byte follows
		if len(b) < 2 {
			return false
		}
		x := b[1]
		i = 2
		if x&0x80 != 0 { // I: picture ID, 7 or 15 bits
			if len(b) <= i {
				return false
			}
			if b[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX
			i++
		}
	}
	return len(b) > i && b[i]&0x01 == 0
}

// vp9KeyframeStart reads the VP9 payload descriptor: beginning of a frame (B) that is not
// inter-picture predicted (P clear), in spatial layer 0 when layer indices are present.
func vp9KeyframeStart(b []byte) bool {
	if len(b) < 1 {
		return false
	}
	h := b[0]
	if h&0x40 != 0 || h&0x08 == 0 { // P set, or not the beginning of a frame
		return false
	}
	i := 1
	if h&0x80 != 0 { // I: picture ID
		if len(b) <= i {
			return false
		}
		if b[i]&0x80 != 0 {
			i++
		}
		i++
	}
	if h&0x20 != 0 { // L: layer indices; SID in bits 1..3
		if len(b) <= i {
			return false
		}
		return (b[i]>>1)&0x07 == 0
	}
	return true
}

// h264KeyframeStart finds an IDR slice or a sequence parameter set at the start of the payload:
// a single NAL unit, a STAP-A aggregate, or the first fragment of an FU-A (RFC 6184).
func h264KeyframeStart(b []byte) bool {
	if len(b) < 1 {
		return false
	}
	switch t := b[0] & 0x1F; t {
	case 5, 7:
		return true
	case 24: // STAP-A: 16-bit sizes, each followed by a NAL unit
		for i := 1; i+2 < len(b); {
			n := int(b[i])<<8 | int(b[i+1])
			if n == 0 || i+2+n > len(b) {
				return false
			}
			if nt := b[i+2] & 0x1F; nt == 5 || nt == 7 {
				return true
			}
			i += 2 + n
		}
	case 28: // FU-A: start bit and the fragmented unit's type
		return len(b) > 1 && b[1]&0x80 != 0 && (b[1]&0x1F == 5 || b[1]&0x1F == 7)
	}
	return false
}
