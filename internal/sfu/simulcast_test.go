package sfu

import (
	"encoding/binary"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// vp8Layer produces the packets of one simulcast layer: two packets per frame, each frame with a
// 15-bit picture ID and a TL0PICIDX, its own sequence, timestamps and numbering (starting near
// their wrap points), and the layer's index in the last payload byte.
type vp8Layer struct {
	f     *forwarder
	loss  seqLoss
	index byte
	seq   uint16
	ts    uint32
	pid   uint16
	tl0   uint8
	pkt   rtp.Packet
}

func newVP8Layers(n int) []*vp8Layer {
	var out []*vp8Layer
	for i := range n {
		f := newForwarder(webrtc.RTPCodecTypeVideo, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, slog.New(slog.DiscardHandler))
		f.rid = "rdiv" + string(rune('1'+i))
		out = append(out, &vp8Layer{f: f, index: byte(i), seq: uint16(65500 + 7*i), ts: uint32(4294960000 - 1000*i), pid: uint16(32700 + 11*i), tl0: uint8(250 + i)})
	}
	return out
}

// frame sends one frame (a keyframe if key) of the layer through its forwarder.
func (l *vp8Layer) frame(key bool) {
	for part := range 2 {
		b := []byte{0x80, 0xc0, 0x80 | byte(l.pid>>8), byte(l.pid), l.tl0, 0x01, 0xaa, l.index}
		if part == 0 {
			b[0] |= 0x10 // S: start of the frame
			if key {
				b[5] = 0x00 // P = 0: keyframe
			}
		}
		raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: l.seq, Timestamp: l.ts, SSRC: 100 + uint32(l.index), Marker: part == 1}, Payload: b}).Marshal()
		if err := l.pkt.Unmarshal(raw); err != nil {
			panic(err)
		}
		l.f.forward(&l.pkt, raw, &l.loss)
		l.seq++
	}
	l.ts += 3000
	l.pid = (l.pid + 1) & 0x7fff
	l.tl0++
}

// received is one packet as a subscriber's browser got it.
type received struct {
	seq   uint16
	ts    uint32
	ssrc  uint32
	pid   uint16
	tl0   uint8
	layer byte
	key   bool
}

// recorder is a subscriber's write stream that decodes what it is given.
type recorder struct {
	mu  sync.Mutex
	got []received
}

func (r *recorder) WriteRTP(h *rtp.Header, b []byte) (int, error) {
	pic, ok := parsePicture(codecVP8, b)
	if !ok {
		panic("unparsable VP8 payload forwarded")
	}
	r.mu.Lock()
	r.got = append(r.got, received{seq: h.SequenceNumber, ts: h.Timestamp, ssrc: h.SSRC, pid: pic.pictureID(b),
		tl0: b[pic.tl0At], layer: b[len(b)-1], key: isKeyframeStart(codecVP8, b)})
	r.mu.Unlock()
	return len(b), nil
}

func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }

func (r *recorder) take() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

// simulcastSubscriber attaches a simulcast down-track over layers whose output r records.
func simulcastSubscriber(t *testing.T, layers []*vp8Layer, r *recorder) *downTrack {
	t.Helper()
	fs := make([]*forwarder, len(layers))
	for i, l := range layers {
		fs[i] = l.f
	}
	tr, err := newBoundTrack(fs[0].codec, "video", "s")
	if err != nil {
		t.Fatal(err)
	}
	tr.out.Store(&binding{id: "b", ssrc: 4242, pt: 96, stream: r})
	d := &downTrack{fwd: fs[len(fs)-1], track: tr}
	d.sc = newSimulcast(d, fs)
	d.attach()
	t.Cleanup(d.detach)
	// Every layer is already being sent, as when a subscriber joins a running stream.
	for _, f := range fs {
		f.lastAt.Store(time.Now().UnixNano())
	}
	return d
}

// run sends frames [from, to) on every layer, interleaved as a browser sends them; layer i has a
// keyframe at frames where frame%10 == keyAt[i].
func run(layers []*vp8Layer, from, to int, keyAt []int) {
	for fr := from; fr < to; fr++ {
		for i, l := range layers {
			l.frame(fr%10 == keyAt[i])
		}
	}
}

