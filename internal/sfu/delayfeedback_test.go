package sfu

import (
	"encoding/binary"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// tccLink models a subscriber's link for the transport-wide feedback: a bottleneck of rate bps
// with a queue of at most maxQueue (a tc tbf), whose receiver reports every packet's arrival on
// its own clock.
type tccLink struct {
	tcc      *transportCC
	rec      *twcc.Recorder
	rate     float64
	maxQueue time.Duration
	free     time.Duration // when the bottleneck has sent everything queued (model time)
	late     time.Duration // the receiver stamps arrivals this much late (a stall)
	lost     int
	// dropEvery, when set, loses every dropEvery-th packet sent on the way, queue or not (random
	// loss, as iptables' statistic match does it in the bed, made deterministic).
	dropEvery int
	nsent     int
	dropped   int // packets lost at random (dropEvery)
	// cpu, when set, is a receiver short of CPU: it stamps a packet that reached it at arrival
	// only when it gets to it (see starved).
	cpu   *starved
	rfree time.Duration // when the starved receiver has stamped everything that reached it
	carry float64       // bytes owed to the next send: what a step's rate leaves over whole packets
	// reported: lost+dropped as of the last receiver report (report)
	reported int
}

// report is what a receiver report says of the link at model time at: the packets it lost (at
// the bottleneck or at random) since the last report, and a round trip through its queue.
func (l *tccLink) report(at time.Duration) (lost int, rtt time.Duration) {
	n := l.lost + l.dropped
	lost, l.reported = max(n-l.reported, 0), n
	return lost, 20*time.Millisecond + max(l.free-at, 0)
}

// starved is a receiver starved of CPU on a link with room to spare: every period it runs for
// stall nothing at all, then for slow at slowBps only, and otherwise keeps up (a loaded machine's
// browser, as in the weak-network bed in make test).
type starved struct {
	period, stall, slow time.Duration
	slowBps             float64
}

// stamp returns when a receiver starved as s, done with everything before free, stamps a packet
// of 1000 bytes that reached it at arrival.
func (s *starved) stamp(arrival, free time.Duration) time.Duration {
	t := max(arrival, free)
	in := t % s.period
	if in < s.stall {
		return t - in + s.stall
	}
	if in < s.stall+s.slow {
		return t + time.Duration(1000*8/s.slowBps*float64(time.Second))
	}
	return t
}

func newTCCLink(tcc *transportCC, bps float64) *tccLink {
	return &tccLink{tcc: tcc, rec: twcc.NewRecorder(1), rate: bps, maxQueue: 200 * time.Millisecond}
}

// send passes packets of 1000 bytes at bps, evenly over [at, at+dt) in model time, through the
// link, and returns the feedback the subscriber sends at the end.
func (l *tccLink) send(at, dt time.Duration, bps float64) *rtcp.TransportLayerCC {
	l.carry += bps / 8 * dt.Seconds()
	n := int(l.carry / 1000)
	l.carry -= float64(n) * 1000
	for i := range n {
		sent := at + time.Duration(i)*dt/time.Duration(n)
		seq := l.tcc.stamp(1000)
		// The send time as the model has it (stamp noted the real clock's).
		l.tcc.sent[uint32(l.tcc.seq.Load())%tccRing].at.Store(int64(sent))
		start := max(sent, l.free)
		if start-sent > l.maxQueue {
			l.lost++
			continue
		}
		if l.nsent++; l.dropEvery > 0 && l.nsent%l.dropEvery == 0 {
			l.dropped++
			continue
		}
		l.free = start + time.Duration(1000*8/l.rate*float64(time.Second))
		arrival := l.free
		if l.cpu != nil {
			l.rfree = l.cpu.stamp(arrival, l.rfree)
			arrival = l.rfree
		}
		// The subscriber's clock is hours off ours.
		l.rec.Record(1, seq, (arrival + l.late + 3*time.Hour).Microseconds())
	}
	if l.cpu != nil && (at+dt)%l.cpu.period < l.cpu.stall {
		return nil // the starved receiver sends its feedback when it runs again
	}
	for _, p := range l.rec.BuildFeedbackPacket() {
		if fb, ok := p.(*rtcp.TransportLayerCC); ok {
			return fb
		}
	}
	return nil
}

// TestTransportCCSignal: the feedback of a link that keeps up shows no queue and delivers what
// was sent; of a link sent twice its rate, a growing queue and the link's rate, within 5 % even
// where a span holds only a few packets (counting the span's first packet as delivered within it
// read a 150 kbit/s link as 200).
func TestTransportCCSignal(t *testing.T) {
	for _, tc := range []struct {
		name           string
		link, sent     float64
		queued         bool
		rateLo, rateHi float64
	}{
		{"fits", 1e6, 500e3, false, 450e3, 550e3},
		{"twice the link", 300e3, 600e3, true, 285e3, 315e3},
		{"twice a slow link", 150e3, 300e3, true, 142e3, 158e3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tcc := &transportCC{}
			l := newTCCLink(tcc, tc.link)
			now := time.Unix(1000, 0)
			for i := range 10 {
				at := time.Duration(i) * 100 * time.Millisecond
				fb := l.send(at, 100*time.Millisecond, tc.sent)
				now = now.Add(100 * time.Millisecond)
				tcc.onFeedback(fb, now)
			}
			sig := tcc.signal(now)
			if !sig.ok {
				t.Fatal("no signal after a second of feedback")
			}
			if got := sig.standing(downQueue); got != tc.queued {
				t.Fatalf("standing queue %v (latest %v, before %v), want %v", got, sig.queue, sig.prevQ, tc.queued)
			}
			if sig.rate < tc.rateLo || sig.rate > tc.rateHi {
				t.Fatalf("delivered %.0f bps, want %.0f–%.0f", sig.rate, tc.rateLo, tc.rateHi)
			}
			if tcc.signal(now.Add(time.Second)).ok {
				t.Fatal("a second-old feedback still counts")
			}
		})
	}
}

