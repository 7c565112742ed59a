package signaling

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/parley/parley/internal/session"
)

// rpcSession is a JSON-RPC session: at most one participant, reachable through the current socket,
// and kept for ReconnectGrace after that socket drops so the SDK's `connect` can re-attach it.
type rpcSession struct {
	id string
	h  *Handler

	mu    sync.Mutex
	sock  *socket // nil while waiting for a reconnection
	part  *session.Connection
	grace *time.Timer
	// dead: forgotten by the handler; `connect` can no longer re-attach it.
	dead bool
	// stopped: the handler is shutting down; a dropped socket arms no grace timer.
	stopped bool
}

// Notify translates a model event into the OpenVidu notification and queues it (session.Sink).
func (r *rpcSession) Notify(e session.Event) {
	method, params := notificationOf(e)
	if method == "" {
		return
	}
	b := mustJSON(notification{JSONRPC: "2.0", Method: method, Params: params})
	r.mu.Lock()
	sock := r.sock
	r.mu.Unlock()
	if sock != nil {
		sock.send(b)
	}
}

func (r *rpcSession) participant() *session.Connection {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.part
}

// logIDs names the JSON-RPC session in a log line, with its participant's session and connection
// ids once it has joined.
func (r *rpcSession) logIDs() []any {
	ids := []any{"rpc", r.id}
	if p := r.participant(); p != nil {
		ids = append(ids, "session", p.Session(), "connection", p.ID())
	}
	return ids
}

// attach moves the session to a new socket, cancelling the eviction timer.
func (r *rpcSession) attach(sock *socket) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead {
		return false
	}
	if r.grace != nil {
		r.grace.Stop()
		r.grace = nil
	}
	old := r.sock
	r.sock = sock
	if old != nil && old != sock {
		old.finish() // a half-open socket the client has given up on
	}
	return true
}

// detach runs when sock closes. A participant that did not leave gets ReconnectGrace to come back
// before it is evicted with networkDisconnect.
func (r *rpcSession) detach(sock *socket) {
	r.mu.Lock()
	if r.sock != sock {
		r.mu.Unlock()
		return // already re-attached elsewhere
	}
	r.sock = nil
	if r.part == nil || r.dead || r.stopped {
		r.dead = true
		r.hookForget()
		r.mu.Unlock()
		r.h.forget(r)
		return
	}
	part := r.part
	r.grace = time.AfterFunc(r.h.cfg.ReconnectGrace, func() {
		r.mu.Lock()
		if r.sock != nil || r.dead {
			r.mu.Unlock()
			return
		}
		r.dead = true
		r.hookForget()
		r.mu.Unlock()
		r.h.forget(r)
		r.h.log.Info("participant did not reconnect in time", "connection", part.ID(), "rpc", r.id)
		r.h.m.Evict(part, "networkDisconnect")
	})
	r.mu.Unlock()
}

// discard drops a session that was replaced by a reconnection before it joined anything.
func (r *rpcSession) discard() {
	r.mu.Lock()
	r.sock = nil
	if r.part != nil {
		r.mu.Unlock()
		return
	}
	r.dead = true
	r.hookForget()
	r.mu.Unlock()
	r.h.forget(r)
}

// hookForget runs the test hook, if any, at the point where the session is dead but still held
// under r.mu: the moment a lock inversion with Handler.Shutdown would bite.
func (r *rpcSession) hookForget() {
	if f := r.h.testHooks.forgetting; f != nil {
		f()
	}
}

// stopGrace cancels a pending eviction and keeps detach from arming a new one: the handler is
// shutting down and the model has already evicted everyone. Called with Handler.mu held, which
// comes before rpcSession.mu (locksordering.txt).
func (r *rpcSession) stopGrace() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	if r.grace != nil {
		r.grace.Stop()
	}
}

// call runs one method. Everything but joinRoom (and ping/connect, handled earlier) needs a joined
// participant (OpenVidu error 803 otherwise).
func (r *rpcSession) call(ctx context.Context, method string, params json.RawMessage) (result, error) {
	if len(params) == 0 || string(params) == "null" {
		params = json.RawMessage("{}")
	}
	switch method {
	case "joinRoom":
		return r.joinRoom(params)
	case "echo":
		return result{}, nil
	}
	part := r.participant()
	if part == nil {
		if _, known := methods[method]; !known {
			return nil, &rpcError{Code: codeMethodNotFound, Message: "unknown method " + method}
		}
		return nil, &rpcError{Code: session.CodeTransportError, Message: "No connection found for this socket. Method 'Session.connect()' must be the first operation called"}
	}
	h, ok := methods[method]
	if !ok {
		return nil, &rpcError{Code: codeMethodNotFound, Message: "unknown method " + method}
	}
	return h(ctx, r, part, params)
}

