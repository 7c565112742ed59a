// Package server builds Parley from its configuration and runs it: the composition root that
// wires edge, api, signaling, session and sfu together, and shuts them down in order.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/parley/parley/internal/api"
	"github.com/parley/parley/internal/app"
	"github.com/parley/parley/internal/cascade"
	"github.com/parley/parley/internal/clientip"
	"github.com/parley/parley/internal/cluster"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/edge"
	"github.com/parley/parley/internal/iceconfig"
	"github.com/parley/parley/internal/ipcam"
	"github.com/parley/parley/internal/mediaaddr"
	"github.com/parley/parley/internal/ports"
	"github.com/parley/parley/internal/recording"
	"github.com/parley/parley/internal/sendq"
	"github.com/parley/parley/internal/session"
	"github.com/parley/parley/internal/sfu"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/turn"
	"github.com/parley/parley/internal/whip"
	"github.com/parley/parley/web"
)

// Server is a running Parley node.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	ln       net.Listener // where REST and signaling answer: the shared port, or PARLEY_HTTP_ADDR behind a proxy
	edgeLn   net.Listener // the edge's port: ln, or PARLEY_MEDIA_TCP_PORT behind a proxy
	web      *http.Server // behind a proxy: plain HTTP on ln; nil otherwise (the edge serves HTTP)
	media    *sfu.SFU
	manager  *session.Manager
	sig      *signaling.Handler
	whip     *whip.Handler
	edge     *edge.Server
	turn     *turn.Server // nil when PARLEY_TURN=false
	app      *app.App
	revokes  chan session.ConnectionID
	httpPort *http.Server // production: redirects to HTTPS and answers ACME; nil in dev
	httpLn   net.Listener
	events   eventSinks          // webhooks, CDR, metrics (events.go)
	recorder *recording.Recorder // nil unless OPENVIDU_RECORDING=true
	cluster  *cluster.Node       // nil unless PARLEY_REDIS_URL is set
	links    *cascade.Links      // inter-node media; nil without a cluster
}

// New binds the ports and builds every component. With HTTPS_PORT 0 (tests) the kernel picks the
// port; the server then runs with a copy of cfg that holds the port bound. cfg itself, validated
// by config.Load, is never changed.
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	// HTTPS_PORT=0 lets the kernel pick the TCP port and the media port follows it (tests,
	// side-by-side runs); another process may hold that number on UDP, so pick again instead of
	// failing. Fixed ports are never changed behind the operator's back.
	kernelPicks := cfg.HTTPSPort == 0 && cfg.Media.Port == 0
	if cfg.Proxy.Enabled {
		kernelPicks = cfg.Proxy.MediaTCPPort == 0 && cfg.Media.Port == 0
	}
	for attempt := 1; ; attempt++ {
		s, err := build(cfg, log)
		if err == nil || !kernelPicks || attempt == 5 || !errors.Is(err, syscall.EADDRINUSE) {
			return s, err
		}
	}
}

