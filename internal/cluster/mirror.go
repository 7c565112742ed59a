package cluster

import (
	"context"

	"github.com/parley/parley/internal/session"
)

// Sessions that span nodes (session/mirror.go): each node shows its participants the participants
// of the other nodes as mirrors. A node tells the others what its participants do (joined, left,
// published, unpublished, changed a stream property, sent a signal) over pub/sub, and a joiner's
// node reads the shared record for the participants already there. Each message is published only
// once the record shows what it says, so a node that reads the record and then hears the messages
// sent since misses nothing: it made its copy of the session before reading, and messages for a
// session a node holds no copy of are ignored.

// Mirror message kinds.
const (
	msgJoined      = "joined"      // Info: a participant joined on From
	msgLeft        = "left"        // Connection left From for Reason
	msgPublished   = "published"   // StreamInfo: Connection published
	msgUnpublished = "unpublished" // Connection's Stream ended for Reason
	msgProperty    = "property"    // Property of Connection's Stream changed
	msgPeerSignal  = "psignal"     // Signal from a participant of From
)

// maxOutgoing bounds the mirror messages waiting to be published (Redis unreachable); past it the
// oldest go, and nodes that missed them catch up at their next join.
const maxOutgoing = 10_000

// queueOut notes a message to publish after the next write of the record. Caller holds n.mu.
func (n *Node) queueOut(m message) {
	if len(n.outgoing) >= maxOutgoing {
		n.outgoing = n.outgoing[1:]
		n.dropped++
	}
	n.outgoing = append(n.outgoing, m)
}

// forward turns a model event about this node's participant into the message other nodes mirror
// it from; ok is false for events that are not mirrored. Joins are announced by Join itself, once
// the record is active.
func forward(e session.Event) (message, bool) {
	m := message{Session: e.Session, Connection: e.Connection, Stream: e.Stream, Reason: e.Reason}
	switch e.Kind {
	case session.ParticipantLeft:
		m.Kind = msgLeft
	case session.StreamPublished:
		m.Kind, m.StreamInfo = msgPublished, e.StreamInfo
	case session.StreamUnpublished:
		m.Kind = msgUnpublished
	case session.StreamPropertyChanged:
		if e.Property == nil || e.Property.Reason == session.ReasonNetworkConstrained {
			return m, false // one subscriber's own pause, never the stream's
		}
		m.Kind, m.Property = msgProperty, e.Property
	case session.RecordingStatusChanged:
		// A recording runs on one node; the others show it to their participants.
		if e.Recording == nil || e.Recording.Status == session.RecordingStarting || e.Recording.Status == session.RecordingReady {
			return m, false
		}
		m.Kind, m.Recording = msgRecStatus, e.Recording
	case session.SignalSent:
		// A REST signal (no sender) travels as msgSignal already.
		if e.Signal == nil || e.Signal.From == "" {
			return m, false
		}
		m.Kind, m.PeerSignal = msgPeerSignal, e.Signal
	default:
		return m, false
	}
	return m, true
}

// announceJoin tells the other nodes that participant cid joined here.
func (n *Node) announceJoin(ctx context.Context, ci session.ConnectionInfo) {
	ci.Token = "" // a bearer credential: never on the bus
	if err := n.publish(ctx, message{Kind: msgJoined, Session: ci.Session, Connection: ci.ID, Info: &ci}); err != nil {
		n.log.Warn("cluster: announcing a join failed; other nodes see it at their next join", "session", ci.Session, "err", err)
	}
}

// updated notes that this node's participant cid of session id was changed by a PATCH: its record
// is written again and the other nodes' mirrors of it take its new role and record flag (a
// msgJoined of a mirror they hold), after the write.
func (n *Node) updated(id session.SessionID, cid session.ConnectionID) {
	ci, err := n.m.Room(id).Connection(cid)
	if err != nil {
		return
	}
	ci.Token = "" // a bearer credential: never on the bus
	n.mu.Lock()
	n.queueOut(message{Kind: msgJoined, Session: id, Connection: cid, Info: &ci})
	n.mu.Unlock()
	n.markChanged(id, cid)
}

// mirrorOthers makes mirrors of the participants other nodes hold in session id, from the record.
func (n *Node) mirrorOthers(ctx context.Context, id session.SessionID) error {
	_, conns, found, err := n.loadSession(ctx, id)
	if err != nil {
		return errShared(err)
	}
	if !found {
		return errNoSession(id)
	}
	for _, cr := range conns {
		if cr.Node == "" || cr.Node == n.id || !cr.Info.Active {
			continue
		}
		if err := n.m.MirrorJoined(id, cr.Node, cr.Info); err != nil && !isNotFound(err) {
			n.log.Warn("cluster: mirroring a participant failed", "session", id, "connection", cr.Info.ID, "err", err)
		}
	}
	return nil
}

// handleMirror acts on a mirror message of another node.
func (n *Node) handleMirror(m message) {
	switch m.Kind {
	case msgJoined:
		if m.Info != nil {
			if err := n.m.MirrorJoined(m.Session, m.From, *m.Info); err != nil && !isNotFound(err) {
				n.log.Warn("cluster: mirroring a participant failed", "session", m.Session, "connection", m.Connection, "err", err)
			}
		}
	case msgLeft:
		n.m.MirrorLeft(m.Session, m.Connection, m.Reason)
	case msgPublished:
		if m.StreamInfo != nil {
			n.m.MirrorPublished(m.Session, m.Connection, *m.StreamInfo)
		}
	case msgUnpublished:
		n.m.MirrorUnpublished(m.Session, m.Connection, m.Stream, m.Reason)
	case msgProperty:
		if m.Property != nil {
			_ = n.m.MirrorPropertyChanged(m.Session, m.Connection, m.Stream, *m.Property)
		}
	case msgPeerSignal:
		if m.PeerSignal != nil {
			n.m.MirrorSignal(m.Session, *m.PeerSignal)
		}
	case msgRecStatus:
		if m.Recording != nil {
			n.mirrorRecording(*m.Recording)
		}
	}
}

// ForceDisconnect asks node to evict its participant cid for reason (a moderator here did it).
func (n *Node) ForceDisconnect(node string, id session.SessionID, cid session.ConnectionID, reason string) {
	n.send(message{Kind: msgDisconnect, To: node, Session: id, Connection: cid, Reason: reason})
}

// ForceUnpublish asks node to stop its stream sid for reason.
func (n *Node) ForceUnpublish(node string, id session.SessionID, sid session.StreamID, reason string) {
	n.send(message{Kind: msgUnpublish, To: node, Session: id, Stream: sid, Reason: reason})
}

func (n *Node) send(m message) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout)
	defer cancel()
	if err := n.publish(ctx, m); err != nil {
		n.log.Warn("cluster: a message to another node failed", "kind", m.Kind, "to", m.To, "err", err)
	}
}

// publishOutgoing publishes the mirror messages taken from the queue, in order; what cannot be
// sent goes back to the front of the queue.
func (n *Node) publishOutgoing(ctx context.Context, out []message) {
	for i, m := range out {
		if err := n.publish(ctx, m); err != nil {
			n.log.Warn("cluster: publishing a participant's change failed; will retry", "session", m.Session, "err", err)
			n.mu.Lock()
			n.outgoing = append(append([]message(nil), out[i:]...), n.outgoing...)
			if len(n.outgoing) > maxOutgoing {
				n.dropped += uint64(len(n.outgoing) - maxOutgoing)
				n.outgoing = n.outgoing[len(n.outgoing)-maxOutgoing:]
			}
			n.mu.Unlock()
			return
		}
	}
}
