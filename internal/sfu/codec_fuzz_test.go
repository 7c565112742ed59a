package sfu

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

// FuzzChooseVideoCodec checks the codec choice on any video m-section a publisher may offer: it
// never panics; a choice is one of the codecs we forward, under the payload type the offer gave
// it (a format that is not a plain payload number is never chosen), named by the offer's rtpmap
// and, when a codec is forced, that codec; and a refusal is ErrCodec (OpenVidu error 800).
func FuzzChooseVideoCodec(f *testing.F) {
	chrome := "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 102 127\r\n" +
		"a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=rtpmap:98 VP9/90000\r\na=fmtp:98 profile-id=0\r\n" +
		"a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n" +
		"a=rtpmap:127 H264/90000\r\na=fmtp:127 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n"
	firefox := "m=video 9 UDP/TLS/RTP/SAVPF 120 124 121 126\r\n" +
		"a=rtpmap:120 VP8/90000\r\na=rtpmap:121 VP9/90000\r\na=rtpmap:126 H264/90000\r\n" +
		"a=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1\r\n"
	for i, m := range []string{chrome, firefox, "m=video 9 UDP/TLS/RTP/SAVPF 96abc +96 300\r\na=rtpmap:96abc VP8/90000\r\na=rtpmap:+96 VP8/90000\r\n", "m=video 9 RTP/AVP 45\r\na=rtpmap:45 AV1/90000\r\n"} {
		f.Add(m, uint8(i))
	}
	wants := []string{CodecAny, CodecVP8, CodecVP9, CodecH264, "AV1"}
	f.Fuzz(func(t *testing.T, media string, w uint8) {
		var d sdp.SessionDescription
		if err := d.UnmarshalString("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" + media); err != nil || len(d.MediaDescriptions) == 0 {
			return
		}
		md := d.MediaDescriptions[0]
		want := wants[int(w)%len(wants)]
		c, err := chooseVideoCodec(md, want)
		if err != nil {
			if !errors.Is(err, ErrCodec) {
				t.Fatalf("chooseVideoCodec(%q) = %v, not ErrCodec", media, err)
			}
			return
		}
		ours := false
		for _, v := range videoCodecs {
			ours = ours || v.MimeType == c.MimeType && v.SDPFmtpLine == c.SDPFmtpLine
		}
		if !ours {
			t.Fatalf("chose %s %q, which we do not forward", c.MimeType, c.SDPFmtpLine)
		}
		pt := strconv.Itoa(int(c.PayloadType))
		named := false
		for _, a := range md.Attributes {
			if p, rest, ok := strings.Cut(a.Value, " "); a.Key == "rtpmap" && ok && p == pt {
				name, _, _ := strings.Cut(rest, "/")
				named = named || strings.EqualFold("video/"+name, c.MimeType)
			}
		}
		if !named || !containsFormat(md.MediaName.Formats, pt) {
			t.Fatalf("chose payload type %s (%s), which the offer's formats %q and rtpmaps do not give it", pt, c.MimeType, md.MediaName.Formats)
		}
		if want != CodecAny && !strings.EqualFold(c.MimeType, "video/"+want) {
			t.Fatalf("chose %s with %s forced", c.MimeType, want)
		}
	})
}

func containsFormat(formats []string, pt string) bool {
	for _, f := range formats {
		if f == pt {
			return true
		}
	}
	return false
}
