package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley/parley/internal/session"
)

// A node lost (killed, or cut off from Redis) stops renewing its registry entry. Whoever notices
// first that the entry expired (every node looks at each heartbeat) forgets the node in one
// atomic script, which moves the participants it held out of the listings into the session's lost
// hash for RestoreWindow, and reports each of them once (participantLeft, webrtcConnectionDestroyed,
// reason nodeCrashed). Their openvidu-browser reconnects through the same URL, so a load balancer
// brings it to a surviving node, where `connect` with its old JSON-RPC session id restores it
// (Restore): same connection id, role and data, and its stream published anew under its old id
// by the reconnectStream the SDK sends next.
//
// A participant usually comes back before the entry expires: the browser reconnects within a
// second or two. So a node asked to restore a participant of a node whose entry still lives
// checks the node's connection to Redis (the subscriber count of its own channel, which Redis drops
// the moment the process dies): none, and the node is forgotten there and then.

// DefaultRestoreWindow is how long a lost node's participants can be restored on another node.
// The SDK keeps reconnecting its WebSocket far longer; its media gives up after about 30 s.
const DefaultRestoreWindow = 2 * time.Minute

// errLost is what Restore says when there is nothing to restore.
var errLost = errors.New("no participant of a lost node under this JSON-RPC session")

// lose forgets nodes ids whose entry expired at or before now (ms, or "1e300": whatever their
// entry), moving their participants to the lost hashes. With report, this node reports what the
// forgetting removed and tells every node which nodes went.
func (n *Node) lose(ctx context.Context, ids []string, now string, report bool) error {
	window := n.cfg.RestoreWindow
	end := n.cfg.Now().Add(window).UnixMilli()
	args := append([]any{now, n.keys.p, window.Milliseconds(), end}, toAny(ids)...)
	res, err := forgetNodesScript.Run(ctx, n.rdb, []string{n.keys.nodes(), n.keys.nodeInfo(), n.keys.lostSessions()}, args...).Slice()
	if err != nil {
		return fmt.Errorf("cluster: forget nodes: %w", err)
	}
	if !report || len(res) != 2 {
		return nil
	}
	gone, _ := res[0].([]any)
	moved, _ := res[1].([]any)
	for i := 0; i+1 < len(moved); i += 2 {
		rec, _ := moved[i+1].(string)
		var cr connRecord
		if err := json.Unmarshal([]byte(rec), &cr); err != nil {
			continue
		}
		n.reportLost(cr)
	}
	for _, g := range gone {
		id, _ := g.(string)
		n.log.Warn("cluster: node lost; its participants left the listings and may be restored here", "lost", id)
		n.dropNode(id)
		if err := n.publish(ctx, message{Kind: msgNodeLost, Lost: id}); err != nil {
			n.log.Warn("cluster: telling other nodes of a lost node failed", "lost", id, "err", err)
		}
		if err := n.failRecordingsOf(ctx, id); err != nil {
			n.log.Warn("cluster: ending a lost node's recordings failed", "lost", id, "err", err)
		}
	}
	return nil
}

// failRecordingsOf ends, for the cluster, the recordings lost node ran (P rs:<session> names
// them): each is failed (reason nodeCrashed) in the shared record and reported once, from here,
// and every node stops showing it (recordingStopped to its participants), so the session can be
// recorded again on a live node. What the lost node wrote stays in its folder. Only the node that
// forgot the lost one calls it, once per loss; a node loss is rare, so scanning the running
// recordings is fine.
func (n *Node) failRecordingsOf(ctx context.Context, node string) error {
	iter := n.rdb.Scan(ctx, 0, n.keys.p+"rs:*", 100).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		raw, err := n.rdb.Get(ctx, key).Result()
		if err != nil {
			continue // ended meanwhile
		}
		var rr recRecord
		if json.Unmarshal([]byte(raw), &rr) != nil || rr.Node != node {
			continue
		}
		ri := rr.Info
		ri.Status, ri.Reason = session.RecordingFailed, session.ReasonNodeCrashed
		b, err := json.Marshal(recRecord{Info: ri, Node: node})
		if err != nil {
			return err
		}
		if err := endRecordingScript.Run(ctx, n.rdb, []string{key}, ri.ID).Err(); err != nil {
			return err
		}
		if err := n.rdb.HSet(ctx, n.keys.recordings(), ri.ID, b).Err(); err != nil {
			return err
		}
		n.mirrorRecording(ri)
		if err := n.publish(ctx, message{Kind: msgRecStatus, Session: ri.Session, Recording: &ri}); err != nil {
			return err
		}
		n.report(session.Event{Kind: session.RecordingStatusChanged, Time: n.cfg.Now(), Session: ri.Session, SessionCreatedAt: ri.SessionCreatedAt,
			Started: ri.CreatedAt, Reason: ri.Reason, Recording: &ri})
	}
	return iter.Err()
}

