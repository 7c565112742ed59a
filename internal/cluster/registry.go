package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
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
	_, err = n.rdb.TxPipelined(ctx, func(p redisPipe) error {
		p.HSet(ctx, n.keys.nodeInfo(), n.id, b)
		p.ZAdd(ctx, n.keys.nodes(), zmember(float64(now.Add(n.cfg.NodeTTL).UnixMilli()), n.id))
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: heartbeat: %w", err)
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
