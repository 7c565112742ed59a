package ports

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"

	"github.com/parley/parley/internal/config"
)

// ModeBehindProxy is Report.Mode with PARLEY_BEHIND_PROXY=true.
const ModeBehindProxy = "proxied"

// sniSplit reports whether the turns: URL names a host of its own on the proxy's port: the proxy
// then tells TURN from the web by TLS server name and passes TURN through.
func sniSplit(cfg *config.Config) bool {
	p := cfg.Proxy
	return p.TURNPort == cfg.HTTPSPort && !strings.EqualFold(p.TURNHost, cfg.Domain)
}

// proxiedRows are the flows of proxied mode: what the operator's proxy serves on its public port
// and what Parley binds behind and beside it.
func proxiedRows(cfg *config.Config) []Row {
	p := cfg.Proxy
	public := fmt.Sprint(cfg.HTTPSPort)
	httpHost, httpPort, _ := net.SplitHostPort(p.HTTPAddr)
	trusted := make([]string, len(cfg.TrustedProxies))
	for i, t := range cfg.TrustedProxies {
		trusted[i] = t.String()
	}
	rows := []Row{
		{public, "TCP", "inbound", "your reverse proxy", "browsers, application backends",
			fmt.Sprintf("HTTPS + WSS at %s: TLS ends at the proxy, which forwards to %s", cfg.PublicURL(), p.HTTPAddr),
			"the proxy's certificate; REST: HTTP Basic OPENVIDUAPP:<secret>; signaling: single-use token per participant"},
	}
	if cfg.TURN.Enabled && sniSplit(cfg) {
		rows = append(rows, Row{public, "TCP", "inbound", "your reverse proxy", "browsers allowed only TCP " + public,
			fmt.Sprintf("TURN over TLS to %s: passed through by TLS server name, not terminated, to TCP %d", p.TURNHost, p.MediaTCPPort),
			"Parley's certificate for " + p.TURNHost + "; per-participant TURN credential"})
	}
	rows = append(rows, Row{httpPort, "TCP", "inbound", listenBind(httpHost), "your reverse proxy only (PARLEY_TRUSTED_PROXIES: " + strings.Join(trusted, ", ") + ")",
		"plain HTTP + WebSocket: REST API, signaling, web app, /test (PARLEY_HTTP_ADDR)",
		"peer must be a trusted proxy (others get 403); X-Forwarded-For/-Proto/-Host believed from it only"})
	peer := "browsers without UDP (port exposed directly)"
	if sniSplit(cfg) {
		peer = "your proxy's pass-through for " + p.TURNHost + "; browsers, if exposed directly"
	}
	purpose := "ICE-TCP media; TURN over TLS and over TCP (PARLEY_MEDIA_TCP_PORT; told apart by first bytes / ALPN)"
	auth := "ICE credentials over the authenticated signaling; per-participant TURN credential, revoked when the participant leaves"
	if !cfg.TURN.Enabled {
		purpose = "ICE-TCP media (PARLEY_MEDIA_TCP_PORT)"
		auth = "ICE credentials over the authenticated signaling; media encrypted with DTLS-SRTP"
	}
	return append(rows, Row{fmt.Sprint(p.MediaTCPPort), "TCP", "inbound", "all interfaces", peer, purpose, auth})
}

// proxiedNotes warns about the settings that break proxied mode, then says what the proxy must do.
func proxiedNotes(cfg *config.Config) []string {
	p := cfg.Proxy
	var out []string
	warn := func(format string, a ...any) { out = append(out, "WARNING: "+fmt.Sprintf(format, a...)) }
	host, _, _ := net.SplitHostPort(p.HTTPAddr)
	if isLoopbackHost(host) && !trustsLoopback(cfg.TrustedProxies) {
		warn("PARLEY_HTTP_ADDR=%s is on loopback, but PARLEY_TRUSTED_PROXIES has no loopback address: a proxy on this machine would get 403 for every request. Add 127.0.0.1 (or ::1).", p.HTTPAddr)
	}
	if !isLoopbackHost(host) {
		out = append(out, fmt.Sprintf("PARLEY_HTTP_ADDR=%s is reachable from other machines: it speaks plain HTTP (the REST secret and tokens in clear text), so only PARLEY_TRUSTED_PROXIES are served; keep it on a network only the proxy shares.", p.HTTPAddr))
	}
	for _, t := range cfg.TrustedProxies {
		if t.Bits() < 8 {
			warn("PARLEY_TRUSTED_PROXIES has %s: almost anyone may then use the plain-HTTP port and write any participant's address into X-Forwarded-For. Name your proxies' addresses.", t)
		}
	}
	if cfg.TURN.Enabled {
		if strings.EqualFold(p.TURNHost, cfg.Domain) && p.TURNPort == cfg.HTTPSPort {
			warn("the turns: URL is %s:%d, the web's own name and port: it reaches your proxy's HTTPS, not Parley, unless TCP %d of %s is Parley's (PARLEY_MEDIA_TCP_PORT on an address of its own). Give TURN a name the proxy passes through (PARLEY_TURN_TLS_HOST=turn.%s) or a port of its own (PARLEY_MEDIA_TCP_PORT, e.g. 5349).",
				p.TURNHost, p.TURNPort, p.TURNPort, cfg.Domain, cfg.Domain)
		}
		if sniSplit(cfg) {
			out = append(out, fmt.Sprintf("Your proxy must pass TLS for the server name %s on TCP %d through untouched to TCP %d of this host (nginx stream + ssl_preread, HAProxy req.ssl_sni, Traefik HostSNI with passthrough, Caddy layer4; deploy/proxy/), and DNS must point %s at the proxy.",
				p.TURNHost, cfg.HTTPSPort, p.MediaTCPPort, p.TURNHost))
		}
		if cfg.TLS.Type == "letsencrypt" {
			out = append(out, fmt.Sprintf("CERTIFICATE_TYPE=letsencrypt behind a proxy obtains the certificate of %s by TLS-ALPN-01 on port 443: Let's Encrypt must reach Parley's TURN/TLS there (the proxy's pass-through for %s, or TCP 443 of Parley's own address).", p.TURNHost, p.TURNHost))
		}
	}
	if p.MediaTCPPort == cfg.HTTPSPort {
		out = append(out, fmt.Sprintf("PARLEY_MEDIA_TCP_PORT is %d, the proxy's port: fine when the proxy is another machine; on this one Parley cannot bind it (start-up fails saying so): set PARLEY_MEDIA_TCP_PORT (e.g. 5349).", p.MediaTCPPort))
	}
	if cfg.Media.Port == cfg.HTTPSPort {
		out = append(out, fmt.Sprintf("Media uses UDP %d beside the proxy's TCP %d: the proxy must not serve HTTP/3 (QUIC) on UDP %d of the same address (Caddy does by default).", cfg.Media.Port, cfg.HTTPSPort, cfg.Media.Port))
	}
	out = append(out, fmt.Sprintf("The proxy must keep Upgrade/Connection for WebSockets, not buffer them, and keep idle sockets open for hours (over PARLEY_PING_TIMEOUT=%s, the SDK pings every 5 s); it must send X-Forwarded-For and X-Forwarded-Proto. Parley binds neither HTTPS_PORT nor HTTP_PORT: redirects from port 80 are the proxy's.", cfg.Session.PingTimeout))
	return out
}

