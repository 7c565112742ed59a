package whip

import (
	"fmt"
	"testing"
)

func TestMediaOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, sdp    string
		audio, video bool
	}{
		{"audio and video", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n", true, true},
		{"video only, no direction (sendrecv)", "v=0\nm=video 9 UDP/TLS/RTP/SAVPF 96\n", false, true},
		{"a rejected and a receive-only m-line", "v=0\r\nm=audio 0 UDP/TLS/RTP/SAVPF 111\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n", false, false},
		{"inactive audio", "m=audio 9 RTP/AVP 0\r\na=inactive\r\nm=video 9 RTP/AVP 96\r\na=sendrecv\r\n", false, true},
		{"no media", "v=0\r\n", false, false},
	} {
		if a, v := mediaOf(tc.sdp); a != tc.audio || v != tc.video {
			t.Errorf("%s: audio %v video %v, want %v %v", tc.name, a, v, tc.audio, tc.video)
		}
	}
}

func TestCandidatesOf(t *testing.T) {
	t.Parallel()
	frag := "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n" +
		"a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0\r\n" +
		"a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0\r\n" +
		"m=video 9 RTP/AVP 0\r\na=mid:1\r\na=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active\r\na=end-of-candidates\r\n"
	var got []string
	for _, c := range candidatesOf(frag) {
		got = append(got, fmt.Sprintf("%s mid=%s index=%d", c.Candidate, *c.SDPMid, *c.SDPMLineIndex))
	}
	want := []string{
		"candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 mid=0 index=0",
		"candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 mid=0 index=0",
		"candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active mid=1 index=1",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("candidates:\n got %q\nwant %q", got, want)
	}
}

// FuzzFragments: the SDP readers take any text without panicking, and every candidate they find is
// a line of its input.
func FuzzFragments(f *testing.F) {
	f.Add("a=ice-ufrag:EsAw\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 udp 1 192.0.2.1 1 typ host\r\n")
	f.Add("v=0\r\nm=video 0\r\nm=\r\na=candidate:\r\na=mid:\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		mediaOf(s)
		for _, c := range candidatesOf(s) {
			if len(c.Candidate) > len(s) {
				t.Fatalf("candidate %q longer than the input", c.Candidate)
			}
		}
	})
}
