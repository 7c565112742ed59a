package server

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/recording/testmedia"
)

// recordingMedia is 10 s of real VP8 and Opus, encoded once per test binary.
func recordingMedia(t *testing.T) testmedia.Media {
	t.Helper()
	if tool := testmedia.Missing(); tool != "" {
		t.Skipf("%s not installed (scripts/install-test-deps.sh installs it)", tool)
	}
	m, err := testmedia.Shared()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// player publishes real VP8 and Opus from a pion peer at the pace a camera would.
type player struct {
	stream string
	played atomic.Int64 // media sent so far, in ms
	stop   context.CancelFunc
	done   chan struct{}
}

func publishReal(t *testing.T, c *rpcClient, m testmedia.Media) *player {
	t.Helper()
	p, video, audio := newAVPublisher(t)
	return publishTracks(t, c, p, video, audio, m)
}

func publishTracks(t *testing.T, c *rpcClient, p *peer, video, audio *webrtc.TrackLocalStaticRTP, m testmedia.Media) *player {
	t.Helper()
	r := c.result("publishVideo", map[string]any{"sdpOffer": p.offer(t), "doLoopback": false, "hasAudio": true, "hasVideo": true,
		"audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": `{"width":320,"height":240}`})
	p.answer(t, r["sdpAnswer"].(string))
	ctx, cancel := context.WithCancel(context.Background())
	pl := &player{stream: r["id"].(string), stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(pl.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		vi, ai := 0, 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			now := time.Since(start)
			for ; vi < len(m.Video) && time.Duration(vi)*testmedia.FrameInterval <= now; vi++ {
				for _, pkt := range m.Video[vi] {
					_ = video.WriteRTP(pkt)
				}
			}
			for ; ai < len(m.Audio) && time.Duration(ai)*testmedia.AudioInterval <= now; ai++ {
				_ = audio.WriteRTP(m.Audio[ai])
			}
			pl.played.Store(min(time.Duration(vi)*testmedia.FrameInterval, time.Duration(ai)*testmedia.AudioInterval).Milliseconds())
		}
	}()
	t.Cleanup(func() { cancel(); <-pl.done })
	return pl
}

// waitPlayed waits until the player has sent ms more of media than it had at the call.
func (p *player) waitPlayed(t *testing.T, ms int64) {
	t.Helper()
	target := p.played.Load() + ms
	waitFor(t, "media to be played", func() bool { return p.played.Load() >= target })
}

// waitRecorded waits until the recording's file for a stream holds some media: the recorder
// attaches to a stream and starts its file at a keyframe on its own schedule, and a busy machine
// can delay that well past the moment the stream was published.
func waitRecorded(t *testing.T, dir, rec, stream string) {
	t.Helper()
	path := filepath.Join(dir, rec, stream+".webm")
	waitFor(t, "media in "+path, func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.Size() >= 24<<10 // a keyframe and half a second of 300 kbit/s video
	})
}

