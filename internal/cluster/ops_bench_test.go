package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/parley/parley/internal/cluster/redistest"
	"github.com/parley/parley/internal/session"
)

// commandCalls reads redis-server's INFO commandstats: calls by command, those run inside Lua
// scripts included (EVALSHA counts once more for the script itself).
func commandCalls(b *testing.B, rdb *redis.Client) (total int, byCmd map[string]int) {
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	byCmd = map[string]int{}
	for _, l := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(l), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		name = strings.TrimPrefix(name, "cmdstat_")
		if name == "info" || name == "config|resetstat" {
			continue // the measurement's own
		}
		byCmd[name] = n
		total += n
	}
	return total, byCmd
}

// BenchmarkRedisOps measures the Redis commands a cluster costs (the README's sizing note):
// creating a connection (REST), a join with its write-back, listing sessions (REST), and an idle
// node's heartbeat
// (registry, flush, lost-node checks), with 100 participants in one session over two nodes.
// Each join is flushed before the next, as Run writes it when the join's event wakes it.
// Run it once: go test -run '^$' -bench RedisOps -benchtime 1x ./internal/cluster/
func BenchmarkRedisOps(b *testing.B) {
	srv, err := redistest.Start()
	if err != nil {
		b.Skip(err.Error())
	}
	defer srv.Stop()
	opts, _ := redis.ParseURL(srv.URL)
	admin := redis.NewClient(opts)
	defer admin.Close()
	ctx := context.Background()
	for range b.N {
		var nodes []node
		for i := range 2 {
			m := session.NewManager(session.Options{WebSocketURL: "ws://parley.test/openvidu"})
			n, err := New(ctx, Config{RedisURL: srv.URL, NodeID: fmt.Sprint("node-", i), Prefix: fmt.Sprintf("bench:%d:", b.N)}, m, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			nodes = append(nodes, node{m: m, n: n})
		}
		si, err := nodes[0].n.CreateSession(session.Properties{})
		if err != nil {
			b.Fatal(err)
		}
		const participants = 100
		measure := func(what string, per int, f func()) (int, map[string]int) {
			if err := admin.ConfigResetStat(ctx).Err(); err != nil {
				b.Fatal(err)
			}
			f()
			total, by := commandCalls(b, admin)
			b.ReportMetric(float64(total)/float64(per), what)
			return total, by
		}
		tokens := make([]string, participants)
		measure("cmds/connection", participants, func() {
			for i := range tokens {
				ci, err := nodes[i%2].n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
				if err != nil {
					b.Fatal(err)
				}
				tokens[i] = ci.Token
			}
		})
		_, byJoin := measure("cmds/join", participants, func() {
			for i, tok := range tokens {
				on := nodes[(i+1)%2] // made on one node, joined on the other
				if _, _, err := on.n.Join(si.ID, tok, session.JoinInfo{RPC: fmt.Sprint("rpc-", i)}, &sink{}); err != nil {
					b.Fatal(err)
				}
				on.n.Flush(ctx) // as Run does when woken by the join's event
			}
		})
		// REST's session listing: one ZRANGE, then per session its record, connections and
		// running recording (pipelined), with 10 sessions of which one holds the 100.
		for range 9 {
			if _, err := nodes[1].n.CreateSession(session.Properties{}); err != nil {
				b.Fatal(err)
			}
		}
		const listings = 10
		_, byList := measure("cmds/listed-session", listings*10, func() {
			for range listings {
				if l := nodes[0].n.Sessions(false); len(l) != 10 {
					b.Fatalf("listed %d sessions, want 10", len(l))
				}
			}
		})
		const beats = 20
		_, byBeat := measure("cmds/heartbeat", beats*len(nodes), func() {
			for range beats {
				for _, nd := range nodes { // what Run does at each tick
					if err := nd.n.Heartbeat(ctx); err != nil {
						b.Fatal(err)
					}
					nd.n.Flush(ctx)
					if _, err := nd.n.Nodes(ctx); err != nil {
						b.Fatal(err)
					}
					if err := nd.n.collectLost(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Logf("per join (100): %v", byJoin)
		b.Logf("per %d listings of 10 sessions: %v", listings, byList)
		b.Logf("per %d heartbeats of each of 2 nodes: %v", beats, byBeat)
	}
}
