// Package session is Parley's session model: sessions, connections (tokens), participants, streams
// and subscriptions, their lifecycle, and the events it emits.
//
// It owns all of that state behind one lock and drives the SFU through the small Media interface. It
// must not import api, signaling or edge (they call it) and knows nothing of HTTP or JSON-RPC.
//
// Event contract: every state change emits Events while the lock is held, so events of a session are
// delivered in order. Each participant's Sink receives the events addressed to it (the OpenVidu
// notifications); Listeners receive each event once. Neither may block: a signaling sink queues and
// closes an overflowing client, a webhook listener queues and counts drops.
//
// Lock order: Manager.mu is the only lock here. pion objects are never closed while holding it,
// because closing fires pion callbacks that may call back into the model.
package session

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley/parley/internal/config"
)

// Options configure a Manager.
type Options struct {
	Config config.SessionConfig
	// WebSocketURL is the signaling URL written into tokens (ws://localhost:4443/openvidu).
	WebSocketURL string
	Media        Media
	Log          *slog.Logger
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// DescribePath, optional, completes a candidate pair with what only the caller knows (whether the
	// remote address is one of our TURN relays).
	DescribePath func(MediaPath) MediaPath
}

// Manager owns every session of this node.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	sessions map[SessionID]*session
	// conns indexes every connection of every session by id, for Alive.
	conns     map[ConnectionID]*Connection
	listeners []Listener
	closing   bool
}

// NewManager returns an empty model.
func NewManager(opts Options) *Manager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Manager{opts: opts, log: opts.Log, sessions: map[SessionID]*session{}, conns: map[ConnectionID]*Connection{}}
}

// Listen registers a listener for every event. Register before serving.
func (m *Manager) Listen(l Listener) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listeners = append(m.listeners, l)
}

// emit delivers e to the sinks of to and to every listener. Caller holds m.mu.
func (m *Manager) emit(e Event, to ...*Connection) {
	if e.Time.IsZero() {
		e.Time = m.opts.Now()
	}
	if e.SessionCreatedAt.IsZero() {
		if s := m.sessions[e.Session]; s != nil {
			e.SessionCreatedAt = s.createdAt
		}
	}
	for _, c := range to {
		if c.sink != nil {
			c.sink.Notify(e)
		}
	}
	for _, l := range m.listeners {
		l(e)
	}
}

// notify delivers e to the sinks of to only (a notification that is not itself a new event, e.g.
// participantEvicted after participantLeft). Caller holds m.mu.
func (m *Manager) notify(e Event, to ...*Connection) {
	e.Time = m.opts.Now()
	for _, c := range to {
		if c.sink != nil {
			c.sink.Notify(e)
		}
	}
}

// ---- sessions (REST) ----

// CreateSession creates a session; a taken customSessionId is a KindConflict error.
func (m *Manager) CreateSession(p Properties) (SessionInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return SessionInfo{}, errorf(KindNotAcceptable, CodeRoomClosed, "server is shutting down")
	}
	id := SessionID(p.CustomSessionID)
	if id == "" {
		for id == "" || m.sessions[id] != nil {
			id = newSessionID()
		}
	} else if m.sessions[id] != nil {
		return SessionInfo{}, errorf(KindConflict, CodeGeneric, "session %s already exists", id)
	}
	s := &session{id: id, createdAt: m.opts.Now(), props: p, conns: map[ConnectionID]*Connection{}}
	m.sessions[id] = s
	m.emit(Event{Kind: SessionCreated, Session: id, Time: s.createdAt})
	m.log.Info("session created", "session", id)
	return m.sessionInfo(s, false), nil
}

func (m *Manager) sessionInfo(s *session, pending bool) SessionInfo {
	si := SessionInfo{ID: s.id, CreatedAt: s.createdAt, Props: s.props, Connections: []ConnectionInfo{}, Recording: s.recording != nil}
	for _, id := range s.order {
		c := s.conns[id]
		if c.active || pending {
			si.Connections = append(si.Connections, c.info())
		}
	}
	return si
}

func (m *Manager) lookup(id SessionID) (*session, error) {
	s := m.sessions[id]
	if s == nil {
		return nil, errorf(KindNotFound, CodeRoomNotFound, "session %s cannot be found", id)
	}
	return s, nil
}

// Session returns a snapshot; pending includes connections nobody has joined with yet.
func (m *Manager) Session(id SessionID, pending bool) (SessionInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.lookup(id)
	if err != nil {
		return SessionInfo{}, err
	}
	return m.sessionInfo(s, pending), nil
}

// Sessions returns snapshots of every session, oldest first.
func (m *Manager) Sessions(pending bool) []SessionInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]SessionInfo, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, m.sessionInfo(s, pending))
	}
	slices.SortFunc(out, func(a, b SessionInfo) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})
	return out
}

