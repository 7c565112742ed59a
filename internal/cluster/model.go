package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/parley/parley/internal/session"
)

// The cluster-wide face of the session model: what the REST API, the app and signaling call
// (CreateSession, Sessions, the Room handle, Join), with Redis as the record every node reads. Each
// one reads or changes the shared record, then the local model; an operation on a participant
// another node holds is sent to that node (messages.go).

// Room is one session as any node acts on it, the cluster's counterpart of session.Room.
type Room struct {
	n  *Node
	id session.SessionID
}

// Room returns the handle of session id; it is checked when used.
func (n *Node) Room(id session.SessionID) Room { return Room{n, id} }

// ID returns the session's id.
func (r Room) ID() session.SessionID { return r.id }

// Info returns the session as the cluster knows it; pending includes unused connections.
func (r Room) Info(pending bool) (session.SessionInfo, error) { return r.n.session(r.id, pending) }

// Close closes the session on every node (sessionClosedByServer).
func (r Room) Close() error { return r.n.closeSession(r.id) }

// CreateConnection makes a connection whose token joins once, on any node.
func (r Room) CreateConnection(o session.ConnectionOptions) (session.ConnectionInfo, error) {
	return r.n.createConnection(r.id, o)
}

// Connection returns one connection, pending or active, wherever it is.
func (r Room) Connection(cid session.ConnectionID) (session.ConnectionInfo, error) {
	return r.n.connection(r.id, cid)
}

// UpdateConnection changes a connection's role or record flag wherever it is.
func (r Room) UpdateConnection(cid session.ConnectionID, role *session.Role, record *bool) (session.ConnectionInfo, error) {
	return r.n.updateConnection(r.id, cid, role, record)
}

// DeleteConnection invalidates a pending token or evicts a participant, wherever it is.
func (r Room) DeleteConnection(cid session.ConnectionID) error {
	return r.n.deleteConnection(r.id, cid)
}

// ForceUnpublish stops a stream on its publisher's node.
func (r Room) ForceUnpublish(sid session.StreamID) error { return r.n.forceUnpublish(r.id, sid) }

// Signal sends a REST signal to its recipients (everyone, when empty) on every node.
func (r Room) Signal(to []session.ConnectionID, typ, data string) error {
	return r.n.signal(r.id, to, typ, data)
}

func errNoSession(id session.SessionID) error {
	return &session.Error{Kind: session.KindNotFound, Code: session.CodeRoomNotFound, Msg: fmt.Sprintf("session %s cannot be found", id)}
}

func errNoConnection(id session.SessionID, cid session.ConnectionID) error {
	return &session.Error{Kind: session.KindNotFound, Code: session.CodeUserNotFound, Msg: fmt.Sprintf("connection %s not found in session %s", cid, id)}
}

// errShared is what a request gets when Redis cannot be reached: the cluster cannot tell what the
// other nodes did, so it refuses rather than guess.
func errShared(err error) error {
	return &session.Error{Kind: session.KindInternal, Code: session.CodeGeneric, Msg: "the cluster's shared state (Redis) is unavailable", Err: err}
}

func isNotFound(err error) bool {
	var se *session.Error
	return errors.As(err, &se) && se.Kind == session.KindNotFound
}

// CreateSession creates a session here and records it for every node; a customSessionId taken on
// any node is a KindConflict error.
func (n *Node) CreateSession(p session.Properties) (session.SessionInfo, error) {
	ctx, cancel := n.op()
	defer cancel()
	if id := session.SessionID(p.CustomSessionID); id != "" {
		exists, err := n.rdb.Exists(ctx, n.keys.session(id)).Result()
		if err != nil {
			return session.SessionInfo{}, errShared(err)
		}
		if exists > 0 {
			return session.SessionInfo{}, &session.Error{Kind: session.KindConflict, Code: session.CodeGeneric, Msg: fmt.Sprintf("session %s already exists", id)}
		}
		// A copy of a session that ended elsewhere must not block its id here.
		n.m.DropReplica(id)
	}
	si, err := n.m.CreateSession(p)
	if err != nil {
		return si, err
	}
	rec, err := json.Marshal(sessionRecord{ID: si.ID, CreatedAt: si.CreatedAt, Props: si.Props, Node: n.id})
	if err != nil {
		return si, err
	}
	created, err := createSessionScript.Run(ctx, n.rdb, n.keys.sessionKeys(si.ID), rec, si.CreatedAt.UnixMilli(), string(si.ID)).Int()
	if err != nil || created == 0 {
		// Another node took the id between the check and now, or nobody can be told of it.
		n.m.DropReplica(si.ID)
		if err != nil {
			return session.SessionInfo{}, errShared(err)
		}
		return session.SessionInfo{}, &session.Error{Kind: session.KindConflict, Code: session.CodeGeneric, Msg: fmt.Sprintf("session %s already exists", si.ID)}
	}
	n.report(session.Event{Kind: session.SessionCreated, Time: si.CreatedAt, Session: si.ID, SessionCreatedAt: si.CreatedAt})
	return si, nil
}