// build is New for one choice of ports.
func build(validated *config.Config, log *slog.Logger) (s *Server, err error) {
	// The effective configuration: the operator's, with the ports the kernel picked filled in
	// below. Only this copy changes.
	effective := *validated
	cfg := &effective
	s = &Server{cfg: cfg, log: log, revokes: make(chan session.ConnectionID, 4096)}
	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i]()
			}
		}
	}()
	if cfg.Proxy.Enabled {
		if err = s.listenBehindProxy(cfg, &closers); err != nil {
			return nil, err
		}
	} else {
		host := ""
		if cfg.Dev {
			host = "127.0.0.1" // dev mode is for this machine only, like openvidu-dev's localhost URLs
		}
		if s.ln, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(cfg.HTTPSPort))); err != nil {
			return nil, fmt.Errorf("listen on tcp/%d (HTTPS_PORT): %w", cfg.HTTPSPort, err)
		}
		closers = append(closers, s.ln.Close)
		s.edgeLn = s.ln
		if cfg.HTTPSPort == 0 {
			cfg.HTTPSPort = s.ln.Addr().(*net.TCPAddr).Port
			if cfg.Media.Port == 0 {
				cfg.Media.Port = cfg.HTTPSPort
			}
		}
	}

	var tlsCfg *tls.Config
	switch {
	case cfg.Proxy.Enabled && cfg.TURN.Enabled:
		// The proxy has the web's certificate; ours is TURN over TLS's, for the turns: host name.
		if tlsCfg, _, err = edge.TLSConfig(edge.CertConfig{
			Type: cfg.TLS.Type, Domain: cfg.Proxy.TURNHost, Dir: cfg.DataDir, CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile,
			Email: cfg.TLS.Email, ACMEDirectoryURL: cfg.TLS.ACMEDirectory, HTTPSPort: cfg.Proxy.TURNPort,
		}, log.With("component", "tls")); err != nil {
			return nil, err
		}
	case cfg.Proxy.Enabled: // ICE-TCP only: no TLS on the media TCP port
	case !cfg.Dev:
		var portHandler http.Handler
		tlsCfg, portHandler, err = edge.TLSConfig(edge.CertConfig{
			Type: cfg.TLS.Type, Domain: cfg.Domain, Dir: cfg.DataDir, CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile,
			Email: cfg.TLS.Email, ACMEDirectoryURL: cfg.TLS.ACMEDirectory, HTTPSPort: cfg.HTTPSPort,
		}, log.With("component", "tls"))
		if err != nil {
			return nil, err
		}
		if s.httpLn, err = net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.HTTPPort))); err != nil {
			return nil, fmt.Errorf("listen on tcp/%d (HTTP_PORT, redirects and ACME): %w", cfg.HTTPPort, err)
		}
		closers = append(closers, s.httpLn.Close)
		s.httpPort = &http.Server{Handler: portHandler, ReadHeaderTimeout: 10 * time.Second}
	}

	// Routes are registered once the handlers exist; the edge needs the mux now because the SFU
	// needs the edge's ICE-TCP listener.
	mux := http.NewServeMux()
	clients := clientip.New(cfg.TrustedProxies) // PARLEY_TRUSTED_PROXIES
	var turnHandler func(net.Conn)
	if cfg.TURN.Enabled {
		turnHandler = s.handleTURN // s.turn is built below, before the edge runs
	}
	edgeHTTP := http.Handler(mux)
	if cfg.Proxy.Enabled {
		// A browser sent to https://turn-host/ by mistake lands on the web, at the proxy.
		edgeHTTP = http.RedirectHandler(cfg.PublicURL(), http.StatusFound)
		s.web = &http.Server{
			Handler:           proxyOnly(clients, cfg.PublicURL(), mux, log),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			// No ReadTimeout or WriteTimeout, as on the edge: signaling WebSockets live for hours.
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
	}
	edgeCfg := edge.Config{TLS: tlsCfg, HTTP: edgeHTTP, TURN: turnHandler}
	if cfg.Proxy.Enabled {
		// The proxy's SNI pass-through brings every TCP-443-only participant's TURN/TLS from its
		// one address: the per-address sniff cap must not count them as one source.
		edgeCfg.Relays = clients.Trusted
	}
	if len(cfg.ProxyProtocolFrom) > 0 { // PARLEY_PROXY_PROTOCOL_FROM: an L4 balancer in front
		edgeCfg.ProxyProtocolFrom = clientip.New(cfg.ProxyProtocolFrom).Trusted
	}
	if s.edge, err = edge.NewServer(s.edgeLn, edgeCfg, log.With("component", "edge")); err != nil {
		return nil, err
	}

	announce, replace := mediaaddr.Announce(context.Background(), mediaaddr.AnnouncePolicy{
		Dev: cfg.Dev, Domain: cfg.Domain, Configured: cfg.Media.AnnounceIPs, Port: cfg.Media.Port}, ports.LocalAddrs(), log)
	if s.media, err = sfu.New(sfu.Config{
		Port: cfg.Media.Port, ListenIPs: cfg.Media.ListenIPs, AnnounceIPs: announce, AnnounceReplace: replace,
		Loopback: cfg.Dev, MaxRecvBandwidth: cfg.Media.MaxRecvBandwidth,
		MinRecvBandwidth: cfg.Media.MinRecvBandwidth, MaxSendBandwidth: cfg.Media.MaxSendBandwidth, TCPListener: s.edge.ICETCPListener(),
		SendQueue: s.turnQueue,
	}, log.With("component", "sfu")); err != nil {
		return nil, err
	}
	closers = append(closers, s.media.Close)
	// Chromium ignores candidates at a private address on a port below 1024 (`parley ports` says so too).
	iceTCP := cfg.HTTPSPort
	if cfg.Proxy.Enabled {
		iceTCP = cfg.Proxy.MediaTCPPort
	}
	for _, w := range ports.PrivateLowPorts(mediaaddr.Advertised(announce, replace, s.media.LocalAddrs()), cfg.Media.Port, iceTCP) {
		log.Warn(w)
	}
	var ingest session.Ingester
	if ipcam.Available() {
		ingest = sessionMedia{s.media}
	} else {
		log.Info("IPCAM connections refused: ffmpeg or ffprobe is not installed")
	}
	s.manager = session.NewManager(session.Options{
		Config: cfg.Session, WebSocketURL: cfg.WebSocketURL(), Media: sessionMedia{s.media}, Ingest: ingest, Log: log.With("component", "session"),
		DescribePath: s.describePath,
	})
	if cfg.TURN.Enabled {
		if s.turn, err = s.newTURN(announce); err != nil {
			return nil, err
		}
		closers = append(closers, s.turn.Close)
		s.manager.Listen(func(e session.Event) {
			if e.Kind == session.ParticipantLeft {
				select {
				case s.revokes <- e.Connection:
				default: // the per-request liveness check still refuses it
					log.Warn("turn revocation queue full", "connection", e.Connection)
				}
			}
		})
	}
	ice := iceconfig.Config{Host: cfg.Domain, TLS: !cfg.Dev, Port: cfg.HTTPSPort, TURNUDPPort: cfg.TURN.UDPPort,
		MediaPort: cfg.Media.Port, External: cfg.IceServers}
	if cfg.Dev {
		ice.Host = "127.0.0.1" // the dev server listens on loopback only
	}
	if cfg.Proxy.Enabled { // TURN/TCP on the media TCP port; TURN/TLS where the proxy passes it through
		ice.Port, ice.TLSHost, ice.TLSPort = cfg.Proxy.MediaTCPPort, cfg.Proxy.TURNHost, cfg.Proxy.TURNPort
	}
	if s.turn != nil {
		ice.TURN = s.turn
	}
	// REST, joins and the app go through the cluster when there is one (any node answers).
	var restModel api.Model = api.FromManager(s.manager)
	var rooms app.Rooms = app.FromManager(s.manager)
	joins := signaling.FromManager(s.manager)
	if cfg.Cluster.RedisURL != "" {
		if s.cluster, err = newCluster(cfg, announce, s.media.LocalAddrs(), s.manager, log); err != nil {
			return nil, err
		}
		closers = append(closers, s.cluster.Close)
		restModel, rooms, joins = clusterREST{s.cluster}, clusterApp{s.cluster}, clusterJoins{s.cluster}
		s.links = newLinks(cfg, s.cluster, s.media, s.manager, log)
		s.manager.SetRemote(clusterRemote{s.cluster, s.links})
	}
	s.sig = signaling.New(signaling.Config{
		ReconnectGrace: cfg.Session.ReconnectGrace, PingTimeout: cfg.Session.PingTimeout, IceServers: iceconfig.New(ice).Servers,
		OnError: s.signalingError, Simulcast: cfg.Media.Simulcast, ClientIP: clients.String,
		Admit: newMemoryGuard().admit, // PARLEY_MEMORY_LIMIT, set by main
	}, joins, log.With("component", "signaling"))
	apiCfg := api.Config{
		Secret: cfg.Secret, PublicURL: cfg.PublicURL(), Domain: cfg.Domain, HTTPSPort: cfg.HTTPSPort,
		SupportDeprecatedAPI: cfg.SupportDeprecatedAPI, ConfigJSON: api.ConfigJSON(cfg),
		ForcedVideoCodec: cfg.Session.ForcedVideoCodec, AllowTranscoding: cfg.Session.AllowTranscoding,
		RecordingPublicAccess: cfg.Recording.PublicAccess, RecordingPath: cfg.Recording.Path,
	}
	if s.cluster != nil {
		apiCfg.ConfigLive = s.clusterConfig
	}
	if cfg.Recording.Enabled {
		if s.recorder, err = recording.New(recording.Config{Path: cfg.Recording.Path, AutostopTimeout: cfg.Recording.AutostopTimeout, Composer: composer{}},
			recording.FromManager(s.manager), log.With("component", "recording")); err != nil {
			return nil, err
		}
		s.manager.Listen(s.recorder.Listen)
		s.manager.ListenMirrors(s.recorder.Listen) // other nodes' streams are recorded here too
		apiCfg.Recordings = s.recorder
		if s.cluster != nil { // any node starts, stops, lists and serves every node's recordings
			apiCfg.Recordings = s.cluster.Recordings(s.recorder)
		}
	}
	rest := api.New(apiCfg, restModel, log.With("component", "api"))

	mux.Handle("/openvidu", s.sig) // exact path: the SDK always dials /openvidu (protocol note §0.1)
	mux.Handle("/openvidu/api/", rest)
	// WHIP ingest (RFC 9725): an encoder publishes with a connection token as its Bearer token.
	s.whip = whip.New(whip.FromManager(s.manager), log.With("component", "whip"), clients.String)
	mux.Handle(whip.Path, s.whip)
	mux.Handle(whip.Path+"/", s.whip)
	mux.Handle(whip.WHEPPath+"/", http.HandlerFunc(s.whip.ServeWHEP))
	if cfg.SupportDeprecatedAPI {
		mux.Handle("/api/", rest)
	}
	if cfg.Recording.Enabled {
		mux.Handle("/openvidu/recordings/", rest.RecordingFiles())
		if cfg.SupportDeprecatedAPI {
			mux.Handle("/recordings/", rest.RecordingFiles())
		}
	}
	// The built-in app, /test and /app/api/; / is the customer's application with PARLEY_APP_UPSTREAM.
	s.app = app.New(app.Config{
		AppConfig: cfg.App, Dev: cfg.Dev, Secret: cfg.Secret, Files: web.Files(), SelfSigned: !cfg.Dev && cfg.TLS.Type == "selfsigned",
		ClientAddr: clients.Addr,
	}, rooms, log.With("component", "app"))
	var upstream http.Handler
	if cfg.App.Upstream != "" {
		if upstream, err = app.NewProxy(cfg.App.Upstream, clients, log.With("component", "proxy")); err != nil {
			return nil, err
		}
	}
	s.app.Routes(mux, upstream)
	closeEvents, err := s.newEventSinks(mux, rest)
	if err != nil {
		return nil, err
	}
	closers = append(closers, closeEvents)
	return s, nil
}

