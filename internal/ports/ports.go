// Package ports computes, from the effective configuration, the port matrix a security team asks
// for before it opens a firewall: every port Parley listens on or dials, who talks to it, why, and
// how it is authenticated, plus a Mermaid diagram of the flows.
//
// It reads config, and mediaaddr for the media port's addresses, and imports no other Parley
// package, so `parley ports` and the server agree by construction: both derive their sockets from
// the same config.Config and the same choice of addresses.
package ports

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/mediaaddr"
)

// Row is one line of the matrix.
type Row struct {
	Port      string `json:"port"`
	Protocol  string `json:"protocol"`
	Direction string `json:"direction"`
	Bind      string `json:"bind"`
	Peer      string `json:"peer"`
	Purpose   string `json:"purpose"`
	Auth      string `json:"auth"`
}

// Report is the whole matrix with notes.
type Report struct {
	Mode  string   `json:"mode"`
	Rows  []Row    `json:"ports"`
	Notes []string `json:"notes"`
}

// Build derives the report from cfg and this host's addresses now.
func Build(cfg *config.Config) Report {
	addrs, err := mediaaddr.List()
	r := build(cfg, addrs)
	if err != nil {
		r.Notes = append(r.Notes, "WARNING: this host's addresses could not be read ("+err.Error()+"): the media row shows no address")
	}
	return r
}

// build is Build for the host addresses given.
func build(cfg *config.Config, addrs []mediaaddr.Addr) Report {
	r := Report{Mode: "production"}
	var mediaNotes []string
	if cfg.Proxy.Enabled {
		r.Mode = ModeBehindProxy
		r.Rows = append(r.Rows, proxiedRows(cfg)...)
		r.Rows = append(r.Rows, mediaRow(cfg, addrs, &mediaNotes))
		r.Notes = append(r.Notes, proxiedNotes(cfg)...)
		return r.finish(cfg, mediaNotes)
	}
	bind := "all interfaces"
	if cfg.Dev {
		r.Mode = "dev"
		bind = "127.0.0.1 only"
	}
	tcp := fmt.Sprint(cfg.HTTPSPort)
	web := "HTTPS + WSS: REST API, signaling WebSocket, web app"
	if cfg.Dev {
		web = "plain HTTP + WS: REST API, signaling WebSocket, web app"
	}
	r.Rows = append(r.Rows, Row{tcp, "TCP", "inbound", bind, "browsers, application backends",
		web, "REST: HTTP Basic OPENVIDUAPP:<secret>; signaling: single-use token per participant"})
	if cfg.TURN.Enabled {
		turnPurpose := "TURN over TCP (same port, told apart by first bytes)"
		if !cfg.Dev {
			turnPurpose = "TURN over TLS and TURN over TCP (same port, told apart by first bytes / ALPN)"
		}
		r.Rows = append(r.Rows, Row{tcp, "TCP", "inbound", bind, "browsers behind firewalls that block UDP",
			turnPurpose, "per-participant TURN credential (HMAC-SHA1, random key), revoked when the participant leaves"})
	}
	r.Rows = append(r.Rows,
		Row{tcp, "TCP", "inbound", bind, "browsers without UDP", "ICE-TCP media (RFC 4571, passive candidates)",
			"ICE credentials exchanged over the authenticated signaling; media encrypted with DTLS-SRTP"},
		mediaRow(cfg, addrs, &mediaNotes))
	if !cfg.Dev {
		purpose := "redirect to HTTPS"
		if cfg.TLS.Type == "letsencrypt" {
			purpose = "redirect to HTTPS; ACME http-01 challenges from Let's Encrypt"
		}
		r.Rows = append(r.Rows, Row{fmt.Sprint(cfg.HTTPPort), "TCP", "inbound", bind, "browsers, Let's Encrypt", purpose, "none; serves no data"})
		if cfg.TLS.Type == "letsencrypt" {
			r.Rows = append(r.Rows, Row{"443", "TCP", "outbound", "-", "ACME directory " + hostOf(cfg.TLS.ACMEDirectory),
				"certificate issuance and renewal", "ACME account key"})
		}
	}
	return r.finish(cfg, mediaNotes)
}

// mediaRow is the UDP media port.
func mediaRow(cfg *config.Config, addrs []mediaaddr.Addr, notes *[]string) Row {
	return Row{fmt.Sprint(cfg.Media.Port), "UDP", "inbound", mediaBind(cfg, addrs, notes), "browsers",
		"all WebRTC media (ICE, DTLS-SRTP), one socket for every peer connection",
		"ICE credentials per peer connection; unknown senders dropped; media encrypted with DTLS-SRTP"}
}