// session returns a session as the cluster knows it; pending includes unused connections.
func (n *Node) session(id session.SessionID, pending bool) (session.SessionInfo, error) {
	ctx, cancel := n.op()
	defer cancel()
	rec, conns, found, err := n.loadSession(ctx, id)
	if err != nil {
		return session.SessionInfo{}, errShared(err)
	}
	if !found {
		return session.SessionInfo{}, errNoSession(id)
	}
	return n.merge(rec, conns, pending), nil
}

// merge builds a session's snapshot from its shared record, with this node's own participants as
// the local model has them now (the record of them may be a moment behind).
func (n *Node) merge(rec sessionRecord, conns []connRecord, pending bool) session.SessionInfo {
	si := rec.info()
	local, err := n.m.Room(rec.ID).Info(false)
	here := map[session.ConnectionID]session.ConnectionInfo{}
	if err == nil {
		si.Recording = local.Recording
		for _, c := range local.Connections {
			here[c.ID] = c
		}
	} else {
		si.Recording = rec.recording != nil // no copy here: as the recording's node wrote it
	}
	for _, cr := range conns {
		c := cr.Info
		if !c.Active && !pending {
			continue
		}
		if cr.Node == n.id {
			lc, ok := here[c.ID]
			if !ok {
				continue // left here; the record is about to go
			}
			c = lc
		}
		si.Connections = append(si.Connections, c)
	}
	slices.SortFunc(si.Connections, byCreation)
	return si
}

// Sessions returns every session of the cluster, oldest first. Without Redis it answers with this
// node's own sessions, and logs why.
func (n *Node) Sessions(pending bool) []session.SessionInfo {
	ctx, cancel := n.op()
	defer cancel()
	ids, err := n.rdb.ZRange(ctx, n.keys.sessions(), 0, -1).Result()
	if err == nil {
		p := n.rdb.Pipeline()
		type cmds struct {
			s func() (sessionRecord, []connRecord, bool, error)
		}
		all := make([]cmds, len(ids))
		for i, id := range ids {
			sc := p.Get(ctx, n.keys.session(session.SessionID(id)))
			cc := p.HGetAll(ctx, n.keys.conns(session.SessionID(id)))
			rc := p.Get(ctx, n.keys.sessionRecording(session.SessionID(id)))
			all[i].s = func() (sessionRecord, []connRecord, bool, error) { return decodeSession(sc, cc, rc) }
		}
		if _, err = p.Exec(ctx); err == nil || isNil(err) {
			out := make([]session.SessionInfo, 0, len(ids))
			for _, c := range all {
				rec, conns, found, err := c.s()
				if err == nil && found {
					out = append(out, n.merge(rec, conns, pending))
				}
			}
			return out
		}
	}
	n.log.Warn("cluster: listing sessions from this node only", "err", err)
	return n.m.Sessions(pending)
}

// closeSession closes a session everywhere: the record goes at once, and every node evicts its
// participants of it (sessionClosedByServer).
func (n *Node) closeSession(id session.SessionID) error {
	ctx, cancel := n.op()
	defer cancel()
	rec, err := closeScript.Run(ctx, n.rdb, n.keys.sessionKeys(id), string(id), n.keys.p).Text()
	existed := err == nil
	if err != nil && !isNil(err) {
		return errShared(err)
	}
	localErr := n.m.Room(id).Close()
	if !existed && localErr != nil {
		return localErr
	}
	if existed {
		// After this node's participants' participantLeft; the other nodes' come after it.
		n.reportDestroyed(rec, session.ReasonSessionClosedByServer, time.Time{})
	}
	if err := n.publish(ctx, message{Kind: msgClose, Session: id}); err != nil {
		n.log.Warn("cluster: telling other nodes of a closed session failed", "session", id, "err", err)
	}
	return nil
}

