package session

import (
	"context"
	"errors"
	"fmt"
)

// Mirrors: in a cluster (internal/cluster), a session spans nodes. Each node's model holds its own
// participants and, as mirrors, the participants other nodes hold, so its participants see
// everyone: joinRoom lists them, their joins, streams, property changes and signals reach this
// node's participants as notifications, and subscribing to their streams pulls the media across
// once per node (Remote.Pull).
//
// A mirror is a Connection with node set: active, without sink, token or media. What happens to it
// is told by its own node, which also reports it to listeners (webhooks, CDR, the shared record):
// here its changes go to this node's participants' sinks, never to listeners, so no event is
// reported twice; only mirror listeners (a recorder of the session here) get them, with Event.Node. Mirrors never count as this node's participants: they do not keep a
// session alive, are not listed by Info and are not in Alive, Footprint or ParticipantCount.

// Remote is what the model needs of the cluster for mirrors: their media, and the moderator's
// actions on them, which their own node carries out.
type Remote interface {
	// Pull returns a local publisher of stream sid, published on node; each subscription here
	// pulls its own handle and closes it when it ends.
	Pull(ctx context.Context, node string, id SessionID, sid StreamID) (PublishedMedia, error)
	// ForceDisconnect and ForceUnpublish ask node to evict its participant, or stop its stream,
	// for reason. They must not block.
	ForceDisconnect(node string, id SessionID, cid ConnectionID, reason string)
	ForceUnpublish(node string, id SessionID, sid StreamID, reason string)
}

// errNoCluster is what pulling gets on a lone node, which has no mirrors to pull from.
var errNoCluster = errors.New("this node is not in a cluster")

type noRemote struct{}

func (noRemote) Pull(context.Context, string, SessionID, StreamID) (PublishedMedia, error) {
	return nil, errNoCluster
}
func (noRemote) ForceDisconnect(string, SessionID, ConnectionID, string) {}
func (noRemote) ForceUnpublish(string, SessionID, StreamID, string)      {}

// SetRemote sets how mirrors' media and moderation reach their nodes. Set it before serving.
func (m *Manager) SetRemote(r Remote) {
	m.mu.Lock()
	defer m.unlock()
	m.remote = r
}

// pulledSub is a subscription to a mirror's stream: closing it releases the pull too.
type pulledSub struct {
	SubscribedMedia
	pull PublishedMedia
}

func (p pulledSub) Close() {
	p.SubscribedMedia.Close()
	p.pull.Close()
}

// mirror returns the mirror cid of session id, or nil. Caller holds m.mu.
func (m *Manager) mirror(id SessionID, cid ConnectionID) *Connection {
	s := m.sessions[id]
	if s == nil {
		return nil
	}
	if c := s.conns[cid]; c != nil && c.node != "" && c.active {
		return c
	}
	return nil
}

// MirrorJoined shows participant ci, held by node, to this node's participants of session id
// (participantJoined, then participantPublished when it publishes already). A mirror that exists
// takes ci's stream, role and record flag; a pending copy of ci's connection becomes the mirror (it joined elsewhere). It
// fails when this node holds no copy of the session: nobody here is to be told.
func (m *Manager) MirrorJoined(id SessionID, node string, ci ConnectionInfo) error {
	if node == "" || ci.ID == "" {
		return errorf(KindInvalid, CodeGeneric, "a mirror needs a node and a connection id")
	}
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
	s, err := m.lookup(id)
	if err != nil {
		return err
	}
	c := s.conns[ci.ID]
	switch {
	case c != nil && c.node == "" && c.active:
		return errorf(KindConflict, CodeGeneric, "connection %s is a participant of this node", ci.ID)
	case c != nil && c.node != "":
		// Told again after a PATCH on its node: the role and record flag follow (a recording here
		// leaves out the streams of record:false).
		c.node, c.opts.Role, c.opts.Record = node, ci.Options.Role, ci.Options.Record
		cleanup = m.mirrorStream(c, ci.Publishers)
		return nil
	case c == nil:
		if m.conns[ci.ID] != nil {
			return errorf(KindConflict, CodeGeneric, "connection %s belongs to another session", ci.ID)
		}
		c = &Connection{id: ci.ID, sess: s, createdAt: ci.CreatedAt}
		s.conns[ci.ID] = c
		m.conns[ci.ID] = c
		s.order = append(s.order, ci.ID)
	}
	c.node, c.token, c.active, c.activeAt = node, "", true, ci.ActiveAt
	// Record too: a recording of the session may run on this node.
	c.opts = ConnectionOptions{Type: ci.Options.Type, Data: ci.Options.Data, Role: ci.Options.Role, Record: ci.Options.Record}
	c.clientData, c.platform, c.ip = ci.ClientData, ci.Platform, ci.IP
	c.subs = map[ConnectionID]*subscription{}
	self := c.participantInfo()
	m.notify(Event{Kind: ParticipantJoined, Session: s.id, Connection: c.id, Participant: &self, Client: c.clientInfo()}, m.activeConns(s, nil)...)
	cleanup = m.mirrorStream(c, ci.Publishers)
	return nil
}

