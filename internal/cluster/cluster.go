// Package cluster lets several Parley nodes serve as one, with Redis (redis/go-redis) as the shared
// state and the message bus between them (design.md, "Several nodes"). It runs only when
// PARLEY_REDIS_URL is set; a lone node never builds it and never needs Redis.
//
// What it owns: the node registry (each node's id, public media addresses and load, kept alive by
// heartbeats and dropped when they stop), and the shared record of what OpenVidu's REST API shows:
// sessions with their properties, connections with their tokens and, for active ones, the node
// that holds the participant. A Node wraps this node's session model: REST calls and joins go
// through it, so a session created on one node is listed, fetched and joined on any other, and a
// token is consumed once in the whole cluster (an atomic Redis script). Operations on a participant
// held by another node (forceDisconnect, forceUnpublish, PATCH, REST signals, closing a session)
// travel to that node over Redis pub/sub.
//
// The session model stays the one owner of lifecycle and events: the Node listens to its events
// and writes what changed to Redis from its own goroutine, never while the model's lock is held.
// Redis is never called under a lock of the model or of this package's state.
//
// It must not import api, signaling, edge or server (they sit above the session model) nor sfu or
// turn (media crosses nodes through the session model's interfaces, not through this package).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley/parley/internal/session"
)

// Defaults of Config.
const (
	// DefaultHeartbeat is how often a node renews its entry in the registry.
	DefaultHeartbeat = 2 * time.Second
	// DefaultNodeTTL is how long an entry lives without a heartbeat: five missed beats, so a busy
	// Redis or a paused process is not taken for a dead node.
	DefaultNodeTTL = 10 * time.Second
	// DefaultTimeout bounds every Redis call made on behalf of a request, so an unreachable Redis
	// costs a REST call or a join a clear error after this long instead of hanging it.
	DefaultTimeout = 3 * time.Second
	// maxDirty bounds the sessions waiting to be written to Redis (a node holds far fewer); past
	// it, a change is logged and not written.
	maxDirty = 100_000
)

// Config configures a Node.
type Config struct {
	// RedisURL is PARLEY_REDIS_URL (redis:// or rediss://, password, database).
	RedisURL string
	// NodeID is PARLEY_NODE_ID.
	NodeID string
	// MediaAddrs are this node's public media addresses (host:port), shown in the registry.
	MediaAddrs []string
	// Load, optional, reports this node's load (active participants) for the registry.
	Load func() int
	// Prefix starts every Redis key and channel name (default "parley:"); tests use their own.
	Prefix string
	// Heartbeat, NodeTTL and Timeout default to DefaultHeartbeat, DefaultNodeTTL, DefaultTimeout.
	Heartbeat, NodeTTL, Timeout time.Duration
	// Now is the clock of the registry's expiry and of garbage collection; tests may replace it.
	Now func() time.Time
	// RestoreWindow is how long a lost node's participants can be restored on another node
	// (default DefaultRestoreWindow).
	RestoreWindow time.Duration
	// GarbageInterval and GarbageThreshold are OPENVIDU_SESSIONS_GARBAGE_INTERVAL and _THRESHOLD:
	// every interval, sessions older than the threshold with nobody in them on any node are
	// removed from the shared record (each node's model collects its own copy). Interval 0: never.
	GarbageInterval, GarbageThreshold time.Duration
}

// Model is what a Node needs of this node's session model; *session.Manager satisfies it.
type Model interface {
	CreateSession(p session.Properties) (session.SessionInfo, error)
	Sessions(pending bool) []session.SessionInfo
	Room(id session.SessionID) session.Room
	Join(id session.SessionID, token string, j session.JoinInfo, sink session.Sink) (*session.Participant, session.JoinResult, error)
	AdoptSession(si session.SessionInfo) error
	AdoptConnection(id session.SessionID, ci session.ConnectionInfo) error
	DropReplica(id session.SessionID) bool
	Restore(id session.SessionID, ci session.ConnectionInfo, j session.JoinInfo, sink session.Sink) (*session.Participant, session.JoinResult, error)
	Listen(l session.Listener)
	// Mirrors of other nodes' participants (session/mirror.go).
	MirrorJoined(id session.SessionID, node string, ci session.ConnectionInfo) error
	MirrorLeft(id session.SessionID, cid session.ConnectionID, reason string)
	Mirrors(id session.SessionID) []session.ConnectionID
	MirrorPublished(id session.SessionID, cid session.ConnectionID, si session.StreamInfo)
	MirrorUnpublished(id session.SessionID, cid session.ConnectionID, sid session.StreamID, reason string)
	MirrorPropertyChanged(id session.SessionID, cid session.ConnectionID, sid session.StreamID, p session.PropertyChange) error
	MirrorSignal(id session.SessionID, sig session.Signal)
	MirrorRecording(r session.RecordingInfo)
	DropNode(node, reason string)
}

