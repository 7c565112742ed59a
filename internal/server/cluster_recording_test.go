package server

import (
	"strings"
	"testing"
)

// TestClusterRecordingFromAnyNode: a session created on A whose publisher is on B is recorded by
// B's recorder (it taps the stream) while every REST call goes to A, as openvidu-node-client would
// through a load balancer: start, a second start refused, get, stop, list, download from the
// folder the nodes share, delete.
func TestClusterRecordingFromAnyNode(t *testing.T) {
	m := recordingMedia(t)
	dir := t.TempDir() // OPENVIDU_RECORDING_PATH shared by both nodes, as on NFS
	_, bases := startClusterEnv(t, func(_, _ string) []string {
		return []string{"OPENVIDU_RECORDING", "true", "OPENVIDU_RECORDING_PATH", dir}
	}, "node-a", "node-b")
	a, b := bases[0]+"/openvidu/api", bases[1]+"/openvidu/api"

	if st, _ := rest(t, "POST", a+"/sessions", map[string]any{"customSessionId": "rec-spread"}); st != 200 {
		t.Fatalf("create on A: %d", st)
	}
	st, c := rest(t, "POST", a+"/sessions/rec-spread/connection", map[string]any{"role": "PUBLISHER"})
	if st != 200 {
		t.Fatalf("connection on A: %d", st)
	}
	onB := dial(t, bases[1])
	onB.result("joinRoom", map[string]any{"token": c["token"], "session": "rec-spread", "metadata": ""})
	p := publishReal(t, onB, m)
	p.waitPlayed(t, 300)

	st, r := rest(t, "POST", a+"/recordings/start", map[string]any{"session": "rec-spread", "outputMode": "INDIVIDUAL"})
	if st != 200 || r["status"] != "started" || r["id"] != "rec-spread" {
		t.Fatalf("start on A: %d %v", st, r)
	}
	onB.waitNote("recordingStarted", func(n map[string]any) bool { return n["id"] == "rec-spread" })
	if st, _ := rest(t, "POST", a+"/recordings/start", map[string]any{"session": "rec-spread"}); st != 409 {
		t.Fatalf("second start on A: %d, want 409 (B records it already)", st)
	}
	for _, api := range []string{a, b} {
		if st, g := rest(t, "GET", api+"/recordings/rec-spread", nil); st != 200 || g["status"] != "started" {
			t.Fatalf("get on %s: %d %v", api, st, g)
		}
	}
	waitRecorded(t, dir, "rec-spread", p.stream)
	p.waitPlayed(t, 1000)

	if st, r := rest(t, "POST", a+"/recordings/stop/rec-spread", nil); st != 200 || (r["status"] != "stopped" && r["status"] != "ready") {
		t.Fatalf("stop on A: %d %v", st, r)
	}
	rec := waitReady(t, a, "rec-spread")
	if rec["size"].(float64) <= 0 {
		t.Fatalf("ready on A: %v", rec)
	}
	if st, l := rest(t, "GET", a+"/recordings", nil); st != 200 || l["count"] != float64(1) {
		t.Fatalf("list on A: %d %v", st, l)
	}
	u, _ := rec["url"].(string)
	i := strings.Index(u, "/openvidu/recordings/")
	if i < 0 {
		t.Fatalf("url %q", u)
	}
	if st, zb := getAuthed(t, bases[0]+u[i:]); st != 200 || len(zb) == 0 {
		t.Fatalf("download from A of the file B wrote: %d, %d bytes", st, len(zb))
	}
	if st, _ := rest(t, "DELETE", a+"/recordings/rec-spread", nil); st != 204 {
		t.Fatalf("delete on A: %d", st)
	}
	for _, api := range []string{a, b} {
		if st, _ := rest(t, "GET", api+"/recordings/rec-spread", nil); st != 404 {
			t.Fatalf("get on %s after delete: %d, want 404", api, st)
		}
	}
}

// TestClusterRecordingTakesEveryNode: a session with a publisher on A and one on B, recorded on A,
// records both: B's stream is pulled over the inter-node link to A's recorder, and a stream B
// publishes during the recording joins it too. Each file holds real media. B's participants are
// told recordingStarted and recordingStopped, and B's REST shows the session as recorded.
func TestClusterRecordingTakesEveryNode(t *testing.T) {
	m := recordingMedia(t)
	dir := t.TempDir()
	_, bases := startClusterEnv(t, func(_, _ string) []string {
		return []string{"OPENVIDU_RECORDING", "true", "OPENVIDU_RECORDING_PATH", dir}
	}, "node-a", "node-b")
	a := bases[0] + "/openvidu/api"
	if st, _ := rest(t, "POST", a+"/sessions", map[string]any{"customSessionId": "rec-both"}); st != 200 {
		t.Fatalf("create on A: %d", st)
	}
	join := func(base string) *rpcClient {
		st, c := rest(t, "POST", a+"/sessions/rec-both/connection", map[string]any{"role": "PUBLISHER"})
		if st != 200 {
			t.Fatalf("connection: %d", st)
		}
		r := dial(t, base)
		r.result("joinRoom", map[string]any{"token": c["token"], "session": "rec-both", "metadata": ""})
		return r
	}
	onA, onB := join(bases[0]), join(bases[1])
	pa, pb := publishReal(t, onA, m), publishReal(t, onB, m)
	pa.waitPlayed(t, 300)
	pb.waitPlayed(t, 300)

	if st, r := rest(t, "POST", a+"/recordings/start", map[string]any{"session": "rec-both", "outputMode": "INDIVIDUAL"}); st != 200 {
		t.Fatalf("start on A: %d %v", st, r)
	}
	onB.waitNote("recordingStarted", func(n map[string]any) bool { return n["id"] == "rec-both" })
	if st, s := rest(t, "GET", bases[1]+"/openvidu/api/sessions/rec-both", nil); st != 200 || s["recording"] != true {
		t.Fatalf("the session on B while A records it: %d recording=%v", st, s["recording"])
	}
	waitRecorded(t, dir, "rec-both", pa.stream)
	waitRecorded(t, dir, "rec-both", pb.stream) // crossed B→A

	late := publishReal(t, join(bases[1]), m)
	waitRecorded(t, dir, "rec-both", late.stream)

	if st, _ := rest(t, "POST", a+"/recordings/stop/rec-both", nil); st != 200 {
		t.Fatalf("stop on A: %d", st)
	}
	onB.waitNote("recordingStopped", func(n map[string]any) bool { return n["id"] == "rec-both" })
	waitReady(t, a, "rec-both")
}
