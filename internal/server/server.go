// Package server builds Parley from its configuration and runs it: the composition root that
// wires edge, api, signaling, session and sfu together, and shuts them down in order.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/parley/parley/internal/api"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/edge"
	"github.com/parley/parley/internal/session"
	"github.com/parley/parley/internal/sfu"
	"github.com/parley/parley/internal/signaling"
)

// Server is a running Parley node.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	ln      net.Listener
	media   *sfu.SFU
	manager *session.Manager
	sig     *signaling.Handler
	edge    *edge.Server
}

// New binds the ports and builds every component. With HTTPS_PORT 0 (tests) the kernel picks the
// port and cfg is updated to the one bound.
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	host := ""
	if cfg.Dev {
		host = "127.0.0.1" // dev mode is for this machine only, like openvidu-dev's localhost URLs
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(cfg.HTTPSPort)))
	if err != nil {
		return nil, fmt.Errorf("listen on tcp/%d (HTTPS_PORT): %w", cfg.HTTPSPort, err)
	}
	if cfg.HTTPSPort == 0 {
		cfg.HTTPSPort = ln.Addr().(*net.TCPAddr).Port
		if cfg.Media.Port == 0 {
			cfg.Media.Port = cfg.HTTPSPort
		}
	}
	announce, replace := announceAddrs(context.Background(), cfg.Dev, cfg.Domain, cfg.Media.AnnounceIPs, localAddrs(), cfg.Media.Port, log)
	media, err := sfu.New(sfu.Config{
		Port: cfg.Media.Port, ListenIPs: cfg.Media.ListenIPs, AnnounceIPs: announce, AnnounceReplace: replace,
		Loopback: cfg.Dev, MaxRecvBandwidth: cfg.Media.MaxRecvBandwidth,
	}, log.With("component", "sfu"))
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, ln: ln, media: media}
	s.manager = session.NewManager(session.Options{
		Config: cfg.Session, WebSocketURL: cfg.WebSocketURL(), Media: media, Log: log.With("component", "session"),
	})
	s.sig = signaling.New(signaling.Config{
		ReconnectGrace: cfg.Session.ReconnectGrace, PingTimeout: cfg.Session.PingTimeout, IceServers: s.iceServers,
	}, s.manager, log.With("component", "signaling"))
	rest := api.New(api.Config{
		Secret: cfg.Secret, PublicURL: cfg.PublicURL(), Domain: cfg.Domain, HTTPSPort: cfg.HTTPSPort,
		SupportDeprecatedAPI: cfg.SupportDeprecatedAPI, ConfigJSON: configJSON(cfg),
	}, s.manager, log.With("component", "api"))

	mux := http.NewServeMux()
	mux.Handle("/openvidu", s.sig) // exact path: the SDK always dials /openvidu (protocol note §0.1)
	mux.Handle("/openvidu/api/", rest)
	if cfg.SupportDeprecatedAPI {
		mux.Handle("/api/", rest)
	}
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintf(w, "Parley is running. OpenVidu 2 applications: OPENVIDU_URL=%s\n", cfg.PublicURL())
	})
	s.edge = edge.New(ln, mux, log.With("component", "edge"))
	return s, nil
}

// Addr is the TCP address the edge listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Manager exposes the session model (for tests and the TURN liveness check).
func (s *Server) Manager() *session.Manager { return s.manager }

// MediaAddrs lists the UDP addresses media is bound on.
func (s *Server) MediaAddrs() []netip.AddrPort { return s.media.LocalAddrs() }

// iceServers is what joinRoom sends when the connection has none configured: never empty, so the SDK
// never falls back to public STUN servers. Until TURN is embedded, a STUN entry naming our own
// media port is enough to keep the browser on our network.
func (s *Server) iceServers(session.ConnectionID) []session.IceServer {
	host := s.cfg.Domain
	if s.cfg.Dev {
		host = "127.0.0.1"
	}
	return []session.IceServer{{URL: fmt.Sprintf("stun:%s:%d", host, s.cfg.Media.Port)}}
}

// Run serves until ctx ends, then shuts down in order: participants are told and evicted, sockets
// flushed and closed, the edge stops, media is released.
func (s *Server) Run(ctx context.Context) error {
	gcCtx, stopGC := context.WithCancel(context.Background())
	gcDone := make(chan struct{})
	go func() { defer close(gcDone); _ = s.manager.Run(gcCtx) }()
	s.log.Info("parley serving", "url", s.cfg.PublicURL(), "media_udp_port", s.cfg.Media.Port, "dev", s.cfg.Dev)
	edgeCtx, stopEdge := context.WithCancel(context.Background())
	edgeDone := make(chan error, 1)
	go func() { edgeDone <- s.edge.Run(edgeCtx) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-edgeDone:
		edgeDone <- err
	}
	s.log.Info("shutting down")
	s.manager.Shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	s.sig.Shutdown(sctx)
	cancel()
	stopEdge()
	if e := <-edgeDone; err == nil {
		err = e
	}
	stopGC()
	<-gcDone
	if e := s.media.Close(); err == nil {
		err = e
	}
	return err
}

func configJSON(c *config.Config) map[string]any {
	return map[string]any{
		"VERSION": api.Version, "DOMAIN_OR_PUBLIC_IP": c.Domain, "HTTPS_PORT": c.HTTPSPort,
		"OPENVIDU_PUBLICURL": c.PublicURL(), "OPENVIDU_CDR": false,
		"OPENVIDU_STREAMS_VIDEO_MAX_RECV_BANDWIDTH": c.Media.MaxRecvBandwidth,
		"OPENVIDU_STREAMS_VIDEO_MIN_RECV_BANDWIDTH": c.Media.MinRecvBandwidth,
		"OPENVIDU_STREAMS_VIDEO_MAX_SEND_BANDWIDTH": c.Media.MaxSendBandwidth,
		"OPENVIDU_STREAMS_VIDEO_MIN_SEND_BANDWIDTH": c.Media.MinSendBandwidth,
		"OPENVIDU_STREAMS_FORCED_VIDEO_CODEC":       c.Session.ForcedVideoCodec,
		"OPENVIDU_STREAMS_ALLOW_TRANSCODING":        c.Session.AllowTranscoding,
		"OPENVIDU_WEBRTC_SIMULCAST":                 false,
		"OPENVIDU_SESSIONS_GARBAGE_INTERVAL":        int(c.Session.GarbageInterval / time.Second),
		"OPENVIDU_SESSIONS_GARBAGE_THRESHOLD":       int(c.Session.GarbageThreshold / time.Second),
		"OPENVIDU_RECORDING":                        false,
		"OPENVIDU_WEBHOOK":                          false,
	}
}
