package session

import "time"

// EventKind says what happened. The names follow OpenVidu's webhook events and RPC notifications.
type EventKind int

// Event kinds.
const (
	SessionCreated EventKind = iota + 1
	SessionDestroyed
	ParticipantJoined
	ParticipantLeft
	// ParticipantEvicted follows ParticipantLeft when the removal was forced (REST, moderator, network).
	ParticipantEvicted
	StreamPublished
	StreamUnpublished
	StreamPropertyChanged
	SignalSent
	// WebRTCConnectionCreated and WebRTCConnectionDestroyed are per media connection: Stream set,
	// Subscriber set for a subscription (INBOUND), empty for the publisher (OUTBOUND).
	WebRTCConnectionCreated
	WebRTCConnectionDestroyed
	// RecordingStatusChanged carries Recording. Participants' sinks get it when a recording of their
	// session starts (recordingStarted) and stops or fails (recordingStopped).
	RecordingStatusChanged
)

var kindNames = map[EventKind]string{
	SessionCreated: "sessionCreated", SessionDestroyed: "sessionDestroyed",
	ParticipantJoined: "participantJoined", ParticipantLeft: "participantLeft",
	ParticipantEvicted: "participantEvicted", StreamPublished: "participantPublished",
	StreamUnpublished: "participantUnpublished", StreamPropertyChanged: "streamPropertyChanged",
	SignalSent: "signalSent", WebRTCConnectionCreated: "webrtcConnectionCreated",
	WebRTCConnectionDestroyed: "webrtcConnectionDestroyed", RecordingStatusChanged: "recordingStatusChanged",
}

func (k EventKind) String() string { return kindNames[k] }

// Event is the one type the session model emits. Events are delivered in the order they happened,
// after the model's lock is released, by one caller at a time; sinks and listeners must therefore
// never block (queue and return), or they hold up every other event.
type Event struct {
	Kind    EventKind
	Time    time.Time
	Session SessionID
	// Connection is the participant the event is about.
	Connection ConnectionID
	Stream     StreamID
	// Subscriber is set on WebRTC connection events of a subscription.
	Subscriber ConnectionID
	Reason     string
	// Node is set on the events of another node's participant that mirror listeners get
	// (Manager.ListenMirrors): the node holding it. Listeners never see such events.
	Node string

	// SessionCreatedAt is when the session was created; with Session it tells apart two sessions of
	// the same customSessionId (OpenVidu's uniqueSessionId). Set on every event.
	SessionCreatedAt time.Time
	// Started is when what ends began: the session's creation on SessionDestroyed, the join on
	// ParticipantLeft, the media connection's creation on WebRTCConnectionDestroyed (the Time of the
	// matching start event, so records can pair them).
	Started time.Time

	// Participant is set on ParticipantJoined.
	Participant *ParticipantInfo
	// Client is set on ParticipantJoined and ParticipantLeft.
	Client *ClientInfo
	// Media is set on WebRTCConnectionCreated and WebRTCConnectionDestroyed: the options of the
	// published stream (for a subscription, the publisher's), as they were when the event happened.
	Media *MediaOptions
	// StreamInfo is set on StreamPublished.
	StreamInfo *StreamInfo
	// Signal is set on SignalSent.
	Signal *Signal
	// Property is set on StreamPropertyChanged.
	Property *PropertyChange
	// Recording is set on RecordingStatusChanged.
	Recording *RecordingInfo
}

// ClientInfo is what a participant told about itself when joining, and the server data its
// connection was created with (webhook participantJoined/participantLeft fields).
type ClientInfo struct {
	IP         string
	Platform   string
	ClientData string
	ServerData string
}

// Signal is an application message between participants.
type Signal struct {
	Type string
	Data string
	// From is empty for signals sent through REST.
	From ConnectionID
	To   []ConnectionID
}

// PropertyChange is a stream property update. NewValue is the JSON text of the value the client
// sent; OpenVidu relays it as a string (protocol note §4.8).
type PropertyChange struct {
	Property string
	NewValue string
	Reason   string
}

// Sink receives the events addressed to one participant. Notify must not block.
type Sink interface {
	Notify(Event)
}

// Listener receives every event once (webhooks, metrics, logs). It must not block.
type Listener func(Event)