func trustsLoopback(trusted []netip.Prefix) bool {
	for _, t := range trusted {
		if t.Contains(netip.MustParseAddr("127.0.0.1")) || t.Contains(netip.IPv6Loopback()) {
			return true
		}
	}
	return false
}

// writeMermaidProxied draws proxied mode: the web through the operator's proxy, media beside it.
func (r Report) writeMermaidProxied(w io.Writer) error {
	var b strings.Builder
	b.WriteString("```mermaid\nflowchart LR\n")
	b.WriteString("  browser[\"Browser (openvidu-browser)\"]\n  backend[\"Application backend (openvidu-node-client)\"]\n")
	b.WriteString("  proxy[\"your reverse proxy (TLS for the web)\"]\n")
	b.WriteString("  subgraph parley[\"parley (one process)\"]\n    web[\"plain HTTP listener\"]\n    edge[\"media TCP port: first-byte routing\"]\n")
	b.WriteString("    api[\"REST API\"]\n    sig[\"signaling (JSON-RPC)\"]\n    model[\"session model\"]\n    sfu[\"SFU (pion)\"]\n")
	turn, metrics := false, false
	for _, row := range r.Rows {
		turn = turn || strings.Contains(row.Purpose, "TURN over")
		metrics = metrics || strings.HasPrefix(row.Purpose, "Prometheus")
	}
	if turn {
		b.WriteString("    turn[\"embedded TURN\"]\n")
	}
	if metrics {
		b.WriteString("    metrics[\"metrics listener\"]\n")
	}
	b.WriteString("  end\n")
	for _, row := range r.Rows {
		switch {
		case row.Bind == "your reverse proxy" && strings.HasPrefix(row.Purpose, "HTTPS"):
			fmt.Fprintf(&b, "  browser -- \"TCP %s: HTTPS + WSS\" --> proxy\n  backend -- \"TCP %s: REST, Basic auth\" --> proxy\n", row.Port, row.Port)
		case row.Bind == "your reverse proxy":
			fmt.Fprintf(&b, "  browser -- \"TCP %s: TURN/TLS by server name\" --> proxy\n  proxy -- \"TLS passed through untouched\" --> edge\n", row.Port)
		case strings.HasPrefix(row.Purpose, "plain HTTP"):
			fmt.Fprintf(&b, "  proxy -- \"TCP %s: HTTP + WS, X-Forwarded-For\" --> web\n", row.Port)
		case strings.Contains(row.Purpose, "PARLEY_MEDIA_TCP_PORT"):
			fmt.Fprintf(&b, "  browser -. \"TCP %s, if exposed: %s\" .-> edge\n", row.Port, firstClause(row.Purpose))
		case strings.HasPrefix(row.Purpose, "Prometheus"):
			fmt.Fprintf(&b, "  prometheus[\"Prometheus\"] -- \"TCP %s: /metrics\" --> metrics\n", row.Port)
		case strings.HasPrefix(row.Purpose, "OpenVidu webhook"):
			fmt.Fprintf(&b, "  model -- \"webhooks, TCP %s, signed\" --> receiver[\"%s\"]\n", row.Port, row.Peer)
		case row.Direction == "inbound" && row.Protocol == "UDP":
			target := "sfu"
			if strings.HasPrefix(row.Purpose, "TURN") {
				target = "turn"
			}
			fmt.Fprintf(&b, "  browser -- \"UDP %s: %s\" --> %s\n", row.Port, firstClause(row.Purpose), target)
		}
	}
	b.WriteString("  web --> api\n  web --> sig\n  edge -- ICE-TCP --> sfu\n")
	if turn {
		b.WriteString("  edge -- \"TURN/TCP, TURN/TLS\" --> turn\n  turn -- \"relay: only to our media port\" --> sfu\n  model -- \"credentials live while the participant is\" --> turn\n")
	}
	if metrics {
		b.WriteString("  model -. events and counters .-> metrics\n")
	}
	b.WriteString("  api --> model\n  sig --> model\n  model --> sfu\n```\n")
	_, err := io.WriteString(w, b.String())
	return err
}
