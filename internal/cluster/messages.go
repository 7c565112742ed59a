package cluster

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/parley/parley/internal/session"
)

// Messages between nodes travel on one pub/sub channel. Pub/sub delivers at most once: a node that
// is disconnected from Redis when a message is sent misses it (the record in Redis is right; the
// node's own participants are not told). Other nodes' joins and recordings' starts and ends are
// caught up from the record when the node resubscribes (recsync.go); for the rest, streams with
// per-node consumer positions are the upgrade when a missed close or forceDisconnect starts to
// matter.

// Message kinds.
const (
	msgClose      = "close"      // the session was closed by REST: evict its participants
	msgGone       = "gone"       // the session ended with its last participant: drop copies
	msgDisconnect = "disconnect" // forceDisconnect a participant (To holds it)
	msgUnpublish  = "unpublish"  // forceUnpublish a stream (To holds its publisher)
	msgUpdate     = "update"     // PATCH a participant's role or record flag (To holds it)
	msgSignal     = "signal"     // a REST signal: each node delivers to its own recipients
	msgRecording  = "recording"  // a request to the node running a recording (recordings.go)
	msgLink       = "link"       // inter-node media signalling (internal/cascade) in Data, for To
	msgNodeLost   = "nodelost"   // node Lost was forgotten: its participants here are gone
	msgRecStatus  = "recstatus"  // Recording of Session started or ended on From (mirror.go)
)

// message is one message between nodes.
type message struct {
	Kind string `json:"kind"`
	From string `json:"from"`
	// To is the node that must act; empty: every node.
	To         string                 `json:"to,omitempty"`
	Session    session.SessionID      `json:"session"`
	Connection session.ConnectionID   `json:"connection,omitempty"`
	Stream     session.StreamID       `json:"stream,omitempty"`
	Role       *session.Role          `json:"role,omitempty"`
	Record     *bool                  `json:"record,omitempty"`
	SignalTo   []session.ConnectionID `json:"signalTo,omitempty"`
	Type       string                 `json:"type,omitempty"`
	Data       string                 `json:"data,omitempty"`
	// Reason is why a participant left or a stream ended, or the reason to evict or unpublish with
	// (empty: the REST one).
	Reason string `json:"reason,omitempty"`
	// Info, StreamInfo, Property and PeerSignal carry mirror messages (mirror.go).
	Info       *session.ConnectionInfo `json:"info,omitempty"`
	StreamInfo *session.StreamInfo     `json:"streamInfo,omitempty"`
	Property   *session.PropertyChange `json:"property,omitempty"`
	PeerSignal *session.Signal         `json:"peerSignal,omitempty"`
	// Lost is the node a msgNodeLost names.
	Lost string `json:"lost,omitempty"`
	// Recording is what a msgRecStatus says.
	Recording *session.RecordingInfo `json:"recording,omitempty"`
}

func (n *Node) publish(ctx context.Context, m message) error {
	m.From = n.id
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return n.rdb.Publish(ctx, n.keys.channel(), b).Err()
}

// handle acts on a message from another node. Errors are logged: the sender has answered already.
func (n *Node) handle(_ context.Context, payload string) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		n.log.Warn("cluster: unreadable message", "err", err)
		return
	}
	if m.From == n.id || m.To != "" && m.To != n.id {
		return
	}
	log := n.log.With("session", m.Session, "from", m.From)
	var err error
	switch m.Kind {
	case msgClose:
		if !n.m.DropReplica(m.Session) {
			err = n.m.Room(m.Session).Close()
		}
	case msgGone:
		n.m.DropReplica(m.Session)
	case msgDisconnect:
		if m.Reason != "" {
			err = n.m.Room(m.Session).Evict(m.Connection, m.Reason)
		} else {
			err = n.m.Room(m.Session).DeleteConnection(m.Connection)
		}
	case msgUnpublish:
		if m.Reason != "" {
			err = n.m.Room(m.Session).Unpublish(m.Stream, m.Reason)
		} else {
			err = n.m.Room(m.Session).ForceUnpublish(m.Stream)
		}
	case msgLink:
		if h := n.linkHandler; h != nil {
			err = h(m.From, []byte(m.Data))
		}
	case msgJoined, msgLeft, msgPublished, msgUnpublished, msgProperty, msgPeerSignal, msgRecStatus:
		n.handleMirror(m)
	case msgUpdate:
		if _, err = n.m.Room(m.Session).UpdateConnection(m.Connection, m.Role, m.Record); err == nil {
			n.updated(m.Session, m.Connection)
		}
	case msgSignal:
		n.deliverSignal(m.Session, m.SignalTo, m.Type, m.Data)
	case msgRecording:
		if r := n.recs.Load(); r != nil {
			r.serve(m)
		} else {
			n.refuseRecording(m)
		}
	case msgNodeLost:
		n.dropNode(m.Lost)
	default:
		log.Warn("cluster: unknown message", "kind", m.Kind)
	}
	if err != nil && !isNotFound(err) {
		log.Warn("cluster: acting on a message failed", "kind", m.Kind, "err", err)
	}
}

// deliverSignal hands a REST signal to this node's recipients of it (all of its participants of the
// session when to is empty).
func (n *Node) deliverSignal(id session.SessionID, to []session.ConnectionID, typ, data string) {
	si, err := n.m.Room(id).Info(false)
	if err != nil {
		return
	}
	var mine []session.ConnectionID
	for _, c := range si.Connections {
		if len(to) == 0 || slices.Contains(to, c.ID) {
			mine = append(mine, c.ID)
		}
	}
	if len(mine) == 0 {
		return
	}
	if err := n.m.Room(id).Signal(mine, typ, data); err != nil && !isNotFound(err) {
		n.log.Warn("cluster: delivering a signal failed", "session", id, "err", err)
	}
}

// OnLink sets the handler of inter-node media signalling addressed to this node (from names the
// sending node). Set it before Run; it must not block.
func (n *Node) OnLink(h func(from string, payload []byte) error) { n.linkHandler = h }

// SendLink sends inter-node media signalling to node.
func (n *Node) SendLink(ctx context.Context, node string, payload []byte) error {
	return n.publish(ctx, message{Kind: msgLink, To: node, Data: string(payload)})
}
