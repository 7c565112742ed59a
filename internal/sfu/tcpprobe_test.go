package sfu

import (
	"testing"
	"time"
)

// fakeQueue is the counters of a send queue in front of a TCP path, moved by the test.
type fakeQueue struct{ media, pads, sent uint64 }

func (q *fakeQueue) MediaDropped() uint64   { return q.media }
func (q *fakeQueue) PaddingDropped() uint64 { return q.pads }
func (q *fakeQueue) SentBytes() uint64      { return q.sent }

// tcpChoice is layerChoice (simulcast_test.go) over a modelled TCP path of rate bps behind a send
// queue. The socket's buffers and a token bucket's burst take tcpBuffer bytes beyond what the link
// has carried. The current layer and 40 kbit/s of audio go first, and what of them exceeds the
// link and the buffers the queue drops; a probe's padding takes only the room they leave, the
// queue drops the rest a step later (when it has waited too long), and so does it a share
// (hiccup) of the padding on any link (a writer late by a scheduling hiccup). The subscriber
// asks again for every packet it missed (NACKs) and reports them as lost, as Chrome does over
// TCP too.
type tcpChoice struct {
	*layerChoice
	q       fakeQueue
	link    float64
	hiccup  float64
	buf     float64 // bytes the buffers hold
	pending uint64  // padding packets the queue drops at the next step
	lost    uint64  // packets the subscriber missed since its last report
	pkts    uint64  // packets sent since then
}

// tcpBuffer is what the socket's buffers and a token bucket's burst hold (bytes).
const tcpBuffer = 8 << 10

func newTCPChoice(t *testing.T, bps float64) *tcpChoice {
	c := &tcpChoice{layerChoice: newLayerChoice(t), link: bps}
	c.sc.q = &c.q
	c.sc.startLow()
	return c
}

// step is 100 ms of the model, then the layer choice's step; a receiver report every second.
func (c *tcpChoice) step() {
	const dt = 100 * time.Millisecond
	video := float64(c.rates[c.sc.fitMax.Load()])
	room := c.link/8*dt.Seconds() + tcpBuffer - c.buf
	media := (video + 40e3) / 8 * dt.Seconds()
	took := min(media, room)
	if media > took {
		drops := uint64((media-took)/1000) + 1
		c.q.media += drops
		c.lost += drops
	}
	room -= took
	c.pkts += uint64(media / 1000)
	c.q.pads += c.pending
	c.lost += c.pending
	c.d.nacks.Add(c.pending)
	if c.sc.probeFrom.Load() != 0 {
		c.sc.probeNacks.Add(c.pending)
	}
	c.pending = 0
	pad := float64(c.sc.probeBps.Load())
	if pad > 0 {
		bytes := pad * dt.Seconds()
		n := uint64(bytes/padMax) + 1
		went := min(bytes*(1-c.hiccup), room)
		took += went
		c.pending = uint64(float64(n) * (1 - went/bytes))
		c.d.padded.Add(n)
		c.d.padB.Add(uint64(bytes))
		c.pkts += n
	}
	c.q.sent += uint64(took)
	c.buf = max(c.buf+took-c.link/8*dt.Seconds(), 0)
	c.advance(dt, min(video+pad*8, c.link))
	if c.now.Sub(time.Unix(0, c.d.cc.reportAt.Load())) >= time.Second {
		c.report(float64(c.lost)/float64(max(c.pkts, 1)), 20*time.Millisecond)
		c.lost, c.pkts = 0, 0
	}
}

// TestSimulcastTCPProbeJudgedByQueue: over TCP a probe is judged by the send queue, not by the
// subscriber's NACKs and reports of the padding the queue dropped. A freed link (a few padding
// packets dropped on any link) gets its top layer at the first probe; a link that carries the
// middle layer gets that one from a failed probe for the top, and never the top, without the
// queue ever dropping media for it.
func TestSimulcastTCPProbeJudgedByQueue(t *testing.T) {
	t.Run("freed", func(t *testing.T) {
		c := newTCPChoice(t, 10e6)
		c.hiccup = 0.05
		for i := 0; c.sc.fitMax.Load() != 2; i++ {
			if i == 30 {
				t.Fatalf("layer %d after 3 s on a free TCP link (probes %d, last failed for %q)", c.sc.fitMax.Load(), c.sc.up.probes, c.sc.up.lastReason)
			}
			c.step()
		}
		if c.sc.up.probes != 1 {
			t.Fatalf("%d probes to reach the top of a free link, want 1", c.sc.up.probes)
		}
		c.q.sent = 0
		for range 30 {
			c.step() // and it stays there
		}
		c.want(2, "3 s more on the top layer of a free link")
	})
	t.Run("middle", func(t *testing.T) {
		c := newTCPChoice(t, 800e3) // 500 kbit/s and audio fit with the margin, 1500 does not
		for range 100 {
			c.step()
			if c.sc.fitMax.Load() == 2 {
				t.Fatal("took the top layer on an 800 kbit/s link")
			}
		}
		c.want(1, "10 s on an 800 kbit/s link")
		if c.q.media != 0 {
			t.Fatalf("the queue dropped %d media frames", c.q.media)
		}
		if c.sc.up.probes < 3 {
			t.Fatalf("%d probes in 10 s", c.sc.up.probes)
		}
	})
	t.Run("narrow", func(t *testing.T) {
		// The lowest layer and audio fit, nothing above does (the middle layer and audio are
		// 540 kbit/s); the buffers and a token bucket's burst take a probe's first few hundred
		// milliseconds at any rate.
		c := newTCPChoice(t, 450e3)
		for range 100 {
			c.step()
			if l := c.sc.fitMax.Load(); l != 0 {
				t.Fatalf("took layer %d on a 450 kbit/s link (probe %d)", l, c.sc.up.probes)
			}
		}
		if c.q.media != 0 {
			t.Fatalf("the queue dropped %d media frames", c.q.media)
		}
	})
}