// linkChoice is layerChoice (simulcast_test.go) with a modelled link answering in transport-wide
// feedback: each step sends the current layer's rate plus the probe's padding through it.
type linkChoice struct {
	*layerChoice
	link *tccLink
	at   time.Duration
	// padShare, when set, is the share of the probe's padding that goes out (a publisher short
	// of CPU sends few frames for the padding to follow).
	padShare float64
}

func newLinkChoice(t *testing.T, bps float64) *linkChoice {
	c := newLayerChoice(t)
	c.sc.tcc = &transportCC{}
	return &linkChoice{layerChoice: c, link: newTCCLink(c.sc.tcc, bps)}
}

func (c *linkChoice) step() {
	pad := float64(c.sc.probeBps.Load()) * 8
	if c.padShare > 0 {
		pad *= c.padShare
	}
	sent := c.rungRate() + pad
	fb := c.link.send(c.at, 100*time.Millisecond, sent)
	c.at += 100 * time.Millisecond
	if fb != nil {
		c.sc.tcc.onFeedback(fb, c.now.Add(100*time.Millisecond))
	}
	c.advance(100*time.Millisecond, sent)
	sig := c.sc.tcc.signal(c.now)
	c.t.Logf("%v sent %.0f q %v/%v rate %.0f layer %d probe %v lost %d", c.at, sent/1000, sig.queue, sig.prevQ, sig.rate/1000, c.sc.fitMax.Load(), c.sc.up.running, c.link.lost)
}

// startProbe steps until a probe runs, with clean receiver reports.
func (c *linkChoice) startProbe() {
	c.t.Helper()
	for i := 0; !c.sc.up.running; i++ {
		if i > 100 {
			c.t.Fatal("no probe")
		}
		c.report(0, 20*time.Millisecond)
		c.step()
	}
}

// TestSimulcastProbeEndsOnDelay: with transport-wide feedback every probe aims at the top; one
// the link cannot carry ends when a queue stands, before the bottleneck has dropped anything; one
// that the link half carries takes the middle layer it covered; one the link carries passes
// without waiting for a receiver report, from the lowest layer to the top at once.
func TestSimulcastProbeEndsOnDelay(t *testing.T) {
	t.Run("too big", func(t *testing.T) {
		c := newLinkChoice(t, 400e3) // the lowest layer (150) fits, the middle one (500) does not
		c.sc.fitMax.Store(0)
		c.startProbe()
		if c.sc.up.target != 2 || !c.sc.up.delay {
			t.Fatalf("probe for layer %d, judged by delay %v, want the top by delay", c.sc.up.target, c.sc.up.delay)
		}
		for c.sc.up.running {
			c.step()
		}
		c.want(0, "a probe the link cannot carry")
		if c.sc.up.lastReason != "delay" || c.link.lost != 0 {
			t.Fatalf("probe ended by %q with %d packets lost at the bottleneck, want by delay with none", c.sc.up.lastReason, c.link.lost)
		}
	})
	t.Run("part of the way", func(t *testing.T) {
		c := newLinkChoice(t, 800e3) // the middle layer fits with its margin, the top does not
		c.sc.fitMax.Store(0)
		c.startProbe()
		if c.sc.up.target != 2 {
			t.Fatalf("probe for layer %d, want the top", c.sc.up.target)
		}
		for c.sc.up.running {
			c.step()
		}
		c.want(1, "a probe for the top on a link that carries the middle layer")
		if c.link.lost != 0 {
			t.Fatalf("%d packets lost at the bottleneck", c.link.lost)
		}
	})
	t.Run("fits", func(t *testing.T) {
		c := newLinkChoice(t, 3e6)
		c.sc.fitMax.Store(0)
		c.startProbe()
		c.d.cc.reportAt.Store(0) // no receiver report comes
		for c.sc.up.running {
			c.step()
		}
		c.want(2, "a probe the link carries")
		if ran := c.now.Sub(c.sc.up.start); ran > 2*time.Second {
			t.Fatalf("the probe ran %v", ran)
		}
	})
}

// TestSimulcastDownOnDelay: on the top layer over a link that carries only the middle one, a
// standing queue takes the subscriber down to what the link delivers before any receiver report
// or NACK says so.
func TestSimulcastDownOnDelay(t *testing.T) {
	c := newLinkChoice(t, 700e3)
	c.advance(time.Second, 1500e3) // the layers' rates are known
	c.d.cc.reportAt.Store(0)
	start := c.now
	for c.sc.fitMax.Load() == 2 {
		if c.now.Sub(start) > 2*time.Second {
			t.Fatal("still on the top layer after 2 s of a growing queue")
		}
		c.step()
	}
	c.want(1, "a queue standing in front of a 700 kbit/s link")
}