var _ Model = (*session.Manager)(nil)

// Node is this node's membership of the cluster and the cluster-wide face of its session model.
type Node struct {
	cfg   Config
	id    string
	rdb   *redis.Client
	where string // what rdb dials, without credentials
	m     Model
	log   *slog.Logger
	keys  keys
	sub   *redis.PubSub
	wake  chan struct{}
	mu    sync.Mutex // guards dirty, outgoing, dropped; never held across a Redis call
	dirty map[session.SessionID]dirt
	// outgoing are mirror messages to publish once the record shows them (mirror.go); dropped
	// counts those lost to its bound.
	outgoing []message
	dropped  uint64
	// linkHandler takes inter-node media signalling (OnLink).
	linkHandler func(from string, payload []byte) error
	// flushing makes Flush calls one at a time, so a Flush that returns has seen every write of
	// the changes noted before it began (Run's included) complete.
	flushing sync.Mutex
	// reporters get the events this node reports for the cluster (report.go).
	reporters reporters
	// registered is set by the first heartbeat: a later one that finds this node missing from
	// the registry rewrites what it holds.
	registered atomic.Bool
	// recs is the cluster face of this node's recorder, once Recordings made it (recordings.go).
	recs atomic.Pointer[Recordings]
	// suspects are the nodes checkDeparted saw without a connection to Redis (Run's own).
	suspects map[string]suspect
	// own are the recordings this node runs as rs:<session> says (written by this node), shown
	// the recordings of other nodes this node's participants are shown, by session (recsync.go).
	// Guarded by mu; at most one entry per session of this node.
	own, shown map[session.SessionID]session.RecordingInfo
}

// dirt is what changed in one session since it was last written.
type dirt struct {
	left []session.ConnectionID
	// ended is the reason the session ended on this node ("" while it lives here), endedAt when.
	ended   string
	endedAt time.Time
	// changed are the participants here whose records are to be written again; all: every one.
	changed map[session.ConnectionID]bool
	all     bool
	// rec is the newest start or end of a recording of the session here, to write to P rs:.
	rec *session.RecordingInfo
}

// New connects to Redis, subscribes to the cluster's messages and registers as m's listener. It
// fails when Redis cannot be reached: a node that cannot see the others must not serve alone.
func New(ctx context.Context, cfg Config, m Model, log *slog.Logger) (*Node, error) {
	if cfg.NodeID == "" {
		return nil, errors.New("cluster: a node id is required (PARLEY_NODE_ID)")
	}
	rdb, where, err := dial(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "parley:"
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.NodeTTL <= 0 {
		cfg.NodeTTL = DefaultNodeTTL
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RestoreWindow <= 0 {
		cfg.RestoreWindow = DefaultRestoreWindow
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		cfg: cfg, id: cfg.NodeID, rdb: rdb, where: where, m: m, log: log.With("node", cfg.NodeID),
		keys: keys{cfg.Prefix}, wake: make(chan struct{}, 1), dirty: map[session.SessionID]dirt{},
		suspects: map[string]suspect{}, own: map[session.SessionID]session.RecordingInfo{}, shown: map[session.SessionID]session.RecordingInfo{},
	}
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := n.rdb.Ping(cctx).Err(); err != nil {
		_ = n.rdb.Close()
		return nil, fmt.Errorf("cluster: redis at %s: %w", where, err)
	}
	// Subscribe before serving: a message sent once New returned reaches this node. Its own
	// channel carries nothing: subscribed, it shows others this node's connection is alive.
	n.sub = n.rdb.Subscribe(cctx, n.keys.channel(), n.keys.nodeChannel(n.id))
	for range 2 { // one confirmation per channel
		if _, err := n.sub.Receive(cctx); err != nil {
			_ = n.sub.Close()
			_ = n.rdb.Close()
			return nil, fmt.Errorf("cluster: subscribe: %w", err)
		}
	}
	if err := n.Heartbeat(cctx); err != nil {
		_ = n.sub.Close()
		_ = n.rdb.Close()
		return nil, err
	}
	m.Listen(n.listen)
	return n, nil
}

// dial makes the Redis client of PARLEY_REDIS_URL: one server, or with master_name the master
// that Sentinels name (go-redis's FailoverClient, which follows their failovers):
//
//	redis://[:password@]sentinel1:26379[/db]?master_name=mymaster&addr=sentinel2:26379&addr=sentinel3:26379
//
// The password is the Sentinels' and, unless a password query parameter gives another, the
// master's. where names what is dialled, for errors (never the password).
func dial(raw string) (rdb *redis.Client, where string, err error) {
	// go-redis may echo the URL, password included: say what is wrong without it.
	bad := errors.New("cluster: PARLEY_REDIS_URL is not a valid redis:// or rediss:// URL")
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", bad
	}
	if u.Query().Has("master_name") {
		fo, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, "", bad
		}
		if fo.Password == "" {
			fo.Username, fo.Password = fo.SentinelUsername, fo.SentinelPassword
		}
		return redis.NewFailoverClient(fo), "master " + fo.MasterName + " of sentinels " + strings.Join(fo.SentinelAddrs, ","), nil
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, "", bad
	}
	return redis.NewClient(opts), opts.Addr, nil
}

