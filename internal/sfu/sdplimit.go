package sfu

import (
	"fmt"
	"strings"
)

// Bounds on a browser's session description, checked before pion parses it (issue 14: an offer
// with 14,000 m-lines cost 2.4 s of CPU). An OpenVidu PeerConnection carries one stream: an
// audio and a video m-line, and a data channel some clients add. A Chrome offer with simulcast
// and every codec it knows is about 12 KiB and 200 lines, Firefox's smaller.
const (
	maxSDPBytes  = 32 << 10
	maxSDPMedia  = 4
	maxSDPLines  = 600
	maxSDPLineSz = 4 << 10
	// maxSDPCandidates: a browser lists one candidate per local address, protocol and kind
	// (host, srflx, relay); pion adds each to the agent, which is the costly part of a parse.
	maxSDPCandidates = 32
)

// checkSDP refuses a description past the bounds, in one pass over its bytes and before any
// parsing, so a hostile one costs microseconds.
func checkSDP(sdp string) error {
	if len(sdp) > maxSDPBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrSDP, len(sdp), maxSDPBytes)
	}
	lines, media, cands := 0, 0, 0
	for line := range strings.Lines(sdp) {
		lines++
		if lines > maxSDPLines {
			return fmt.Errorf("%w: more than %d lines", ErrSDP, maxSDPLines)
		}
		if len(line) > maxSDPLineSz {
			return fmt.Errorf("%w: a line of %d bytes, at most %d", ErrSDP, len(line), maxSDPLineSz)
		}
		if strings.HasPrefix(line, "a=candidate:") {
			if cands++; cands > maxSDPCandidates {
				return fmt.Errorf("%w: more than %d candidates", ErrSDP, maxSDPCandidates)
			}
		}
		if strings.HasPrefix(line, "m=") {
			if media++; media > maxSDPMedia {
				return fmt.Errorf("%w: more than %d media sections", ErrSDP, maxSDPMedia)
			}
		}
	}
	return nil
}