// TestTransportCCThroughPion: a subscriber that negotiates transport-cc (as browsers do when
// offered) gets every packet of its simulcast video numbered transport-wide, and its feedback
// reaches the layer choice: a fresh signal, no queue on loopback, the rate delivered.
func TestTransportCCThroughPion(t *testing.T) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.ConfigureTWCCSender(m, reg); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	var mu sync.Mutex
	var seqs []uint16
	pc.OnTrack(func(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		var id uint8
		for _, e := range r.GetParameters().HeaderExtensions {
			if e.URI == sdp.TransportCCURI {
				id = uint8(e.ID)
			}
		}
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if b := p.GetExtension(id); id != 0 && len(b) == 2 {
				mu.Lock()
				seqs = append(seqs, binary.BigEndian.Uint16(b))
				mu.Unlock()
			}
		}
	})
	_, _, video := simulcastSession(t, pc)
	tcc := video.track.tcc
	eventually(t, "transport-wide feedback", func() bool {
		sig := tcc.signal(time.Now())
		return tcc.feedbacks.Load() >= 5 && sig.ok && sig.rate > 0
	})
	if sig := tcc.signal(time.Now()); sig.standing(downQueue) {
		t.Fatalf("a queue of %v on loopback", sig.queue)
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[uint16]bool{}
	for _, s := range seqs {
		if seen[s] {
			t.Fatalf("transport-wide sequence number %d twice", s)
		}
		seen[s] = true
	}
	if len(seqs) < 10 {
		t.Fatalf("%d video packets carried a transport-wide sequence number", len(seqs))
	}
}

// TestSimulcastStallKeepsLayer: a receiver whose arrivals are stamped 300 ms late from some moment
// on (a browser starved of CPU, a route change) shows a standing queue, but its link delivers what
// it is sent: the layer stays.
func TestSimulcastStallKeepsLayer(t *testing.T) {
	c := newLinkChoice(t, 10e6)
	c.advance(time.Second, 1500e3)
	c.d.cc.reportAt.Store(0)
	for i := range 30 {
		if i == 4 {
			c.link.late = 300 * time.Millisecond
		}
		c.step()
	}
	if sig := c.sc.tcc.signal(c.now); !sig.standing(downQueue) {
		t.Fatalf("the model shows no queue (%v)", sig.queue)
	}
	c.want(2, "a stall")
}

// TestSimulcastNACKsWithoutBottleneck: NACKs of half the packets (what the publisher lost, or a
// starved receiver asking again) on a link that delivers everything it is sent keep the layer when
// the feedback shows it; without feedback they still take it down.
func TestSimulcastNACKsWithoutBottleneck(t *testing.T) {
	for _, feedback := range []bool{true, false} {
		c := newLinkChoice(t, 10e6)
		if !feedback {
			c.sc.tcc = nil
		}
		c.advance(time.Second, 1500e3)
		c.d.cc.reportAt.Store(0)
		for range 25 {
			c.d.nacks.Add(c.d.sent.Load()/2 - c.d.nacks.Load())
			if feedback {
				c.step()
			} else {
				c.advance(100*time.Millisecond, 1500e3)
			}
		}
		if feedback {
			c.want(2, "NACKs on a link that delivers what it is sent")
		} else if c.sc.fitMax.Load() == 2 {
			t.Fatal("NACKs of half the packets without feedback kept the top layer")
		}
	}
}

// TestSimulcastStarvedReceiverKeepsLayer: a subscriber whose browser is starved of CPU on a link
// with room to spare (the weak-network bed's unshaped subscribers at load 5-10) stamps its
// arrivals in bursts, late by up to some hundred milliseconds, and may ask again for packets it
// has: what its link delivers over a second is what it was sent, so it keeps the top layer, and
// nothing asks the publisher for keyframes. (The first landing of the delay signal took such
// subscribers down to the lowest layer and the publisher to 1.71 PLI/s.)
func TestSimulcastStarvedReceiverKeepsLayer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cpu   starved
		nacks float64 // sequence numbers asked for again per packet sent
	}{
		{"stalls of 300 ms each second", starved{period: time.Second, stall: 300 * time.Millisecond}, 0},
		{"stalls of 150 ms every 400 ms", starved{period: 400 * time.Millisecond, stall: 150 * time.Millisecond}, 0},
		{"slow for 700 ms every 2 s", starved{period: 2 * time.Second, slow: 700 * time.Millisecond, slowBps: 600e3}, 0},
		{"slow for 500 ms of each second", starved{period: time.Second, slow: 500 * time.Millisecond, slowBps: 700e3}, 0},
		{"stalls and slow spans", starved{period: 1500 * time.Millisecond, stall: 200 * time.Millisecond, slow: 600 * time.Millisecond, slowBps: 500e3}, 0},
		{"slow spans, asking again", starved{period: time.Second, slow: 500 * time.Millisecond, slowBps: 700e3}, 0.3},
		{"stalls, asking again", starved{period: time.Second, stall: 300 * time.Millisecond}, 0.5},
		{"stalls of 700 ms, no feedback meanwhile, asking again", starved{period: 1500 * time.Millisecond, stall: 700 * time.Millisecond}, 0.5},
		{"stalls, 15 % random loss", starved{period: time.Second, stall: 300 * time.Millisecond}, 0.15},
		{"slow spans, 15 % random loss", starved{period: time.Second, slow: 500 * time.Millisecond, slowBps: 700e3}, 0.15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newLinkChoice(t, 100e6)
			c.link.cpu = &tc.cpu
			if strings.Contains(tc.name, "random loss") {
				c.link.dropEvery = 7
			}
			c.advance(time.Second, 1500e3)
			c.d.cc.reportAt.Store(0)
			lowest := c.sc.fitMax.Load()
			for range 150 {
				if tc.nacks > 0 {
					c.d.nacks.Add(uint64(float64(c.d.sent.Load())*tc.nacks) - c.d.nacks.Load())
				}
				c.step()
				lowest = min(lowest, c.sc.fitMax.Load())
			}
			if lowest != 2 {
				t.Fatalf("a receiver short of CPU on a free link was taken down to layer %d", lowest)
			}
		})
	}
}

