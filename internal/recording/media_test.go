package recording

import (
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/parley/parley/internal/recording/testmedia"
	"github.com/parley/parley/internal/sfu"
)

type testMedia struct{ testmedia.Media }

// makeMedia returns real media of at least seconds (10 at most), shared by the package's tests.
func makeMedia(t testing.TB, seconds int) testMedia {
	t.Helper()
	if tool := testmedia.Missing(); tool != "" {
		t.Skipf("%s not installed (scripts/install-test-deps.sh installs it)", tool)
	}
	if seconds > 10 {
		t.Fatalf("makeMedia: %d s asked, 10 at most", seconds)
	}
	m, err := testmedia.Shared()
	if err != nil {
		t.Fatal(err)
	}
	return testMedia{m}
}

// mapped returns a copy of the media with video and audio applied to a clone of each packet.
func (m testMedia) mapped(video, audio func(*rtp.Packet)) testMedia {
	var out testMedia
	for _, f := range m.Video {
		nf := make([]*rtp.Packet, len(f))
		for i, p := range f {
			nf[i] = p.Clone()
			video(nf[i])
		}
		out.Video = append(out.Video, nf)
	}
	for _, p := range m.Audio {
		c := p.Clone()
		audio(c)
		out.Audio = append(out.Audio, c)
	}
	return out
}

// feed sends the media through the taps in timestamp order, waiting (on the queue's length, not on
// time) whenever the writer is behind, so nothing is dropped.
func (m testMedia) feed(w *streamWriter, from, to time.Duration) {
	m.feedTaps(&tap{w: w, kind: kindVideo}, &tap{w: w, kind: kindAudio}, w, from, to)
}

// feedTaps sends media to the taps. With a writer that has a test clock, packets arrive at their
// media time, as at a camera's pace, however fast the test feeds them.
func (m testMedia) feedTaps(vt, at sfu.Tap, w *streamWriter, from, to time.Duration) {
	vi, ai := int(from/testmedia.FrameInterval), int(from/testmedia.AudioInterval)
	for {
		vAt := time.Duration(vi) * testmedia.FrameInterval
		aAt := time.Duration(ai) * testmedia.AudioInterval
		vMore, aMore := vi < len(m.Video) && vAt < to, ai < len(m.Audio) && aAt < to
		if !vMore && !aMore {
			return
		}
		for len(w.in) > queueLen/2 {
			time.Sleep(time.Millisecond) // back-pressure for the test only: the SFU never waits
		}
		if vMore && (vAt <= aAt || !aMore) {
			if w.testClock != nil {
				w.testClock.Store(int64(vAt))
			}
			for _, p := range m.Video[vi] {
				vt.WriteRTP(p)
			}
			vi++
		} else {
			if w.testClock != nil {
				w.testClock.Store(int64(aAt))
			}
			at.WriteRTP(m.Audio[ai])
			ai++
		}
	}
}

func ffprobe(t testing.TB, path string) testmedia.Probe {
	t.Helper()
	p, err := testmedia.ProbeFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
