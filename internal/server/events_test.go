package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/webhook"
)

// hookReceiver is the operator's webhook endpoint: it checks each request's signature and headers
// and keeps the accepted bodies in arrival order. Before downUntil it answers 503.
type hookReceiver struct {
	t         *testing.T
	srv       *httptest.Server
	downUntil atomic.Int64 // unix nanoseconds

	mu       sync.Mutex
	bodies   []map[string]any
	failures int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if time.Now().UnixNano() < r.downUntil.Load() {
			r.mu.Lock()
			r.failures++
			r.mu.Unlock()
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		// The default key derives from OPENVIDU_SECRET (MY_SECRET in dev mode).
		if err := webhook.Verify(webhook.DefaultKey("MY_SECRET"), req.Header.Get(webhook.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		if req.Header.Get("Authorization") != "Bearer hook-token-123" || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook headers: %v", req.Header)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, m)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) received() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies)
}

// webhookEnv enables webhooks to endpoint, and the CDR, and metrics on a kernel-chosen port.
func webhookEnv(endpoint, cdrDir string, more ...string) []string {
	return append([]string{"OPENVIDU_WEBHOOK", "true", "OPENVIDU_WEBHOOK_ENDPOINT", endpoint,
		"OPENVIDU_WEBHOOK_HEADERS", `["Authorization: Bearer hook-token-123"]`,
		"OPENVIDU_CDR", "true", "OPENVIDU_CDR_PATH", cdrDir, "PARLEY_METRICS_ADDR", "127.0.0.1:0"}, more...)
}

// callIDs are what a two-person call created, and the credentials it handed out.
type callIDs struct {
	session, alice, bob, stream string
	secrets                     []string // tokens and TURN passwords: never to be logged
}

// twoPersonCall drives the call of protocol note §5.1 as the SDK would: Alice joins and publishes
// camera and microphone, Bob joins, subscribes and signals everyone, then Bob leaves and Alice
// leaves last, which closes the session. during runs while media flows.
func twoPersonCall(t *testing.T, base, sid string, during func(alice, bob *rpcClient)) callIDs {
	t.Helper()
	api := base + "/openvidu/api"
	if st, _ := rest(t, "POST", api+"/sessions", map[string]any{"customSessionId": sid}); st != 200 {
		t.Fatalf("create session: %d", st)
	}
	ids := callIDs{session: sid}
	tokens := make([]string, 2)
	for i, data := range []string{"alice-server-data", ""} {
		st, c := rest(t, "POST", api+"/sessions/"+sid+"/connection", map[string]any{"role": "PUBLISHER", "data": data})
		if st != 200 {
			t.Fatalf("create connection: %d", st)
		}
		tokens[i] = c["token"].(string)
		ids.secrets = append(ids.secrets, tokens[i], tokens[i][strings.Index(tokens[i], "token=")+len("token="):])
	}
	turnSecrets := func(r map[string]any) {
		for _, s := range r["customIceServers"].([]any) {
			if c, _ := s.(map[string]any)["credential"].(string); c != "" {
				ids.secrets = append(ids.secrets, c)
			}
		}
	}

	alice := dial(t, base)
	aj := alice.result("joinRoom", map[string]any{"token": tokens[0], "session": sid, "platform": "Chrome 120 on Linux", "metadata": `{"clientData":"alice"}`})
	ids.alice = aj["id"].(string)
	turnSecrets(aj)
	pub, video, audio := newAVPublisher(t)
	pr := alice.result("publishVideo", map[string]any{"sdpOffer": pub.offer(t), "doLoopback": false, "hasAudio": true, "hasVideo": true,
		"audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": `{"width":640,"height":480}`})
	ids.stream = pr["id"].(string)
	pub.answer(t, pr["sdpAnswer"].(string))
	ctx, stop := context.WithCancel(context.Background())
	sending := make(chan struct{})
	go func() { defer close(sending); publishMedia(ctx, video, audio) }()
	defer func() { stop(); <-sending }()

	bob := dial(t, base)
	bj := bob.result("joinRoom", map[string]any{"token": tokens[1], "session": sid, "platform": "Firefox", "metadata": `{"clientData":"bob"}`})
	ids.bob = bj["id"].(string)
	turnSecrets(bj)
	sub := newPeer(t)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := sub.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	sr := bob.result("receiveVideoFrom", map[string]any{"sender": ids.stream, "sdpOffer": sub.offer(t)})
	sub.answer(t, sr["sdpAnswer"].(string))
	waitFor(t, "media forwarded to the subscriber", func() bool { return sub.received.Load() > 50 })

	bob.result("sendMessage", map[string]any{"message": `{"to":[],"data":"hi","type":"signal:chat"}`})
	alice.waitNote("sendMessage", func(p map[string]any) bool { return p["data"] == "hi" })
	if during != nil {
		during(alice, bob)
	}
	bob.result("leaveRoom", nil)
	alice.waitNote("participantLeft", func(p map[string]any) bool { return p["connectionId"] == ids.bob })
	alice.result("leaveRoom", nil)
	return ids
}

// expected is the exact OpenVidu webhook sequence of twoPersonCall: each event's name, its number of
// keys ("event" included, as §11.3 counts them plus one) and the values it must carry.
func expected(ids callIDs) []struct {
	name string
	keys int
	want map[string]any
} {
	media := map[string]any{"streamId": ids.stream, "videoSource": "CAMERA", "videoFramerate": 30.0,
		"videoDimensions": `{"width":640,"height":480}`, "audioEnabled": true, "videoEnabled": true}
	with := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	alice := map[string]any{"participantId": ids.alice, "connectionId": ids.alice, "location": "unknown", "ip": "127.0.0.1",
		"platform": "Chrome 120 on Linux", "clientData": `{"clientData":"alice"}`, "serverData": "alice-server-data"}
	bob := map[string]any{"participantId": ids.bob, "connectionId": ids.bob, "location": "unknown", "ip": "127.0.0.1",
		"platform": "Firefox", "clientData": `{"clientData":"bob"}`, "serverData": ""}
	out := with(media, "participantId", ids.alice, "connectionId", ids.alice, "connection", "OUTBOUND")
	in := with(media, "participantId", ids.bob, "connectionId", ids.bob, "connection", "INBOUND", "receivingFrom", ids.alice)
	return []struct {
		name string
		keys int
		want map[string]any
	}{
		{"sessionCreated", 4, nil},
		{"participantJoined", 11, alice},
		{"webrtcConnectionCreated", 13, out},
		{"participantJoined", 11, bob},
		{"webrtcConnectionCreated", 14, in},
		{"signalSent", 8, map[string]any{"from": ids.bob, "to": []any{ids.alice, ids.bob}, "type": "chat", "data": "hi"}},
		{"webrtcConnectionDestroyed", 17, with(in, "reason", "disconnect")},
		{"participantLeft", 14, with(bob, "reason", "disconnect")},
		{"webrtcConnectionDestroyed", 16, with(out, "reason", "disconnect")},
		{"participantLeft", 14, with(alice, "reason", "disconnect")},
		{"sessionDestroyed", 7, map[string]any{"reason": "lastParticipantLeft"}},
	}
}

// checkSequence compares the received events with expected(ids), and pairs every end event's
// startTime with the timestamp of the event that began it.
func checkSequence(t *testing.T, got []map[string]any, ids callIDs) {
	t.Helper()
	want := expected(ids)
	var names []string
	for _, e := range got {
		names = append(names, e["event"].(string))
	}
	if len(got) != len(want) {
		t.Fatalf("%d webhook events %v, want %d", len(got), names, len(want))
	}
	created := got[0]["timestamp"].(float64)
	for i, w := range want {
		e := got[i]
		if e["event"] != w.name || len(e) != w.keys {
			t.Fatalf("event %d: %s with %d keys, want %s with %d: %v", i, e["event"], len(e), w.name, w.keys, e)
		}
		if e["sessionId"] != ids.session || e["uniqueSessionId"] != ids.session+"_"+strconv.FormatInt(int64(created), 10) {
			t.Errorf("event %d (%s): session fields %v %v", i, w.name, e["sessionId"], e["uniqueSessionId"])
		}
		for k, v := range w.want {
			if !reflect.DeepEqual(e[k], v) {
				t.Errorf("event %d (%s): %s = %#v, want %#v", i, w.name, k, e[k], v)
			}
		}
	}
	// End events begin where their start events were stamped; durations are whole seconds.
	for end, start := range map[int]int{6: 4, 7: 3, 8: 2, 9: 1, 10: 0} {
		if got[end]["startTime"] != got[start]["timestamp"] {
			t.Errorf("%s startTime %v, want the timestamp %v of %s", got[end]["event"], got[end]["startTime"], got[start]["timestamp"], got[start]["event"])
		}
		d := (got[end]["timestamp"].(float64) - got[end]["startTime"].(float64)) / 1000
		if dur := got[end]["duration"].(float64); dur != float64(int64(d)) {
			t.Errorf("%s duration %v, want %v", got[end]["event"], dur, int64(d))
		}
	}
}

// scrapeMetrics reads the server's /metrics as a map from series to value.
func scrapeMetrics(t *testing.T, s *Server) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && !strings.HasPrefix(k, "#") {
			out[k], _ = strconv.ParseFloat(v, 64)
		}
	}
	return out
}

// cdrRecords reads every line of every CDR file in dir.
func cdrRecords(t *testing.T, dir string) []map[string]map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "CDR.*.log"))
	var out []map[string]map[string]any
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var rec map[string]map[string]any
			if l != "" {
				if err := json.Unmarshal([]byte(l), &rec); err != nil {
					t.Fatalf("CDR line %q: %v", l, err)
				}
				out = append(out, rec)
			}
		}
	}
	return out
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestEventsOfATwoPersonCall: the webhook receiver sees OpenVidu's exact event sequence with the
// right fields, the CDR holds the same events, /metrics moves during the call, and the logs have a
// line per lifecycle step with its ids and none of the call's credentials.
func TestEventsOfATwoPersonCall(t *testing.T) {
	recv := newHookReceiver(t)
	cdrDir := t.TempDir()
	logs := &syncBuffer{}
	endpoint := recv.srv.URL + "/hook?token=endpoint-token-456"
	srv, base := startServerLog(t, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		webhookEnv(endpoint, cdrDir, "PARLEY_WEBHOOK_SECRET", "")...)

	before := scrapeMetrics(t, srv)
	var during map[string]float64
	ids := twoPersonCall(t, base, "hooked", func(_, _ *rpcClient) { during = scrapeMetrics(t, srv) })
	waitFor(t, "11 webhook events", func() bool { return len(recv.received()) >= 11 })
	checkSequence(t, recv.received(), ids)

	t.Run("CDR holds the same events", func(t *testing.T) {
		waitFor(t, "11 CDR lines", func() bool { return len(cdrRecords(t, cdrDir)) >= 11 })
		recs, hooks := cdrRecords(t, cdrDir), recv.received()
		if len(recs) != len(hooks) {
			t.Fatalf("%d CDR lines, %d webhook events", len(recs), len(hooks))
		}
		for i, h := range hooks {
			name := h["event"].(string)
			delete(h, "event")
			if !reflect.DeepEqual(recs[i], map[string]map[string]any{name: h}) {
				t.Errorf("CDR line %d: %v, webhook: %s %v", i, recs[i], name, h)
			}
		}
		st, body := restList(t, base+"/openvidu/cdr")
		if st != 200 || len(body) != 1 || !strings.HasPrefix(body[0], "CDR.") {
			t.Fatalf("GET /openvidu/cdr: %d %v", st, body)
		}
	})

	t.Run("metrics move during the call", func(t *testing.T) {
		for series, want := range map[string]float64{"parley_participants": 2, "parley_published_streams": 1,
			"parley_subscribed_streams": 1, "parley_sessions": 1, `parley_sfu_peer_connections{role="subscriber"}`: 1} {
			if during[series] != want {
				t.Errorf("during the call %s = %v, want %v", series, during[series], want)
			}
		}
		for _, series := range []string{`parley_rtp_packets_total{direction="in"}`, `parley_rtp_packets_total{direction="out"}`,
			`parley_rtp_bytes_total{direction="in"}`, `parley_rtp_bytes_total{direction="out"}`,
			`parley_session_events_total{event="signalSent"}`, "parley_webhook_delivered_total"} {
			if !(during[series] > before[series]) {
				t.Errorf("%s did not move: %v before, %v during the call", series, before[series], during[series])
			}
		}
		for _, series := range []string{"go_goroutines", "process_resident_memory_bytes", "parley_turn_allocations",
			"parley_webhook_queue_depth", `parley_webhook_dropped_total{reason="expired"}`, "parley_cdr_written_total"} {
			if _, ok := during[series]; !ok {
				t.Errorf("%s missing", series)
			}
		}
		var after map[string]float64
		waitFor(t, "the webhook counters to settle", func() bool {
			after = scrapeMetrics(t, srv)
			return after["parley_webhook_delivered_total"] == 11
		})
		if after["parley_participants"] != 0 || after["parley_published_streams"] != 0 || after["parley_sessions"] != 0 ||
			after[`parley_participants_left_total{reason="disconnect"}`] != 2 {
			t.Errorf("after the call: %v", after)
		}
		mean := after["parley_webhook_delivery_latency_seconds_sum"] / after["parley_webhook_delivery_latency_seconds_count"]
		t.Logf("webhook delivery latency, event to 2xx: mean %.2f ms over %v events", mean*1000, after["parley_webhook_delivery_latency_seconds_count"])
	})

	t.Run("logs carry ids, never credentials", func(t *testing.T) {
		text := logs.String()
		secrets := append(ids.secrets, "MY_SECRET", "hook-token-123", "endpoint-token-456", string(webhook.DefaultKey("MY_SECRET")))
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("the log contains the credential %q", s)
			}
		}
		type line struct {
			Msg                         string
			Session, Connection, Stream string
		}
		var lines []line
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			var ln line
			if err := json.Unmarshal([]byte(l), &ln); err != nil {
				t.Fatalf("not a JSON log line: %q", l)
			}
			lines = append(lines, ln)
		}
		for _, w := range []line{
			{"session created", ids.session, "", ""},
			{"participant joined", ids.session, ids.alice, ""},
			{"stream published", ids.session, ids.alice, ids.stream},
			{"participant joined", ids.session, ids.bob, ""},
			{"subscribed", ids.session, ids.bob, ids.stream},
			{"participant left", ids.session, ids.bob, ""},
			{"participant left", ids.session, ids.alice, ""},
			{"session destroyed", ids.session, "", ""},
		} {
			if !slices.Contains(lines, w) {
				t.Errorf("no log line %+v", w)
			}
		}
	})
}

