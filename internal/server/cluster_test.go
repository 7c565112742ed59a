package server

import (
	"errors"
	"testing"
	"time"

	"github.com/parley/parley/internal/cluster/redistest"
	"github.com/parley/parley/internal/poll"
)

// startCluster runs n Parley nodes in-process on one real redis-server (skipped, saying why, when
// redis-server is not installed; make test installs it).
func startCluster(t *testing.T, ids ...string) []string {
	t.Helper()
	_, bases := startClusterEnv(t, nil, ids...)
	return bases
}

// startClusterEnv is startCluster with each node's own settings (env(id), pairs of name and
// value), returning the redis-server too.
func startClusterEnv(t *testing.T, env func(id string) []string, ids ...string) (*redistest.Server, []string) {
	t.Helper()
	srv, err := redistest.Start()
	if errors.Is(err, redistest.ErrAbsent) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop) // after the nodes' own cleanups: they leave the registry on the way out
	var bases []string
	for _, id := range ids {
		over := []string{"PARLEY_REDIS_URL", srv.URL, "PARLEY_NODE_ID", id}
		if env != nil {
			over = append(over, env(id)...)
		}
		_, base := startServer(t, over...)
		bases = append(bases, base)
	}
	return srv, bases
}

// TestClusterAnyNodeAnswers drives two nodes as openvidu-node-client and openvidu-browser would:
// REST on one, the participant on the other.
func TestClusterAnyNodeAnswers(t *testing.T) {
	t.Parallel()
	bases := startCluster(t, "node-a", "node-b")
	a, b := bases[0], bases[1]

	if st, _ := rest(t, "POST", a+"/openvidu/api/sessions", map[string]any{"customSessionId": "spread"}); st != 200 {
		t.Fatalf("create on A: %d", st)
	}
	if st, _ := rest(t, "POST", b+"/openvidu/api/sessions", map[string]any{"customSessionId": "spread"}); st != 409 {
		t.Fatalf("create the same id on B: %d, want 409", st)
	}
	st, list := rest(t, "GET", b+"/openvidu/api/sessions", nil)
	if st != 200 || list["numberOfElements"] != float64(1) {
		t.Fatalf("list on B: %d %v", st, list)
	}
	if st, s := rest(t, "GET", b+"/openvidu/api/sessions/spread", nil); st != 200 || s["id"] != "spread" {
		t.Fatalf("fetch on B: %d %v", st, s)
	}

	// A token made on A joins on B, once.
	st, c := rest(t, "POST", a+"/openvidu/api/sessions/spread/connection", map[string]any{"role": "PUBLISHER"})
	if st != 200 {
		t.Fatalf("connection on A: %d", st)
	}
	onB := dial(t, b)
	r := onB.result("joinRoom", map[string]any{"token": c["token"], "session": "spread", "metadata": "{}", "platform": "test"})
	if r["id"] != c["id"] {
		t.Fatalf("joined on B as %v, want %v", r["id"], c["id"])
	}
	again := dial(t, a).call("joinRoom", map[string]any{"token": c["token"], "session": "spread", "metadata": "{}"})
	if e, _ := again["error"].(map[string]any); e == nil || e["code"] != float64(401) {
		t.Fatalf("second join on A: %v, want error 401", again)
	}
	cid := c["id"].(string)
	if st, conn := rest(t, "GET", a+"/openvidu/api/sessions/spread/connection/"+cid, nil); st != 200 || conn["status"] != "active" {
		t.Fatalf("the participant on B, fetched on A: %d %v", st, conn)
	}

	// A second participant joins on A with a token made on B.
	_, c2 := rest(t, "POST", b+"/openvidu/api/sessions/spread/connection", map[string]any{"role": "PUBLISHER"})
	onA := dial(t, a)
	onA.result("joinRoom", map[string]any{"token": c2["token"], "session": "spread", "metadata": "{}", "platform": "test"})

	// A forceDisconnect through A reaches B's participant; closing through B evicts A's.
	if st, _ := rest(t, "DELETE", a+"/openvidu/api/sessions/spread/connection/"+cid, nil); st != 204 {
		t.Fatalf("forceDisconnect on A: %d", st)
	}
	onB.waitNote("participantEvicted", func(p map[string]any) bool { return p["reason"] == "forceDisconnectByServer" })
	poll.Until(t, 10*time.Second, "the evicted participant gone from A's listing", func() bool {
		st, s := rest(t, "GET", a+"/openvidu/api/sessions/spread", nil)
		conns, _ := s["connections"].(map[string]any)
		return st == 200 && conns["numberOfElements"] == float64(1)
	})
	if st, _ := rest(t, "DELETE", b+"/openvidu/api/sessions/spread", nil); st != 204 {
		t.Fatalf("close on B: %d", st)
	}
	onA.waitNote("participantEvicted", func(p map[string]any) bool { return p["reason"] == "sessionClosedByServer" })
	if st, _ := rest(t, "GET", a+"/openvidu/api/sessions/spread", nil); st != 404 {
		t.Fatalf("fetch on A after the close: %d, want 404", st)
	}
}
