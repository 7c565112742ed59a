package cluster

import (
	"context"
	"fmt"
	"strconv"

	"github.com/parley/parley/internal/session"
)

// CollectGarbage removes from the shared record the sessions older than GarbageThreshold that have
// no participant on any node, as OpenVidu's garbage collector does on one node. Each node's model
// forgets its own copy silently, so without this a session nobody joined would stay listed on
// every node for ever. Every node runs it; the removal is atomic, so two at once remove it once.
func (n *Node) CollectGarbage(ctx context.Context) error {
	cutoff := strconv.FormatInt(n.cfg.Now().Add(-n.cfg.GarbageThreshold).UnixMilli(), 10)
	ids, err := n.rdb.ZRangeArgs(ctx, zrange(n.keys.sessions(), "-inf", cutoff)).Result()
	if err != nil {
		return fmt.Errorf("cluster: garbage: %w", err)
	}
	for _, s := range ids {
		id := session.SessionID(s)
		if si, err := n.m.Room(id).Info(false); err == nil && si.Recording {
			continue // a recording outlives its participants until its autostop
		}
		if _, err := n.rdb.ZScore(ctx, n.keys.lostSessions(), s).Result(); err == nil {
			continue // a lost node's participants may be restored into it (collectLost ends it)
		}
		// Reported by nobody, as OpenVidu's collector reports nothing on one node.
		_, err := destroyIfEmptyScript.Run(ctx, n.rdb, n.keys.sessionKeys(id), s, n.keys.p).Text()
		if err != nil && !isNil(err) {
			return fmt.Errorf("cluster: garbage: %w", err)
		}
		if err == nil {
			n.m.DropReplica(id)
			if err := n.publish(ctx, message{Kind: msgGone, Session: id}); err != nil {
				return fmt.Errorf("cluster: garbage: %w", err)
			}
			n.log.Info("session garbage-collected", "session", id)
		}
	}
	return nil
}
