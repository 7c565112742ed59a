// Package iceconfig decides the ICE servers a joining participant is given (joinRoom's
// customIceServers, protocol note §4.1): the ones the application chose for the connection, else the
// embedded TURN server with credentials for this participant alone, then the operator's external
// servers (OPENVIDU_WEBRTC_ICE_SERVERS). It mints coturn use-auth-secret credentials where a server
// has a static secret.
//
// It imports session (for the IceServer type joinRoom carries) and config (for the operator's
// entries) only: the TURN server is reached through the small Credentials interface.
package iceconfig

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/session"
)

// CredentialTTL is how long minted use-auth-secret credentials stay valid: longer than a call, as
// the SDK asks for servers only when it joins.
const CredentialTTL = 24 * time.Hour

// Credentials mints the embedded TURN server's credentials for one participant (turn.Server).
type Credentials interface {
	Credentials(connectionID string) (username, password string)
}

// Config is what the policy needs to know of the deployment.
type Config struct {
	// Host is the name or address browsers reach this server at: DOMAIN_OR_PUBLIC_IP, or 127.0.0.1
	// in dev mode.
	Host string
	// TLS offers TURN over TLS (turns:) on the shared port; off in dev mode, which serves plain HTTP.
	TLS bool
	// Port is the TCP port carrying TURN over TCP and TLS: the shared port (HTTPS_PORT), or
	// PARLEY_MEDIA_TCP_PORT behind a proxy.
	Port int
	// TLSHost and TLSPort, when set, are where TURN over TLS is offered instead of Host and Port:
	// behind a proxy, the name it passes through to us (PARLEY_TURN_TLS_HOST).
	TLSHost string
	TLSPort int
	// TURNUDPPort is PARLEY_TURN_UDP_PORT; 0 offers no TURN over UDP.
	TURNUDPPort int
	// MediaPort is the UDP media port: the STUN server offered when nothing else is.
	MediaPort int
	// TURN is the embedded TURN server, nil when it is disabled.
	TURN Credentials
	// External are the operator's servers (OPENVIDU_WEBRTC_ICE_SERVERS).
	External []config.IceServer
	// Now is the clock for minted credentials; nil means time.Now.
	Now func() time.Time
}

// Policy hands out ICE servers; Servers is signaling's Config.IceServers.
type Policy struct{ cfg Config }

// New returns the policy for cfg.
func New(cfg Config) *Policy {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Policy{cfg: cfg}
}

// Servers returns what joinRoom sends to participant id: configured, when the application chose
// servers for its connection (credentials minted from their secrets), else the embedded TURN then
// the external servers. Never empty, so the SDK never falls back to public STUN servers.
func (p *Policy) Servers(id session.ConnectionID, configured []session.IceServer) []session.IceServer {
	now := p.cfg.Now()
	if len(configured) > 0 {
		out := make([]session.IceServer, 0, len(configured))
		for _, e := range configured {
			u, c := Mint(e.Username, e.Credential, e.StaticAuthSecret, now)
			out = append(out, session.IceServer{URL: e.URL, Username: u, Credential: c})
		}
		return out
	}
	var out []session.IceServer
	if p.cfg.TURN != nil {
		user, pass := p.cfg.TURN.Credentials(string(id))
		hp := net.JoinHostPort(p.cfg.Host, strconv.Itoa(p.cfg.Port))
		if p.cfg.TLS {
			tlsHP := hp
			if p.cfg.TLSHost != "" {
				tlsHP = net.JoinHostPort(p.cfg.TLSHost, strconv.Itoa(p.cfg.TLSPort))
			}
			out = append(out, session.IceServer{URL: "turns:" + tlsHP + "?transport=tcp", Username: user, Credential: pass})
		}
		out = append(out, session.IceServer{URL: "turn:" + hp + "?transport=tcp", Username: user, Credential: pass})
		if p.cfg.TURNUDPPort != 0 {
			out = append(out, session.IceServer{URL: "turn:" + net.JoinHostPort(p.cfg.Host, strconv.Itoa(p.cfg.TURNUDPPort)) + "?transport=udp",
				Username: user, Credential: pass})
		}
	}
	for _, e := range p.cfg.External {
		u, c := Mint(e.Username, e.Credential, e.StaticAuthSecret, now)
		out = append(out, session.IceServer{URL: e.URL, Username: u, Credential: c})
	}
	if len(out) == 0 {
		out = append(out, session.IceServer{URL: fmt.Sprintf("stun:%s", net.JoinHostPort(p.cfg.Host, strconv.Itoa(p.cfg.MediaPort)))})
	}
	return out
}

// Mint returns the credentials a client gets for one server: username and credential as they are,
// or, with a staticAuthSecret, fresh TURN REST credentials valid for CredentialTTL from now (coturn
// use-auth-secret: username "<expiry>:<random>", credential base64(HMAC-SHA1(secret, username))).
func Mint(username, credential, staticAuthSecret string, now time.Time) (string, string) {
	if staticAuthSecret == "" {
		return username, credential
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	username = strconv.FormatInt(now.Add(CredentialTTL).Unix(), 10) + ":" + base64.RawURLEncoding.EncodeToString(b[:])
	mac := hmac.New(sha1.New, []byte(staticAuthSecret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