// restList GETs a JSON array of strings with the REST credentials.
func restList(t *testing.T, url string) (int, []string) {
	t.Helper()
	status, b := getAuthed(t, url)
	var out []string
	_ = json.Unmarshal(b, &out)
	return status, out
}

// TestWebhookReceiverDownThenUp: the receiver answers 503 for 5 s, through the whole call; once it
// recovers every event arrives, once and in order, and the call never noticed.
func TestWebhookReceiverDownThenUp(t *testing.T) {
	recv := newHookReceiver(t)
	recv.downUntil.Store(time.Now().Add(5 * time.Second).UnixNano())
	srv, base := startServer(t, webhookEnv(recv.srv.URL, t.TempDir())...)
	start := time.Now()
	ids := twoPersonCall(t, base, "outage", nil)
	callTook := time.Since(start)
	recv.mu.Lock()
	failures := recv.failures
	recv.mu.Unlock()
	if failures == 0 {
		t.Fatalf("the call (%v) ended without a failed delivery: the outage tested nothing", callTook)
	}
	waitFor(t, "11 webhook events after the outage", func() bool { return len(recv.received()) >= 11 })
	checkSequence(t, recv.received(), ids)
	m := scrapeMetrics(t, srv)
	for _, r := range webhook.DropReasons {
		if d := m[`parley_webhook_dropped_total{reason="`+r+`"}`]; d != 0 {
			t.Errorf("%v events dropped (%s)", d, r)
		}
	}
	t.Logf("call took %v during the outage; %d failed attempts, %v retried by the sender, 0 lost", callTook, failures, m["parley_webhook_failed_attempts_total"])
}

