package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/parley/parley/internal/clientip"
	"github.com/parley/parley/internal/config"
)

// listenBehindProxy binds proxied mode's two TCP ports (PARLEY_BEHIND_PROXY): plain HTTP on
// PARLEY_HTTP_ADDR for the proxy, and the edge, without HTTPS, on PARLEY_MEDIA_TCP_PORT for
// TURN and ICE-TCP. HTTPS_PORT and HTTP_PORT are the proxy's and stay unbound. A media TCP port
// of 0 (tests) is the kernel's pick, which the media UDP port then follows when it is 0 too.
func (s *Server) listenBehindProxy(cfg *config.Config, closers *[]func() error) (err error) {
	if s.ln, err = net.Listen("tcp", cfg.Proxy.HTTPAddr); err != nil {
		return fmt.Errorf("listen on %s (PARLEY_HTTP_ADDR, the plain HTTP port your proxy forwards to): %w", cfg.Proxy.HTTPAddr, err)
	}
	*closers = append(*closers, s.ln.Close)
	if s.edgeLn, err = net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.Proxy.MediaTCPPort))); err != nil {
		return fmt.Errorf("listen on tcp/%d (PARLEY_MEDIA_TCP_PORT, for TURN and ICE-TCP; if your proxy holds it on this host, set another): %w",
			cfg.Proxy.MediaTCPPort, err)
	}
	*closers = append(*closers, s.edgeLn.Close)
	if cfg.Proxy.MediaTCPPort == 0 {
		picked := s.edgeLn.Addr().(*net.TCPAddr).Port
		if cfg.Proxy.TURNPort == 0 {
			cfg.Proxy.TURNPort = picked
		}
		cfg.Proxy.MediaTCPPort = picked
		if cfg.Media.Port == 0 {
			cfg.Media.Port = picked
		}
	}
	return nil
}

// proxyOnly serves next to the operator's proxies only (PARLEY_TRUSTED_PROXIES). PARLEY_HTTP_ADDR
// is plain HTTP: the REST secret, tokens and session cookies cross it in clear text, so nobody
// else may use it, even when it is bound to a reachable address by mistake. Others get 403 and a
// pointer to the public URL; a warning is logged at most once a minute.
func proxyOnly(clients *clientip.Resolver, publicURL string, next http.Handler, log *slog.Logger) http.Handler {
	var lastWarn atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if clients.FromTrusted(r) {
			next.ServeHTTP(w, r)
			return
		}
		if now := time.Now().Unix(); lastWarn.Swap(now) < now-60 {
			log.Warn("refused a request to PARLEY_HTTP_ADDR from outside PARLEY_TRUSTED_PROXIES: only your reverse proxy may use this port; if this is your proxy, add its address to PARLEY_TRUSTED_PROXIES",
				"remote", r.RemoteAddr)
		}
		w.Header().Set("Connection", "close")
		http.Error(w, "This port serves only the reverse proxy in front of Parley. Use "+publicURL, http.StatusForbidden)
	})
}
