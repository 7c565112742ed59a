package config

import (
	"net/url"
	"os"
	"regexp"
	"strconv"
)

var nodeIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// parseCluster reads PARLEY_REDIS_URL and PARLEY_NODE_ID. The URL is checked here, so a typo stops
// start-up with the others; go-redis parses it again when it dials. Its password is never echoed.
func parseCluster(c *ClusterConfig, str func(name, def string) string, bad *problems) {
	c.RedisURL = str("PARLEY_REDIS_URL", "")
	if c.RedisURL != "" {
		if msg := checkRedisURL(c.RedisURL); msg != "" {
			*bad = append(*bad, "PARLEY_REDIS_URL is invalid: "+msg)
		}
	}
	host, _ := os.Hostname()
	c.NodeID = str("PARLEY_NODE_ID", host)
	// Checked only in a cluster: a lone node never uses it, whatever the host is called.
	if c.RedisURL != "" && !nodeIDRE.MatchString(c.NodeID) {
		bad.add("PARLEY_NODE_ID", c.NodeID, "letters, digits, '.', '_' and '-' (at most 64)")
	}
}

// checkRedisURL returns what is wrong with u, or "".
func checkRedisURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "not a URL (redis://[[user]:password@]host[:port][/db] or rediss://…)"
	}
	if p.Scheme != "redis" && p.Scheme != "rediss" {
		return "the scheme must be redis:// or rediss:// (TLS)"
	}
	if p.Hostname() == "" {
		return "no host"
	}
	if db := p.Path; db != "" && db != "/" {
		if n, err := strconv.Atoi(db[1:]); err != nil || n < 0 {
			return "the path must be a database number"
		}
	}
	return ""
}
