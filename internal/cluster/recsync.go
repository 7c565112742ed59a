package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/parley/parley/internal/session"
)

// Keeping every node's view of the running recordings (and of the other nodes' participants)
// right when messages are lost.
//
// A recording's start and end reach the other nodes as msgRecStatus on pub/sub, which a node cut
// from Redis at that moment misses. The shared record says it all the same: P rs:<session> names
// the recording running of each session (written before the message), and P recs holds every
// recording's last status. So:
//
//   - a node that resubscribes after losing its connection to Redis reads rs: of every session
//     it shows a recording of or holds a copy of, and catches up (resyncRecordings); it also
//     mirrors the participants that joined other nodes meanwhile (resyncMirrors);
//   - a node that stops cleanly ends the rs: entries it wrote that are still there: a recording
//     runs on one node and ends with it, even when its recorder's stop never reached Redis
//     (endOwnRecordings);
//   - a node that finds itself missing from the registry (Redis lost its data) writes its running
//     recordings' rs: entries again with its participants (rewrite).

// resyncMirrors mirrors, after this node may have missed their messages while cut from Redis,
// the participants that joined other nodes meanwhile, as the shared record shows them (with
// their stream). The record is written before each message is published, so a participant it
// shows active elsewhere did join. Mirrors already here are left as they are, and none is taken
// away: a participant missing from the record may only not be written back yet (Redis came back
// empty and its node has not rewritten it), so a missed leave is not caught up here.
func (n *Node) resyncMirrors(ctx context.Context) error {
	for _, si := range n.m.Sessions(false) {
		cctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
		_, conns, found, err := n.loadSession(cctx, si.ID)
		cancel()
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		known := map[session.ConnectionID]bool{}
		for _, cid := range n.m.Mirrors(si.ID) {
			known[cid] = true
		}
		for _, cr := range conns {
			if cr.Node == "" || cr.Node == n.id || !cr.Info.Active || known[cr.Info.ID] {
				continue
			}
			if err := n.m.MirrorJoined(si.ID, cr.Node, cr.Info); err != nil && !isNotFound(err) {
				n.log.Warn("cluster: mirroring a participant failed", "session", si.ID, "connection", cr.Info.ID, "err", err)
			}
		}
	}
	return nil
}

// mirrorRecording shows (or stops showing) another node's recording to this node's participants
// and remembers what is shown, so a resync can tell what it missed.
func (n *Node) mirrorRecording(ri session.RecordingInfo) {
	n.mu.Lock()
	switch ri.Status {
	case session.RecordingStarted:
		n.shown[ri.Session] = ri
	default:
		if cur, ok := n.shown[ri.Session]; ok && cur.ID == ri.ID {
			delete(n.shown, ri.Session)
		}
	}
	n.mu.Unlock()
	n.m.MirrorRecording(ri)
}

// wroteRecording notes what rs:<session> says now that this node wrote it.
func (n *Node) wroteRecording(ri session.RecordingInfo) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ri.Status == session.RecordingStarted {
		n.own[ri.Session] = ri
	} else if cur, ok := n.own[ri.Session]; ok && cur.ID == ri.ID {
		delete(n.own, ri.Session)
	}
}

