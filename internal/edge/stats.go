package edge

import "sync/atomic"

// dropReason says why a connection was closed before any handler got it.
type dropReason uint8

const (
	dropNone           dropReason = iota
	dropTimeout                   // said too little before SniffTimeout (silent peer, slow handshake)
	dropRead                      // closed or failed before saying enough
	dropNoTLS                     // TLS ClientHello in plain mode
	dropTLSHandshake              // TLS handshake failed (bad ClientHello, no common ALPN or cipher)
	dropNoTURN                    // STUN first bytes with no TURN handler
	dropHandoff                   // the HTTP server or ICE-TCP listener did not accept in time
	dropShutdown                  // still being sniffed when Run shut down
	dropACMEDone                  // TLS-ALPN-01 challenge answered; not an error
	dropEvicted                   // displaced by a newer connection while its source or the port was full
	dropProxyMissing              // from a load balancer of ProxyProtocolFrom, without a PROXY header
	dropProxyUntrusted            // a PROXY header from a peer outside ProxyProtocolFrom
	dropProxyHeader               // a PROXY header that does not parse or names no TCP client
	numDropReasons
)

func (r dropReason) String() string {
	return [...]string{"none", "timeout", "read", "tls-disabled", "tls-handshake", "turn-disabled",
		"handoff", "shutdown", "acme-challenge", "evicted",
		"proxy-missing", "proxy-untrusted", "proxy-header", "invalid"}[min(r, numDropReasons)]
}

// Stats counts what the edge did with the connections it accepted, for metrics and tests. A
// connection is counted once as handed over (HTTP, TURN, ICETCP) or once as dropped; TLS and
// ACME count handshakes on top.
type Stats struct {
	Accepted uint64 // connections accepted on the port
	HTTP     uint64 // handed to the HTTP server (plain or TLS)
	TURN     uint64 // handed to the TURN handler (TCP or TLS)
	ICETCP   uint64 // handed to the ICE-TCP listener
	TLS      uint64 // TLS handshakes completed
	ACME     uint64 // TLS-ALPN-01 challenges answered

	DropTimeout      uint64 // nothing decisive before SniffTimeout
	DropRead         uint64 // peer closed (or the read failed) before saying enough
	DropTLSDisabled  uint64 // TLS ClientHello while no TLS is configured
	DropTLSHandshake uint64 // TLS handshake failed
	DropTURNDisabled uint64 // TURN first bytes while no TURN handler is configured
	DropHandoff      uint64 // the HTTP server or ICE-TCP listener took no connection in time
	DropShutdown     uint64 // still being sniffed at shutdown
	DropEvicted      uint64 // displaced while its source or the port had the most connections in their sniff
	// PROXY protocol (Config.ProxyProtocolFrom): refused for a missing header from a balancer,
	// a header from anyone else, or a header that does not parse.
	DropProxyMissing, DropProxyUntrusted, DropProxyHeader uint64
}

type counters struct {
	accepted, http, turn, iceTCP, tls, acme atomic.Uint64
	drops                                   [numDropReasons]atomic.Uint64
}

func (c *counters) drop(r dropReason) { c.drops[r].Add(1) }

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Accepted: c.accepted.Load(), HTTP: c.http.Load(), TURN: c.turn.Load(), ICETCP: c.iceTCP.Load(),
		TLS: c.tls.Load(), ACME: c.acme.Load(),
		DropTimeout:        c.drops[dropTimeout].Load(),
		DropRead:           c.drops[dropRead].Load(),
		DropTLSDisabled:    c.drops[dropNoTLS].Load(),
		DropTLSHandshake:   c.drops[dropTLSHandshake].Load(),
		DropTURNDisabled:   c.drops[dropNoTURN].Load(),
		DropHandoff:        c.drops[dropHandoff].Load(),
		DropShutdown:       c.drops[dropShutdown].Load(),
		DropEvicted:        c.drops[dropEvicted].Load(),
		DropProxyMissing:   c.drops[dropProxyMissing].Load(),
		DropProxyUntrusted: c.drops[dropProxyUntrusted].Load(),
		DropProxyHeader:    c.drops[dropProxyHeader].Load(),
	}
}
