package signaling

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/parley/parley/internal/session"
)

// The JSON shapes of results and notifications (protocol note §3–4), as typed structs so the wire
// format is visible in one place and pinned by testdata/*.golden.

// result is a method's reply. Kurento injects the JSON-RPC session id into every result object; the
// SDK keeps the joinRoom one for `connect` after a socket drop (protocol note §0.2).
type result interface{ setSessionID(id string) }

// rpcSessionID is embedded last in every result, where Kurento appends it.
type rpcSessionID struct {
	SessionID string `json:"sessionId,omitempty"`
}

func (r *rpcSessionID) setSessionID(id string) { r.SessionID = id }

// emptyResult is the `{}` most methods answer (plus sessionId).
type emptyResult struct{ rpcSessionID }

// valueResult answers ping ("pong") and connect.
type valueResult struct {
	Value string `json:"value"`
	rpcSessionID
}

// publishResult answers publishVideo and a publisher's reconnectStream.
type publishResult struct {
	SDPAnswer string           `json:"sdpAnswer"`
	ID        session.StreamID `json:"id"`
	CreatedAt int64            `json:"createdAt"`
	rpcSessionID
}

// answerResult answers receiveVideoFrom and a subscriber's reconnectStream.
type answerResult struct {
	SDPAnswer string `json:"sdpAnswer"`
	rpcSessionID
}

// offerResult answers prepareReceiveVideoFrom: our offer (mediasoup mode).
type offerResult struct {
	SDPOffer string `json:"sdpOffer"`
	rpcSessionID
}

// joinResult is joinRoom's answer (protocol note §3.2).
type joinResult struct {
	ID               session.ConnectionID `json:"id"`
	FinalUserID      string               `json:"finalUserId"`
	CreatedAt        int64                `json:"createdAt"`
	Metadata         string               `json:"metadata"`
	Value            []participantJSON    `json:"value"`
	Session          session.SessionID    `json:"session"`
	Version          string               `json:"version"`
	MediaServer      string               `json:"mediaServer"`
	VideoSimulcast   bool                 `json:"videoSimulcast"`
	Record           bool                 `json:"record"`
	Role             session.Role         `json:"role"`
	CustomIceServers []iceServerJSON      `json:"customIceServers"`
	// RecordingID and RecordingName only while the session is recorded (and the role is told).
	RecordingID   *string `json:"recordingId,omitempty"`
	RecordingName *string `json:"recordingName,omitempty"`
	// Legacy TURN fields, ignored by 2.32 SDKs but read by older apps; absent without a TURN
	// server with credentials.
	TurnUsername   *string `json:"turnUsername,omitempty"`
	TurnCredential *string `json:"turnCredential,omitempty"`
	CoturnIP       *string `json:"coturnIp,omitempty"`
	CoturnPort     *int    `json:"coturnPort,omitempty"`
	rpcSessionID
}

// participantJSON is an existing participant in joinRoom's value.
type participantJSON struct {
	ID        session.ConnectionID `json:"id"`
	CreatedAt int64                `json:"createdAt"`
	Metadata  string               `json:"metadata"`
	Streams   []streamJSON         `json:"streams,omitempty"`
}

type iceServerJSON struct {
	URL string `json:"url"`
	// Username and Credential are both present when the server has a username.
	Username   *string `json:"username,omitempty"`
	Credential *string `json:"credential,omitempty"`
}

// streamJSON is a stream in joinRoom's value and participantPublished.
type streamJSON struct {
	ID          session.StreamID `json:"id"`
	CreatedAt   int64            `json:"createdAt"`
	HasAudio    bool             `json:"hasAudio"`
	HasVideo    bool             `json:"hasVideo"`
	AudioActive bool             `json:"audioActive"`
	VideoActive bool             `json:"videoActive"`
	FrameRate   float64          `json:"frameRate"`
	Filter      struct{}         `json:"filter"`
	// TypeOfVideo and VideoDimensions (JSON text, as the publisher sent it) only for video.
	TypeOfVideo     *string `json:"typeOfVideo,omitempty"`
	VideoDimensions *string `json:"videoDimensions,omitempty"`
}

func streamOf(s session.StreamInfo) streamJSON {
	v := streamJSON{ID: s.ID, CreatedAt: s.CreatedAt.UnixMilli(),
		HasAudio: s.Media.HasAudio, HasVideo: s.Media.HasVideo,
		AudioActive: s.Media.AudioActive, VideoActive: s.Media.VideoActive, FrameRate: s.Media.FrameRate}
	if s.Media.HasVideo {
		v.TypeOfVideo, v.VideoDimensions = ptr(s.Media.TypeOfVideo), ptr(s.Media.VideoDimensions)
	}
	return v
}

