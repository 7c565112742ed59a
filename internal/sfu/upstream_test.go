package sfu

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// weakUplink plays, on a model clock in 1 ms steps, a simulcast publisher behind a modelled
// uplink and one subscriber on a clean link, through the whole loop as the server runs it:
//   - the publisher: three VP8 layers at 30 fps (96, 200 and 310 kbit/s), each frame's packets
//     sent in no set order of layers, each layer answering a keyframe request at its next frame;
//     at stopAt (its estimate fallen) the layers of stops (the upper two) stop, the frames of
//     each already encoded still coming for its drain, and the lowest sends 72 kbit/s, until
//     freeAt, when all three are back; its bandwidth probes go as padding on the top layer's SSRC
//     meanwhile (no RTX negotiated);
//   - its uplink: from onset to freeAt a tc tbf of upBps (200 ms of queue, 4 KiB of burst); what
//     overflows never reaches us, except the lowest layer's packets lost from stopAt+500 ms on,
//     which the publisher resends 100 ms later (our NACKs, once its upper layers have stopped);
//   - the server: each layer's forwarder at the packet's arrival, a subscription with its
//     simulcast video down-track and an audio track, its layer choice and probes every 100 ms
//     and its congestion tick every second (runSenderReports);
//   - the subscriber: gets every packet 5 ms after we send it and counts its loss as libwebrtc
//     does (expected − received, a late packet counted as received); it asks for each missing
//     sequence number as soon as its gap shows (before it counts the packet that showed it, as
//     libwebrtc does) and every 100 ms after (ten times at most), and sends a receiver report
//     every 500 ms and with each NACK (compound RTCP), and transport-wide feedback every 100 ms.
type weakUplink struct {
	t      *testing.T
	layers []*vp8Layer
	d      *downTrack
	sub    *Subscriber
	audio  *downTrack
	base   time.Time
	ms     int64 // the model clock

	onset, stopAt, freeAt int64 // ms
	upBps                 float64
	busy                  float64 // ms: the uplink's bottleneck is busy until then
	inFlight              []upPacket
	resend                []upPacket
	frame                 []upPacket // the packets of the frames being encoded, to send in shuffled order
	rng                   *rand.Rand
	keyAt                 [3]int64 // ms of each layer's last keyframe
	asked                 [3]bool  // a keyframe of the layer was asked for since
	// stops: the layers that stop at stopAt (the upper two by default); drain: how long each one's
	// frames still come after (encoded before, in the publisher's pacer). A layer stopped answers
	// no keyframe request.
	stops [3]bool
	drain [3]int64
	// switchAt is when the subscriber was first forwarded each layer after stopAt (ms; 0: not).
	switchAt [3]int64

	// the subscriber's side
	rec               *twcc.Recorder
	started           bool
	highest, firstSeq uint32 // extended
	received          uint32
	rrHighest, rrRecv uint32
	missing           map[uint32]*nackState
	pauses            int
	wasPaused         bool
}

type upPacket struct {
	at    int64 // arrival at the server (ms)
	layer int
	raw   []byte
}

type nackState struct {
	last  int64
	tries int
}

