package cluster

import (
	"cmp"
	"context"
	"crypto/sha1" // matches Lua's redis.sha1hex; it names a key, it protects nothing
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley/parley/internal/session"
)

// Redis layout, every name under Config.Prefix (P):
//
//	P nodes          sorted set: node id → expiry (ms)          registry.go
//	P nodeinfo       hash: node id → NodeInfo JSON
//	P n:<node>       set: "<session>\n<connection>" of the participants the node holds
//	P sessions       sorted set: session id → creation (ms), the listing order
//	P s:<session>    string: sessionRecord JSON
//	P c:<session>    hash: connection id → connRecord JSON, pending and active
//	P a:<session>    set: connection ids of the active participants
//	P rs:<session>   string: recRecord JSON of the recording running on a node, while it runs,
//	                 so a node that makes its copy of the session during it shows it  sync.go
//	P t:<sha1(token)> string: "<session>\n<connection>" while the token is unused
//	P r:<rpc>        string: "<session>\n<connection>" of an active participant's JSON-RPC session
//	P x:<session>    hash: connection id → connRecord JSON of participants of a lost node, kept
//	                 for RestoreWindow so they can be restored on another node       failover.go
//	P lost           sorted set: session id → when its lost participants' window ends
//	P events         pub/sub channel of messages between nodes            messages.go
//	P node:<node>    pub/sub channel each node subscribes to: its subscriber count says whether
//	                 the node's connection to Redis is alive                     failover.go
//
// Multi-key changes are Lua scripts, so each is atomic: above all the token claim, which makes a
// token single-use in the whole cluster.
type keys struct{ p string }

func (k keys) nodes() string                       { return k.p + "nodes" }
func (k keys) nodeInfo() string                    { return k.p + "nodeinfo" }
func (k keys) held(node string) string             { return k.p + "n:" + node }
func (k keys) sessions() string                    { return k.p + "sessions" }
func (k keys) session(id session.SessionID) string { return k.p + "s:" + string(id) }
func (k keys) conns(id session.SessionID) string   { return k.p + "c:" + string(id) }
func (k keys) active(id session.SessionID) string  { return k.p + "a:" + string(id) }
func (k keys) sessionRecording(id session.SessionID) string {
	return k.p + "rs:" + string(id)
}
func (k keys) token(token string) string        { return k.p + "t:" + tokenHash(token) }
func (k keys) channel() string                  { return k.p + "events" }
func (k keys) nodeChannel(node string) string   { return k.p + "node:" + node }
func (k keys) rpc(rpc string) string            { return k.p + "r:" + rpc }
func (k keys) lost(id session.SessionID) string { return k.p + "x:" + string(id) }
func (k keys) lostSessions() string             { return k.p + "lost" }
func (k keys) sessionKeys(id session.SessionID) []string {
	return []string{k.session(id), k.conns(id), k.active(id), k.sessions()}
}

func tokenHash(token string) string {
	h := sha1.Sum([]byte(token))
	return hex.EncodeToString(h[:])
}

// sessionRecord is a session as the cluster shares it.
type sessionRecord struct {
	ID        session.SessionID
	CreatedAt time.Time
	Props     session.Properties
	// Node created it.
	Node string
	// recording is the recording a node runs of the session (P rs:<session>), read with it; not
	// part of the record's JSON.
	recording *recRecord
}

func (r sessionRecord) info() session.SessionInfo {
	return session.SessionInfo{ID: r.ID, CreatedAt: r.CreatedAt, Props: r.Props, Connections: []session.ConnectionInfo{}}
}

// connRecord is a connection as the cluster shares it.
type connRecord struct {
	Info session.ConnectionInfo
	// Node holds the participant; empty while the connection is pending.
	Node string
	// RPC is the participant's JSON-RPC session (session.ConnectionInfo.RPC), which its
	// `connect` names when it comes back to another node after Node was lost.
	RPC string `json:",omitempty"`
}

