package turn

import (
	"net"
	"sync"
	"testing"

	"github.com/pion/stun/v4"
)

// footprints is a Liveness that also reports each participant's session and PeerConnections.
type footprints struct {
	mu sync.Mutex
	m  map[string]footprint
}

type footprint struct {
	session string
	pcs     int
}

func (f *footprints) Alive(string) bool { return true }

func (f *footprints) Footprint(id string) (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp := f.m[id]
	return fp.session, fp.pcs
}

// newShareEnv is newEnv with a Footprint liveness.
func newShareEnv(t *testing.T, mod func(*Config), fps map[string]footprint) *testEnv {
	return newEnvLive(t, mod, nil, &footprints{m: fps})
}

// dialFrom connects to the test server's TURN/TCP port from a chosen loopback address.
func dialFrom(t *testing.T, e *testEnv, ip string, user, pass string) *rawClient {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", e.tcp.String())
	if err != nil {
		t.Fatal(err)
	}
	return rawClientOn(t, c, user, pass)
}

// TestCredentialSizedByPeerConnections: a participant may hold AllocationsPerPeerConnection for
// each of its PeerConnections plus two, and 486 past it.
func TestCredentialSizedByPeerConnections(t *testing.T) {
	t.Parallel()
	e := newShareEnv(t, func(c *Config) { c.AllocationsPerPeerConnection = 2 },
		map[string]footprint{"con_One": {"ses_A", 1}})
	u, p := e.srv.Credentials("con_One")
	for range 2 * (1 + peerConnectionSlack) {
		dialRaw(t, e, u, p).mustAllocate()
	}
	if _, code := dialRaw(t, e, u, p).allocate(); code != int(stun.CodeAllocQuotaReached) {
		t.Fatalf("Allocate past 2 per PeerConnection: code %d, want 486", code)
	}
}

// TestHostileTokensLeaveRoom: many credentials of one session, from one address, allocate all
// they can; they get 486 while the node still has room, and a fresh participant of another
// session, from another address, gets its relays.
func TestHostileTokensLeaveRoom(t *testing.T) {
	t.Parallel()
	const max, hostile = 40, 10
	fps := map[string]footprint{"con_Fresh": {"ses_Good", 1}}
	for i := range hostile {
		fps["con_Hostile"+string(rune('A'+i))] = footprint{"ses_Bad", 20}
	}
	e := newShareEnv(t, func(c *Config) { c.MaxAllocations = max; c.AllocationsPerPeerConnection = 2 }, fps)
	held, refused := 0, 0
	for i := range hostile {
		u, p := e.srv.Credentials("con_Hostile" + string(rune('A'+i)))
		for {
			_, code := dialFrom(t, e, "127.0.0.1", u, p).allocate()
			if code == int(stun.CodeAllocQuotaReached) {
				refused++
				break
			}
			if code != 0 {
				t.Fatalf("hostile Allocate: code %d", code)
			}
			held++
		}
	}
	if held >= max || refused != hostile {
		t.Fatalf("hostile credentials hold %d of %d allocations (%d refusals)", held, max, refused)
	}
	u, p := e.srv.Credentials("con_Fresh")
	for range 4 { // two PeerConnections' worth
		dialFrom(t, e, "127.0.0.9", u, p).mustAllocate()
	}
}
