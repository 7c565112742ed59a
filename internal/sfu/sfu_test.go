package sfu

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/poll"
)

func newTestSFU(t *testing.T, cfg Config) *SFU {
	t.Helper()
	cfg.Loopback = true
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// browser is a pion peer standing in for a browser, recording what it gets.
type browser struct {
	pc   *webrtc.PeerConnection
	mu   sync.Mutex
	seqs map[uint16]int // sequence number → times received
	ssrc atomic.Uint32
	rtcp chan rtcp.Packet
	// padding counts the padding-only video packets (probes), which seqs leaves out; lastPad is the
	// latest one's sequence number.
	padding atomic.Int64
	lastPad atomic.Uint32
	// rtx are the sequence numbers received as RTX retransmissions (pion unwraps them).
	rtx map[uint16]int
}

func newBrowser(t *testing.T) *browser { t.Helper(); return newBrowserWith(t, nil) }

// newBrowserWith lets mod change the browser's settings before its PeerConnection is made.
func newBrowserWith(t *testing.T, mod func(*webrtc.SettingEngine)) *browser {
	t.Helper()
	return newBrowserCodecs(t, mod, (*webrtc.MediaEngine).RegisterDefaultCodecs)
}

// newBrowserCodecs also chooses the codecs it offers (pion's defaults offer RTX, as Chrome does).
func newBrowserCodecs(t *testing.T, mod func(*webrtc.SettingEngine), codecs func(*webrtc.MediaEngine) error) *browser {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := codecs(m); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	// The NACK test counts a retransmitted duplicate; a browser would never see one (it asks only for
	// what it lacks), but SRTP replay protection would hide it from the test.
	se.DisableSRTPReplayProtection(true)
	if mod != nil {
		mod(&se)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{pc: pc, seqs: map[uint16]int{}, rtx: map[uint16]int{}, rtcp: make(chan rtcp.Packet, 1024)}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			return
		}
		b.ssrc.Store(uint32(tr.SSRC()))
		for {
			p, attr, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if attr != nil && attr.Get(webrtc.AttributeRtxSsrc) != nil {
				b.mu.Lock()
				b.rtx[p.SequenceNumber]++
				b.mu.Unlock()
			}
			if p.Padding && len(p.Payload) == 0 {
				b.lastPad.Store(uint32(p.SequenceNumber))
				b.padding.Add(1)
				continue
			}
			b.mu.Lock()
			b.seqs[p.SequenceNumber]++
			b.mu.Unlock()
		}
	})
	t.Cleanup(func() { _ = pc.Close() })
	return b
}

func (b *browser) offer(t *testing.T) string {
	t.Helper()
	o, err := b.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-done
	return b.pc.LocalDescription().SDP
}

func (b *browser) answer(t *testing.T, sdp string) {
	t.Helper()
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		t.Fatal(err)
	}
}

func (b *browser) count(seq uint16) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seqs[seq]
}

func (b *browser) received() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.seqs)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, cond)
}

// setup publishes a VP8 track from a fake browser and subscribes another one to it.
func setup(t *testing.T, s *SFU) (pubB *browser, track *webrtc.TrackLocalStaticRTP, sender *webrtc.RTPSender, subB *browser, pub *Publisher, sub *Subscriber) {
	t.Helper()
	pubB = newBrowser(t)
	track, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam")
	tr, err := pubB.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	sender = tr.Sender()
	go pubB.collectRTCP(sender)
	pub, ans, err := s.Publish(context.Background(), PublishRequest{Offer: pubB.offer(t), VideoCodec: CodecVP8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	pubB.answer(t, ans)

	subB = newBrowser(t)
	if _, err := subB.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	sub, ans, err = s.Subscribe(context.Background(), pub, SubscribeRequest{Offer: subB.offer(t), StreamID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	subB.answer(t, ans)
	return
}

// collectRTCP keeps what the SFU sends back to b's sender (PLI, REMB, transport-wide feedback)
// in b.rtcp until the sender closes.
func (b *browser) collectRTCP(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			select {
			case b.rtcp <- p:
			default:
			}
		}
	}
}

func send(track *webrtc.TrackLocalStaticRTP, seq uint16) {
	_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: true}, Payload: []byte{0x10, 1, 2, 3}})
}