// TestSimulcastDeliveredIsAFloor: a subscription whose congestion state cut its estimate (a
// browser short of CPU reports loss and long round trips) while its transport-wide feedback shows
// the link delivering all it is sent keeps its layer (the bed at load 18 took an unshaped
// subscriber down to "151 kbit/s" of a link that had just delivered 511); a cut on a link that
// delivers 300 kbit/s takes it to the lowest layer.
func TestSimulcastDeliveredIsAFloor(t *testing.T) {
	for _, tc := range []struct {
		name string
		link float64
		want int32
	}{{"free link", 100e6, 2}, {"300 kbit/s", 300e3, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newLinkChoice(t, tc.link)
			c.advance(time.Second, 1500e3)
			c.d.cc.reportAt.Store(0)
			for range 10 { // the feedback runs
				c.step()
			}
			c.cut(150e3)
			for range 15 {
				c.step()
			}
			c.want(tc.want, "an estimate cut to 150 kbit/s")
		})
	}
}

// TestSimulcastProbesStopAtCeiling: on a link that carries the lowest layer but not the middle
// one, the probes after the first failed one pad only a little above what the link delivered at
// its limit, so they cost it a short queue and nothing is lost, and none takes a layer the link
// cannot carry; once the link is freed, the top layer comes within 5 s.
func TestSimulcastProbesStopAtCeiling(t *testing.T) {
	c := newLinkChoice(t, 400e3)
	c.sc.startLow()
	failed, peak := 0, 0.0
	for i := range 300 { // 30 s
		if i%10 == 0 {
			c.report(0, 20*time.Millisecond)
		}
		c.step()
		if failed > 0 {
			peak = max(peak, float64(c.rates[c.sc.fitMax.Load()])+float64(c.sc.probeBps.Load())*8)
		}
		failed = int(c.sc.up.probes - c.sc.up.passed)
		if c.sc.up.running {
			failed--
		}
		c.want(0, "a 400 kbit/s link")
	}
	if failed < 5 {
		t.Fatalf("%d probes failed in 30 s, want the link probed on", failed)
	}
	if peak > 1.3*400e3 || c.link.lost != 0 {
		t.Fatalf("probes after the first sent up to %.0f kbit/s into a 400 kbit/s link, %d packets lost", peak/1000, c.link.lost)
	}
	c.link.rate = 10e6
	freed := c.now
	for c.sc.fitMax.Load() < 2 {
		if c.now.Sub(freed) > 5*time.Second {
			t.Fatalf("layer %d 5 s after the link was freed", c.sc.fitMax.Load())
		}
		if int(c.now.Sub(freed)/(100*time.Millisecond))%10 == 0 {
			c.report(0, 20*time.Millisecond)
		}
		c.step()
	}
}

// TestSimulcastSqueezedToWhatFits: a link squeezed under the top layer to just over the middle
// layer's rate takes the subscriber to the lowest layer at once, not to the middle one, whose
// keyframes it could not carry (the bed went 540p, 270p, 135p: a keyframe and a second each).
func TestSimulcastSqueezedToWhatFits(t *testing.T) {
	c := newLinkChoice(t, 10e6)
	c.advance(time.Second, 1500e3)
	c.d.cc.reportAt.Store(0)
	for range 10 {
		c.step()
	}
	c.want(2, "a free link")
	c.link.rate = 540e3
	for i := 0; c.sc.fitMax.Load() == 2; i++ {
		if i > 50 {
			t.Fatal("still on the top layer 5 s after the squeeze")
		}
		c.step()
	}
	c.want(0, "a link squeezed to 540 kbit/s under layers of 150, 500 and 1500")
}