// resyncRecordings catches up with the recordings' starts and ends this node may have missed
// while cut from Redis: for each session it shows another node's recording of, or holds a copy
// of, what rs: names is shown, and a shown recording that rs: no longer names is stopped once
// P recs has it (a recording ended, or failed with its node). A shown recording that neither
// names (Redis came back empty; its node writes it again) stays shown.
func (n *Node) resyncRecordings(ctx context.Context) error {
	n.mu.Lock()
	shown := maps.Clone(n.shown)
	n.mu.Unlock()
	ids := slices.Collect(maps.Keys(shown))
	for _, si := range n.m.Sessions(false) {
		if _, ok := shown[si.ID]; !ok {
			ids = append(ids, si.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	p := n.rdb.Pipeline()
	running := make([]*redis.StringCmd, len(ids))
	ended := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		running[i] = p.Get(ctx, n.keys.sessionRecording(id))
		if r, ok := shown[id]; ok {
			ended[i] = p.HGet(ctx, n.keys.recordings(), r.ID)
		}
	}
	if _, err := p.Exec(ctx); err != nil && !isNil(err) {
		return err
	}
	for i, id := range ids {
		var now *recRecord
		if raw, err := running[i].Result(); err == nil {
			var rr recRecord
			if json.Unmarshal([]byte(raw), &rr) == nil && rr.Info.Status == session.RecordingStarted {
				now = &rr
			}
		} else if !isNil(err) {
			return err
		}
		if r, ok := shown[id]; ok && (now == nil || now.Info.ID != r.ID) {
			if raw, err := ended[i].Result(); err == nil {
				var rr recRecord
				if json.Unmarshal([]byte(raw), &rr) == nil && rr.Info.ID == r.ID {
					end := r
					end.Status, end.Reason = session.RecordingStopped, rr.Info.Reason
					if rr.Info.Status == session.RecordingFailed {
						end.Status = session.RecordingFailed
					}
					n.log.Info("cluster: a recording's end was missed while cut from Redis; its participants here are told now", "session", id, "recording", r.ID)
					n.mirrorRecording(end)
				}
			} else if !isNil(err) {
				return err
			}
		}
		if now != nil && now.Node != n.id {
			n.mirrorRecording(now.Info) // shown once: a start already shown changes nothing
		}
	}
	return nil
}

// endOwnRecordings ends, at a clean shutdown, the recordings this node still names in rs: (its
// recorder's stop did not reach Redis: written too late, or not at all). Each is stopped for the
// cluster (reason openviduServerStopped) in P recs unless that already says it ended, and the
// other nodes stop showing it. Nothing is reported: the recorder reported its stop here.
func (n *Node) endOwnRecordings(ctx context.Context) error {
	n.mu.Lock()
	own := slices.Collect(maps.Values(n.own))
	clear(n.own)
	n.mu.Unlock()
	var errs []error
	for _, ri := range own {
		if err := endRecordingScript.Run(ctx, n.rdb, []string{n.keys.sessionRecording(ri.Session)}, ri.ID).Err(); err != nil {
			errs = append(errs, err)
			continue
		}
		ri.Status, ri.Reason = session.RecordingStopped, session.ReasonServerStopped
		endedThere := false // P recs already has the recorder's own end of it
		if raw, err := n.rdb.HGet(ctx, n.keys.recordings(), ri.ID).Result(); err == nil {
			var rr recRecord
			if json.Unmarshal([]byte(raw), &rr) == nil && rr.Info.Status != session.RecordingStarted && rr.Info.Status != session.RecordingStarting {
				ri.Status, ri.Reason, endedThere = rr.Info.Status, rr.Info.Reason, true
			}
		}
		if !endedThere {
			if b, err := json.Marshal(recRecord{Info: ri, Node: n.id}); err == nil {
				if err := n.rdb.HSet(ctx, n.keys.recordings(), ri.ID, b).Err(); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if ri.Status == session.RecordingReady {
			ri.Status = session.RecordingStopped // what the other nodes' participants are told
		}
		if err := n.publish(ctx, message{Kind: msgRecStatus, Session: ri.Session, Recording: &ri}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// rewriteRecordings writes again the rs: entries of the recordings this node runs, and the shared
// record's entry of every recording its recorder holds (rewrite), so that REST on every node lists
// them again. Neither overwrites what another node wrote since.
func (n *Node) rewriteRecordings(ctx context.Context) error {
	if r := n.recs.Load(); r != nil {
		for _, ri := range r.local.List() {
			b, err := json.Marshal(recRecord{Info: ri, Node: n.id})
			if err != nil {
				return err
			}
			if err := n.rdb.HSetNX(ctx, n.keys.recordings(), ri.ID, b).Err(); err != nil {
				return err
			}
		}
	}
	n.mu.Lock()
	own := slices.Collect(maps.Values(n.own))
	n.mu.Unlock()
	for _, ri := range own {
		b, err := json.Marshal(recRecord{Info: ri, Node: n.id})
		if err != nil {
			return err
		}
		if err := n.rdb.SetNX(ctx, n.keys.sessionRecording(ri.Session), b, 0).Err(); err != nil {
			return err
		}
	}
	return nil
}
