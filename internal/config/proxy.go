package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ProxyConfig is proxied mode: the organisation's reverse proxy owns TCP 443, terminates TLS and
// forwards the web to Parley, which keeps media on its UDP port and gives ICE-TCP and TURN a TCP
// port of their own (design.md, "Ports").
type ProxyConfig struct {
	// Enabled is PARLEY_BEHIND_PROXY (default false). Needs DOMAIN_OR_PUBLIC_IP: the public URL is
	// still https://DOMAIN_OR_PUBLIC_IP[:HTTPS_PORT]/, HTTPS_PORT being the proxy's port; Parley
	// binds neither HTTPS_PORT nor HTTP_PORT.
	Enabled bool
	// HTTPAddr is PARLEY_HTTP_ADDR (default 127.0.0.1:5443, openvidu-server's port behind its
	// nginx): REST, signaling, the app and /test in plain HTTP and WebSocket, for the proxy only.
	// Requests from peers outside PARLEY_TRUSTED_PROXIES are refused, since secrets and tokens
	// cross it in clear text.
	HTTPAddr string
	// MediaTCPPort is PARLEY_MEDIA_TCP_PORT (default: PARLEY_MEDIA_PORT's number): ICE-TCP, TURN
	// over TLS and TURN over TCP on all interfaces, told apart by first bytes as on the shared
	// port. Exposed directly, or passed through by the proxy by TLS server name (no TLS
	// termination there).
	MediaTCPPort int
	// TURNHost and TURNPort are PARLEY_TURN_TLS_HOST, host[:port] (port default 443): the name
	// and port of the turns: URL browsers get, e.g. turn.example.com when the proxy passes that
	// server name on its 443 through to MediaTCPPort. It is also the name on Parley's own
	// certificate (CERTIFICATE_TYPE). Default DOMAIN_OR_PUBLIC_IP and MediaTCPPort: the port
	// exposed directly.
	TURNHost string
	TURNPort int
}

// proxyNames are the settings of proxied mode, refused outside it.
var proxyNames = []string{"PARLEY_HTTP_ADDR", "PARLEY_MEDIA_TCP_PORT", "PARLEY_TURN_TLS_HOST"}

// parseProxy reads the PARLEY_BEHIND_PROXY settings; the media port must be parsed already.
func parseProxy(c *Config, str func(name, def string) string, boolean func(name string, def bool) bool,
	num func(name string, def, lo, hi int) int, bad *problems) {
	p := &c.Proxy
	p.Enabled = boolean("PARLEY_BEHIND_PROXY", false)
	if !p.Enabled {
		for _, n := range proxyNames {
			if v := str(n, ""); v != "" {
				*bad = append(*bad, n+" is only read with PARLEY_BEHIND_PROXY=true (otherwise HTTPS, TURN and ICE-TCP share HTTPS_PORT): remove it or set PARLEY_BEHIND_PROXY=true")
			}
		}
		return
	}
	if c.Dev {
		*bad = append(*bad, "PARLEY_BEHIND_PROXY=true needs DOMAIN_OR_PUBLIC_IP: the public host name your proxy serves, written into tokens and URLs")
	}
	if c.HTTPSPort == 0 {
		bad.add("HTTPS_PORT", "0", "the port your proxy serves HTTPS on (default 443) when PARLEY_BEHIND_PROXY=true")
	}
	if len(c.TrustedProxies) == 0 {
		*bad = append(*bad, "PARLEY_BEHIND_PROXY=true needs PARLEY_TRUSTED_PROXIES to name your proxy (it is \"none\"): nobody could reach PARLEY_HTTP_ADDR and no participant's address would be known")
	}
	p.HTTPAddr = str("PARLEY_HTTP_ADDR", "127.0.0.1:5443")
	if host, port, err := net.SplitHostPort(p.HTTPAddr); err != nil || !validListenHost(host) || !validPort(port, 0) {
		bad.add("PARLEY_HTTP_ADDR", p.HTTPAddr, "host:port to listen on, e.g. 127.0.0.1:5443 (empty host: all interfaces)")
	}
	p.MediaTCPPort = num("PARLEY_MEDIA_TCP_PORT", c.Media.Port, 0, 65535)
	p.TURNHost, p.TURNPort = c.Domain, p.MediaTCPPort
	if v := str("PARLEY_TURN_TLS_HOST", ""); v != "" {
		host, port := v, "443"
		if h, pt, err := net.SplitHostPort(v); err == nil {
			host, port = h, pt
		}
		if strings.Contains(host, "://") || !validHost(host) || !validPort(port, 1) {
			bad.add("PARLEY_TURN_TLS_HOST", v, "host[:port] of the turns: URL, e.g. turn.example.com or turn.example.com:443, without scheme")
		} else {
			p.TURNHost = host
			p.TURNPort, _ = strconv.Atoi(port)
		}
	}
	if !c.TURN.Enabled && str("PARLEY_TURN_TLS_HOST", "") != "" {
		*bad = append(*bad, "PARLEY_TURN_TLS_HOST is set but PARLEY_TURN=false: remove one of them")
	}
	if c.TLS.Type == "letsencrypt" {
		if _, err := netip.ParseAddr(p.TURNHost); err == nil {
			*bad = append(*bad, fmt.Sprintf("CERTIFICATE_TYPE=letsencrypt behind a proxy is the certificate of TURN over TLS, so PARLEY_TURN_TLS_HOST must be a DNS name, not %s", p.TURNHost))
		}
	}
}

func validListenHost(h string) bool {
	if h == "" {
		return true
	}
	return validHost(h)
}

func validPort(p string, lo int) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= lo && n <= 65535
}