// SessionCount is the number of sessions, for metrics: garbage collection removes sessions without
// an event, so a count kept from events would drift.
func (m *Manager) SessionCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// CloseSession evicts everyone with reason sessionClosedByServer and destroys the session.
func (m *Manager) CloseSession(id SessionID) error {
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.lookup(id)
	if err != nil {
		return err
	}
	cleanup = m.closeSession(s, ReasonSessionClosedByServer)
	return nil
}

func (m *Manager) closeSession(s *session, reason string) (cleanup []func()) {
	if r := s.recording; r != nil {
		// OpenVidu stops the recording before it evicts anyone, so participants hear
		// recordingStopped first. The recorder learns of it from SessionDestroyed and reports the
		// statuses to listeners (webhooks) itself.
		ri := &RecordingInfo{ID: r.id, Name: r.name, Session: s.id, SessionCreatedAt: s.createdAt, Status: RecordingStopped, Reason: reason}
		m.notify(Event{Kind: RecordingStatusChanged, Session: s.id, Reason: reason, Recording: ri}, m.recordingAudience(s)...)
	}
	for _, id := range slices.Clone(s.order) {
		if c := s.conns[id]; c != nil && c.active {
			cleanup = append(cleanup, m.remove(c, reason, evicted)...)
		}
	}
	m.destroy(s, reason)
	return cleanup
}

// destroy forgets a session; its pending tokens die with it. Caller holds m.mu.
func (m *Manager) destroy(s *session, reason string) {
	if m.sessions[s.id] != s {
		return
	}
	m.dropSession(s)
	// The session is already forgotten, so emit cannot look its creation up.
	m.emit(Event{Kind: SessionDestroyed, Session: s.id, Reason: reason, SessionCreatedAt: s.createdAt, Started: s.createdAt})
	m.log.Info("session destroyed", "session", s.id, "reason", reason)
}

// dropSession forgets s and its connections, pending tokens included. Caller holds m.mu.
func (m *Manager) dropSession(s *session) {
	delete(m.sessions, s.id)
	for id, c := range s.conns {
		c.gone = true
		delete(m.conns, id)
	}
}

// ---- connections (REST) ----

// CreateConnection creates a pending connection with a fresh single-use token.
func (m *Manager) CreateConnection(id SessionID, o ConnectionOptions) (ConnectionInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return ConnectionInfo{}, errorf(KindNotAcceptable, CodeRoomClosed, "server is shutting down")
	}
	s, err := m.lookup(id)
	if err != nil {
		return ConnectionInfo{}, err
	}
	cid := newConnectionID()
	for m.conns[cid] != nil { // unique on the node: Alive and TURN credentials name it alone
		cid = newConnectionID()
	}
	c := &Connection{
		id: cid, sess: s, opts: o, createdAt: m.opts.Now(),
		token: m.opts.WebSocketURL + "?sessionId=" + string(s.id) + "&token=" + newTokenValue(),
	}
	s.conns[cid] = c
	m.conns[cid] = c
	s.order = append(s.order, cid)
	return c.info(), nil
}

// Connections lists a session's connections.
func (m *Manager) Connections(id SessionID, pending bool) ([]ConnectionInfo, error) {
	si, err := m.Session(id, pending)
	return si.Connections, err
}

// Connection returns one connection, pending or active.
func (m *Manager) Connection(id SessionID, cid ConnectionID) (ConnectionInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.connection(id, cid)
	if err != nil {
		return ConnectionInfo{}, err
	}
	return c.info(), nil
}

func (m *Manager) connection(id SessionID, cid ConnectionID) (*Connection, error) {
	s, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	c := s.conns[cid]
	if c == nil {
		return nil, errorf(KindNotFound, CodeUserNotFound, "connection %s not found in session %s", cid, id)
	}
	return c, nil
}

// UpdateConnection changes role and/or record of a connection (OpenVidu PRO's PATCH, kept because it
// is cheap). The new role applies to the participant's next action.
func (m *Manager) UpdateConnection(id SessionID, cid ConnectionID, role *Role, record *bool) (ConnectionInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.connection(id, cid)
	if err != nil {
		return ConnectionInfo{}, err
	}
	if role != nil {
		c.opts.Role = *role
	}
	if record != nil {
		c.opts.Record = *record
	}
	return c.info(), nil
}

// DeleteConnection evicts an active participant (forceDisconnectByServer) or invalidates a pending
// token.
func (m *Manager) DeleteConnection(id SessionID, cid ConnectionID) error {
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.connection(id, cid)
	if err != nil {
		return err
	}
	if !c.active {
		m.forget(c)
		return nil
	}
	cleanup = m.remove(c, ReasonForceDisconnectByServer, evicted|destroyIfLast)
	return nil
}

// forget drops a connection from its session. Caller holds m.mu.
func (m *Manager) forget(c *Connection) {
	s := c.sess
	c.gone = true
	delete(s.conns, c.id)
	delete(m.conns, c.id)
	if i := slices.Index(s.order, c.id); i >= 0 {
		s.order = slices.Delete(s.order, i, i+1)
	}
}