// checkContinuous asserts got is one stream a decoder accepts: our SSRC, every sequence number
// once and in order, timestamps, picture IDs and TL0PICIDX never going back nor skipping, and a
// change of layer only at a keyframe.
func checkContinuous(t *testing.T, got []received) {
	t.Helper()
	for i, p := range got {
		if p.ssrc != 4242 {
			t.Fatalf("packet %d has SSRC %d, not the subscriber's", i, p.ssrc)
		}
		if i == 0 {
			if !p.key {
				t.Fatalf("first packet forwarded is not a keyframe start: %+v", p)
			}
			continue
		}
		q := got[i-1]
		if p.seq != q.seq+1 {
			t.Fatalf("sequence jumps from %d to %d at packet %d", q.seq, p.seq, i)
		}
		if d := p.ts - q.ts; int32(d) < 0 || d > 90000 {
			t.Fatalf("timestamp jumps by %d at packet %d", int32(d), i)
		}
		if d := (p.pid - q.pid) & 0x7fff; d > 1 {
			t.Fatalf("picture ID jumps from %d to %d at packet %d", q.pid, p.pid, i)
		}
		if d := p.tl0 - q.tl0; d > 1 {
			t.Fatalf("TL0PICIDX jumps from %d to %d at packet %d", q.tl0, p.tl0, i)
		}
		if p.layer != q.layer && !p.key {
			t.Fatalf("switch from layer %d to %d at packet %d, which is no keyframe start", q.layer, p.layer, i)
		}
	}
}

// layersOf lists the layers got came from, in order, without repeats.
func layersOf(got []received) []byte {
	var out []byte
	for _, p := range got {
		if len(out) == 0 || out[len(out)-1] != p.layer {
			out = append(out, p.layer)
		}
	}
	return out
}

func TestSimulcastSwitchesAtKeyframes(t *testing.T) {
	layers := newVP8Layers(3)
	keyAt := []int{0, 3, 6}
	r := &recorder{}
	d := simulcastSubscriber(t, layers, r)

	run(layers, 0, 6, keyAt) // the top layer has no keyframe yet: nothing may be forwarded
	if got := r.take(); len(got) != 0 {
		t.Fatalf("%d packets forwarded before the first keyframe of the top layer", len(got))
	}
	run(layers, 6, 25, keyAt)
	d.setMaxLayer(0) // down: at the lowest layer's next keyframe (frame 30), not before
	run(layers, 25, 40, keyAt)
	d.setMaxLayer(1) // up one
	run(layers, 40, 60, keyAt)
	d.setMaxLayer(-1) // paused
	run(layers, 60, 70, keyAt)
	paused := len(r.got)
	run(layers, 70, 75, keyAt)
	if len(r.got) != paused {
		t.Fatal("packets forwarded while paused")
	}
	d.setMaxLayer(5) // past the top: the top
	run(layers, 75, 100, keyAt)

	got := r.take()
	checkContinuous(t, got[:paused])
	checkContinuous(t, got[paused:])
	if l := layersOf(got); !slices.Equal(l, []byte{2, 0, 1, 2}) {
		t.Fatalf("layers forwarded %v, want [2 0 1 2]", l)
	}
	// Frames 6–29 of layer 2 (24 frames), 30–43 of layer 0 (14: its frame 43 goes out before layer
	// 1's keyframe arrives), 43–59 of layer 1 (17), then 76–99 of layer 2 (24): two packets each,
	// nothing lost or duplicated by the switches.
	if len(got) != 2*(24+14+17+24) {
		t.Fatalf("%d packets forwarded, want %d", len(got), 2*(24+14+17+24))
	}
	if d.sc.swaps.Load() != 3 {
		t.Fatalf("%d switches counted, want 3", d.sc.swaps.Load())
	}
}

// TestSimulcastFollowsLayersBeingSent: when the publisher stops sending its top layer (its uplink
// shrank), subscribers move down to the best layer still arriving, and back up when it returns.
func TestSimulcastFollowsLayersBeingSent(t *testing.T) {
	layers := newVP8Layers(2)
	keyAt := []int{0, 5}
	r := &recorder{}
	simulcastSubscriber(t, layers, r)
	run(layers, 0, 20, keyAt)
	// The top layer goes silent for longer than layerIdle.
	layers[1].f.lastAt.Add(-int64(2 * layerIdle))
	run(layers[:1], 20, 31, keyAt)
	got := r.take()
	checkContinuous(t, got)
	if l := layersOf(got); !slices.Equal(l, []byte{1, 0}) {
		t.Fatalf("layers forwarded %v, want [1 0]", l)
	}
}