// local makes sure this node holds a copy of a session the cluster knows, so a connection can be
// made or joined here. A copy of a session that ended elsewhere is dropped.
func (n *Node) local(id session.SessionID) error {
	ctx, cancel := n.op()
	defer cancel()
	raw, err := n.rdb.Get(ctx, n.keys.session(id)).Result()
	if isNil(err) {
		n.m.DropReplica(id)
		return errNoSession(id)
	}
	if err != nil {
		return errShared(err)
	}
	var rec sessionRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return errShared(err)
	}
	if err := n.m.AdoptSession(rec.info()); err != nil {
		return err
	}
	// A recording another node runs: read once the copy exists, so its stop, if it comes after
	// this read, finds the copy and clears it (MirrorRecording ignores a start it saw stop).
	rr, err := n.rdb.Get(ctx, n.keys.sessionRecording(id)).Result()
	if err != nil && !isNil(err) {
		return errShared(err)
	}
	if r := decodeRecording(rec, rr); r != nil && r.Node != n.id {
		n.mirrorRecording(r.Info)
	}
	return nil
}

// createConnection creates a pending connection whose token any node accepts once.
func (n *Node) createConnection(id session.SessionID, o session.ConnectionOptions) (session.ConnectionInfo, error) {
	if err := n.local(id); err != nil {
		return session.ConnectionInfo{}, err
	}
	ci, err := n.m.Room(id).CreateConnection(o)
	if err != nil {
		return ci, err
	}
	ctx, cancel := n.op()
	defer cancel()
	rec, err := json.Marshal(connRecord{Info: ci})
	if err != nil {
		return ci, err
	}
	tokenKey := ""
	if ci.Token != "" { // an IPCAM connection has none: it is a participant at once
		tokenKey = n.keys.token(ci.Token)
	}
	ok, err := createConnectionScript.Run(ctx, n.rdb, []string{n.keys.session(id), n.keys.conns(id), tokenKey},
		string(ci.ID), rec, heldMember(id, ci.ID)).Int()
	if err == nil && ok == 1 && ci.Active {
		// An IPCAM connection, publishing already: this node's participant, which the other
		// nodes mirror as any other (its stream crosses the inter-node links on demand).
		ok, err = n.activate(ctx, id, ci, "")
		if err == nil && ok == 1 {
			n.announceJoin(ctx, ci)
		}
	}
	if err != nil || ok == 0 {
		_ = n.m.Room(id).DeleteConnection(ci.ID)
		if err != nil {
			return session.ConnectionInfo{}, errShared(err)
		}
		return session.ConnectionInfo{}, errNoSession(id)
	}
	return ci, nil
}

// connection returns one connection, pending or active, wherever it is.
func (n *Node) connection(id session.SessionID, cid session.ConnectionID) (session.ConnectionInfo, error) {
	ctx, cancel := n.op()
	defer cancel()
	cr, found, err := n.loadConnection(ctx, id, cid)
	if err != nil {
		return session.ConnectionInfo{}, errShared(err)
	}
	if !found {
		if exists, err := n.rdb.Exists(ctx, n.keys.session(id)).Result(); err != nil {
			return session.ConnectionInfo{}, errShared(err)
		} else if exists == 0 {
			return session.ConnectionInfo{}, errNoSession(id)
		}
		return session.ConnectionInfo{}, errNoConnection(id, cid)
	}
	if cr.Node == n.id {
		if ci, err := n.m.Room(id).Connection(cid); err == nil {
			return ci, nil
		}
	}
	return cr.Info, nil
}

// updateConnection changes a connection's role and/or record flag wherever it is. For a
// participant on another node the answer shows the change that node is told to make.
func (n *Node) updateConnection(id session.SessionID, cid session.ConnectionID, role *session.Role, record *bool) (session.ConnectionInfo, error) {
	cr, err := n.connectionRecord(id, cid)
	if err != nil {
		return session.ConnectionInfo{}, err
	}
	ctx, cancel := n.op()
	defer cancel()
	switch {
	case cr.Node == n.id:
		ci, err := n.m.Room(id).UpdateConnection(cid, role, record)
		if err == nil {
			n.updated(id, cid)
		}
		return ci, err
	case cr.Info.Active:
		if err := n.publish(ctx, message{Kind: msgUpdate, To: cr.Node, Session: id, Connection: cid, Role: role, Record: record}); err != nil {
			return session.ConnectionInfo{}, errShared(err)
		}
	default:
		b, err := json.Marshal(connRecord{Info: applyUpdate(cr.Info, role, record)})
		if err != nil {
			return session.ConnectionInfo{}, err
		}
		if err := updatePendingScript.Run(ctx, n.rdb, []string{n.keys.conns(id), n.keys.active(id)}, string(cid), b).Err(); err != nil {
			return session.ConnectionInfo{}, errShared(err)
		}
		// This node's copy, if any, follows; a copy on another node takes the record when joined.
		if _, err := n.m.Room(id).UpdateConnection(cid, role, record); err != nil && !isNotFound(err) {
			return session.ConnectionInfo{}, err
		}
	}
	return applyUpdate(cr.Info, role, record), nil
}