// ForceUnpublishByServer stops a stream (REST DELETE stream): everyone, owner included, gets
// participantUnpublished with reason forceUnpublishByServer.
func (m *Manager) ForceUnpublishByServer(id SessionID, sid StreamID) error {
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.lookup(id)
	if err != nil {
		return err
	}
	c := s.conns[sid.Owner()]
	if c == nil || !c.active || c.stream == nil || c.stream.id != sid {
		return errorf(KindNotFound, CodeUserNotStreaming, "stream %s not found in session %s", sid, id)
	}
	cleanup = m.unpublish(c, ReasonForceUnpublishByServer, ownerToo)
	return nil
}

// ---- participants (signaling) ----

func (m *Manager) activeConns(s *session, except *Connection) []*Connection {
	out := make([]*Connection, 0, len(s.conns))
	for _, id := range s.order {
		if c := s.conns[id]; c.active && c != except {
			out = append(out, c)
		}
	}
	return out
}

// Join consumes a token and makes its connection an active participant whose notifications go to
// sink. The token is matched as the exact string REST returned (protocol note §3.2).
func (m *Manager) Join(id SessionID, token string, j JoinInfo, sink Sink) (*Participant, JoinResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	if s == nil {
		return nil, JoinResult{}, errorf(KindNotFound, CodeRoomNotFound, "Unable to join session %s. Session %s cannot be found", id, id)
	}
	if m.closing {
		return nil, JoinResult{}, errorf(KindNotAcceptable, CodeRoomClosed, "Unable to join session %s. The server is shutting down", id)
	}
	var c *Connection
	for _, cc := range s.conns {
		if !cc.active && cc.token == token {
			c = cc
			break
		}
	}
	if c == nil {
		// Never echo the token: error messages end up in client and server logs.
		return nil, JoinResult{}, errorf(KindUnauthorized, CodeUserUnauthorized, "Unable to join session %s. Token is not valid", id)
	}
	existing := m.activeConns(s, nil)
	c.active, c.activeAt = true, m.opts.Now()
	c.clientData, c.platform, c.ip, c.sink = j.Metadata, j.Platform, j.IP, sink
	c.subs = map[ConnectionID]*subscription{}
	c.pendingCands = map[string][]Candidate{}
	s.everJoined = true

	self := c.participantInfo()
	m.emit(Event{Kind: ParticipantJoined, Session: s.id, Connection: c.id, Time: c.activeAt, Participant: &self, Client: c.clientInfo()}, existing...)
	res := JoinResult{Self: self, Session: s.id, Role: c.opts.Role, Record: c.opts.Record, IceServers: c.opts.CustomIceServers}
	for _, e := range existing {
		res.Existing = append(res.Existing, e.participantInfo())
	}
	if s.recording != nil && m.notifiedOfRecording(c.opts.Role) {
		res.RecordingID, res.RecordingName = s.recording.id, s.recording.name
	}
	m.log.Info("participant joined", "session", s.id, "connection", c.id, "ip", j.IP)
	return &Participant{m: m, c: c}, res, nil
}

// usable checks that c is still an active participant. Caller holds m.mu.
func usable(c *Connection) error {
	if c == nil || !c.active || c.gone {
		return errorf(KindNotFound, CodeTransportError, "no participant for this socket: joinRoom first")
	}
	return nil
}

// Evict removes a participant for reason. Reasons other than ReasonDisconnect are forced removals: every
// participant, the evicted one included, also gets participantEvicted.
func (m *Manager) evict(c *Connection, reason string) {
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.mu.Unlock()
	if usable(c) != nil {
		return
	}
	how := destroyIfLast
	if reason != ReasonDisconnect {
		how |= evicted
	}
	cleanup = m.remove(c, reason, how)
}

// removal says how a participant goes.
type removal uint8

const (
	// evicted: a forced removal; everyone, the participant included, also gets participantEvicted.
	evicted removal = 1 << iota
	// destroyIfLast: a session left empty is destroyed (lastParticipantLeft).
	destroyIfLast
)

// remove takes a participant out of its session. With destroyIfLast, a session left empty is destroyed
// (reason lastParticipantLeft). Caller holds m.mu; the returned funcs close media after unlocking.
func (m *Manager) remove(c *Connection, reason string, how removal) (cleanup []func()) {
	s := c.sess
	cleanup = m.dropMedia(c, reason)
	others := m.activeConns(s, c)
	m.forget(c)
	m.emit(Event{Kind: ParticipantLeft, Session: s.id, Connection: c.id, Reason: reason, Started: c.activeAt, Client: c.clientInfo()}, others...)
	if how&evicted != 0 {
		m.notify(Event{Kind: ParticipantEvicted, Session: s.id, Connection: c.id, Reason: reason}, append(others, c)...)
	}
	m.log.Info("participant left", "session", s.id, "connection", c.id, "reason", reason)
	// A recorded session outlives its last participant: the recorder stops after
	// OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT and then closes it (CloseIfEmpty), as OpenVidu does.
	if how&destroyIfLast != 0 && len(others) == 0 && s.recording == nil {
		m.destroy(s, ReasonLastParticipantLeft)
	}
	return cleanup
}

