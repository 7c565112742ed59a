package turn

import (
	"testing"

	"github.com/parley/parley/internal/sendq"
)

// TestDatagramKind: what a TCP or TLS client's send queue takes each relayed datagram for. The
// SFU's probes (small RTP packets with the padding bit) must be Padding, which goes only into
// the room the client's link has left, never in front of its audio.
func TestDatagramKind(t *testing.T) {
	rtp := func(first, pt byte, n int) []byte {
		b := make([]byte, n)
		b[0], b[1] = first, pt
		return b
	}
	tests := []struct {
		name string
		d    []byte
		want sendq.Kind
	}{
		{"stun", []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42}, sendq.Audio},
		{"dtls", rtp(0x16, 0xfe, 100), sendq.Audio},
		{"audio", rtp(0x80, 111, 140), sendq.Audio},
		{"video", rtp(0x80, 96, 1100), sendq.Video},
		{"probe padding", rtp(0xa0, 96, 12+255+16), sendq.Padding},
		{"probe padding behind extensions", rtp(0xb0, 96, 12+40+255+16), sendq.Padding},
		{"padded rtcp", rtp(0xa0, 201, 40), sendq.Audio},
		{"large padded video", rtp(0xa0, 96, 1100), sendq.Video},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := datagramKind(tt.d); got != tt.want {
				t.Fatalf("datagramKind = %d, want %d", got, tt.want)
			}
		})
	}
}