func activeRecord(ci session.ConnectionInfo, node string) connRecord {
	return connRecord{Info: ci, Node: node, RPC: ci.RPC}
}

func byCreation(a, b session.ConnectionInfo) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
}

type redisPipe = redis.Pipeliner

func zmember(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }
func zrange(key, lo, hi string) redis.ZRangeArgs {
	return redis.ZRangeArgs{Key: key, Start: lo, Stop: hi, ByScore: true}
}
func isNil(err error) bool      { return errors.Is(err, redis.Nil) }
func cmpString(a, b string) int { return cmp.Compare(a, b) }

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// dropLua deletes a session's record; KEYS are sessionKeys, ARGV[1] the id, ARGV[2] the prefix.
// Tokens of its pending connections go with it, and so do the participants' entries in their
// nodes' sets.
const dropLua = `
local function drop()
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    local ok, r = pcall(cjson.decode, all[i+1])
    if ok and type(r) == 'table' and type(r.Info) == 'table' then
      if type(r.Info.Token) == 'string' then redis.call('DEL', ARGV[2] .. 't:' .. redis.sha1hex(r.Info.Token)) end
      if type(r.Node) == 'string' and r.Node ~= '' then redis.call('SREM', ARGV[2] .. 'n:' .. r.Node, ARGV[1] .. '\n' .. all[i]) end
      if type(r.RPC) == 'string' then redis.call('DEL', ARGV[2] .. 'r:' .. r.RPC) end
    end
  end
  local lost = redis.call('HGETALL', ARGV[2] .. 'x:' .. ARGV[1])
  for i = 2, #lost, 2 do
    local ok, r = pcall(cjson.decode, lost[i])
    if ok and type(r) == 'table' and type(r.RPC) == 'string' then redis.call('DEL', ARGV[2] .. 'r:' .. r.RPC) end
  end
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], ARGV[2] .. 'x:' .. ARGV[1], ARGV[2] .. 'rs:' .. ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZREM', ARGV[2] .. 'lost', ARGV[1])
end
`

var (
	// KEYS sessionKeys; ARGV record, score, id.
	createSessionScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[3])
  return 1
end
return 0`)

	// KEYS session, conns, token ('' for none); ARGV connection id, record, token value.
	createConnectionScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3]) end
return 1`)

	// KEYS rs:<session>; ARGV recording id. Forgets the session's running recording if it is
	// that one.
	endRecordingScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, r = pcall(cjson.decode, v)
if ok and type(r) == 'table' and type(r.Info) == 'table' and r.Info.ID ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`)

	// KEYS token, conns, active; ARGV session id. Returns the pending connection's record and
	// deletes the token, or nil: unknown, used, or of another session (then left alone).
	claimTokenScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local nl = string.find(v, '\n', 1, true)
if not nl or string.sub(v, 1, nl - 1) ~= ARGV[1] then return false end
local cid = string.sub(v, nl + 1)
redis.call('DEL', KEYS[1])
if redis.call('SISMEMBER', KEYS[3], cid) == 1 then return false end
return redis.call('HGET', KEYS[2], cid)`)

	// KEYS token, conns; ARGV connection id, token value. Gives a claimed token back when the
	// join failed on this node, if the connection still exists.
	restoreTokenScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then redis.call('SET', KEYS[1], ARGV[2]) end
