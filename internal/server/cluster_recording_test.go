package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/session"
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

// recordingCluster starts two recording nodes sharing one recording folder and creates session id
// on A.
func recordingCluster(t *testing.T, id string) (dir string, bases []string) {
	t.Helper()
	dir, _, bases = recordingServers(t, id)
	return dir, bases
}

// recordingServers is recordingCluster returning the servers too; env is more settings of both
// nodes.
func recordingServers(t *testing.T, id string, env ...string) (dir string, servers []*Server, bases []string) {
	t.Helper()
	dir = t.TempDir()
	_, servers, bases = startClusterServersEnv(t, func(_, _ string) []string {
		return append([]string{"OPENVIDU_RECORDING", "true", "OPENVIDU_RECORDING_PATH", dir}, env...)
	}, "node-a", "node-b")
	if st, _ := rest(t, "POST", bases[0]+"/openvidu/api/sessions", map[string]any{"customSessionId": id}); st != 200 {
		t.Fatalf("create on A: %d", st)
	}
	return dir, servers, bases
}

// joinOn joins session id on base with a token made on api, as role, and returns the participant
// and joinRoom's result.
func joinOn(t *testing.T, api, base, id, role string) (*rpcClient, map[string]any) {
	t.Helper()
	st, c := rest(t, "POST", api+"/sessions/"+id+"/connection", map[string]any{"role": role})
	if st != 200 {
		t.Fatalf("connection: %d", st)
	}
	r := dial(t, base)
	return r, r.result("joinRoom", map[string]any{"token": c["token"], "session": id, "metadata": ""})
}

