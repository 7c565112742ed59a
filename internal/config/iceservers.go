package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// IceServer is one external ICE server as OpenVidu configures it (IceServerProperties): a URL and
// either fixed credentials or a coturn use-auth-secret key from which per-connection credentials are
// minted (internal/iceconfig mints them).
type IceServer struct {
	URL              string
	Username         string
	Credential       string
	StaticAuthSecret string
}

// hostRE accepts DNS names; IPs are checked with netip.
var dnsRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9_-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9_-]*[a-zA-Z0-9])?)*\.?$`)

// Validate applies OpenVidu's rules (protocol note §8.2): scheme stun, stuns, turn or turns followed
// by ':'; a host that is a DNS name, an IPv4 address or a bracketed IPv6 address; an optional port
// 1–65535; a query only on turn/turns and only ?transport=udp or ?transport=tcp; stun takes no
// credentials, turn needs a username and credential or a staticAuthSecret (not both).
func (s IceServer) Validate() error {
	scheme, rest, ok := strings.Cut(s.URL, ":")
	if !ok {
		return fmt.Errorf("ICE server url %q: missing ':' after the scheme", s.URL)
	}
	turn := false
	switch scheme {
	case "stun", "stuns":
	case "turn", "turns":
		turn = true
	default:
		return fmt.Errorf("ICE server url %q: scheme must be stun, stuns, turn or turns", s.URL)
	}
	hostport, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery {
		if !turn {
			return fmt.Errorf("ICE server url %q: a stun url takes no query", s.URL)
		}
		if query != "transport=udp" && query != "transport=tcp" {
			return fmt.Errorf("ICE server url %q: the only query allowed is ?transport=udp or ?transport=tcp", s.URL)
		}
	}
	if err := validHostPort(hostport); err != nil {
		return fmt.Errorf("ICE server url %q: %v", s.URL, err)
	}
	hasCreds := s.Username != "" || s.Credential != ""
	switch {
	case !turn && (hasCreds || s.StaticAuthSecret != ""):
		return fmt.Errorf("ICE server url %q: a stun server takes no username, credential or staticAuthSecret", s.URL)
	case turn && s.StaticAuthSecret != "" && hasCreds:
		return fmt.Errorf("ICE server url %q: give either staticAuthSecret or username and credential, not both", s.URL)
	case turn && s.StaticAuthSecret == "" && (s.Username == "" || s.Credential == ""):
		return fmt.Errorf("ICE server url %q: a turn server needs username and credential (or staticAuthSecret)", s.URL)
	}
	return nil
}

func validHostPort(hp string) error {
	host, port := hp, ""
	if strings.HasPrefix(hp, "[") {
		end := strings.Index(hp, "]")
		if end < 0 {
			return errors.New("unclosed '[' in IPv6 host")
		}
		host, port = hp[1:end], hp[end+1:]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return fmt.Errorf("%q is not an IPv6 address", host)
		}
		if port != "" && !strings.HasPrefix(port, ":") {
			return errors.New("garbage after the IPv6 host")
		}
		port = strings.TrimPrefix(port, ":")
	} else {
		if i := strings.LastIndex(hp, ":"); i >= 0 {
			host, port = hp[:i], hp[i+1:]
		}
		if host == "" {
			return errors.New("empty host")
		}
		if strings.Contains(host, ":") {
			return errors.New("an IPv6 host must be in brackets")
		}
		if _, err := netip.ParseAddr(host); err != nil && !dnsRE.MatchString(host) {
			return fmt.Errorf("%q is not a host name or IP address", host)
		}
	}
	if port != "" || strings.HasSuffix(hp, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not 1–65535", port)
		}
	}
	return nil
}

// ParseIceServers reads OPENVIDU_WEBRTC_ICE_SERVERS: a JSON array of strings, each a comma-separated
// list of key=value with keys url, username, credential, staticAuthSecret, e.g.
// ["url=turns:turn.example.com:443,staticAuthSecret=secret"]. Every entry is validated.
func ParseIceServers(text string) ([]IceServer, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, nil
	}
	var entries []string
	if err := json.Unmarshal([]byte(text), &entries); err != nil {
		return nil, fmt.Errorf("must be a JSON array of strings like [\"url=turn:host:3478,username=u,credential=p\"]: %v", err)
	}
	out := make([]IceServer, 0, len(entries))
	// Errors name an entry by its position, never by its text: it may hold a credential or a
	// staticAuthSecret, and the error ends up in start-up logs.
	for i, e := range entries {
		var s IceServer
		for _, kv := range strings.Split(e, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				return nil, fmt.Errorf("entry %d: a part without '=' (expected key=value)", i+1)
			}
			switch k {
			case "url":
				s.URL = v
			case "username":
				s.Username = v
			case "credential":
				s.Credential = v
			case "staticAuthSecret":
				s.StaticAuthSecret = v
			default:
				return nil, fmt.Errorf("entry %d: unknown key %q (allowed: url, username, credential, staticAuthSecret)", i+1, k)
			}
		}
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		out = append(out, s)
	}
	return out, nil
}