// stream sends a packet every 5 ms until the test ends and returns the last sequence number sent.
func stream(t *testing.T, track *webrtc.TrackLocalStaticRTP) *atomic.Uint32 {
	return streamWith(t, track, func(uint16) []byte { return []byte{0x10, 1, 2, 3} })
}

// streamWith is stream with payload(seq) as each packet's payload (a VP8 keyframe start is
// {0x10, 0x00, …}, a delta frame {0x10, 0x01, …}); a nil payload skips seq, as a packet lost on
// the publisher's uplink.
func streamWith(t *testing.T, track *webrtc.TrackLocalStaticRTP, payload func(seq uint16) []byte) *atomic.Uint32 {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	last := new(atomic.Uint32)
	go func() {
		for seq := uint16(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				if p := payload(seq); p != nil {
					_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: true}, Payload: p})
					last.Store(uint32(seq))
				}
			}
		}
	}()
	return last
}

// waitRTCP returns the first RTCP packet the publisher receives that matches.
func waitRTCP(t *testing.T, b *browser, what string, match func(rtcp.Packet) bool) rtcp.Packet {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case p := <-b.rtcp:
			if match(p) {
				return p
			}
		case <-deadline:
			t.Fatalf("publisher never received %s", what)
			return nil
		}
	}
}

func TestKeyframeRequestedWhenSubscriberConnects(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	pubB, track, _, _, _, _ := setup(t, s)
	stream(t, track)
	waitRTCP(t, pubB, "a PLI", func(p rtcp.Packet) bool { _, ok := p.(*rtcp.PictureLossIndication); return ok })
}

func TestREMBCapsPublisher(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0, MaxRecvBandwidth: 600})
	pubB, track, _, _, _, _ := setup(t, s)
	stream(t, track)
	p := waitRTCP(t, pubB, "a REMB", func(p rtcp.Packet) bool { _, ok := p.(*rtcp.ReceiverEstimatedMaximumBitrate); return ok })
	if got := p.(*rtcp.ReceiverEstimatedMaximumBitrate).Bitrate; got != 600_000 {
		t.Fatalf("REMB %v bps, want 600000", got)
	}
}

// TestNACKServedFromSharedBuffer: a subscriber's NACK is answered by the SFU from its buffer; the
// publisher never sees it.
func TestNACKServedFromSharedBuffer(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	pubB, track, _, subB, _, _ := setup(t, s)
	next := uint16(0)
	eventually(t, "the subscriber receiving media", func() bool {
		next++
		send(track, next)
		return subB.received() > 20 && subB.ssrc.Load() != 0
	})
	lost := next - 3 // recent enough to be in the buffer
	before := subB.count(lost)
	nack := &rtcp.TransportLayerNack{MediaSSRC: subB.ssrc.Load(), Nacks: []rtcp.NackPair{{PacketID: lost}}}
	eventually(t, "the retransmission", func() bool {
		_ = subB.pc.WriteRTCP([]rtcp.Packet{nack})
		next++
		send(track, next) // pion hands an RTX packet over with the media stream's next one
		return subB.count(lost) > before
	})
	if st := s.Stats(); st.NACKs == 0 || st.Retransmitted == 0 || st.PacketsIn == 0 || st.PacketsOut == 0 || st.Publishers != 1 || st.Subscribers != 1 {
		t.Fatalf("stats do not show the traffic: %+v", st)
	}
	for {
		select {
		case p := <-pubB.rtcp:
			if _, ok := p.(*rtcp.TransportLayerNack); ok {
				t.Fatal("a subscriber's NACK reached the publisher")
			}
		default:
			return
		}
	}
}