// finish adds what every mode shares: TURN over UDP, metrics, webhooks, external ICE servers and
// the closing notes.
func (r Report) finish(cfg *config.Config, mediaNotes []string) Report {
	if cfg.TURN.Enabled && cfg.TURN.UDPPort != 0 {
		bind := "all interfaces"
		if cfg.Dev {
			bind = "127.0.0.1 only"
		}
		r.Rows = append(r.Rows, Row{fmt.Sprint(cfg.TURN.UDPPort), "UDP", "inbound", bind, "browsers",
			"TURN over UDP (PARLEY_TURN_UDP_PORT)", "per-participant TURN credential"})
	}
	if a := cfg.Metrics.Addr; a != "" {
		host, port, _ := net.SplitHostPort(a)
		r.Rows = append(r.Rows, Row{port, "TCP", "inbound", listenBind(host), "Prometheus (your monitoring)",
			"Prometheus metrics: GET /metrics (PARLEY_METRICS_ADDR)", "none: keep it on loopback or a monitoring-only network"})
		if !isLoopbackHost(host) {
			r.Notes = append(r.Notes, "PARLEY_METRICS_ADDR="+a+" is reachable from other machines and /metrics has no authentication (it names no participant and no secret, but shows activity): open it only to your monitoring hosts.")
		}
	}
	if cfg.Webhook.Enabled {
		if u, err := url.Parse(cfg.Webhook.Endpoint); err == nil {
			port := u.Port()
			if port == "" {
				port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
			}
			// The host only: the endpoint's path and query often carry the receiver's credentials.
			r.Rows = append(r.Rows, Row{port, "TCP", "outbound", "-", "webhook receiver " + u.Hostname(),
				"OpenVidu webhook events, HTTP POST (OPENVIDU_WEBHOOK_ENDPOINT)",
				"every request signed: X-Parley-Signature, HMAC-SHA256; plus OPENVIDU_WEBHOOK_HEADERS"})
		}
	}
	if cfg.Cluster.RedisURL != "" {
		r.Rows = append(r.Rows, redisRows(cfg.Cluster.RedisURL, cfg.Cluster.NodeID)...)
		// The links ride the media port: no port of their own to open between nodes.
		r.Rows = append(r.Rows, Row{fmt.Sprint(cfg.Media.Port), "UDP", "between nodes", "the media port's addresses", "the other Parley nodes of the cluster",
			"inter-node media links (cascading): each stream crosses once per node pair with subscribers, one DTLS-SRTP PeerConnection per node pair",
			"signalling over Redis signed with HMAC-SHA256 keyed from OPENVIDU_SECRET, DTLS fingerprints inside it; media encrypted with SRTP"})
	}
	for _, s := range cfg.IceServers {
		r.Rows = append(r.Rows, Row{"-", "-", "client-side", "-", s.URL,
			"external ICE server given to browsers (OPENVIDU_WEBRTC_ICE_SERVERS); Parley itself never dials it", "its own credentials"})
	}
	iceTCP := cfg.HTTPSPort
	if cfg.Proxy.Enabled {
		iceTCP = cfg.Proxy.MediaTCPPort
	}
	if len(cfg.ProxyProtocolFrom) > 0 {
		lbs := make([]string, len(cfg.ProxyProtocolFrom))
		for i, p := range cfg.ProxyProtocolFrom {
			lbs[i] = p.String()
		}
		bind := "all interfaces"
		if cfg.Dev {
			bind = "127.0.0.1 only"
		}
		r.Rows = append(r.Rows, Row{fmt.Sprint(iceTCP), "TCP", "inbound", bind,
			"your L4 load balancer (PARLEY_PROXY_PROTOCOL_FROM: " + strings.Join(lbs, ", ") + ")",
			"the above passed through by the balancer, each connection opening with a PROXY protocol header (v1 or v2) that names the client: its address is the participant's in REST, logs, limits, TURN and ICE-TCP",
			"a header is believed from a listed balancer only (refused from anyone else); a listed balancer's connection without one is refused"})
	}
	for _, w := range PrivateLowPorts(announced(cfg, LocalAddrs()), cfg.Media.Port, iceTCP) {
		r.Notes = append(r.Notes, "WARNING: "+w)
	}
	r.Notes = append(r.Notes, mediaNotes...)
	if cfg.TURN.Enabled {
		r.Notes = append(r.Notes, "TURN relay sockets are ephemeral UDP ports on the media address; they exchange packets only with Parley's own media port, so they need no firewall opening and cannot reach anything else (loopback, metadata, private neighbours are refused).")
	}
	if !cfg.Dev && cfg.TLS.Type == "selfsigned" {
		r.Notes = append(r.Notes, "CERTIFICATE_TYPE=selfsigned: browsers reject a self-signed certificate for TURN over TLS, so clients limited to TCP 443 only get media through ICE-TCP. Use owncert or letsencrypt in production.")
	}
	r.Notes = append(r.Notes,
		"No other port is opened: no media port range, no media-server control port, no Redis unless clustering is configured.",
		"Replaces in an OpenVidu 2 CE deployment: nginx 80/443, openvidu-server 5443, Kurento 8888 and UDP/TCP 40000-57000, coturn 3478 and 57001-65535.")
	return r
}

