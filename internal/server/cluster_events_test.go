package server

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/poll"
)

// eventCount counts reported events by "<event> <sessionId>".
type eventCount map[string]int

func (c eventCount) String() string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		out = append(out, fmt.Sprintf("%s=%d", k, c[k]))
	}
	return fmt.Sprint(out)
}

func hookCount(r *hookReceiver) eventCount {
	c := eventCount{}
	for _, b := range r.received() {
		c[fmt.Sprint(b["event"], " ", b["sessionId"])]++
	}
	return c
}

func cdrCount(t *testing.T, dirs ...string) eventCount {
	c := eventCount{}
	for _, d := range dirs {
		for _, rec := range cdrRecords(t, d) {
			for name, f := range rec {
				c[fmt.Sprint(name, " ", f["sessionId"])]++
			}
		}
	}
	return c
}

// TestClusterReportsEachEventOnce: two nodes send webhooks to one receiver and keep a CDR each; a
// session spread over both is reported as one OpenVidu server would report it: sessionCreated and
// sessionDestroyed once, each participant's events once (by its node), a REST signal once.
func TestClusterReportsEachEventOnce(t *testing.T) {
	t.Parallel()
	hooks := newHookReceiver(t)
	cdrDir := t.TempDir()
	_, bases := startClusterEnv(t, func(id, _ string) []string {
		return webhookEnv(hooks.srv.URL, filepath.Join(cdrDir, id))
	}, "node-a", "node-b")
	a, b := bases[0], bases[1]
	api := func(base string) string { return base + "/openvidu/api" }

	// "ended": created on A, one participant on each node, a REST signal through B, everyone leaves.
	if st, _ := rest(t, "POST", api(a)+"/sessions", map[string]any{"customSessionId": "ended"}); st != 200 {
		t.Fatalf("create on A: %d", st)
	}
	onA, _ := join(t, a, "ended", "PUBLISHER")
	onB, _ := join(t, b, "ended", "PUBLISHER")
	if st, _ := rest(t, "POST", api(b)+"/signal", map[string]any{"session": "ended", "type": "chat", "data": "to all"}); st != 200 {
		t.Fatalf("signal through B: %d", st)
	}
	onA.waitNote("sendMessage", func(p map[string]any) bool { return p["data"] == "to all" })
	onB.waitNote("sendMessage", func(p map[string]any) bool { return p["data"] == "to all" })
	onA.result("leaveRoom", nil)
	onB.result("leaveRoom", nil)

	// "closed": created on B, one participant on each node, closed through A.
	if st, _ := rest(t, "POST", api(b)+"/sessions", map[string]any{"customSessionId": "closed"}); st != 200 {
		t.Fatalf("create on B: %d", st)
	}
	onA2, _ := join(t, a, "closed", "PUBLISHER")
	onB2, _ := join(t, b, "closed", "PUBLISHER")
	if st, _ := rest(t, "DELETE", api(a)+"/sessions/closed", nil); st != 204 {
		t.Fatalf("close through A: %d", st)
	}
	for _, c := range []*rpcClient{onA2, onB2} {
		c.waitNote("participantEvicted", func(p map[string]any) bool { return p["reason"] == "sessionClosedByServer" })
	}

	want := eventCount{
		"sessionCreated ended": 1, "participantJoined ended": 2, "signalSent ended": 1, "participantLeft ended": 2, "sessionDestroyed ended": 1,
		"sessionCreated closed": 1, "participantJoined closed": 2, "participantLeft closed": 2, "sessionDestroyed closed": 1,
	}
	poll.Until(t, 20*time.Second, "every event reported", func() bool {
		got := hookCount(hooks)
		for k, n := range want {
			if got[k] < n {
				return false
			}
		}
		return true
	})
	// Each node reports in order: once a marker created after everything else arrives from both
	// nodes, anything either would have sent twice has arrived too.
	for i, base := range bases {
		if st, _ := rest(t, "POST", api(base)+"/sessions", map[string]any{"customSessionId": fmt.Sprint("marker-", i)}); st != 200 {
			t.Fatalf("marker: %d", st)
		}
		want[fmt.Sprint("sessionCreated marker-", i)] = 1
	}
	nodeDirs := []string{filepath.Join(cdrDir, "node-a"), filepath.Join(cdrDir, "node-b")}
	poll.Until(t, 20*time.Second, "the markers reported by webhook and CDR", func() bool {
		h, c := hookCount(hooks), cdrCount(t, nodeDirs...)
		return h["sessionCreated marker-0"] > 0 && h["sessionCreated marker-1"] > 0 && c["sessionCreated marker-0"] > 0 && c["sessionCreated marker-1"] > 0
	})
	if got := hookCount(hooks); !maps.Equal(got, want) {
		t.Errorf("webhooks received %v\nwant %v", got, want)
	}
	if got := cdrCount(t, nodeDirs...); !maps.Equal(got, want) {
		t.Errorf("CDR lines of both nodes %v\nwant %v", got, want)
	}
	for _, body := range hooks.received() {
		switch fmt.Sprint(body["event"], " ", body["sessionId"]) {
		case "sessionDestroyed ended":
			if body["reason"] != "lastParticipantLeft" {
				t.Errorf("sessionDestroyed of ended: %v", body)
			}
		case "sessionDestroyed closed":
			if body["reason"] != "sessionClosedByServer" {
				t.Errorf("sessionDestroyed of closed: %v", body)
			}
		case "signalSent ended":
			if to, _ := body["to"].([]any); len(to) != 2 || body["from"] != nil && body["from"] != "" {
				t.Errorf("signalSent: %v; want both participants as recipients, from the server", body)
			}
		}
	}
}

// TestClusterConfigShowsNodes: GET /openvidu/api/config on any node names it, its Redis (without
// the password) and every live node with its media addresses.
func TestClusterConfigShowsNodes(t *testing.T) {
	t.Parallel()
	_, bases := startClusterEnv(t, nil, "node-a", "node-b")
	st, cfg := rest(t, "GET", bases[1]+"/openvidu/api/config", nil)
	c, _ := cfg["PARLEY_CLUSTER"].(map[string]any)
	if st != 200 || c == nil || c["node"] != "node-b" {
		t.Fatalf("config on B: %d %v", st, cfg)
	}
	if r, _ := c["redis"].(string); !strings.HasPrefix(r, "127.0.0.1:") || strings.Contains(fmt.Sprint(cfg), "test-pass") {
		t.Errorf("redis shown as %q (the password must not show)", r)
	}
	nodes, _ := c["nodes"].([]any)
	var ids []string
	for _, n := range nodes {
		m, _ := n.(map[string]any)
		if addrs, _ := m["mediaAddrs"].([]any); len(addrs) == 0 {
			t.Errorf("node without media addresses: %v", m)
		}
		ids = append(ids, fmt.Sprint(m["id"]))
	}
	if !slices.Equal(ids, []string{"node-a", "node-b"}) {
		t.Errorf("nodes %v, want node-a and node-b", ids)
	}
}
