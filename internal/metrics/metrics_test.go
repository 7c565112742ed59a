package metrics

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/cdr"
	"github.com/parley/parley/internal/edge"
	"github.com/parley/parley/internal/recording"
	"github.com/parley/parley/internal/sendq"
	"github.com/parley/parley/internal/session"
	"github.com/parley/parley/internal/sfu"
	"github.com/parley/parley/internal/turn"
	"github.com/parley/parley/internal/webhook"
)

// scrape fetches /metrics over a real socket and returns the lines that are not comments.
func scrape(t *testing.T, addr string) map[string]string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]string{}
	for _, l := range strings.Split(string(body), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && !strings.HasPrefix(l, "#") {
			out[k] = v
		}
	}
	return out
}

func TestExposition(t *testing.T) {
	var hook webhook.Stats
	hook.Queued, hook.Delivered, hook.LatencySum = 3, 4, 2*time.Second
	hook.Dropped[webhook.DropExpired] = 5
	m := New(Sources{
		Sessions: func() int { return 2 },
		SFU: func() sfu.Stats {
			st := sfu.Stats{Publishers: 1, Subscribers: 2, PacketsIn: 10, BytesIn: 1000, PacketsOut: 20, BytesOut: 2000, NACKs: 3, Retransmitted: 2, KeyframeRequests: 1, LostIn: 4, LostOut: 6,
				RetransmitSkipped: [5]uint64{0, 0, 0, 0, 11}, VideoPauses: 2, KeyframeRequestsFiltered: 5}
			st.ICETCP.Sent.Frames, st.ICETCP.Stale.Frames, st.ICETCP.Full.Frames = 30, 8, 1
			st.RetransmittedBytes, st.PaddingBytes, st.RetransmittedRTX = 300, 200, 1
			st.VideoPaused, st.Probes, st.ProbesPassed = 1, 5, 2
			st.ICETCP.VideoWaits[0], st.ICETCP.VideoWaits[4], st.ICETCP.VideoWaits[len(sendq.WaitBuckets)] = 6, 3, 1
			st.ICETCP.VideoWaitSum, st.ICETCP.Held = 1500*time.Millisecond, 4
			return st
		},
		TURN: func() turn.Stats {
			st := turn.Stats{Allocations: 1, ToPeerBytes: 77, FromPeerBytes: 88, AuthFailures: 6}
			st.ClientQueue.Stale.Frames, st.ClientQueue.Padding.Frames = 12, 3
			return st
		},
		Webhook:   func() webhook.Stats { return hook },
		CDR:       func() cdr.Stats { return cdr.Stats{Written: 9} },
		Recording: func() recording.Stats { return recording.Stats{Active: 1, Streams: 2, Dropped: 7, Failed: 1} },
		Links:     func() []LinkCounts { return []LinkCounts{{Peer: "node-b", Tracks: 2, Packets: 40, Bytes: 4000}} },
	}, slog.New(slog.DiscardHandler))
	if err := m.Bind("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	for _, e := range []session.Event{
		{Kind: session.ParticipantJoined}, {Kind: session.ParticipantJoined},
		{Kind: session.WebRTCConnectionCreated}, {Kind: session.WebRTCConnectionCreated, Subscriber: "con_B"},
		{Kind: session.WebRTCConnectionDestroyed, Subscriber: "con_B"}, {Kind: session.ParticipantLeft, Reason: "disconnect"},
	} {
		m.Listen(e)
	}
	m.SignalingError(401)
	m.SignalingError(-32601)
	m.SignalingError(401)

	got := scrape(t, m.Addr().String())
	want := map[string]string{
		"parley_sessions": "2", "parley_participants": "1", "parley_published_streams": "1", "parley_subscribed_streams": "0",
		`parley_session_events_total{event="participantJoined"}`: "2",
		`parley_participants_left_total{reason="disconnect"}`:    "1",
		`parley_signaling_errors_total{code="401"}`:              "2",
		`parley_signaling_errors_total{code="-32601"}`:           "1",
		`parley_sfu_peer_connections{role="subscriber"}`:         "2",
		`parley_rtp_packets_total{direction="in"}`:               "10",
		`parley_rtp_bytes_total{direction="out"}`:                "2000",
		"parley_rtcp_nacks_total":                                "3",
		`parley_cascade_tracks{peer="node-b"}`:                   "2",
		`parley_cascade_sent_bytes_total{peer="node-b"}`:         "4000",
		"parley_rtp_retransmitted_packets_total":                 "2",
		"parley_rtcp_plis_total":                                 "1",
		`parley_rtp_retransmit_skipped_total{reason="budget"}`:   "11",
		"parley_subscriber_video_pauses_total":                   "2",
		"parley_rtcp_plis_filtered_total":                        "5",
		`parley_rtp_packets_lost_total{direction="in"}`:          "4",
		`parley_rtp_packets_lost_total{direction="out"}`:         "6",
		"parley_turn_allocations":                                "1",
		`parley_turn_relayed_bytes_total{direction="from_peer"}`: "88",
		`parley_turn_refused_total{reason="auth"}`:               "6",
		"parley_webhook_queue_depth":                             "3",
		`parley_webhook_dropped_total{reason="expired"}`:         "5",
		`parley_webhook_dropped_total{reason="queue_full"}`:      "0",
		"parley_webhook_delivery_latency_seconds_sum":            "2",
		"parley_webhook_delivery_latency_seconds_count":          "4",
		"parley_cdr_written_total":                               "9",
		"parley_recordings":                                      "1",
		"parley_recording_streams":                               "2",
		"parley_recording_dropped_packets_total":                 "7",
		"parley_recordings_failed_total":                         "1",
		"go_goroutines":                                          "",
		"process_open_fds":                                       "",
	}
	// The send queues toward TCP peers.
	want[`parley_send_queue_sent_total{transport="ice_tcp"}`] = "30"
	want[`parley_send_queue_dropped_total{reason="stale",transport="ice_tcp"}`] = "8"
	want[`parley_send_queue_dropped_total{reason="full",transport="ice_tcp"}`] = "1"
	want[`parley_send_queue_dropped_total{reason="stale",transport="turn_tcp"}`] = "12"
	want[`parley_send_queue_dropped_total{reason="full",transport="turn_tcp"}`] = "0"
	want[`parley_send_queue_dropped_total{reason="padding",transport="turn_tcp"}`] = "3"
	// What a weak subscriber costs: bytes by kind, RTX, paused subscriptions, probes, queue waits.
	want[`parley_rtp_sent_bytes_total{kind="media"}`] = "1500"
	want[`parley_rtp_sent_bytes_total{kind="retransmission"}`] = "300"
	want[`parley_rtp_sent_bytes_total{kind="padding"}`] = "200"
	want["parley_rtp_retransmitted_rtx_packets_total"] = "1"
	want["parley_subscriber_video_paused"] = "1"
	want[`parley_subscriber_link_probes_total{result="passed"}`] = "2"
	want[`parley_subscriber_link_probes_total{result="other"}`] = "3"
	want[`parley_send_queue_video_wait_seconds_bucket{transport="ice_tcp",le="0.01"}`] = "6"
	want[`parley_send_queue_video_wait_seconds_bucket{transport="ice_tcp",le="0.1"}`] = "6"
	want[`parley_send_queue_video_wait_seconds_bucket{transport="ice_tcp",le="0.2"}`] = "9"
	want[`parley_send_queue_video_wait_seconds_bucket{transport="ice_tcp",le="+Inf"}`] = "10"
	want[`parley_send_queue_video_wait_seconds_sum{transport="ice_tcp"}`] = "1.5"
	want[`parley_send_queue_video_wait_seconds_count{transport="turn_tcp"}`] = "0"
	want[`parley_send_queue_held_total{transport="ice_tcp"}`] = "4"
	for k, v := range want {
		g, ok := got[k]
		if !ok || (v != "" && g != v) {
			t.Errorf("%s = %q (present %v), want %q", k, g, ok, v)
		}
	}
}

