// Package clientip tells whose request it is: the address of the browser or application behind
// an HTTP request or WebSocket. That is the socket's peer, unless the peer is a reverse proxy the
// operator trusts (PARLEY_TRUSTED_PROXIES): then the proxy's X-Forwarded-For or X-Real-IP says.
// Anyone can write those headers, so from any other peer they are ignored; otherwise a participant
// could put any address into logs, webhooks, the call detail record and the app's rate limits.
//
// It imports nothing of ours.
package clientip

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds a request's client address.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver believing forwarding headers only from peers inside trusted.
func New(trusted []netip.Prefix) *Resolver {
	return &Resolver{trusted: trusted}
}

// Trusted reports whether a is one of the operator's proxies.
func (r *Resolver) Trusted(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Addr is the client's address. From a trusted peer it is the right-most address of
// X-Forwarded-For that is not itself a trusted proxy (each proxy appends the peer it saw, so
// that is the first hop no proxy of ours vouches for; what is left of it the client may have
// written), else X-Real-IP; a header that does not parse is ignored. It is the invalid Addr only
// when RemoteAddr is not an address (never for a request from net/http's server).
func (r *Resolver) Addr(req *http.Request) netip.Addr {
	peer := peerAddr(req.RemoteAddr)
	if !peer.IsValid() || !r.Trusted(peer) {
		return peer
	}
	if hops := forwardedFor(req.Header); len(hops) > 0 {
		for i := len(hops) - 1; i >= 0; i-- {
			if !r.Trusted(hops[i]) || i == 0 {
				return hops[i]
			}
		}
	}
	if a, err := netip.ParseAddr(strings.TrimSpace(req.Header.Get("X-Real-IP"))); err == nil {
		return a.Unmap().WithZone("")
	}
	return peer
}

// String is Addr written out, or RemoteAddr as it is when that is not an address.
func (r *Resolver) String(req *http.Request) string {
	if a := r.Addr(req); a.IsValid() {
		return a.String()
	}
	return req.RemoteAddr
}

// Proto is the scheme the client used: X-Forwarded-Proto ("http" or "https", the first hop's)
// from a trusted peer, else https when the request came over TLS here.
func (r *Resolver) Proto(req *http.Request) string {
	if r.fromTrusted(req) {
		first, _, _ := strings.Cut(req.Header.Get("X-Forwarded-Proto"), ",")
		if p := strings.ToLower(strings.TrimSpace(first)); p == "http" || p == "https" {
			return p
		}
	}
	if req.TLS != nil {
		return "https"
	}
	return "http"
}

// Host is the host the client asked for: X-Forwarded-Host (the first hop's) from a trusted peer,
// else the request's Host. A forwarded value with characters no host[:port] has is ignored.
func (r *Resolver) Host(req *http.Request) string {
	if r.fromTrusted(req) {
		first, _, _ := strings.Cut(req.Header.Get("X-Forwarded-Host"), ",")
		if h := strings.TrimSpace(first); h != "" && plausibleHost(h) {
			return h
		}
	}
	return req.Host
}

// FromTrusted reports whether the request's peer is one of the operator's proxies.
func (r *Resolver) FromTrusted(req *http.Request) bool { return r.fromTrusted(req) }

func (r *Resolver) fromTrusted(req *http.Request) bool {
	peer := peerAddr(req.RemoteAddr)
	return peer.IsValid() && r.Trusted(peer)
}

// plausibleHost accepts what a host[:port] may hold: letters, digits, '.', '-', ':', and the
// brackets of an IPv6 literal.
func plausibleHost(h string) bool {
	if len(h) > 260 {
		return false
	}
	for _, c := range h {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)
		if !ok {
			return false
		}
	}
	return true
}

// forwardedFor is every address in the X-Forwarded-For headers, in order; nil if any entry does not
// parse, since the chain then cannot be followed.
func forwardedFor(h http.Header) []netip.Addr {
	var out []netip.Addr
	for _, line := range h.Values("X-Forwarded-For") {
		for _, f := range strings.Split(line, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			a, err := netip.ParseAddr(f)
			if err != nil {
				if ap, err2 := netip.ParseAddrPort(f); err2 == nil { // some proxies add the port
					a, err = ap.Addr(), nil
				}
			}
			if err != nil {
				return nil
			}
			out = append(out, a.Unmap().WithZone(""))
		}
	}
	return out
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}
