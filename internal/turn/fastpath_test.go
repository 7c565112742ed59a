package turn

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// channelFrame is one ChannelData frame as a TCP client sends it, padded to 4 bytes.
func channelFrame(ch uint16, data []byte) []byte {
	b := make([]byte, 4+(len(data)+3)&^3)
	binary.BigEndian.PutUint16(b[0:2], ch)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(data)))
	copy(b[4:], data)
	return b
}

// boundClient is a TURN/TCP client with an allocation and channel 0x4000 bound to the media
// address; it returns the relayed address too.
func boundClient(t *testing.T, e *testEnv, conn string) (*rawClient, netip.AddrPort) {
	t.Helper()
	user, pass := e.srv.Credentials(conn)
	c := dialRaw(t, e, user, pass)
	relayAddr := c.mustAllocate()
	if code := c.code(stun.MethodChannelBind, channelAttr(0x4000), peerAttr(e.mediaAddr())); code != 0 {
		t.Fatalf("ChannelBind: %d", code)
	}
	return c, relayAddr
}

// TestChannelDataFraming drives the ChannelData fast path with the stream cut in awkward places:
// several frames and a STUN indication in one write, a frame split byte by byte, odd lengths
// (padding), a channel that was never bound. Everything must arrive in order and intact, in both
// directions, and the unbound channel must relay nothing.
func TestChannelDataFraming(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c, relayAddr := boundClient(t, e, "con_Framing")
	const ch = 0x4000

	send, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
		peerAttr(e.mediaAddr()), stun.RawAttribute{Type: stun.AttrData, Value: []byte("two (send)")}, stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	var burst []byte
	burst = append(burst, channelFrame(ch, []byte("one"))...)
	burst = append(burst, send.Raw...)
	burst = append(burst, channelFrame(0x4001, []byte("unbound"))...)
	burst = append(burst, channelFrame(ch, []byte("three"))...)
	if _, err := c.conn.Write(burst); err != nil {
		t.Fatal(err)
	}
	big := []byte(strings.Repeat("0123456789", 150)) // 1500 bytes, like a video packet
	for _, b := range channelFrame(ch, big) {
		if _, err := c.conn.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"one", "two (send)", "three", string(big)} {
		if from := expectDatagram(t, e.media, want); from != relayAddr {
			t.Fatalf("%.10q came from %s, want the relayed address %s", want, from, relayAddr)
		}
	}
	expectNoDatagram(t, e.media, "ChannelData on an unbound channel")

	// Back to the client: odd lengths one after another, so a padding mistake would shift the
	// second frame.
	for _, msg := range []string{"pong!", "pong!!", string(big)} {
		if _, err := e.media.WriteToUDPAddrPort([]byte(msg), relayAddr); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"pong!", "pong!!", string(big)} {
		d, ok := c.recvData(5 * time.Second)
		if !ok || d.channel != ch || !bytes.Equal(d.data, []byte(want)) {
			t.Fatalf("client got channel %#x %.10q (ok=%v), want channel %#x %.10q", d.channel, d.data, ok, ch, want)
		}
	}
	want := func(st Stats) bool { return st.ToPeerPackets == 4 && st.FromPeerPackets == 3 }
	eventually(t, time.Second, "4 datagrams counted to the SFU and 3 back", func() bool { return want(e.srv.Stats()) })
}

// TestChannelGoneAfterDeallocate checks that the fast path forgets a channel with its allocation:
// after a Refresh with lifetime 0, ChannelData on the old number reaches nobody and the old relay
// address forwards nothing, and a new allocation on the same connection relays from its own
// address.
func TestChannelGoneAfterDeallocate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c, oldRelay := boundClient(t, e, "con_Dealloc")
	const ch = 0x4000
	c.sendChannel(ch, []byte("before"))
	expectDatagram(t, e.media, "before")

	lifetime0 := stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0, 0}}
	if code := c.code(stun.MethodRefresh, lifetime0); code != 0 {
		t.Fatalf("Refresh(0): %d", code)
	}
	eventually(t, 5*time.Second, "allocation gone", func() bool { return e.srv.Stats().Allocations == 0 })
	c.sendChannel(ch, []byte("stale"))
	_, _ = e.media.WriteToUDPAddrPort([]byte("to the old relay"), oldRelay)

	newRelay := c.mustAllocate()
	if code := c.code(stun.MethodChannelBind, channelAttr(ch), peerAttr(e.mediaAddr())); code != 0 {
		t.Fatalf("ChannelBind on the new allocation: %d", code)
	}
	c.sendChannel(ch, []byte("after"))
	if from := expectDatagram(t, e.media, "after"); from != newRelay || from == oldRelay {
		t.Fatalf("\"after\" came from %s, want the new relayed address %s (old %s)", from, newRelay, oldRelay)
	}
	expectNoDatagram(t, e.media, "ChannelData after its allocation ended")
	if _, err := e.media.WriteToUDPAddrPort([]byte("reply"), newRelay); err != nil {
		t.Fatal(err)
	}
	d, ok := c.recvData(5 * time.Second)
	if !ok || string(d.data) != "reply" {
		t.Fatalf("client got %q (ok=%v), want only \"reply\" (nothing from the old relay)", d.data, ok)
	}
	if got := e.srv.relayByAddrLen(); got != 1 {
		t.Errorf("%d relays indexed by address, want 1", got)
	}
}

func (s *Server) relayByAddrLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.relayByAddr)
}
