// Package edge owns Parley's one public TCP port. Every connection it accepts is told apart by
// its first bytes and, inside TLS, by ALPN (design.md, "Ports"; research notes §4):
//
//	first bytes                         carries                      goes to
//	16 03 0x (TLS handshake record)     HTTPS/WSS or TURN over TLS   TLS terminated here, then:
//	  ALPN "stun.turn"                    TURN over TLS                Config.TURN
//	  ALPN "acme-tls/1"                   ACME TLS-ALPN-01 check       answered by the handshake
//	  ALPN "h2"                           HTTP/2                       Config.HTTP
//	  no ALPN or "http/1.1", then STUN    TURN over TLS                Config.TURN
//	  no ALPN or "http/1.1", otherwise    HTTPS, WSS                   Config.HTTP
//	STUN header (cookie at offset 4)    TURN over TCP                Config.TURN
//	RFC 4571 length + STUN (offset 6)   ICE-TCP, passive candidates  ICETCPListener (pion TCPMux)
//	anything else                       HTTP (dev mode) or garbage   Config.HTTP (garbage: 400)
//
// Sniffing has deadlines (FirstByteTimeout for a silent peer, SniffTimeout for the rest) and
// bounds on how many connections are sniffed at once, per source address and in all. Accepting
// never waits for a slot: a full source, or the source holding the most when the port is full,
// loses its oldest connection to the newcomer, so peers that send nothing or garbage displace
// only each other and a newcomer from elsewhere is sniffed at once.
// Peeked bytes are replayed to whoever gets the connection, whose addresses stay the real ones.
//
// The package also makes the TLS configuration for the port (TLSConfig: self-signed,
// operator-supplied or Let's Encrypt certificates) and the handler for the plain HTTP port
// (ACME http-01 and a redirect to HTTPS).
//
// It knows nothing of sessions, OpenVidu or media: it receives handlers, and must import no
// other Parley package (deps_test.go).
package edge
