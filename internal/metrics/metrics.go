// Package metrics exposes Parley's Prometheus metrics on a listener of its own
// (PARLEY_METRICS_ADDR, loopback by default): what the session model's events say (participants,
// streams, subscriptions, and their turnover), what the SFU, TURN, webhook and CDR counters say at
// scrape time, signaling errors by JSON-RPC code, and the Go runtime and process.
//
// It is the only package that imports the Prometheus client. It listens to session events, reads
// the Stats of sfu, turn, webhook, cdr and recording, and never imports api, signaling or edge: signaling
// reports its errors through a func the composition root wires to SignalingError.
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parley/parley/internal/cdr"
	"github.com/parley/parley/internal/edge"
	"github.com/parley/parley/internal/recording"
	"github.com/parley/parley/internal/session"
	"github.com/parley/parley/internal/sfu"
	"github.com/parley/parley/internal/turn"
	"github.com/parley/parley/internal/webhook"
)

// Sources are the counters read at each scrape; nil ones are not exported (TURN, webhook and CDR
// may be off).
type Sources struct {
	Sessions func() int
	SFU      func() sfu.Stats
	TURN     func() turn.Stats
	Webhook  func() webhook.Stats
	CDR      func() cdr.Stats
	// Recording is nil unless OPENVIDU_RECORDING=true.
	Recording func() recording.Stats
	// Edge counts the shared TCP port's connections: handed over, or dropped and why.
	Edge func() edge.Stats
	// Node, in a cluster, is this node's id (PARLEY_NODE_ID): every metric then carries it as the
	// label node, so one Prometheus tells the nodes apart whatever its scrape config says.
	Node string
	// Links are this node's inter-node media links by receiving node (nil without a cluster).
	Links func() []LinkCounts
}

// LinkCounts are what this node sent another node of the cluster on inter-node links.
type LinkCounts struct {
	Peer           string
	Tracks         int
	Packets, Bytes uint64
}

// Metrics holds the registry. Listen and SignalingError are safe from any goroutine and never
// block: Prometheus counters and gauges are atomics.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger
	ln  net.Listener

	participants, streams, subscriptions prometheus.Gauge
	events                               *prometheus.CounterVec
	left                                 *prometheus.CounterVec
	signalingErrors                      *prometheus.CounterVec
}

// New builds the registry with the given sources.
func New(src Sources, log *slog.Logger) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), log: log}
	m.participants = prometheus.NewGauge(prometheus.GaugeOpts{Name: "parley_participants",
		Help: "Participants joined to a session (active connections)."})
	m.streams = prometheus.NewGauge(prometheus.GaugeOpts{Name: "parley_published_streams",
		Help: "Streams being published (OUTBOUND media connections)."})
	m.subscriptions = prometheus.NewGauge(prometheus.GaugeOpts{Name: "parley_subscribed_streams",
		Help: "Subscriptions to streams (INBOUND media connections)."})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_session_events_total",
		Help: "Session model events by OpenVidu name (sessionCreated, participantJoined, signalSent...)."}, []string{"event"})
	m.left = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_participants_left_total",
		Help: "Participants that left, by OpenVidu reason (disconnect, networkDisconnect, forceDisconnectByServer...)."}, []string{"reason"})
	m.signalingErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_signaling_errors_total",
		Help: "JSON-RPC error answers by code (OpenVidu codes, and -32xxx for malformed requests)."}, []string{"code"})
	var reg prometheus.Registerer = m.reg
	if src.Node != "" {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"node": src.Node}, m.reg)
	}
	reg.MustRegister(m.participants, m.streams, m.subscriptions, m.events, m.left, m.signalingErrors,
		&collector{src: src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Listen updates the event metrics (a session.Listener).
func (m *Metrics) Listen(e session.Event) {
	m.events.WithLabelValues(e.Kind.String()).Inc()
	switch e.Kind {
	case session.ParticipantJoined:
		m.participants.Inc()
	case session.ParticipantLeft:
		m.participants.Dec()
		m.left.WithLabelValues(e.Reason).Inc()
	case session.WebRTCConnectionCreated, session.WebRTCConnectionDestroyed:
		g := m.streams
		if e.Subscriber != "" {
			g = m.subscriptions
		}
		if e.Kind == session.WebRTCConnectionCreated {
			g.Inc()
		} else {
			g.Dec()
		}
	}
}

// SignalingError counts a JSON-RPC error answer (signaling.Config.OnError).
func (m *Metrics) SignalingError(code int) {
	m.signalingErrors.WithLabelValues(strconv.Itoa(code)).Inc()
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelError)})
}

// Bind listens on addr for Run; it is a separate step so a taken port fails start-up.
func (m *Metrics) Bind(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	m.ln = ln
	return nil
}

// Addr is the bound address (nil before Bind).
func (m *Metrics) Addr() net.Addr {
	if m.ln == nil {
		return nil
	}
	return m.ln.Addr()
}

// Close releases the listener of a Metrics that never ran.
func (m *Metrics) Close() error {
	if m.ln == nil {
		return nil
	}
	return m.ln.Close()
}

// Run serves /metrics on the bound listener until ctx ends. Without Bind it returns at once.
func (m *Metrics) Run(ctx context.Context) error {
	if m.ln == nil {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(m.ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx) // a scrape cut short at shutdown is of no consequence
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