return 1`)

	// KEYS session, conns, active, held, rpc; ARGV connection id, record, "<session>\n<connection>",
	// mode, this node. Marks a claimed connection active on this node, unless it was deleted
	// meanwhile. Mode "restore": one restored from a lost node, which left the record, only needs
	// the session; "rewrite": this node writes its participant again, unless another node holds
	// it now.
	activateScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[4] == 'rewrite' then
  local rec = redis.call('HGET', KEYS[2], ARGV[1])
  if rec then
    local ok, r = pcall(cjson.decode, rec)
    if ok and type(r) == 'table' and type(r.Node) == 'string' and r.Node ~= '' and r.Node ~= ARGV[5] then return 0 end
  end
elseif ARGV[4] ~= 'restore' and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[3])
if KEYS[5] ~= '' then redis.call('SET', KEYS[5], ARGV[3]) end
return 1`)

	// KEYS conns, active; ARGV connection id, record. Rewrites an active participant's record.
	updateActiveScript = redis.NewScript(`
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end
return 0`)

	// KEYS conns, active; ARGV connection id, record. Rewrites a connection still pending.
	updatePendingScript = redis.NewScript(`
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1
end
return 0`)

	// KEYS conns, active, held; ARGV connection id, "<session>\n<connection>", this node, prefix. A
	// participant left this node; a record another node holds (it was restored there) stays.
	leaveScript = redis.NewScript(`
redis.call('SREM', KEYS[3], ARGV[2])
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then return 0 end
local ok, r = pcall(cjson.decode, rec)
if ok and type(r) == 'table' then
  if type(r.Node) == 'string' and r.Node ~= '' and r.Node ~= ARGV[3] then return 0 end
  if type(r.RPC) == 'string' then redis.call('DEL', ARGV[4] .. 'r:' .. r.RPC) end
end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
return 1`)

	// KEYS sessionKeys; ARGV id, prefix. Destroys the session if nobody is active anywhere and no
	// live node records it, and returns its record (the caller reports the end), or nil. A
	// recorded session outlives its last participant, as on one node: the recording's node ends
	// it when the recording stops (automaticStop), as its recorder closes its copy.
	destroyIfEmptyScript = redis.NewScript(dropLua + `
local rec = redis.call('GET', KEYS[1])
if not rec or redis.call('SCARD', KEYS[3]) > 0 then return false end
local rs = redis.call('GET', ARGV[2] .. 'rs:' .. ARGV[1])
if rs then
  local ok, r = pcall(cjson.decode, rs)
  if ok and type(r) == 'table' and type(r.Node) == 'string' and redis.call('ZSCORE', ARGV[2] .. 'nodes', r.Node) then return false end
end
drop()
return rec`)

	// KEYS sessionKeys; ARGV id, prefix. Closes the session cluster-wide; returns its record, nil
	// if there was none.
	closeScript = redis.NewScript(dropLua + `
local rec = redis.call('GET', KEYS[1])
drop()
return rec`)

	// KEYS conns, active; ARGV connection id, prefix. Deletes a pending connection and its token
	// ("pending"), or names the node holding an active one ("@node"); nil if unknown.
	deleteConnectionScript = redis.NewScript(`
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then return false end
local ok, r = pcall(cjson.decode, rec)
if not ok or type(r) ~= 'table' or type(r.Info) ~= 'table' then redis.call('HDEL', KEYS[1], ARGV[1]) return 'pending' end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return '@' .. tostring(r.Node) end
if type(r.Info.Token) == 'string' then redis.call('DEL', ARGV[2] .. 't:' .. redis.sha1hex(r.Info.Token)) end
redis.call('HDEL', KEYS[1], ARGV[1])
return 'pending'`)

	// KEYS nodes, nodeinfo, lost; ARGV now (ms), prefix, restore window (ms), when the window
	// ends (ms), ids… Forgets the nodes still expired and the participants they held (their
	// sessions stay: others may be in them, tokens may be pending, and the participants may be
	// restored): each one's record moves to the session's lost hash for the window. Returns the
	// forgotten node ids and the moved records: {node, …} and {session, record, …}.
	forgetNodesScript = redis.NewScript(`
local gone, moved = {}, {}
for i = 5, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) <= tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
    table.insert(gone, ARGV[i])
    local held = ARGV[2] .. 'n:' .. ARGV[i]
    for _, m in ipairs(redis.call('SMEMBERS', held)) do
      local nl = string.find(m, '\n', 1, true)
      if nl then
        local sid, cid = string.sub(m, 1, nl - 1), string.sub(m, nl + 1)
        local rec = redis.call('HGET', ARGV[2] .. 'c:' .. sid, cid)
        if rec and redis.call('SISMEMBER', ARGV[2] .. 'a:' .. sid, cid) == 1 then
          redis.call('HSET', ARGV[2] .. 'x:' .. sid, cid, rec)
          redis.call('PEXPIRE', ARGV[2] .. 'x:' .. sid, ARGV[3])
          redis.call('ZADD', KEYS[3], ARGV[4], sid)
          local ok, r = pcall(cjson.decode, rec)
          if ok and type(r) == 'table' and type(r.RPC) == 'string' then redis.call('PEXPIRE', ARGV[2] .. 'r:' .. r.RPC, ARGV[3]) end
          table.insert(moved, sid)
          table.insert(moved, rec)
        end
        redis.call('SREM', ARGV[2] .. 'a:' .. sid, cid)
        redis.call('HDEL', ARGV[2] .. 'c:' .. sid, cid)
      end
    end
    redis.call('DEL', held)
  end
end
return {gone, moved}`)

	// KEYS session, lost; ARGV connection id. Takes a lost participant's record to restore it,
	// once; nil if its window passed, it was taken, or its session ended.
	claimLostScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local rec = redis.call('HGET', KEYS[2], ARGV[1])