// redisRows are the connections to the cluster's Redis: the server, or the Sentinels and the
// master they name. Hosts and ports only: the URL carries the password.
func redisRows(raw, node string) []Row {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	auth := "Redis password (AUTH)"
	if u.Scheme == "rediss" {
		auth += ", TLS"
	}
	purpose := "the cluster's shared state (sessions, connections, tokens, node registry) and messages between nodes (PARLEY_REDIS_URL; this node is " + node + ")"
	hostPort := func(h string, def string) (string, string) {
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			return h, def
		}
		return host, port
	}
	q := u.Query()
	if master := q.Get("master_name"); master != "" {
		var rows []Row
		for _, h := range append([]string{u.Host}, q["addr"]...) {
			host, port := hostPort(h, "26379")
			rows = append(rows, Row{port, "TCP", "outbound", "-", "Redis Sentinel " + host, "finds the Redis master " + master + " and follows its failovers", auth})
		}
		return append(rows, Row{"(from the Sentinels)", "TCP", "outbound", "-", "Redis master " + master, purpose, auth})
	}
	host, port := hostPort(u.Host, "6379")
	return []Row{{port, "TCP", "outbound", "-", "Redis " + host, purpose, auth}}
}

// PrivateLowPorts warns about announced media addresses that Chromium will not use: it drops
// remote ICE candidates on ports below 1024 at private addresses (found by the firewall test bed
// with Chromium 156: "Invalid candidate"; PFW_NET=10.77.0 shows it). Media then flows only if our
// own checks reach the browser and it learns us as peer-reflexive; never through TURN, whose relay
// must send to our candidate. udpPort is the media port, tcpPort the ICE-TCP one.
func PrivateLowPorts(announced []netip.Addr, udpPort, tcpPort int) []string {
	if udpPort >= 1024 && tcpPort >= 1024 {
		return nil
	}
	var out []string
	for _, a := range announced {
		if !a.Unmap().IsPrivate() {
			continue
		}
		switch {
		case udpPort < 1024:
			out = append(out, fmt.Sprintf("media address %s is private and the media port UDP %d is below 1024: Chromium drops such ICE candidates, "+
				"so Chrome and Edge users get media only when this server's own checks reach them directly (no NAT or firewall between), "+
				"never through TURN or ICE-TCP. Set PARLEY_MEDIA_PORT to 1024 or above, or announce a public address with PARLEY_MEDIA_ANNOUNCE_IPS.", a, udpPort))
		default:
			out = append(out, fmt.Sprintf("media address %s is private and ICE-TCP shares TCP %d, below 1024: Chromium drops those ICE-TCP candidates, "+
				"so Chrome and Edge users without UDP get media only through TURN. Announce a public address with PARLEY_MEDIA_ANNOUNCE_IPS "+
				"if browsers reach this server through one.", a, tcpPort))
		}
	}
	return out
}

// announced are the addresses our candidates carry, as far as the configuration tells: the
// configured PARLEY_MEDIA_ANNOUNCE_IPS replace the interfaces; an IP in DOMAIN_OR_PUBLIC_IP is
// added to them (the server also resolves a domain name at start-up and warns itself).
func announced(cfg *config.Config, local []netip.Addr) []netip.Addr {
	if len(cfg.Media.AnnounceIPs) > 0 {
		return cfg.Media.AnnounceIPs
	}
	out := local
	if len(cfg.Media.ListenIPs) > 0 {
		out = cfg.Media.ListenIPs
	}
	if a, err := netip.ParseAddr(cfg.Domain); err == nil {
		out = append(out[:len(out):len(out)], a)
	}
	return out
}

// LocalAddrs lists the addresses of this machine's interfaces: what the server's start-up checks and
// this report both compare the configuration with.
func LocalAddrs() []netip.Addr {
	var out []netip.Addr
	ifs, _ := net.InterfaceAddrs()
	for _, a := range ifs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}