func TestForcedCodec(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	for _, want := range []string{CodecVP8, CodecVP9, CodecH264} {
		t.Run(want, func(t *testing.T) {
			b := newBrowser(t)
			if _, err := b.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
				t.Fatal(err)
			}
			offer := b.offer(t)
			pub, ans, err := s.Publish(context.Background(), PublishRequest{Offer: offer, VideoCodec: want})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			var names []string
			pt := ""
			for _, line := range strings.Split(ans, "\n") {
				if strings.HasPrefix(line, "a=rtpmap:") {
					names = append(names, strings.Fields(line)[1])
					pt = strings.Fields(strings.TrimPrefix(line, "a=rtpmap:"))[0]
				}
			}
			if len(names) != 1 || !strings.HasPrefix(names[0], want+"/") {
				t.Fatalf("answer codecs %v, want only %s", names, want)
			}
			// The answer's payload type names the same codec in the offer: the publisher sends with
			// the offer's numbering (H.264 has several profiles, numbered differently by each browser).
			if f, o := fmtpOf(ans, pt), fmtpOf(offer, pt); !strings.Contains(offer, "a=rtpmap:"+pt+" "+names[0]) ||
				!fmtpCompatible("video/"+want, f, o) {
				t.Fatalf("answer payload type %s is %q, the offer's %s is %q", pt, f, pt, o)
			}
		})
	}
	t.Run("not offered", func(t *testing.T) {
		offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\na=setup:actpass\r\na=rtcp-mux\r\n"
		if _, _, err := s.Publish(context.Background(), PublishRequest{Offer: offer, VideoCodec: CodecH264}); err == nil || !strings.Contains(err.Error(), "H264") {
			t.Fatalf("want a forced-codec error, got %v", err)
		}
	})
	t.Run("garbage SDP", func(t *testing.T) {
		if _, _, err := s.Publish(context.Background(), PublishRequest{Offer: "not sdp"}); err == nil {
			t.Fatal("garbage SDP accepted")
		}
	})
}

// headerSink is a subscriber's write stream that keeps the last header it was given.
type headerSink struct {
	last  rtp.Header
	n     int
	bytes int
}

func (w *headerSink) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.last, w.n, w.bytes = *h, w.n+1, w.bytes+len(payload)
	return len(payload), nil
}

func (w *headerSink) Write(b []byte) (int, error) { return len(b), nil }

// TestForwardingAllocations asserts the steady-state fan-out path, down to the subscriber's write
// stream, allocates nothing of its own, and that each subscriber gets its own SSRC and payload type.
func TestForwardingAllocations(t *testing.T) {
	f := newForwarder(webrtc.RTPCodecTypeVideo, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, slog.New(slog.DiscardHandler))
	var sinks [2]headerSink
	for i := range sinks {
		tr, err := newBoundTrack(f.codec, "video", "s")
		if err != nil {
			t.Fatal(err)
		}
		tr.out.Store(&binding{id: "b", ssrc: uint32(1000 + i), pt: uint8(96 + i), stream: &sinks[i]})
		f.attach(&downTrack{fwd: f, track: tr, cc: &congestion{}, gated: true})
	}
	unbound, _ := newBoundTrack(f.codec, "video", "s") // not negotiated yet: counted as an error, not sent
	f.attach(&downTrack{fwd: f, track: unbound})
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, SSRC: 7, PayloadType: 120}, Payload: make([]byte, 1000)}).Marshal()
	var pkt rtp.Packet
	var loss seqLoss
	allocs := testing.AllocsPerRun(1000, func() {
		if err := pkt.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
		f.forward(&pkt, raw, &loss)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per forwarded packet, want 0", allocs)
	}
	for i, w := range sinks {
		if w.n < 1000 || w.bytes != w.n*1000 || w.last.SSRC != uint32(1000+i) || w.last.PayloadType != uint8(96+i) || w.last.SequenceNumber != 1 {
			t.Fatalf("subscriber %d got %d packets (%d bytes), last header %+v", i, w.n, w.bytes, w.last)
		}
	}
}

