package session

import (
	"slices"
	"strings"
)

// Sessions and connections as the REST API manages them: the Manager creates and lists sessions,
// a Room handle does everything else to one session.

// Room is the handle of one session, by id: what REST (and the recorder) do to a session and its
// connections. It holds no state; each operation finds the session anew and fails with
// CodeRoomNotFound when there is none, so a handle may be kept or made for a session not created
// yet.
type Room struct {
	m  *Manager
	id SessionID
}

// Room returns the handle of session id.
func (m *Manager) Room(id SessionID) Room { return Room{m: m, id: id} }

// ID returns the session id the handle names.
func (r Room) ID() SessionID { return r.id }

// CreateSession creates a session; a taken customSessionId is a KindConflict error.
func (m *Manager) CreateSession(p Properties) (SessionInfo, error) {
	m.mu.Lock()
	defer m.unlock()
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
	si := SessionInfo{ID: s.id, CreatedAt: s.createdAt, Props: s.props, Connections: []ConnectionInfo{}, Recording: s.shownRecording() != nil}
	for _, id := range s.order {
		c := s.conns[id]
		if c.node == "" && (c.active || pending) {
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

// Info returns a snapshot of the session; pending includes connections nobody has joined with yet.
func (r Room) Info(pending bool) (SessionInfo, error) {
	m, id := r.m, r.id
	m.mu.Lock()
	defer m.unlock()
	s, err := m.lookup(id)
	if err != nil {
		return SessionInfo{}, err
	}
	return m.sessionInfo(s, pending), nil
}

// Sessions returns snapshots of every session, oldest first.
func (m *Manager) Sessions(pending bool) []SessionInfo {
	m.mu.Lock()
	defer m.unlock()
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
	defer m.unlock()
	return len(m.sessions)
}

// Close evicts everyone with reason sessionClosedByServer and destroys the session.
func (r Room) Close() error {
	m, id := r.m, r.id
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
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
		if c := s.conns[id]; c != nil && c.active && c.node == "" {
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
// An IPCAM connection is instead created active, publishing its camera (createIPCam).
func (r Room) CreateConnection(o ConnectionOptions) (ConnectionInfo, error) {
	m, id := r.m, r.id
	if o.Type == "IPCAM" {
		return m.createIPCam(id, o)
	}
	m.mu.Lock()
	defer m.unlock()
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

// Connection returns one connection, pending or active.
func (r Room) Connection(cid ConnectionID) (ConnectionInfo, error) {
	m, id := r.m, r.id
	m.mu.Lock()
	defer m.unlock()
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
	if c == nil || c.node != "" { // a mirror is answered for by its own node
		return nil, errorf(KindNotFound, CodeUserNotFound, "connection %s not found in session %s", cid, id)
	}
	return c, nil
}

// UpdateConnection changes role and/or record of a connection (OpenVidu PRO's PATCH, kept because it
// is cheap). The new role applies to the participant's next action.
func (r Room) UpdateConnection(cid ConnectionID, role *Role, record *bool) (ConnectionInfo, error) {
	m, id := r.m, r.id
	m.mu.Lock()
	defer m.unlock()
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
func (r Room) DeleteConnection(cid ConnectionID) error {
	m, id := r.m, r.id
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
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

// Evict removes active participant cid for reason, as a forced removal (a moderator on another
// node of the cluster did it: reason forceDisconnectByUser).
func (r Room) Evict(cid ConnectionID, reason string) error {
	m, id := r.m, r.id
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
	c, err := m.connection(id, cid)
	if err != nil {
		return err
	}
	if !c.active {
		return errorf(KindNotFound, CodeUserNotFound, "connection %s is not a participant", cid)
	}
	cleanup = m.remove(c, reason, evicted|destroyIfLast)
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

// ForceUnpublish stops a stream (REST DELETE stream): everyone, owner included, gets
// participantUnpublished with reason forceUnpublishByServer.
func (r Room) ForceUnpublish(sid StreamID) error {
	m, id := r.m, r.id
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
	c, err := m.publisherOf(id, sid)
	if err != nil {
		return err
	}
	if c.opts.IPCam != nil {
		// OpenVidu answers 405: a camera's stream goes with its connection (DELETE …/connection/{id}).
		return errorf(KindNotAllowed, CodeGeneric, "stream %s belongs to an IPCAM connection: delete connection %s instead", sid, c.id)
	}
	cleanup = m.unpublish(c, ReasonForceUnpublishByServer, ownerToo)
	return nil
}

// Unpublish stops stream sid for reason, the owner told too (a moderator on another node of the
// cluster did it: reason forceUnpublishByUser).
func (r Room) Unpublish(sid StreamID, reason string) error {
	m, id := r.m, r.id
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
	c, err := m.publisherOf(id, sid)
	if err != nil {
		return err
	}
	cleanup = m.unpublish(c, reason, ownerToo)
	return nil
}

// publisherOf returns this node's participant publishing stream sid of session id. m.mu is held.
func (m *Manager) publisherOf(id SessionID, sid StreamID) (*Connection, error) {
	s, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	c := s.conns[sid.Owner()]
	if c == nil || !c.active || c.node != "" || c.stream == nil || c.stream.id != sid {
		return nil, errorf(KindNotFound, CodeUserNotStreaming, "stream %s not found in session %s", sid, id)
	}
	return c, nil
}

// MaxSignalData and MaxSignalType bound a signal (README's bounds table): openvidu-server 2.32
// carries one in a WebSocket frame of at most 50 K characters, and a client's signal is JSON
// inside the JSON of that frame, so 32 KiB of data is about what always fitted. Every recipient
// is sent it, so the cap is what one message can make each of them hold.
const (
	MaxSignalData = 32 << 10
	MaxSignalType = 128
)

// Signal sends an application signal through REST (from nobody). With no recipients the signal
// goes to every participant; unknown recipients fail the whole signal.
func (r Room) Signal(to []ConnectionID, typ, data string) error {
	return r.m.sendSignal(r.id, nil, to, typ, data)
}

// sendSignal delivers an application signal. from is nil for REST signals, else the sender, who is
// among the recipients when to is empty.
func (m *Manager) sendSignal(id SessionID, from *Connection, to []ConnectionID, typ, data string) error {
	if len(data) > MaxSignalData || len(typ) > MaxSignalType {
		return errorf(KindInvalid, CodeSignalFormat, "a signal's data has at most %d bytes (this one %d), its type %d (this one %d)",
			MaxSignalData, len(data), MaxSignalType, len(typ))
	}
	m.mu.Lock()
	defer m.unlock()
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
		recipients = m.everyone(s)
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