type method func(ctx context.Context, r *rpcSession, c *session.Connection, params json.RawMessage) (result, error)

var methods map[string]method

func init() {
	notSupportedFilter := func(context.Context, *rpcSession, *session.Connection, json.RawMessage) (result, error) {
		return nil, &rpcError{Code: session.CodeFilterNotApplied, Message: "filters are not supported: Parley has no media pipeline to apply them"}
	}
	notEnabled := func(context.Context, *rpcSession, *session.Connection, json.RawMessage) (result, error) {
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
		"videoData": func(context.Context, *rpcSession, *session.Connection, json.RawMessage) (result, error) {
			return result{}, nil
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

func decode(method string, params json.RawMessage, v any) error {
	if err := json.Unmarshal(params, v); err != nil {
		return invalidParams(method, err)
	}
	return nil
}

// joinRoom consumes the token and answers with everything the SDK needs (protocol note §3.2).
func (r *rpcSession) joinRoom(params json.RawMessage) (result, error) {
	var p struct {
		Token    string `json:"token"`
		Session  string `json:"session"`
		Platform string `json:"platform"`
		Metadata string `json:"metadata"`
		Secret   string `json:"secret"`
		Recorder bool   `json:"recorder"`
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
	if p.Secret != "" {
		// OpenVidu lets a holder of the REST secret mint a token inside the socket (its recorder path).
		// Parley records internally and never needs it; accepting the master secret here would put it
		// on the wire of every client that copies the pattern.
		return nil, &rpcError{Code: session.CodeUserUnauthorized, Message: "Unable to join session " + sid + ". Joining with the server secret is not supported; create a connection through the REST API"}
	}
	r.mu.Lock()
	sock := r.sock
	r.mu.Unlock()
	ip := ""
	if sock != nil {
		ip = sock.ip
	}
	c, res, err := r.h.m.Join(session.SessionID(sid), p.Token, session.JoinInfo{Metadata: p.Metadata, Platform: p.Platform, IP: ip}, r)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.part = c
	r.mu.Unlock()

	value := make([]any, 0, len(res.Existing))
	for _, e := range res.Existing {
		v := map[string]any{"id": e.ID, "createdAt": e.CreatedAt.UnixMilli(), "metadata": e.Metadata}
		if e.Stream != nil {
			v["streams"] = []any{streamJSON(*e.Stream)}
		}
		value = append(value, v)
	}
	ice := res.IceServers
	if r.h.cfg.IceServers != nil {
		ice = r.h.cfg.IceServers(c.ID(), res.IceServers)
	}
	iceJSON := make([]map[string]string, 0, len(ice))
	for _, s := range ice {
		e := map[string]string{"url": s.URL}
		if s.Username != "" {
			e["username"], e["credential"] = s.Username, s.Credential
		}
		iceJSON = append(iceJSON, e)
	}
	out := result{
		"id":               c.ID(),
		"finalUserId":      strings.ToUpper(r.id[:16]),
		"createdAt":        res.Self.CreatedAt.UnixMilli(),
		"metadata":         res.Self.Metadata,
		"value":            value,
		"session":          res.Session,
		"version":          Version,
		"mediaServer":      "kurento", // client offers subscriptions (protocol note §6.1)
		"videoSimulcast":   false,
		"record":           res.Record,
		"role":             res.Role,
		"customIceServers": iceJSON,
	}
	if res.RecordingID != "" {
		out["recordingId"], out["recordingName"] = res.RecordingID, res.RecordingName
	}
	for _, s := range ice {
		if strings.HasPrefix(s.URL, "turn") && s.Username != "" {
			// Legacy fields, ignored by 2.32 SDKs but read by older apps.
			out["turnUsername"], out["turnCredential"] = s.Username, s.Credential
			if host, port, ok := turnHostPort(s.URL); ok {
				out["coturnIp"], out["coturnPort"] = host, port
			}
			break
		}
	}
	return out, nil
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

func streamJSON(s session.StreamInfo) map[string]any {
	v := map[string]any{
		"id": s.ID, "createdAt": s.CreatedAt.UnixMilli(),
		"hasAudio": s.Media.HasAudio, "hasVideo": s.Media.HasVideo,
		"audioActive": s.Media.AudioActive, "videoActive": s.Media.VideoActive,
		"frameRate": s.Media.FrameRate, "filter": map[string]any{},
	}
	if s.Media.HasVideo {
		v["typeOfVideo"] = s.Media.TypeOfVideo
		v["videoDimensions"] = s.Media.VideoDimensions
	}
	return v
}

func publishVideo(ctx context.Context, r *rpcSession, c *session.Connection, params json.RawMessage) (result, error) {
	var p struct {
		SDPOffer        string           `json:"sdpOffer"`
		DoLoopback      bool             `json:"doLoopback"`
		HasAudio        bool             `json:"hasAudio"`
		HasVideo        bool             `json:"hasVideo"`
		AudioActive     *bool            `json:"audioActive"`
		VideoActive     *bool            `json:"videoActive"`
		TypeOfVideo     string           `json:"typeOfVideo"`
		FrameRate       *float64         `json:"frameRate"`
		VideoDimensions string           `json:"videoDimensions"`
		Filter          *json.RawMessage `json:"filter"`
	}
	if err := decode("publishVideo", params, &p); err != nil {
		return nil, err
	}
	if p.SDPOffer == "" {
		return nil, missing("publishVideo", "sdpOffer")
	}
	if p.DoLoopback {
		return nil, &rpcError{Code: session.CodeMediaEndpointError, Message: "publisher loopback (subscribeToRemote) is not supported"}
	}
	if p.Filter != nil && string(*p.Filter) != "null" && string(*p.Filter) != "{}" {
		return nil, &rpcError{Code: session.CodeFilterNotApplied, Message: "filters are not supported: Parley has no media pipeline to apply them"}
	}
	md := session.MediaOptions{HasAudio: p.HasAudio, HasVideo: p.HasVideo, AudioActive: p.HasAudio, VideoActive: p.HasVideo,
		TypeOfVideo: p.TypeOfVideo, FrameRate: -1, VideoDimensions: p.VideoDimensions}
	if p.AudioActive != nil {
		md.AudioActive = *p.AudioActive
	}
	if p.VideoActive != nil {
		md.VideoActive = *p.VideoActive
	}
	if p.FrameRate != nil {
		md.FrameRate = *p.FrameRate
	}
	if md.HasVideo && md.TypeOfVideo == "" {
		md.TypeOfVideo = "CAMERA"
	}
	st, answer, err := r.h.m.Publish(ctx, c, session.PublishParams{Offer: p.SDPOffer, Media: md})
	if err != nil {
		return nil, err
	}
	return result{"sdpAnswer": answer, "id": st.ID, "createdAt": st.CreatedAt.UnixMilli()}, nil
}

func unpublishVideo(_ context.Context, r *rpcSession, c *session.Connection, _ json.RawMessage) (result, error) {
	return result{}, r.h.m.Unpublish(c)
}

func receiveVideoFrom(ctx context.Context, r *rpcSession, c *session.Connection, params json.RawMessage) (result, error) {
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
		if p.SDPAnswer != "" {
			return nil, &rpcError{Code: session.CodeMediaSDPError, Message: "server-offer subscriptions are not used: joinRoom reports mediaServer kurento, so send sdpOffer"}
		}
		return nil, missing("receiveVideoFrom", "sdpOffer")
	}
	answer, err := r.h.m.Subscribe(ctx, c, session.StreamID(p.Sender), p.SDPOffer)
	if err != nil {
		return nil, err
	}
	return result{"sdpAnswer": answer}, nil
}

func prepareReceiveVideoFrom(context.Context, *rpcSession, *session.Connection, json.RawMessage) (result, error) {
	return nil, &rpcError{Code: session.CodeMediaSDPError, Message: "server-offer subscriptions are not used: joinRoom reports mediaServer kurento, so send receiveVideoFrom with sdpOffer"}
}

func unsubscribeFromVideo(_ context.Context, r *rpcSession, c *session.Connection, params json.RawMessage) (result, error) {
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
	return result{}, r.h.m.Unsubscribe(c, sender)
}

func onIceCandidate(_ context.Context, r *rpcSession, c *session.Connection, params json.RawMessage) (result, error) {
	var p struct {
		EndpointName  string  `json:"endpointName"`
		Candidate     string  `json:"candidate"`
		SDPMid        *string `json:"sdpMid"`
		SDPMLineIndex *uint16 `json:"sdpMLineIndex"`
	}
	if err := decode("onIceCandidate", params, &p); err != nil {
		return nil, err
	}
	// Lenient by design: an error reply makes the SDK raise ICE_CANDIDATE_ERROR for a candidate that
	// simply was not useful (protocol note §3.7).
	if err := r.h.m.AddCandidate(c, p.EndpointName, session.Candidate{Candidate: p.Candidate, SDPMid: p.SDPMid, SDPMLineIndex: p.SDPMLineIndex}); err != nil {
		r.h.log.Debug("candidate not applied", "connection", c.ID(), "error", err)
	}
	return result{}, nil
}

func leaveRoom(_ context.Context, r *rpcSession, c *session.Connection, _ json.RawMessage) (result, error) {
	r.h.m.Leave(c)
	r.mu.Lock()
	r.part = nil
	r.mu.Unlock()
	return result{}, nil
}

func sendMessage(_ context.Context, r *rpcSession, c *session.Connection, params json.RawMessage) (result, error) {
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
	return result{}, r.h.m.SendSignal("", c, to, msg.Type, msg.Data)
}

func streamPropertyChanged(_ context.Context, r *rpcSession, c *session.Connection, params json.RawMessage) (result, error) {
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
	return result{}, r.h.m.ChangeStreamProperty(c, p.Property, string(p.NewValue), p.Reason)
}

func reconnectStream(ctx context.Context, r *rpcSession, c *session.Connection, params json.RawMessage) (result, error) {
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
	if sid.Owner() == c.ID() {
		offer := p.SDPString
		if offer == "" {
			offer = p.SDPOffer
		}
		st, answer, err := r.h.m.ReconnectPublisher(ctx, c, offer)
		if err != nil {
			return nil, err
		}
		return result{"sdpAnswer": answer, "id": st.ID, "createdAt": st.CreatedAt.UnixMilli()}, nil
	}
	if p.SDPOffer == "" {
		return nil, missing("reconnectStream", "sdpOffer")
	}
	answer, err := r.h.m.Subscribe(ctx, c, sid, p.SDPOffer)
	if err != nil {
		return nil, err
	}
	return result{"sdpAnswer": answer}, nil
}

func forceDisconnect(_ context.Context, r *rpcSession, c *session.Connection, params json.RawMessage) (result, error) {
	var p struct {
		ConnectionID string `json:"connectionId"`
	}
	if err := decode("forceDisconnect", params, &p); err != nil {
		return nil, err
	}
	return result{}, r.h.m.ForceDisconnect(c, session.ConnectionID(p.ConnectionID))
}

func forceUnpublish(_ context.Context, r *rpcSession, c *session.Connection, params json.RawMessage) (result, error) {
	var p struct {
		StreamID string `json:"streamId"`
	}
	if err := decode("forceUnpublish", params, &p); err != nil {
		return nil, err
	}
	return result{}, r.h.m.ForceUnpublish(c, session.StreamID(p.StreamID))
}

// notificationOf maps a model event to the OpenVidu notification (protocol note §4).
func notificationOf(e session.Event) (string, any) {
	switch e.Kind {
	case session.ParticipantJoined:
		p := e.Participant
		return "participantJoined", map[string]any{"id": p.ID, "createdAt": p.CreatedAt.UnixMilli(), "metadata": p.Metadata}
	case session.StreamPublished:
		return "participantPublished", map[string]any{"id": e.Connection, "streams": []any{streamJSON(*e.StreamInfo)}}
	case session.StreamUnpublished:
		return "participantUnpublished", map[string]any{"connectionId": e.Connection, "reason": e.Reason}
	case session.ParticipantLeft:
		return "participantLeft", map[string]any{"connectionId": e.Connection, "reason": e.Reason}
	case session.ParticipantEvicted:
		return "participantEvicted", map[string]any{"connectionId": e.Connection, "reason": e.Reason}
	case session.StreamPropertyChanged:
		// newValue travels as the JSON text of what the sender sent (protocol note §0.9).
		return "streamPropertyChanged", map[string]any{"connectionId": e.Connection, "streamId": e.Stream,
			"property": e.Property.Property, "newValue": e.Property.NewValue, "reason": e.Property.Reason}
	case session.RecordingStatusChanged:
		r := e.Recording
		if r.Status == session.RecordingStarted {
			return "recordingStarted", map[string]any{"id": r.ID, "name": r.Name}
		}
		return "recordingStopped", map[string]any{"id": r.ID, "name": r.Name, "reason": r.Reason}
	case session.SignalSent:
		n := map[string]any{"data": e.Signal.Data, "type": e.Signal.Type}
		if e.Signal.From != "" {
			n["from"] = e.Signal.From
		}
		return "sendMessage", n
	}
	return "", nil
}