// TestSimulcastSqueezedDownPromptly: a free link squeezed under the top layer (the bed's
// "squeezed" phase: 540p into 300 or 600 kbit/s) takes the subscriber down within half a second
// of the squeeze: the bottleneck's drops beside a standing queue say it is full, without waiting
// the second of slower spans that tells a receiver short of CPU from a full link when nothing is
// lost (the bed came down 2.0-2.5 s after the squeeze; the model took 1 s before any keyframe).
func TestSimulcastSqueezedDownPromptly(t *testing.T) {
	for _, link := range []float64{300e3, 600e3} {
		c := newLinkChoice(t, 10e6)
		c.advance(time.Second, 1500e3)
		c.d.cc.reportAt.Store(0) // nor receiver reports, nor NACKs: the feedback alone
		for range 10 {
			c.step()
		}
		c.want(2, "a free link")
		c.link.rate = link
		squeezed := c.now
		for c.sc.fitMax.Load() == 2 {
			if c.now.Sub(squeezed) > 500*time.Millisecond {
				t.Fatalf("still on the top layer %v after a squeeze to %.0f kbit/s", c.now.Sub(squeezed), link/1000)
			}
			c.step()
		}
		c.want(0, "a link squeezed under the middle layer's rate with its margin")
	}
}

// TestSimulcastDownSettles: after heavy loss took the layer down, a receiver report of the old
// layer's loss (a report covers the second before it) takes it no further down; one of loss on
// the new layer, once that has been sent a while, does.
func TestSimulcastDownSettles(t *testing.T) {
	c := newLayerChoice(t)
	c.advance(time.Second, 1500e3)
	c.report(0.5, 50*time.Millisecond) // 750 of 1500 got through: the middle layer
	c.advance(100*time.Millisecond, 1500e3)
	c.want(1, "50 % loss at 1500 kbit/s")
	c.report(0.75, 50*time.Millisecond) // the second before, reported late: 375 of 1500
	c.advance(100*time.Millisecond, 500e3)
	c.want(1, "a report of the old layer's loss")
	for range 12 {
		c.advance(100*time.Millisecond, 500e3)
	}
	c.report(0.6, 50*time.Millisecond)
	c.advance(100*time.Millisecond, 500e3)
	c.want(0, "60 % loss on the middle layer")
}

// TestSimulcastTakesLayerAtItsPeak: a probe that fails takes a layer under its target only if
// the link delivered that layer's most lately with the margin, not its rate of a second
// in which the publisher, short of CPU, sent less (the bed took 270p at 121 kbit/s on a 300
// kbit/s link, and lost a second of picture when it was back at 230).
func TestSimulcastTakesLayerAtItsPeak(t *testing.T) {
	c := newLinkChoice(t, 450e3) // the middle layer: 500 kbit/s, 250 in the publisher's dip
	c.sc.fitMax.Store(0)
	for range 20 {
		c.step()
	}
	c.rates[1] = 250e3
	for c.sc.rate[1] > 300e3 || c.sc.up.running { // a second of the dip measured, no probe running
		c.step()
	}
	c.startProbe()
	for c.sc.up.running {
		c.step()
	}
	c.want(0, "a probe that ended on a queue, the middle layer sending half its rate for a second")
}

// TestSimulcastDownOnPeaks: on the way down a lower layer is taken on the most it sent lately,
// not on a second in which the publisher sent less (the bed's squeeze to 300 kbit/s took 270p on
// a second of 190 kbit/s, and froze 3.3 s when it was back at 268); and a link seen full (a queue
// standing, delivered slower than sent) keeps the current layer only if it delivers all of it (a
// 268 kbit/s layer stayed 7 s on a link delivering 230 of video).
func TestSimulcastDownOnPeaks(t *testing.T) {
	t.Run("squeezed in a dip", func(t *testing.T) {
		c := newLinkChoice(t, 10e6)
		c.advance(time.Second, 1500e3)
		c.d.cc.reportAt.Store(0)
		for range 20 {
			c.step()
		}
		c.rates[1] = 250e3 // the middle layer's dip: 250 of its 500 kbit/s
		for c.sc.rate[1] > 300e3 {
			c.step()
		}
		c.want(2, "a free link")
		c.link.rate = 450e3
		for range 15 {
			c.step()
		}
		c.want(0, "a squeeze to 450 kbit/s under the middle layer's 500, sent at 250 for a second")
	})
	t.Run("current layer not delivered whole", func(t *testing.T) {
		c := newLinkChoice(t, 440e3) // the middle layer (500) is 1.14 times the link
		c.sc.fitMax.Store(1)
		c.sc.up.next = c.now.Add(time.Hour)
		c.advance(time.Second, 500e3)
		c.d.cc.reportAt.Store(0)
		for range 30 {
			c.step()
		}
		c.want(0, "a queue standing in front of a link delivering 440 of the layer's 500 kbit/s")
	})
}

