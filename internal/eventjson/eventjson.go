// Package eventjson renders session events the way OpenVidu 2.32 writes them to its webhook and to
// its call detail record (protocol note §11): the event names, the exact field sets, and the two
// framings (a webhook body with an "event" key, a CDR line keyed by the event name).
//
// It is the codec shared by internal/webhook and internal/cdr, and owns nothing else. It imports
// only session, for the Event type; never api, signaling, edge or the transports that use it.
package eventjson

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/parley/parley/internal/session"
)

// names maps the model's kinds to OpenVidu's CDR event names. Kinds missing here (participant
// published/unpublished, property changes, evictions) are client notifications that OpenVidu
// never records.
var names = map[session.EventKind]string{
	session.SessionCreated:            "sessionCreated",
	session.SessionDestroyed:          "sessionDestroyed",
	session.ParticipantJoined:         "participantJoined",
	session.ParticipantLeft:           "participantLeft",
	session.WebRTCConnectionCreated:   "webrtcConnectionCreated",
	session.WebRTCConnectionDestroyed: "webrtcConnectionDestroyed",
	session.SignalSent:                "signalSent",
	session.RecordingStatusChanged:    "recordingStatusChanged",
}

// Name returns the OpenVidu event name of a kind, and false for kinds OpenVidu does not record.
func Name(k session.EventKind) (string, bool) {
	n, ok := names[k]
	return n, ok
}

// Kind returns the kind an OpenVidu event name stands for, and false for names Parley never emits.
func Kind(name string) (session.EventKind, bool) {
	for k, n := range names {
		if n == name {
			return k, true
		}
	}
	return 0, false
}

// Every event: OpenVidu's CDREvent.
type header struct {
	// Event is the event name, in webhook bodies only: a CDR line carries it as the outer key.
	Event     string `json:"event,omitempty"`
	SessionID string `json:"sessionId"`
	// UniqueSessionID is <sessionId>_<createdAt ms>: two sessions may share a customSessionId.
	UniqueSessionID string `json:"uniqueSessionId"`
	Timestamp       int64  `json:"timestamp"`
}

// "End" events add these (OpenVidu's CDREventEnd).
type ending struct {
	StartTime int64 `json:"startTime"`
	// Duration is in whole seconds, truncated, as OpenVidu computes it.
	Duration int64  `json:"duration"`
	Reason   string `json:"reason"`
}

type participant struct {
	// ParticipantID is deprecated in OpenVidu and equals ConnectionID; receivers still read it.
	ParticipantID string `json:"participantId"`
	ConnectionID  string `json:"connectionId"`
	// Location is "unknown": geolocation is an OpenVidu PRO feature.
	Location   string `json:"location"`
	IP         string `json:"ip"`
	Platform   string `json:"platform"`
	ClientData string `json:"clientData"`
	ServerData string `json:"serverData"`
}

type webrtc struct {
	StreamID      string `json:"streamId"`
	ParticipantID string `json:"participantId"`
	ConnectionID  string `json:"connectionId"`
	// Connection is OUTBOUND for a publisher, INBOUND for a subscription.
	Connection    string `json:"connection"`
	ReceivingFrom string `json:"receivingFrom,omitempty"`
	*video
	AudioEnabled bool `json:"audioEnabled"`
	VideoEnabled bool `json:"videoEnabled"`
}

// Only for streams with video, as OpenVidu writes them.
type video struct {
	VideoSource     string  `json:"videoSource"`
	VideoFramerate  float64 `json:"videoFramerate"`
	VideoDimensions string  `json:"videoDimensions"`
}

type signal struct {
	// From is null for signals sent through REST: OpenVidu serializes the null.
	From *string  `json:"from"`
	To   []string `json:"to"`
	Type string   `json:"type"`
	Data string   `json:"data"`
}

// One record type per field set: embedding them all in one struct would make the two
// participantId fields collide, and encoding/json silently drops colliding names.
type (
	sessionRecord struct {
		header
		*ending
	}
	participantRecord struct {
		header
		*ending
		participant
	}
	webrtcRecord struct {
		header
		*ending
		webrtc
	}
	signalRecord struct {
		header
		signal
	}
	recordingRecord struct {
		header
		recording
	}
)

// recording is OpenVidu's CDREventRecordingStatus: the Recording object's fields, startTime (the
// recording's creation) and a reason except on "started".
type recording struct {
	ID              string  `json:"id"`
	Name            string  `json:"name"`
	OutputMode      string  `json:"outputMode"`
	Resolution      string  `json:"resolution,omitempty"`
	FrameRate       int     `json:"frameRate,omitempty"`
	RecordingLayout string  `json:"recordingLayout,omitempty"`
	CustomLayout    string  `json:"customLayout,omitempty"`
	HasAudio        bool    `json:"hasAudio"`
	HasVideo        bool    `json:"hasVideo"`
	Size            int64   `json:"size"`
	Duration        float64 `json:"duration"`
	Status          string  `json:"status"`
	StartTime       int64   `json:"startTime"`
	Reason          *string `json:"reason,omitempty"`
}

