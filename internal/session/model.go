package session

import (
	"slices"
	"strings"
	"time"
)

// Role is a connection's capability set (OpenVidu OpenViduRole).
type Role string

// Roles.
const (
	RoleSubscriber Role = "SUBSCRIBER"
	RolePublisher  Role = "PUBLISHER"
	RoleModerator  Role = "MODERATOR"
)

// CanPublish reports whether the role may publish a stream.
func (r Role) CanPublish() bool { return r == RolePublisher || r == RoleModerator }

// RecordingProperties are a session's default recording settings (protocol note §10.2).
type RecordingProperties struct {
	Name                string
	HasAudio            bool
	HasVideo            bool
	OutputMode          string
	RecordingLayout     string
	CustomLayout        string
	Resolution          string
	FrameRate           int
	ShmSize             int64
	IgnoreFailedStreams bool
}

// Properties are what the application chose when creating the session.
type Properties struct {
	MediaMode        string // ROUTED or RELAYED (RELAYED is served ROUTED, as OpenVidu CE does)
	RecordingMode    string // MANUAL or ALWAYS
	CustomSessionID  string
	DefaultRecording RecordingProperties
	ForcedVideoCodec string // MEDIA_SERVER_PREFERRED, NONE, VP8, VP9, H264
	AllowTranscoding bool
}

// KurentoOptions are per-connection bandwidth and filter settings; nil fields were not set.
// The bandwidths are kbps, 0 meaning unconstrained, as in OpenVidu.
type KurentoOptions struct {
	VideoMaxRecvBandwidth *int
	VideoMinRecvBandwidth *int
	VideoMaxSendBandwidth *int
	VideoMinSendBandwidth *int
	AllowedFilters        []string
}

// IceServer is one entry of a connection's ICE server list (OpenVidu's IceServerProperties).
type IceServer struct {
	URL        string
	Username   string
	Credential string
	// StaticAuthSecret, instead of Username and Credential, makes fresh coturn use-auth-secret
	// credentials for each participant when it joins.
	StaticAuthSecret string
}

// ConnectionOptions are what the application chose when creating a connection (its token).
type ConnectionOptions struct {
	Type string // WEBRTC or IPCAM
	// IPCam is set for an IPCAM connection.
	IPCam            *IPCamOptions
	Data             string // server data
	Record           bool
	Role             Role
	KurentoOptions   *KurentoOptions
	CustomIceServers []IceServer
}

// MediaOptions describe a published stream as the client announced it.
type MediaOptions struct {
	HasAudio        bool
	HasVideo        bool
	AudioActive     bool
	VideoActive     bool
	TypeOfVideo     string
	FrameRate       float64 // -1 when the application did not set one
	VideoDimensions string  // JSON text, e.g. {"width":640,"height":480}
}

// SessionInfo is a snapshot of a session for the REST API.
type SessionInfo struct {
	ID          SessionID
	CreatedAt   time.Time
	Props       Properties
	Recording   bool
	Connections []ConnectionInfo
}

// ConnectionInfo is a snapshot of a connection.
type ConnectionInfo struct {
	ID          ConnectionID
	Session     SessionID
	Active      bool
	CreatedAt   time.Time
	ActiveAt    time.Time
	IP          string
	Platform    string
	ClientData  string
	Token       string
	Options     ConnectionOptions
	Publishers  []StreamInfo
	Subscribers []SubscriptionInfo
	// RPC is the JSON-RPC session an active participant joined through (JoinInfo.RPC): a
	// credential to its socket's session, so never marshalled with the rest.
	RPC string `json:"-"`
}

// StreamInfo is a snapshot of a published stream.
type StreamInfo struct {
	ID        StreamID
	CreatedAt time.Time
	Media     MediaOptions
	// Path is the candidate pair carrying it (zero until connected).
	Path MediaPath
}

// SubscriptionInfo is a snapshot of one subscription of a connection.
type SubscriptionInfo struct {
	Stream    StreamID
	CreatedAt time.Time
	Path      MediaPath
}

// ParticipantInfo is how a participant is announced to others (participantJoined, joinRoom value).
type ParticipantInfo struct {
	ID        ConnectionID
	CreatedAt time.Time // when it joined
	Metadata  string    // client data and server data joined by %/%
	Stream    *StreamInfo
}

// JoinInfo is what a joining client tells about itself.
type JoinInfo struct {
	Metadata string // client data
	Platform string
	IP       string
	// RPC is the JSON-RPC session the participant joins through: a cluster records it, so the
	// participant's `connect` to another node can be restored there (replica.go).
	RPC string
}

// JoinResult is what joinRoom answers.
type JoinResult struct {
	Self     ParticipantInfo
	Session  SessionID
	Role     Role
	Record   bool
	Existing []ParticipantInfo
	// IceServers are the connection's configured servers (empty: the caller supplies its defaults).
	IceServers []IceServer
	// RecordingID and RecordingName are set while the session is being recorded and the role is
	// told of recordings (OPENVIDU_RECORDING_NOTIFICATION): the SDK then emits recordingStarted.
	RecordingID, RecordingName string
}