// TestSimulcastNACKsAnsweredAsSent: a retransmission carries the numbering the packet had when it
// was first forwarded, taken from the buffer of the layer it came from, across a switch.
func TestSimulcastNACKsAnsweredAsSent(t *testing.T) {
	layers := newVP8Layers(2)
	keyAt := []int{0, 5}
	r := &recorder{}
	d := simulcastSubscriber(t, layers, r)
	run(layers, 0, 12, keyAt)
	d.setMaxLayer(0)
	run(layers, 12, 30, keyAt)
	got := r.take()
	if l := layersOf(got); !slices.Equal(l, []byte{1, 0}) {
		t.Fatalf("layers forwarded %v, want [1 0]", l)
	}
	buf := make([]byte, 1500)
	for _, want := range got {
		n, _, ok := d.stored(want.seq, buf)
		if !ok {
			t.Fatalf("packet %d not found for a NACK", want.seq)
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			t.Fatal(err)
		}
		pic, _ := parsePicture(codecVP8, p.Payload)
		if p.SequenceNumber != want.seq || p.Timestamp != want.ts || pic.pictureID(p.Payload) != want.pid ||
			p.Payload[pic.tl0At] != want.tl0 || p.Payload[len(p.Payload)-1] != want.layer {
			t.Fatalf("NACK of %d answered with seq %d ts %d pid %d, sent as %+v", want.seq, p.SequenceNumber, p.Timestamp, pic.pictureID(p.Payload), want)
		}
	}
}

// TestSimulcastForwardingAllocations: the rewriting path allocates nothing per packet, for the
// layer forwarded and for the others.
func TestSimulcastForwardingAllocations(t *testing.T) {
	layers := newVP8Layers(3)
	r := &recorder{}
	simulcastSubscriber(t, layers, r)
	run(layers, 0, 10, []int{0, 0, 0})
	if len(r.take()) == 0 {
		t.Fatal("nothing forwarded")
	}
	var sink headerSink
	tr, _ := newBoundTrack(layers[0].f.codec, "video", "s")
	tr.out.Store(&binding{id: "b", ssrc: 1, pt: 96, stream: &sink})
	layers[2].f.subs.Load()
	for _, x := range *layers[2].f.subs.Load() {
		x.tap.(*layerEntry).sc.main.track = tr // from now on into the allocation-free sink
	}
	raws := make([][]byte, len(layers))
	for i, l := range layers {
		raws[i], _ = (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: l.seq, Timestamp: l.ts},
			Payload: []byte{0x90, 0xc0, 0x80 | byte(l.pid>>8), byte(l.pid), l.tl0, 0x01, 0xaa, byte(i)}}).Marshal()
	}
	var pkt rtp.Packet
	allocs := testing.AllocsPerRun(200, func() {
		for i, l := range layers {
			if err := pkt.Unmarshal(raws[i]); err != nil {
				t.Fatal(err)
			}
			l.f.forward(&pkt, raws[i], &l.loss)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet of three layers, want 0", allocs)
	}
	if sink.n < 200 {
		t.Fatalf("%d packets forwarded", sink.n)
	}
}

func TestParsePicture(t *testing.T) {
	for _, tc := range []struct {
		name          string
		codec         int
		b             []byte
		ok            bool
		pid           uint16
		pidLen, tl0At uint8
	}{
		{"vp8 15-bit, TL0PICIDX", codecVP8, []byte{0x90, 0xc0, 0x81, 0x02, 7, 0x00}, true, 0x102, 2, 4},
		{"vp8 15-bit", codecVP8, []byte{0x90, 0x80, 0x81, 0x02, 0x01}, true, 0x102, 2, 0},
		{"vp8 7-bit", codecVP8, []byte{0x80, 0x80, 0x05, 0x00}, true, 5, 1, 0},
		{"vp8 no picture ID", codecVP8, []byte{0x10, 0x00}, true, 0, 0, 0},
		{"vp8 truncated", codecVP8, []byte{0x90, 0xc0, 0x81}, false, 0, 0, 0},
		{"vp9 7-bit", codecVP9, []byte{0x88, 0x03, 0x00}, true, 3, 1, 0},
		{"vp9 15-bit, layers, TL0PICIDX", codecVP9, []byte{0xa8, 0x80, 0x09, 0x00, 42, 0}, true, 9, 2, 4},
		{"h264", codecH264, []byte{0x65}, false, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := parsePicture(tc.codec, tc.b)
			if ok != tc.ok || (ok && (p.pidLen != tc.pidLen || p.tl0At != tc.tl0At || (p.pidAt != 0 && p.pictureID(tc.b) != tc.pid))) {
				t.Fatalf("got %+v ok=%v", p, ok)
			}
			if ok && p.pidAt != 0 { // rewriting keeps the width and wraps within it
				b := slices.Clone(tc.b)
				p.setPictureID(b, tc.pid+p.pidMask())
				if p.pictureID(b) != (tc.pid+p.pidMask())&p.pidMask() || (p.pidLen == 2) != (b[p.pidAt]&0x80 != 0) {
					t.Fatalf("rewritten %x", b)
				}
			}
		})
	}
}