// reportLost reports a lost node's participant as gone, as its node would have: its media
// connections, then itself.
func (n *Node) reportLost(cr connRecord) {
	now := n.cfg.Now()
	ci := cr.Info
	createdAt := n.sessionCreatedAt(ci.Session)
	base := session.Event{Time: now, Session: ci.Session, Reason: session.ReasonNodeCrashed, SessionCreatedAt: createdAt}
	for _, s := range ci.Subscribers {
		e := base
		e.Kind, e.Connection, e.Stream, e.Subscriber, e.Started = session.WebRTCConnectionDestroyed, s.Stream.Owner(), s.Stream, ci.ID, s.CreatedAt
		n.report(e)
	}
	for _, p := range ci.Publishers {
		e := base
		media := p.Media
		e.Kind, e.Connection, e.Stream, e.Started, e.Media = session.WebRTCConnectionDestroyed, ci.ID, p.ID, p.CreatedAt, &media
		n.report(e)
	}
	e := base
	e.Kind, e.Connection, e.Started = session.ParticipantLeft, ci.ID, ci.ActiveAt
	e.Client = &session.ClientInfo{IP: ci.IP, Platform: ci.Platform, ClientData: ci.ClientData, ServerData: ci.Options.Data}
	n.report(e)
}

// sessionCreatedAt reads a session's creation time from its record (zero if it has none).
func (n *Node) sessionCreatedAt(id session.SessionID) time.Time {
	ctx, cancel := n.op()
	defer cancel()
	raw, err := n.rdb.Get(ctx, n.keys.session(id)).Result()
	var rec sessionRecord
	if err != nil || json.Unmarshal([]byte(raw), &rec) != nil {
		return time.Time{}
	}
	return rec.CreatedAt
}

// dropNode tells this node's model that node went, so its participants here see that node's
// participants (their mirrors) leave.
func (n *Node) dropNode(node string) {
	n.m.DropNode(node, session.ReasonNodeCrashed)
}

// alive tells whether node is in the registry and connected to Redis.
func (n *Node) alive(ctx context.Context, node string) (bool, error) {
	score, err := n.rdb.ZScore(ctx, n.keys.nodes(), node).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if int64(score) <= n.cfg.Now().UnixMilli() {
		return false, nil
	}
	subs, err := n.rdb.PubSubNumSub(ctx, n.keys.nodeChannel(node)).Result()
	if err != nil {
		return false, err
	}
	return subs[n.keys.nodeChannel(node)] > 0, nil
}

