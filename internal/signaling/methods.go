package signaling

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/parley/parley/internal/session"
)

// call runs one method. Everything but joinRoom and echo (and ping/connect, handled earlier) needs a
// joined participant (OpenVidu error 803 otherwise).
func (r *rpcSession) call(ctx context.Context, method string, params json.RawMessage) (result, error) {
	if len(params) == 0 || string(params) == "null" {
		params = json.RawMessage("{}")
	}
	switch method {
	case "joinRoom":
		return r.joinRoom(params)
	case "echo":
		return &emptyResult{}, nil
	}
	h, known := methods[method]
	if !known {
		return nil, &rpcError{Code: codeMethodNotFound, Message: "unknown method " + clip(method)}
	}
	part := r.participant()
	if part == nil {
		return nil, &rpcError{Code: session.CodeTransportError, Message: "No connection found for this socket. Method 'Session.connect()' must be the first operation called"}
	}
	return h(ctx, r, part, params)
}

type method func(ctx context.Context, r *rpcSession, p Participant, params json.RawMessage) (result, error)

var methods map[string]method

func init() {
	notSupportedFilter := func(context.Context, *rpcSession, Participant, json.RawMessage) (result, error) {
		return nil, &rpcError{Code: session.CodeFilterNotApplied, Message: "filters are not supported: Parley has no media pipeline to apply them"}
	}
	notEnabled := func(context.Context, *rpcSession, Participant, json.RawMessage) (result, error) {
		return nil, &rpcError{Code: session.CodeServiceNotEnabled, Message: "speech to text is not available in Parley"}
	}
	methods = map[string]method{
		"publishVideo":            publishVideo,
		"unpublishVideo":          unpublishVideo,
		"receiveVideoFrom":        receiveVideoFrom,
		"prepareReceiveVideoFrom": prepareReceiveVideoFrom,
		"unsubscribeFromVideo":    unsubscribeFromVideo,
		"onIceCandidate":          onIceCandidate,
		"leaveRoom":               leaveRoom,
		"sendMessage":             sendMessage,
		"streamPropertyChanged":   streamPropertyChanged,
		// videoData reports the SDK's speaking/video state for OpenVidu PRO's monitoring: ignored.
		"videoData": func(context.Context, *rpcSession, Participant, json.RawMessage) (result, error) {
			return &emptyResult{}, nil
		},
		"reconnectStream":             reconnectStream,
		"forceDisconnect":             forceDisconnect,
		"forceUnpublish":              forceUnpublish,
		"applyFilter":                 notSupportedFilter,
		"removeFilter":                notSupportedFilter,
		"execFilterMethod":            notSupportedFilter,
		"addFilterEventListener":      notSupportedFilter,
		"removeFilterEventListener":   notSupportedFilter,
		"subscribeToSpeechToText":     notEnabled,
		"unsubscribeFromSpeechToText": notEnabled,
	}
}

// joinRoom consumes the token and answers with everything the SDK needs (protocol note §3.2).
func (r *rpcSession) joinRoom(params json.RawMessage) (result, error) {
	var p struct {
		Token    string   `json:"token"`
		Session  string   `json:"session"`
		Platform string   `json:"platform"`
		Metadata string   `json:"metadata"`
		Secret   string   `json:"secret"`
		Recorder flexBool `json:"recorder"`
	}
	if err := decode("joinRoom", params, &p); err != nil {
		return nil, err
	}
	if p.Token == "" {
		return nil, missing("joinRoom", "token")
	}
	if r.participant() != nil {
		return nil, &rpcError{Code: 104, Message: "this socket has already joined a session"}
	}
	sid := p.Session
	if sid == "" {
		sid = sessionFromToken(p.Token)
	}
	if admit := r.h.cfg.Admit; admit != nil {
		if err := admit(); err != nil {
			return nil, &rpcError{Code: session.CodeGeneric, Message: "Unable to join session " + clip(sid) + ": " + err.Error()}
		}
	}
	if p.Secret != "" {
		// OpenVidu lets a holder of the REST secret mint a SUBSCRIBER token inside the socket (its
		// recorder path) and ignores a secret that does not match. Parley never takes the secret
		// as a credential here: the token alone decides, so a client that sends both (the iOS
		// sample sends "MY_SECRET" with a REST token) joins with its token's role, and one that
		// sends only the secret is refused like any invalid token.
		r.h.peerLog(r.socket(), slog.LevelWarn, "joinRoom carried a server secret: ignored, the token decides", "rpc", r.id, "session", clip(sid))
	}
	r.mu.Lock()
	sock := r.sock
	r.mu.Unlock()
	ip := ""
	if sock != nil {
		ip = sock.ip
	}
	part, res, err := r.h.m.Join(session.SessionID(sid), p.Token, session.JoinInfo{Metadata: p.Metadata, Platform: p.Platform, IP: ip, RPC: r.id}, r)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.part = part
	r.mu.Unlock()
	ice := res.IceServers
	if r.h.cfg.IceServers != nil {
		ice = r.h.cfg.IceServers(part.ID(), res.IceServers)
	}
	return joinResultOf(r.id, res, ice, r.h.cfg.Simulcast), nil
}

