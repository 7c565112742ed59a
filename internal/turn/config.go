package turn

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/parley/parley/internal/sendq"
)

// Config is everything New needs. The config package maps environment variables onto it; this
// package reads no environment itself.
type Config struct {
	// Realm is the TURN realm sent in 401 responses. Default "parley". Clients copy it from the
	// server, so its value only has to be stable for the process lifetime.
	Realm string

	// Secret keys the credential HMAC. It must be random, at least 16 bytes, and unrelated to
	// OPENVIDU_SECRET: every participant sees (username, HMAC) pairs, so a guessable secret could
	// be brute-forced offline. nil means New draws 32 bytes from crypto/rand, which is right for a
	// single node. Share a text secret (e.g. hex) only if an external coturn with
	// static-auth-secret must accept the same credentials; coturn uses the string's bytes.
	Secret []byte

	// CredentialTTL is how far in the future Credentials puts the expiry. Default 24h, as
	// OpenVidu 2.32 does: openvidu-browser fetches credentials once per joinRoom and reuses them
	// for ICE restarts, and the liveness check, not the expiry, is what ends a credential.
	CredentialTTL time.Duration

	// MediaAddrs are the ONLY destinations the relay may reach: the local addresses of the SFU's
	// UDP mux socket(s), exactly ip:port. Required.
	MediaAddrs []netip.AddrPort

	// MediaAliases maps an address the SFU announces in its ICE candidates to the MediaAddrs entry
	// that actually receives it, for 1:1 NAT hosts (announced public IP, bound private IP). A
	// client names the announced address; the relay delivers to the local one and reports replies
	// as coming from the announced one, so no hairpin NAT is needed. Optional.
	MediaAliases map[netip.AddrPort]netip.AddrPort

	// RelayIP is the local IP relay sockets bind to (one ephemeral UDP port per allocation). Use
	// the node-local media IP: only our own SFU ever sends to a relay address, so relay ports
	// need no firewall opening. It is what clients see as XOR-RELAYED-ADDRESS. Required; must not
	// be unspecified (0.0.0.0 would be announced as the relay address).
	RelayIP netip.Addr

	// RelayIP6 is an optional second relay IP of the other family (IPv6 when RelayIP is IPv4):
	// browsers that reach the TURN server over IPv6 ask for an IPv6 relay, and would get none.
	RelayIP6 netip.Addr

	// MaxAllocationsPerConnection bounds the allocations one credential may hold at once,
	// whatever its PeerConnections. Default 100. With a Liveness that implements Footprint,
	// the bound in force is lower: AllocationsPerPeerConnection for each PeerConnection the
	// participant has, plus two (share.go).
	MaxAllocationsPerConnection int

	// AllocationsPerPeerConnection is what one PeerConnection of a browser may hold: one relay
	// per TURN URL (turns:, turn: over TCP, turn: over UDP) and local address family (IPv4,
	// IPv6). Default 6.
	AllocationsPerPeerConnection int

	// MaxAllocations bounds allocations (and so relay sockets) on this node. Default 1000. Past
	// half of it, no session or source address may grow beyond its fair share (share.go).
	MaxAllocations int

	// UDPAddr is the optional TURN/UDP listen address (e.g. ":3478"). Empty disables TURN/UDP:
	// a UDP TURN port answers anyone's unauthenticated Allocate with a larger 401, which makes it
	// a (small) reflector, and UDP reaching us means ICE over the UDP mux works anyway.
	UDPAddr string

	// IdleTimeout closes a TURN/TCP or TURN/TLS connection that holds no allocation for this long
	// (a peer that connects and never authenticates). Default 30s.
	IdleTimeout time.Duration

	// sweepEvery is how often Run looks for connections Liveness reports dead; zero is a minute
	// (tests shorten it).
	sweepEvery time.Duration

	// clientQueue bounds what waits to be written to each TURN/TCP or TURN/TLS client; the zero
	// value is sendq's defaults (tests change it).
	clientQueue sendq.Config
}

// Defaults applied by New for zero fields.
const (
	DefaultRealm                        = "parley"
	DefaultCredentialTTL                = 24 * time.Hour
	DefaultMaxAllocationsPerConnection  = 100
	DefaultAllocationsPerPeerConnection = 6
	DefaultMaxAllocations               = 1000
	DefaultIdleTimeout                  = 30 * time.Second

	minSecretLen = 16 // 128 bits
)

// withDefaults returns a copy of c with defaults filled in, and checks it, reporting every problem.
func (c Config) withDefaults() (Config, error) {
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.CredentialTTL == 0 {
		c.CredentialTTL = DefaultCredentialTTL
	}
	if c.MaxAllocationsPerConnection == 0 {
		c.MaxAllocationsPerConnection = DefaultMaxAllocationsPerConnection
	}
	if c.AllocationsPerPeerConnection == 0 {
		c.AllocationsPerPeerConnection = DefaultAllocationsPerPeerConnection
	}
	if c.MaxAllocations == 0 {
		c.MaxAllocations = DefaultMaxAllocations
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.sweepEvery == 0 {
		c.sweepEvery = time.Minute
	}
	if c.Secret == nil {
		c.Secret = make([]byte, 32)
		_, _ = rand.Read(c.Secret) // never fails on supported platforms (Go ≥ 1.24 panics instead)
	} else {
		// Copy, so the caller cannot change the key under us.
		c.Secret = append([]byte(nil), c.Secret...)
	}

	var errs []error
	if len(c.Secret) < minSecretLen {
		errs = append(errs, fmt.Errorf("turn: Secret is %d bytes, want at least %d random bytes", len(c.Secret), minSecretLen))
	}
	if c.CredentialTTL < 0 {
		errs = append(errs, fmt.Errorf("turn: CredentialTTL %v is negative", c.CredentialTTL))
	}
	if c.MaxAllocationsPerConnection < 0 {
		errs = append(errs, fmt.Errorf("turn: MaxAllocationsPerConnection %d is negative", c.MaxAllocationsPerConnection))
	}
	if c.MaxAllocations < 0 {
		errs = append(errs, fmt.Errorf("turn: MaxAllocations %d is negative", c.MaxAllocations))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("turn: IdleTimeout %v is negative", c.IdleTimeout))
	}
	switch ip := c.RelayIP.Unmap(); {
	case !ip.IsValid():
		errs = append(errs, errors.New("turn: RelayIP is not set"))
	case ip.IsUnspecified(), ip.IsMulticast():
		errs = append(errs, fmt.Errorf("turn: RelayIP %s cannot be bound as a relay address", ip))
	default:
		c.RelayIP = ip
	}
	if ip := c.RelayIP6.Unmap(); ip.IsValid() {
		if ip.IsUnspecified() || ip.IsMulticast() || ip.Is4() == c.RelayIP.Is4() {
			errs = append(errs, fmt.Errorf("turn: RelayIP6 %s must be a bindable address of the other family than RelayIP", ip))
		}
		c.RelayIP6 = ip
	}
	return c, errors.Join(errs...)
}
