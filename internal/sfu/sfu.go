// Package sfu is Parley's selective forwarding unit on pion/webrtc: one PeerConnection per published
// stream and one per subscription (OpenVidu 2's client model), all sharing one UDP port, with RTP
// forwarded from each publisher to its subscribers without transcoding.
//
// It owns PeerConnections, the media socket and the forwarding path. It knows nothing of sessions,
// tokens or JSON-RPC, and must not import any other Parley package: it reports upward only through
// the funcs its callers pass in.
package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/logging"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/pionlog"
	"github.com/parley/parley/internal/sendq"
)

// Config is what the SFU needs from the configuration.
type Config struct {
	// Port is the one UDP port shared by every PeerConnection.
	Port int
	// ListenIPs are the addresses the port is bound on, each one or New fails. Empty means every
	// usable address of the host (mediaaddr.Select), followed as addresses come and go.
	ListenIPs []netip.Addr
	// AnnounceIPs are written into our candidates (1:1 NAT): instead of the interface addresses when
	// AnnounceReplace, else in addition to them. Empty means the interface addresses only.
	AnnounceIPs     []netip.Addr
	AnnounceReplace bool
	// Loopback binds the port on loopback too and announces it (dev mode: everything is local).
	Loopback bool
	// MaxRecvBandwidth caps each publisher's video, in kbps (0 = no cap), through REMB;
	// MinRecvBandwidth is the floor of that REMB when subscribers' caps lower it (see
	// PublishRequest). A publisher's own request overrides either.
	MaxRecvBandwidth int
	MinRecvBandwidth int
	// MaxSendBandwidth caps the video each subscription is sent, in kbps (0 = no cap): the simulcast
	// layer chosen for it, or, without simulcast, the publisher's REMB (OpenVidu's meaning). A
	// subscription's own request overrides it.
	MaxSendBandwidth int
	// TCPListener, when set, carries ICE-TCP (RFC 4571 framing, passive candidates): the edge hands
	// over the connections of the shared TCP port that start with framed STUN. Its Addr must be
	// the real bound address, whose port our TCP candidates announce.
	TCPListener net.Listener
	// SendQueue, when set, returns the send queue toward the TURN/TCP or TURN/TLS client whose
	// relayed address is remote, nil for any other address: a subscription relayed that way
	// reads its queue's delay and drops as ICE-TCP's (congestion.go).
	SendQueue func(remote netip.AddrPort) *sendq.Conn
}

// SFU owns the media socket and creates PeerConnections on it.
type SFU struct {
	cfg    Config
	log    *slog.Logger
	udpMux *udpMuxSet
	tcpMux *ice.TCPMuxDefault
	tcpQ   sendq.Counters // totals of the ICE-TCP send queues (icetcp.go)
	// tcpConns are the ICE-TCP connections by remote address (icetcp.go).
	tcpConns sync.Map
	pubAPI   *webrtc.API
	subAPI   *webrtc.API
	relayAPI *webrtc.API     // inter-node links (relay.go)
	nacks    *nackGenFactory // the NACK generators of publishers and inter-node links
	reg      registry
	// net is the one interface table every ICE agent reads. Without it each PeerConnection lists
	// the host's interfaces over netlink when it is created and keeps its own copy (≈ 7 KB each,
	// and a netlink dump on every join); with our media on fixed muxes the table cannot matter
	// after start-up anyway.
	net *stdnet.Net

	stopWatch context.CancelFunc    // ends watchAddrs; nil with PARLEY_MEDIA_LISTEN_IPS
	skipped   map[netip.Addr]string // owned by syncAddrs: addresses not bound, and why
	wg        sync.WaitGroup        // watchAddrs

	srNext    atomic.Uint32 // spreads subscribers over the sender-report slices
	done      chan struct{} // closed by Close: stops the sender reports
	closeOnce sync.Once
}

// gatherTimeout bounds the wait for our own candidates. With a UDP mux they are known locally and
// gathering finishes in microseconds; the bound only protects the signaling reply (SDK timeout 10 s).
const gatherTimeout = 2 * time.Second

