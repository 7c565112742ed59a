package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// seqSink records the sequence numbers a down-track writes (here: its NACK answers).
type seqSink struct{ seqs []uint16 }

func (w *seqSink) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.seqs = append(w.seqs, h.SequenceNumber)
	return len(payload), nil
}

func (w *seqSink) Write(b []byte) (int, error) { return len(b), nil }

// repairLink models a subscription's video over TCP in steps of 5 ms: the publisher's frames (two
// packets each, 30 a second) go into a send queue that drains at the link's rate and drops a
// packet that waited over 300 ms (sendq's MaxAge); what leaves it reaches the subscriber oneWay
// later (the link's buffers). The subscriber asks for every gap it sees, again every round trip
// (up to ten times, as Chrome does); the NACKs reach the down-track oneWay later, and what it
// sends again queues like the rest. A frame is shown once its packets and the frame before it
// are there.
type repairLink struct {
	d        *downTrack
	sink     seqSink
	now      time.Time
	linkBps  float64
	oneWay   time.Duration
	q        []repairPkt
	credit   float64       // bytes the link may still send in this step
	lastWait time.Duration // how long the latest packet written waited in the queue
	drops    uint64        // packets the queue dropped
	// understate: the queue reports no wait (the writer's latest batch can be a fresh one
	// while older video still waits behind the in-flight bound).
	understate bool
	got        map[uint16]time.Duration
	asked      map[uint16]int
	askedAt    map[uint16]time.Duration
	inFlight   []repairPkt // sent, not yet arrived (at = arrival)
	nacks      []repairNACK
	captured   []time.Duration // per frame: when it reached the server (captureLead after its capture)
	shown      []time.Duration // per frame: when it was shown (0: not yet)
	lost       map[uint16]bool // packets lost before the queue (TURN's UDP hop to the relay)
	start      time.Time
	next       uint16 // the publisher's next sequence number
}

type repairPkt struct {
	seq uint16
	at  time.Duration
}

type repairNACK struct {
	seq uint16
	at  time.Duration // when it reaches the server
}

const repairPktSize = 300

func newRepairLink(t *testing.T, linkBps float64, oneWay time.Duration) *repairLink {
	f := newForwarder(webrtc.RTPCodecTypeVideo, webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, nil)
	tr, err := newBoundTrack(f.codec, "video", "s")
	if err != nil {
		t.Fatal(err)
	}
	l := &repairLink{now: t0, start: t0, linkBps: linkBps, oneWay: oneWay, got: map[uint16]time.Duration{}, asked: map[uint16]int{},
		askedAt: map[uint16]time.Duration{}, lost: map[uint16]bool{}}
	tr.out.Store(&binding{id: "b", ssrc: 1, pt: 96, stream: &l.sink})
	l.d = &downTrack{fwd: f, track: tr, cc: &congestion{}, queueWait: func() (time.Duration, uint64, bool) {
		if l.understate {
			return 0, l.drops, true
		}
		return l.lastWait, l.drops, true
	}}
	l.d.cc.rtxBudget.Store(1 << 30)
	return l
}

func (l *repairLink) clock() time.Duration { return l.now.Sub(l.start) }

// run plays d of the model.
func (l *repairLink) run(d time.Duration) {
	for end := l.clock() + d; l.clock() < end; {
		l.step()
	}
}

