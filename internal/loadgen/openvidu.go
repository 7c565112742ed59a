package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
)

// OpenVidu joins an OpenVidu 2 server (Parley or openvidu-server) exactly as the stock
// openvidu-browser 2.32 does: a token from the REST API, then the /openvidu JSON-RPC socket with
// joinRoom, publishVideo and receiveVideoFrom carrying the client's offers, trickled
// onIceCandidate, a ping every 5 s and leaveRoom. One PeerConnection per published stream and per
// subscription, like the browser; every PeerConnection comes from two shared pion APIs.
type OpenVidu struct {
	base   *url.URL
	secret string
	http   *http.Client
	pubAPI *webrtc.API
	subAPI *webrtc.API
	fb     FeedbackCounter
	codec  string

	mu        sync.Mutex
	simulcast bool
	media     string
}

// OpenViduOptions configures the OpenVidu target.
type OpenViduOptions struct {
	// URL is the server's base, e.g. http://127.0.0.1:4443.
	URL string
	// Secret is the REST password of user OPENVIDUAPP.
	Secret string
	// VideoCodec is what publishers send: "VP8" or "H264".
	VideoCodec string
	// LoopbackOnly keeps ICE on loopback addresses (the server is on this machine).
	LoopbackOnly bool
}

// NewOpenVidu prepares the target; it contacts nothing yet.
func NewOpenVidu(o OpenViduOptions) (*OpenVidu, error) {
	u, err := url.Parse(strings.TrimRight(o.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server url %q: want http(s)://host:port", o.URL)
	}
	t := &OpenVidu{base: u, secret: o.Secret, http: &http.Client{Timeout: 10 * time.Second}, codec: strings.ToUpper(o.VideoCodec)}
	if t.codec == "" {
		t.codec = "VP8"
	}
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	// No mDNS: it would open a multicast socket per PeerConnection and hide the host candidates.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if o.LoopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	video, err := videoCodec(o.VideoCodec)
	if err != nil {
		return nil, err
	}
	// Publishers offer only the codec their files hold, so the server cannot pick another.
	pubMedia := &webrtc.MediaEngine{}
	if err := pubMedia.RegisterCodec(opusCodec, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	if err := pubMedia.RegisterCodec(video, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	pubReg := &interceptor.Registry{}
	resp, err := nack.NewResponderInterceptor()
	if err != nil {
		return nil, err
	}
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, err
	}
	pubReg.Add(resp)
	pubReg.Add(sr)
	t.pubAPI = webrtc.NewAPI(webrtc.WithMediaEngine(pubMedia), webrtc.WithInterceptorRegistry(pubReg), webrtc.WithSettingEngine(se))

	// Subscribers accept every codec a browser would, and answer loss as a browser does: NACKs and
	// receiver reports (counted by fb, registered first so it sees what the others write).
	subMedia := &webrtc.MediaEngine{}
	if err := subMedia.RegisterCodec(opusCodec, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	for _, c := range []string{"VP8", "H264"} {
		vc, _ := videoCodec(c)
		if err := subMedia.RegisterCodec(vc, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	subReg := &interceptor.Registry{}
	subReg.Add(&t.fb)
	// A browser asks for a lost packet at most 10 times (libwebrtc's kMaxNackRetries); pion's
	// default, unbounded, turns a burst of loss on a starved generator into a NACK storm.
	gen, err := nack.NewGeneratorInterceptor(nack.GeneratorMaxNacksPerPacket(10))
	if err != nil {
		return nil, err
	}
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return nil, err
	}
	subReg.Add(gen)
	subReg.Add(rr)
	t.subAPI = webrtc.NewAPI(webrtc.WithMediaEngine(subMedia), webrtc.WithInterceptorRegistry(subReg), webrtc.WithSettingEngine(se))
	return t, nil
}

var videoFeedback = []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}

var opusCodec = webrtc.RTPCodecParameters{
	RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
	PayloadType:        111,
}

func videoCodec(name string) (webrtc.RTPCodecParameters, error) {
	switch strings.ToUpper(name) {
	case "VP8", "":
		return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback}, PayloadType: 96}, nil
	case "H264":
		// Constrained baseline, packetization mode 1: what browsers offer first and what the
		// generated files hold.
		return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: videoFeedback}, PayloadType: 102}, nil
	}
	return webrtc.RTPCodecParameters{}, fmt.Errorf("video codec %q: want VP8 or H264", name)
}

// Name implements Target.
func (t *OpenVidu) Name() string { return "openvidu " + t.base.Host }

// Feedback implements Target.
func (t *OpenVidu) Feedback() (uint64, uint64) { return t.fb.nacks.Load(), t.fb.plis.Load() }

// Info implements Target.
func (t *OpenVidu) Info() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.media == "" {
		return "not joined yet"
	}
	s := "mediaServer=" + t.media + ", simulcast not offered (videoSimulcast=false): one encoding per publisher"
	if t.simulcast {
		s = "mediaServer=" + t.media + ", server offers simulcast but parley-load publishes one encoding"
	}
	return s
}

// rest calls the REST API with Basic auth as openvidu-node-client does.
func (t *OpenVidu) rest(ctx context.Context, path string, body any, out any) (int, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base.String()+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth("OPENVIDUAPP", t.secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("POST %s: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}

// token creates the session if needed (409 = it exists) and a connection in it.
func (t *OpenVidu) token(ctx context.Context, room, role string) (string, error) {
	// The session forces the codec the files hold, as an application would with forcedVideoCodec.
	st, err := t.rest(ctx, "/openvidu/api/sessions", map[string]any{"customSessionId": room, "forcedVideoCodec": t.codec}, nil)
	if err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	if st != http.StatusOK && st != http.StatusConflict {
		return "", fmt.Errorf("create session: HTTP %d", st)
	}
	var c struct {
		Token string `json:"token"`
	}
	st, err = t.rest(ctx, "/openvidu/api/sessions/"+url.PathEscape(room)+"/connection", map[string]any{"role": role, "data": ""}, &c)
	if err != nil {
		return "", fmt.Errorf("create connection: %w", err)
	}
	if st != http.StatusOK || c.Token == "" {
		return "", fmt.Errorf("create connection: HTTP %d", st)
	}
	return c.Token, nil
}