// TestSeqLoss: packets missing from an incoming sequence, counted once, across a wrap, not for a
// duplicate, and not for a restarted sequence.
func TestSeqLoss(t *testing.T) {
	for _, tc := range []struct {
		name string
		seqs []uint16
		want uint64
	}{
		{"in order", []uint16{10, 11, 12, 13}, 0},
		{"two missing", []uint16{10, 11, 14, 15}, 2},
		{"missing across the wrap", []uint16{65534, 65535, 1, 2}, 1},
		{"reordered: missing until found, never counted twice", []uint16{10, 12, 11, 13, 15, 14}, 1},
		{"retransmitted packet makes up for a later loss", []uint16{10, 12, 11, 14, 15}, 1},
		{"steady loss", []uint16{1, 3, 5, 7, 9}, 4},
		{"duplicate", []uint16{10, 11, 11, 12}, 0},
		{"late packet from before the first", []uint16{10, 9, 11, 12}, 0},
		{"restarted sequence", []uint16{10, 11, 20000, 20001}, 0},
		{"loss after a restart", []uint16{10, 11, 20000, 20003}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l seqLoss
			var got uint64
			for _, s := range tc.seqs {
				n, _ := l.update(s)
				got += n
			}
			if got != tc.want {
				t.Errorf("lost %d, want %d", got, tc.want)
			}
		})
	}
}

// TestReportLoss: the subscriber's cumulative loss for our stream only, never going back.
func TestReportLoss(t *testing.T) {
	var d downTrack
	d.reportLoss(7, []rtcp.ReceptionReport{{SSRC: 7, TotalLost: 5}, {SSRC: 8, TotalLost: 100}})
	d.reportLoss(7, []rtcp.ReceptionReport{{SSRC: 7, TotalLost: 3}})
	if got := d.lost.Load(); got != 5 {
		t.Fatalf("lost %d, want 5", got)
	}
	d.reportLoss(7, []rtcp.ReceptionReport{{SSRC: 7, TotalLost: 9}})
	if got := d.lost.Load(); got != 9 {
		t.Fatalf("lost %d, want 9", got)
	}
}