func newWeakUplink(t *testing.T) *weakUplink {
	m := &weakUplink{t: t, layers: newVP8Layers(3), base: time.Unix(1_800_000_000, 0), onset: 8000, stopAt: 9300, freeAt: 18000,
		upBps: 150e3, missing: map[uint32]*nackState{}, rec: twcc.NewRecorder(1), rng: rand.New(rand.NewPCG(1, 2)), stops: [3]bool{false, true, true}}
	for i, size := range []int{200, 420, 650} {
		l := m.layers[i]
		l.size, l.keySize = size, 3*size
		l.uplink = func(raw []byte) { m.frame = append(m.frame, upPacket{layer: i, raw: raw}) }
		l.f.kf.asked = func() { m.asked[i] = true }
	}
	fs := []*forwarder{m.layers[0].f, m.layers[1].f, m.layers[2].f}
	tr, err := newBoundTrack(fs[0].codec, "video", "s")
	if err != nil {
		t.Fatal(err)
	}
	tr.out.Store(&binding{id: "b", ssrc: 4242, pt: 96, stream: m, tccID: 5})
	d := &downTrack{fwd: fs[2], track: tr, cc: &congestion{}, gated: true}
	d.sc = newSimulcast(d, fs)
	d.sc.tcc = &transportCC{}
	tr.tcc = d.sc.tcc
	d.sc.startLow()
	d.attach()
	t.Cleanup(d.detach)
	m.audio = &downTrack{fwd: newForwarder(webrtc.RTPCodecTypeAudio, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, nil)}
	m.d = d
	m.sub = &Subscriber{cc: d.cc, log: slog.New(slog.DiscardHandler), downs: []*downTrack{m.audio, d}, sc: d.sc}
	return m
}

func (m *weakUplink) now() time.Time { return m.base.Add(time.Duration(m.ms) * time.Millisecond) }

// send takes one packet of layer i onto the uplink now.
func (m *weakUplink) send(i int, raw []byte) {
	p := upPacket{at: m.ms + 10, layer: i, raw: raw}
	if m.ms >= m.onset && m.ms < m.freeAt {
		if (m.busy-float64(m.ms))*m.upBps/8000+float64(len(raw)+28) > 0.2*m.upBps/8+4096 { // tbf latency 200ms burst 4kb
			if i == 0 && m.ms >= m.stopAt+500 {
				m.resend = append(m.resend, upPacket{at: m.ms + 100, layer: i, raw: raw})
			}
			return // the queue is full: lost
		}
		m.busy = max(m.busy, float64(m.ms)) + float64(len(raw)+28)*8/m.upBps*1000
		p.at = int64(m.busy) + 10
	}
	m.inFlight = append(m.inFlight, p)
}

// WriteRTP is the subscriber's end of its link: what we send it, now.
func (m *weakUplink) WriteRTP(h *rtp.Header, _ []byte) (int, error) {
	if ext := h.GetExtension(5); len(ext) == 2 {
		tcc := m.d.sc.tcc
		tcc.sent[tcc.seq.Load()%tccRing].at.Store(m.ms * int64(time.Millisecond)) // sent now, by the model's clock
		m.rec.Record(1, binary.BigEndian.Uint16(ext), (time.Duration(m.ms+5)*time.Millisecond + 3*time.Hour).Microseconds())
	}
	seq := uint32(h.SequenceNumber)
	if !m.started {
		m.started, m.highest, m.firstSeq, m.rrHighest = true, seq, seq, seq-1
	}
	ext := m.highest&^0xffff | seq // the extended number nearest the highest
	switch d := int32(ext - m.highest); {
	case d > 0x8000:
		ext -= 1 << 16
	case d < -0x8000:
		ext += 1 << 16
	}
	if int32(ext-m.highest) <= 0 {
		m.received++
		delete(m.missing, ext) // late: a repair, or reordered
		return 0, nil
	}
	var nacks []uint16
	for s := m.highest + 1; s != ext; s++ {
		m.missing[s] = &nackState{last: m.ms, tries: 1}
		nacks = append(nacks, uint16(s))
	}
	// libwebrtc sends the NACKs a packet reveals before it counts the packet in its statistics
	// (RtpVideoStreamReceiver2::OnRtpPacket): their report does not count the gap yet.
	m.nack(nacks)
	m.received++
	m.highest = ext
	return 0, nil
}

func (m *weakUplink) Write(b []byte) (int, error) { return len(b), nil }

func (m *weakUplink) nack(seqs []uint16) {
	if len(seqs) > 0 {
		m.report() // compound RTCP: a receiver report with every NACK, as libwebrtc sends them
		m.d.retransmit(&rtcp.TransportLayerNack{MediaSSRC: 4242, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}, m.now())
	}
}