func TestOptionalSourcesAndNoListener(t *testing.T) {
	m := New(Sources{}, slog.New(slog.DiscardHandler))
	if err := m.Run(context.Background()); err != nil { // not bound: returns at once
		t.Fatal(err)
	}
	if m.Addr() != nil || m.Close() != nil {
		t.Fatal("unbound metrics have no address")
	}
}

// TestDashboardQueriesExist: every parley_ series the Grafana dashboard queries is exported, so a
// renamed metric cannot leave an empty panel behind.
func TestDashboardQueriesExist(t *testing.T) {
	data, err := os.ReadFile("../../deploy/grafana/parley.json")
	if err != nil {
		t.Fatal(err)
	}
	m := New(Sources{Sessions: func() int { return 0 }, SFU: func() sfu.Stats { return sfu.Stats{} },
		TURN: func() turn.Stats { return turn.Stats{} }, Webhook: func() webhook.Stats { return webhook.Stats{} },
		CDR: func() cdr.Stats { return cdr.Stats{} }}, slog.New(slog.DiscardHandler))
	m.Listen(session.Event{Kind: session.ParticipantLeft, Reason: "disconnect"}) // vectors appear once used
	m.SignalingError(401)
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
	}
	used := regexp.MustCompile(`parley_[a-z_]+`).FindAllString(string(data), -1)
	if len(used) < 10 {
		t.Fatalf("the dashboard queries only %v", used)
	}
	for _, name := range used {
		if base := strings.TrimSuffix(strings.TrimSuffix(name, "_sum"), "_count"); !exported[base] {
			t.Errorf("the dashboard queries %s, which is not exported", name)
		}
	}
}