func TestOrderLayers(t *testing.T) {
	if got := orderLayers([]string{"rdiv1", "rdiv4", "rdiv2"}); !slices.Equal(got, []string{"rdiv4", "rdiv2", "rdiv1"}) {
		t.Fatalf("got %v", got)
	}
	if got := orderLayers([]string{"q", "h", "f"}); !slices.Equal(got, []string{"q", "h", "f"}) {
		t.Fatalf("got %v", got)
	}
}

func TestRTPPayloadOffset(t *testing.T) {
	p := &rtp.Packet{Header: rtp.Header{Version: 2, CSRC: []uint32{1}}, Payload: []byte{9, 9}}
	if err := p.SetExtension(1, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	raw, _ := p.Marshal()
	if off := rtpPayloadOffset(raw); off != len(raw)-2 || binary.BigEndian.Uint16(raw[off:]) != 0x0909 {
		t.Fatalf("offset %d of %d", off, len(raw))
	}
}

// TestSimulcastH264: with H.264 (forced codec) only sequence numbers and timestamps are rewritten,
// and a switch happens at the packet carrying the SPS that starts a keyframe.
func TestSimulcastH264(t *testing.T) {
	var fs []*forwarder
	seqs := []uint16{100, 40000}
	tss := []uint32{5, 3000000000}
	var loss [2]seqLoss
	for range 2 {
		fs = append(fs, newForwarder(webrtc.RTPCodecTypeVideo, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, slog.New(slog.DiscardHandler)))
	}
	type got struct {
		seq   uint16
		ts    uint32
		layer byte
		key   bool
	}
	var mu sync.Mutex
	var out []got
	tr, _ := newBoundTrack(fs[0].codec, "video", "s")
	tr.out.Store(&binding{id: "b", ssrc: 9, pt: 102, stream: writerFunc(func(h *rtp.Header, b []byte) {
		mu.Lock()
		out = append(out, got{h.SequenceNumber, h.Timestamp, b[len(b)-1], isKeyframeStart(codecH264, b)})
		mu.Unlock()
	})})
	d := &downTrack{fwd: fs[1], track: tr}
	d.sc = newSimulcast(d, fs)
	d.attach()
	defer d.detach()
	for _, f := range fs {
		f.lastAt.Store(time.Now().UnixNano())
	}
	var pkt rtp.Packet
	for fr := range 40 {
		if fr == 20 {
			d.setMaxLayer(0)
		}
		for i, f := range fs {
			key := fr%10 == 4*i+1
			payloads := [][]byte{{0x41, 0x9a, byte(i)}} // a non-IDR slice
			if key {
				payloads = [][]byte{{24, 0, 2, 0x67, 0x42, 0, 1, 0x68, byte(i)}, {0x7c, 0x85, byte(i)}, {0x7c, 0x45, byte(i)}} // STAP-A(SPS, PPS), FU-A IDR
			}
			for j, pl := range payloads {
				raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seqs[i], Timestamp: tss[i], Marker: j == len(payloads)-1}, Payload: pl}).Marshal()
				if err := pkt.Unmarshal(raw); err != nil {
					t.Fatal(err)
				}
				f.forward(&pkt, raw, &loss[i])
				seqs[i]++
			}
			tss[i] += 3000
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(out) == 0 || !out[0].key || out[0].layer != 1 {
		t.Fatalf("first packet forwarded: %+v", out)
	}
	var layers []byte
	for i, p := range out {
		if len(layers) == 0 || layers[len(layers)-1] != p.layer {
			if !p.key {
				t.Fatalf("switch to layer %d at packet %d, which is no keyframe start", p.layer, i)
			}
			layers = append(layers, p.layer)
		}
		if i > 0 && (p.seq != out[i-1].seq+1 || int32(p.ts-out[i-1].ts) < 0 || p.ts-out[i-1].ts > 90000) {
			t.Fatalf("discontinuity at packet %d: %+v after %+v", i, p, out[i-1])
		}
	}
	if !slices.Equal(layers, []byte{1, 0}) {
		t.Fatalf("layers %v, want [1 0]", layers)
	}
}

