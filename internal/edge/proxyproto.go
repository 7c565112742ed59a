package edge

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
)

// proxyBufSize holds a whole PROXY protocol v1 line (107 bytes at most), which go-proxyproto
// wants buffered in one read, plus the v2 header's fixed part and addresses.
const proxyBufSize = 256

// errProxyNotTCP is a PROXY header naming something other than a TCP client (UDP, a Unix socket):
// a balancer set up for another service.
var errProxyNotTCP = errors.New("PROXY header names no TCP client")

// readProxyHeader reads the PROXY protocol header (v1 or v2) at the start of br, if any, and
// returns the client address it names: nil when there is no header, or when it is a v2 LOCAL or
// a v1 UNKNOWN (the balancer's own health check: the socket's addresses stand). A header that
// does not parse, or names no TCP client, is an error. Bytes after the header stay in br.
func readProxyHeader(br *bufio.Reader) (client net.Addr, found bool, err error) {
	h, err := proxyproto.Read(br)
	if errors.Is(err, proxyproto.ErrNoProxyProtocol) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	if h.Command.IsLocal() || h.TransportProtocol.IsUnspec() {
		return nil, true, nil
	}
	src, _, ok := h.TCPAddrs()
	if !ok {
		return nil, true, errProxyNotTCP
	}
	return src, true, nil
}

// proxiedConn is a connection from a load balancer, whose RemoteAddr is the client's that the
// PROXY header named. LocalAddr stays the socket's: pion's TCPMux finds the ICE agent by the
// local address the passive candidate was gathered on, which the balancer's is not.
type proxiedConn struct {
	net.Conn
	remote *net.TCPAddr
}

// RemoteAddr implements net.Conn: the client behind the balancer. HTTP requests, TURN
// allocations (XOR-MAPPED-ADDRESS, per-address quotas) and ICE-TCP candidates all take it from
// here.
func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }

// NetConn returns the balancer's connection.
func (c *proxiedConn) NetConn() net.Conn { return c.Conn }

// proxyVerdict is what the PROXY protocol rules say of a connection's first bytes.
func (s *Server) proxyVerdict(raw net.Conn, fromBalancer bool, br *bufio.Reader) (net.Conn, dropReason, error) {
	client, found, err := readProxyHeader(br)
	switch {
	case !fromBalancer && found:
		// Anyone could write a header; only the operator's balancers are believed.
		return nil, dropProxyUntrusted, err
	case err != nil:
		return nil, dropProxyHeader, err
	case fromBalancer && !found:
		s.warnNoProxyHeader(raw)
		return nil, dropProxyMissing, nil
	case client == nil:
		return raw, dropNone, nil
	}
	ta := client.(*net.TCPAddr)
	if ap := ta.AddrPort(); ap.Addr().Is4In6() { // keep one spelling of an IPv4 client in logs and keys
		ta = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	return &proxiedConn{Conn: raw, remote: ta}, dropNone, nil
}

// warnNoProxyHeader says, at most once a minute, that a balancer the operator named sends no
// PROXY header: every connection through it is refused until its configuration sends one.
func (s *Server) warnNoProxyHeader(raw net.Conn) {
	if now := time.Now().Unix(); s.lastNoHeaderWarn.Swap(now) < now-60 {
		s.log.Warn("refused a connection without a PROXY protocol header from a trusted load balancer: configure it to send one (HAProxy: send-proxy-v2 on its servers), or remove it from PARLEY_PROXY_PROTOCOL_FROM",
			"remote", raw.RemoteAddr().String())
	}
}
