package sfu

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Video codec names accepted by Publish (OpenVidu's forcedVideoCodec values, resolved).
const (
	CodecVP8  = "VP8"
	CodecVP9  = "VP9"
	CodecH264 = "H264"
	// CodecAny takes the publisher's first offered codec that we can forward (OpenVidu's NONE).
	CodecAny = ""
)

var videoFeedback = []webrtc.RTCPFeedback{
	{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"},
}

var opus = webrtc.RTPCodecParameters{
	RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
	PayloadType:        111,
}

var videoCodecs = []webrtc.RTPCodecParameters{
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback}, PayloadType: 96},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0", RTCPFeedback: videoFeedback}, PayloadType: 98},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: videoFeedback}, PayloadType: 102},
	{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", RTCPFeedback: videoFeedback}, PayloadType: 127},
}

// rtxPayloadTypes pairs each video payload type of ours with its retransmission payload type
// (RFC 4588, apt=), offered to subscribers only: we answer their NACKs, publishers answer ours.
var rtxPayloadTypes = map[webrtc.PayloadType]webrtc.PayloadType{96: 97, 98: 99, 102: 103, 127: 125}

// registerRTX adds video/rtx for every video codec, so a subscriber that negotiates it gets its
// retransmissions on a stream of their own.
func registerRTX(m *webrtc.MediaEngine) error {
	for _, c := range videoCodecs {
		rtx := webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: fmt.Sprintf("apt=%d", c.PayloadType)},
			PayloadType:        rtxPayloadTypes[c.PayloadType],
		}
		if err := m.RegisterCodec(rtx, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	return nil
}

func registerCodecs(m *webrtc.MediaEngine) error {
	if err := m.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		return err
	}
	for _, c := range videoCodecs {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	return nil
}

// chooseVideoCodec picks, for one video m-line of a publisher's offer, the single codec the stream
// will use: the forced one if the offer has it, else (CodecAny) the first offered one we support. An
// SFU without transcoding needs every subscriber to decode what the publisher sends, so one codec
// per stream, and per session when forced.
func chooseVideoCodec(md *sdp.MediaDescription, want string) (webrtc.RTPCodecParameters, error) {
	for _, f := range offeredFormats(md) {
		name, _, _ := strings.Cut(f.rtpmap, "/")
		if name == "" || (want != CodecAny && !strings.EqualFold(name, want)) {
			continue
		}
		for _, c := range videoCodecs {
			if strings.EqualFold(c.MimeType, "video/"+name) && fmtpCompatible(c.MimeType, c.SDPFmtpLine, f.fmtp) {
				// The offer's payload type, not ours: H.264 profiles get different numbers in every
				// browser, and answering with ours can name another of the offer's profiles.
				c.PayloadType = f.pt
				// Publishers also get transport-wide congestion control feedback, so the browser
				// fits its video to its own uplink (pion's answer keeps only the feedback both the
				// preference and the media engine list).
				c.RTCPFeedback = append(slices.Clip(c.RTCPFeedback), webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC})
				return c, nil
			}
		}
	}
	if want == CodecAny {
		want = "VP8, VP9 or H264"
	}
	return webrtc.RTPCodecParameters{}, fmt.Errorf("%w: the offer has no %s video", ErrCodec, want)
}

// chooseAudioCodec picks Opus for a publisher's audio m-section under the payload type the offer
// gave it. An answer must keep the offer's numbers (RFC 3264 §6.1): Firefox offers Opus as 109,
// and answered with our 111 it sent 109 all the same, which pion then dropped as an unknown codec
// (no audio from any Firefox publisher).
func chooseAudioCodec(md *sdp.MediaDescription) (webrtc.RTPCodecParameters, bool) {
	for _, f := range offeredFormats(md) {
		if strings.HasPrefix(strings.ToLower(f.rtpmap), "opus/48000") {
			c := opus
			c.PayloadType = f.pt
			return c, true
		}
	}
	return webrtc.RTPCodecParameters{}, false
}

// offeredFormat is one payload type of an m-section with what its rtpmap and fmtp lines say of it.
type offeredFormat struct {
	pt     webrtc.PayloadType
	rtpmap string // encoding name/clock rate[/channels]; "" without an rtpmap line
	fmtp   string
}

// offeredFormats lists md's payload types in the offer's order of preference. A payload type is 7
// bits written in decimal (RFC 3550 §5.1, RFC 4566 §5.14): anything else is left out (Sscan would
// also read "96abc" or "0x60" as 96 and answer for a format the offer does not have).
func offeredFormats(md *sdp.MediaDescription) []offeredFormat {
	var out []offeredFormat
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue
		}
		o := offeredFormat{pt: webrtc.PayloadType(pt)}
		for _, a := range md.Attributes {
			if a.Key != "rtpmap" && a.Key != "fmtp" {
				continue
			}
			if p, rest, ok := strings.Cut(a.Value, " "); ok && p == f {
				if a.Key == "rtpmap" {
					o.rtpmap = rest
				} else {
					o.fmtp = rest
				}
			}
		}
		out = append(out, o)
	}
	return out
}

// ErrCodec means the publisher did not offer the session's forced video codec (OpenVidu error 800).
var ErrCodec = fmt.Errorf("%w: forced codec not offered", ErrSDP)

// fmtpCompatible matches H264 on profile and packetization mode (what decoders care about); other
// codecs on the name alone.
func fmtpCompatible(mime, ours, theirs string) bool {
	if !strings.EqualFold(mime, webrtc.MimeTypeH264) {
		return true
	}
	p := func(s, key string) string {
		for _, kv := range strings.Split(s, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && strings.EqualFold(k, key) {
				return strings.ToLower(v)
			}
		}
		return ""
	}
	profile := func(s string) string {
		if v := p(s, "profile-level-id"); len(v) >= 4 {
			return v[:4] // profile_idc + constraint flags; the level may differ
		}
		return ""
	}
	return p(ours, "packetization-mode") == p(theirs, "packetization-mode") && profile(ours) == profile(theirs)
}