func applyUpdate(ci session.ConnectionInfo, role *session.Role, record *bool) session.ConnectionInfo {
	if role != nil {
		ci.Options.Role = *role
	}
	if record != nil {
		ci.Options.Record = *record
	}
	return ci
}

// connectionRecord reads a connection's record, with the model's errors when it does not exist.
func (n *Node) connectionRecord(id session.SessionID, cid session.ConnectionID) (connRecord, error) {
	ctx, cancel := n.op()
	defer cancel()
	cr, found, err := n.loadConnection(ctx, id, cid)
	if err != nil {
		return cr, errShared(err)
	}
	if !found {
		if exists, err := n.rdb.Exists(ctx, n.keys.session(id)).Result(); err != nil {
			return cr, errShared(err)
		} else if exists == 0 {
			return cr, errNoSession(id)
		}
		return cr, errNoConnection(id, cid)
	}
	return cr, nil
}

// deleteConnection invalidates a pending token everywhere, or evicts an active participant
// (forceDisconnectByServer) on the node that holds it.
func (n *Node) deleteConnection(id session.SessionID, cid session.ConnectionID) error {
	ctx, cancel := n.op()
	defer cancel()
	res, err := deleteConnectionScript.Run(ctx, n.rdb, []string{n.keys.conns(id), n.keys.active(id)}, string(cid), n.keys.p).Text()
	switch {
	case isNil(err):
		if exists, err := n.rdb.Exists(ctx, n.keys.session(id)).Result(); err != nil {
			return errShared(err)
		} else if exists == 0 {
			return errNoSession(id)
		}
		return errNoConnection(id, cid)
	case err != nil:
		return errShared(err)
	case res == "pending":
		if err := n.m.Room(id).DeleteConnection(cid); err != nil && !isNotFound(err) {
			return err
		}
		return nil
	case res == "@"+n.id:
		return n.m.Room(id).DeleteConnection(cid)
	default:
		if err := n.publish(ctx, message{Kind: msgDisconnect, To: res[1:], Session: id, Connection: cid}); err != nil {
			return errShared(err)
		}
		return nil
	}
}

// forceUnpublish stops a stream on the node that holds its publisher.
func (n *Node) forceUnpublish(id session.SessionID, sid session.StreamID) error {
	cr, err := n.connectionRecord(id, sid.Owner())
	if isNotFound(err) || err == nil && cr.Node == n.id {
		return n.m.Room(id).ForceUnpublish(sid)
	}
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(cr.Info.Publishers, func(s session.StreamInfo) bool { return s.ID == sid }) {
		return &session.Error{Kind: session.KindNotFound, Code: session.CodeUserNotStreaming, Msg: fmt.Sprintf("stream %s not found in session %s", sid, id)}
	}
	ctx, cancel := n.op()
	defer cancel()
	if err := n.publish(ctx, message{Kind: msgUnpublish, To: cr.Node, Session: id, Stream: sid}); err != nil {
		return errShared(err)
	}
	return nil
}

// signal sends a REST signal to its recipients on every node.
func (n *Node) signal(id session.SessionID, to []session.ConnectionID, typ, data string) error {
	ctx, cancel := n.op()
	defer cancel()
	p := n.rdb.Pipeline()
	sc := p.Get(ctx, n.keys.session(id))
	act := p.SMembers(ctx, n.keys.active(id))
	if _, err := p.Exec(ctx); err != nil && !isNil(err) {
		return errShared(err)
	}
	var rec sessionRecord
	if raw, err := sc.Result(); isNil(err) {
		return errNoSession(id)
	} else if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return errShared(err)
	}
	active := act.Val()
	if len(to) == 0 && len(active) == 0 {
		return &session.Error{Kind: session.KindNotAcceptable, Code: session.CodeSignalTo, Msg: fmt.Sprintf("session %s has no participants", id)}
	}
	for _, t := range to {
		if !slices.Contains(active, string(t)) {
			return &session.Error{Kind: session.KindNotAcceptable, Code: session.CodeSignalTo, Msg: fmt.Sprintf("signal recipient %q is not a participant of session %s", t, id)}
		}
	}
	if err := n.publish(ctx, message{Kind: msgSignal, Session: id, To: "", SignalTo: to, Type: typ, Data: data}); err != nil {
		return errShared(err)
	}
	// This node delivers its share at once, so a caller that only has participants here sees the
	// signal delivered when the call returns, as on one node.
	n.deliverSignal(id, to, typ, data)
	sig := &session.Signal{Type: typ, Data: data, To: slices.Clone(to)}
	if len(to) == 0 {
		slices.Sort(active)
		for _, a := range active {
			sig.To = append(sig.To, session.ConnectionID(a))
		}
	}
	n.report(session.Event{Kind: session.SignalSent, Time: n.cfg.Now(), Session: id, Signal: sig, SessionCreatedAt: rec.CreatedAt})
	return nil
}

