// Package turn is Parley's embedded TURN server (RFC 5766 / RFC 8656), built on pion/turn v5.
//
// Its job is narrow on purpose: give a participant behind a UDP-hostile firewall a relay that
// reaches our own SFU and nothing else, with credentials that die with the participant.
//
// What it owns:
//   - Credentials in the TURN REST format (draft-uberti-behave-turn-rest-00, as coturn's
//     use-auth-secret checks them): username "<unix expiry>:<handle>", password
//     base64(HMAC-SHA1(secret, username)). The handle is an opaque random string mapped to the
//     connection ID in memory, so a credential is worthless once Revoke drops the mapping.
//   - The liveness check on every authenticated request (Allocate, Refresh, CreatePermission,
//     ChannelBind), through the Liveness interface the session model gives it.
//   - The relay allow-list: a relay may exchange datagrams only with Config.MediaAddrs, exactly
//     (ip:port). It is enforced twice, in pion's PermissionHandler (IP level: 403 for anything
//     else) and in a wrapper around every relay socket (ip:port level: datagrams to or from
//     anyone else are dropped and counted).
//   - Quotas (per connection and global), and refusal of RFC 6062 TCP relays.
//   - The TURN/TCP and TURN/TLS connections the edge hands over (HandleConn), so that Revoke can
//     close them, and the optional TURN/UDP socket.
//
// What it must not import: any other github.com/parley/parley/internal package. It sits at the
// bottom of the dependency graph (edge → api/signaling → session → sfu/turn); it reports upward
// only through the Liveness interface and the Stats snapshot. deps_test.go enforces this.
//
// Lock order: pion's allocation-manager lock → Server.mu. Server.mu is never held while calling
// pion, Liveness, or closing a socket (closing a relay socket makes pion take its own lock).
package turn
