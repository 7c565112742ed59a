package cluster

import (
	"cmp"
	"context"
	"encoding/json"

	"github.com/parley/parley/internal/session"
)

// This node's participants change all the time (joins, publishes, subscriptions, leaves); the
// model tells the Node through its events, and the Node writes the changes to Redis from Run's
// goroutine. The listener only notes which session changed: a session changed a hundred times
// before the writer runs is written once, and the note is bounded by the number of sessions.

// reasonAutomaticStop is why the recorder closes a session nobody is in once it stopped its
// recording after OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT (OpenVidu's reason).
const reasonAutomaticStop = "automaticStop"

// listen is the model's listener. It must not block: it notes and wakes the writer.
func (n *Node) listen(e session.Event) {
	if m, ok := forward(e); ok {
		n.mu.Lock()
		n.queueOut(m)
		n.mu.Unlock()
		select {
		case n.wake <- struct{}{}:
		default:
		}
	}
	switch e.Kind {
	case session.ParticipantLeft:
		n.markDirty(e.Session, e.Connection, "")
	case session.SessionDestroyed:
		n.note(e.Session, func(d *dirt) { d.ended, d.endedAt = e.Reason, e.Time })
	case session.ParticipantJoined, session.StreamPublished, session.StreamUnpublished, session.StreamPropertyChanged:
		n.markChanged(e.Session, e.Connection)
	case session.WebRTCConnectionCreated, session.WebRTCConnectionDestroyed:
		// A subscription is in its subscriber's record, a stream in its publisher's.
		n.markChanged(e.Session, cmp.Or(e.Subscriber, e.Connection))
	case session.RecordingStatusChanged:
		n.markChanged(e.Session, "")
		if r := e.Recording; r != nil && (r.Status == session.RecordingStarted || r.Status == session.RecordingStopped || r.Status == session.RecordingFailed) {
			ri := *r
			n.note(e.Session, func(d *dirt) { d.rec = &ri })
		}
	}
}

// markChanged notes that participant cid of session id changed here (every participant of it
// here, when cid is empty): only their records are written again, so a join costs the same
// Redis commands in a session of 3 or of 300.
func (n *Node) markChanged(id session.SessionID, cid session.ConnectionID) {
	n.note(id, func(d *dirt) {
		if cid == "" {
			d.all = true
			return
		}
		if d.changed == nil {
			d.changed = map[session.ConnectionID]bool{}
		}
		d.changed[cid] = true
	})
}

// markDirty notes that session id changed here: left, when set, is a participant that left;
// ended, when set, is why the session ended on this node.
func (n *Node) markDirty(id session.SessionID, left session.ConnectionID, ended string) {
	n.note(id, func(d *dirt) {
		if left != "" {
			d.left = append(d.left, left)
		}
		if ended != "" {
			d.ended = ended
		}
	})
}

// note applies change to what is noted of session id and wakes the writer.
func (n *Node) note(id session.SessionID, change func(*dirt)) {
	n.mu.Lock()
	d, seen := n.dirty[id]
	if !seen && len(n.dirty) >= maxDirty {
		n.mu.Unlock()
		n.log.Warn("cluster: too many sessions waiting to be written; this change waits for the next one", "session", id)
		return
	}
	change(&d)
	n.dirty[id] = d
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Flush writes every change noted so far to Redis. Run calls it; tests call it to know the
// record is written.
func (n *Node) Flush(ctx context.Context) {
	n.flushing.Lock()
	defer n.flushing.Unlock()
	n.mu.Lock()
	dirty, out := n.dirty, n.outgoing
	n.dirty, n.outgoing = map[session.SessionID]dirt{}, nil
	n.mu.Unlock()
	for id, d := range dirty {
		if err := n.write(ctx, id, d); err != nil {
			// Kept for the next Flush (every heartbeat at the latest), so what changed while Redis
			// was unreachable is written when it returns. Writing again is harmless: each step
			// is idempotent.
			n.log.Warn("cluster: writing a session's change failed; will retry", "session", id, "err", err)
			n.requeue(id, d)
		}
	}
	// After the record: a node that reads it and then hears these misses nothing (mirror.go).
	n.publishOutgoing(ctx, out)
}

// requeue puts back a change that could not be written, merged with any noted since.
func (n *Node) requeue(id session.SessionID, d dirt) {
	n.mu.Lock()
	defer n.mu.Unlock()
	cur := n.dirty[id]
	cur.left = append(d.left, cur.left...)
	if cur.ended == "" {
		cur.ended, cur.endedAt = d.ended, d.endedAt
	}
	cur.all = cur.all || d.all
	if cur.rec == nil {
		cur.rec = d.rec
	}
	for cid := range d.changed {
		if cur.changed == nil {
			cur.changed = map[session.ConnectionID]bool{}
		}
		cur.changed[cid] = true
	}
	n.dirty[id] = cur
}

// write brings the record of session id up to date with this node's participants in it.
func (n *Node) write(ctx context.Context, id session.SessionID, d dirt) error {
	if d.rec != nil {
		if err := n.writeRecording(ctx, id, *d.rec); err != nil {
			return err
		}
	}
	for _, cid := range d.left {
		if err := leaveScript.Run(ctx, n.rdb, []string{n.keys.conns(id), n.keys.active(id), n.keys.held(n.id)},
			string(cid), heldMember(id, cid), n.id, n.keys.p).Err(); err != nil {
			return err
		}
	}
	switch d.ended {
	case session.ReasonLastParticipantLeft, reasonAutomaticStop:
		// The last participant here left, or this node's recording of a session nobody was in
		// any more stopped (OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT); the session ends only if
		// nobody is left anywhere, and then this node, which removed the record, reports it.
		rec, err := destroyIfEmptyScript.Run(ctx, n.rdb, n.keys.sessionKeys(id), string(id), n.keys.p).Text()
		if isNil(err) {
			return nil
		}
		if err != nil {
			return err
		}
		n.reportDestroyed(rec, d.ended, d.endedAt)
		return n.publish(ctx, message{Kind: msgGone, Session: id})
	case "":
	default:
		// Closed (its record went with the close) or this node stopping (its participants left
		// above; the session lives on for the others).
		return nil
	}
	si, err := n.m.Room(id).Info(false)
	if err != nil {
		return nil // ended here since; its SessionDestroyed is noted
	}
	for _, c := range si.Connections {
		if !d.all && !d.changed[c.ID] {
			continue
		}
		b, err := json.Marshal(activeRecord(c, n.id))
		if err != nil {
			return err
		}
		if err := updateActiveScript.Run(ctx, n.rdb, []string{n.keys.conns(id), n.keys.active(id)}, string(c.ID), b).Err(); err != nil {
			return err
		}
	}
	return nil
}

// writeRecording records that a recording of session id runs here, or that it stopped (unless
// another recording of the session is recorded since), before the message that says so is
// published (Flush), so a node that makes its copy of the session later shows it (local).
func (n *Node) writeRecording(ctx context.Context, id session.SessionID, ri session.RecordingInfo) error {
	key := n.keys.sessionRecording(id)
	if ri.Status != session.RecordingStarted {
		if err := endRecordingScript.Run(ctx, n.rdb, []string{key}, ri.ID).Err(); err != nil {
			return err
		}
		n.wroteRecording(ri)
		return nil
	}
	b, err := json.Marshal(recRecord{Info: ri, Node: n.id})
	if err != nil {
		return err
	}
	if err := n.rdb.Set(ctx, key, b, 0).Err(); err != nil {
		return err
	}
	n.wroteRecording(ri)
	return nil
}