// dropMedia releases c's media when it leaves, with OpenVidu's event order (KurentoSession.leave):
// the others' subscriptions to c's stream, then c's own subscriptions, then c's stream. Caller
// holds m.mu.
func (m *Manager) dropMedia(c *Connection, reason string) (cleanup []func()) {
	st := c.stream
	if st != nil {
		cleanup = m.endSubscriptionsTo(c, st, reason)
	}
	// Oldest first, not in map order: the events of one leave come out in the same order every time.
	pids := slices.SortedFunc(maps.Keys(c.subs), func(a, b ConnectionID) int {
		return cmp.Or(c.subs[a].createdAt.Compare(c.subs[b].createdAt), cmp.Compare(a, b))
	})
	for _, pid := range pids {
		sub := c.subs[pid]
		cleanup = append(cleanup, sub.sub.Close)
		delete(c.subs, pid)
		m.emit(Event{Kind: WebRTCConnectionDestroyed, Session: c.sess.id, Connection: pid, Stream: sub.stream, Subscriber: c.id, Reason: reason,
			Started: sub.createdAt, Media: sub.src.mediaSnapshot()})
		m.log.Info("unsubscribed", "session", c.sess.id, "connection", c.id, "stream", sub.stream, "reason", reason)
	}
	if st != nil {
		cleanup = append(cleanup, m.endStream(c, reason))
	}
	return cleanup
}

// releaseStream closes c's stream and every subscription to it, with OpenVidu's event order for an
// unpublish (KurentoSessionManager.unpublishVideo): the stream, then its subscriptions. The media
// still closes subscribers first. Caller holds m.mu.
func (m *Manager) releaseStream(c *Connection, reason string) (cleanup []func()) {
	st := c.stream
	closePub := m.endStream(c, reason)
	return append(m.endSubscriptionsTo(c, st, reason), closePub)
}

// endStream forgets c's stream and emits its end; the returned func closes its media. Caller holds
// m.mu.
func (m *Manager) endStream(c *Connection, reason string) (closeMedia func()) {
	st := c.stream
	c.stream = nil
	m.emit(Event{Kind: WebRTCConnectionDestroyed, Session: c.sess.id, Connection: c.id, Stream: st.id, Reason: reason,
		Started: st.createdAt, Media: st.mediaSnapshot()})
	m.log.Info("stream unpublished", "session", c.sess.id, "connection", c.id, "stream", st.id, "reason", reason)
	return st.pub.Close
}

// endSubscriptionsTo ends every subscription to st, c's stream, in the session's connection
// order. Caller holds m.mu.
func (m *Manager) endSubscriptionsTo(c *Connection, st *stream, reason string) (cleanup []func()) {
	for _, oid := range c.sess.order {
		o := c.sess.conns[oid]
		if o == nil || o == c {
			continue
		}
		if sub := o.subs[c.id]; sub != nil {
			delete(o.subs, c.id)
			cleanup = append(cleanup, sub.sub.Close)
			m.emit(Event{Kind: WebRTCConnectionDestroyed, Session: c.sess.id, Connection: c.id, Stream: st.id, Subscriber: o.id, Reason: reason,
				Started: sub.createdAt, Media: st.mediaSnapshot()})
			m.log.Info("unsubscribed", "session", c.sess.id, "connection", o.id, "stream", st.id, "reason", reason)
		}
	}
	return cleanup
}

// audience says who hears of an unpublish besides the other participants.
type audience bool

const (
	othersOnly audience = false
	ownerToo   audience = true // a forced unpublish: the owner learns of it too
)

// unpublish stops c's stream and tells the others (and, with ownerToo, c itself).
func (m *Manager) unpublish(c *Connection, reason string, who audience) (cleanup []func()) {
	cleanup = m.releaseStream(c, reason)
	to := m.activeConns(c.sess, c)
	if who == ownerToo {
		to = append(to, c)
	}
	m.emit(Event{Kind: StreamUnpublished, Session: c.sess.id, Connection: c.id, Reason: reason}, to...)
	return cleanup
}

func run(fs []func()) {
	for _, f := range fs {
		f()
	}
}

// PublishParams is a publishVideo request.
type PublishParams struct {
	Offer string
	Media MediaOptions
}

