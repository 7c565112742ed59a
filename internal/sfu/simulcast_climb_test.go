package sfu

import (
	"testing"
	"time"
)

// TestSimulcastTCPResumedProbesAtItsKeyframe: a video resumed over TCP (a freed link) probes for
// the top as soon as the lowest layer's keyframe has been forwarded, not a fixed second after the
// resume, and shows the top within a probe of that keyframe; before the keyframe nothing is
// probed (there is nothing to pad after).
func TestSimulcastTCPResumedProbesAtItsKeyframe(t *testing.T) {
	c := newTCPChoice(t, 10e6)
	c.d.cc.pause.Store(true)
	for range 20 {
		c.step() // paused for 2 s: the layers' rates are known
	}
	c.d.cc.pause.Store(false)
	resumed, probes := c.now, c.sc.up.probes
	// The lowest layer is wanted, its keyframe awaited (write sets these at its first packet).
	c.sc.tgt.Store(0)
	c.step()
	c.step()
	if c.sc.up.running {
		t.Fatal("a probe before the resumed layer's keyframe")
	}
	// The keyframe arrives: write switches to it.
	c.sc.swaps.Add(1)
	c.sc.cur.Store(0)
	for c.sc.fitMax.Load() != 2 {
		if c.now.Sub(resumed) > 1200*time.Millisecond {
			t.Fatalf("layer %d %v after resuming on a free TCP link (its keyframe at 200 ms)", c.sc.fitMax.Load(), c.now.Sub(resumed))
		}
		c.step()
	}
	if n := c.sc.up.probes - probes; n != 1 {
		t.Fatalf("%d probes to the top after resuming, want 1", n)
	}
}

// TestSimulcastFreedLinkProbesOnToTheTop: a probe on a link whose ceiling was read at 300 kbit/s
// that finds the link freed (it carried more than the ceiling twice in a row) ramps on to the top
// layer (1.5 Mbit/s) without waiting at each further step: the top within 2.9 s of the probe's
// start, where stepping 1.4×, 1.96×, 2.74× the ceiling took 3.1 s.
func TestSimulcastFreedLinkProbesOnToTheTop(t *testing.T) {
	c := newLinkChoice(t, 300e3)
	c.sc.startLow()
	for i := range 100 {
		if i%10 == 0 {
			c.report(0, 20*time.Millisecond)
		}
		c.step()
		c.want(0, "a 300 kbit/s link")
	}
	if c.sc.ceil <= 0 {
		t.Fatal("no ceiling read in 10 s on a 300 kbit/s link")
	}
	c.link.rate = 10e6
	for i := 0; c.sc.up.running; i++ {
		if i == 50 {
			t.Fatal("the probe running when the link was freed ran 5 s")
		}
		c.step()
	}
	for i := 0; !c.sc.up.running; i++ {
		if i == 50 {
			t.Fatal("no probe in the 5 s after the link was freed")
		}
		c.step()
	}
	began := c.now
	for c.sc.fitMax.Load() != 2 {
		if c.now.Sub(began) > 2900*time.Millisecond {
			t.Fatalf("layer %d %v into the probe on a freed link (ceiling %.0f kbit/s, %d lifts)", c.sc.fitMax.Load(), c.now.Sub(began), c.sc.ceil/1000, c.sc.up.lifts)
		}
		c.step()
	}
	if c.link.lost != 0 {
		t.Fatalf("%d packets lost at the bottleneck", c.link.lost)
	}
}