// Restore takes over, on this node, the participant that joined through JSON-RPC session rpc on
// a node that is lost (signaling.Restorer): its `connect` reached this node. It fails when there
// is no such participant, when its node is alive (the participant's socket went elsewhere for
// another reason; that node still holds it for its reconnection grace), or when Redis cannot be
// reached. subs are the streams it was subscribed to on the lost node: signaling offers them
// to it anew at once, since its SDK would wait on its browser's ICE timers for about ten seconds.
func (n *Node) Restore(rpc, ip string, sink session.Sink) (p *session.Participant, subs []session.StreamID, err error) {
	ctx, cancel := n.op()
	defer cancel()
	v, err := n.rdb.Get(ctx, n.keys.rpc(rpc)).Result()
	if isNil(err) {
		return nil, nil, errLost
	}
	if err != nil {
		return nil, nil, errShared(err)
	}
	sid, cid, ok := strings.Cut(v, "\n")
	if !ok {
		return nil, nil, errLost
	}
	id, conn := session.SessionID(sid), session.ConnectionID(cid)
	if cr, found, err := n.loadConnection(ctx, id, conn); err != nil {
		return nil, nil, errShared(err)
	} else if found && cr.Info.Active {
		// Still listed: its node has not been noticed gone yet. Gone it must be.
		if cr.Node == n.id {
			return nil, nil, errLost
		}
		live, err := n.alive(ctx, cr.Node)
		if err != nil {
			return nil, nil, errShared(err)
		}
		if live {
			return nil, nil, fmt.Errorf("participant %s is held by node %s, which is alive", conn, cr.Node)
		}
		if err := n.lose(ctx, []string{cr.Node}, "1e300", true); err != nil {
			return nil, nil, errShared(err)
		}
	}
	rec, err := claimLostScript.Run(ctx, n.rdb, []string{n.keys.session(id), n.keys.lost(id)}, cid).Text()
	if isNil(err) {
		return nil, nil, errLost
	}
	if err != nil {
		return nil, nil, errShared(err)
	}
	var cr connRecord
	if err := json.Unmarshal([]byte(rec), &cr); err != nil {
		return nil, nil, errShared(err)
	}
	giveBack := func() {
		_ = n.rdb.HSet(ctx, n.keys.lost(id), cid, rec).Err()
	}
	if err := n.local(id); err != nil {
		giveBack()
		return nil, nil, err
	}
	// Its mirror here, if this node has not heard of the loss yet, gives way to the participant;
	// the participants other nodes hold are mirrored, as for a join.
	n.m.MirrorLeft(id, conn, session.ReasonNodeCrashed)
	if err := n.mirrorOthers(ctx, id); err != nil {
		giveBack()
		return nil, nil, err
	}
	j := session.JoinInfo{Metadata: cr.Info.ClientData, Platform: cr.Info.Platform, IP: ip, RPC: rpc}
	p, _, err = n.m.Restore(id, cr.Info, j, sink)
	if err != nil {
		giveBack()
		return nil, nil, err
	}
	ci, err := n.m.Room(id).Connection(conn)
	if err != nil { // it left already
		return p, nil, nil
	}
	if ok, err := n.activate(ctx, id, ci, "restore"); err != nil || ok == 0 {
		p.Evict(session.ReasonSessionClosedByServer)
		if err != nil {
			return nil, nil, errShared(err)
		}
		return nil, nil, errNoSession(id)
	}
	n.announceJoin(ctx, ci) // its stream is announced when its reconnectStream publishes it here
	n.log.Info("participant of a lost node restored", "session", id, "connection", conn, "from", cr.Node)
	for _, s := range cr.Info.Subscribers {
		subs = append(subs, s.Stream)
	}
	return p, subs, nil
}

// collectLost ends the sessions whose lost participants' restore window passed with nobody in
// them on any node: sessionDestroyed (nodeCrashed), reported by the one node whose removal of the
// window's entry succeeded.
func (n *Node) collectLost(ctx context.Context) error {
	now := strconv.FormatInt(n.cfg.Now().UnixMilli(), 10)
	ids, err := n.rdb.ZRangeArgs(ctx, zrange(n.keys.lostSessions(), "-inf", now)).Result()
	if err != nil {
		return fmt.Errorf("cluster: lost sessions: %w", err)
	}
	for _, s := range ids {
		if took, err := n.rdb.ZRem(ctx, n.keys.lostSessions(), s).Result(); err != nil || took == 0 {
			continue
		}
		id := session.SessionID(s)
		rec, err := destroyIfEmptyScript.Run(ctx, n.rdb, n.keys.sessionKeys(id), s, n.keys.p).Text()
		if err != nil {
			continue // someone is in it again, or it ended already
		}
		n.m.DropReplica(id)
		n.reportDestroyed(rec, session.ReasonNodeCrashed, time.Time{})
		if err := n.publish(ctx, message{Kind: msgGone, Session: id}); err != nil {
			n.log.Warn("cluster: telling other nodes of an ended session failed", "session", id, "err", err)
		}
	}
	return nil
}