// fileSize is the size of a recording's file of a stream (0 before it exists).
func fileSize(dir, rec, stream string) int64 {
	fi, err := os.Stat(filepath.Join(dir, rec, stream+".webm"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// TestClusterRecordingOutlivesItsNode: a recording runs on A, and A's participants leave while B's
// stay. As on one server, the recording goes on (B's stream keeps being written, REST on B shows it
// started, B's participant is not told it stopped); when B's leave too, the session stays, recorded,
// on every node until the autostop, a newcomer on B is told of the recording, and it is stopped
// through B and ready.
func TestClusterRecordingOutlivesItsNode(t *testing.T) {
	m := recordingMedia(t)
	dir, srvs, bases := recordingServers(t, "rec-stay")
	a, b := bases[0]+"/openvidu/api", bases[1]+"/openvidu/api"
	onA, _ := joinOn(t, a, bases[0], "rec-stay", "PUBLISHER")
	onB, _ := joinOn(t, a, bases[1], "rec-stay", "PUBLISHER")
	pa, pb := publishReal(t, onA, m), publishReal(t, onB, m)
	pa.waitPlayed(t, 300)
	pb.waitPlayed(t, 300)
	if st, r := rest(t, "POST", a+"/recordings/start", map[string]any{"session": "rec-stay", "outputMode": "INDIVIDUAL"}); st != 200 {
		t.Fatalf("start on A: %d %v", st, r)
	}
	waitRecorded(t, dir, "rec-stay", pa.stream) // A holds a publisher: A records
	waitRecorded(t, dir, "rec-stay", pb.stream)

	onA.result("leaveRoom", nil)
	waitFor(t, "A's participant gone from B's listing", func() bool {
		st, s := rest(t, "GET", b+"/sessions/rec-stay", nil)
		conns, _ := s["connections"].(map[string]any)
		return st == 200 && conns["numberOfElements"] == float64(1)
	})
	before := fileSize(dir, "rec-stay", pb.stream)
	waitFor(t, "B's stream still recorded after A's participants left", func() bool {
		return fileSize(dir, "rec-stay", pb.stream) >= before+24<<10
	})
	if st, g := rest(t, "GET", b+"/recordings/rec-stay", nil); st != 200 || g["status"] != "started" {
		t.Fatalf("the recording on B after A's participants left: %d %v", st, g)
	}
	if st, s := rest(t, "GET", b+"/sessions/rec-stay", nil); st != 200 || s["recording"] != true {
		t.Fatalf("the session on B after A's participants left: %d recording=%v", st, s["recording"])
	}
	if onB.hasNote("recordingStopped", nil) {
		t.Fatal("B's participant was told recordingStopped while the recording goes on")
	}

	// Everyone gone: the recorded session outlives them until the recording's autostop (120 s
	// here), listed on every node, and a newcomer is told of the recording.
	ended := make(chan struct{}) // B's copy of the session ended: B has noted it for the record
	var once sync.Once
	srvs[1].manager.Listen(func(e session.Event) {
		if e.Kind == session.SessionDestroyed && e.Session == "rec-stay" {
			once.Do(func() { close(ended) })
		}
	})
	onB.result("leaveRoom", nil)
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("B's copy of the session did not end when its last participant left")
	}
	srvs[1].cluster.Flush(context.Background()) // B's write of it is done
	for _, api := range []string{a, b} {
		st, s := rest(t, "GET", api+"/sessions/rec-stay", nil)
		conns, _ := s["connections"].(map[string]any)
		if st != 200 || conns["numberOfElements"] != float64(0) || s["recording"] != true {
			t.Fatalf("the recorded session with nobody in it, on %s: %d %v", api, st, s)
		}
	}
	again, jr := joinOn(t, b, bases[1], "rec-stay", "PUBLISHER")
	if jr["recordingId"] != "rec-stay" {
		t.Fatalf("joinRoom on B after everyone left: recordingId %v, want rec-stay", jr["recordingId"])
	}
	if st, r := rest(t, "POST", b+"/recordings/stop/rec-stay", nil); st != 200 {
		t.Fatalf("stop on B: %d %v", st, r)
	}
	again.waitNote("recordingStopped", func(n map[string]any) bool { return n["id"] == "rec-stay" })
	waitReady(t, b, "rec-stay")
}

// TestClusterRecordingAutostopEndsTheSession: when everyone has left, on every node, a session
// that A records, A's recording stops after OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT and the session
// ends on every node, as on one server.
func TestClusterRecordingAutostopEndsTheSession(t *testing.T) {
	m := recordingMedia(t)
	dir, _, bases := recordingServers(t, "rec-auto", "OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT", "1")
	a, b := bases[0]+"/openvidu/api", bases[1]+"/openvidu/api"
	onA, _ := joinOn(t, a, bases[0], "rec-auto", "PUBLISHER")
	onB, _ := joinOn(t, a, bases[1], "rec-auto", "PUBLISHER")
	pa, pb := publishReal(t, onA, m), publishReal(t, onB, m)
	pa.waitPlayed(t, 300)
	pb.waitPlayed(t, 300)
	if st, r := rest(t, "POST", a+"/recordings/start", map[string]any{"session": "rec-auto", "outputMode": "INDIVIDUAL"}); st != 200 {
		t.Fatalf("start on A: %d %v", st, r)
	}
	waitRecorded(t, dir, "rec-auto", pb.stream)
	onA.result("leaveRoom", nil)
	onB.result("leaveRoom", nil)
	waitReady(t, b, "rec-auto")
	for _, api := range []string{a, b} {
		waitFor(t, "the session gone from "+api, func() bool {
			st, _ := rest(t, "GET", api+"/sessions/rec-auto", nil)
			return st == 404
		})
	}
}

// TestClusterRecordingShownToLateNode: a node that makes its copy of a session while another node
// records it shows the recording as a node that held it from the start: the joiner's joinRoom
// names the recording (openvidu-browser then emits recordingStarted), REST on that node says
// "recording": true (before it holds a copy too), and the joiner is told recordingStopped when it
// stops.
func TestClusterRecordingShownToLateNode(t *testing.T) {
	m := recordingMedia(t)
	dir, bases := recordingCluster(t, "rec-late")
	a, b := bases[0]+"/openvidu/api", bases[1]+"/openvidu/api"
	onA, _ := joinOn(t, a, bases[0], "rec-late", "PUBLISHER")
	pa := publishReal(t, onA, m)
	pa.waitPlayed(t, 300)
	if st, r := rest(t, "POST", a+"/recordings/start", map[string]any{"session": "rec-late", "outputMode": "INDIVIDUAL"}); st != 200 {
		t.Fatalf("start on A: %d %v", st, r)
	}
	waitRecorded(t, dir, "rec-late", pa.stream)
	if st, s := rest(t, "GET", b+"/sessions/rec-late", nil); st != 200 || s["recording"] != true {
		t.Fatalf("the session on B, which holds no copy of it, while A records it: %d recording=%v", st, s["recording"])
	}

	onB, jr := joinOn(t, a, bases[1], "rec-late", "PUBLISHER")
	if jr["recordingId"] != "rec-late" {
		t.Fatalf("joinRoom on B while A records: recordingId %v, want rec-late", jr["recordingId"])
	}
	if st, s := rest(t, "GET", b+"/sessions/rec-late", nil); st != 200 || s["recording"] != true {
		t.Fatalf("the session on B while A records it: %d recording=%v", st, s["recording"])
	}
	if st, _ := rest(t, "POST", b+"/recordings/stop/rec-late", nil); st != 200 {
		t.Fatalf("stop on B: %d", st)
	}
	onB.waitNote("recordingStopped", func(n map[string]any) bool { return n["id"] == "rec-late" })
	waitReady(t, b, "rec-late")
}

// TestClusterRecordingEndsWithItsNodeShutdown: a recording runs on A, which is shut down cleanly
// while B's participant stays. The recording ends with A for the whole cluster: B's participant is
// told recordingStopped, B's REST no longer shows it running, and a newcomer on B is not told of it.
func TestClusterRecordingEndsWithItsNodeShutdown(t *testing.T) {
	m := recordingMedia(t)
	dir, srvs, bases := recordingServers(t, "rec-down")
	a, b := bases[0]+"/openvidu/api", bases[1]+"/openvidu/api"
	onA, _ := joinOn(t, a, bases[0], "rec-down", "PUBLISHER")
	onB, _ := joinOn(t, a, bases[1], "rec-down", "PUBLISHER")
	pa, pb := publishReal(t, onA, m), publishReal(t, onB, m)
	pa.waitPlayed(t, 300)
	pb.waitPlayed(t, 300)
	if st, r := rest(t, "POST", a+"/recordings/start", map[string]any{"session": "rec-down", "outputMode": "INDIVIDUAL"}); st != 200 {
		t.Fatalf("start on A: %d %v", st, r)
	}
	waitRecorded(t, dir, "rec-down", pa.stream) // A holds a publisher: A records

	stopServer(srvs[0])
	onB.waitNote("recordingStopped", func(n map[string]any) bool { return n["id"] == "rec-down" })
	if st, s := rest(t, "GET", b+"/sessions/rec-down", nil); st != 200 || s["recording"] != false {
		t.Fatalf("the session on B after A, which recorded it, shut down: %d recording=%v", st, s["recording"])
	}
	if st, g := rest(t, "GET", b+"/recordings/rec-down", nil); st != 200 || g["status"] == "started" {
		t.Fatalf("the recording on B after its node shut down: %d %v", st, g)
	}
	if _, jr := joinOn(t, b, bases[1], "rec-down", "PUBLISHER"); jr["recordingId"] != nil {
		t.Fatalf("a newcomer on B after the recording's node shut down was told of recording %v", jr["recordingId"])
	}
}

// TestClusterPatchReachesMirrors: PATCH of a participant on B, sent to A, changes B's participant
// and A's mirror of it alike: a recording A runs afterwards leaves out the stream of record:false
// as one server would.
func TestClusterPatchReachesMirrors(t *testing.T) {
	m := recordingMedia(t)
	dir, srvs, bases := recordingServers(t, "rec-patch")
	a := bases[0] + "/openvidu/api"
	onA, _ := joinOn(t, a, bases[0], "rec-patch", "PUBLISHER")
	onB, jb := joinOn(t, a, bases[1], "rec-patch", "PUBLISHER")
	pa, pb := publishReal(t, onA, m), publishReal(t, onB, m)
	pa.waitPlayed(t, 300)
	pb.waitPlayed(t, 300)
	cid, _ := jb["id"].(string)

	st, c := rest(t, "PATCH", a+"/sessions/rec-patch/connection/"+cid, map[string]any{"record": false, "role": "MODERATOR"})
	if st != 200 || c["record"] != false || c["role"] != "MODERATOR" {
		t.Fatalf("PATCH on A of B's participant: %d %v", st, c)
	}
	waitFor(t, "A's mirror of B's participant to take the PATCH", func() bool {
		rs, ok := srvs[0].manager.Room("rec-patch").RecordableStream(session.StreamID(pb.stream))
		return ok && rs.Node == "node-b" && !rs.Record
	})

	if st, r := rest(t, "POST", a+"/recordings/start", map[string]any{"session": "rec-patch", "outputMode": "INDIVIDUAL"}); st != 200 {
		t.Fatalf("start on A: %d %v", st, r)
	}
	waitRecorded(t, dir, "rec-patch", pa.stream)
	if st, _ := rest(t, "POST", a+"/recordings/stop/rec-patch", nil); st != 200 {
		t.Fatalf("stop on A: %d", st)
	}
	waitReady(t, a, "rec-patch")
	if _, err := os.Stat(filepath.Join(dir, "rec-patch", pb.stream+".webm")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the stream of record:false was recorded (%v)", err)
	}
}
