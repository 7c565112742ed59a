package session

import (
	"cmp"
	"maps"
	"slices"
)

// Participants: joining, leaving and being removed, with the media they release (OpenVidu's event
// order on the way out).

// activeConns lists s's participants on this node (mirrors of other nodes' excluded), in
// creation order: who gets events, whose leaving empties the session.
func (m *Manager) activeConns(s *session, except *Connection) []*Connection {
	out := make([]*Connection, 0, len(s.conns))
	for _, id := range s.order {
		if c := s.conns[id]; c.active && c.node == "" && c != except {
			out = append(out, c)
		}
	}
	return out
}

// everyone lists s's participants on every node (mirrors included): whom a joiner is shown and a
// signal may name.
func (m *Manager) everyone(s *session) []*Connection {
	out := make([]*Connection, 0, len(s.conns))
	for _, id := range s.order {
		if c := s.conns[id]; c.active {
			out = append(out, c)
		}
	}
	return out
}

// Join consumes a token and makes its connection an active participant whose notifications go to
// sink. The token is matched as the exact string REST returned (protocol note §3.2).
func (m *Manager) Join(id SessionID, token string, j JoinInfo, sink Sink) (*Participant, JoinResult, error) {
	m.mu.Lock()
	defer m.unlock()
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
	shown := m.everyone(s)
	c.active, c.activeAt = true, m.opts.Now()
	c.clientData, c.platform, c.ip, c.rpc, c.sink = j.Metadata, j.Platform, j.IP, j.RPC, sink
	c.subs = map[ConnectionID]*subscription{}
	c.pendingCands = map[string][]Candidate{}
	s.everJoined = true

	self := c.participantInfo()
	m.emit(Event{Kind: ParticipantJoined, Session: s.id, Connection: c.id, Time: c.activeAt, Participant: &self, Client: c.clientInfo()}, existing...)
	res := JoinResult{Self: self, Session: s.id, Role: c.opts.Role, Record: c.opts.Record, IceServers: c.opts.CustomIceServers}
	for _, e := range shown {
		res.Existing = append(res.Existing, e.participantInfo())
	}
	if r := s.shownRecording(); r != nil && m.notifiedOfRecording(c.opts.Role) {
		res.RecordingID, res.RecordingName = r.id, r.name
	}
	m.log.Info("participant joined", "session", s.id, "connection", c.id, "ip", j.IP)
	return &Participant{m: m, c: c}, res, nil
}

// usable checks that c is still an active participant. Caller holds m.mu.
func usable(c *Connection) error {
	if c == nil || !c.active || c.gone || c.node != "" {
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
	defer m.unlock()
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
	if c.node != "" { // a mirror's stream: its node reports it, and each pull closes with its subscription
		return func() {}
	}
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
