package turn

import (
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// stallReader is a client connection whose reads wait while stalled: a TURN client on a link that
// has stopped carrying anything. The server's writes then fill the kernel's buffers and block.
type stallReader struct {
	net.Conn
	mu      sync.Mutex
	stalled chan struct{} // non-nil while stalled; closed to resume
}

func (c *stallReader) Read(p []byte) (int, error) {
	c.mu.Lock()
	wait := c.stalled
	c.mu.Unlock()
	if wait != nil {
		<-wait
	}
	return c.Conn.Read(p)
}

func (c *stallReader) stall() {
	c.mu.Lock()
	c.stalled = make(chan struct{})
	c.mu.Unlock()
}

func (c *stallReader) resume() {
	c.mu.Lock()
	close(c.stalled)
	c.stalled = nil
	c.mu.Unlock()
}

func (c *stallReader) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	if c.stalled != nil {
		close(c.stalled)
		c.stalled = nil
	}
	c.mu.Unlock()
	return err
}

// seqDatagram is a relayed datagram numbered seq, filled so that a cut or mixed frame shows.
func seqDatagram(seq uint32) []byte {
	b := make([]byte, 1000)
	for i := range b {
		b[i] = byte(seq) ^ byte(i)
	}
	binary.BigEndian.PutUint32(b, seq)
	return b
}

func checkDatagram(t *testing.T, b []byte) uint32 {
	t.Helper()
	if len(b) != 1000 {
		t.Fatalf("datagram of %d bytes, want 1000", len(b))
	}
	seq := binary.BigEndian.Uint32(b)
	for i := 4; i < len(b); i++ {
		if b[i] != byte(seq)^byte(i) {
			t.Fatalf("datagram %d corrupt at byte %d", seq, i)
		}
	}
	return seq
}

// TestStalledTCPClientDropsInsteadOfBlocking has two TURN/TCP clients with a channel to the SFU.
// One stops reading. The SFU keeps sending to both: the other client gets every datagram, the
// stalled client's relay keeps reading from the SFU (its queue drops whole frames, counted), and
// when it reads again it gets whole frames in order up to the newest.
func TestStalledTCPClientDropsInsteadOfBlocking(t *testing.T) {
	t.Parallel()
	// Only the byte bound drops here: with the age limit, a datagram to the reading client could
	// go stale while a loaded machine leaves the writer unscheduled (sendq's own tests cover it).
	e := newEnv(t, func(c *Config) { c.clientQueue.MaxAge = time.Hour })
	conn := e.dial(t)
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10) // the kernel holds little for a client that stalls
	sr := &stallReader{Conn: conn}
	user, pass := e.srv.Credentials("con_Stalled")
	a := rawClientOn(t, sr, user, pass)
	relayA := a.mustAllocate()
	const ch = 0x4000
	if code := a.code(stun.MethodChannelBind, channelAttr(ch), peerAttr(e.mediaAddr())); code != 0 {
		t.Fatalf("ChannelBind: %d", code)
	}
	b, relayB := boundClient(t, e, "con_Reading")
	from := e.srv.Stats().FromPeerPackets

	sr.stall()
	const n = 3000 // 3 MB to the stalled client: far more than the kernel and the queue hold
	for seq := range uint32(n) {
		p := seqDatagram(seq)
		if _, err := e.media.WriteToUDPAddrPort(p, relayA); err != nil {
			t.Fatal(err)
		}
		if _, err := e.media.WriteToUDPAddrPort(p, relayB); err != nil {
			t.Fatal(err)
		}
		d, ok := b.recvData(5 * time.Second)
		if !ok {
			t.Fatalf("the reading client stopped getting datagrams at %d", seq)
		}
		if got := checkDatagram(t, d.data); got != seq {
			t.Fatalf("the reading client got %d, want %d", got, seq)
		}
	}
	// The stalled client's relay loop went on reading from the SFU (a blocking write would have
	// stopped it once the kernel's buffers were full): what was read and not relayed was dropped
	// and counted. (UDP on loopback may lose a datagram or two, hence the margin.)
	eventually(t, 5*time.Second, "the stalled client's relay reading on", func() bool {
		st := e.srv.Stats()
		return st.FromPeerPackets+st.ClientQueue.MediaDropped.Frames-from >= 2*n*95/100
	})
	if st := e.srv.Stats(); st.ClientQueue.MediaDropped.Frames < n/2 {
		t.Fatalf("drops: %+v", st.ClientQueue)
	}

	// The stalled client reads again: whole frames in order, then the newest, a marker sent
	// after the stall (a few, to spare the test UDP's own losses).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint32(n); ; seq++ {
			_, _ = e.media.WriteToUDPAddrPort(seqDatagram(seq), relayA)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	sr.resume()
	var old int
	for last := -1; ; {
		d, ok := a.recvData(10 * time.Second)
		if !ok {
			t.Fatalf("the stalled client got nothing new after it read again (last %d)", last)
		}
		seq := int(checkDatagram(t, d.data))
		if d.channel != ch || seq <= last {
			t.Fatalf("channel %#x datagram %d after %d", d.channel, seq, last)
		}
		last = seq
		if seq >= n {
			break
		}
		old++
	}
	if old >= n/2 {
		t.Fatalf("the stalled client got %d of %d old datagrams: a backlog, not recent media", old, n)
	}
}
