package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley/parley/internal/sendq"
	"github.com/parley/parley/internal/sfu"
	"github.com/parley/parley/internal/webhook"
)

// collector turns the components' Stats into metrics at scrape time: their counters are plain
// atomics on the forwarding path, and reading them costs the media nothing between scrapes.
type collector struct{ src Sources }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	dSessions       = desc("parley_sessions", "Sessions (created through REST and not yet closed or collected).")
	dPeerConns      = desc("parley_sfu_peer_connections", "WebRTC PeerConnections held by the SFU, by role.", "role")
	dPackets        = desc("parley_rtp_packets_total", "RTP packets received from publishers (in) and sent to subscribers (out, retransmissions included).", "direction")
	dBytes          = desc("parley_rtp_bytes_total", "RTP payload bytes received (in) and sent (out).", "direction")
	dWriteErrors    = desc("parley_rtp_write_errors_total", "RTP packets that could not be sent to a subscriber (not connected yet, or gone).")
	dNACKs          = desc("parley_rtcp_nacks_total", "Packets subscribers asked for again (NACKed sequence numbers).")
	dRetransmitted  = desc("parley_rtp_retransmitted_packets_total", "NACKed packets still buffered and sent again.")
	dPLIs           = desc("parley_rtcp_plis_total", "Keyframe requests (PLI) sent to publishers.")
	dRtxSkipped     = desc("parley_rtp_retransmit_skipped_total", "NACKed packets not sent again, by reason: stale (from before the subscriber's video pause), repeat (already sent again within the round trip), old (over a second), missing (no longer buffered), budget (over the subscriber's retransmission budget).", "reason")
	dVideoPauses    = desc("parley_subscriber_video_pauses_total", "Subscriptions whose link could not carry the video: they got audio only until it fitted again.")
	dVideoResumes   = desc("parley_subscriber_video_resumes_total", "Paused subscriptions that got video again.")
	dCongDropped    = desc("parley_rtp_congestion_dropped_packets_total", "Video packets not sent to paused subscriptions (whole frames, up to the next keyframe).")
	dPLIsFiltered   = desc("parley_rtcp_plis_filtered_total", "Subscribers' keyframe requests not passed on to the publisher because their link was congested.")
	dLost           = desc("parley_rtp_packets_lost_total", "RTP packets lost: in = missing from the publishers' sequences when they reached the SFU, out = lost on the way to subscribers as their RTCP receiver reports say.", "direction")
	dTURNAllocs     = desc("parley_turn_allocations", "Live TURN relay allocations.")
	dTURNAllocTotal = desc("parley_turn_allocations_total", "TURN allocations ever created.")
	dTURNClients    = desc("parley_turn_clients", "Open TURN over TCP/TLS client connections.")
	dTURNPackets    = desc("parley_turn_relayed_packets_total", "Datagrams relayed, to the SFU (to_peer) and back to clients (from_peer).", "direction")
	dTURNBytes      = desc("parley_turn_relayed_bytes_total", "Bytes relayed, to the SFU (to_peer) and back to clients (from_peer).", "direction")
	dTURNRefused    = desc("parley_turn_refused_total", "TURN requests and datagrams refused, by reason.", "reason")
	dHookQueue      = desc("parley_webhook_queue_depth", "Webhook events waiting for delivery.")
	dHookDelivered  = desc("parley_webhook_delivered_total", "Webhook events the endpoint accepted.")
	dHookFailed     = desc("parley_webhook_failed_attempts_total", "Webhook requests that failed (network error, 408, 429, 5xx).")
	dHookDropped    = desc("parley_webhook_dropped_total", "Webhook events never delivered, by reason.", "reason")
	dHookLatency    = desc("parley_webhook_delivery_latency_seconds", "Time from an event to the endpoint's acceptance of it, retries included.")
	dCDRWritten     = desc("parley_cdr_written_total", "Call detail record lines written.")
	dCDRDropped     = desc("parley_cdr_dropped_total", "Call detail record lines lost (full queue or failed write).")
	dRecordings     = desc("parley_recordings", "Recordings in progress.")
	dRecStreams     = desc("parley_recording_streams", "Stream files being written by recordings.")
	dRecDropped     = desc("parley_recording_dropped_packets_total", "RTP packets a recording writer could not keep up with (its file has a gap).")
	dSendQSent      = desc("parley_send_queue_sent_total", "Frames written to peers reached over TCP (ice_tcp; turn_tcp = TURN over TCP or TLS) through their send queues.", "transport")
	dSendQDropped   = desc("parley_send_queue_dropped_total", "Frames toward peers reached over TCP dropped whole instead of sent late, by transport and reason (stale: waited longer than the age limit; full: over the byte bound; padding: a probe's padding that found no room on the link).", "transport", "reason")
	dEdgeAccepted   = desc("parley_edge_accepted_connections_total", "Connections accepted on the shared TCP port.")
	dEdgeHanded     = desc("parley_edge_handed_connections_total", "Connections the shared port handed over, by protocol (http, turn, ice_tcp).", "protocol")
	dEdgeTLS        = desc("parley_edge_tls_handshakes_total", "TLS handshakes completed on the shared port (ACME TLS-ALPN-01 challenges as acme).", "kind")
	dEdgeDropped    = desc("parley_edge_dropped_connections_total", "Connections the shared port closed before any handler got them, by reason: timeout (said too little in time), read (closed early), tls_disabled, tls_handshake, turn_disabled, handoff (no handler took it in time), shutdown, proxy_missing (no PROXY header from a balancer of PARLEY_PROXY_PROTOCOL_FROM), proxy_untrusted (a PROXY header from anyone else), proxy_header (a PROXY header that does not parse).", "reason")
	dRecFailed      = desc("parley_recordings_failed_total", "Recordings that ended failed (write error such as a full disk, failed mix).")
	dSentBytes      = desc("parley_rtp_sent_bytes_total", "Bytes of RTP sent to subscribers (headers included), by kind: media (sent once), retransmission (answers to NACKs), padding (probes of a paused subscriber's link).", "kind")
	dRetransRTX     = desc("parley_rtp_retransmitted_rtx_packets_total", "Retransmissions sent on the subscriber's RTX stream (RFC 4588) rather than its media stream.")
	dVideoPaused    = desc("parley_subscriber_video_paused", "Subscriptions whose video is paused now because their link cannot carry it (they get audio only).")
	dProbes         = desc("parley_subscriber_link_probes_total", "Probes of a paused subscription's link (padding at 1.5x what its video needs), by result: passed (its video resumed), other (failed, or running).", "result")
	dSendQWait      = desc("parley_send_queue_video_wait_seconds", "How long video frames toward peers reached over TCP waited in their send queues before being written, by transport (frames dropped instead are in parley_send_queue_dropped_total).", "transport")
	dSendQHeld      = desc("parley_send_queue_held_total", "Times a send queue's writer held back because the TCP socket had as much unacknowledged as its bound, by transport.", "transport")
	dLinkTracks     = desc("parley_cascade_tracks", "Tracks this node sends to another node of the cluster on their inter-node link (one per cascaded stream's kind), by receiving node.", "peer")
	dLinkPackets    = desc("parley_cascade_sent_packets_total", "RTP packets sent to another node on inter-node links, by receiving node.", "peer")
	dLinkBytes      = desc("parley_cascade_sent_bytes_total", "RTP bytes (headers included) sent to another node on inter-node links, by receiving node.", "peer")
)