// mirrorStream brings mirror c's stream in line with pubs (its node's list, at most one). Caller
// holds m.mu.
func (m *Manager) mirrorStream(c *Connection, pubs []StreamInfo) (cleanup []func()) {
	var want *StreamInfo
	if len(pubs) > 0 {
		want = &pubs[0]
	}
	switch {
	case want == nil && c.stream != nil:
		return m.mirrorUnpublish(c, ReasonUnpublish)
	case want == nil:
		return nil
	case c.stream != nil && c.stream.id == want.ID:
		c.stream.media = want.Media
		return nil
	case c.stream != nil:
		cleanup = m.mirrorUnpublish(c, ReasonUnpublish)
	}
	c.stream = &stream{id: want.ID, createdAt: want.CreatedAt, media: want.Media, path: want.Path}
	si := c.stream.info()
	m.notifyMirror(c, Event{Kind: StreamPublished, Session: c.sess.id, Connection: c.id, Stream: si.ID, StreamInfo: &si}, m.activeConns(c.sess, nil)...)
	return cleanup
}

// mirrorUnpublish ends mirror c's stream here: this node's subscriptions to it end and its
// participants get participantUnpublished. Caller holds m.mu.
func (m *Manager) mirrorUnpublish(c *Connection, reason string) (cleanup []func()) {
	st := c.stream
	cleanup = m.endSubscriptionsTo(c, st, reason)
	c.stream = nil
	m.notifyMirror(c, Event{Kind: StreamUnpublished, Session: c.sess.id, Connection: c.id, Stream: st.id, Reason: reason}, m.activeConns(c.sess, nil)...)
	return cleanup
}

// MirrorLeft removes mirror cid, which left its node for reason: this node's subscriptions to it
// end and its participants get participantLeft (and participantEvicted for a forced removal).
func (m *Manager) MirrorLeft(id SessionID, cid ConnectionID, reason string) {
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
	if c := m.mirror(id, cid); c != nil {
		cleanup = m.dropMirror(c, reason)
	}
}

// dropMirror removes mirror c and tells this node's participants. Caller holds m.mu.
func (m *Manager) dropMirror(c *Connection, reason string) (cleanup []func()) {
	s := c.sess
	if c.stream != nil {
		cleanup = m.endSubscriptionsTo(c, c.stream, reason)
		// Participants learn it from participantLeft; a recorder here closes the stream's file.
		m.notifyMirror(c, Event{Kind: StreamUnpublished, Session: s.id, Connection: c.id, Stream: c.stream.id, Reason: reason})
		c.stream = nil
	}
	m.forget(c)
	to := m.activeConns(s, nil)
	m.notifyMirror(c, Event{Kind: ParticipantLeft, Session: s.id, Connection: c.id, Reason: reason, Client: c.clientInfo()}, to...)
	if reason != ReasonDisconnect {
		m.notify(Event{Kind: ParticipantEvicted, Session: s.id, Connection: c.id, Reason: reason}, to...)
	}
	return cleanup
}