// TestSimulcastHalfRateRung: with temporal layers, a link squeezed under the middle layer but over
// its frames of TID 0 and 1 (with the margin a layer taken down needs) gets the middle layer at
// half its frame rate, not the lowest at its full rate (the bed at 300 kbit/s: 270p at 15 fps, not
// 135p at 30); freed, it climbs to the top layer's every frame. Not when half the layer's frames
// would be under 15 fps (a publisher short of CPU encoding 20 fps).
func TestSimulcastHalfRateRung(t *testing.T) {
	for _, tc := range []struct {
		temporal bool
		halfFPS  float64
	}{{true, 15}, {false, 0}, {true, 10}} {
		temporal := tc.temporal && tc.halfFPS >= 15
		c := newLinkChoice(t, 10e6)
		c.temporal, c.halfFPS = tc.temporal, tc.halfFPS
		c.advance(time.Second, 1500e3)
		c.d.cc.reportAt.Store(0)
		for range 10 {
			c.step()
		}
		c.want(2, "a free link")
		c.link.rate = 450e3 // the middle layer 500 kbit/s, 300 of it at half its frame rate
		for range 30 {
			c.step()
		}
		if !temporal {
			c.want(0, "a link squeezed under the middle layer, no temporal layers or too few frames")
			continue
		}
		c.want(rung{s: 1, t: 1}.packed(), "a link squeezed under the middle layer but over its half rate")
		c.link.rate = 10e6
		freed := c.now
		for c.sc.fitMax.Load() != 2 {
			if c.now.Sub(freed) > 10*time.Second {
				t.Fatalf("rung %+v 10 s after the link was freed", unpackRung(c.sc.fitMax.Load()))
			}
			c.step()
		}
	}
}

// TestSimulcastPausesOnlyWhenLowestDoesNotFit: on the lowest layer after congestion was seen, the
// subscription's congestion state may pause the video only if the transport-wide feedback does not
// show the link delivering all of that layer without a queue (an estimate cut by a probe's loss
// paused the bed's 300 kbit/s subscriber for 2-4 s under a 130 kbit/s layer).
func TestSimulcastPausesOnlyWhenLowestDoesNotFit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		link  float64
		pause bool
	}{{"fits", 400e3, false}, {"does not fit", 100e3, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newLinkChoice(t, tc.link)
			c.sc.fitMax.Store(0)
			c.sc.up.next = c.now.Add(time.Hour) // no probe: the lowest layer alone
			c.d.cc.reportAt.Store(0)
			for range 20 {
				c.step()
			}
			c.sc.congestedAt.Store(c.now.UnixNano())
			if got := c.sc.atLowest(c.now); got != tc.pause {
				t.Fatalf("may pause %v on a %.0f kbit/s link under a 150 kbit/s lowest layer, want %v", got, tc.link/1000, tc.pause)
			}
		})
	}
}

// TestSimulcastStaleCutIgnoredWithFeedback: an estimate cut by the congestion state (receiver
// reports of loss from before a link was freed) takes the layer down only if the transport-wide
// feedback shows a queue standing; a free link delivering all it is sent keeps its layer, even in
// a second in which the encoder sent less than the layer's rate (the bed: 270p -> 135p 2 s after
// the link was freed, on an estimate of 138 kbit/s against a 197 kbit/s layer).
func TestSimulcastStaleCutIgnoredWithFeedback(t *testing.T) {
	for _, tc := range []struct {
		name string
		link float64
		want int32
	}{{"free link", 10e6, 1}, {"queue standing", 180e3, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newLinkChoice(t, tc.link)
			c.sc.fitMax.Store(1)
			c.sc.up.next = c.now.Add(time.Hour)
			c.d.cc.reportAt.Store(0)
			for range 12 { // the layers' rates and the link's feedback are known
				c.step()
			}
			c.cut(150e3)
			for range 15 { // a quiet second: 250 of the layer's 500 kbit/s sent
				fb := c.link.send(c.at, 100*time.Millisecond, 250e3)
				c.at += 100 * time.Millisecond
				if fb != nil {
					c.sc.tcc.onFeedback(fb, c.now.Add(100*time.Millisecond))
				}
				c.now = c.now.Add(100 * time.Millisecond)
				for i, f := range c.fs {
					f.bytes.Add(c.rates[i] / 80) // the layers' rates as they were
					f.mediaAt.Store(c.now.UnixNano())
				}
				c.d.bytes.Add(250e3 / 80)
				c.d.sent.Add(3)
				c.sc.step(c.now, c.d.cc.est, 0)
			}
			c.want(tc.want, "an estimate cut to 150 kbit/s")
		})
	}
}

// TestSimulcastDelayProbeNACKsWaitShort: a probe judged by delay that NACKs end waits as long
// as one a queue ended (1 s, then 2 s), not 2 s, then 4 s: the bed freed a link just after two
// such probes and got its top layer 9.4 s later.
func TestSimulcastDelayProbeNACKsWaitShort(t *testing.T) {
	c := newLinkChoice(t, 10e6)
	c.sc.fitMax.Store(0)
	for range 2 {
		c.startProbe()
		if !c.sc.up.delay {
			t.Fatal("the probe is not judged by delay")
		}
		c.sc.probeNacks.Add(100) // the link lost what the probe sent
		c.step()
		if c.sc.up.running || c.sc.up.lastReason != "nacks" {
			t.Fatalf("probe running %v, ended by %q, want ended by its NACKs", c.sc.up.running, c.sc.up.lastReason)
		}
		if wait := c.sc.up.next.Sub(c.now); wait > upGapMaxDelay {
			t.Fatalf("the next probe waits %v after a delay-judged probe's NACKs", wait)
		}
		c.sc.up.next = c.now // on to the next probe at once
	}
}

