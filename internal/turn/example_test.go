package turn_test

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/parley/parley/internal/turn"
)

// Example shows the wiring the rest of Parley does: the session model supplies Liveness, mints
// credentials at joinRoom and revokes them on leave; the edge hands over TURN connections.
func Example() {
	alive := map[string]bool{"con_Ab12cd34Ef": true} // the session model's view, simplified
	srv, err := turn.New(turn.Config{
		// The SFU's UDP mux socket: the only place the relay may send to.
		MediaAddrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:4443")},
		// Relay sockets bind here; only our own SFU ever sends to them.
		RelayIP: netip.MustParseAddr("127.0.0.1"),
	}, turn.LivenessFunc(func(id string) bool { return alive[id] }), slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	// joinRoom: one credential per connection, sent in customIceServers as
	// {"url": "turns:<host>:443?transport=tcp", "username": user, "credential": pass}, etc.
	user, pass := srv.Credentials("con_Ab12cd34Ef")
	_, _ = user, pass

	// The edge, after sniffing a bare STUN message (or TLS without HTTP ALPN) on the shared port:
	client, server := net.Pipe() // stands in for an accepted *net.TCPConn or *tls.Conn
	defer client.Close()
	srv.HandleConn(server)

	// leaveRoom / evictParticipant:
	srv.Revoke("con_Ab12cd34Ef")
	fmt.Println(srv.Stats().Connections)
	// Output: 0
}