// DropNode removes every mirror of node (it left the cluster) with reason.
func (m *Manager) DropNode(node, reason string) {
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
	for _, s := range m.sessions {
		for _, c := range m.everyone(s) {
			if c.node == node {
				cleanup = append(cleanup, m.dropMirror(c, reason)...)
			}
		}
	}
}

// MirrorPublished shows mirror cid's new stream to this node's participants.
func (m *Manager) MirrorPublished(id SessionID, cid ConnectionID, si StreamInfo) {
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
	if c := m.mirror(id, cid); c != nil {
		cleanup = m.mirrorStream(c, []StreamInfo{si})
	}
}

// MirrorUnpublished ends mirror cid's stream sid (empty: whichever it has) here for reason.
func (m *Manager) MirrorUnpublished(id SessionID, cid ConnectionID, sid StreamID, reason string) {
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
	if c := m.mirror(id, cid); c != nil && c.stream != nil && (sid == "" || c.stream.id == sid) {
		cleanup = m.mirrorUnpublish(c, reason)
	}
}

// MirrorPropertyChanged applies a property change of mirror cid's stream sid and tells this node's
// participants.
func (m *Manager) MirrorPropertyChanged(id SessionID, cid ConnectionID, sid StreamID, p PropertyChange) error {
	m.mu.Lock()
	defer m.unlock()
	c := m.mirror(id, cid)
	if c == nil || c.stream == nil || c.stream.id != sid {
		return errorf(KindNotFound, CodeUserNotStreaming, "stream %s is not mirrored here", sid)
	}
	if err := applyProperty(&c.stream.media, p.Property, p.NewValue); err != nil {
		return err
	}
	m.notify(Event{Kind: StreamPropertyChanged, Session: id, Connection: cid, Stream: sid, Property: &p}, m.activeConns(c.sess, nil)...)
	return nil
}

// MirrorSignal delivers a signal a participant of another node sent to this node's participants
// among its recipients (sig.To).
func (m *Manager) MirrorSignal(id SessionID, sig Signal) {
	m.mu.Lock()
	defer m.unlock()
	s := m.sessions[id]
	if s == nil {
		return
	}
	var to []*Connection
	for _, c := range m.activeConns(s, nil) {
		for _, r := range sig.To {
			if r == c.id {
				to = append(to, c)
				break
			}
		}
	}
	if len(to) > 0 {
		m.notify(Event{Kind: SignalSent, Session: id, Connection: sig.From, Signal: &sig}, to...)
	}
}

// Mirrored reports the node holding cid when it is a mirror in session id (tests, diagnostics).
func (m *Manager) Mirrored(id SessionID, cid ConnectionID) (string, bool) {
	m.mu.Lock()
	defer m.unlock()
	if c := m.mirror(id, cid); c != nil {
		return c.node, true
	}
	return "", false
}

// Mirrors lists the mirrors in session id (the other nodes' participants as this node shows them),
// in join order; none when there is no such session.
func (m *Manager) Mirrors(id SessionID) []ConnectionID {
	m.mu.Lock()
	defer m.unlock()
	s := m.sessions[id]
	if s == nil {
		return nil
	}
	var out []ConnectionID
	for _, cid := range s.order {
		if c := s.conns[cid]; c != nil && c.node != "" {
			out = append(out, cid)
		}
	}
	return out
}

// LocalStream returns the media of stream sid when its publisher is this node's participant: what
// another node pulls.
func (m *Manager) LocalStream(sid StreamID) (PublishedMedia, error) {
	m.mu.Lock()
	defer m.unlock()
	c := m.conns[sid.Owner()]
	if c == nil || !c.active || c.gone || c.node != "" || c.stream == nil || c.stream.id != sid {
		return nil, fmt.Errorf("stream %s is not published on this node", sid)
	}
	return c.stream.pub, nil
}