// report is the subscriber's receiver report now.
func (m *weakUplink) report() {
	expected, got := m.highest-m.rrHighest, m.received-m.rrRecv
	m.rrHighest, m.rrRecv = m.highest, m.received
	frac := uint8(0)
	if expected > got {
		frac = uint8(min((expected-got)*256/expected, 255))
	}
	lost := (m.highest - m.firstSeq + 1) - m.received
	rr := rtcp.ReceptionReport{SSRC: 4242, FractionLost: frac, TotalLost: lost & 0xffffff, LastSequenceNumber: m.highest,
		LastSenderReport: uint32(ntpTime(m.now().Add(-20*time.Millisecond)) >> 16)} // a 20 ms round trip
	m.d.onReports(4242, []rtcp.ReceptionReport{rr}, m.now())
}

// run plays the model until the clock reaches end (ms).
func (m *weakUplink) run(end int64) {
	for ; m.ms < end; m.ms++ {
		now := m.now()
		// The encoder: a frame of each layer sending every 1/30 s.
		if m.ms%100 == 0 || m.ms%100 == 33 || m.ms%100 == 66 {
			for i, l := range m.layers {
				stopped := m.stops[i] && m.ms >= m.stopAt && m.ms < m.freeAt
				if stopped && m.ms >= m.stopAt+m.drain[i] {
					if i == 2 && m.ms%100 == 0 {
						l.padding() // Chrome's bandwidth probes go on the stopped top layer's SSRC
					}
					continue
				}
				if i == 0 {
					l.size = map[bool]int{true: 150, false: 200}[m.ms >= m.stopAt && m.ms < m.freeAt]
				}
				// A keyframe answers the requests since the last one (a stopped layer's frames
				// were encoded before).
				key := m.keyAt[i] == 0 || m.asked[i] && !stopped
				if key {
					m.keyAt[i], m.asked[i] = m.ms, false
				}
				l.frame(key)
			}
			// The pacer sends them at once, in no set order of layers (the bed saw a few packets
			// of every layer a second get through the onset's full uplink).
			for len(m.frame) > 0 {
				// A random layer's next packet: each layer's own stay in order.
				i := m.rng.IntN(len(m.frame))
				for j := range i {
					if m.frame[j].layer == m.frame[i].layer {
						i = j
						break
					}
				}
				m.send(m.frame[i].layer, m.frame[i].raw)
				m.frame = append(m.frame[:i], m.frame[i+1:]...)
			}
		}
		// The resends of the lowest layer, and what the uplink delivers.
		keep := m.resend[:0]
		for _, p := range m.resend {
			if p.at <= m.ms {
				m.inFlight = append(m.inFlight, upPacket{at: m.ms + 10 + int64(max(m.busy-float64(m.ms), 0)), layer: p.layer, raw: p.raw})
				continue
			}
			keep = append(keep, p)
		}
		m.resend = keep
		left := m.inFlight[:0]
		for _, p := range m.inFlight {
			if p.at > m.ms {
				left = append(left, p)
				continue
			}
			l := m.layers[p.layer]
			if err := l.pkt.Unmarshal(p.raw); err != nil {
				m.t.Fatal(err)
			}
			l.f.forwardAt(&l.pkt, p.raw, &l.loss, now.UnixNano())
		}
		m.inFlight = left
		// The audio, 40 kbit/s.
		if m.ms%20 == 0 {
			m.audio.fwd.bytes.Add(100)
			m.audio.bytes.Add(100)
		}
		// The subscriber: its NACKs again, its feedback and reports.
		var again []uint16
		for s, n := range m.missing {
			if m.ms-n.last >= 100 && n.tries < 10 {
				n.last, n.tries = m.ms, n.tries+1
				again = append(again, uint16(s))
			}
		}
		m.nack(again)
		if m.ms%100 == 0 {
			for _, p := range m.rec.BuildFeedbackPacket() {
				if fb, ok := p.(*rtcp.TransportLayerCC); ok {
					m.d.sc.tcc.onFeedback(fb, now)
				}
			}
		}
		if m.ms%500 == 250 {
			m.report()
		}
		// The server's loop.
		if m.ms%1000 == 0 {
			m.sub.adapt(now)
		}
		if m.ms%100 == 0 {
			m.sub.probe(now)
		}
		if c := m.d.sc.cur.Load(); c >= 0 && m.ms >= m.stopAt && m.switchAt[c] == 0 {
			m.switchAt[c] = m.ms
		}
		if p := m.d.cc.pause.Load(); p && !m.wasPaused {
			m.pauses++
		}
		m.wasPaused = m.d.cc.pause.Load()
	}
}