// TestPathReported: OnPath hears of the pair ICE selects, the one Path() then reports, for the
// publisher and for the subscription.
func TestPathReported(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	var pubPath, subPath atomic.Pointer[Path]
	pubB := newBrowser(t)
	track, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam")
	if _, err := pubB.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	pub, ans, err := s.Publish(context.Background(), PublishRequest{Offer: pubB.offer(t), VideoCodec: CodecVP8,
		OnPath: func(p Path) { pubPath.Store(&p) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	pubB.answer(t, ans)
	subB := newBrowser(t)
	if _, err := subB.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	sub, ans, err := s.Subscribe(context.Background(), pub, SubscribeRequest{Offer: subB.offer(t), StreamID: "s",
		OnPath: func(p Path) { subPath.Store(&p) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	subB.answer(t, ans)

	for _, c := range []struct {
		name string
		got  *atomic.Pointer[Path]
		path func() Path
	}{{"publisher", &pubPath, pub.Path}, {"subscriber", &subPath, sub.Path}} {
		eventually(t, c.name+" path", func() bool { p := c.got.Load(); return p != nil && *p == c.path() })
		if p := *c.got.Load(); p.Protocol != "udp" || p.LocalType != "host" || p.Remote == "" {
			t.Errorf("%s path %+v", c.name, p)
		}
	}
}

// fmtpOf returns the fmtp parameters of payload type pt in sdp.
func fmtpOf(sdp, pt string) string {
	for _, line := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=fmtp:"+pt+" "); ok {
			return v
		}
	}
	return ""
}

// TestSRTPIsGCMWithChromiumPreferences: a browser that, as DTLS server, would pick AES-CM +
// HMAC-SHA1 first (Chromium does, although it offers GCM) still ends up on AEAD-AES-128-GCM,
// because we answer as DTLS server and choose: about five times cheaper per forwarded packet.
func TestSRTPIsGCMWithChromiumPreferences(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	b := newBrowserWith(t, func(se *webrtc.SettingEngine) {
		se.SetSRTPProtectionProfiles(dtls.SRTP_AES128_CM_HMAC_SHA1_80, dtls.SRTP_AEAD_AES_128_GCM)
	})
	pc := b.pc
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	pub, ans, err := s.Publish(context.Background(), PublishRequest{Offer: b.offer(t), VideoCodec: CodecVP8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	if !strings.Contains(ans, "a=setup:passive") {
		t.Errorf("answer does not take the DTLS server role:\n%s", ans)
	}
	b.answer(t, ans)
	var cipher string
	eventually(t, "SRTP keys negotiated", func() bool {
		for _, st := range pc.GetStats() {
			if ts, ok := st.(webrtc.TransportStats); ok && ts.SRTPCipher != "" {
				cipher = ts.SRTPCipher
				return true
			}
		}
		return false
	})
	if cipher != "SRTP_AEAD_AES_128_GCM" {
		t.Fatalf("SRTP profile %s, want SRTP_AEAD_AES_128_GCM", cipher)
	}
}

// TestSenderReportsToSubscriber: a subscriber gets sender reports for its track, with its own SSRC,
// what it was sent, and an RTP clock that follows the publisher's.
func TestSenderReportsToSubscriber(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	_, track, _, subB, _, _ := setup(t, s)
	reports := make(chan *rtcp.SenderReport, 16)
	go func() {
		rcv := subB.pc.GetReceivers()[0]
		for {
			pkts, _, err := rcv.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok {
					select {
					case reports <- sr:
					default:
					}
				}
			}
		}
	}()
	last := stream(t, track)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case sr := <-reports:
			if sr.PacketCount == 0 || subB.ssrc.Load() == 0 {
				continue // nothing sent yet, or the report overtook the first packet to OnTrack
			}
			if ssrc := subB.ssrc.Load(); sr.SSRC != ssrc {
				t.Fatalf("report for SSRC %d, the subscriber's track is %d", sr.SSRC, ssrc)
			}
			if sr.OctetCount != 4*sr.PacketCount { // send() writes 4-byte payloads
				t.Fatalf("%d octets for %d packets", sr.OctetCount, sr.PacketCount)
			}
			// send() stamps packet n with n*3000; the report's clock may run up to a tick ahead.
			if rt, hi, lo := int64(sr.RTPTime), int64(last.Load())*3000+90000, int64(sr.PacketCount)*3000-90000; rt == 0 || rt > hi || rt < lo {
				t.Fatalf("RTP time %d after %d packets (last sent %d)", sr.RTPTime, sr.PacketCount, last.Load()*3000)
			}
			if d := time.Since(time.Unix(int64(sr.NTPTime>>32)-2208988800, 0)); d < -2*time.Second || d > 2*time.Second {
				t.Fatalf("NTP time %x is %v away from now", sr.NTPTime, d)
			}
			return
		case <-deadline:
			t.Fatal("no sender report reached the subscriber")
		}
	}
}

func TestNTPTime(t *testing.T) {
	if got, want := ntpTime(time.Unix(0, 0)), uint64(2208988800)<<32; got != want {
		t.Fatalf("unix epoch: %x, want %x", got, want)
	}
	if got, want := ntpTime(time.Unix(1, 5e8)), (uint64(2208988801)<<32)|1<<31; got != want {
		t.Fatalf("1.5 s: %x, want %x", got, want)
	}
}

// TestSubscriptionsLeaveNothingBehind: subscriptions that come and go, each after receiving media,
// leave no goroutine and no registry entry behind (with 10 PeerConnections per subscriber in an
// audio room, a leak per subscription would be the server's memory).
func TestSubscriptionsLeaveNothingBehind(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	_, track, _, first, pub, _ := setup(t, s)
	stream(t, track)
	eventually(t, "the first subscriber receiving", func() bool { return first.received() > 5 })
	base := runtime.NumGoroutine()
	for i := range 10 {
		b := newBrowser(t)
		if _, err := b.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
		sub, ans, err := s.Subscribe(context.Background(), pub, SubscribeRequest{Offer: b.offer(t), StreamID: "s"})
		if err != nil {
			t.Fatal(err)
		}
		b.answer(t, ans)
		eventually(t, fmt.Sprintf("subscriber %d receiving", i), func() bool { return b.received() > 5 })
		sub.Close()
		_ = b.pc.Close()
	}
	if st := s.Stats(); st.Subscribers != 1 {
		t.Fatalf("%d subscribers registered after the others left, want 1", st.Subscribers)
	}
	// pion ends a closed PeerConnection's goroutines asynchronously; a few stragglers are allowed,
	// ten subscriptions' worth (≈ 14 each on our side alone) are not.
	eventually(t, "goroutines back to where they were", func() bool { return runtime.NumGoroutine() <= base+5 })
}
