package sfu

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/sendq"
)

// stallListener's connections can be made to stop writing, as a TCP peer behind a link that
// carries nothing: Write waits until resumed (or the connection closes).
type stallListener struct {
	net.Listener
	mu      sync.Mutex
	stalled chan struct{} // non-nil while writes wait; closed to resume them
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallConn{Conn: c, l: l, closed: make(chan struct{})}, nil
}

func (l *stallListener) stall() {
	l.mu.Lock()
	l.stalled = make(chan struct{})
	l.mu.Unlock()
}

func (l *stallListener) resume() {
	l.mu.Lock()
	close(l.stalled)
	l.stalled = nil
	l.mu.Unlock()
}

type stallConn struct {
	net.Conn
	l         *stallListener
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *stallConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	wait := c.l.stalled
	c.l.mu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	return c.Conn.Write(p)
}

func (c *stallConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestICETCPSubscriberStallDropsNotQueues has one subscriber over ICE-TCP whose link stops
// carrying anything, and one over UDP. The UDP subscriber keeps receiving; the TCP one's send
// queue drops what grows stale instead of keeping it, Stats count those packets as dropped and
// not as sent, and when the link carries again the TCP subscriber gets current packets.
func TestICETCPSubscriberStallDropsNotQueues(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := &stallListener{Listener: ln}
	s := newTestSFU(t, Config{TCPListener: sl})
	pubB, track, _, udpB, pub, udpSub := setup(t, s)
	_ = pubB

	tcpB := newBrowserWith(t, func(se *webrtc.SettingEngine) {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	})
	if _, err := tcpB.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	tcpSub, ans, err := s.Subscribe(context.Background(), pub, SubscribeRequest{Offer: tcpB.offer(t), StreamID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tcpSub.Close)
	tcpB.answer(t, ans)

	last := stream(t, track)
	eventually(t, "both subscribers receiving", func() bool { return udpB.received() > 10 && tcpB.received() > 10 })
	if st := s.Stats(); st.ICETCP.Sent.Frames == 0 {
		t.Fatalf("the TCP subscriber receives, but nothing went through an ICE-TCP queue: %+v", st.ICETCP)
	}

	sl.stall()
	from := udpB.received()
	eventually(t, "stale packets dropped for the stalled TCP subscriber", func() bool {
		return s.Stats().ICETCP.MediaDropped.Frames > 20
	})
	eventually(t, "the UDP subscriber receiving meanwhile", func() bool { return udpB.received() > from+20 })
	if st := s.Stats(); st.ICETCP.Full.Frames != 0 {
		t.Fatalf("a stall at this rate should age frames out before the byte bound: %+v", st.ICETCP)
	}

	sl.resume()
	seq := uint16(last.Load())
	eventually(t, "the TCP subscriber receiving current packets again", func() bool {
		return tcpB.count(seq+5) > 0
	})
	eventually(t, "sent = forwarded minus dropped", func() bool {
		st := s.Stats()
		return st.PacketsOut == udpSub.Sent()+tcpSub.Sent()-st.ICETCP.MediaDropped.Frames
	})
}

// TestFrameKind: what the ICE-TCP send queue takes each RFC 4571 frame for. A probe's
// padding-only packet must be Padding (only into the room the link has left, never in front of
// audio), not video or audio.
func TestFrameKind(t *testing.T) {
	frame := func(p rtp.Packet) []byte {
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{byte(len(b) >> 8), byte(len(b))}, b...)
	}
	rtcp := []byte{0, 8, 0x81, 201, 0, 1, 0, 0, 0, 1}
	// Chrome's packets carry several header extensions, which the probe's padding keeps.
	withExtensions := func(h rtp.Header) rtp.Header {
		for id := range uint8(4) {
			if err := h.SetExtension(id+1, make([]byte, 8)); err != nil {
				t.Fatal(err)
			}
		}
		return h
	}
	tests := []struct {
		name  string
		frame []byte
		want  sendq.Kind
	}{
		{"stun", []byte{0, 20, 0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42}, sendq.Control},
		{"rtcp", rtcp, sendq.Control},
		{"audio", frame(rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111}, Payload: make([]byte, 120)}), sendq.Audio},
		{"video", frame(rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96}, Payload: make([]byte, 1100)}), sendq.Video},
		{"probe padding", frame(rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Padding: true, PaddingSize: 255}}), sendq.Padding},
		{"probe padding behind extensions", frame(rtp.Packet{Header: withExtensions(rtp.Header{Version: 2, PayloadType: 96, Padding: true, PaddingSize: 255})}), sendq.Padding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := frameKind(tt.frame); got != tt.want {
				t.Fatalf("frameKind = %d, want %d", got, tt.want)
			}
		})
	}
}
