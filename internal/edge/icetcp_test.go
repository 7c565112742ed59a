package edge

import (
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/pires/go-proxyproto"
)

// TestICETCPWithPion runs a real pion PeerConnection pair over the edge: the answerer (as the
// SFU will) gathers only TCP candidates from a TCPMux on the edge's ICE-TCP listener, and the
// offerer connects to its passive candidate with active ICE-TCP through the shared port. A data
// channel message that goes there and back shows the framed STUN was replayed to the mux and
// that media-path bytes flow both ways.
func TestICETCPWithPion(t *testing.T) {
	t.Parallel()
	e := startEdge(t, Config{}, false)
	iceTCPWithPion(t, e, nil)
}

// TestICETCPBehindBalancer is TestICETCPWithPion through an L4 balancer that sends the PROXY
// protocol: the offerer's connection reaches the edge from the balancer's address, and the
// answerer's ICE agent sees the offerer's own address as its remote candidate.
func TestICETCPBehindBalancer(t *testing.T) {
	t.Parallel()
	e := startEdge(t, Config{ProxyProtocolFrom: fromBalancer}, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	clients := make(chan string, 8)
	go func() { // the balancer: one connection to the edge per client, header first, then both ways
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			clients <- c.RemoteAddr().String()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: balancer.AsSlice()}}
			up, err := d.Dial("tcp", e.addr)
			if err != nil {
				_ = c.Close()
				continue
			}
			hdr := proxyproto.HeaderProxyFromAddrs(2, c.RemoteAddr(), c.LocalAddr())
			if _, err := hdr.WriteTo(up); err != nil {
				_ = c.Close()
				_ = up.Close()
				continue
			}
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	pair := iceTCPWithPion(t, e, func(sdp string) string {
		// The answer's passive candidate names the edge; browsers would reach it at the balancer.
		return strings.ReplaceAll(sdp, " "+portOf(e.addr)+" typ host tcptype passive", " "+portOf(ln.Addr().String())+" typ host tcptype passive")
	})
	var seen []string
	for len(clients) > 0 {
		seen = append(seen, <-clients)
	}
	remote := net.JoinHostPort(pair.Remote.Address, strconv.Itoa(int(pair.Remote.Port)))
	if !slices.Contains(seen, remote) {
		t.Errorf("the answerer's remote candidate is %s, want the offerer's own address (one of %v), not the balancer's", remote, seen)
	}
}

// iceTCPWithPion connects a pion pair over ICE-TCP through e (the answer's SDP rewritten by
// rewrite, if given, before the offerer reads it) and returns the answerer's selected pair.
func iceTCPWithPion(t *testing.T, e *testEdge, rewrite func(string) string) *webrtc.ICECandidatePair {
	t.Helper()

	mux := ice.NewTCPMuxDefault(ice.TCPMuxParams{Listener: e.ICETCPListener(), ReadBufferSize: 8})
	t.Cleanup(func() { _ = mux.Close() })

	tcpOnly := func(m ice.TCPMux) *webrtc.API {
		var se webrtc.SettingEngine
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
		se.SetIncludeLoopbackCandidate(true) // the edge listens on 127.0.0.1
		if m != nil {
			se.SetICETCPMux(m)
		}
		return webrtc.NewAPI(webrtc.WithSettingEngine(se))
	}
	answerer, err := tcpOnly(mux).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = answerer.Close() })
	offerer, err := tcpOnly(nil).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = offerer.Close() })

	// The answerer echoes every message back.
	answerer.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) { _ = dc.Send(m.Data) })
	})
	dc, err := offerer.CreateDataChannel("probe", nil)
	if err != nil {
		t.Fatal(err)
	}
	echoed := make(chan string, 1)
	dc.OnOpen(func() { _ = dc.SendText("ping over ice-tcp") })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case echoed <- string(m.Data):
		default:
		}
	})

	signal := func(from, to *webrtc.PeerConnection, sdp webrtc.SessionDescription) webrtc.SessionDescription {
		t.Helper()
		done := webrtc.GatheringCompletePromise(from)
		if err := from.SetLocalDescription(sdp); err != nil {
			t.Fatal(err)
		}
		<-done
		desc := *from.LocalDescription()
		if rewrite != nil && from == answerer {
			desc.SDP = rewrite(desc.SDP)
		}
		if err := to.SetRemoteDescription(desc); err != nil {
			t.Fatal(err)
		}
		return *from.LocalDescription()
	}
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	signal(offerer, answerer, offer)
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	sdp := signal(answerer, offerer, answer)
	t.Logf("answer candidates:\n%s", candidateLines(sdp.SDP))

	select {
	case got := <-echoed:
		if got != "ping over ice-tcp" {
			t.Fatalf("echo %q", got)
		}
	case <-time.After(testTimeout):
		t.Fatalf("no echo over ICE-TCP; answerer ICE state %s, edge stats %+v",
			answerer.ICEConnectionState(), e.Stats())
	}

	pair, err := answerer.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("selected pair: %v, %v", pair, err)
	}
	if pair.Local.Protocol != webrtc.ICEProtocolTCP || pair.Local.TCPType != "passive" ||
		pair.Local.Port != uint16(mustAtoi(t, portOf(e.addr))) {
		t.Errorf("answerer's local candidate %s, want tcp passive on the edge port %s", pair.Local, portOf(e.addr))
	}
	if s := e.Stats(); s.ICETCP == 0 {
		t.Errorf("edge handed no connection to the ICE-TCP listener: %+v", s)
	}
	return pair
}

func candidateLines(sdp string) string {
	var out []string
	for _, l := range strings.Split(sdp, "\r\n") {
		if strings.HasPrefix(l, "a=candidate") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