func (l *repairLink) step() {
	l.now = l.now.Add(5 * time.Millisecond)
	now := l.clock()
	if now%(100*time.Millisecond/3) < 5*time.Millisecond { // a frame of the publisher
		l.captured = append(l.captured, now)
		l.shown = append(l.shown, 0)
		for range 2 {
			raw, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: l.next}, Payload: make([]byte, repairPktSize-12)}).Marshal()
			l.d.fwd.ring.put(l.next, raw, l.now.UnixNano())
			if !l.lost[l.next] {
				l.q = append(l.q, repairPkt{l.next, now})
			}
			l.next++
		}
	}
	// The NACKs that reach the server now are answered; what it sends again queues.
	for len(l.nacks) > 0 && l.nacks[0].at <= now {
		n := len(l.sink.seqs)
		l.d.retransmit(&rtcp.TransportLayerNack{Nacks: []rtcp.NackPair{{PacketID: l.nacks[0].seq}}}, l.now)
		for _, s := range l.sink.seqs[n:] {
			l.q = append(l.q, repairPkt{s, now})
		}
		l.nacks = l.nacks[1:]
	}
	// The queue: stale packets dropped, then what the link takes.
	l.credit = min(l.credit+l.linkBps/8*0.005, 2*repairPktSize)
	for len(l.q) > 0 {
		p := l.q[0]
		if now-p.at > 300*time.Millisecond {
			l.q = l.q[1:]
			l.drops++
			continue
		}
		if l.credit < repairPktSize {
			break
		}
		l.credit -= repairPktSize
		l.q = l.q[1:]
		l.lastWait = now - p.at
		l.inFlight = append(l.inFlight, repairPkt{p.seq, now + l.oneWay})
	}
	// The subscriber.
	for len(l.inFlight) > 0 && l.inFlight[0].at <= now {
		p := l.inFlight[0]
		l.inFlight = l.inFlight[1:]
		if _, ok := l.got[p.seq]; !ok {
			l.got[p.seq] = now
		}
		for s := uint16(0); s < p.seq; s++ {
			if _, ok := l.got[s]; !ok && l.asked[s] == 0 {
				l.ask(s, now)
			}
		}
	}
	for s, at := range l.askedAt {
		if _, ok := l.got[s]; !ok && l.asked[s] < 10 && now-at >= 2*l.oneWay {
			l.ask(s, now)
		}
	}
	for i := range l.shown {
		a, b := l.got[uint16(2*i)], l.got[uint16(2*i+1)]
		if l.shown[i] != 0 || a == 0 || b == 0 || i > 0 && l.shown[i-1] == 0 {
			continue
		}
		l.shown[i] = now
	}
}

func (l *repairLink) ask(s uint16, now time.Duration) {
	l.asked[s]++
	l.askedAt[s] = now
	l.nacks = append(l.nacks, repairNACK{s, now + l.oneWay})
}

// captureLead is how long before a frame reaches the server it was captured (the publisher's
// encoder, pacer and uplink).
const captureLead = 80 * time.Millisecond

// latest returns the most a frame shown was late (capture to display), and how many were shown.
func (l *repairLink) latest() (late time.Duration, shown int) {
	for i, at := range l.shown {
		if at != 0 {
			late = max(late, at-l.captured[i]+captureLead)
			shown++
		}
	}
	return late, shown
}

// TestTCPRepairsNeverShowAFrameLate: over TCP the only loss is what the send queue dropped, a
// packet that waited there 300 ms already. On a link a little short of the video (the bed's
// 150 kbit/s TCP subscribers in the seconds before their video paused), the subscriber asks for it
// once the next packet arrives, and a copy sent then waits out the standing queue again: the
// frames it completes were shown over a second late. Such copies are not sent; a link with room
// still has a packet lost on the way repaired, its frame shown.
func TestTCPRepairsNeverShowAFrameLate(t *testing.T) {
	for _, c := range []struct {
		oneWay     time.Duration
		understate bool
	}{{150 * time.Millisecond, false}, {120 * time.Millisecond, true}} {
		understate := c.understate
		short := newRepairLink(t, 120e3, c.oneWay) // the video is 144 kbit/s
		short.understate = understate
		short.run(3 * time.Second)
		late, shown := short.latest()
		if late >= time.Second {
			t.Fatalf("a frame shown %v late on a link short of the video, the queue's wait understated %v (%d frames shown, %d packets sent again)",
				late, understate, shown, short.d.resent.Load())
		}
		if shown < 20 {
			t.Fatalf("%d frames shown in 3 s", shown)
		}
	}

	room := newRepairLink(t, 400e3, 150*time.Millisecond)
	room.lost[31] = true // a packet of frame 15
	room.run(2 * time.Second)
	for i, at := range room.shown[:len(room.shown)-10] { // all but the last 330 ms' frames
		if at == 0 {
			t.Fatalf("a lost packet on a link with room: frame %d never shown, %d packets sent again", i, room.d.resent.Load())
		}
	}
	if late, _ := room.latest(); late >= time.Second {
		t.Fatalf("a frame shown %v late on a link with room", late)
	}
}
