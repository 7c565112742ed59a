package turn

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

const benchPayload = 1200 // a typical video RTP packet

// BenchmarkRelayConn measures the allow-list wrapper alone on real sockets: one datagram to the
// media address and one back per iteration.
func BenchmarkRelayConn(b *testing.B) {
	e := newEnv(b, nil)
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(relayIP, 0)))
	if err != nil {
		b.Fatal(err)
	}
	rc := newRelayConn(pc, e.srv.policy, e.srv, &connState{relays: map[*relayConn]struct{}{}})
	defer rc.Close()
	relayAddr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	media := net.UDPAddrFromAddrPort(e.mediaAddr())
	payload := make([]byte, benchPayload)
	buf := make([]byte, 1600)

	b.ReportAllocs()
	b.SetBytes(2 * benchPayload)
	start := time.Now()
	for b.Loop() {
		if _, err := rc.WriteTo(payload, media); err != nil {
			b.Fatal(err)
		}
		if _, _, err := e.media.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := e.media.WriteToUDPAddrPort(payload, relayAddr); err != nil {
			b.Fatal(err)
		}
		if _, _, err := rc.ReadFrom(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(2*b.N), "µs/datagram")
}

// benchClient writes pre-built ChannelData frames on a TURN/TCP connection with a channel bound
// to the media address, so the client side allocates nothing per datagram. (The raw client's
// reader still owns the read side; nothing comes back in the to_sfu case.)
type benchClient struct {
	conn  net.Conn
	frame []byte
}

const benchChannel = 0x4000

func newBenchClient(b *testing.B, e *testEnv) *benchClient {
	b.Helper()
	user, pass := e.srv.Credentials("con_Bench")
	rc := dialRaw(b, e, user, pass)
	rc.mustAllocate()
	if code := rc.code(stun.MethodChannelBind, channelAttr(benchChannel), peerAttr(e.mediaAddr())); code != 0 {
		b.Fatalf("ChannelBind: %d", code)
	}
	frame := make([]byte, 4+benchPayload) // 1200 is a multiple of 4: no padding
	binary.BigEndian.PutUint16(frame[0:2], benchChannel)
	binary.BigEndian.PutUint16(frame[2:4], benchPayload)
	return &benchClient{conn: rc.conn, frame: frame}
}

// BenchmarkRelayTCP measures the whole relay path over TURN/TCP with ChannelData, as a browser
// behind a UDP-blocking firewall uses it: client ⇄ pion TURN ⇄ relay wrapper ⇄ SFU socket.
// roundtrip is latency (one datagram in flight). to_sfu and from_sfu are unpaced floods: the
// sender outruns the receiving UDP socket on small machines, so pps is the capacity actually
// delivered under overload and %loss is how much the overload cost, not loss at a normal rate.
// allocs/op counts the whole process (pion's per-datagram allocations, the test client's).
func BenchmarkRelayTCP(b *testing.B) {
	b.Run("roundtrip", func(b *testing.B) {
		e := newEnv(b, nil)
		user, pass := e.srv.Credentials("con_Bench")
		rc := dialRaw(b, e, user, pass)
		rc.mustAllocate()
		if code := rc.code(stun.MethodChannelBind, channelAttr(benchChannel), peerAttr(e.mediaAddr())); code != 0 {
			b.Fatalf("ChannelBind: %d", code)
		}
		stop := echo(b, e.media)
		defer stop()
		payload := make([]byte, benchPayload)
		b.ReportAllocs()
		b.SetBytes(2 * benchPayload)
		start := time.Now()
		for b.Loop() {
			rc.sendChannel(benchChannel, payload)
			if _, ok := rc.recvData(5 * time.Second); !ok {
				b.Fatal("echo lost")
			}
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/roundtrip")
	})

	b.Run("to_sfu", func(b *testing.B) {
		e := newEnv(b, nil)
		c := newBenchClient(b, e)
		var got atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 1600)
			for {
				if _, _, err := e.media.ReadFromUDPAddrPort(buf); err != nil {
					return
				}
				got.Add(1)
			}
		}()
		b.ReportAllocs()
		b.SetBytes(benchPayload)
		start := time.Now()
		for b.Loop() {
			if _, err := c.conn.Write(c.frame); err != nil {
				b.Fatal(err)
			}
		}
		// TCP is lossless up to the relay; what is missing after the stream drains was lost on
		// the relay's UDP leg (socket buffers), which is what %loss reports.
		waitDrain(&got, int64(b.N))
		elapsed := time.Since(start)
		_ = e.media.SetReadDeadline(time.Now())
		<-done
		report(b, elapsed, got.Load())
	})

	b.Run("from_sfu", func(b *testing.B) {
		e := newEnv(b, nil)
		user, pass := e.srv.Credentials("con_Bench")
		rc := dialRaw(b, e, user, pass)
		relay := rc.mustAllocate()
		if code := rc.code(stun.MethodChannelBind, channelAttr(benchChannel), peerAttr(e.mediaAddr())); code != 0 {
			b.Fatalf("ChannelBind: %d", code)
		}
		var got atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-rc.data:
					got.Add(1)
				case <-rc.readEnd:
					return
				}
			}
		}()
		payload := make([]byte, benchPayload)
		b.ReportAllocs()
		b.SetBytes(benchPayload)
		start := time.Now()
		for b.Loop() {
			if _, err := e.media.WriteToUDPAddrPort(payload, relay); err != nil {
				b.Fatal(err)
			}
		}
		waitDrain(&got, int64(b.N))
		elapsed := time.Since(start)
		_ = rc.conn.Close()
		<-done
		report(b, elapsed, got.Load())
	})
}

// echo sends every datagram on pc back to its sender until stopped.
func echo(b *testing.B, pc *net.UDPConn) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1600)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if _, err := pc.WriteToUDPAddrPort(buf[:n], from); err != nil {
				return
			}
		}
	}()
	return func() { _ = pc.SetReadDeadline(time.Now()); <-done }
}

// waitDrain polls until want datagrams arrived or the count stops moving for 200ms.
func waitDrain(got *atomic.Int64, want int64) {
	last, since := got.Load(), time.Now()
	for got.Load() < want && time.Since(since) < 200*time.Millisecond {
		time.Sleep(time.Millisecond) // poll interval
		if n := got.Load(); n != last {
			last, since = n, time.Now()
		}
	}
}

func report(b *testing.B, elapsed time.Duration, got int64) {
	b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N), "µs/datagram")
	b.ReportMetric(float64(got)/elapsed.Seconds(), "pps")
	b.ReportMetric(100*float64(int64(b.N)-got)/float64(b.N), "%loss")
}
