package config

import (
	"os"
	"strings"
	"testing"
)

func TestCluster(t *testing.T) {
	t.Parallel()
	t.Run("off by default", func(t *testing.T) {
		c := mustLoad(t, "")
		host, _ := os.Hostname()
		if c.Cluster.RedisURL != "" || c.Cluster.NodeID != host {
			t.Fatalf("cluster = %+v, want no Redis and node id %q", c.Cluster, host)
		}
	})
	t.Run("configured", func(t *testing.T) {
		c := mustLoad(t, "", "PARLEY_REDIS_URL", "rediss://:pw@redis.example:6380/2", "PARLEY_NODE_ID", "node-a.1")
		if c.Cluster.RedisURL != "rediss://:pw@redis.example:6380/2" || c.Cluster.NodeID != "node-a.1" {
			t.Fatalf("cluster = %+v", c.Cluster)
		}
	})
	for _, tc := range []struct{ name, url, node, want string }{
		{"scheme", "http://redis:6379", "a", "redis:// or rediss://"},
		{"no host", "redis://", "a", "no host"},
		{"database", "redis://redis:6379/x", "a", "database number"},
		{"node id", "redis://redis:6379/0", "a b", "PARLEY_NODE_ID"},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			msg := loadErr(t, "PARLEY_REDIS_URL", tc.url, "PARLEY_NODE_ID", tc.node)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not say %q", msg, tc.want)
			}
		})
	}
	t.Run("never echoes the password", func(t *testing.T) {
		if msg := loadErr(t, "PARLEY_REDIS_URL", "http://:hunter2@redis:6379"); strings.Contains(msg, "hunter2") {
			t.Fatalf("error %q shows the password", msg)
		}
	})
}