// Publish negotiates c's stream and announces it to the other participants.
func (m *Manager) publish(ctx context.Context, c *Connection, p PublishParams) (StreamInfo, string, error) {
	m.mu.Lock()
	if err := usable(c); err != nil {
		m.mu.Unlock()
		return StreamInfo{}, "", err
	}
	if !c.opts.Role.CanPublish() {
		m.mu.Unlock()
		return StreamInfo{}, "", errorf(KindUnauthorized, CodeUserUnauthorized, "Unable to publish video. The user does not have a valid token")
	}
	if c.stream != nil || c.publishing {
		m.mu.Unlock()
		return StreamInfo{}, "", errorf(KindConflict, CodeUserAlreadyStreams, "connection %s is already publishing", c.id)
	}
	c.publishing = true
	sid := newStreamID(p.Media.TypeOfVideo, p.Media.HasVideo, c.id)
	codec := resolveCodec(c.sess.props.ForcedVideoCodec, m.opts.Config.ForcedVideoCodec)
	log := m.log.With("session", c.sess.id, "connection", c.id, "stream", sid)
	m.mu.Unlock()

	var created atomic.Pointer[PublishedMedia]
	pub, answer, err := m.opts.Media.Publish(ctx, PublishRequest{Offer: p.Offer, VideoCodec: codec, Log: log,
		OnState: func(st string) {
			if pub := created.Load(); pub != nil && st == "connected" {
				m.mediaConnected(c, sid, "", (*pub).Path(), log)
			}
			log.Debug("publisher state", "state", st)
		},
		OnPath: func(p MediaPath) { m.mediaPath(c, sid, "", p, log) }})
	if err == nil {
		created.Store(&pub)
	}

	var cleanup []func()
	defer func() { run(cleanup) }() // after the unlock below
	m.mu.Lock()
	defer m.mu.Unlock()
	c.publishing = false
	if err != nil {
		return StreamInfo{}, "", mediaError(err)
	}
	if usable(c) != nil {
		cleanup = append(cleanup, pub.Close)
		return StreamInfo{}, "", errorf(KindNotFound, CodeUserNotFound, "participant left while publishing")
	}
	hasAudio, hasVideo := pub.Tracks()
	p.Media.HasAudio = p.Media.HasAudio && hasAudio
	p.Media.HasVideo = p.Media.HasVideo && hasVideo
	c.stream = &stream{id: sid, createdAt: m.opts.Now(), media: p.Media, pub: pub}
	m.flushCandidates(c, string(c.id), pub.AddCandidate)
	si := c.stream.info()
	m.emit(Event{Kind: WebRTCConnectionCreated, Session: c.sess.id, Connection: c.id, Stream: sid, Time: c.stream.createdAt, Media: c.stream.mediaSnapshot()})
	m.emit(Event{Kind: StreamPublished, Session: c.sess.id, Connection: c.id, Stream: sid, StreamInfo: &si}, m.activeConns(c.sess, c)...)
	log.Info("stream published", "codec", codec)
	return si, answer, nil
}

// resolveCodec maps OpenVidu's forcedVideoCodec to the SFU's choice: MEDIA_SERVER_PREFERRED means VP8
// (what Kurento resolved it to), NONE means whatever the publisher offers first.
func resolveCodec(session, global string) string {
	v := session
	if v == "" {
		v = global
	}
	switch v {
	case "VP8", "VP9", "H264":
		return v
	case "NONE":
		return CodecAny
	default:
		return CodecVP8
	}
}

func mediaError(err error) error {
	var e *Error
	switch {
	case errors.Is(err, ErrMediaCodec):
		e = errorf(KindInvalid, CodeForcedCodec, "%v", err)
	case errors.Is(err, ErrMediaSDP):
		e = errorf(KindInvalid, CodeMediaSDPError, "%v", err)
	default:
		e = errorf(KindInternal, CodeMediaEndpointError, "media error: %v", err)
	}
	e.Err = err
	return e
}

// flushCandidates applies candidates buffered for endpoint. Caller holds m.mu; AddICECandidate only
// queues inside pion, it never blocks on the network.
func (m *Manager) flushCandidates(c *Connection, endpoint string, add func(Candidate) error) {
	for _, cand := range c.pendingCands[endpoint] {
		_ = add(cand)
	}
	delete(c.pendingCands, endpoint)
}

// Unpublish stops c's own stream (unpublishVideo).
func (m *Manager) stopPublishing(c *Connection) error {
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := usable(c); err != nil {
		return err
	}
	if c.stream == nil {
		return errorf(KindNotAcceptable, CodeUserNotStreaming, "connection %s is not publishing", c.id)
	}
	cleanup = m.unpublish(c, ReasonUnpublish, othersOnly)
	return nil
}

type subscribeFunc func(context.Context, PublishedMedia, SubscribeRequest) (SubscribedMedia, string, error)

// answerSubscribe applies the browser's answer to the offer of a server-offered subscription.
func (m *Manager) answerSubscribe(c *Connection, sid StreamID, answer string) error {
	m.mu.Lock()
	if err := usable(c); err != nil {
		m.mu.Unlock()
		return err
	}
	sub := c.subs[sid.Owner()]
	if sub == nil || sub.stream != sid {
		m.mu.Unlock()
		return errorf(KindNotFound, CodeUserNotFound, "no subscription to %s is waiting for an answer: send prepareReceiveVideoFrom first", sid)
	}
	s := sub.sub
	m.mu.Unlock()
	if err := s.SetAnswer(answer); err != nil {
		return mediaError(err)
	}
	return nil
}