// TestWebhookReceiverGone: nothing listens at the endpoint. The call goes on as usual, and every
// event is dropped and counted once its retry time is up.
func TestWebhookReceiverGone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String() + "/hook"
	_ = ln.Close() // connection refused from now on
	srv, base := startServer(t, webhookEnv(gone, t.TempDir(), "PARLEY_WEBHOOK_RETRY_TIMEOUT", "1")...)
	start := time.Now()
	twoPersonCall(t, base, "gone", nil)
	callTook := time.Since(start)
	var m map[string]float64
	waitFor(t, "11 dropped events", func() bool {
		m = scrapeMetrics(t, srv)
		return m[`parley_webhook_dropped_total{reason="expired"}`] == 11
	})
	if m["parley_webhook_delivered_total"] != 0 || m["parley_webhook_failed_attempts_total"] == 0 || m["parley_webhook_queue_depth"] != 0 {
		t.Fatalf("metrics %v", m)
	}
	t.Logf("call took %v with the endpoint gone; 11 of 11 events dropped after %v failed attempts", callTook, m["parley_webhook_failed_attempts_total"])
}

// TestWebhookOrderOfAnUnpublish: openvidu-server ends the publisher's media connection first, then
// the subscriptions to it (KurentoSessionManager.unpublishVideo), both with reason unpublish.
func TestWebhookOrderOfAnUnpublish(t *testing.T) {
	recv := newHookReceiver(t)
	_, base := startServer(t, webhookEnv(recv.srv.URL, t.TempDir())...)
	ids := twoPersonCall(t, base, "unpublished", func(alice, bob *rpcClient) {
		alice.result("unpublishVideo", nil)
		bob.waitNote("participantUnpublished", func(p map[string]any) bool { return p["reason"] == "unpublish" })
	})
	waitFor(t, "sessionDestroyed", func() bool {
		got := recv.received()
		return len(got) > 0 && got[len(got)-1]["event"] == "sessionDestroyed"
	})
	var seq []string
	for _, e := range recv.received() {
		switch e["event"] {
		case "webrtcConnectionDestroyed":
			seq = append(seq, e["connection"].(string)+" "+e["reason"].(string))
		case "participantLeft":
			seq = append(seq, "left "+e["connectionId"].(string))
		}
	}
	want := []string{"OUTBOUND unpublish", "INBOUND unpublish", "left " + ids.bob, "left " + ids.alice}
	if !slices.Equal(seq, want) {
		t.Fatalf("media and leave events %v, want %v", seq, want)
	}
}