// getAuthed GETs url with the REST credentials and returns the status and the body.
func getAuthed(t *testing.T, url string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.SetBasicAuth("OPENVIDUAPP", "MY_SECRET")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func waitReady(t *testing.T, api, id string) map[string]any {
	t.Helper()
	var rec map[string]any
	deadline := time.Now().Add(90 * time.Second) // a composed mix takes a while on a busy machine
	for {
		_, rec = rest(t, "GET", api+"/recordings/"+id, nil)
		if rec["status"] == "ready" || rec["status"] == "failed" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, not synchronising on time
	}
	if rec["status"] != "ready" {
		t.Fatalf("recording %s: %v, want ready", id, rec)
	}
	return rec
}

// TestIndividualRecordingThroughTheSFU records a call of pion peers publishing real VP8 and Opus:
// one from the start, one that joins late and leaves early, one whose connection has record:false.
func TestIndividualRecordingThroughTheSFU(t *testing.T) {
	m := recordingMedia(t)
	dir := t.TempDir()
	_, base := startServer(t, "OPENVIDU_RECORDING", "true", "OPENVIDU_RECORDING_PATH", dir)
	api := base + "/openvidu/api"
	if st, _ := rest(t, "POST", api+"/sessions", map[string]any{"customSessionId": "rec-sfu"}); st != 200 {
		t.Fatalf("create session: %d", st)
	}
	alice, _ := join(t, base, "rec-sfu", "PUBLISHER")
	ap := publishReal(t, alice, m)
	st, c := rest(t, "POST", api+"/sessions/rec-sfu/connection", map[string]any{"role": "PUBLISHER", "record": false})
	if st != 200 {
		t.Fatal(st)
	}
	carol := dial(t, base)
	carol.result("joinRoom", map[string]any{"token": c["token"], "session": "rec-sfu", "metadata": ""})
	publishFake(t, carol)
	ap.waitPlayed(t, 300)

	started := time.Now()
	st, r := rest(t, "POST", api+"/recordings/start", map[string]any{"session": "rec-sfu", "name": "call", "outputMode": "INDIVIDUAL"})
	if st != 200 || r["status"] != "started" || r["id"] != "rec-sfu" || r["url"] != nil {
		t.Fatalf("start: %d %v", st, r)
	}
	startAnswered := time.Since(started)
	alice.waitNote("recordingStarted", func(p map[string]any) bool { return p["id"] == "rec-sfu" && p["name"] == "call" })
	if st, _ := rest(t, "POST", api+"/recordings/start", map[string]any{"session": "rec-sfu", "outputMode": "INDIVIDUAL"}); st != 409 {
		t.Fatalf("second start: %d, want 409", st)
	}
	waitRecorded(t, dir, "rec-sfu", ap.stream)
	ap.waitPlayed(t, 1500)

	// Bob joins during the recording: joinRoom says so, and his stream gets its own file.
	st, bc := rest(t, "POST", api+"/sessions/rec-sfu/connection", map[string]any{"role": "PUBLISHER"})
	if st != 200 {
		t.Fatal(st)
	}
	bob := dial(t, base)
	bobJoined := time.Since(started)
	bj := bob.result("joinRoom", map[string]any{"token": bc["token"], "session": "rec-sfu", "metadata": ""})
	if bj["recordingId"] != "rec-sfu" || bj["recordingName"] != "call" {
		t.Fatalf("joinRoom during a recording: %v", bj)
	}
	bp := publishReal(t, bob, m)
	waitRecorded(t, dir, "rec-sfu", bp.stream)
	bp.waitPlayed(t, 1000)
	bob.result("leaveRoom", nil) // leaves early: his file is closed cleanly
	bobLeft := time.Since(started)
	ap.waitPlayed(t, 1000)

	st, r = rest(t, "POST", api+"/recordings/stop/rec-sfu", nil)
	wall := time.Since(started).Seconds()
	if st != 200 || (r["status"] != "stopped" && r["status"] != "ready") {
		t.Fatalf("stop: %d %v", st, r)
	}
	alice.waitNote("recordingStopped", func(p map[string]any) bool { return p["id"] == "rec-sfu" && p["reason"] == "recordingStoppedByServer" })
	rec := waitReady(t, api, "rec-sfu")
	if u, _ := rec["url"].(string); !strings.HasPrefix(u, "http://localhost:") || !strings.HasSuffix(u, "/openvidu/recordings/rec-sfu/call.zip") {
		t.Errorf("url %v", rec["url"])
	}
	// The duration is the media's: from the first file's start to the last one's end, which the
	// wall-clock time between the start request and the stop answer bounds from above.
	if d := rec["duration"].(float64); d <= 0 || d > wall {
		t.Errorf("duration %.2f s, wall-clock %.2f s", d, wall)
	}

	status, zb := getAuthed(t, base+"/openvidu/recordings/rec-sfu/call.zip")
	if status != 200 {
		t.Fatalf("download: %d", status)
	}
	zpath := filepath.Join(t.TempDir(), "call.zip")
	_ = os.WriteFile(zpath, zb, 0o644)
	zr, err := zip.OpenReader(zpath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := t.TempDir()
	var sync struct {
		Files []struct {
			Name, StreamID, ConnectionID   string
			StartTimeOffset, EndTimeOffset int64
			HasAudio, HasVideo             bool
		} `json:"files"`
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		_ = os.WriteFile(filepath.Join(out, f.Name), b, 0o644)
		if f.Name == "call.json" {
			if err := json.Unmarshal(b, &sync); err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.Sort(names)
	want := []string{"call.json", ap.stream + ".webm", bp.stream + ".webm"}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("zip holds %v, want %v (carol has record:false)", names, want)
	}
	offsets := map[string][2]int64{}
	for _, f := range sync.Files {
		offsets[f.StreamID] = [2]int64{f.StartTimeOffset, f.EndTimeOffset}
		p, err := testmedia.ProbeFile(filepath.Join(out, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		vc, vf := p.Stream("video")
		ac, af := p.Stream("audio")
		length := float64(f.EndTimeOffset-f.StartTimeOffset) / 1000
		t.Logf("%s: %s %d frames, %s %d frames, %.2f s in the file, %.2f s by the offsets", f.Name, vc, vf, ac, af, p.Duration(), length)
		if vc != "vp8" || ac != "opus" || !f.HasAudio || !f.HasVideo {
			t.Errorf("%s: codecs %q/%q", f.Name, vc, ac)
		}
		// Video starts at the first keyframe: the pion publisher ignores keyframe requests and sends
		// one a second (a browser answers them at once).
		if math.Abs(p.Duration()-length) > 0.5 || float64(vf) < (length-1)*30*0.8 || float64(af) < length*50*0.8 {
			t.Errorf("%s: %.2f s, %d video and %d audio frames for %.2f s of media", f.Name, p.Duration(), vf, af, length)
		}
	}
	// Offsets count from the recording's start, which lies between the start request and its
	// answer: bob's file cannot begin before he joined nor end after he left, and alice's spans his.
	a, b := offsets[ap.stream], offsets[bp.stream]
	if b[0] < (bobJoined-startAnswered).Milliseconds() || b[1] > bobLeft.Milliseconds() || a[0] >= b[0] || a[1] <= b[1] {
		t.Errorf("offsets: alice %v, bob %v ms; bob joined after %v and left before %v (start answered after %v)", a, b,
			bobJoined, bobLeft, startAnswered)
	}
	if d := rec["duration"].(float64); math.Abs(d-float64(max(a[1], b[1])-min(a[0], b[0]))/1000) > 0.002 {
		t.Errorf("duration %.3f s, files span %v..%v ms", d, min(a[0], b[0]), max(a[1], b[1]))
	}
}

// TestAlwaysRecordingStopsAfterTheLastLeaves: a recordingMode ALWAYS session is recorded from its
// first publish and kept for OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT after its last participant left.
func TestAlwaysRecordingStopsAfterTheLastLeaves(t *testing.T) {
	m := recordingMedia(t)
	hooks := newHookReceiver(t)
	dir := t.TempDir()
	_, base := startServer(t, webhookEnv(hooks.srv.URL, t.TempDir(), "OPENVIDU_RECORDING", "true", "OPENVIDU_RECORDING_PATH", dir,
		"OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT", "1")...)
	api := base + "/openvidu/api"
	if st, _ := rest(t, "POST", api+"/sessions", map[string]any{"customSessionId": "always", "recordingMode": "ALWAYS",
		"defaultRecordingProperties": map[string]any{"outputMode": "INDIVIDUAL", "name": "auto"}}); st != 200 {
		t.Fatalf("create session: %d", st)
	}
	alice, _ := join(t, base, "always", "PUBLISHER")
	p := publishReal(t, alice, m)
	alice.waitNote("recordingStarted", func(n map[string]any) bool { return n["id"] == "always" && n["name"] == "auto" })
	waitRecorded(t, dir, "always", p.stream)
	p.waitPlayed(t, 1000)
	alice.result("leaveRoom", nil)
	if st, s := rest(t, "GET", api+"/sessions/always", nil); st != 200 || s["recording"] != true {
		t.Fatalf("session after its last participant left: %d %v, want kept while recording", st, s)
	}
	rec := waitReady(t, api, "always")
	if st, _ := rest(t, "GET", api+"/sessions/always", nil); st != 404 {
		t.Fatalf("session after the automatic stop: %d, want 404", st)
	}
	if rec["size"].(float64) <= 0 || rec["duration"].(float64) < 0.5 { // about 1 s played; the machine may lag
		t.Fatalf("recording: %v", rec)
	}
	// Webhooks: recordingStatusChanged started, stopped (automaticStop), ready, with OpenVidu's
	// field sets, and the session destroyed by the automatic stop.
	var statuses []string
	waitFor(t, "the recording's webhooks", func() bool {
		statuses = statuses[:0]
		destroyed := ""
		for _, b := range hooks.received() {
			switch b["event"] {
			case "recordingStatusChanged":
				statuses = append(statuses, fmt.Sprint(b["status"], "/", b["reason"], "/", len(b)-1))
			case "sessionDestroyed":
				destroyed = fmt.Sprint(b["reason"])
			}
		}
		return len(statuses) == 3 && destroyed == "automaticStop"
	})
	if want := []string{"started/<nil>/12", "stopped/automaticStop/13", "ready/automaticStop/13"}; !slices.Equal(statuses, want) {
		t.Fatalf("recordingStatusChanged webhooks %v, want %v", statuses, want)
	}
}

// TestComposedRecordingThroughTheSFU mixes a recorded call with the ffmpeg composer.
func TestComposedRecordingThroughTheSFU(t *testing.T) {
	m := recordingMedia(t)
	_, base := startServer(t, "OPENVIDU_RECORDING", "true", "OPENVIDU_RECORDING_PATH", t.TempDir())
	api := base + "/openvidu/api"
	if st, _ := rest(t, "POST", api+"/sessions", map[string]any{"customSessionId": "mix"}); st != 200 {
		t.Fatal(st)
	}
	alice, _ := join(t, base, "mix", "PUBLISHER")
	p := publishReal(t, alice, m)
	st, r := rest(t, "POST", api+"/recordings/start", map[string]any{"session": "mix", "outputMode": "COMPOSED_QUICK_START", "resolution": "640x360", "frameRate": 15})
	if st != 200 || r["resolution"] != "640x360" || r["recordingLayout"] != "BEST_FIT" {
		t.Fatalf("start: %d %v", st, r)
	}
	p.waitPlayed(t, 2000)
	// Closing the session stops the recording, and its participants hear it before they are evicted.
	if st, _ := rest(t, "DELETE", api+"/sessions/mix", nil); st != 204 {
		t.Fatalf("close session: %d", st)
	}
	alice.waitNote("recordingStopped", func(n map[string]any) bool { return n["id"] == "mix" && n["reason"] == "sessionClosedByServer" })
	alice.waitNote("participantEvicted", nil)
	alice.mu.Lock()
	var order []string
	for _, n := range alice.notes {
		if m := n["method"].(string); m == "recordingStopped" || m == "participantEvicted" {
			order = append(order, m)
		}
	}
	alice.mu.Unlock()
	if !slices.Equal(order, []string{"recordingStopped", "participantEvicted"}) {
		t.Fatalf("notifications %v, want recordingStopped before participantEvicted", order)
	}
	rec := waitReady(t, api, "mix")
	status, b := getAuthed(t, base+"/openvidu/recordings/mix/mix.mp4")
	if status != 200 || int64(len(b)) != int64(rec["size"].(float64)) {
		t.Fatalf("download: %d, %d bytes for %v", status, len(b), rec["size"])
	}
	mp4 := filepath.Join(t.TempDir(), "mix.mp4")
	_ = os.WriteFile(mp4, b, 0o644)
	pr, err := testmedia.ProbeFile(mp4)
	if err != nil {
		t.Fatal(err)
	}
	if vc, vf := pr.Stream("video"); vc != "h264" || vf < 15 {
		t.Fatalf("composed: %+v", pr)
	}
	if status, _ := getAuthed(t, base+"/openvidu/recordings/mix/mix.jpg"); status != 200 {
		t.Errorf("thumbnail: %d", status)
	}
}

// TestRecordingChildProcess is not a test on its own: TestRecordingSurvivesKill9 runs the test
// binary again with PARLEY_TEST_CHILD_RECORDINGS set, and this serves until it is killed.
func TestRecordingChildProcess(t *testing.T) {
	dir := os.Getenv("PARLEY_TEST_CHILD_RECORDINGS")
	if dir == "" {
		t.Skip("only run as the child of TestRecordingSurvivesKill9")
	}
	env := map[string]string{"HTTPS_PORT": "0", "PARLEY_MEDIA_PORT": "0", "OPENVIDU_RECORDING": "true", "OPENVIDU_RECORDING_PATH": dir, "PARLEY_LOG_LEVEL": "warn"}
	cfg, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("CHILD-ADDR http://%s\n", s.Addr())
	_ = s.Run(context.Background()) // until SIGKILL
}

// startChild runs a Parley in a process of its own on the recording folder dir.
func startChild(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRecordingChildProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "PARLEY_TEST_CHILD_RECORDINGS="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "CHILD-ADDR "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, a
	case <-time.After(30 * time.Second):
		t.Fatal("the child server did not start")
		return nil, ""
	}
}

// TestRecordingSurvivesKill9 kills a recording Parley with SIGKILL and starts another on the same
// folder: the recording is listed as failed, and its track file plays up to about the last second.
func TestRecordingSurvivesKill9(t *testing.T) {
	m := recordingMedia(t)
	dir := t.TempDir()
	child, base := startChild(t, dir)
	api := base + "/openvidu/api"
	if st, _ := rest(t, "POST", api+"/sessions", map[string]any{"customSessionId": "crash"}); st != 200 {
		t.Fatalf("create session: %d", st)
	}
	alice, _ := join(t, base, "crash", "PUBLISHER")
	p := publishReal(t, alice, m)
	if st, r := rest(t, "POST", api+"/recordings/start", map[string]any{"session": "crash", "outputMode": "INDIVIDUAL"}); st != 200 {
		t.Fatalf("start: %d %v", st, r)
	}
	p.waitPlayed(t, 2500)
	track := filepath.Join(dir, "crash", p.stream+".webm")
	// Kill once the file on disk holds over a second of decodable media (it is flushed every second).
	waitFor(t, "a second of media on disk", func() bool {
		pr, err := testmedia.ProbeFile(track)
		_, vf := pr.Stream("video")
		return err == nil && vf >= 20 && pr.Duration() >= 1
	})
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	p.stop()

	_, base2 := startChild(t, dir)
	st, rec := rest(t, "GET", base2+"/openvidu/api/recordings/crash", nil)
	if st != 200 || rec["status"] != "failed" {
		t.Fatalf("after the restart: %d %v, want failed", st, rec)
	}
	pr, err := testmedia.ProbeFile(track)
	if err != nil {
		t.Fatal(err)
	}
	vc, vf := pr.Stream("video")
	ac, af := pr.Stream("audio")
	t.Logf("kept track: %s %d frames, %s %d frames, %s s", vc, vf, ac, af, pr.Format.Duration)
	if vc != "vp8" || ac != "opus" || vf < 20 || af < 50 || pr.Duration() < 1 {
		t.Fatalf("track after kill -9: %+v", pr)
	}
	if st, _ := rest(t, "DELETE", base2+"/openvidu/api/recordings/crash", nil); st != 204 {
		t.Fatalf("delete the failed recording: %d", st)
	}
}

// TestH264RecordingThroughTheSFU: a session forced to H.264 is recorded into Matroska.
func TestH264RecordingThroughTheSFU(t *testing.T) {
	m := recordingMedia(t)
	h264, err := testmedia.MakeH264(t.TempDir(), 4)
	if err != nil {
		t.Fatal(err)
	}
	m.Video = h264
	_, base := startServer(t, "OPENVIDU_RECORDING", "true", "OPENVIDU_RECORDING_PATH", t.TempDir())
	api := base + "/openvidu/api"
	if st, _ := rest(t, "POST", api+"/sessions", map[string]any{"customSessionId": "avc", "forcedVideoCodec": "H264"}); st != 200 {
		t.Fatal(st)
	}
	alice, _ := join(t, base, "avc", "PUBLISHER")
	pc := newPeer(t)
	video, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"}, "video", "cam")
	audio, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "cam")
	for _, tr := range []*webrtc.TrackLocalStaticRTP{audio, video} {
		if _, err := pc.pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	p := publishTracks(t, alice, pc, video, audio, m)
	if st, r := rest(t, "POST", api+"/recordings/start", map[string]any{"session": "avc", "outputMode": "INDIVIDUAL"}); st != 200 {
		t.Fatalf("start: %d %v", st, r)
	}
	p.waitPlayed(t, 2500)
	if st, _ := rest(t, "POST", api+"/recordings/stop/avc", nil); st != 200 {
		t.Fatal(st)
	}
	waitReady(t, api, "avc")
	status, zb := getAuthed(t, base+"/openvidu/recordings/avc/avc.zip")
	if status != 200 {
		t.Fatalf("download: %d", status)
	}
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if filepath.Ext(f.Name) == ".json" {
			continue
		}
		if f.Name != p.stream+".mkv" {
			t.Fatalf("zip holds %s, want %s.mkv", f.Name, p.stream)
		}
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		path := filepath.Join(t.TempDir(), f.Name)
		_ = os.WriteFile(path, b, 0o644)
		pr, err := testmedia.ProbeFile(path)
		if err != nil {
			t.Fatal(err)
		}
		vc, vf := pr.Stream("video")
		ac, af := pr.Stream("audio")
		t.Logf("%s: %s %d frames, %s %d frames, %s s", f.Name, vc, vf, ac, af, pr.Format.Duration)
		if vc != "h264" || ac != "opus" || vf < 20 || af < 80 {
			t.Fatalf("h264 recording: %+v", pr)
		}
		return
	}
	t.Fatal("no track file in the zip")
}
