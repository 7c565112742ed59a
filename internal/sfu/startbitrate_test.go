package sfu

import (
	"context"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// startParams returns, per m-section kind, the x-google-start-bitrate of each payload type that has
// one.
func startParams(t *testing.T, answer string) map[string]map[string]string {
	t.Helper()
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		t.Fatalf("the answer no longer parses: %v", err)
	}
	out := map[string]map[string]string{}
	for _, m := range d.MediaDescriptions {
		for _, a := range m.Attributes {
			if a.Key != "fmtp" {
				continue
			}
			pt, params, _ := strings.Cut(a.Value, " ")
			for _, kv := range strings.Split(params, ";") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(kv), "x-google-start-bitrate="); ok {
					if out[m.MediaName.Media] == nil {
						out[m.MediaName.Media] = map[string]string{}
					}
					out[m.MediaName.Media][pt] = v
				}
			}
		}
	}
	return out
}

// A publisher's answer has Chrome start its send-side estimate at the connection's cap, on the
// video codec only, and a browser accepts it.
func TestPublisherAnswerStartsTheEstimateAtTheCap(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0, MaxRecvBandwidth: 1000, MinRecvBandwidth: 300})
	own := 600
	for _, c := range []struct {
		name string
		own  *int
		want string
	}{{"server cap", nil, "1000"}, {"the connection's own cap", &own, "600"}} {
		t.Run(c.name, func(t *testing.T) {
			b := newBrowser(t)
			for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
				if _, err := b.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
					t.Fatal(err)
				}
			}
			pub, ans, err := s.Publish(context.Background(), PublishRequest{Offer: b.offer(t), VideoCodec: CodecVP8, MaxKbps: c.own})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			got := startParams(t, ans)
			if len(got) != 1 || len(got["video"]) != 1 {
				t.Fatalf("start bitrates %v, want one on the video codec", got)
			}
			for pt, v := range got["video"] {
				if v != c.want || !strings.Contains(ans, "a=rtpmap:"+pt+" VP8/90000") {
					t.Fatalf("x-google-start-bitrate=%s on payload type %s, want %s on VP8:\n%s", v, pt, c.want, ans)
				}
			}
			b.answer(t, ans)
		})
	}
	t.Run("uncapped", func(t *testing.T) {
		s := newTestSFU(t, Config{Port: 0})
		b := newBrowser(t)
		if _, err := b.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
		pub, ans, err := s.Publish(context.Background(), PublishRequest{Offer: b.offer(t), VideoCodec: CodecVP8})
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		if got := startParams(t, ans); len(got) != 0 {
			t.Fatalf("an uncapped publisher is told a start bitrate: %v", got)
		}
	})
}

// Codecs with format parameters keep theirs; the payload types that carry another codec's
// packets get none.
func TestStartBitrateKeepsFormatParameters(t *testing.T) {
	in := "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 102 103\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
		"a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n"
	want := strings.Replace(in, "profile-level-id=42e01f\r\n", "profile-level-id=42e01f;x-google-start-bitrate=800\r\n", 1)
	if got := startBitrate(in, 800); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := startBitrate(in, 0); got != in {
		t.Fatalf("changed without a cap:\n%s", got)
	}
	// A cap set very high starts the estimate at maxStartKbps, not at the cap.
	if got := startParams(t, startBitrate(in, 50000)); got["video"]["102"] != "2500" {
		t.Fatalf("a 50 Mbit/s cap: start bitrates %v, want 2500 kbit/s", got)
	}
}