// Redis names the Redis this node uses (address, or master and Sentinels), without credentials.
func (n *Node) Redis() string { return n.where }

// ID returns this node's id.
func (n *Node) ID() string { return n.id }

// Run heartbeats, receives other nodes' messages and writes this node's changes to Redis until ctx
// ends; then it leaves the registry.
func (n *Node) Run(ctx context.Context) error {
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	var gc <-chan time.Time
	if n.cfg.GarbageInterval > 0 {
		gt := time.NewTicker(n.cfg.GarbageInterval)
		defer gt.Stop()
		gc = gt.C
	}
	// With subscriptions: go-redis resubscribes after it lost its connection to Redis, and the
	// confirmation says messages may have been missed meanwhile.
	msgs := n.sub.ChannelWithSubscriptions()
	if r := n.recs.Load(); r != nil {
		go r.run(ctx)
		defer r.wg.Wait()
	}
	for {
		select {
		case <-ctx.Done():
			n.leave()
			return nil
		case <-gc:
			if err := n.CollectGarbage(ctx); err != nil {
				n.log.Warn("cluster: garbage collection failed", "err", err)
			}
		case <-t.C:
			if err := n.Heartbeat(ctx); err != nil {
				n.log.Warn("cluster heartbeat failed", "err", err)
			}
			n.Flush(ctx) // changes whose write failed are retried here
			// Notice lost nodes (Nodes forgets expired entries; checkDeparted, those whose process
			// is gone, sooner) and end what they left behind.
			if _, err := n.Nodes(ctx); err != nil {
				n.log.Warn("cluster: checking the registry failed", "err", err)
			}
			if err := n.checkDeparted(ctx); err != nil {
				n.log.Warn("cluster: checking the nodes' connections failed", "err", err)
			}
			if err := n.collectLost(ctx); err != nil {
				n.log.Warn("cluster: ending lost sessions failed", "err", err)
			}
		case <-n.wake:
			n.Flush(ctx)
		case msg, ok := <-msgs:
			if !ok {
				return nil
			}
			switch m := msg.(type) {
			case *redis.Message:
				n.handle(ctx, m.Payload)
			case *redis.Subscription:
				// New consumed the first confirmations: this is a resubscription.
				if m.Kind == "subscribe" && m.Channel == n.keys.channel() {
					if err := n.resyncMirrors(ctx); err != nil {
						n.log.Warn("cluster: catching up with other nodes' participants after a reconnection to Redis failed", "err", err)
					}
					if err := n.resyncRecordings(ctx); err != nil {
						n.log.Warn("cluster: catching up with recordings after a reconnection to Redis failed", "err", err)
					}
				}
			}
		}
	}
}

// Close releases the connection to Redis. Call it after Run returned.
func (n *Node) Close() error {
	return errors.Join(n.sub.Close(), n.rdb.Close())
}

// leave removes this node from the registry at a clean shutdown, so others stop counting it at
// once rather than after NodeTTL.
func (n *Node) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout)
	defer cancel()
	n.Flush(ctx)
	if err := n.endOwnRecordings(ctx); err != nil {
		n.log.Warn("cluster: ending this node's recordings for the cluster failed", "err", err)
	}
	// As if expired: the entry goes, and so do the participants the model did not get to remove.
	if err := n.lose(ctx, []string{n.id}, "1e300", false); err != nil {
		n.log.Warn("cluster: leaving the registry failed", "err", err)
	}
}

// op bounds one Redis call made for a request.
func (n *Node) op() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), n.cfg.Timeout)
}