// newTURN builds the embedded TURN server: it relays only to the SFU's own media sockets.
func (s *Server) newTURN(announce []netip.Addr) (*turn.Server, error) {
	tc := turn.Config{MediaAddrs: s.media.LocalAddrs(),
		MaxAllocationsPerConnection: s.cfg.TURN.MaxAllocationsPerConnection, MaxAllocations: s.cfg.TURN.MaxAllocations}
	tc.ChooseRelay(announce)
	if s.cfg.TURN.UDPPort != 0 {
		tc.UDPAddr = net.JoinHostPort("", strconv.Itoa(s.cfg.TURN.UDPPort))
	}
	return turn.New(tc, s.manager, s.log.With("component", "turn"))
}

// describePath marks candidate pairs whose remote end is one of our TURN relays.
func (s *Server) describePath(p session.MediaPath) session.MediaPath {
	if s.turn == nil {
		return p
	}
	if ap, err := netip.ParseAddrPort(p.Remote); err == nil && s.turn.IsRelayAddr(ap) {
		p.ViaTURN = true
	}
	return p
}

// turnQueue finds the send queue toward a TURN/TCP or TURN/TLS client by its relayed address.
func (s *Server) turnQueue(relay netip.AddrPort) *sendq.Conn {
	if s.turn == nil {
		return nil
	}
	return s.turn.ClientQueue(relay)
}