// session is the model's state of one session; guarded by Manager.mu.
type session struct {
	id         SessionID
	createdAt  time.Time
	props      Properties
	conns      map[ConnectionID]*Connection
	order      []ConnectionID // creation order, for stable listings
	everJoined bool
	// recording is set while a recorder records the session (RecordingStatus).
	recording *recordingState
	// remoteRecording is set while another node records the session (MirrorRecording): shown to
	// REST and joiners like recording, it never keeps the session alive here, where nobody records.
	remoteRecording *recordingState
	// remoteStopped is the last recording of another node that stopped here: a late "started" of
	// it (a joiner's read of the shared record that raced its stop) must not show it again.
	remoteStopped string
}

// Connection is a connection (token) and, once joined, a participant. Its fields are guarded by
// Manager.mu; callers hold it as an opaque handle.
type Connection struct {
	id        ConnectionID
	sess      *session
	token     string
	opts      ConnectionOptions
	createdAt time.Time
	// node is set on a mirror: a participant held by that node of the cluster, shown here so this
	// node's participants see it (mirror.go). A mirror has no sink, token or media of its own.
	node string

	active     bool
	gone       bool
	activeAt   time.Time
	ip         string
	platform   string
	clientData string
	rpc        string
	sink       Sink

	stream     *stream
	publishing bool // a publish is being negotiated
	// resume is the stream a participant restored from another node published there: its
	// reconnectStream publishes it here anew, with the same id (replica.go).
	resume *StreamInfo
	subs   map[ConnectionID]*subscription
	// pendingCands holds candidates that arrived before their endpoint existed, by endpointName;
	// pendingN and pendingBytes are what it holds, within maxPendingCandidates and
	// maxPendingBytes.
	pendingCands map[string][]Candidate
	pendingN     int
	pendingBytes int
}

// ID returns the connection id.
func (c *Connection) ID() ConnectionID { return c.id }

// Session returns the id of the connection's session (fixed at creation).
func (c *Connection) Session() SessionID { return c.sess.id }

type stream struct {
	id        StreamID
	createdAt time.Time
	media     MediaOptions
	pub       PublishedMedia
	path      MediaPath
}

type subscription struct {
	stream    StreamID
	createdAt time.Time
	sub       SubscribedMedia
	path      MediaPath
	// src is the publisher's stream, whose media options the subscription's events report.
	src *stream
}

// metadata joins client and server data the way OpenVidu does (protocol note §2): apps parse it, so
// the separator appears only when both are present.
func (c *Connection) metadata() string {
	switch {
	case c.clientData != "" && c.opts.Data != "":
		return c.clientData + "%/%" + c.opts.Data
	case c.clientData != "":
		return c.clientData
	default:
		return c.opts.Data
	}
}

func (c *Connection) participantInfo() ParticipantInfo {
	p := ParticipantInfo{ID: c.id, CreatedAt: c.activeAt, Metadata: c.metadata()}
	if c.stream != nil {
		si := c.stream.info()
		p.Stream = &si
	}
	return p
}

// clientInfo snapshots what events report about a participant.
func (c *Connection) clientInfo() *ClientInfo {
	return &ClientInfo{IP: c.ip, Platform: c.platform, ClientData: c.clientData, ServerData: c.opts.Data}
}

// mediaSnapshot copies the stream's options: listeners keep events after the lock is released,
// while property changes keep editing s.media.
func (s *stream) mediaSnapshot() *MediaOptions {
	md := s.media
	return &md
}

func (s *stream) info() StreamInfo {
	return StreamInfo{ID: s.id, CreatedAt: s.createdAt, Media: s.media, Path: s.path}
}

func (c *Connection) info() ConnectionInfo {
	ci := ConnectionInfo{
		ID: c.id, Session: c.sess.id, Active: c.active, CreatedAt: c.createdAt, ActiveAt: c.activeAt,
		IP: c.ip, Platform: c.platform, ClientData: c.clientData, Token: c.token, Options: c.opts, RPC: c.rpc,
	}
	if c.active {
		ci.Publishers = []StreamInfo{}
		ci.Subscribers = []SubscriptionInfo{}
		if c.stream != nil {
			ci.Publishers = append(ci.Publishers, c.stream.info())
		}
		for _, s := range c.subs {
			ci.Subscribers = append(ci.Subscribers, SubscriptionInfo{Stream: s.stream, CreatedAt: s.createdAt, Path: s.path})
		}
		// c.subs is a map: order the listing so REST answers are stable.
		slices.SortFunc(ci.Subscribers, func(a, b SubscriptionInfo) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(string(a.Stream), string(b.Stream))
		})
	}
	return ci
}

// bandwidths returns the connection's own kurentoOptions bandwidths (nil where not set).
func (o ConnectionOptions) bandwidths() (maxRecv, minRecv, maxSend *int) {
	if k := o.KurentoOptions; k != nil {
		return k.VideoMaxRecvBandwidth, k.VideoMinRecvBandwidth, k.VideoMaxSendBandwidth
	}
	return nil, nil, nil
}
