package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley/parley/internal/session"
)

// Recordings across nodes. A recording runs on one node, the one whose recorder taps the session's
// streams: the node holding a publisher of the session when it starts (this node if it holds one).
// Every node writes its recordings to the shared record (P recs, a hash of recording id → its
// info and node), so any node lists and fetches them all; stop and delete travel to the node that
// runs the recording as a request over the message channel, answered through a Redis list the
// asker waits on. Files are served by the node that wrote them, or by any node when
// OPENVIDU_RECORDING_PATH is a folder every node shares (LocalRecorder.SharedFile).

// LocalRecorder is this node's recorder (*recording.Recorder), as api.Recordings has it, plus the
// shared-folder lookup.
type LocalRecorder interface {
	Start(session.SessionID, session.RecordingProperties) (session.RecordingInfo, error)
	Stop(id string) (session.RecordingInfo, error)
	Get(id string) (session.RecordingInfo, error)
	List() []session.RecordingInfo
	Delete(id string) error
	File(id, name string) (string, error)
	// SharedFile finds a file of a recording another node wrote, in a recording folder shared by
	// every node; KindNotFound when the folder is not shared.
	SharedFile(id, name string) (string, error)
}

// Bounds of the recording requests between nodes.
const (
	// recRequestTimeout bounds how long a REST call waits for the node that runs a recording.
	recRequestTimeout = 10 * time.Second
	// recReplyTTL is how long an unread answer stays in Redis (its asker gave up).
	recReplyTTL = time.Minute
	// recWriteQueue bounds the recording records waiting to be written; past it a change is
	// logged and the next change of that recording writes it.
	recWriteQueue = 1024
	// maxRecRequests bounds the requests this node serves at once for other nodes; past it the
	// asker gets an error (a node never runs more recordings than that at once anyway).
	maxRecRequests = 64
	// maxRecAsks bounds the requests this node waits on at once (REST stop, delete or start of a
	// recording that another node runs). Each waits in a BLPOP that holds one of the client's
	// pooled Redis connections for up to recRequestTimeout; unbounded, a burst of such REST calls
	// would take the whole pool (go-redis: 10 connections per CPU) and stall every other Redis use
	// of the node (joins, heartbeats, listings) for as long. Past it a REST call is answered 503
	// at once, in OpenVidu's error form.
	maxRecAsks = 4
)

// Recording request operations.
const (
	recStart  = "start"
	recStop   = "stop"
	recDelete = "delete"
)

// recRecord is a recording as the cluster shares it.
type recRecord struct {
	Info session.RecordingInfo
	Node string
}

// recRequest is the body of a msgRecording message; Reply names the list its answer goes to.
type recRequest struct {
	Op      string                      `json:"op"`
	ID      string                      `json:"id,omitempty"`
	Session session.SessionID           `json:"session,omitempty"`
	Props   session.RecordingProperties `json:"props"`
	Reply   string                      `json:"reply"`
}

// recReply is the answer: the recording, or the model's error as its parts.
type recReply struct {
	Info    session.RecordingInfo `json:"info"`
	ErrKind session.Kind          `json:"errKind,omitempty"`
	ErrCode int                   `json:"errCode,omitempty"`
	ErrMsg  string                `json:"errMsg,omitempty"`
}

func (k keys) recordings() string        { return k.p + "recs" }
func (k keys) recReply(id string) string { return k.p + "reply:" + id }

// Recordings is the cluster-wide face of the recorders: the REST API's Recordings on every node.
type Recordings struct {
	n      *Node
	local  LocalRecorder
	writes chan session.RecordingInfo
	busy   chan struct{} // one slot per request being served for another node
	asking chan struct{} // one slot per request this node waits on (maxRecAsks)
	wg     sync.WaitGroup
}

