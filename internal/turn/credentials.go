package turn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // the TURN REST scheme (and coturn) fix HMAC-SHA1
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/pion/stun/v4"
	pionturn "github.com/pion/turn/v5"
)

// Credential format (draft-uberti-behave-turn-rest-00 §2.2, coturn use-auth-secret):
//
//	username = "<unix expiry seconds>" ":" <handle>       e.g. "1767225600:q3JrX0bH1m8tZ2aVwPc4Lg"
//	password = base64std( HMAC-SHA1(secret, username) )   28 characters
//
// The handle is 16 random bytes in unpadded base64url (22 characters, no ':'). It is NOT the
// connection ID, for three reasons:
//   - Connection IDs are shown to every participant of the session and appear in webhooks, CDR and
//     logs; the username crosses TURN/TCP and TURN/UDP in clear, so an opaque handle keeps relay
//     traffic unlinkable to a participant for anyone on the path.
//   - The handle lives in a map. Dropping the map entry (Revoke) makes the credential worthless at
//     once, which a stateless HMAC credential cannot do before its expiry.
//   - Its alphabet is ours: a custom connection ID could contain ':' or exceed STUN's limits.
//
// The cost is that credentials are valid only on the node (and process) that minted them, which
// is right: each node's TURN relays only to its own SFU.
const (
	handleBytes = 16
	handleLen   = 22 // base64.RawURLEncoding.EncodedLen(handleBytes)
	maxExpiry   = 19 // digits of math.MaxInt64
)

func newHandle() string {
	var b [handleBytes]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// formatUsername builds the TURN REST username.
func formatUsername(expiry int64, handle string) string {
	return strconv.FormatInt(expiry, 10) + ":" + handle
}

// parseUsername splits a TURN REST username into expiry and handle. It accepts only the canonical
// form formatUsername produces (decimal without sign or leading zeros, one ':', a 22-character
// base64url handle), so every accepted username round-trips byte for byte. Attacker-controlled
// input: it must never panic, and it does no work proportional to anything but len(u).
func parseUsername(u string) (expiry int64, handle string, ok bool) {
	ts, h, found := strings.Cut(u, ":")
	if !found || len(ts) == 0 || len(ts) > maxExpiry || len(h) != handleLen {
		return 0, "", false
	}
	if ts[0] == '0' && len(ts) > 1 {
		return 0, "", false
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return 0, "", false
		}
	}
	exp, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, "", false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return 0, "", false
		}
	}
	// The last character of 16 bytes in base64 carries 2 padding bits that must be zero, or two
	// spellings would decode to the same handle.
	if _, err := base64.RawURLEncoding.Strict().DecodeString(h); err != nil {
		return 0, "", false
	}
	return exp, h, true
}

// restPassword computes base64(HMAC-SHA1(secret, username)).
func restPassword(secret []byte, username string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Credentials mints TURN credentials for a connection, in the TURN REST format (see the comment
// above handleBytes). Call it at joinRoom and put the result in customIceServers and in the
// legacy turnUsername/turnCredential fields. Calling it again for the same connection returns
// the same handle with a fresh expiry. The credentials work until Revoke(connectionID), until
// Liveness reports the connection dead, or (for new allocations only) until they expire.
//
// It takes only Server's own lock and never calls Liveness, so the session model may call it while
// holding its own locks. An empty connectionID gets empty credentials (which never authenticate).
func (s *Server) Credentials(connectionID string) (username, password string) {
	return s.credentialsUntil(connectionID, time.Now().Add(s.cfg.CredentialTTL))
}

func (s *Server) credentialsUntil(connectionID string, expiry time.Time) (string, string) {
	if connectionID == "" {
		// The empty user ID is how pion's EVEN-PORT probe reaches the relay generator, which
		// then hands out an uncounted socket; no credential may ever authenticate as "".
		return "", ""
	}
	s.mu.Lock()
	st := s.conns[connectionID]
	if st == nil {
		st = &connState{
			id:     connectionID,
			handle: newHandle(),
			relays: map[*relayConn]struct{}{},
			tcp:    map[*tcpConn]struct{}{},
			limit:  s.cfg.MaxAllocationsPerConnection,
		}
		s.conns[connectionID] = st
		s.handles[st.handle] = st
	}
	handle := st.handle
	s.mu.Unlock()

	u := formatUsername(expiry.Unix(), handle)
	return u, restPassword(s.cfg.Secret, u)
}

// authenticate is pion's AuthHandler. pion calls it for every request that carries
// MESSAGE-INTEGRITY (Allocate, Refresh, CreatePermission, ChannelBind, Connect, ConnectionBind) on
// its own goroutine, before it checks the integrity with the key we return. It returns the
// connection ID as pion's userID: pion hands it to the relay allocator and the quota handler, and
// binds the allocation to it, so a Refresh with another connection's credential finds nothing.
//
// Send indications and ChannelData carry no credential; Revoke stops those by closing the relay.
func (s *Server) authenticate(ra *pionturn.RequestAttributes) (userID string, key []byte, ok bool) {
	switch ra.Method {
	case stun.MethodAllocate, stun.MethodRefresh, stun.MethodCreatePermission, stun.MethodChannelBind:
	default:
		// Connect and ConnectionBind are RFC 6062 (TCP relays), which we refuse outright; refusing
		// here too means no code path of pion's TCP relay runs with a valid credential.
		return s.authFail()
	}
	if ra.Realm != s.cfg.Realm {
		return s.authFail()
	}
	expiry, handle, valid := parseUsername(ra.Username)
	if !valid {
		return s.authFail()
	}
	// The expiry gates new allocations only. Refresh, CreatePermission and ChannelBind of an
	// existing allocation keep working past it, as long as the connection is live: otherwise a
	// meeting longer than CredentialTTL would lose its relay mid-call, and liveness is the real
	// control anyway (the same choice as LiveKit #4526; coturn does not check again either).
	if ra.Method == stun.MethodAllocate && expiry < time.Now().Unix() {
		return s.authFail()
	}
	s.mu.Lock()
	st := s.handles[handle]
	s.mu.Unlock()
	if st == nil {
		return s.authFail() // never minted here, or revoked
	}
	// Outside our lock: Liveness belongs to the session model and may take its locks.
	if !s.live.Alive(st.id) {
		// The participant is gone but nobody told us; treat it as a revocation so that its
		// relays stop now rather than when their allocations time out.
		s.revoke(st)
		return s.authFail()
	}
	pw := restPassword(s.cfg.Secret, ra.Username)
	return st.id, pionturn.GenerateAuthKey(ra.Username, ra.Realm, pw), true
}

func (s *Server) authFail() (string, []byte, bool) {
	s.authFailures.Add(1)
	return "", nil, false
}