func listenBind(host string) string {
	switch {
	case host == "" || host == "0.0.0.0" || host == "::":
		return "all interfaces"
	case isLoopbackHost(host):
		return host + " only (loopback)"
	}
	return host
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// mediaBind says where the media port is bound: on the addresses the operator listed, or on the
// ones the server's own rule (mediaaddr.Select) takes from this host now; the addresses it skips
// get a note per reason.
func mediaBind(cfg *config.Config, addrs []mediaaddr.Addr, notes *[]string) string {
	if len(cfg.Media.ListenIPs) > 0 {
		var s []string
		for _, ip := range cfg.Media.ListenIPs {
			s = append(s, ip.String())
		}
		return strings.Join(s, ", ") + " (PARLEY_MEDIA_LISTEN_IPS)"
	}
	bind, skipped := mediaaddr.Select(addrs, mediaaddr.Policy{Loopback: cfg.Dev})
	var reasons []string
	byReason := map[string][]string{}
	for _, sk := range skipped {
		if _, ok := byReason[sk.Reason]; !ok {
			reasons = append(reasons, sk.Reason)
		}
		byReason[sk.Reason] = append(byReason[sk.Reason], fmt.Sprintf("%s (%s)", sk.Addr.IP, sk.Addr.Interface))
	}
	for _, why := range reasons {
		*notes = append(*notes, fmt.Sprintf("media port not bound on %s: %s", strings.Join(byReason[why], ", "), why))
	}
	if len(bind) == 0 {
		return "no usable address yet (bound on each as it appears)"
	}
	s := make([]string, len(bind))
	for i, ip := range bind {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ") + " (every usable address; followed as addresses come and go)"
}

func hostOf(u string) string {
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	h, _, _ := strings.Cut(u, "/")
	return h
}

// WriteText prints the matrix as an aligned table followed by the notes.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Parley ports (%s mode)\n\n", r.Mode)
	fmt.Fprintln(tw, "PORT\tPROTO\tDIRECTION\tBIND\tWHO CONNECTS\tPURPOSE\tAUTHENTICATION")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Port, row.Protocol, row.Direction, row.Bind, row.Peer, row.Purpose, row.Auth)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		if _, err := fmt.Fprintf(w, "\n- %s", n); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}

// WriteJSON prints the report as JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteMermaid prints a flowchart of the components and flows.
func (r Report) WriteMermaid(w io.Writer) error {
	if r.Mode == ModeBehindProxy {
		return r.writeMermaidProxied(w)
	}
	var b strings.Builder
	b.WriteString("```mermaid\nflowchart LR\n")
	b.WriteString("  browser[\"Browser (openvidu-browser)\"]\n  backend[\"Application backend (openvidu-node-client)\"]\n")
	b.WriteString("  subgraph parley[\"parley (one process)\"]\n    edge[\"edge: TLS, first-byte routing\"]\n    api[\"REST API\"]\n    sig[\"signaling (JSON-RPC)\"]\n    model[\"session model\"]\n    sfu[\"SFU (pion)\"]\n")
	turn, metrics := false, false
	for _, row := range r.Rows {
		turn = turn || strings.HasPrefix(row.Purpose, "TURN")
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
		if strings.HasPrefix(row.Purpose, "Prometheus") {
			fmt.Fprintf(&b, "  prometheus[\"Prometheus\"] -- \"TCP %s: /metrics\" --> metrics\n", row.Port)
			continue
		}
		if strings.HasPrefix(row.Purpose, "OpenVidu webhook") {
			fmt.Fprintf(&b, "  model -- \"webhooks, TCP %s, signed\" --> receiver[\"%s\"]\n", row.Port, row.Peer)
			continue
		}
		if row.Direction != "inbound" {
			continue
		}
		label := fmt.Sprintf("%s %s: %s", row.Protocol, row.Port, firstClause(row.Purpose))
		target := "edge"
		if row.Protocol == "UDP" {
			target = "sfu"
			if strings.HasPrefix(row.Purpose, "TURN") {
				target = "turn"
			}
		}
		if strings.HasPrefix(row.Purpose, "redirect") {
			label = fmt.Sprintf("TCP %s: %s", row.Port, row.Purpose)
		}
		fmt.Fprintf(&b, "  browser -- \"%s\" --> %s\n", label, target)
	}
	b.WriteString("  backend -- \"REST, Basic auth\" --> edge\n  edge --> api\n  edge --> sig\n  edge -- ICE-TCP --> sfu\n")
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

func firstClause(s string) string {
	if i := strings.IndexAny(s, ":("); i > 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}