// Recordings makes this node's recorder part of the cluster: its recordings are written to the
// shared record as they change, and other nodes' requests reach it. Call it once, before Run.
func (n *Node) Recordings(local LocalRecorder) *Recordings {
	r := &Recordings{n: n, local: local, writes: make(chan session.RecordingInfo, recWriteQueue), busy: make(chan struct{}, maxRecRequests),
		asking: make(chan struct{}, maxRecAsks)}
	n.recs.Store(r)
	n.m.Listen(func(e session.Event) {
		if e.Kind != session.RecordingStatusChanged || e.Recording == nil {
			return
		}
		select {
		case r.writes <- *e.Recording:
		default:
			n.log.Warn("cluster: too many recording changes waiting to be written", "recording", e.Recording.ID)
		}
	})
	return r
}

// run writes the recordings' changes until ctx ends (Node.Run starts it).
func (r *Recordings) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ri := <-r.writes:
			// The recorder's own view is the newest: a late event must not undo a later state.
			if cur, err := r.local.Get(ri.ID); err == nil {
				ri = cur
			}
			if err := r.write(ctx, ri); err != nil {
				r.n.log.Warn("cluster: writing a recording failed", "recording", ri.ID, "err", err)
			}
		}
	}
}

func (r *Recordings) write(ctx context.Context, ri session.RecordingInfo) error {
	b, err := json.Marshal(recRecord{Info: ri, Node: r.n.id})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.n.cfg.Timeout)
	defer cancel()
	return r.n.rdb.HSet(ctx, r.n.keys.recordings(), ri.ID, b).Err()
}

// shared returns the recordings of the shared record, by id.
func (r *Recordings) shared() (map[string]recRecord, error) {
	ctx, cancel := r.n.op()
	defer cancel()
	all, err := r.n.rdb.HGetAll(ctx, r.n.keys.recordings()).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]recRecord, len(all))
	for id, v := range all {
		var rr recRecord
		if json.Unmarshal([]byte(v), &rr) == nil {
			out[id] = rr
		}
	}
	return out, nil
}

func (r *Recordings) lookup(id string) (recRecord, error) {
	ctx, cancel := r.n.op()
	defer cancel()
	v, err := r.n.rdb.HGet(ctx, r.n.keys.recordings(), id).Result()
	if isNil(err) {
		return recRecord{}, errNoRecording(id)
	}
	if err != nil {
		return recRecord{}, errShared(err)
	}
	var rr recRecord
	if err := json.Unmarshal([]byte(v), &rr); err != nil {
		return recRecord{}, errNoRecording(id)
	}
	return rr, nil
}

func errNoRecording(id string) error {
	return &session.Error{Kind: session.KindNotFound, Code: session.CodeGeneric, Msg: "recording " + id + " not found"}
}

// Start records session sid on the node holding one of its publishers (this one if it can).
func (r *Recordings) Start(sid session.SessionID, p session.RecordingProperties) (session.RecordingInfo, error) {
	target, err := r.recorderOf(sid)
	if err != nil {
		return session.RecordingInfo{}, err
	}
	if target == r.n.id {
		ri, err := r.local.Start(sid, p)
		if err == nil {
			r.writeNow(ri)
		}
		return ri, err
	}
	return r.ask(target, recRequest{Op: recStart, Session: sid, Props: p})
}

// recorderOf chooses the node to record sid: this node when it holds a publisher of it or when
// nobody publishes (its recorder then answers as a lone node would), else a node that does.
func (r *Recordings) recorderOf(sid session.SessionID) (string, error) {
	ctx, cancel := r.n.op()
	defer cancel()
	_, conns, found, err := r.n.loadSession(ctx, sid)
	if err != nil {
		return "", errShared(err)
	}
	if !found {
		return r.n.id, nil
	}
	var nodes []string
	for _, c := range conns {
		if c.Node != "" && len(c.Info.Publishers) > 0 {
			if c.Node == r.n.id {
				return r.n.id, nil
			}
			nodes = append(nodes, c.Node)
		}
	}
	if len(nodes) == 0 {
		return r.n.id, nil
	}
	slices.Sort(nodes) // the same choice whichever node is asked
	return nodes[0], nil
}

