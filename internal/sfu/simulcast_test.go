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
	// temporal, when set, makes the frames those of Chrome's three temporal layers: TID 0, 2, 1, 2,
	// … (keyframes restart the pattern), TL0PICIDX counting the frames of TID 0.
	temporal bool
	nframe   int
	// size and keySize, when set, are the payload bytes of each packet of a frame and of a
	// keyframe (a modelled link's load).
	size, keySize int
	// uplink, when set, takes each packet the layer sends (a modelled uplink, which forwards
	// what it delivers itself) instead of the forwarder.
	uplink func(raw []byte)
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
	if key {
		l.nframe = 0
	}
	tid := [4]byte{0, 2, 1, 2}[l.nframe%4]
	l.nframe++
	if l.temporal && tid == 0 {
		l.tl0++
	}
	for part := range 2 {
		b := []byte{0x80, 0xc0, 0x80 | byte(l.pid>>8), byte(l.pid), l.tl0, 0x01, 0xaa, l.index}
		if l.temporal { // T: the TID byte follows TL0PICIDX
			b = []byte{0x80, 0xe0, 0x80 | byte(l.pid>>8), byte(l.pid), l.tl0, tid << 6, 0x01, 0xaa, l.index}
		}
		if part == 0 {
			b[0] |= 0x10 // S: start of the frame
			if key {
				b[len(b)-3] = 0x00 // P = 0: keyframe
			}
		}
		if n := map[bool]int{false: l.size, true: l.keySize}[key]; n > len(b) {
			b = append(append(b[:len(b)-1:len(b)-1], make([]byte, n-len(b))...), l.index) // the index stays last
		}
		raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: l.seq, Timestamp: l.ts, SSRC: 100 + uint32(l.index), Marker: part == 1}, Payload: b}).Marshal()
		l.seq++
		if l.uplink != nil {
			l.uplink(raw)
			continue
		}
		if err := l.pkt.Unmarshal(raw); err != nil {
			panic(err)
		}
		l.f.forward(&l.pkt, raw, &l.loss)
	}
	l.ts += 3000
	l.pid = (l.pid + 1) & 0x7fff
	if !l.temporal {
		l.tl0++
	}
}

// padding sends a padding-only packet on the layer's SSRC, as Chrome's bandwidth probes go when
// the publisher negotiated no RTX.
func (l *vp8Layer) padding() {
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 200, SequenceNumber: l.seq, Timestamp: l.ts - 3000, SSRC: 100 + uint32(l.index)},
		Payload: nil}).Marshal()
	l.seq++
	if l.uplink != nil {
		l.uplink(raw)
		return
	}
	if err := l.pkt.Unmarshal(raw); err != nil {
		panic(err)
	}
	l.f.forward(&l.pkt, raw, &l.loss)
}

// resend sends packet seq of the layer again, as the publisher answers a NACK when it negotiated no
// RTX: on the layer's SSRC, behind its highest sequence number.
func (l *vp8Layer) resend(seq uint16) {
	b := []byte{0x80, 0xc0, 0x80 | byte(l.pid>>8), byte(l.pid), l.tl0, 0x01, 0xaa, l.index}
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: l.ts - 3000, SSRC: 100 + uint32(l.index)}, Payload: b}).Marshal()
	if err := l.pkt.Unmarshal(raw); err != nil {
		panic(err)
	}
	l.f.forward(&l.pkt, raw, &l.loss)
}

// received is one packet as a subscriber's browser got it.
type received struct {
	seq   uint16
	ts    uint32
	ssrc  uint32
	pid   uint16
	tl0   uint8
	tid   int8
	layer byte
	key   bool
}

// recorder is a subscriber's write stream that decodes what it is given.
type recorder struct {
	mu   sync.Mutex
	got  []received
	pads []uint16 // sequence numbers of padding-only packets
}