// TestSimulcastProbePassesWithMargin: a probe judged by delay takes its target only if the link
// delivered the target's peak with a margin over most of a second, not on one span that read it
// (the bed at 300 kbit/s: a span of 308 kbit/s of video took 270p with no margin beside the
// audio, and froze it 1.7 s a minute). Here the publisher sends two layers (its top one dropped),
// the middle one at 280 kbit/s: a link delivering 285 kbit/s of video never gets it, one
// delivering 340 does within seconds.
func TestSimulcastProbePassesWithMargin(t *testing.T) {
	for _, tc := range []struct {
		link float64
		up   bool
	}{{285e3, false}, {340e3, true}} {
		c := newLinkChoice(t, tc.link)
		c.rates = []uint64{130e3, 280e3, 1500e3}
		c.sc.setMaxLayer(1) // the publisher stopped its top layer
		c.sc.startLow()
		var took time.Duration
		for i := range 200 { // 20 s
			if i%10 == 0 {
				c.report(0, 20*time.Millisecond)
			}
			c.step()
			if c.sc.fitMax.Load() > 0 {
				took = time.Duration(i+1) * 100 * time.Millisecond
				break
			}
		}
		if !tc.up && took > 0 {
			t.Fatalf("a link delivering %.0f kbit/s took a 280 kbit/s layer after %v (probes %d)", tc.link/1000, took, c.sc.up.probes)
		}
		if tc.up && (took == 0 || took > 5*time.Second) {
			t.Fatalf("a link delivering %.0f kbit/s: the 280 kbit/s layer after %v, want within 5 s", tc.link/1000, took)
		}
		if c.sc.up.probes < 2 && !tc.up {
			t.Fatalf("%d probes in 20 s", c.sc.up.probes)
		}
	}
}

// TestSimulcastTopTakenOnItsMean: a top layer whose rate swings (460 and 560 kbit/s in turn) on a
// link that delivers more than its mean with upTopGain's margin, but less than its peak with any,
// is taken from the probe that ends at the link's limit, and kept through its swings with nothing
// lost at the bottleneck (the bed at 600 kbit/s: a 540p layer of 450-530 kbit/s on a link that
// delivered 470-560 of video was never taken, and the subscriber saw 270p). A link under that
// mean (490 kbit/s) keeps the middle layer.
func TestSimulcastTopTakenOnItsMean(t *testing.T) {
	for _, tc := range []struct {
		link float64
		up   bool
	}{{545e3, true}, {490e3, false}} {
		c := newLinkChoice(t, tc.link)
		c.rates = []uint64{130e3, 280e3, 460e3}
		c.sc.startLow()
		took := time.Duration(0)
		for i := range 400 { // 40 s
			if i%10 == 0 {
				c.rates[2] = 1020e3 - c.rates[2] // 460, 560, 460, …
				c.report(0, 20*time.Millisecond)
			}
			c.step()
			if took == 0 && c.sc.fitMax.Load() == 2 {
				took = time.Duration(i+1) * 100 * time.Millisecond
				c.link.lost = 0 // what the probes' queues cost is not the layer's
			}
			if took > 0 && c.sc.fitMax.Load() != 2 {
				t.Fatalf("%.0f kbit/s link: the top layer taken after %v, given back after %v", tc.link/1000, took, time.Duration(i+1)*100*time.Millisecond-took)
			}
		}
		if tc.up && (took == 0 || took > 10*time.Second) {
			t.Fatalf("%.0f kbit/s link: the top layer (mean 510 kbit/s) after %v, want within 10 s (probes %d, last ended by %q)", tc.link/1000, took, c.sc.up.probes, c.sc.up.lastReason)
		}
		if !tc.up && took > 0 {
			t.Fatalf("%.0f kbit/s link: the top layer (mean 510 kbit/s) taken after %v", tc.link/1000, took)
		}
		if tc.up && c.link.lost != 0 {
			t.Fatalf("%.0f kbit/s link: %d packets lost at the bottleneck on the top layer", tc.link/1000, c.link.lost)
		}
		if !tc.up && c.sc.fitMax.Load() != 1 {
			t.Fatalf("%.0f kbit/s link: layer %d, want the middle one", tc.link/1000, c.sc.fitMax.Load())
		}
	}
}

// TestSimulcastTopJustStartedHasNoMean: a top layer that has sent for two seconds of the four
// its mean is taken over (the publisher just started it, or the subscriber just came) has no mean
// yet: the seconds of nothing read a 500 kbit/s layer as 182, and the make-test bed's 300 kbit/s
// subscriber was given it on a link that delivered 224 at its limit (frozen 1.7 s). Its peak
// stands for it until the window is full; then the mean is the mean.
func TestSimulcastTopJustStartedHasNoMean(t *testing.T) {
	c := newLayerChoice(t)
	c.rates = []uint64{130e3, 280e3, 0}
	c.sc.up.next = c.now.Add(time.Hour)
	for i := range 4 * peakSeconds {
		if i == 2*peakSeconds-2 {
			c.rates[2] = 500e3 // the top starts
		}
		c.advance(time.Second, 130e3)
		if got := c.sc.meanRate(2); c.rates[2] > 0 && got < 0.9*500e3 {
			t.Fatalf("%d s after the top started: its mean %.0f, want its rate (500 kbit/s) or more", i-(2*peakSeconds-2)+1, got)
		}
	}
	c.rates[2] = 400e3
	for range peakSeconds {
		c.advance(time.Second, 130e3)
	}
	if got := c.sc.meanRate(2); got < 0.95*400e3 || got > 1.05*400e3 {
		t.Fatalf("a full window at 400 kbit/s: mean %.0f", got)
	}
}