// writerFunc is a subscriber's write stream made of a func.
type writerFunc func(h *rtp.Header, payload []byte)

func (f writerFunc) WriteRTP(h *rtp.Header, b []byte) (int, error) { f(h, b); return len(b), nil }
func (f writerFunc) Write(b []byte) (int, error)                   { return len(b), nil }

// TestSimulcastFit: the layer a subscriber's estimate carries, with room to stay on a layer whose
// rate swings, and no limit while nothing is known.
func TestSimulcastFit(t *testing.T) {
	layers := newVP8Layers(3)
	fs := []*forwarder{layers[0].f, layers[1].f, layers[2].f}
	d := &downTrack{fwd: fs[2]}
	sc := newSimulcast(d, fs)
	now := time.Now()
	rates := []uint64{150e3, 500e3, 1500e3} // bits per second of each layer
	second := func(est float64) int32 {
		now = now.Add(time.Second)
		for i, f := range fs {
			f.bytes.Add(rates[i] / 8)
		}
		sc.fit(now, est)
		return sc.fitMax.Load()
	}
	for _, step := range []struct {
		est  float64
		want int32
	}{
		{0, 2},      // first interval: no rates yet, no estimate
		{0, 2},      // unknown estimate: no limit
		{1300e3, 2}, // the top layer swings above the estimate by less than the margin: kept
		{1100e3, 1}, // clearly too much: down to what fits
		{1400e3, 1}, // going up needs the whole rate
		{1600e3, 2}, // it fits
		{100e3, 0},  // nothing fits: the lowest (the congestion state pauses if need be)
		{450e3, 0},  // under the middle layer's rate
		{600e3, 1},
	} {
		if got := second(step.est); got != step.want {
			t.Fatalf("estimate %.0f: layer %d, want %d", step.est, got, step.want)
		}
	}
}

// TestSimulcastAcrossPublisherReconnect: after reconnectStream every layer arrives on a new track
// with numbering of its own (here half the sequence space behind, which the old offsets would take
// for packets older than the last keyframe). The subscriber's stream goes on from the new tracks'
// next keyframe as one continuous stream.
func TestSimulcastAcrossPublisherReconnect(t *testing.T) {
	layers := newVP8Layers(2)
	keyAt := []int{0, 5}
	r := &recorder{}
	simulcastSubscriber(t, layers, r)
	run(layers, 0, 20, keyAt)
	before := len(r.got)
	for _, l := range layers {
		l.f.gen.Add(1) // what forwarder.run does for a new track
		l.loss = seqLoss{}
		l.seq -= 30000
		l.ts += 123456789
		l.pid = (l.pid + 5000) & 0x7fff
		l.tl0 += 77
	}
	run(layers, 20, 40, keyAt)
	got := r.take()
	checkContinuous(t, got)
	// Layer 1's new track has keyframes at frames 25 and 35: frames 25–39 must reach the subscriber.
	if after := len(got) - before; after != 2*15 {
		t.Fatalf("%d packets forwarded after the reconnect, want %d", after, 2*15)
	}
}