// Subscribe negotiates a subscription of c to stream sid (receiveVideoFrom, client offer).
func (m *Manager) subscribe(ctx context.Context, c *Connection, sid StreamID, offer string, negotiate subscribeFunc) (string, error) {
	m.mu.Lock()
	if err := usable(c); err != nil {
		m.mu.Unlock()
		return "", err
	}
	owner := c.sess.conns[sid.Owner()]
	if owner == nil || !owner.active {
		m.mu.Unlock()
		return "", errorf(KindNotFound, CodeUserNotFound, "participant %s not found", sid.Owner())
	}
	if owner.stream == nil || owner.stream.id != sid {
		m.mu.Unlock()
		return "", errorf(KindNotAcceptable, CodeUserNotStreaming, "participant %s is not publishing stream %s", owner.id, sid)
	}
	pub := owner.stream.pub
	old := c.subs[owner.id]
	if old != nil {
		// A re-subscription (the browser reconnected) replaces the old one, which ends like any other.
		delete(c.subs, owner.id)
		m.emit(Event{Kind: WebRTCConnectionDestroyed, Session: c.sess.id, Connection: owner.id, Stream: old.stream, Subscriber: c.id,
			Reason: ReasonUnsubscribe, Started: old.createdAt, Media: old.src.mediaSnapshot()})
	}
	log := m.log.With("session", c.sess.id, "connection", c.id, "stream", sid)
	m.mu.Unlock()
	if old != nil {
		old.sub.Close()
	}

	var created atomic.Pointer[SubscribedMedia]
	sub, answer, err := negotiate(ctx, pub, SubscribeRequest{Offer: offer, StreamID: string(sid), Log: log,
		OnState: func(st string) {
			if sub := created.Load(); sub != nil && st == "connected" {
				m.mediaConnected(owner, sid, c.id, (*sub).Path(), log)
			}
			log.Debug("subscriber state", "state", st)
		},
		OnPath:        func(p MediaPath) { m.mediaPath(owner, sid, c.id, p, log) },
		OnVideoPaused: func(paused bool) { m.videoPaused(owner, sid, c, paused) }})
	if err != nil {
		return "", mediaError(err)
	}
	created.Store(&sub)
	var cleanup []func()
	defer func() { run(cleanup) }() // after the unlock below
	m.mu.Lock()
	defer m.mu.Unlock()
	if usable(c) != nil || owner.gone || owner.stream == nil || owner.stream.id != sid || c.subs[owner.id] != nil {
		cleanup = append(cleanup, sub.Close)
		return "", errorf(KindNotFound, CodeUserNotFound, "stream %s went away while subscribing", sid)
	}
	ns := &subscription{stream: sid, createdAt: m.opts.Now(), sub: sub, src: owner.stream}
	c.subs[owner.id] = ns
	m.flushCandidates(c, string(owner.id), sub.AddCandidate)
	m.emit(Event{Kind: WebRTCConnectionCreated, Session: c.sess.id, Connection: owner.id, Stream: sid, Subscriber: c.id,
		Time: ns.createdAt, Media: owner.stream.mediaSnapshot()})
	log.Info("subscribed")
	return answer, nil
}

// ReasonNetworkConstrained is the streamPropertyChanged reason with which one subscriber learns
// that the SFU paused (videoActive false) or resumed (true) its copy of a stream's video because
// its own link cannot carry it. Nobody else is told: the publisher and the others are unaffected.
const ReasonNetworkConstrained = "networkConstrained"

// videoPaused tells subscriber c that its copy of stream sid's video stopped or started again (sfu
// OnVideoPaused). openvidu-browser sees the stream's videoActive change, as when the publisher
// turns its camera off, so an application shows the same placeholder; the reason tells them apart.
// Nothing is said while the publisher's own video is off.
func (m *Manager) videoPaused(owner *Connection, sid StreamID, c *Connection, paused bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if usable(c) != nil || owner.gone || owner.stream == nil || owner.stream.id != sid || !owner.stream.media.VideoActive {
		return
	}
	m.notify(Event{Kind: StreamPropertyChanged, Session: c.sess.id, Connection: owner.id, Stream: sid,
		Property: &PropertyChange{Property: "videoActive", NewValue: strconv.FormatBool(!paused), Reason: ReasonNetworkConstrained}}, c)
}

// mediaConnected records the candidate pair of a publisher (subscriber empty) or subscription once
// ICE and DTLS are up, and logs it: the first thing to look at when someone sees only themselves.
func (m *Manager) mediaConnected(owner *Connection, sid StreamID, subscriber ConnectionID, path MediaPath, log *slog.Logger) {
	m.recordPath(owner, sid, subscriber, path, log, true)
}