// handleTURN takes the TURN/TCP and TURN/TLS connections the edge recognised.
func (s *Server) handleTURN(c net.Conn) { s.turn.HandleConn(c) }

// Addr is the TCP address REST and signaling answer on: the shared port, or PARLEY_HTTP_ADDR
// behind a proxy.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// EdgeAddr is the TCP address of the edge (TURN, ICE-TCP): the shared port, or
// PARLEY_MEDIA_TCP_PORT behind a proxy.
func (s *Server) EdgeAddr() net.Addr { return s.edgeLn.Addr() }

// Manager exposes the session model (for tests and the TURN liveness check).
func (s *Server) Manager() *session.Manager { return s.manager }

// MediaAddrs lists the UDP addresses media is bound on.
func (s *Server) MediaAddrs() []netip.AddrPort { return s.media.LocalAddrs() }

// Shutdown phase budgets. Each phase's timeout names the phase (context.Cause), so an error says
// which step overran; a later phase still runs.
const (
	// stopAcceptingTimeout covers the edge's graceful HTTP shutdown (in-flight REST calls).
	stopAcceptingTimeout = 10 * time.Second
	// tellParticipantsTimeout bounds flushing the last notifications to every socket.
	tellParticipantsTimeout = 5 * time.Second
	// drainRecordingsTimeout is above the recorder's own bound on finalising files.
	drainRecordingsTimeout = 60 * time.Second
)

