package sfu

import (
	"strconv"
	"strings"
)

// maxStartKbps bounds where a publisher's estimate starts when the cap is higher (or a
// deployment sets it very high): about what a 1280x720 camera needs, which a home uplink can
// carry; past it the browser's own probes find the rest.
const maxStartKbps = 2500

// startBitrate returns answer with x-google-start-bitrate=kbps (at most maxStartKbps) in the
// format parameters of every video codec (no change when kbps <= 0). Chromium reads it from the
// remote description as where its send-side estimate starts, in place of its default 300 kbit/s.
// From 300 it reaches the cap only by its first probe; when that fails (on a busy machine, the
// browser's first frames late) the estimate climbs 8 % a second: 37 of 92 publishers of the
// weak-network bed's runs began under 800 kbit/s, and a simulcast one sent its lowest layer alone
// for up to 30 s (one make test failed by it). Starting at the cap (our REMB) the encoder sends
// every layer at once, and a link that cannot carry it is found by the browser's own delay and
// loss control within its first seconds, as when a link narrows mid-call. Firefox ignores the
// parameter.
func startBitrate(answer string, kbps int) string {
	if kbps <= 0 {
		return answer
	}
	kbps = min(kbps, maxStartKbps)
	param := "x-google-start-bitrate=" + strconv.Itoa(kbps)
	// First pass: per m-section, the video codecs' payload types and which have an fmtp line.
	type key struct {
		section int
		pt      string
	}
	codecs, fmtp := map[key]bool{}, map[key]bool{}
	section, video := -1, false
	for line := range strings.Lines(answer) {
		l := strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(l, "m="):
			section++
			video = strings.HasPrefix(l, "m=video ")
		case video && strings.HasPrefix(l, "a=rtpmap:"):
			pt, name, ok := strings.Cut(strings.TrimPrefix(l, "a=rtpmap:"), " ")
			if ok && isMediaCodec(name) {
				codecs[key{section, pt}] = true
			}
		case video && strings.HasPrefix(l, "a=fmtp:"):
			pt, _, _ := strings.Cut(strings.TrimPrefix(l, "a=fmtp:"), " ")
			fmtp[key{section, pt}] = true
		}
	}
	if len(codecs) == 0 {
		return answer
	}
	var b strings.Builder
	b.Grow(len(answer) + 64*len(codecs))
	section = -1
	for line := range strings.Lines(answer) {
		l := strings.TrimRight(line, "\r\n")
		eol := line[len(l):]
		if eol == "" {
			eol = "\r\n"
		}
		switch {
		case strings.HasPrefix(l, "m="):
			section++
		case strings.HasPrefix(l, "a=fmtp:"):
			if pt, params, _ := strings.Cut(strings.TrimPrefix(l, "a=fmtp:"), " "); codecs[key{section, pt}] {
				if params = strings.TrimSpace(params); params != "" {
					params += ";"
				}
				b.WriteString("a=fmtp:" + pt + " " + params + param + eol)
				continue
			}
		case strings.HasPrefix(l, "a=rtpmap:"):
			pt, _, _ := strings.Cut(strings.TrimPrefix(l, "a=rtpmap:"), " ")
			if k := (key{section, pt}); codecs[k] && !fmtp[k] {
				b.WriteString(l + eol + "a=fmtp:" + pt + " " + param + eol)
				continue
			}
		}
		b.WriteString(line)
	}
	return b.String()
}

// isMediaCodec tells a video codec from the payload types that only carry another's packets
// (an rtpmap encoding name such as "VP8/90000").
func isMediaCodec(rtpmap string) bool {
	name, _, _ := strings.Cut(rtpmap, "/")
	switch strings.ToLower(name) {
	case "rtx", "red", "ulpfec", "flexfec-03", "flexfec":
		return false
	}
	return true
}
