package sfu

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// simulcastBrowser is a pion peer that publishes one VP8 video in three rid layers, as the stock
// client does in mediasoup mode.
func simulcastBrowser(t *testing.T) (*webrtc.PeerConnection, *webrtc.RTPSender, []*webrtc.TrackLocalStaticRTP) {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	var tracks []*webrtc.TrackLocalStaticRTP
	var tr *webrtc.RTPTransceiver
	for _, rid := range []string{"rdiv4", "rdiv2", "rdiv1"} {
		track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam", webrtc.WithRTPStreamID(rid))
		if err != nil {
			t.Fatal(err)
		}
		if tr == nil {
			tr, err = pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		} else {
			err = tr.Sender().AddEncoding(track)
		}
		if err != nil {
			t.Fatal(err)
		}
		tracks = append(tracks, track)
	}
	go func() { // drain the publisher's RTCP so its interceptors keep running
		for {
			if _, _, err := tr.Sender().ReadRTCP(); err != nil {
				return
			}
		}
	}()
	return pc, tr.Sender(), tracks
}

// extensionIDs returns the negotiated ids of the mid and rid header extensions: pion, unlike a
// browser, leaves writing them to the application.
func extensionIDs(snd *webrtc.RTPSender) (mid, rid uint8) {
	for _, e := range snd.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			mid = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			rid = uint8(e.ID)
		}
	}
	return mid, rid
}

// decoded is what a subscriber's browser receives, checked as its jitter buffer would.
type decoded struct {
	mu   sync.Mutex
	got  []received
	pads []uint16 // padding-only packets (a layer probe's)
}

func (d *decoded) add(p *rtp.Packet) {
	if len(p.Payload) == 0 && p.Padding {
		d.mu.Lock()
		d.pads = append(d.pads, p.SequenceNumber)
		d.mu.Unlock()
		return
	}
	pic, ok := parsePicture(codecVP8, p.Payload)
	if !ok || pic.tl0At == 0 {
		return
	}
	d.mu.Lock()
	d.got = append(d.got, received{seq: p.SequenceNumber, ts: p.Timestamp, ssrc: 4242, pid: pic.pictureID(p.Payload),
		tl0: p.Payload[pic.tl0At], layer: p.Payload[len(p.Payload)-1], key: isKeyframeStart(codecVP8, p.Payload)})
	d.mu.Unlock()
}

// tapFunc adapts a func to Tap.
type tapFunc func(*rtp.Packet)

func (f tapFunc) WriteRTP(p *rtp.Packet) { f(p) }

func (d *decoded) layers() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return layersOf(d.got)
}

// TestSimulcastThroughPion: a publisher sends three rid layers over real PeerConnections, a
// subscriber negotiated from our offer (OpenVidu's mediasoup mode) starts on the lowest layer,
// probes its way to the top, is moved down to the lowest layer and back up, and receives one continuous stream: no sequence, timestamp or picture ID
// jumps, and each layer starting at its keyframe.
func TestSimulcastThroughPion(t *testing.T) {
	subB := newBrowser(t)
	var dec decoded
	subB.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			dec.add(p)
		}
	})
	pub, _, video := simulcastSession(t, subB.pc)
	// A recording's tap takes the best layer sent, whatever the subscriber is switched to.
	var rec decoded
	remove := pub.AddTap("video", tapFunc(rec.add))
	if remove == nil {
		t.Fatal("no video to tap")
	}
	defer remove()
	// A new subscriber starts on the lowest layer, which any link carries, and probes its way up
	// (no probe can start before a second of the layers' rates is measured).
	if l := video.sc.fitMax.Load(); l != 0 {
		t.Fatalf("a new subscriber may have layer %d, want the lowest", l)
	}
	eventually(t, "the top layer", func() bool { l := dec.layers(); return len(l) > 0 && l[len(l)-1] == 2 })
	video.sc.probeBps.Store(20000)
	eventually(t, "padding", func() bool { dec.mu.Lock(); defer dec.mu.Unlock(); return len(dec.pads) > 10 })
	video.sc.probeBps.Store(0)
	video.setMaxLayer(0)
	eventually(t, "the lowest layer", func() bool { l := dec.layers(); return l[len(l)-1] == 0 })
	video.setMaxLayer(2)
	eventually(t, "the top layer again", func() bool { l := dec.layers(); return l[len(l)-1] == 2 })

	dec.mu.Lock()
	got := slices.Clone(dec.got)
	pads := map[uint16]bool{}
	for _, s := range dec.pads {
		pads[s] = true
	}
	dec.mu.Unlock()
	// Loopback UDP may still reorder or lose a packet; the decoder's view is in sequence order.
	slices.SortFunc(got, func(a, b received) int { return int(int16(a.seq - b.seq)) })
	got = slices.CompactFunc(got, func(a, b received) bool { return a.seq == b.seq })
	// A probe's padding (the subscriber may have been moved down and probed its way up) takes
	// sequence numbers of its own: the media around it must be continuous once it is left out.
	orig := make([]uint16, len(got))
	for i, r := range got {
		orig[i] = r.seq
	}
	for i := 1; i < len(got); i++ {
		next := orig[i-1] + 1
		for pads[next] {
			next++
		}
		if orig[i] == next {
			got[i].seq = got[i-1].seq + 1
		}
	}
	// What was forwarded before the subscriber's DTLS was up never arrived: the decoder starts at
	// the keyframe asked for when it connected.
	first := slices.IndexFunc(got, func(r received) bool { return r.key })
	checkContinuous(t, got[first:])

	rec.mu.Lock()
	defer rec.mu.Unlock()
	// It may start on a layer that arrived first, then only goes up, to the top.
	if l := layersOf(rec.got); l[len(l)-1] != 2 || !slices.IsSorted(l) {
		t.Fatalf("the recording tap got layers %v, want them going up to the top one only", l)
	}
	checkContinuous(t, rec.got)
}