func recordingOf(e session.Event) recording {
	r := e.Recording
	if r == nil {
		return recording{}
	}
	p := r.Props
	v := recording{ID: r.ID, Name: r.Name, OutputMode: p.OutputMode, HasAudio: p.HasAudio, HasVideo: p.HasVideo,
		Size: r.Size, Duration: r.Duration, Status: r.Status, StartTime: r.CreatedAt.UnixMilli()}
	if p.OutputMode != "INDIVIDUAL" && p.HasVideo {
		v.Resolution, v.FrameRate, v.RecordingLayout = p.Resolution, p.FrameRate, p.RecordingLayout
		if p.RecordingLayout == "CUSTOM" {
			v.CustomLayout = p.CustomLayout
		}
	}
	if r.Status != session.RecordingStarted {
		reason := r.Reason
		v.Reason = &reason
	}
	return v
}

// Webhook returns the body OpenVidu POSTs for e: the event's fields plus "event": name. ok is false
// for kinds OpenVidu does not record.
func Webhook(e session.Event) (body []byte, ok bool) {
	_, v, ok := build(e, true)
	if !ok {
		return nil, false
	}
	return marshal(v), true
}

// CDRLine returns e as one line of OpenVidu's CDR file, {"<name>": {fields}}, without the newline.
func CDRLine(e session.Event) (line []byte, ok bool) {
	name, v, ok := build(e, false)
	if !ok {
		return nil, false
	}
	out := make([]byte, 0, 512)
	out = append(out, '{')
	out = strconv.AppendQuote(out, name) // event names are ASCII identifiers: Go and JSON quoting agree
	out = append(out, ':')
	out = append(out, marshal(v)...)
	return append(out, '}'), true
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only strings, numbers and bools of our own structs: failing is a programming error.
		panic(err)
	}
	return b
}

func build(e session.Event, withName bool) (string, any, bool) {
	name, ok := names[e.Kind]
	if !ok {
		return "", nil, false
	}
	h := header{
		SessionID:       string(e.Session),
		UniqueSessionID: string(e.Session) + "_" + strconv.FormatInt(e.SessionCreatedAt.UnixMilli(), 10),
		Timestamp:       e.Time.UnixMilli(),
	}
	if withName {
		h.Event = name
	}
	var end *ending
	switch e.Kind {
	case session.SessionDestroyed, session.ParticipantLeft, session.WebRTCConnectionDestroyed:
		start := e.Started.UnixMilli()
		end = &ending{StartTime: start, Duration: (h.Timestamp - start) / 1000, Reason: e.Reason}
	}
	switch e.Kind {
	case session.SessionCreated, session.SessionDestroyed:
		return name, sessionRecord{h, end}, true
	case session.ParticipantJoined, session.ParticipantLeft:
		p := participant{ParticipantID: string(e.Connection), ConnectionID: string(e.Connection), Location: "unknown"}
		if c := e.Client; c != nil {
			p.IP, p.Platform, p.ClientData, p.ServerData = c.IP, c.Platform, c.ClientData, c.ServerData
		}
		return name, participantRecord{h, end, p}, true
	case session.WebRTCConnectionCreated, session.WebRTCConnectionDestroyed:
		return name, webrtcRecord{h, end, webrtcOf(e)}, true
	case session.RecordingStatusChanged:
		return name, recordingRecord{h, recordingOf(e)}, true
	default: // SignalSent
		return name, signalRecord{h, signalOf(e)}, true
	}
}

// webrtcOf describes a media connection from the side of its participant: the publisher for
// OUTBOUND, the subscriber for INBOUND, which receives from the publisher (OpenVidu's
// CDREventWebrtcConnection).
func webrtcOf(e session.Event) webrtc {
	w := webrtc{StreamID: string(e.Stream), Connection: "OUTBOUND", ParticipantID: string(e.Connection)}
	if e.Subscriber != "" {
		w.Connection, w.ParticipantID, w.ReceivingFrom = "INBOUND", string(e.Subscriber), string(e.Connection)
	}
	w.ConnectionID = w.ParticipantID
	if m := e.Media; m != nil {
		w.AudioEnabled, w.VideoEnabled = m.HasAudio, m.HasVideo
		if m.HasVideo {
			w.video = &video{VideoSource: m.TypeOfVideo, VideoFramerate: m.FrameRate, VideoDimensions: m.VideoDimensions}
		}
	}
	return w
}

// signalOf reports the final recipients, and the type without the SDK's "signal:" prefix, as
// OpenVidu's signalSent does.
func signalOf(e session.Event) signal {
	s := signal{To: []string{}}
	if sig := e.Signal; sig != nil {
		if sig.From != "" {
			from := string(sig.From)
			s.From = &from
		}
		for _, to := range sig.To {
			s.To = append(s.To, string(to))
		}
		s.Type, s.Data = strings.TrimPrefix(sig.Type, "signal:"), sig.Data
	}
	return s
}
