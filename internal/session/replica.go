package session

// Replicas: sessions and pending connections that another node created, copied here so that a
// participant can join them on this node (internal/cluster keeps the shared record; see design.md,
// "Several nodes"). The node that created them announced them, so adopting one emits no event.

// AdoptSession adds a session another node created, with its id, creation time and properties.
// A session this node already holds is left as it is.
func (m *Manager) AdoptSession(si SessionInfo) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return errorf(KindNotAcceptable, CodeRoomClosed, "server is shutting down")
	}
	if si.ID == "" {
		return errorf(KindInvalid, CodeGeneric, "a session needs an id")
	}
	if m.sessions[si.ID] != nil {
		return nil
	}
	m.sessions[si.ID] = &session{id: si.ID, createdAt: si.CreatedAt, props: si.Props, conns: map[ConnectionID]*Connection{}}
	return nil
}

// AdoptConnection sets a pending connection of session id as another node recorded it: its id,
// token, options and creation time. A pending copy this node holds takes the recorded options (a
// PATCH may have changed them elsewhere); an active one is left as it is.
func (m *Manager) AdoptConnection(id SessionID, ci ConnectionInfo) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.lookup(id)
	if err != nil {
		return err
	}
	if ci.ID == "" || ci.Token == "" {
		return errorf(KindInvalid, CodeGeneric, "a connection needs an id and a token")
	}
	if c := s.conns[ci.ID]; c != nil {
		if !c.active {
			c.token, c.opts = ci.Token, ci.Options
		}
		return nil
	}
	if m.conns[ci.ID] != nil {
		return errorf(KindConflict, CodeGeneric, "connection %s belongs to another session", ci.ID)
	}
	c := &Connection{id: ci.ID, sess: s, opts: ci.Options, createdAt: ci.CreatedAt, token: ci.Token}
	s.conns[ci.ID] = c
	m.conns[ci.ID] = c
	s.order = append(s.order, ci.ID)
	return nil
}

// Restore makes ci, a participant another node held until it was lost, a participant here again:
// same connection id, options and client data, its sink the new socket's. It joins as with a
// token (participantJoined to the others here); its stream, if it published, is published anew by
// its reconnectStream, with the same id. The cluster has claimed the participant before.
func (m *Manager) Restore(id SessionID, ci ConnectionInfo, j JoinInfo, sink Sink) (*Participant, JoinResult, error) {
	if ci.Token == "" {
		ci.Token = "restored:" + string(ci.ID) // a key to this node's Join only; never handed out
	}
	ci.Active = false
	if err := m.AdoptConnection(id, ci); err != nil {
		return nil, JoinResult{}, err
	}
	p, res, err := m.Join(id, ci.Token, j, sink)
	if err != nil {
		return nil, res, err
	}
	if len(ci.Publishers) > 0 {
		m.mu.Lock()
		st := ci.Publishers[0]
		p.c.resume = &st
		m.unlock()
	}
	return p, res, nil
}

// DropReplica forgets a session that has no active participant here, silently: the session ended
// on another node, which announced it. It reports whether the session is gone; a session with
// participants on this node is kept (close it with CloseSession instead).
func (m *Manager) DropReplica(id SessionID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	if s == nil {
		return true
	}
	if len(m.activeConns(s, nil)) > 0 || s.recording != nil {
		return false
	}
	m.dropSession(s)
	return true
}

// ParticipantCount is the number of active participants on this node (the cluster registry's
// load figure).
func (m *Manager) ParticipantCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range m.conns {
		if c.active && !c.gone && c.node == "" {
			n++
		}
	}
	return n
}