if not rec then return false end
redis.call('HDEL', KEYS[2], ARGV[1])
return rec`)
)

// loadSession reads a session's record and connections; found is false if it does not exist.
func (n *Node) loadSession(ctx context.Context, id session.SessionID) (rec sessionRecord, conns []connRecord, found bool, err error) {
	p := n.rdb.Pipeline()
	sc := p.Get(ctx, n.keys.session(id))
	cc := p.HGetAll(ctx, n.keys.conns(id))
	rc := p.Get(ctx, n.keys.sessionRecording(id))
	if _, err := p.Exec(ctx); err != nil && !isNil(err) {
		return rec, nil, false, err
	}
	return decodeSession(sc, cc, rc)
}

func decodeSession(sc *redis.StringCmd, cc *redis.MapStringStringCmd, rc *redis.StringCmd) (rec sessionRecord, conns []connRecord, found bool, err error) {
	raw, err := sc.Result()
	if isNil(err) {
		return rec, nil, false, nil
	}
	if err != nil {
		return rec, nil, false, err
	}
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return rec, nil, false, err
	}
	rec.recording = decodeRecording(rec, rc.Val())
	for _, v := range cc.Val() {
		var cr connRecord
		if json.Unmarshal([]byte(v), &cr) == nil {
			conns = append(conns, cr)
		}
	}
	return rec, conns, true, nil
}

// loadConnection reads one connection's record.
func (n *Node) loadConnection(ctx context.Context, id session.SessionID, cid session.ConnectionID) (connRecord, bool, error) {
	var cr connRecord
	raw, err := n.rdb.HGet(ctx, n.keys.conns(id), string(cid)).Result()
	if isNil(err) {
		return cr, false, nil
	}
	if err != nil {
		return cr, false, err
	}
	if err := json.Unmarshal([]byte(raw), &cr); err != nil {
		return cr, false, err
	}
	return cr, true, nil
}

func heldMember(id session.SessionID, cid session.ConnectionID) string {
	return string(id) + "\n" + string(cid)
}

// decodeRecording reads the recording of P rs:<session> (raw, empty when none) of the session rec
// is the record of; nil when none runs, or when it was of an earlier session of the same id.
func decodeRecording(rec sessionRecord, raw string) *recRecord {
	var rr recRecord
	if raw == "" || json.Unmarshal([]byte(raw), &rr) != nil || !rr.Info.SessionCreatedAt.Equal(rec.CreatedAt) {
		return nil
	}
	return &rr
}
