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