// simulcastSession publishes a three-layer simulcast video from a pion peer into a new SFU,
// subscribes subPC to it from our offer (OpenVidu's mediasoup mode), and sends frames on every
// layer until the test ends.
func simulcastSession(t *testing.T, subPC *webrtc.PeerConnection) (*Publisher, *Subscriber, *downTrack) {
	t.Helper()
	s := newTestSFU(t, Config{Port: 0})
	pubPC, pubSender, tracks := simulcastBrowser(t)
	offer, err := pubPC.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pubPC)
	if err := pubPC.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	pub, ans, err := s.Publish(context.Background(), PublishRequest{Offer: pubPC.LocalDescription().SDP, VideoCodec: CodecVP8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	if err := pubPC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans}); err != nil {
		t.Fatal(err)
	}
	midID, ridID := extensionIDs(pubSender)
	if midID == 0 || ridID == 0 {
		t.Fatal("mid and rid header extensions not negotiated")
	}
	if got := pub.Layers(); !slices.Equal(got, []string{"rdiv4", "rdiv2", "rdiv1"}) {
		t.Fatalf("layers %v", got)
	}

	sub, soffer, err := s.SubscribeOffer(context.Background(), pub, SubscribeRequest{StreamID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	if err := subPC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: soffer}); err != nil {
		t.Fatal(err)
	}
	sans, err := subPC.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(subPC)
	if err := subPC.SetLocalDescription(sans); err != nil {
		t.Fatal(err)
	}
	<-gathered
	if err := sub.SetAnswer(subPC.LocalDescription().SDP); err != nil {
		t.Fatal(err)
	}
	if err := sub.SetAnswer(subPC.LocalDescription().SDP); err == nil {
		t.Fatal("a second answer was accepted")
	}
	video := sub.downs[len(sub.downs)-1]
	if video.sc == nil {
		t.Fatal("the subscriber's video is not a simulcast down-track")
	}

	// The publisher's three layers: a frame every few milliseconds, each layer with its own
	// numbering and a keyframe every 10 frames at a different phase, until the test ends.
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		type layer struct {
			seq uint16
			ts  uint32
			pid uint16
			tl0 uint8
		}
		ls := []layer{{100, 1000, 10, 1}, {30000, 555555, 3000, 77}, {65000, 4294960000, 32760, 250}}
		for fr := 0; ; fr++ {
			for i, tr := range tracks {
				l := &ls[i]
				for part := range 2 {
					b := []byte{0x80, 0xc0, 0x80 | byte(l.pid>>8), byte(l.pid), l.tl0, 0x01, 0xaa, byte(i)}
					if part == 0 {
						b[0] |= 0x10
						if fr%10 == 3*i {
							b[5] = 0
						}
					}
					h := rtp.Header{Version: 2, SequenceNumber: l.seq, Timestamp: l.ts, Marker: part == 1}
					_ = h.SetExtension(midID, []byte("0"))
					_ = h.SetExtension(ridID, []byte(tr.RID()))
					_ = tr.WriteRTP(&rtp.Packet{Header: h, Payload: b})
					l.seq++
				}
				l.ts += 3000
				l.pid = (l.pid + 1) & 0x7fff
				l.tl0++
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	return pub, sub, video
}