// New binds the media port and prepares the WebRTC stacks.
func New(cfg Config, log *slog.Logger) (*SFU, error) {
	s := &SFU{cfg: cfg, log: log, udpMux: newUDPMuxSet(cfg.Port, pionLogger(log).NewLogger("udpmux")),
		skipped: map[netip.Addr]string{}, done: make(chan struct{})}
	err := s.bindMedia()
	if err != nil {
		_ = s.udpMux.Close()
		return nil, err
	}
	mux := s.udpMux
	if s.net, err = stdnet.NewNet(); err != nil {
		_ = mux.Close()
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	if cfg.TCPListener != nil {
		s.tcpMux = ice.NewTCPMuxDefault(ice.TCPMuxParams{
			// Writes go to a send queue per connection (icetcp.go), which never blocks and drops
			// whole packets older than a few hundred ms: a subscriber on a slow TCP path loses
			// packets instead of falling seconds behind or blocking the publisher's fan-out. So
			// pion gets no write buffer of its own (0), which would hold megabytes.
			Listener:       queuedListener{cfg.TCPListener, &s.tcpQ, &s.tcpConns},
			Logger:         pionLogger(log).NewLogger("tcpmux"),
			ReadBufferSize: 64,
		})
	}
	s.nacks = &nackGenFactory{log: log}
	if s.pubAPI, err = s.newAPI(apiPublisher); err == nil {
		if s.subAPI, err = s.newAPI(apiSubscriber); err == nil {
			s.relayAPI, err = s.newAPI(apiRelay)
		}
	}
	if err != nil {
		_ = mux.Close()
		return nil, err
	}
	go s.runSenderReports()
	if len(cfg.ListenIPs) == 0 { // addresses the operator listed are fixed; the others follow the host
		ctx, cancel := context.WithCancel(context.Background())
		s.stopWatch = cancel
		s.wg.Add(1)
		go s.watchAddrs(ctx)
	}
	return s, nil
}

// LocalAddrs lists the addresses the media port is bound on.
func (s *SFU) LocalAddrs() []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range s.udpMux.GetListenAddresses() {
		if ua, ok := a.(*net.UDPAddr); ok {
			out = append(out, ua.AddrPort())
		}
	}
	return out
}

// Close releases the media ports. PeerConnections must be closed first by their owners.
func (s *SFU) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	if s.stopWatch != nil {
		s.stopWatch()
	}
	s.wg.Wait()
	if s.tcpMux != nil {
		_ = s.tcpMux.Close()
	}
	return s.udpMux.Close()
}

// apiRole says which PeerConnections a pion stack is for.
type apiRole int

const (
	apiPublisher apiRole = iota
	apiSubscriber
	apiRelay
)