// TestWeakPublisherCostsHealthySubscriberNothing: a simulcast publisher's uplink falls to 150
// kbit/s (the bed's pub-udp:150 cell): for 1-2 s it still sends its three layers (855 kbit/s),
// most of which its uplink loses, then its lowest alone. Its subscriber's own link is clean, but
// its receiver reports count the packets that never reached us, and it asks for them. None of that
// is its link's: its video is never paused, its estimate never cut, its layer never taken down
// for congestion, and once the publisher sends its top layer again the subscriber gets it without
// a probe. (The bed's unshaped subscribers were cut to 18-86 kbit/s on the loss of the layer they
// had just left, read in the tick after the switch; taken down "for congestion" by their NACKs of
// packets we never had, 49 for 3 packets sent; and, both at once, paused for 1.4-1.7 s now and
// then.) When the switch falls between a report and the tick decides whether the tick sees the
// old layer's loss, so the upper layers stop at ten moments 100 ms apart.
func TestWeakPublisherCostsHealthySubscriberNothing(t *testing.T) {
	for stop := int64(1000); stop < 2000; stop += 100 {
		m := newWeakUplink(t)
		m.stopAt = m.onset + stop
		m.run(m.onset)
		if c, f := m.d.sc.cur.Load(), m.d.sc.fit(); c != 2 || f != 2 {
			t.Fatalf("before the onset the subscriber is on layer %d (fit %d), want the top", c, f)
		}
		m.run(m.freeAt)
		lost := m.layers[2].f.lost.Load()
		if lost < 30 {
			t.Fatalf("the upper layers stopped %d ms after the onset: the uplink lost only %d packets of the top layer", stop, lost)
		}
		what := fmt.Sprintf("the upper layers stopped %d ms after the onset (%d packets of the top layer lost upstream; the subscriber asked %d times, %d for packets we never had)",
			stop, lost, m.d.nacks.Load(), m.d.nackHoles.Load())
		if m.pauses > 0 {
			t.Errorf("%s: the subscriber's video was paused %d times", what, m.pauses)
		}
		if !m.d.cc.holdUntil.IsZero() {
			t.Errorf("%s: the subscriber's estimate was cut (%.0f kbit/s now)", what, m.d.cc.est/1000)
		}
		if !m.d.sc.downAt.IsZero() || m.d.sc.fit() != 2 {
			t.Errorf("%s: the subscriber's layer was taken down for congestion (it fits %d now)", what, m.d.sc.fit())
		}
		m.run(m.freeAt + 1500)
		if c := m.d.sc.cur.Load(); c != 2 {
			t.Errorf("%s: 1.5 s after the publisher sends its top layer again the subscriber is on layer %d", what, c)
		}
	}
}

