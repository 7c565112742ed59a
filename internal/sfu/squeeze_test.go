package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// tbfStream is a subscriber's link at the packet level, as the weak-network bed shapes it (tc
// tbf): a bottleneck of rate bps with a drop-tail queue of limit bytes, on a model clock the test
// moves (now). It records when each packet it let through arrives, and which it dropped. The
// forwarders write to it on the test's goroutine.
type tbfStream struct {
	now      time.Duration
	rate     float64 // bps
	limit    float64 // bytes
	backlog  float64 // bytes queued as of last
	last     time.Duration
	arrived  []tbfPacket
	dropped  []tbfPacket
	inFlight []tbfPacket // let through, arriving later than now
}

type tbfPacket struct {
	seq   uint16
	layer byte
	key   bool
	size  int
	sent  time.Duration
	at    time.Duration // arrival (0 for a dropped one)
}

func (l *tbfStream) WriteRTP(h *rtp.Header, b []byte) (int, error) {
	if l.now > l.last {
		l.backlog = max(0, l.backlog-l.rate/8*(l.now-l.last).Seconds())
		l.last = l.now
	}
	p := tbfPacket{seq: h.SequenceNumber, size: 12 + len(b) + int(h.PaddingSize), sent: l.now}
	if len(b) > 0 {
		p.layer, p.key = b[len(b)-1], isKeyframeStart(codecVP8, b)
	}
	if l.backlog+float64(p.size) > l.limit {
		l.dropped = append(l.dropped, p)
		return len(b), nil
	}
	l.backlog += float64(p.size)
	p.at = l.now + time.Duration(l.backlog*8/l.rate*float64(time.Second))
	l.inFlight = append(l.inFlight, p)
	return len(b), nil
}

func (l *tbfStream) Write(b []byte) (int, error) { return len(b), nil }

// deliver moves what has arrived by now out of flight, and returns the sequence numbers the
// subscriber now sees missing (behind one that arrived), each asked for again at most every
// 300 ms, as a browser NACKs.
func (l *tbfStream) deliver(asked map[uint16]time.Duration) []uint16 {
	var keep []tbfPacket
	for _, p := range l.inFlight {
		if p.at <= l.now {
			l.arrived = append(l.arrived, p)
		} else {
			keep = append(keep, p)
		}
	}
	l.inFlight = keep
	if len(l.arrived) == 0 {
		return nil
	}
	got := map[uint16]bool{}
	top := l.arrived[0].seq
	for _, p := range l.arrived {
		got[p.seq] = true
		if int16(p.seq-top) > 0 {
			top = p.seq
		}
	}
	var missing []uint16
	for s := top - 200; s != top; s++ {
		if got[s] || int16(s-l.arrived[0].seq) < 0 {
			continue
		}
		if at, ok := asked[s]; !ok || l.now-at >= 300*time.Millisecond {
			asked[s] = l.now
			missing = append(missing, s)
		}
	}
	return missing
}

// TestSimulcastSqueezedKeyframeArrivesWhole: a subscriber on the top layer (480 kbit/s) whose
// link is squeezed to 260 kbit/s of video with 300 ms of queue (the bed's 300 kbit/s squeeze) is
// taken down to the lowest layer when the queue is full, as the layer choice does on the
// transport-wide feedback. From the down on the link carries nothing of the top layer, neither
// its frames nor repairs of what it lost (the decoder starts over at the new layer's keyframe, and
// those repairs would fill the queue in front of it), and the lowest layer's keyframe arrives
// whole, within 450 ms. (Asked for at once, it reached the link 33 ms after the down into a full
// queue that dropped it; the bed's picture stayed frozen 1.3-4 s while it was repaired.)
func TestSimulcastSqueezedKeyframeArrivesWhole(t *testing.T) {
	layers := newVP8Layers(3)
	layers[0].size, layers[0].keySize = 240, 1200 // 125 kbit/s; a 2.4 kB keyframe
	layers[1].size, layers[1].keySize = 500, 1200
	layers[2].size, layers[2].keySize = 1000, 1200 // 480 kbit/s
	link := &tbfStream{rate: 100e6, limit: 1e6}
	r := &recorder{}
	d := simulcastSubscriber(t, layers, r)
	d.track.out.Load().stream = link
	base := time.Now()
	const frame = 33 * time.Millisecond
	asked := map[uint16]time.Duration{}
	lastReq := [3]time.Time{}
	key := [3]bool{true, true, true}
	var downAt time.Duration
	nextStep := time.Duration(0)
	for downAt == 0 && link.now < 3*time.Second || downAt != 0 && link.now < downAt+time.Second {
		if link.now >= time.Second && link.rate > 1e6 { // the squeeze
			link.rate, link.limit = 260e3, 260e3/8*0.3
		}
		for j, l := range layers {
			l.frame(key[j])
			key[j] = false
		}
		// The publisher answers a keyframe request with its next frame.
		for j, l := range layers {
			l.f.kf.mu.Lock()
			if at := l.f.kf.lim.last; at != lastReq[j] {
				lastReq[j], key[j] = at, true
			}
			l.f.kf.mu.Unlock()
		}
		link.now += frame
		for _, s := range link.deliver(asked) {
			d.retransmit(&rtcp.TransportLayerNack{Nacks: []rtcp.NackPair{{PacketID: s}}}, time.Now())
		}
		if link.now >= nextStep { // the layer choice's step, every 100 ms
			nextStep += 100 * time.Millisecond
			now := base.Add(link.now)
			queue := time.Duration(link.backlog * 8 / link.rate * float64(time.Second))
			full := link.backlog > 0.8*link.limit
			d.sc.releaseHold(now)
			if downAt == 0 && full {
				// What step does when the feedback shows the link full.
				downAt = link.now
				d.sc.downAt = now
				d.sc.congestedDown(0, 2, now, d.sc.downHold(delaySignal{ok: true, queue: queue}))
			}
		}
	}
	if downAt == 0 {
		t.Fatal("the squeezed link's queue never filled")
	}
	all := append(append([]tbfPacket(nil), link.arrived...), link.dropped...)
	for _, p := range all {
		if p.layer == 2 && p.sent > downAt {
			t.Fatalf("the top layer's packet %d went onto the link %v after the down (%v after the squeeze)", p.seq, p.sent-downAt, downAt-time.Second)
		}
	}
	var keySeq uint16
	var keySent time.Duration
	for _, p := range all {
		if p.layer == 0 && p.key && p.sent > downAt && (keySent == 0 || p.sent < keySent) {
			keySeq, keySent = p.seq, p.sent
		}
	}
	if keySent == 0 {
		t.Fatal("no keyframe of the lowest layer after the down")
	}
	for _, p := range link.dropped {
		if p.seq == keySeq || p.seq == keySeq+1 {
			t.Fatalf("the lowest layer's keyframe, sent %v after the down, lost its packet %d in the link's queue", keySent-downAt, p.seq)
		}
	}
	for _, p := range link.arrived {
		if p.seq == keySeq+1 {
			t.Logf("down %v after the squeeze; the lowest layer's keyframe sent %v after it, arrived %v after it", downAt-time.Second, keySent-downAt, p.at-downAt)
			if p.at-downAt > 450*time.Millisecond {
				t.Fatalf("the lowest layer's keyframe arrived %v after the down", p.at-downAt)
			}
		}
	}
}
