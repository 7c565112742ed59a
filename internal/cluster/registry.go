package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// NodeInfo is one node as the registry shows it.
type NodeInfo struct {
	ID string `json:"id"`
	// MediaAddrs are the node's public media addresses (host:port).
	MediaAddrs []string `json:"mediaAddrs"`
	// Load is the node's active participants at its last heartbeat.
	Load int `json:"load"`
	// Seen is the node's last heartbeat, by its own clock.
	Seen time.Time `json:"seen"`
}

// The registry is a sorted set of node ids scored by when each entry expires (milliseconds of the
// writer's clock) and a hash of their NodeInfo. Expiry is decided by the score, not by Redis key
// TTLs, so the clock is the nodes' (and a test's) and one hash holds every node.

// Heartbeat renews this node's entry for NodeTTL.
func (n *Node) Heartbeat(ctx context.Context) error {
	now := n.cfg.Now()
	info := NodeInfo{ID: n.id, MediaAddrs: n.cfg.MediaAddrs, Seen: now}
	if n.cfg.Load != nil {
		info.Load = n.cfg.Load()
	}
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	var added *redis.IntCmd
	_, err = n.rdb.TxPipelined(ctx, func(p redisPipe) error {
		p.HSet(ctx, n.keys.nodeInfo(), n.id, b)
		added = p.ZAdd(ctx, n.keys.nodes(), zmember(float64(now.Add(n.cfg.NodeTTL).UnixMilli()), n.id))
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: heartbeat: %w", err)
	}
	if added.Val() == 1 && n.registered.Swap(true) {
		// This node was registered and is not any more: Redis lost its data (restarted without
		// persistence, failed over to an empty replica) or the others took this node for lost.
		// Its sessions and participants are written again, so the others see them.
		n.log.Warn("cluster: this node was missing from the registry; writing its sessions and participants again")
		return n.rewrite(ctx)
	}
	return nil
}

// rewrite writes again the record of every session this node has participants in, and of those
// participants. Sessions without a participant here, and pending tokens, are not known here well
// enough to be written back: a Redis that may lose its data needs persistence.
func (n *Node) rewrite(ctx context.Context) error {
	for _, si := range n.m.Sessions(false) {
		if len(si.Connections) == 0 {
			continue
		}
		rec, err := json.Marshal(sessionRecord{ID: si.ID, CreatedAt: si.CreatedAt, Props: si.Props, Node: n.id})
		if err != nil {
			return err
		}
		if err := createSessionScript.Run(ctx, n.rdb, n.keys.sessionKeys(si.ID), rec, si.CreatedAt.UnixMilli(), string(si.ID)).Err(); err != nil {
			return fmt.Errorf("cluster: rewrite: %w", err)
		}
		for _, c := range si.Connections {
			if _, err := n.activate(ctx, si.ID, c, "rewrite"); err != nil {
				return fmt.Errorf("cluster: rewrite: %w", err)
			}
		}
	}
	if err := n.rewriteRecordings(ctx); err != nil {
		return fmt.Errorf("cluster: rewrite: %w", err)
	}
	return nil
}

// Nodes returns the live nodes, by id, and forgets the entries that expired.
func (n *Node) Nodes(ctx context.Context) ([]NodeInfo, error) {
	now := strconv.FormatInt(n.cfg.Now().UnixMilli(), 10)
	expired, err := n.rdb.ZRangeArgs(ctx, zrange(n.keys.nodes(), "-inf", now)).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: nodes: %w", err)
	}
	if len(expired) > 0 {
		// Another node may renew between the read and the removal: remove only what is still
		// expired, and let its info go with it only if it did not come back.
		if err := n.lose(ctx, expired, now, true); err != nil {
			return nil, err
		}
	}
	live, err := n.rdb.ZRangeArgs(ctx, zrange(n.keys.nodes(), "("+now, "+inf")).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: nodes: %w", err)
	}
	if len(live) == 0 {
		return []NodeInfo{}, nil
	}
	raw, err := n.rdb.HMGet(ctx, n.keys.nodeInfo(), live...).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: nodes: %w", err)
	}
	out := make([]NodeInfo, 0, len(live))
	for i, r := range raw {
		s, ok := r.(string)
		var ni NodeInfo
		if !ok || json.Unmarshal([]byte(s), &ni) != nil {
			ni = NodeInfo{ID: live[i]}
		}
		out = append(out, ni)
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return cmpString(a.ID, b.ID) })
	return out, nil
}

// suspect is a node seen in the registry without a connection to Redis (nobody subscribed to its
// channel): its entry's score then, and when this node saw it so.
type suspect struct {
	score float64
	since time.Time
}

// checkDeparted forgets, well before their entries expire, the nodes whose process is gone: Redis
// drops a node's subscription to its own channel the moment its connections close (the process
// died, or was killed), so a registered node with no subscriber that has not renewed its entry for
// two heartbeats is gone (found at the second or third check after it died: 4-6 s with the default
// heartbeat, where its entry lives 10 s). A live node always renews its entry (its heartbeat runs
// on another connection than its subscription, which go-redis re-establishes after a Redis restart),
// and a paused one keeps its connections: neither is taken for gone; both are left to NodeTTL.
// Only Run's goroutine calls it (n.suspects is its own).
func (n *Node) checkDeparted(ctx context.Context) error {
	now := n.cfg.Now()
	live, err := n.rdb.ZRangeArgsWithScores(ctx, zrange(n.keys.nodes(), "("+strconv.FormatInt(now.UnixMilli(), 10), "+inf")).Result()
	if err != nil {
		return fmt.Errorf("cluster: nodes: %w", err)
	}
	scores := map[string]float64{}
	var chans []string
	for _, z := range live {
		if id, _ := z.Member.(string); id != "" && id != n.id {
			scores[id] = z.Score
			chans = append(chans, n.keys.nodeChannel(id))
		}
	}
	for id := range n.suspects {
		if _, ok := scores[id]; !ok {
			delete(n.suspects, id)
		}
	}
	if len(chans) == 0 {
		return nil
	}
	subs, err := n.rdb.PubSubNumSub(ctx, chans...).Result()
	if err != nil {
		return fmt.Errorf("cluster: node subscriptions: %w", err)
	}
	for id, score := range scores {
		if subs[n.keys.nodeChannel(id)] > 0 {
			delete(n.suspects, id)
			continue
		}
		s, seen := n.suspects[id]
		if !seen || s.score != score {
			n.suspects[id] = suspect{score: score, since: now}
			continue
		}
		if now.Sub(s.since) < 2*n.cfg.Heartbeat {
			continue
		}
		delete(n.suspects, id)
		// Forgotten only if its entry is still the one seen: a heartbeat since keeps it.
		if err := n.lose(ctx, []string{id}, strconv.FormatFloat(score, 'f', -1, 64), true); err != nil {
			return err
		}
	}
	return nil
}