// TestSimulcastProbeNeedsDelivery: a probe judged by delay whose padding did not go out (the
// link delivered little more than the current layer) is not passed by clean receiver reports:
// a report with no loss says nothing of whether the link carries the target (the bed at 600
// kbit/s: 540p taken on a report with 287 kbit/s delivered, then frozen 3.1 s). With its
// padding out it passes as before.
func TestSimulcastProbeNeedsDelivery(t *testing.T) {
	for _, tc := range []struct {
		share float64
		up    bool
	}{{0.05, false}, {1, true}} {
		c := newLinkChoice(t, 600e3)
		c.rates = []uint64{150e3, 400e3, 450e3} // the top fits the link (upGain × 450 = 518)
		c.padShare = tc.share
		c.sc.fitMax.Store(1)
		c.sc.up.next = c.now.Add(time.Hour)
		for range 12 { // the layers' rates and the link's feedback are known
			c.step()
		}
		c.sc.up.next = c.now
		c.startProbe()
		if c.sc.up.target != 2 || !c.sc.up.delay {
			t.Fatalf("probe for layer %d, judged by delay %v", c.sc.up.target, c.sc.up.delay)
		}
		for i := 0; c.sc.up.running; i++ {
			if i%10 == 0 {
				c.report(0, 20*time.Millisecond)
			}
			c.step()
		}
		if got := c.sc.fitMax.Load() == 2; got != tc.up {
			t.Fatalf("padding %.0f %% out: top layer taken %v (ended by %q after %v), want %v", tc.share*100, got, c.sc.up.lastReason, c.now.Sub(c.sc.up.start), tc.up)
		}
	}
}

// TestSimulcastProbeMakesUpItsPadding: a probe whose layer sends under the rate its padding was
// sized on (a loaded publisher's swing) on a free link is sent too little to show the target's
// peak with the margin: its padding makes up the shortfall and it passes, rather than running
// out its time (an unshaped subscriber of the bed waited 5 s more for 540p). On a link that
// carries only the current layer the made-up padding still ends on a queue, nothing lost.
func TestSimulcastProbeMakesUpItsPadding(t *testing.T) {
	for _, tc := range []struct {
		link float64
		up   bool
	}{{100e6, true}, {560e3, false}} {
		c := newLinkChoice(t, tc.link)
		c.rates = []uint64{150e3, 500e3, 540e3} // the top's peak just over the middle's rate
		c.sc.fitMax.Store(1)
		c.sc.up.next = c.now.Add(time.Hour)
		for range 12 {
			c.step()
		}
		c.sc.up.next = c.now
		c.startProbe()
		c.rates[1] = 400e3 // the middle layer dips as the probe starts
		for c.sc.up.running {
			c.step()
		}
		if got := c.sc.fitMax.Load() == 2; got != tc.up {
			t.Fatalf("%.0f kbit/s link: top layer taken %v (ended by %q after %v), want %v", tc.link/1000, got, c.sc.up.lastReason, c.now.Sub(c.sc.up.start), tc.up)
		}
		if c.link.lost != 0 {
			t.Fatalf("%d packets lost at the bottleneck", c.link.lost)
		}
	}
}

// TestSimulcastLiftedProbeForgetsEarlierLoss: a probe capped at a shaped link's ceiling that the
// link, freed, lets past it is not ended by NACKs of packets lost before it was freed (the bed:
// a lifted probe failed on them 100 ms after the lift, and the top layer came 2 s later); the
// freed link gets its top layer from that probe.
func TestSimulcastLiftedProbeForgetsEarlierLoss(t *testing.T) {
	c := newLinkChoice(t, 400e3)
	c.sc.startLow()
	send := func() { // the packets a step sends, for the NACKs' sequence numbers
		c.sc.mu.Lock()
		c.sc.lastSeq += 10
		c.sc.mu.Unlock()
	}
	for i := 0; !(c.sc.up.running && c.sc.up.capped); i++ {
		if i > 300 {
			t.Fatal("no capped probe in 30 s")
		}
		if i%10 == 0 {
			c.report(0, 20*time.Millisecond)
		}
		c.step()
		send()
	}
	probes := c.sc.up.probes
	from := uint16(c.sc.probeFrom.Load() - 1)
	c.step()
	send()
	c.link.rate = 10e6
	for i := 0; c.sc.up.lifts == 0; i++ {
		if i > 20 || !c.sc.up.running {
			t.Fatalf("the capped probe was not lifted on the freed link (running %v, ended by %q)", c.sc.up.running, c.sc.up.lastReason)
		}
		c.step()
		send()
	}
	buf := make([]byte, 1500)
	for i := range 10 { // the NACKs of what the shaped link dropped, after the lift
		c.d.stored(from+uint16(i), buf)
	}
	for c.sc.up.running {
		c.step()
		send()
	}
	if c.sc.up.probes != probes || c.sc.fitMax.Load() != 2 {
		t.Fatalf("the lifted probe ended by %q, layer %d", c.sc.up.lastReason, c.sc.fitMax.Load())
	}
}