// TestSimulcastTCPLowestLayerPausable: over TCP the lowest layer that does not quite fit shows as
// media the send queue drops, while the transport-wide feedback says most of it was delivered,
// without a standing queue (the queue dropped what waited, the link after it holds none): the
// subscription's congestion state may then pause it (atLowest), as it may when the feedback shows
// the layer short.
func TestSimulcastTCPLowestLayerPausable(t *testing.T) {
	c := newLinkChoice(t, 0.95*150e3) // the lowest layer is 150 kbit/s
	c.link.maxQueue = 60 * time.Millisecond
	q := &fakeQueue{}
	c.sc.q = q
	c.sc.fitMax.Store(0)
	c.d.cc.reportAt.Store(0)
	for range 30 {
		q.media += 2
		q.sent += 150e3 / 8 / 10
		c.step()
	}
	if sig := c.sc.tcc.signal(c.now); !sig.ok || sig.recentRate < tccSlower*c.sc.rate[0] || sig.standing(downQueue) {
		t.Fatalf("the model shows %.0f of %.0f bps delivered, queue %v: want most of it, no standing queue", sig.recentRate, c.sc.rate[0], sig.queue)
	}
	if !c.sc.atLowest(c.now) {
		t.Fatal("the lowest layer may not be paused while the send queue drops it")
	}
}

// TestSimulcastTCPProbeNeedsPadding: a probe during which the publisher sent (nearly) no frames to
// pad after showed nothing of the link, whatever the queue dropped: the layer stays.
func TestSimulcastTCPProbeNeedsPadding(t *testing.T) {
	c := newTCPChoice(t, 10e6)
	c.advance(time.Second, 150e3)
	for i := 0; !c.sc.up.running; i++ {
		if i == 30 {
			t.Fatal("no probe")
		}
		c.advance(100*time.Millisecond, 150e3)
	}
	for c.sc.up.running {
		c.advance(100*time.Millisecond, 150e3) // no padding goes out: the model sends none
	}
	c.want(0, "a probe that padded nothing")
}

// TestSimulcastTCPResumedProbesForTheTop: a video resumed over TCP (a freed link) probes for the
// top layer first, a second after it resumed, and gets it at that first probe.
func TestSimulcastTCPResumedProbesForTheTop(t *testing.T) {
	c := newTCPChoice(t, 10e6)
	c.sc.up.toTop = false // as a failed probe for the top leaves it
	c.d.cc.pause.Store(true)
	c.step()
	c.d.cc.pause.Store(false)
	probes := c.sc.up.probes
	for i := 0; c.sc.fitMax.Load() != 2; i++ {
		if i == 30 {
			t.Fatalf("layer %d 3 s after resuming on a free TCP link", c.sc.fitMax.Load())
		}
		c.step()
	}
	if n := c.sc.up.probes - probes; n != 1 {
		t.Fatalf("%d probes to the top after resuming, want 1", n)
	}
}

// TestSimulcastProbeEndsWhenTCPPathShows: a probe begun before the subscriber's TCP path was
// known (judged by reports and NACKs, which say nothing there) ends when the send queue shows up;
// the next one is the queue's to judge.
func TestSimulcastProbeEndsWhenTCPPathShows(t *testing.T) {
	c := newTCPChoice(t, 150e3)
	c.sc.q = nil
	for i := 0; !c.sc.up.running; i++ {
		if i == 30 {
			t.Fatal("no probe")
		}
		c.report(0, 20*time.Millisecond)
		c.advance(100*time.Millisecond, 150e3)
	}
	c.sc.q = &c.q
	c.report(0, 20*time.Millisecond) // a clean report would pass it
	c.advance(2*time.Second, 150e3)
	c.want(0, "a probe begun before the TCP path showed")
	if c.sc.up.lastReason != "path changed" {
		t.Fatalf("the probe ended for %q", c.sc.up.lastReason)
	}
}