// sessionFromToken reads sessionId from a token URL, for clients that omit the session param.
func sessionFromToken(token string) string {
	u, err := url.Parse(token)
	if err != nil {
		return ""
	}
	return u.Query().Get("sessionId")
}

func turnHostPort(u string) (string, int, bool) {
	rest := u[strings.Index(u, ":")+1:]
	rest, _, _ = strings.Cut(rest, "?")
	i := strings.LastIndex(rest, ":")
	if i < 0 {
		return rest, 3478, true
	}
	port := 0
	for _, ch := range rest[i+1:] {
		if ch < '0' || ch > '9' {
			return "", 0, false
		}
		port = port*10 + int(ch-'0')
	}
	return strings.Trim(rest[:i], "[]"), port, true
}

func publishVideo(ctx context.Context, _ *rpcSession, part Participant, params json.RawMessage) (result, error) {
	var p struct {
		SDPOffer        string           `json:"sdpOffer"`
		DoLoopback      flexBool         `json:"doLoopback"`
		HasAudio        flexBool         `json:"hasAudio"`
		HasVideo        flexBool         `json:"hasVideo"`
		AudioActive     *flexBool        `json:"audioActive"`
		VideoActive     *flexBool        `json:"videoActive"`
		TypeOfVideo     string           `json:"typeOfVideo"`
		FrameRate       *flexNumber      `json:"frameRate"`
		VideoDimensions string           `json:"videoDimensions"`
		Filter          *json.RawMessage `json:"filter"`
	}
	if err := decode("publishVideo", params, &p); err != nil {
		return nil, err
	}
	if p.SDPOffer == "" {
		return nil, missing("publishVideo", "sdpOffer")
	}
	if p.Filter != nil && string(*p.Filter) != "null" && string(*p.Filter) != "{}" {
		return nil, &rpcError{Code: session.CodeFilterNotApplied, Message: "filters are not supported: Parley has no media pipeline to apply them"}
	}
	md := session.MediaOptions{HasAudio: bool(p.HasAudio), HasVideo: bool(p.HasVideo), AudioActive: bool(p.HasAudio), VideoActive: bool(p.HasVideo),
		TypeOfVideo: p.TypeOfVideo, FrameRate: -1, VideoDimensions: p.VideoDimensions}
	if p.AudioActive != nil {
		md.AudioActive = bool(*p.AudioActive)
	}
	if p.VideoActive != nil {
		md.VideoActive = bool(*p.VideoActive)
	}
	if p.FrameRate != nil {
		md.FrameRate = float64(*p.FrameRate)
	}
	if md.HasVideo && md.TypeOfVideo == "" {
		md.TypeOfVideo = "CAMERA"
	}
	st, answer, err := part.Publish(ctx, session.PublishParams{Offer: p.SDPOffer, Media: md, Loopback: bool(p.DoLoopback)})
	if err != nil {
		return nil, err
	}
	return &publishResult{SDPAnswer: answer, ID: st.ID, CreatedAt: st.CreatedAt.UnixMilli()}, nil
}

func unpublishVideo(_ context.Context, _ *rpcSession, part Participant, _ json.RawMessage) (result, error) {
	return empty(part.Unpublish())
}

// empty is the `{}` result of a method that succeeded when err is nil.
func empty(err error) (result, error) {
	if err != nil {
		return nil, err
	}
	return &emptyResult{}, nil
}

