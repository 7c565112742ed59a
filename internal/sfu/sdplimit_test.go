package sfu

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// hostileSDP is issue 14's publishVideo offer: a valid header, then m-lines by the thousand.
func hostileSDP(mlines int) string {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n")
	for range mlines {
		b.WriteString("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\na=sendonly\r\n")
	}
	return b.String()
}

// TestHostileSDPRefused: an offer past the bounds is refused as ErrSDP by every entry point
// before pion sees it, and leaves nothing behind.
func TestHostileSDPRefused(t *testing.T) {
	t.Parallel()
	s := newTestSFU(t, Config{})
	for _, sdp := range []string{
		hostileSDP(14000),                       // issue 14: 969 KB
		hostileSDP(maxSDPMedia + 1),             // small, but more media than a stream has
		"v=0\r\na=" + strings.Repeat("x", 5000), // one huge line
		strings.Repeat("a=x\r\n", maxSDPLines+1),
	} {
		if _, _, err := s.Publish(context.Background(), PublishRequest{Offer: sdp}); !errors.Is(err, ErrSDP) {
			t.Errorf("Publish of a %d-byte hostile offer: %v, want ErrSDP", len(sdp), err)
		}
		if _, _, err := s.Subscribe(context.Background(), nil, SubscribeRequest{Offer: sdp}); !errors.Is(err, ErrSDP) {
			t.Errorf("Subscribe of a %d-byte hostile offer: %v, want ErrSDP", len(sdp), err)
		}
	}
	if err := checkSDP(hostileSDP(2)); err != nil {
		t.Errorf("an audio and a video m-line refused: %v", err)
	}
}

// BenchmarkHostileSDP is what refusing issue 14's 969 KB offer costs (it cost 2.4 s parsed).
func BenchmarkHostileSDP(b *testing.B) {
	sdp := hostileSDP(14000)
	for b.Loop() {
		if checkSDP(sdp) == nil {
			b.Fatal("accepted")
		}
	}
}