// activate records participant ci as this node's. mode is "" for a join, "restore" for a
// participant restored from a lost node, "rewrite" for one written again (activateScript).
func (n *Node) activate(ctx context.Context, id session.SessionID, ci session.ConnectionInfo, mode string) (int, error) {
	b, err := json.Marshal(activeRecord(ci, n.id))
	if err != nil {
		return 0, err
	}
	rpcKey := ""
	if ci.RPC != "" {
		rpcKey = n.keys.rpc(ci.RPC)
	}
	return activateScript.Run(ctx, n.rdb, []string{n.keys.session(id), n.keys.conns(id), n.keys.active(id), n.keys.held(n.id), rpcKey},
		string(ci.ID), b, heldMember(id, ci.ID), mode, n.id).Int()
}

// Join consumes a token, wherever it was made, and makes its connection a participant here. The
// token is claimed in Redis first, atomically, so it is accepted once in the whole cluster.
func (n *Node) Join(id session.SessionID, token string, j session.JoinInfo, sink session.Sink) (*session.Participant, session.JoinResult, error) {
	invalid := &session.Error{Kind: session.KindUnauthorized, Code: session.CodeUserUnauthorized,
		Msg: fmt.Sprintf("Unable to join session %s. Token is not valid", id)} // never echo the token
	ctx, cancel := n.op()
	defer cancel()
	raw, err := claimTokenScript.Run(ctx, n.rdb, []string{n.keys.token(token), n.keys.conns(id), n.keys.active(id)}, string(id)).Text()
	if isNil(err) {
		exists, err := n.rdb.Exists(ctx, n.keys.session(id)).Result()
		if err != nil {
			return nil, session.JoinResult{}, errShared(err)
		}
		if exists == 0 {
			return nil, session.JoinResult{}, &session.Error{Kind: session.KindNotFound, Code: session.CodeRoomNotFound,
				Msg: fmt.Sprintf("Unable to join session %s. Session %s cannot be found", id, id)}
		}
		return nil, session.JoinResult{}, invalid
	}
	if err != nil {
		return nil, session.JoinResult{}, errShared(err)
	}
	var cr connRecord
	if err := json.Unmarshal([]byte(raw), &cr); err != nil {
		return nil, session.JoinResult{}, errShared(err)
	}
	cid := cr.Info.ID
	giveBack := func() {
		_ = restoreTokenScript.Run(ctx, n.rdb, []string{n.keys.token(token), n.keys.conns(id)}, string(cid), heldMember(id, cid)).Err()
	}
	if err := n.local(id); err != nil {
		giveBack()
		return nil, session.JoinResult{}, err
	}
	if err := n.m.AdoptConnection(id, cr.Info); err != nil {
		giveBack()
		return nil, session.JoinResult{}, err
	}
	// The participants other nodes hold, so joinRoom lists them.
	if err := n.mirrorOthers(ctx, id); err != nil {
		giveBack()
		return nil, session.JoinResult{}, err
	}
	p, res, err := n.m.Join(id, token, j, sink)
	if err != nil {
		giveBack()
		return nil, res, err
	}
	ci, err := n.m.Room(id).Connection(cid)
	if err != nil { // it left already
		return p, res, nil
	}
	ok, err := n.activate(ctx, id, ci, "")
	if err != nil || ok == 0 {
		// The session was closed or the connection deleted while it joined, or nobody can be told
		// it joined: it must not stay in a call the others cannot see.
		p.Evict(session.ReasonSessionClosedByServer)
		if err != nil {
			return nil, session.JoinResult{}, errShared(err)
		}
		return nil, session.JoinResult{}, invalid
	}
	n.announceJoin(ctx, ci)
	return p, res, nil
}