// mediaPath records a pair ICE selected (sfu OnPath). Browsers move after connecting, e.g. from a
// TURN relay to ICE-TCP once that check succeeds; REST's connectionPath and the log follow.
func (m *Manager) mediaPath(owner *Connection, sid StreamID, subscriber ConnectionID, path MediaPath, log *slog.Logger) {
	m.recordPath(owner, sid, subscriber, path, log, false)
}

func (m *Manager) recordPath(owner *Connection, sid StreamID, subscriber ConnectionID, path MediaPath, log *slog.Logger, connected bool) {
	if m.opts.DescribePath != nil {
		path = m.opts.DescribePath(path)
	}
	m.mu.Lock()
	var at *MediaPath
	if subscriber == "" {
		if owner.stream != nil && owner.stream.id == sid {
			at = &owner.stream.path
		}
	} else if c := owner.sess.conns[subscriber]; c != nil && c.subs[owner.id] != nil && c.subs[owner.id].stream == sid {
		at = &c.subs[owner.id].path
	}
	var was MediaPath
	if at != nil {
		was, *at = *at, path
	}
	m.mu.Unlock()
	switch {
	case connected:
		log.Info("media connected", "path", path.String())
	case at != nil && was.Protocol != "" && was != path:
		log.Info("media path changed", "path", path.String(), "was", was.String())
	}
}

// Unsubscribe ends c's subscription to the stream of publisher (unsubscribeFromVideo sends the
// publisher's connection id, not a stream id).
func (m *Manager) unsubscribe(c *Connection, publisher ConnectionID) error {
	m.mu.Lock()
	if err := usable(c); err != nil {
		m.mu.Unlock()
		return err
	}
	sub := c.subs[publisher]
	if sub == nil {
		m.mu.Unlock()
		return errorf(KindNotFound, CodeUserNotFound, "not subscribed to %s", publisher)
	}
	delete(c.subs, publisher)
	m.emit(Event{Kind: WebRTCConnectionDestroyed, Session: c.sess.id, Connection: publisher, Stream: sub.stream, Subscriber: c.id, Reason: ReasonUnsubscribe,
		Started: sub.createdAt, Media: sub.src.mediaSnapshot()})
	m.mu.Unlock()
	m.log.Info("unsubscribed", "session", c.sess.id, "connection", c.id, "stream", sub.stream, "reason", ReasonUnsubscribe)
	sub.sub.Close()
	return nil
}

// AddCandidate routes a browser candidate: endpointName is c's own id for its publisher connection,
// or the publisher's id for a subscription. Candidates for endpoints not negotiated yet are kept.
func (m *Manager) addCandidate(c *Connection, endpoint string, cand Candidate) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := usable(c); err != nil {
		return err
	}
	var add func(Candidate) error
	if endpoint == string(c.id) && c.stream != nil {
		add = c.stream.pub.AddCandidate
	} else if sub := c.subs[ConnectionID(endpoint)]; sub != nil {
		add = sub.sub.AddCandidate
	}
	if add == nil {
		if len(c.pendingCands[endpoint]) < 64 && len(c.pendingCands) < 64 { // bounded: a client cannot grow it forever
			c.pendingCands[endpoint] = append(c.pendingCands[endpoint], cand)
		}
		return nil
	}
	return add(cand)
}

// SendSignal delivers an application signal. from is nil for REST signals. With no recipients the
// signal goes to every participant (the sender included); unknown recipients fail the whole signal.
func (m *Manager) SendSignal(id SessionID, from *Connection, to []ConnectionID, typ, data string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s *session
	if from != nil {
		if err := usable(from); err != nil {
			return err
		}
		s = from.sess
	} else {
		var err error
		if s, err = m.lookup(id); err != nil {
			return err
		}
	}
	var recipients []*Connection
	if len(to) == 0 {
		recipients = m.activeConns(s, nil)
		if len(recipients) == 0 {
			return errorf(KindNotAcceptable, CodeSignalTo, "session %s has no participants", s.id)
		}
	} else {
		for _, t := range to {
			c := s.conns[t]
			if c == nil || !c.active {
				return errorf(KindNotAcceptable, CodeSignalTo, "signal recipient %q is not a participant of session %s", t, s.id)
			}
			if !slices.Contains(recipients, c) {
				recipients = append(recipients, c)
			}
		}
	}
	sig := &Signal{Type: typ, Data: data}
	for _, r := range recipients {
		sig.To = append(sig.To, r.id)
	}
	if from != nil {
		sig.From = from.id
	}
	m.emit(Event{Kind: SignalSent, Session: s.id, Connection: sig.From, Signal: sig}, recipients...)
	return nil
}