func (r *recorder) WriteRTP(h *rtp.Header, b []byte) (int, error) {
	if len(b) == 0 && h.Padding {
		r.mu.Lock()
		r.pads = append(r.pads, h.SequenceNumber)
		r.mu.Unlock()
		return int(h.PaddingSize), nil
	}
	pic, ok := parsePicture(codecVP8, b)
	if !ok {
		panic("unparsable VP8 payload forwarded")
	}
	r.mu.Lock()
	r.got = append(r.got, received{seq: h.SequenceNumber, ts: h.Timestamp, ssrc: h.SSRC, pid: pic.pictureID(b),
		tl0: b[pic.tl0At], tid: pic.tid(b), layer: b[len(b)-1], key: isKeyframeStart(codecVP8, b)})
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
		f.mediaAt.Store(time.Now().UnixNano())
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

// TestSimulcastTemporalLayers: on a rung of half the frame rate the subscriber gets the frames of
// TID 0 and 1 of its layer only, as a stream a decoder takes for complete (no sequence number nor
// picture ID missing: Chrome holds a frame whose picture ID follows a gap until the missing
// picture comes); a change of rung takes effect at the next frame of TID 0; a NACK after dropped
// frames is answered with the packet as it was sent.
func TestSimulcastTemporalLayers(t *testing.T) {
	layers := newVP8Layers(2)
	for _, l := range layers {
		l.temporal = true
	}
	r := &recorder{}
	d := simulcastSubscriber(t, layers, r)
	frames := func(from, to int) {
		for fr := from; fr < to; fr++ {
			for _, l := range layers {
				l.frame(fr == 0)
			}
		}
	}
	d.sc.fitMax.Store(rung{s: 1, t: 1}.packed())
	frames(0, 10) // TIDs 0 2 1 2 0 2 1 2 0 2
	half := r.take()
	d.sc.fitMax.Store(rung{s: 1, t: tlAll}.packed())
	frames(10, 20) // 1 2 0 2 1 2 0 2 1 2: the frame of TID 2 before the next of TID 0 is still dropped
	full := r.take()
	d.sc.fitMax.Store(rung{s: 1, t: 1}.packed())
	frames(20, 28) // 0 2 1 2 0 2 1 2
	again := r.take()

	var perFrame []int8
	all := slices.Concat(half, full, again)
	for i, p := range all {
		if i%2 == 0 {
			perFrame = append(perFrame, p.tid)
		}
		if p.layer != 1 {
			t.Fatalf("packet %d from layer %d", i, p.layer)
		}
	}
	want := []int8{0, 1, 0, 1, 0 /* full from here */, 1, 0, 2, 1, 2, 0, 2, 1, 2 /* half again */, 0, 1, 0, 1}
	if !slices.Equal(perFrame, want) {
		t.Fatalf("TIDs of the frames forwarded %v, want %v", perFrame, want)
	}
	checkContinuous(t, all)
	buf := make([]byte, 1500)
	for _, sent := range all {
		n, _, ok := d.stored(sent.seq, buf)
		if !ok {
			t.Fatalf("packet %d not found for a NACK", sent.seq)
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			t.Fatal(err)
		}
		pic, _ := parsePicture(codecVP8, p.Payload)
		if p.SequenceNumber != sent.seq || p.Timestamp != sent.ts || pic.pictureID(p.Payload) != sent.pid || p.Payload[pic.tl0At] != sent.tl0 {
			t.Fatalf("NACK of %d answered with seq %d ts %d pid %d, sent as %+v", sent.seq, p.SequenceNumber, p.Timestamp, pic.pictureID(p.Payload), sent)
		}
	}
}

// twoLayersRunning returns two VP8 layers (keyframes at the frames keyAt) and a subscriber of
// theirs, recording into r, that has been forwarded their frames 0-19.
func twoLayersRunning(t *testing.T, keyAt []int) ([]*vp8Layer, *recorder, *downTrack) {
	layers := newVP8Layers(2)
	r := &recorder{}
	d := simulcastSubscriber(t, layers, r)
	run(layers, 0, 20, keyAt)
	return layers, r, d
}

// TestSimulcastFollowsLayersBeingSent: when the publisher stops sending its top layer (its uplink
// shrank), subscribers move down to the best layer still arriving, and back up when it returns.
func TestSimulcastFollowsLayersBeingSent(t *testing.T) {
	keyAt := []int{0, 5}
	layers, r, _ := twoLayersRunning(t, keyAt)
	// The top layer goes silent for longer than layerIdle.
	layers[1].f.mediaAt.Add(-int64(2 * layerIdle))
	run(layers[:1], 20, 31, keyAt)
	got := r.take()
	checkContinuous(t, got)
	if l := layersOf(got); !slices.Equal(l, []byte{1, 0}) {
		t.Fatalf("layers forwarded %v, want [1 0]", l)
	}
}

// TestSimulcastPaddingIsNoLayer: a layer the publisher stopped encoding (Chrome drops its top
// layer when its own uplink estimate falls) may still carry Chrome's bandwidth probes, padding-only
// packets on its SSRC when no RTX is negotiated. They are no video: the subscriber goes to the
// layer still sent instead of waiting for a keyframe of the silent one and asking for it twice a
// second (the weak-network bed's ci11: nobody received video for 13 s, 1.71 PLI/s).
func TestSimulcastPaddingIsNoLayer(t *testing.T) {
	keyAt := []int{5, 0}
	layers, r, _ := twoLayersRunning(t, keyAt)
	// The top layer's last video is older than layerIdle; only padding follows on it.
	layers[1].f.mediaAt.Add(-int64(2 * layerIdle))
	for fr := 20; fr < 31; fr++ {
		layers[1].padding()
		layers[0].frame(fr%10 == keyAt[0])
	}
	got := r.take()
	// The padding forwarded while the top layer was still the one forwarded took sequence
	// numbers of its own, as the publisher's packets do: the media is continuous without them.
	r.mu.Lock()
	pads := map[uint16]bool{}
	for _, s := range r.pads {
		pads[s] = true
	}
	r.mu.Unlock()
	for i := 1; i < len(got); i++ {
		next := got[i-1].seq + 1
		for pads[next] {
			next++
		}
		if got[i].seq == next {
			for j := i; j < len(got); j++ {
				got[j].seq -= next - (got[i-1].seq + 1)
			}
		}
	}
	checkContinuous(t, got)
	if l := layersOf(got); !slices.Equal(l, []byte{1, 0}) {
		t.Fatalf("layers forwarded %v, want [1 0]", l)
	}
}

// TestSimulcastKeyframeAsksBackOff: a down-track waiting for a keyframe that does not come asks
// for it again after 0.5 s, then 1 s, then every 2 s: ten seconds of waiting cost the publisher 7
// requests, not 20.
func TestSimulcastKeyframeAsksBackOff(t *testing.T) {
	layers := newVP8Layers(2)
	r := &recorder{}
	d := simulcastSubscriber(t, layers, r)
	run(layers, 0, 20, []int{0, 5})
	d.setMaxLayer(0) // the lowest layer is wanted now; its keyframe never comes
	e := d.sc.sinks[0].tap.(*layerEntry)
	p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, Timestamp: 1}, Payload: []byte{0x90, 0x80, 0x80, 0x01, 0x01, 0x01, 0xaa, 0}}
	start := time.Now().UnixNano()
	asks, last := 0, int64(0)
	for i := range 100 { // ten seconds of frames, 100 ms apart
		at := start + int64(i)*int64(100*time.Millisecond)
		layers[0].f.lastAt.Store(at)
		layers[0].f.mediaAt.Store(at)
		layers[1].f.mediaAt.Store(at)
		e.write(p, false)
		p.SequenceNumber++
		if d.sc.askedAt != last {
			asks, last = asks+1, d.sc.askedAt
		}
	}
	if asks > 8 {
		t.Fatalf("%d keyframe requests in 10 s of waiting", asks)
	}
	if asks < 5 {
		t.Fatalf("only %d keyframe requests in 10 s of waiting: it must keep asking", asks)
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

// TestSimulcastProbePadding: while a probe runs, padding-only packets follow the frames of the
// forwarded layer on sequence numbers of their own, across a switch: the subscriber sees every
// sequence number once, the media as one continuous stream, and a NACK of padding is not answered
// while one of media after it gets the packet as it was sent.
func TestSimulcastProbePadding(t *testing.T) {
	layers := newVP8Layers(2)
	keyAt := []int{0, 5}
	r := &recorder{}
	d := simulcastSubscriber(t, layers, r)
	run(layers, 0, 6, keyAt)
	d.sc.probeBps.Store(30000) // 1000 bytes per 33-ms frame: four packets
	run(layers, 6, 12, keyAt)
	d.setMaxLayer(0)
	run(layers, 12, 30, keyAt)
	d.sc.probeBps.Store(0)
	run(layers, 30, 34, keyAt)
	got := r.take()
	if l := layersOf(got); !slices.Equal(l, []byte{1, 0}) {
		t.Fatalf("layers forwarded %v, want [1 0]", l)
	}
	if len(r.pads) < 20 {
		t.Fatalf("%d padding packets during the probe", len(r.pads))
	}
	seqs := map[uint16]bool{}
	for _, p := range got {
		seqs[p.seq] = true
	}
	for _, s := range r.pads {
		if seqs[s] {
			t.Fatalf("sequence number %d sent as media and as padding", s)
		}
		seqs[s] = true
	}
	if n := int(got[len(got)-1].seq-got[0].seq) + 1; n != len(seqs) {
		t.Fatalf("%d sequence numbers sent over a span of %d", len(seqs), n)
	}
	media := slices.Clone(got)
	for i := 1; i < len(media); i++ {
		media[i].seq = media[i-1].seq + 1 // the gaps are the padding, checked above
	}
	checkContinuous(t, media)
	buf := make([]byte, 1500)
	if _, _, ok := d.stored(r.pads[len(r.pads)-1], buf); ok {
		t.Fatal("a NACK of padding was answered")
	}
	for _, want := range got {
		n, _, ok := d.stored(want.seq, buf)
		if !ok {
			continue // older than the history of mappings
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if p.SequenceNumber != want.seq || p.Timestamp != want.ts || p.Payload[len(p.Payload)-1] != want.layer {
			t.Fatalf("NACK of %d answered with seq %d ts %d, sent as %+v", want.seq, p.SequenceNumber, p.Timestamp, want)
		}
	}
	if _, _, ok := d.stored(got[len(got)-1].seq, buf); !ok {
		t.Fatal("the last packet sent cannot be sent again")
	}
}

// TestSimulcastPausedProbe: a paused simulcast subscription over TCP is probed with padding in
// place of its video (congestion.go's probe), on the sequence numbers that follow what it was sent,
// and its video resumes from there at a keyframe.
func TestSimulcastPausedProbe(t *testing.T) {
	layers, keyAt, r, d := pausedSimulcastSubscriber(t)
	if len(r.pads) != 0 {
		t.Fatal("padding while paused without a probe")
	}
	d.cc.probeBps.Store(30000)
	d.gate.probe.Store(true)
	run(layers, 12, 20, keyAt)
	if len(r.pads) == 0 {
		t.Fatal("no padding while probing")
	}
	buf := make([]byte, 1500)
	if _, _, ok := d.stored(r.pads[0], buf); ok {
		t.Fatal("a NACK of padding was answered")
	}
	d.gate.probe.Store(false)
	d.cc.pause.Store(false)
	run(layers, 20, 40, keyAt)
	got := r.take()
	seqs := map[uint16]bool{}
	for _, p := range got {
		seqs[p.seq] = true
	}
	for _, s := range r.pads {
		seqs[s] = true
	}
	if n := int(got[len(got)-1].seq-got[0].seq) + 1; n != len(seqs) {
		t.Fatalf("%d sequence numbers sent over a span of %d", len(seqs), n)
	}
	media := slices.Clone(got)
	for i := 1; i < len(media); i++ {
		media[i].seq = media[i-1].seq + 1
	}
	checkContinuous(t, media)
	if last := got[len(got)-1]; last.seq <= r.pads[len(r.pads)-1] && r.pads[len(r.pads)-1]-last.seq < 0x8000 {
		t.Fatal("video did not resume after the probe")
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
	// With the transport-wide sequence number a subscriber that negotiated transport-cc gets.
	tr.tcc = &transportCC{}
	tr.out.Store(&binding{id: "b", ssrc: 1, pt: 96, stream: &sink, tccID: 3})
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
	if n := tr.tcc.seq.Load(); n < 200 {
		t.Fatalf("%d packets numbered transport-wide", n)
	}
	// On a rung at half rate: frames of TID 0, 2, 1, 2 on the top layer, every other one dropped.
	(*layers[2].f.subs.Load())[0].tap.(*layerEntry).sc.fitMax.Store(rung{s: 2, t: 1}.packed())
	l := layers[2]
	raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: l.seq, Timestamp: l.ts, Marker: true},
		Payload: []byte{0x90, 0xe0, 0x80 | byte(l.pid>>8), byte(l.pid), l.tl0, 0, 0x01, 0xaa, 2}}).Marshal()
	before, n := sink.n, 0
	allocs = testing.AllocsPerRun(200, func() {
		n++
		binary.BigEndian.PutUint16(raw[2:], l.seq+uint16(n))
		binary.BigEndian.PutUint32(raw[4:], l.ts+uint32(n)*3000)
		binary.BigEndian.PutUint16(raw[14:], 0x8000|(l.pid+uint16(n))&0x7fff)
		raw[17] = [4]byte{0, 2, 1, 2}[n%4] << 6
		if err := pkt.Unmarshal(raw); err != nil {
			t.Fatal(err)
		}
		l.f.forward(&pkt, raw, &l.loss)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet at half rate, want 0", allocs)
	}
	if got := sink.n - before; got < 80 || got > 120 {
		t.Fatalf("%d of 200 packets forwarded at half rate, want half", got)
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
		f.mediaAt.Store(time.Now().UnixNano())
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

// layerChoice drives step for one simulcast down-track over three layers of 150, 500 and 1500
// kbit/s, a second at a time, with the receiver reports and NACKs its test gives.
type layerChoice struct {
	t     *testing.T
	fs    []*forwarder
	d     *downTrack
	sc    *simulcast
	now   time.Time
	rates []uint64
	// temporal: the layers carry Chrome's three temporal layers, TID 1 a fifth of each layer's
	// bytes and TID 2 two fifths (libwebrtc's 40/20/40 split), halfFPS frames a second of TID ≤ 1
	// (15 by default).
	temporal bool
	halfFPS  float64
	frames   float64
}

func newLayerChoice(t *testing.T) *layerChoice {
	layers := newVP8Layers(3)
	fs := []*forwarder{layers[0].f, layers[1].f, layers[2].f}
	d := &downTrack{fwd: fs[2], cc: &congestion{}}
	sc := newSimulcast(d, fs)
	d.sc = sc
	c := &layerChoice{t: t, fs: fs, d: d, sc: sc, now: time.Now(), rates: []uint64{150e3, 500e3, 1500e3}}
	c.advance(100*time.Millisecond, 0) // the first measurement
	return c
}

// advance moves time on by dt with the subscriber sent sentBps (media, as packets of 1000 bytes) and
// steps at the end with estimate est.
func (c *layerChoice) advance(dt time.Duration, sentBps float64) {
	c.now = c.now.Add(dt)
	fps := c.halfFPS
	if fps == 0 {
		fps = 15
	}
	before := uint64(c.frames)
	c.frames += fps * dt.Seconds()
	for i, f := range c.fs {
		if c.temporal {
			f.halfFrames.Add(uint64(c.frames) - before)
		}
		b := float64(c.rates[i]) / 8 * dt.Seconds()
		f.bytes.Add(uint64(b))
		if c.temporal {
			f.upperBytes[0].Add(uint64(b / 5))
			f.upperBytes[1].Add(uint64(b * 2 / 5))
		}
		f.mediaAt.Store(c.now.UnixNano())
	}
	b := uint64(sentBps / 8 * dt.Seconds())
	c.d.bytes.Add(b)
	c.d.sent.Add(b / 1000)
	c.sc.step(c.now, c.d.cc.est, 0)
}

// report is a receiver report arriving now with loss (0–1) and round trip rtt.
func (c *layerChoice) report(loss float64, rtt time.Duration) {
	c.d.cc.fraction.Store(uint32(loss * 256))
	c.d.cc.rtt.Store(int64(rtt))
	c.d.cc.reportAt.Store(c.now.UnixNano())
}

// cut is the subscription's congestion state cutting its estimate to est (a hold follows).
func (c *layerChoice) cut(est float64) {
	c.d.cc.est, c.d.cc.holdUntil = est, c.now.Add(time.Hour)
}

// rungRate is what the rung the link carries sends, in bps.
func (c *layerChoice) rungRate() float64 {
	r := unpackRung(c.sc.fitMax.Load())
	if r.t < tlAll {
		return float64(c.rates[r.s]) * 3 / 5
	}
	return float64(c.rates[r.s])
}

// want asserts the rung the link carries, packed: a layer's index for its every frame.
func (c *layerChoice) want(layer int32, what string) {
	c.t.Helper()
	if got := c.sc.fitMax.Load(); got != layer {
		c.t.Fatalf("%s: layer %d, want %d", what, got, layer)
	}
}

// TestSimulcastLayerDown: nothing known, the top layer, and an estimate that merely trails the
// layer's rate changes nothing; a report of heavy loss takes the subscriber down to what got
// through at once, and an estimate cut clearly under the current layer takes it further; a swing
// of the rate within the margin does not.
func TestSimulcastLayerDown(t *testing.T) {
	c := newLayerChoice(t)
	c.advance(time.Second, 1500e3)
	c.want(2, "nothing known")
	c.d.cc.est = 1000e3 // trailing a publisher's ramp or keyframe on a clean link: no reason to go down
	c.advance(time.Second, 1500e3)
	c.want(2, "an estimate under the layer's rate without congestion")
	c.report(0.40, 50*time.Millisecond) // 1500 sent, 900 got through: the middle layer
	c.advance(100*time.Millisecond, 1500e3)
	c.want(1, "40 % loss at 1500 kbit/s")
	c.cut(450e3) // within ccPauseBelow of the middle layer's 500: kept
	c.advance(time.Second, 500e3)
	c.want(1, "estimate 450 kbit/s")
	c.cut(300e3)
	c.advance(time.Second, 500e3)
	c.want(0, "estimate 300 kbit/s")
}

// TestSimulcastProbesUp: going up waits for a probe. A probe pads up to the higher layer's rate
// and passes when the report that covers it shows no loss and no longer round trip; it fails at a
// burst of NACKs or a report of loss, and the next one waits longer.
func TestSimulcastProbesUp(t *testing.T) {
	c := newLayerChoice(t)
	c.advance(time.Second, 1500e3)
	c.report(0.50, 50*time.Millisecond) // 750 got through: the middle layer with upTakeGain's margin
	c.advance(100*time.Millisecond, 1500e3)
	c.want(1, "50 % loss")
	c.cut(300e3)
	c.advance(time.Second, 500e3)
	c.want(0, "estimate 300 kbit/s")
	c.cut(2e6) // the estimate alone never raises the layer
	for range 30 {
		c.report(0, 50*time.Millisecond)
		c.advance(100*time.Millisecond, 150e3)
		if c.sc.probeBps.Load() != 0 {
			break
		}
		c.want(0, "before any probe")
	}
	if got := c.sc.up.pad; got < upGain*500e3-150e3-1 || got > upGain*500e3 {
		t.Fatalf("probe for the middle layer pads up to %.0f bps", got)
	}
	if got := float64(c.sc.probeBps.Load()) * 8; got > c.sc.up.pad/2 {
		t.Fatalf("probe starts padding at %.0f bps, not ramping up to %.0f", got, c.sc.up.pad)
	}
	// NACKs of what was sent during the probe (a NACK of earlier packets is old loss being repaired,
	// not the probe's): the probe fails, the layer stays.
	buf := make([]byte, 1500)
	from := uint16(c.sc.probeFrom.Load() - 1)
	for i := range 20 {
		c.d.stored(from-uint16(i)-1, buf)
	}
	c.advance(100*time.Millisecond, 575e3)
	if !c.sc.up.running {
		t.Fatal("NACKs of packets sent before the probe ended it")
	}
	for i := range 20 {
		c.d.stored(from+uint16(i), buf)
	}
	c.advance(100*time.Millisecond, 575e3)
	c.want(0, "probe answered by NACKs")
	if c.sc.probeBps.Load() != 0 || c.sc.up.running {
		t.Fatal("a failed probe must stop padding")
	}
	// The next probe waits upGapMin and aims at the top layer; a clean report passes it.
	c.advance(upGapMin/2, 150e3)
	if c.sc.up.running {
		t.Fatal("a probe started before the gap after a failure")
	}
	for i := 0; !c.sc.up.running; i++ {
		if i > 30 {
			t.Fatal("no probe after the gap")
		}
		c.advance(100*time.Millisecond, 150e3)
	}
	if c.sc.up.target != 2 {
		t.Fatalf("the probe after a failed one aims at layer %d, want the top", c.sc.up.target)
	}
	for range 14 {
		c.advance(100*time.Millisecond, 1700e3)
	}
	if got := float64(c.sc.probeBps.Load()) * 8; got < c.sc.up.pad-8 {
		t.Fatalf("probe pads at %.0f bps after its ramp, want %.0f", got, c.sc.up.pad)
	}
	c.report(0.01, 60*time.Millisecond)
	c.advance(100*time.Millisecond, 1700e3)
	c.want(2, "probe passed")
	if c.sc.probeBps.Load() != 0 {
		t.Fatal("a passed probe must stop padding")
	}
	if c.d.cc.est < 1500e3 {
		t.Fatalf("estimate %.0f after a probe for 1500 kbit/s passed", c.d.cc.est)
	}
}

// TestSimulcastProbeFailsOnQueue: a report whose round trip grew (a queue on the way) or that shows
// loss fails the probe.
func TestSimulcastProbeFailsOnQueue(t *testing.T) {
	for _, tc := range []struct {
		name string
		loss float64
		rtt  time.Duration
	}{{"round trip", 0, 250 * time.Millisecond}, {"loss", 0.08, 50 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newLayerChoice(t)
			c.advance(time.Second, 1500e3)
			c.cut(300e3)
			c.advance(time.Second, 1500e3)
			c.advance(time.Second, 500e3)
			c.want(0, "estimate 300 kbit/s")
			for i := 0; !c.sc.up.running; i++ {
				if i > 50 {
					t.Fatal("no probe")
				}
				c.report(0, 50*time.Millisecond)
				c.advance(100*time.Millisecond, 150e3)
			}
			for range 12 {
				c.advance(100*time.Millisecond, 575e3)
			}
			c.report(tc.loss, tc.rtt)
			c.advance(100*time.Millisecond, 575e3)
			c.want(0, "a probe answered by "+tc.name)
			if c.sc.up.running || c.sc.up.passed != 0 {
				t.Fatal("the probe must have failed")
			}
		})
	}
}

// TestSimulcastAcrossPublisherReconnect: after reconnectStream every layer arrives on a new track
// with numbering of its own (here half the sequence space behind, which the old offsets would take
// for packets older than the last keyframe). The subscriber's stream goes on from the new tracks'
// next keyframe as one continuous stream.
func TestSimulcastAcrossPublisherReconnect(t *testing.T) {
	keyAt := []int{0, 5}
	layers, r, _ := twoLayersRunning(t, keyAt)
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

// TestSimulcastNewSubscriberNotPaused: a new subscriber starts on the lowest layer, where its
// subscription's congestion state may pause the video only once the layer choice has seen the
// link short of what it was sent (the bed's unshaped subscribers were paused for 3 s at join, on an
// estimate that had seen a part of a second); a link losing heavily on the lowest layer may.
func TestSimulcastNewSubscriberNotPaused(t *testing.T) {
	c := newLayerChoice(t)
	c.sc.startLow()
	c.want(0, "a new subscriber")
	for range 3 {
		c.report(0, 20*time.Millisecond)
		c.advance(time.Second, 150e3)
	}
	if c.sc.atLowest(c.now) {
		t.Fatal("a new subscriber on the lowest layer of a clean link may be paused")
	}
	for range 4 { // the first report may end a probe instead
		c.report(0.5, 20*time.Millisecond)
		c.advance(time.Second, 150e3)
	}
	if !c.sc.atLowest(c.now) {
		t.Fatal("a subscriber losing half of the lowest layer may not be paused")
	}
}

// TestSimulcastShedsOnCongestedDown: going down because the link cannot carry the current layer,
// nothing more of it is sent while the lower layer's keyframe is awaited (it would keep the link's
// queue full in front of that keyframe); the stream stays one a decoder accepts. A lower limit
// for any other reason (setMaxLayer) keeps the current layer until the switch, as before.
func TestSimulcastShedsOnCongestedDown(t *testing.T) {
	layers := newVP8Layers(3)
	keyAt := []int{0, 3, 6}
	r := &recorder{}
	d := simulcastSubscriber(t, layers, r)
	run(layers, 0, 22, keyAt) // on the top layer from its keyframe at frame 6
	before := len(r.got)
	d.sc.congestedDown(0, 2, time.Now(), 0)
	run(layers, 22, 35, keyAt) // the lowest layer's keyframe at frame 30
	all := r.take()
	got := all[before:]
	if len(got) == 0 || got[0].layer != 0 || !got[0].key {
		t.Fatalf("after the congested down, first packet %+v, want the lowest layer's keyframe", got)
	}
	if l := layersOf(got); !slices.Equal(l, []byte{0}) {
		t.Fatalf("layers forwarded after the congested down %v, want [0]", l)
	}
	if len(got) != 2*5 {
		t.Fatalf("%d packets after the congested down, want the 10 of frames 30-34", len(got))
	}
	checkContinuous(t, all)
}

// TestSimulcastSwitchRearmsKeyframeRequest: on a lossy link a subscriber's keyframe requests pass
// at most every lossyPLIGap, but the first one after a layer switch passes at once: it asks to
// repair the new layer's keyframe (lost in the queue the old layer left on a squeezed link), and
// without it the picture stayed frozen until the gap ran out.
func TestSimulcastSwitchRearmsKeyframeRequest(t *testing.T) {
	layers := newVP8Layers(3)
	keyAt := []int{0, 3, 6}
	r := &recorder{}
	d := simulcastSubscriber(t, layers, r)
	d.cc = &congestion{}
	now := time.Now()
	lossy := func() {
		d.cc.reportAt.Store(now.UnixNano())
		d.cc.fraction.Store(77) // 30 % lost
	}
	lossy()
	run(layers, 0, 22, keyAt) // on the top layer from its keyframe at frame 6
	if !d.cc.allowPLI(now) {
		t.Fatal("the first keyframe request of a lossy subscriber must pass")
	}
	if d.cc.allowPLI(now.Add(100 * time.Millisecond)) {
		t.Fatal("a second request within lossyPLIGap on a lossy link passed")
	}
	d.sc.congestedDown(0, 2, time.Now(), 0)
	run(layers, 22, 35, keyAt) // switched to the lowest layer at its keyframe (frame 30)
	if got := r.take(); got[len(got)-1].layer != 0 {
		t.Fatalf("not on the lowest layer after the congested down: last packet of layer %d", got[len(got)-1].layer)
	}
	lossy()
	if !d.cc.allowPLI(now.Add(200 * time.Millisecond)) {
		t.Fatal("the first keyframe request after a layer switch was held back by lossyPLIGap")
	}
	if d.cc.allowPLI(now.Add(300 * time.Millisecond)) {
		t.Fatal("the gap does not apply again after the switch's request")
	}
}

// pausedSimulcastSubscriber is a subscriber of two layers sent 12 frames, its video paused (by its
// congestion state) after the 8th.
func pausedSimulcastSubscriber(t *testing.T) ([]*vp8Layer, []int, *recorder, *downTrack) {
	t.Helper()
	layers := newVP8Layers(2)
	keyAt := []int{0, 5}
	r := &recorder{}
	d := simulcastSubscriber(t, layers, r)
	d.cc = &congestion{}
	run(layers, 0, 8, keyAt)
	d.cc.pause.Store(true)
	run(layers, 8, 12, keyAt)
	return layers, keyAt, r, d
}

// TestSimulcastLayerStoppedUnderALiveOne: a top layer silent for layerGone while the layer below
// goes on sending is stopped, without waiting out layerIdle (Chrome drops its upper layers when its
// uplink estimate falls: the bed's weak publisher froze its subscribers 2-5 s at each onset); all
// layers silent together (a screen share between changes) stop nothing before layerIdle.
func TestSimulcastLayerStoppedUnderALiveOne(t *testing.T) {
	keyAt := []int{0, 5}
	layers, r, d := twoLayersRunning(t, keyAt)
	now := time.Now().UnixNano()
	gone := int64(800 * time.Millisecond)
	layers[1].f.mediaAt.Store(now - gone)
	layers[0].f.mediaAt.Store(now - gone)
	if l := d.sc.pick(now); l != 1 {
		t.Fatalf("both layers silent %v: picked %d, want the top (1)", time.Duration(gone), l)
	}
	// The top's last media is 800 ms old, while the lower layer's arrives now.
	run(layers[:1], 20, 31, keyAt)
	if l := d.sc.pick(time.Now().UnixNano()); l != 0 {
		t.Fatalf("top silent under a live lower layer: picked %d, want 0", l)
	}
	got := r.take()
	checkContinuous(t, got)
	if l := layersOf(got); !slices.Equal(l, []byte{1, 0}) {
		t.Fatalf("layers forwarded %v, want [1 0]", l)
	}
}

// TestSimulcastResendsAreNoLayer: a layer the publisher stopped encoding may still arrive as
// retransmissions of its last packets (our NACKs, answered on its SSRC). They are no video being
// sent: the subscriber goes to the layer still sent. At the bed's weak-publisher onset the resends
// of the stopped 540p layer kept it "sending" for 2-3 s, and its subscribers froze that much longer.
func TestSimulcastResendsAreNoLayer(t *testing.T) {
	keyAt := []int{0, 5}
	layers, r, _ := twoLayersRunning(t, keyAt)
	// The top layer's last new video is older than layerIdle; resends of it follow.
	layers[1].f.mediaAt.Add(-int64(2 * layerIdle))
	old := layers[1].seq - 20
	for fr := 20; fr < 31; fr++ {
		layers[1].resend(old + uint16(fr-20))
		layers[0].frame(fr%10 == keyAt[0])
	}
	got := r.take()
	i := slices.IndexFunc(got, func(p received) bool { return p.layer == 0 })
	if i < 0 {
		t.Fatalf("layers forwarded %v: the resends kept the stopped top layer, want a switch to 0", layersOf(got))
	}
	checkContinuous(t, got[i:])
	if l := layersOf(got[i:]); !slices.Equal(l, []byte{0}) {
		t.Fatalf("after the switch, layers forwarded %v, want [0]", l)
	}
}

// A recording's keyframe request asks for the layer its tap records. Chrome may send only the low
// layer of a simulcast stream for seconds (the top one starts late, or stops when short of
// bandwidth); a request for the top layer, which is not arriving, went nowhere, and a recording
// that lost a frame of the low layer stayed without a picture until a subscriber happened to ask
// for that layer's keyframe (the e2e COMPOSED late-joiner test's dark tile).
func TestRecordingKeyframeRequestAsksTheRecordedLayer(t *testing.T) {
	ls := newVP8Layers(2)
	var asked [2]int
	for i, l := range ls {
		l.f.kf.asked = func() { asked[i]++ }
	}
	p := &Publisher{layers: []*forwarder{ls[0].f, ls[1].f}, video: ls[1].f}
	var got []byte // the layer index of each packet recorded
	remove := p.AddTap("video", tapFunc(func(pkt *rtp.Packet) { got = append(got, pkt.Payload[len(pkt.Payload)-1]) }))
	if remove == nil {
		t.Fatal("no tap")
	}
	ls[0].frame(true)
	ls[0].frame(false)
	if len(got) == 0 || got[0] != 0 {
		t.Fatalf("the tap records the low layer, the only one arriving: got layers %v", got)
	}
	asked = [2]int{}
	p.RequestKeyframe()
	if asked[0] != 1 || asked[1] != 0 {
		t.Fatalf("a recording's keyframe request asked layers %v (low, top); want the low layer's, which it records", asked)
	}
	// Once the top layer arrives the tap moves to it, and its requests follow.
	ls[1].frame(true)
	ls[1].frame(false)
	asked = [2]int{}
	p.RequestKeyframe()
	if asked[0] != 0 || asked[1] != 1 {
		t.Fatalf("with the top layer recorded, a request asked layers %v (low, top)", asked)
	}
	// Without a tap (a recording that ended), the request asks the top layer, as before.
	remove()
	asked = [2]int{}
	p.RequestKeyframe()
	if asked[1] != 1 {
		t.Fatalf("without a tap, a request asked layers %v (low, top)", asked)
	}
}