func receiveVideoFrom(ctx context.Context, _ *rpcSession, part Participant, params json.RawMessage) (result, error) {
	var p struct {
		Sender    string `json:"sender"`
		SDPOffer  string `json:"sdpOffer"`
		SDPAnswer string `json:"sdpAnswer"`
	}
	if err := decode("receiveVideoFrom", params, &p); err != nil {
		return nil, err
	}
	if p.Sender == "" {
		return nil, missing("receiveVideoFrom", "sender")
	}
	if p.SDPOffer == "" {
		if p.SDPAnswer != "" { // the answer to prepareReceiveVideoFrom's offer
			return empty(part.AnswerSubscribe(session.StreamID(p.Sender), p.SDPAnswer))
		}
		return nil, missing("receiveVideoFrom", "sdpOffer")
	}
	answer, err := part.Subscribe(ctx, session.StreamID(p.Sender), p.SDPOffer)
	if err != nil {
		return nil, err
	}
	return &answerResult{SDPAnswer: answer}, nil
}

// prepareReceiveVideoFrom starts a subscription whose offer is ours (mediasoup mode, protocol note
// §3.5); the client answers in receiveVideoFrom, or in reconnectStream when reconnect is set. Both
// subscription shapes are accepted whatever joinRoom said, as OpenVidu does.
func prepareReceiveVideoFrom(ctx context.Context, _ *rpcSession, part Participant, params json.RawMessage) (result, error) {
	var p struct {
		Sender    string   `json:"sender"`
		Reconnect flexBool `json:"reconnect"`
	}
	if err := decode("prepareReceiveVideoFrom", params, &p); err != nil {
		return nil, err
	}
	if p.Sender == "" {
		return nil, missing("prepareReceiveVideoFrom", "sender")
	}
	offer, err := part.PrepareSubscribe(ctx, session.StreamID(p.Sender))
	if err != nil {
		return nil, err
	}
	return &offerResult{SDPOffer: offer}, nil
}

func unsubscribeFromVideo(_ context.Context, _ *rpcSession, part Participant, params json.RawMessage) (result, error) {
	var p struct {
		Sender string `json:"sender"`
	}
	if err := decode("unsubscribeFromVideo", params, &p); err != nil {
		return nil, err
	}
	if p.Sender == "" {
		return nil, missing("unsubscribeFromVideo", "sender")
	}
	// The SDK sends the publisher's connection id here; accept a stream id too.
	sender := session.ConnectionID(p.Sender)
	if strings.HasPrefix(p.Sender, "str_") {
		sender = session.StreamID(p.Sender).Owner()
	}
	return empty(part.Unsubscribe(sender))
}

// A browser's ICE candidate line is under 300 bytes; its endpointName is a connection or
// stream id and its sdpMid the offer's a=mid. Anything longer is refused before the model keeps
// it for an endpoint that does not exist yet (README's bounds table).
const (
	maxCandidate     = 1024
	maxCandidateName = 128
)

func onIceCandidate(_ context.Context, r *rpcSession, part Participant, params json.RawMessage) (result, error) {
	var p struct {
		EndpointName  string     `json:"endpointName"`
		Candidate     string     `json:"candidate"`
		SDPMid        *string    `json:"sdpMid"`
		SDPMLineIndex *flexIndex `json:"sdpMLineIndex"`
	}
	if err := decode("onIceCandidate", params, &p); err != nil {
		return nil, err
	}
	if len(p.Candidate) > maxCandidate || len(p.EndpointName) > maxCandidateName || (p.SDPMid != nil && len(*p.SDPMid) > maxCandidateName) {
		return nil, &rpcError{Code: codeInvalidParams, Message: "invalid params for onIceCandidate: a candidate has at most " +
			strconv.Itoa(maxCandidate) + " bytes, its endpointName and sdpMid " + strconv.Itoa(maxCandidateName)}
	}
	// Lenient by design: an error reply makes the SDK raise ICE_CANDIDATE_ERROR for a candidate that
	// simply was not useful (protocol note §3.7).
	c := session.Candidate{Candidate: p.Candidate, SDPMid: p.SDPMid}
	if p.SDPMLineIndex != nil {
		idx := uint16(*p.SDPMLineIndex)
		c.SDPMLineIndex = &idx
	}
	if err := part.AddCandidate(p.EndpointName, c); err != nil {
		r.h.peerLog(r.socket(), slog.LevelDebug, "candidate not applied", "connection", part.ID(), "error", clip(err.Error()))
	}
	return &emptyResult{}, nil
}

func leaveRoom(_ context.Context, r *rpcSession, part Participant, _ json.RawMessage) (result, error) {
	part.Leave()
	r.mu.Lock()
	r.part = nil
	r.mu.Unlock()
	return &emptyResult{}, nil
}