// ChangeStreamProperty records a property change of c's stream and tells the others. newValue is the
// JSON text the client sent.
func (m *Manager) changeStreamProperty(c *Connection, property, newValue, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := usable(c); err != nil {
		return err
	}
	if c.stream == nil {
		return errorf(KindNotAcceptable, CodeUserNotStreaming, "connection %s is not publishing", c.id)
	}
	md := &c.stream.media
	switch property {
	case "audioActive":
		md.AudioActive = strings.TrimSpace(newValue) == "true"
	case "videoActive":
		md.VideoActive = strings.TrimSpace(newValue) == "true"
	case "videoDimensions":
		// The SDK sends the JSON text of a string holding a JSON object: "{\"width\":…}".
		var dims string
		var obj map[string]any
		if json.Unmarshal([]byte(newValue), &dims) != nil || json.Unmarshal([]byte(dims), &obj) != nil {
			return errorf(KindInvalid, CodeGeneric, "videoDimensions %.64q is not a JSON object in a string", newValue)
		}
		md.VideoDimensions = dims
	}
	m.emit(Event{Kind: StreamPropertyChanged, Session: c.sess.id, Connection: c.id, Stream: c.stream.id,
		Property: &PropertyChange{Property: property, NewValue: newValue, Reason: reason}}, m.activeConns(c.sess, c)...)
	return nil
}

// ForceDisconnect evicts target on behalf of moderator by (reason forceDisconnectByUser).
func (m *Manager) forceDisconnect(by *Connection, target ConnectionID) error {
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.moderator(by); err != nil {
		return err
	}
	c := by.sess.conns[target]
	if c == nil || !c.active {
		return errorf(KindNotFound, CodeUserNotFound, "connection %s not found", target)
	}
	cleanup = m.remove(c, ReasonForceDisconnectByUser, evicted|destroyIfLast)
	return nil
}

// ForceUnpublish stops stream sid on behalf of moderator by (reason forceUnpublishByUser).
func (m *Manager) forceUnpublish(by *Connection, sid StreamID) error {
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.moderator(by); err != nil {
		return err
	}
	c := by.sess.conns[sid.Owner()]
	if c == nil || !c.active || c.stream == nil || c.stream.id != sid {
		return errorf(KindNotFound, CodeUserNotFound, "stream %s not found", sid)
	}
	cleanup = m.unpublish(c, ReasonForceUnpublishByUser, ownerToo)
	return nil
}

func (m *Manager) moderator(c *Connection) error {
	if err := usable(c); err != nil {
		return err
	}
	if c.opts.Role != RoleModerator {
		return errorf(KindUnauthorized, CodeUserUnauthorized, "only a MODERATOR may do that")
	}
	return nil
}

// ReconnectPublisher renegotiates c's stream on a new PeerConnection (reconnectStream); subscribers
// stay attached and nobody is notified.
func (m *Manager) reconnectPublisher(ctx context.Context, c *Connection, offer string) (StreamInfo, string, error) {
	m.mu.Lock()
	if err := usable(c); err != nil {
		m.mu.Unlock()
		return StreamInfo{}, "", err
	}
	if c.stream == nil {
		m.mu.Unlock()
		return StreamInfo{}, "", errorf(KindNotAcceptable, CodeUserNotStreaming, "connection %s is not publishing", c.id)
	}
	st := c.stream
	m.mu.Unlock()
	answer, err := st.pub.Renegotiate(ctx, offer)
	if err != nil {
		return StreamInfo{}, "", mediaError(err)
	}
	return st.info(), answer, nil
}

// Alive reports whether a connection is an active participant (the TURN server asks on every
// authenticated request).
func (m *Manager) Alive(cid string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.conns[ConnectionID(cid)]
	return c != nil && c.active && !c.gone
}

// Footprint reports a participant's session and its PeerConnections (one per publish, one per
// subscription, those being negotiated included), or -1 if it is not active; the TURN server
// sizes a participant's relay allocations by them.
func (m *Manager) Footprint(cid string) (string, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.sessions {
		if c := s.conns[ConnectionID(cid)]; c != nil {
			if !c.active || c.gone {
				break
			}
			n := len(c.subs)
			if c.stream != nil || c.publishing {
				n++
			}
			return string(s.id), n
		}
	}
	return "", -1
}

// Run collects sessions nobody joined (OPENVIDU_SESSIONS_GARBAGE_*) until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	if m.opts.Config.GarbageInterval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(m.opts.Config.GarbageInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.CollectGarbage()
		}
	}
}

// CollectGarbage removes sessions without participants that are older than the threshold, silently
// (OpenVidu sends no webhook for them either).
func (m *Manager) CollectGarbage() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.Now()
	for id, s := range m.sessions {
		if len(m.activeConns(s, nil)) == 0 && s.recording == nil && now.Sub(s.createdAt) >= m.opts.Config.GarbageThreshold {
			m.dropSession(s)
			m.log.Info("session garbage-collected", "session", id)
		}
	}
}

// Shutdown refuses new work and evicts every participant with reason openviduServerStopped.
func (m *Manager) Shutdown() {
	var cleanup []func()
	m.mu.Lock()
	m.closing = true
	for _, s := range m.sessions {
		cleanup = append(cleanup, m.closeSession(s, ReasonServerStopped)...)
	}
	m.mu.Unlock()
	run(cleanup)
}