// TestSimulcastStoppedLayerLeftAtTheFirstKeyframe: the publisher stops encoding its upper layers
// (Chrome, its estimate fallen); the middle one's frames already encoded keep coming for 300 ms
// more, and a keyframe of it never comes. Its subscriber, on the top layer, has its picture back
// at the first keyframe of a layer still sent once the top is taken for stopped (layerGone, 400
// ms): the lowest's, asked for with the middle one's. (Waiting for the middle layer's, the bed's
// subscribers saw their picture 0.24-0.8 s later, when it too was taken for stopped; and with
// layerGone at 700 ms, 300 ms later still.) When the middle layer goes on, the subscriber gets it
// as soon as its keyframe comes.
func TestSimulcastStoppedLayerLeftAtTheFirstKeyframe(t *testing.T) {
	for _, middleStops := range []bool{true, false} {
		m := newWeakUplink(t)
		m.onset = m.freeAt // an uplink with room: only the publisher's choice of layers
		m.stops[1], m.drain[1] = middleStops, 300
		m.run(m.stopAt)
		if c := m.d.sc.cur.Load(); c != 2 {
			t.Fatalf("before the upper layers stop the subscriber is on layer %d, want the top", c)
		}
		m.run(m.stopAt + 2000)
		left := int64(-1) // ms from the top's last frame to the first of another layer
		for _, at := range m.switchAt[:2] {
			if at != 0 && (left < 0 || at-m.stopAt < left) {
				left = at - m.stopAt
			}
		}
		t.Logf("middle layer stops %v: layer 0 from %d ms after the top's last frame, layer 1 from %d", middleStops, m.switchAt[0]-m.stopAt, m.switchAt[1]-m.stopAt)
		if left < 0 || left > 550 {
			t.Errorf("middle layer stops %v: the top layer's picture was left %d ms after its last frame, want 550 at most", middleStops, left)
		}
		if want := map[bool]int32{true: 0, false: 1}[middleStops]; m.d.sc.cur.Load() != want {
			t.Errorf("middle layer stops %v: the subscriber ends on layer %d, want %d", middleStops, m.d.sc.cur.Load(), want)
		}
		if m.pauses > 0 || m.highest-m.firstSeq+1 != m.received {
			t.Errorf("middle layer stops %v: %d pauses, %d packets missing", middleStops, m.pauses, m.highest-m.firstSeq+1-m.received)
		}
	}
}

// TestUpstreamHoleFilledLate: packets 11-15 of the video never reached us and 16 is forwarded
// (five holes); the publisher's resends of 12 and 13 then come and are forwarded, and reach the
// subscriber before it reports (highest 16, 3 lost). Then 17-30 come whole, and its next report
// says 3 lost still. Its link lost nothing: neither report, nor the second's loss the congestion
// tick reads, shows any. (Taking the fills as of the packet noted before them, the second
// report's interval read the two fills as two packets lost: 15 % of a starved 135p layer's
// second in the bed, which cut an unshaped subscriber's estimate to 78 kbit/s.)
func TestUpstreamHoleFilledLate(t *testing.T) {
	d := &downTrack{cc: &congestion{}, gated: true}
	now := t0
	for seq := uint16(1); seq <= 10; seq++ {
		d.countHoles(seq, 1)
		d.sent.Add(1)
	}
	report := func(highest, lost uint32) (frac uint32, second uint32) {
		d.onReports(1, []rtcp.ReceptionReport{{SSRC: 1, LastSequenceNumber: highest, TotalLost: lost,
			FractionLost: uint8(min(255, (lost-d.cc.rrLost.Load())*256/max(highest-d.cc.rrHighest.Load(), 1)))}}, now)
		second, _ = d.cc.intervalLoss(d.cc.rrHighest.Load(), d.cc.rrLost.Load(), d.cc.rrHoles.Load(), d.cc.fraction.Load())
		return d.cc.fraction.Load(), second
	}
	report(10, 0)
	d.countHoles(16, 6) // 11-15 missing
	d.countHoles(12, -4)
	d.countHoles(13, -3)
	if f, _ := report(16, 3); f != 0 {
		t.Errorf("report up to 16, 3 lost, all the publisher's: %d/256 read as the link's", f)
	}
	for seq := uint16(17); seq <= 40; seq++ {
		d.countHoles(seq, 1)
	}
	if f, second := report(40, 3); f != 0 || second != 0 {
		t.Errorf("report up to 40, nothing more lost: %d/256 read as the link's, %d/256 over the interval", f, second)
	}
}