// joinResultOf builds joinRoom's answer for participant p of JSON-RPC session rpcID.
// With simulcast it reports mediaServer "mediasoup" and videoSimulcast (protocol note §6.1): the
// stock client then publishes simulcast layers and subscribes to server offers.
func joinResultOf(rpcID string, res session.JoinResult, ice []session.IceServer, simulcast bool) *joinResult {
	out := &joinResult{
		ID:               res.Self.ID,
		FinalUserID:      strings.ToUpper(rpcID[:16]),
		CreatedAt:        res.Self.CreatedAt.UnixMilli(),
		Metadata:         res.Self.Metadata,
		Value:            make([]participantJSON, 0, len(res.Existing)),
		Session:          res.Session,
		Version:          Version,
		MediaServer:      "kurento", // client offers subscriptions (protocol note §6.1)
		VideoSimulcast:   simulcast,
		Role:             res.Role,
		Record:           res.Record,
		CustomIceServers: make([]iceServerJSON, 0, len(ice)),
	}
	if simulcast {
		out.MediaServer = "mediasoup" // server offers subscriptions (prepareReceiveVideoFrom)
	}
	if res.RecordingID != "" {
		out.RecordingID, out.RecordingName = ptr(res.RecordingID), ptr(res.RecordingName)
	}
	for _, e := range res.Existing {
		v := participantJSON{ID: e.ID, CreatedAt: e.CreatedAt.UnixMilli(), Metadata: e.Metadata}
		if e.Stream != nil {
			v.Streams = []streamJSON{streamOf(*e.Stream)}
		}
		out.Value = append(out.Value, v)
	}
	for _, s := range ice {
		e := iceServerJSON{URL: s.URL}
		if s.Username != "" {
			e.Username, e.Credential = ptr(s.Username), ptr(s.Credential)
		}
		out.CustomIceServers = append(out.CustomIceServers, e)
	}
	for _, s := range ice {
		if strings.HasPrefix(s.URL, "turn") && s.Username != "" {
			out.TurnUsername, out.TurnCredential = ptr(s.Username), ptr(s.Credential)
			if host, port, ok := turnHostPort(s.URL); ok {
				out.CoturnIP, out.CoturnPort = &host, &port
			}
			break
		}
	}
	return out
}

// Notification params (protocol note §4).
type (
	participantJoinedJSON struct {
		ID        session.ConnectionID `json:"id"`
		CreatedAt int64                `json:"createdAt"`
		Metadata  string               `json:"metadata"`
	}
	participantPublishedJSON struct {
		ID      session.ConnectionID `json:"id"`
		Streams []streamJSON         `json:"streams"`
	}
	// participantGoneJSON is participantUnpublished, participantLeft and participantEvicted.
	participantGoneJSON struct {
		ConnectionID session.ConnectionID `json:"connectionId"`
		Reason       string               `json:"reason"`
	}
	streamPropertyChangedJSON struct {
		ConnectionID session.ConnectionID `json:"connectionId"`
		StreamID     session.StreamID     `json:"streamId"`
		Property     string               `json:"property"`
		// NewValue travels as the JSON text of what the sender sent (protocol note §0.9).
		NewValue string `json:"newValue"`
		Reason   string `json:"reason"`
	}
	recordingStartedJSON struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	recordingStoppedJSON struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Reason string `json:"reason"`
	}
	// forciblyReconnectSubscriberJSON offers a subscriber a new PeerConnection for a stream
	// (SDK: Session.onForciblyReconnectSubscriber; it answers in reconnectStream's sdpString).
	forciblyReconnectSubscriberJSON struct {
		ConnectionID session.ConnectionID `json:"connectionId"`
		StreamID     session.StreamID     `json:"streamId"`
		SDPOffer     string               `json:"sdpOffer"`
	}
	sendMessageJSON struct {
		Data string `json:"data"`
		Type string `json:"type"`
		// From is absent for signals sent through REST.
		From session.ConnectionID `json:"from,omitempty"`
	}
)

// notificationOf maps a model event to the OpenVidu notification (protocol note §4); method is
// empty for events participants are not told about.
func notificationOf(e session.Event) (method string, params any) {
	switch e.Kind {
	case session.ParticipantJoined:
		p := e.Participant
		return "participantJoined", participantJoinedJSON{ID: p.ID, CreatedAt: p.CreatedAt.UnixMilli(), Metadata: p.Metadata}
	case session.StreamPublished:
		return "participantPublished", participantPublishedJSON{ID: e.Connection, Streams: []streamJSON{streamOf(*e.StreamInfo)}}
	case session.StreamUnpublished:
		return "participantUnpublished", participantGoneJSON{ConnectionID: e.Connection, Reason: e.Reason}
	case session.ParticipantLeft:
		return "participantLeft", participantGoneJSON{ConnectionID: e.Connection, Reason: e.Reason}
	case session.ParticipantEvicted:
		return "participantEvicted", participantGoneJSON{ConnectionID: e.Connection, Reason: e.Reason}
	case session.StreamPropertyChanged:
		return "streamPropertyChanged", streamPropertyChangedJSON{ConnectionID: e.Connection, StreamID: e.Stream,
			Property: e.Property.Property, NewValue: e.Property.NewValue, Reason: e.Property.Reason}
	case session.RecordingStatusChanged:
		r := e.Recording
		if r.Status == session.RecordingStarted {
			return "recordingStarted", recordingStartedJSON{ID: r.ID, Name: r.Name}
		}
		return "recordingStopped", recordingStoppedJSON{ID: r.ID, Name: r.Name, Reason: r.Reason}
	case session.SignalSent:
		return "sendMessage", sendMessageJSON{Data: e.Signal.Data, Type: e.Signal.Type, From: e.Signal.From}
	}
	return "", nil
}

// noteCache encodes each event once however many participants it goes to: the model hands one
// event to every recipient's Notify in a row, under its lock, so the last encoding is the one the
// next recipient needs. Two events that compare equal encode alike, so a stale hit is impossible.
type noteCache struct {
	mu      sync.Mutex // a leaf: nothing else is taken while holding it
	last    session.Event
	frame   []byte
	encodes int // for tests
}

func (c *noteCache) encode(e session.Event) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frame != nil && c.last == e {
		return c.frame
	}
	c.encodes++
	c.last, c.frame = e, encodeNotification(e)
	return c.frame
}

// encodeNotification is the frame of event e, or nil when participants are not told about it.
func encodeNotification(e session.Event) []byte {
	method, params := notificationOf(e)
	if method == "" {
		return nil
	}
	return mustJSON(notification{JSONRPC: "2.0", Method: method, Params: params})
}

func ptr[T any](v T) *T { return &v }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types are marshalled here; failing means a programming error.
		panic(err)
	}
	return b
}