// newAPI builds the pion stack for one role. Publishers get a NACK generator and receiver
// reports; subscribers get no interceptor: their NACKs are answered from the publisher's shared
// retransmission buffer (forwarder.ring), not from a copy per subscriber, and their sender reports
// come from runSenderReports. An inter-node link carries both: it receives like a publisher
// (without transport-wide feedback or simulcast) and sends like a subscriber (without RTX).
func (s *SFU) newAPI(role apiRole) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		return nil, err
	}
	if role == apiSubscriber {
		if err := registerRTX(m); err != nil {
			return nil, err
		}
		// Transport-wide congestion control feedback for video: a simulcast video's packets
		// carry the extension, and the subscriber's feedback gives its layer choice a delay
		// signal (delayfeedback.go). Browsers then send transport-cc feedback instead of REMB,
		// which we do not read; packets without the extension (audio, video without simulcast)
		// are simply not in the feedback.
		m.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, webrtc.RTPCodecTypeVideo)
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	reg := &interceptor.Registry{}
	if role == apiRelay {
		if err := addReceiving(reg, s.nacks); err != nil {
			return nil, err
		}
	}
	if role == apiPublisher {
		// mid and rid header extensions: how the layers of a simulcast video are told apart
		// (RFC 8852); without them pion cannot match the layers' SSRCs to the offer's rids.
		if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
			return nil, err
		}
		if err := addReceiving(reg, s.nacks); err != nil {
			return nil, err
		}
		// Transport-wide congestion control feedback (video): Chrome's send-side estimator then
		// follows the publisher's real uplink instead of only loss, up to our REMB cap.
		m.RegisterFeedback(webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, webrtc.RTPCodecTypeVideo)
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
		tw, err := twcc.NewSenderInterceptor()
		if err != nil {
			return nil, err
		}
		reg.Add(tw)
	}

	se := webrtc.SettingEngine{LoggerFactory: pionLogger(s.log)}
	se.SetNet(s.net)
	se.SetICEUDPMux(s.udpMux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if s.tcpMux != nil {
		se.SetICETCPMux(s.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	se.SetIncludeLoopbackCandidate(s.cfg.Loopback)
	// Browsers hide their host addresses behind mDNS names; we learn their real address from their
	// connectivity checks (peer-reflexive) instead of sending multicast queries.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// As the controlling agent (a subscription: we offer) pion nominates a pair whose remote
	// candidate is peer-reflexive only 1 s after checks begin, and a relay 2 s after: the floors
	// of every join behind a firewall, since a browser's ICE-TCP candidate is always learnt from
	// its checks (firewall bed: 1.2-1.4 s over ICE-TCP, 2.2-2.3 s over TURN, against 0.45 s over
	// UDP). Peer-reflexive pairs are the browser's real addresses, so no wait; a relay still
	// waits half a second, or Chromium's subscriptions took a TURN relay whose check happened to
	// succeed before ICE-TCP's (pion does not renominate).
	se.SetPrflxAcceptanceMinWait(0)
	se.SetRelayAcceptanceMinWait(500 * time.Millisecond)
	// AEAD-GCM first: about five times cheaper per packet than AES-CM + HMAC-SHA1 (perf-anchors).
	// The DTLS server picks the profile, and Chromium as server prefers HMAC-SHA1 although it
	// offers GCM as client: so we answer setup:passive and pick ourselves (measured with
	// Chromium 156: SRTP_AES128_CM_HMAC_SHA1_80 as DTLS client, SRTP_AEAD_AES_128_GCM as server).
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		return nil, err
	}
	// No HelloVerifyRequest round trip: DTLS only reaches us from an address ICE has already
	// checked with the peer's credentials, which is what the cookie would prove.
	se.SetDTLSInsecureSkipHelloVerify(true)
	// As DTLS server our first flight can reach Chromium before it reads DTLS; pion's default
	// one-second retransmission then showed as ~1 s tails in time to first frame (bench/ttff.sh
	// p95 0.3–2.6 s); libwebrtc starts at 50 ms for the same reason.
	se.SetDTLSRetransmissionInterval(100 * time.Millisecond)
	if len(s.cfg.AnnounceIPs) > 0 {
		ext := make([]string, len(s.cfg.AnnounceIPs))
		for i, a := range s.cfg.AnnounceIPs {
			ext[i] = a.String()
		}
		mode := webrtc.ICEAddressRewriteAppend
		if s.cfg.AnnounceReplace {
			mode = webrtc.ICEAddressRewriteReplace
		}
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: ext, AsCandidateType: webrtc.ICECandidateTypeHost, Mode: mode,
		}); err != nil {
			return nil, err
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// Candidate is a remote ICE candidate as the browser sends it (RTCIceCandidateInit).
type Candidate struct {
	Candidate     string
	SDPMid        *string
	SDPMLineIndex *uint16
}

// addCandidate applies a browser candidate; an empty one marks the end of candidates and is ignored.
func addCandidate(pc *webrtc.PeerConnection, c Candidate) error {
	if strings.TrimSpace(c.Candidate) == "" {
		return nil
	}
	return pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex})
}

// ErrSDP marks a description the SFU cannot use (malformed, no usable media, codec not offered).
var ErrSDP = errors.New("unusable session description")

// answer applies a remote offer and returns our complete answer, candidates included, so the client
// needs no trickle from us.
func answer(ctx context.Context, pc *webrtc.PeerConnection) (string, error) {
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrSDP, err)
	}
	if err := setLocal(ctx, pc, ans); err != nil {
		return "", err
	}
	return pc.LocalDescription().SDP, nil
}

// setLocal makes desc pc's local description and waits for its candidates (gatherTimeout at
// most), so the description we send carries them and the other end needs no trickle from us.
func setLocal(ctx context.Context, pc *webrtc.PeerConnection, desc webrtc.SessionDescription) error {
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return fmt.Errorf("%w: %v", ErrSDP, err)
	}
	t := time.NewTimer(gatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// pionLogger routes pion's logs to slog. The media stacks warn about what clients do (a dropped
// candidate, a late packet): debug for us; their errors show as warnings, a connection's normal end
// excepted (pionlog.Teardown).
func pionLogger(log *slog.Logger) logging.LoggerFactory {
	return pionlog.Factory{Log: log, Levels: pionlog.Levels{
		Trace: pionlog.LevelTrace, Debug: slog.LevelDebug, Info: slog.LevelDebug, Warn: slog.LevelDebug, Error: slog.LevelWarn}}
}

// addReceiving adds what a receiving end needs to reg: NACKs for lost packets and receiver
// reports (publishers' PeerConnections and the receiving side of inter-node links).
func addReceiving(reg *interceptor.Registry, nacks *nackGenFactory) error {
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return err
	}
	reg.Add(nacks) // not pion's generator: see nackgen.go
	reg.Add(rr)
	return nil
}
