// Package ports computes, from the effective configuration, the port matrix a security team asks
// for before it opens a firewall: every port Parley listens on or dials, who talks to it, why, and
// how it is authenticated, plus a Mermaid diagram of the flows.
//
// It reads config only and imports no other Parley package, so `parley ports` and the server agree
// by construction: both derive their sockets from the same config.Config.
package ports

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/parley/parley/internal/config"
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

// Build derives the report from cfg.
func Build(cfg *config.Config) Report {
	r := Report{Mode: "production"}
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
		Row{fmt.Sprint(cfg.Media.Port), "UDP", "inbound", mediaBind(cfg), "browsers",
			"all WebRTC media (ICE, DTLS-SRTP), one socket for every peer connection",
			"ICE credentials per peer connection; unknown senders dropped; media encrypted with DTLS-SRTP"})
	if cfg.TURN.Enabled && cfg.TURN.UDPPort != 0 {
		r.Rows = append(r.Rows, Row{fmt.Sprint(cfg.TURN.UDPPort), "UDP", "inbound", bind, "browsers",
			"TURN over UDP (PARLEY_TURN_UDP_PORT)", "per-participant TURN credential"})
	}
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
	for _, s := range cfg.IceServers {
		r.Rows = append(r.Rows, Row{"-", "-", "client-side", "-", s.URL,
			"external ICE server given to browsers (OPENVIDU_WEBRTC_ICE_SERVERS); Parley itself never dials it", "its own credentials"})
	}
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

func mediaBind(cfg *config.Config) string {
	if len(cfg.Media.ListenIPs) == 0 {
		if cfg.Dev {
			return "every interface, loopback included"
		}
		return "every interface"
	}
	var s []string
	for _, ip := range cfg.Media.ListenIPs {
		s = append(s, ip.String())
	}
	return strings.Join(s, ", ")
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
	var b strings.Builder
	b.WriteString("```mermaid\nflowchart LR\n")
	b.WriteString("  browser[\"Browser (openvidu-browser)\"]\n  backend[\"Application backend (openvidu-node-client)\"]\n")
	b.WriteString("  subgraph parley[\"parley (one process)\"]\n    edge[\"edge: TLS, first-byte routing\"]\n    api[\"REST API\"]\n    sig[\"signaling (JSON-RPC)\"]\n    model[\"session model\"]\n    sfu[\"SFU (pion)\"]\n")
	turn := false
	for _, row := range r.Rows {
		if strings.HasPrefix(row.Purpose, "TURN") {
			turn = true
		}
	}
	if turn {
		b.WriteString("    turn[\"embedded TURN\"]\n")
	}
	b.WriteString("  end\n")
	for _, row := range r.Rows {
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