// Stop stops a recording on the node that runs it.
func (r *Recordings) Stop(id string) (session.RecordingInfo, error) {
	if _, err := r.local.Get(id); err == nil {
		ri, err := r.local.Stop(id)
		if err == nil {
			r.writeNow(ri)
		}
		return ri, err
	}
	rr, err := r.lookup(id)
	if err != nil {
		return session.RecordingInfo{}, err
	}
	return r.ask(rr.Node, recRequest{Op: recStop, ID: id})
}

// Get returns a recording from this node's recorder or the shared record.
func (r *Recordings) Get(id string) (session.RecordingInfo, error) {
	if ri, err := r.local.Get(id); err == nil {
		return ri, nil
	}
	rr, err := r.lookup(id)
	return rr.Info, err
}

// List returns every recording of the cluster, oldest first. Without Redis it lists this node's.
func (r *Recordings) List() []session.RecordingInfo {
	out := r.local.List()
	all, err := r.shared()
	if err != nil {
		r.n.log.Warn("cluster: listing other nodes' recordings failed", "err", err)
		return out
	}
	for _, ri := range out {
		delete(all, ri.ID)
	}
	for _, rr := range all {
		if rr.Node != r.n.id { // this node's own are the recorder's (a deleted one may linger)
			out = append(out, rr.Info)
		}
	}
	slices.SortFunc(out, func(a, b session.RecordingInfo) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out
}

// Delete removes a recording on the node that holds its files.
func (r *Recordings) Delete(id string) error {
	if _, err := r.local.Get(id); err == nil {
		if err := r.local.Delete(id); err != nil {
			return err
		}
		r.forget(id)
		return nil
	}
	rr, err := r.lookup(id)
	if err != nil {
		return err
	}
	_, err = r.ask(rr.Node, recRequest{Op: recDelete, ID: id})
	return err
}

// File returns the path of a recording's file: this node's, or another node's in a shared folder.
func (r *Recordings) File(id, name string) (string, error) {
	p, err := r.local.File(id, name)
	if err == nil || !isNotFound(err) {
		return p, err
	}
	if _, lerr := r.lookup(id); lerr != nil {
		return "", err
	}
	return r.local.SharedFile(id, name)
}

// writeNow writes a recording's state at once, so a REST call on another node right after this
// one's answer sees it.
func (r *Recordings) writeNow(ri session.RecordingInfo) {
	if err := r.write(context.Background(), ri); err != nil {
		r.n.log.Warn("cluster: writing a recording failed", "recording", ri.ID, "err", err)
	}
}

func (r *Recordings) forget(id string) {
	ctx, cancel := r.n.op()
	defer cancel()
	if err := r.n.rdb.HDel(ctx, r.n.keys.recordings(), id).Err(); err != nil {
		r.n.log.Warn("cluster: forgetting a recording failed", "recording", id, "err", err)
	}
}

// ask sends a request to node and waits for its answer, or answers at once that too many wait
// already (maxRecAsks).
func (r *Recordings) ask(node string, req recRequest) (session.RecordingInfo, error) {
	select {
	case r.asking <- struct{}{}:
		defer func() { <-r.asking }()
	default:
		return session.RecordingInfo{}, &session.Error{Kind: session.KindUnavailable, Code: session.CodeGeneric,
			Msg: fmt.Sprintf("node %s is waiting on %d recording requests to other nodes already; try again", r.n.id, maxRecAsks)}
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	req.Reply = hex.EncodeToString(id[:])
	body, err := json.Marshal(req)
	if err != nil {
		return session.RecordingInfo{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), recRequestTimeout)
	defer cancel()
	if err := r.n.publish(ctx, message{Kind: msgRecording, To: node, Session: req.Session, Data: string(body)}); err != nil {
		return session.RecordingInfo{}, errShared(err)
	}
	res, err := r.n.rdb.BLPop(ctx, recRequestTimeout, r.n.keys.recReply(req.Reply)).Result()
	if err != nil {
		if errors.Is(err, redis.Nil) || errors.Is(err, context.DeadlineExceeded) {
			return session.RecordingInfo{}, &session.Error{Kind: session.KindInternal, Code: session.CodeGeneric,
				Msg: "node " + node + ", which runs this recording, did not answer"}
		}
		return session.RecordingInfo{}, errShared(err)
	}
	var rep recReply
	if len(res) != 2 || json.Unmarshal([]byte(res[1]), &rep) != nil {
		return session.RecordingInfo{}, &session.Error{Kind: session.KindInternal, Code: session.CodeGeneric, Msg: "unreadable answer from node " + node}
	}
	if rep.ErrMsg != "" {
		return rep.Info, &session.Error{Kind: rep.ErrKind, Code: rep.ErrCode, Msg: rep.ErrMsg}
	}
	return rep.Info, nil
}

// serve answers another node's request (Node.handle hands it over), off the message loop.
func (r *Recordings) serve(m message) {
	var req recRequest
	if err := json.Unmarshal([]byte(m.Data), &req); err != nil || req.Reply == "" || len(req.Reply) > 64 {
		r.n.log.Warn("cluster: unreadable recording request", "from", m.From)
		return
	}
	select {
	case r.busy <- struct{}{}:
	default:
		r.answer(req.Reply, session.RecordingInfo{}, &session.Error{Kind: session.KindInternal, Code: session.CodeGeneric,
			Msg: "node " + r.n.id + " is serving too many recording requests"})
		return
	}
	r.wg.Go(func() {
		defer func() { <-r.busy }()
		var ri session.RecordingInfo
		var err error
		switch req.Op {
		case recStart:
			if ri, err = r.local.Start(req.Session, req.Props); err == nil {
				r.writeNow(ri)
			}
		case recStop:
			if ri, err = r.local.Stop(req.ID); err == nil {
				r.writeNow(ri)
			}
		case recDelete:
			if err = r.local.Delete(req.ID); err == nil {
				r.forget(req.ID)
			}
		default:
			err = &session.Error{Kind: session.KindInvalid, Code: session.CodeGeneric, Msg: "unknown recording operation"}
		}
		r.answer(req.Reply, ri, err)
	})
}

func (r *Recordings) answer(reply string, ri session.RecordingInfo, err error) {
	r.n.answerRecording(reply, ri, err)
}

// refuseRecording answers a recording request on a node without a recorder (OPENVIDU_RECORDING
// differs between nodes, which they should not).
func (n *Node) refuseRecording(m message) {
	var req recRequest
	if json.Unmarshal([]byte(m.Data), &req) != nil || req.Reply == "" || len(req.Reply) > 64 {
		return
	}
	n.answerRecording(req.Reply, session.RecordingInfo{}, &session.Error{Kind: session.KindUnsupported, Code: session.CodeGeneric,
		Msg: "recording is disabled on node " + n.id + " (OPENVIDU_RECORDING must be the same on every node)"})
}

func (n *Node) answerRecording(reply string, ri session.RecordingInfo, err error) {
	rep := recReply{Info: ri}
	if err != nil {
		var se *session.Error
		if !errors.As(err, &se) {
			se = &session.Error{Kind: session.KindInternal, Code: session.CodeGeneric, Msg: err.Error()}
		}
		rep.ErrKind, rep.ErrCode, rep.ErrMsg = se.Kind, se.Code, se.Msg
	}
	b, _ := json.Marshal(rep)
	ctx, cancel := n.op()
	defer cancel()
	key := n.keys.recReply(reply)
	if _, perr := n.rdb.TxPipelined(ctx, func(p redisPipe) error {
		p.RPush(ctx, key, b)
		p.Expire(ctx, key, recReplyTTL)
		return nil
	}); perr != nil {
		n.log.Warn("cluster: answering a recording request failed", "err", perr)
	}
}