// Run serves until ctx ends or a component fails, then shuts down in the order of design.md:
// stop accepting (the edge closes the port; open WebSockets stay), tell participants (every one
// is evicted with openviduServerStopped and its socket flushed and closed), drain recordings
// (their files are finalised), close (background loops, TURN, media, then the event sinks,
// which saw every event of the evictions). Each phase has a timeout with a cause. Every
// component's error is returned, joined; a component that stops on its own starts the shutdown.
func (s *Server) Run(ctx context.Context) error {
	var (
		g       errgroup.Group
		errMu   sync.Mutex
		errs    []error
		failed  = make(chan struct{})
		failOne sync.Once
	)
	report := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
	}
	// start runs f until its own ctx ends; returning before that starts the shutdown.
	start := func(name string, f func(context.Context) error) (stop context.CancelFunc, done <-chan struct{}) {
		cctx, cancel := context.WithCancel(context.Background())
		d := make(chan struct{})
		g.Go(func() error {
			defer close(d)
			err := f(cctx)
			if cctx.Err() == nil {
				failOne.Do(func() { close(failed) })
				if err == nil {
					err = errors.New("stopped on its own")
				}
			}
			if err != nil {
				err = fmt.Errorf("%s: %w", name, err)
				report(err)
			}
			return err
		})
		return cancel, d
	}

	s.startEventSinks()
	stopRec, recDone := start("recording", func(ctx context.Context) error {
		if s.recorder == nil {
			<-ctx.Done()
			return nil
		}
		return s.recorder.Run(ctx)
	})
	stopModel, _ := start("session model", s.manager.Run)
	stopCluster, _ := start("cluster", func(ctx context.Context) error {
		if s.cluster == nil {
			<-ctx.Done()
			return nil
		}
		return s.cluster.Run(ctx)
	})
	stopLinks, _ := start("cascade", func(ctx context.Context) error {
		if s.links == nil {
			<-ctx.Done()
			return nil
		}
		return s.links.Run(ctx)
	})
	stopApp, _ := start("app", s.app.Run)
	stopTURN, _ := start("turn", func(ctx context.Context) error {
		if s.turn == nil {
			<-ctx.Done()
			return nil
		}
		var tg errgroup.Group
		tg.Go(func() error { s.revokeLoop(ctx); return nil })
		// The sweep behind Revoke (participants the model lost without telling us); it closes
		// TURN when ctx ends.
		tg.Go(func() error { return s.turn.Run(ctx) })
		return tg.Wait()
	})
	stopPort, portDone := start("http port", func(ctx context.Context) error {
		if s.httpPort == nil {
			<-ctx.Done()
			return nil
		}
		return serveUntil(ctx, s.httpPort, s.httpLn, "HTTP_PORT")
	})
	stopWeb, webDone := start("http", func(ctx context.Context) error {
		if s.web == nil {
			<-ctx.Done()
			return nil
		}
		return serveUntil(ctx, s.web, s.ln, "PARLEY_HTTP_ADDR")
	})
	stopEdge, edgeDone := start("edge", s.edge.Run)
	if s.web != nil {
		s.log.Info("parley serving behind a reverse proxy", "url", s.cfg.PublicURL(), "http_addr", s.ln.Addr().String(),
			"media_tcp_port", s.cfg.Proxy.MediaTCPPort, "media_udp_port", s.cfg.Media.Port, "turn", s.turn != nil)
	} else {
		s.log.Info("parley serving", "url", s.cfg.PublicURL(), "media_udp_port", s.cfg.Media.Port, "dev", s.cfg.Dev, "turn", s.turn != nil)
	}

	select {
	case <-ctx.Done():
	case <-failed:
	}
	s.log.Info("shutting down")

	// wait waits for done within the phase's budget; past it the phase's cause is reported and the
	// next phase begins (the group still waits for every goroutine at the end).
	wait := func(pctx context.Context, done ...<-chan struct{}) {
		for _, d := range done {
			select {
			case <-d:
			case <-pctx.Done():
				report(context.Cause(pctx))
				return
			}
		}
	}
	phase := func(d time.Duration, cause string) (context.Context, context.CancelFunc) {
		return context.WithTimeoutCause(context.Background(), d, errors.New("shutdown: "+cause))
	}

	// 1. Stop accepting: no new connection or request; open WebSockets stay with their handlers.
	pctx, cancel := phase(stopAcceptingTimeout+time.Second, "stopping accepting took too long")
	stopEdge()
	stopPort()
	stopWeb()
	wait(pctx, edgeDone, portDone, webDone)
	cancel()

	// 2. Tell participants: evictions (openviduServerStopped, recordings stopped), then every
	// socket flushed and closed.
	pctx, cancel = phase(tellParticipantsTimeout, "participants were not all told in time")
	s.manager.Shutdown()
	s.sig.Shutdown(pctx)
	s.whip.Wait() // WHIP publishers whose media ended as they were evicted
	if pctx.Err() != nil {
		report(context.Cause(pctx))
	}
	cancel()

	// 3. Drain recordings: the evictions stopped them; their files are finalised.
	pctx, cancel = phase(drainRecordingsTimeout, "recordings were not finalised in time")
	stopRec()
	wait(pctx, recDone)
	cancel()

	// 4. Close: background loops (the cluster writes the evictions and leaves the registry), TURN,
	// media; the event sinks last.
	stopModel()
	stopCluster()
	stopLinks() // before the media port closes
	stopApp()
	stopTURN()
	_ = g.Wait() // every error is in errs already
	if s.cluster != nil {
		if err := s.cluster.Close(); err != nil {
			report(fmt.Errorf("cluster: %w", err))
		}
	}
	if err := s.media.Close(); err != nil {
		report(fmt.Errorf("media: %w", err))
	}
	s.stopEventSinks()
	return errors.Join(errs...)
}

// revokeLoop ends the TURN credentials of participants that left, off the model's lock.
func (s *Server) revokeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-s.revokes:
			s.turn.Revoke(string(id))
		}
	}
}

// serveUntil serves hs on ln until ctx ends, then shuts it down gracefully within
// stopAcceptingTimeout (hijacked connections, WebSockets, belong to their handlers). name is the
// setting the port comes from, for the timeout's cause.
func serveUntil(ctx context.Context, hs *http.Server, ln net.Listener, name string) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeoutCause(context.Background(), stopAcceptingTimeout,
		errors.New("shutdown: "+name+" did not finish its requests in time"))
	defer cancel()
	err := hs.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("%w (%w)", err, context.Cause(sctx))
	}
	return nil
}