// sendQueue exports one transport's send-queue counters.
func sendQueue(ch chan<- prometheus.Metric, transport string, s sendq.Stats) {
	ch <- prometheus.MustNewConstMetric(dSendQSent, prometheus.CounterValue, float64(s.Sent.Frames), transport)
	ch <- prometheus.MustNewConstMetric(dSendQDropped, prometheus.CounterValue, float64(s.Stale.Frames), transport, "stale")
	ch <- prometheus.MustNewConstMetric(dSendQDropped, prometheus.CounterValue, float64(s.Full.Frames), transport, "full")
	ch <- prometheus.MustNewConstMetric(dSendQDropped, prometheus.CounterValue, float64(s.Padding.Frames), transport, "padding")
	ch <- prometheus.MustNewConstMetric(dSendQHeld, prometheus.CounterValue, float64(s.Held), transport)
	buckets := make(map[float64]uint64, len(sendq.WaitBuckets))
	var n uint64
	for i, le := range sendq.WaitBuckets {
		n += s.VideoWaits[i]
		buckets[le.Seconds()] = n
	}
	n += s.VideoWaits[len(sendq.WaitBuckets)]
	ch <- prometheus.MustNewConstHistogram(dSendQWait, n, s.VideoWaitSum.Seconds(), buckets, transport)
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dSessions, dPeerConns, dPackets, dBytes, dWriteErrors, dNACKs, dRetransmitted, dPLIs, dLost,
		dRtxSkipped, dVideoPauses, dVideoResumes, dCongDropped, dPLIsFiltered,
		dTURNAllocs, dTURNAllocTotal, dTURNClients, dTURNPackets, dTURNBytes, dTURNRefused,
		dHookQueue, dHookDelivered, dHookFailed, dHookDropped, dHookLatency, dCDRWritten, dCDRDropped,
		dRecordings, dRecStreams, dRecDropped, dRecFailed, dSendQSent, dSendQDropped, dEdgeAccepted, dEdgeHanded, dEdgeTLS, dEdgeDropped,
		dSentBytes, dRetransRTX, dVideoPaused, dProbes, dSendQWait, dSendQHeld,
		dLinkTracks, dLinkPackets, dLinkBytes} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if c.src.Sessions != nil {
		gauge(dSessions, float64(c.src.Sessions()))
	}
	if c.src.SFU != nil {
		s := c.src.SFU()
		gauge(dPeerConns, float64(s.Publishers), "publisher")
		gauge(dPeerConns, float64(s.Subscribers), "subscriber")
		counter(dPackets, s.PacketsIn, "in")
		counter(dPackets, s.PacketsOut, "out")
		counter(dBytes, s.BytesIn, "in")
		counter(dBytes, s.BytesOut, "out")
		counter(dWriteErrors, s.WriteErrors)
		counter(dNACKs, s.NACKs)
		counter(dRetransmitted, s.Retransmitted)
		counter(dPLIs, s.KeyframeRequests)
		counter(dLost, s.LostIn, "in")
		counter(dLost, s.LostOut, "out")
		for i, n := range s.RetransmitSkipped {
			counter(dRtxSkipped, n, sfu.RetransmitSkipReasons[i])
		}
		counter(dVideoPauses, s.VideoPauses)
		counter(dVideoResumes, s.VideoResumes)
		counter(dCongDropped, s.CongestionDropped)
		counter(dPLIsFiltered, s.KeyframeRequestsFiltered)
		sendQueue(ch, "ice_tcp", s.ICETCP)
		counter(dSentBytes, s.BytesOut-s.RetransmittedBytes-s.PaddingBytes, "media")
		counter(dSentBytes, s.RetransmittedBytes, "retransmission")
		counter(dSentBytes, s.PaddingBytes, "padding")
		counter(dRetransRTX, s.RetransmittedRTX)
		gauge(dVideoPaused, float64(s.VideoPaused))
		counter(dProbes, s.ProbesPassed, "passed")
		counter(dProbes, s.Probes-s.ProbesPassed, "other")
	}
	if c.src.Links != nil {
		for _, l := range c.src.Links() {
			gauge(dLinkTracks, float64(l.Tracks), l.Peer)
			counter(dLinkPackets, l.Packets, l.Peer)
			counter(dLinkBytes, l.Bytes, l.Peer)
		}
	}
	if c.src.TURN != nil {
		s := c.src.TURN()
		gauge(dTURNAllocs, float64(s.Allocations))
		counter(dTURNAllocTotal, s.AllocationsTotal)
		gauge(dTURNClients, float64(s.Clients))
		counter(dTURNPackets, s.ToPeerPackets, "to_peer")
		counter(dTURNPackets, s.FromPeerPackets, "from_peer")
		counter(dTURNBytes, s.ToPeerBytes, "to_peer")
		counter(dTURNBytes, s.FromPeerBytes, "from_peer")
		counter(dTURNRefused, s.AuthFailures, "auth")
		counter(dTURNRefused, s.QuotaRejections, "quota")
		counter(dTURNRefused, s.TCPRelayRefusals, "tcp_relay")
		counter(dTURNRefused, s.DroppedForbidden, "forbidden_peer")
		sendQueue(ch, "turn_tcp", s.ClientQueue)
	}
	if c.src.Webhook != nil {
		s := c.src.Webhook()
		gauge(dHookQueue, float64(s.Queued))
		counter(dHookDelivered, s.Delivered)
		counter(dHookFailed, s.FailedAttempts)
		for i, n := range s.Dropped {
			counter(dHookDropped, n, webhook.DropReasons[i])
		}
		// A summary without quantiles: rate(sum)/rate(count) is the mean latency, and the sender
		// needs no histogram of its own.
		ch <- prometheus.MustNewConstSummary(dHookLatency, s.Delivered, s.LatencySum.Seconds(), nil)
	}
	if c.src.CDR != nil {
		s := c.src.CDR()
		counter(dCDRWritten, s.Written)
		counter(dCDRDropped, s.Dropped)
	}
	if c.src.Edge != nil {
		s := c.src.Edge()
		counter(dEdgeAccepted, s.Accepted)
		counter(dEdgeHanded, s.HTTP, "http")
		counter(dEdgeHanded, s.TURN, "turn")
		counter(dEdgeHanded, s.ICETCP, "ice_tcp")
		counter(dEdgeTLS, s.TLS, "connection")
		counter(dEdgeTLS, s.ACME, "acme")
		counter(dEdgeDropped, s.DropTimeout, "timeout")
		counter(dEdgeDropped, s.DropRead, "read")
		counter(dEdgeDropped, s.DropTLSDisabled, "tls_disabled")
		counter(dEdgeDropped, s.DropTLSHandshake, "tls_handshake")
		counter(dEdgeDropped, s.DropTURNDisabled, "turn_disabled")
		counter(dEdgeDropped, s.DropHandoff, "handoff")
		counter(dEdgeDropped, s.DropShutdown, "shutdown")
		counter(dEdgeDropped, s.DropProxyMissing, "proxy_missing")
		counter(dEdgeDropped, s.DropProxyUntrusted, "proxy_untrusted")
		counter(dEdgeDropped, s.DropProxyHeader, "proxy_header")
	}
	if c.src.Recording != nil {
		s := c.src.Recording()
		gauge(dRecordings, float64(s.Active))
		gauge(dRecStreams, float64(s.Streams))
		counter(dRecDropped, s.Dropped)
		counter(dRecFailed, s.Failed)
	}
}

// compile-time check that the collector satisfies the interface the registry calls.
var _ prometheus.Collector = (*collector)(nil)