func sendMessage(_ context.Context, _ *rpcSession, part Participant, params json.RawMessage) (result, error) {
	var p struct {
		Message string `json:"message"`
	}
	if err := decode("sendMessage", params, &p); err != nil {
		return nil, err
	}
	var msg struct {
		To   []*string `json:"to"`
		Data string    `json:"data"`
		Type string    `json:"type"`
	}
	if err := json.Unmarshal([]byte(p.Message), &msg); err != nil {
		return nil, &rpcError{Code: session.CodeSignalFormat, Message: "signal message must be a JSON object with to, data and type: " + err.Error()}
	}
	to := make([]session.ConnectionID, 0, len(msg.To))
	for _, t := range msg.To {
		if t == nil {
			return nil, &rpcError{Code: session.CodeSignalTo, Message: "signal recipient list contains null"}
		}
		to = append(to, session.ConnectionID(*t))
	}
	return empty(part.Signal(to, msg.Type, msg.Data))
}

func streamPropertyChanged(_ context.Context, _ *rpcSession, part Participant, params json.RawMessage) (result, error) {
	var p struct {
		Property string          `json:"property"`
		NewValue json.RawMessage `json:"newValue"`
		Reason   string          `json:"reason"`
	}
	if err := decode("streamPropertyChanged", params, &p); err != nil {
		return nil, err
	}
	if p.Property == "" {
		return nil, missing("streamPropertyChanged", "property")
	}
	newValue := string(p.NewValue)
	if (p.Property == "audioActive" || p.Property == "videoActive") && len(p.NewValue) > 0 {
		// A native client's "false" becomes the browser's false: subscribers read the value's JSON
		// text and compare it with "true"/"false".
		var b flexBool
		if b.UnmarshalJSON(p.NewValue) != nil {
			return nil, &rpcError{Code: codeInvalidParams, Message: "invalid params for streamPropertyChanged: 'newValue' of " + p.Property + " must be " + takes(reflect.TypeFor[bool]()) + ", not " + shown(string(p.NewValue))}
		}
		newValue = strconv.FormatBool(bool(b))
	}
	return empty(part.ChangeStreamProperty(p.Property, newValue, p.Reason))
}

func reconnectStream(ctx context.Context, _ *rpcSession, part Participant, params json.RawMessage) (result, error) {
	var p struct {
		Stream    string `json:"stream"`
		SDPOffer  string `json:"sdpOffer"`
		SDPString string `json:"sdpString"`
	}
	if err := decode("reconnectStream", params, &p); err != nil {
		return nil, err
	}
	if p.Stream == "" {
		return nil, missing("reconnectStream", "stream")
	}
	sid := session.StreamID(p.Stream)
	if sid.Owner() == part.ID() {
		offer := p.SDPString
		if offer == "" {
			offer = p.SDPOffer
		}
		st, answer, err := part.ReconnectPublisher(ctx, offer)
		if err != nil {
			return nil, err
		}
		return &publishResult{SDPAnswer: answer, ID: st.ID, CreatedAt: st.CreatedAt.UnixMilli()}, nil
	}
	if p.SDPOffer == "" {
		if p.SDPString != "" { // mediasoup mode: the answer to prepareReceiveVideoFrom{reconnect}
			return empty(part.AnswerSubscribe(sid, p.SDPString))
		}
		return nil, missing("reconnectStream", "sdpOffer")
	}
	answer, err := part.Subscribe(ctx, sid, p.SDPOffer)
	if err != nil {
		return nil, err
	}
	return &answerResult{SDPAnswer: answer}, nil
}

func forceDisconnect(_ context.Context, _ *rpcSession, part Participant, params json.RawMessage) (result, error) {
	var p struct {
		ConnectionID string `json:"connectionId"`
	}
	if err := decode("forceDisconnect", params, &p); err != nil {
		return nil, err
	}
	return empty(part.ForceDisconnect(session.ConnectionID(p.ConnectionID)))
}

func forceUnpublish(_ context.Context, _ *rpcSession, part Participant, params json.RawMessage) (result, error) {
	var p struct {
		StreamID string `json:"streamId"`
	}
	if err := decode("forceUnpublish", params, &p); err != nil {
		return nil, err
	}
	return empty(part.ForceUnpublish(session.StreamID(p.StreamID)))
}
