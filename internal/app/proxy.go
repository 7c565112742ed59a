package app

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// ReservedPrefixes are Parley's own paths. The proxy refuses them even when nothing more specific
// on the mux answered (say /openvidu/recordings while recording is off): a request for Parley must
// never land in the customer's application, where it could be logged or answered misleadingly.
var ReservedPrefixes = []string{"/openvidu", "/app/api", "/test", "/metrics"}

func reserved(p string) bool {
	for _, r := range ReservedPrefixes {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// Forwarded tells who asked and how, believing forwarding headers only from the operator's own
// proxies (clientip.Resolver implements it).
type Forwarded interface {
	// Addr is the client's address (a trusted proxy's X-Forwarded-For / X-Real-IP, else the peer).
	Addr(*http.Request) netip.Addr
	// Proto is "https" or "http" as the client used it.
	Proto(*http.Request) string
	// Host is the host the client asked for.
	Host(*http.Request) string
	// FromTrusted reports whether the request's peer is one of the operator's proxies.
	FromTrusted(*http.Request) bool
}

// NewProxy returns the reverse proxy to the customer's application at upstream (PARLEY_APP_UPSTREAM),
// doing what nginx did in front of OpenVidu CE's app: WebSocket upgrades pass through,
// X-Forwarded-For/-Proto/-Host and X-Real-IP say who asked and how, and the Host header is kept.
// Behind the organisation's own proxy those say what that proxy saw (fwd): X-Real-IP is the
// participant, not the proxy, and X-Forwarded-For extends the proxy's chain; a client's own
// headers never survive.
func NewProxy(upstream string, fwd Forwarded, log *slog.Logger) (http.Handler, error) {
	target, err := url.Parse(upstream)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, fmt.Errorf("PARLEY_APP_UPSTREAM %q: want http://host:port", upstream)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the upstream is next to us: HTTP_PROXY from the environment must not divert it
	tr.ResponseHeaderTimeout = 60 * time.Second
	var lastLog atomic.Int64
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// With Rewrite, ReverseProxy has already dropped any X-Forwarded-* the client sent, so
			// what the application reads is what we saw.
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host // nginx's "proxy_set_header Host $host": apps build links from it
			if fwd.FromTrusted(pr.In) {
				// SetXForwarded wrote what our socket saw: the proxy's address, plain http, the
				// proxy's Host. The proxy's own headers (Rewrite keeps them on In) say the truth.
				if prior := strings.Join(pr.In.Header.Values("X-Forwarded-For"), ", "); prior != "" {
					pr.Out.Header.Set("X-Forwarded-For", prior+", "+pr.Out.Header.Get("X-Forwarded-For"))
				}
				pr.Out.Header.Set("X-Forwarded-Proto", fwd.Proto(pr.In))
				pr.Out.Header.Set("X-Forwarded-Host", fwd.Host(pr.In))
			}
			if ip := fwd.Addr(pr.In); ip.IsValid() {
				pr.Out.Header.Set("X-Real-IP", ip.String())
			}
		},
		Transport: tr,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// One line per 10 s at most: a stopped upstream would otherwise log every request.
			if now := time.Now().Unix(); lastLog.Swap(now) < now-10 {
				log.Warn("customer application unreachable", "upstream", upstream, "err", err)
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = fmt.Fprintf(w, "The application behind this server is not answering. Its operator should check that it runs at %s.\n", upstream)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reserved(r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	}), nil
}
