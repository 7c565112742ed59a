package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/parley/parley/internal/api"
	"github.com/parley/parley/internal/cdr"
	"github.com/parley/parley/internal/metrics"
	"github.com/parley/parley/internal/session"
	"github.com/parley/parley/internal/webhook"
)

// eventSinks are the session model's listeners that report outward: webhooks, the call detail
// record and metrics. They are built last in New and stopped last in Run, so they see every event
// of the shutdown's evictions.
type eventSinks struct {
	metrics *metrics.Metrics
	webhook *webhook.Sender // nil unless OPENVIDU_WEBHOOK=true
	cdr     *cdr.Writer     // nil unless OPENVIDU_CDR=true

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// newEventSinks builds the sinks, registers them with the model, binds the metrics listener and
// routes GET /openvidu/cdr. The returned func releases what was bound if New fails later.
func (s *Server) newEventSinks(mux *http.ServeMux, rest *api.API) (func() error, error) {
	cfg, e := s.cfg, &s.events
	src := metrics.Sources{Sessions: s.manager.SessionCount, SFU: s.media.Stats, Edge: s.edge.Stats}
	if s.cluster != nil {
		src.Node = s.cluster.ID()
	}
	if s.links != nil {
		src.Links = func() []metrics.LinkCounts {
			var out []metrics.LinkCounts
			for _, l := range s.links.Stats() {
				out = append(out, metrics.LinkCounts{Peer: l.Node, Tracks: l.Tracks, Packets: l.Packets, Bytes: l.Bytes})
			}
			return out
		}
	}
	if s.turn != nil {
		src.TURN = s.turn.Stats
	}
	if s.recorder != nil {
		src.Recording = s.recorder.Stats
	}
	if cfg.Webhook.Enabled {
		key := []byte(cfg.Webhook.Secret)
		if len(key) == 0 {
			key = webhook.DefaultKey(cfg.Secret)
		}
		headers := http.Header{}
		for _, h := range cfg.Webhook.Headers {
			headers.Add(h.Name, h.Value)
		}
		var err error
		if e.webhook, err = webhook.New(webhook.Config{Endpoint: cfg.Webhook.Endpoint, Headers: headers, Events: cfg.Webhook.Events,
			Key: key, RetryTimeout: cfg.Webhook.RetryTimeout}, s.log.With("component", "webhook")); err != nil {
			return nil, err
		}
		src.Webhook = e.webhook.Stats
		s.reportTo(e.webhook.Listen)
	}
	if cfg.CDR.Enabled {
		var err error
		if e.cdr, err = cdr.New(cdr.Config{Dir: cfg.CDR.Path}, s.log.With("component", "cdr")); err != nil {
			return nil, err
		}
		src.CDR = e.cdr.Stats
		s.reportTo(e.cdr.Listen)
		mux.Handle("GET /openvidu/cdr", e.cdr.Handler(rest.Authorized))
	}
	e.metrics = metrics.New(src, s.log.With("component", "metrics"))
	s.manager.Listen(e.metrics.Listen)
	if cfg.Metrics.Addr != "" {
		if err := e.metrics.Bind(cfg.Metrics.Addr); err != nil {
			return nil, fmt.Errorf("listen on %s (PARLEY_METRICS_ADDR): %w", cfg.Metrics.Addr, err)
		}
	}
	return e.metrics.Close, nil
}

// reportTo registers a sink that reports events outward (webhooks, the CDR). In a cluster it gets
// each event once cluster-wide: the node decides which of them it reports (cluster.Node.Report).
func (s *Server) reportTo(l session.Listener) {
	if s.cluster != nil {
		s.cluster.Report(l)
		return
	}
	s.manager.Listen(l)
}

// signalingError counts a JSON-RPC error (signaling.Config.OnError); metrics exist once New is done,
// before any socket is served.
func (s *Server) signalingError(code int) {
	if m := s.events.metrics; m != nil {
		m.SignalingError(code)
	}
}

// MetricsAddr is the address /metrics is served on, nil when PARLEY_METRICS_ADDR is off.
func (s *Server) MetricsAddr() net.Addr { return s.events.metrics.Addr() }

// startEventSinks runs the sinks until stopEventSinks, on a context of their own: Run's ends
// before the shutdown's last events are emitted.
func (s *Server) startEventSinks() {
	e := &s.events
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	run := func(f func(context.Context) error, what string) {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := f(ctx); err != nil {
				s.log.Warn(what+" stopped", "error", err)
			}
		}()
	}
	run(e.metrics.Run, "metrics listener")
	if e.cdr != nil {
		run(e.cdr.Run, "cdr writer")
	}
	if e.webhook != nil {
		run(e.webhook.Run, "webhook sender") // an error here is the flush deadline: events were dropped
	}
	s.log.Info("event sinks running", "webhook", e.webhook != nil, "cdr", e.cdr != nil, "metrics", s.cfg.Metrics.Addr)
}

// stopEventSinks ends the sinks once the sessions are gone: the CDR writes and the webhook sender
// delivers what is queued (within its flush deadline) before it returns.
func (s *Server) stopEventSinks() {
	s.events.cancel()
	s.events.wg.Wait()
}