// TestEdgeDrops: the shared port's counters, drops by reason above all, reach /metrics.
func TestEdgeDrops(t *testing.T) {
	m := New(Sources{Edge: func() edge.Stats {
		return edge.Stats{Accepted: 12, HTTP: 5, TURN: 2, ICETCP: 1, TLS: 4, DropTimeout: 3, DropTLSHandshake: 1}
	}}, slog.New(slog.DiscardHandler))
	if err := m.Bind("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	got := scrape(t, m.Addr().String())
	for k, v := range map[string]string{
		"parley_edge_accepted_connections_total":                        "12",
		`parley_edge_handed_connections_total{protocol="http"}`:         "5",
		`parley_edge_handed_connections_total{protocol="ice_tcp"}`:      "1",
		`parley_edge_tls_handshakes_total{kind="connection"}`:           "4",
		`parley_edge_dropped_connections_total{reason="timeout"}`:       "3",
		`parley_edge_dropped_connections_total{reason="tls_handshake"}`: "1",
		`parley_edge_dropped_connections_total{reason="turn_disabled"}`: "0",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %s", k, got[k], v)
		}
	}
}

// TestClusterNodeLabel: in a cluster every series carries the node's id, ours and the runtime's.
func TestClusterNodeLabel(t *testing.T) {
	m := New(Sources{Sessions: func() int { return 1 }, Node: "node-b"}, slog.New(slog.DiscardHandler))
	if err := m.Bind("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	got := scrape(t, m.Addr().String())
	for _, k := range []string{`parley_participants{node="node-b"}`, `parley_sessions{node="node-b"}`, `go_goroutines{node="node-b"}`} {
		if _, ok := got[k]; !ok {
			t.Errorf("%s not exported", k)
		}
	}
	for k := range got {
		if !strings.Contains(k, `node="node-b"`) {
			t.Errorf("series without the node label: %s", k)
		}
	}
}
