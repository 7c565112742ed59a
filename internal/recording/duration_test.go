package recording

import (
	"context"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley/parley/internal/session"
)

// slowDisk delays every write once slow is set, as an overloaded disk or machine does.
type slowDisk struct {
	w    io.Writer
	slow *atomic.Bool
}

func (d slowDisk) Write(p []byte) (int, error) {
	if d.slow.Load() {
		time.Sleep(700 * time.Millisecond) // the slowness under test, not synchronisation
	}
	return d.w.Write(p)
}

// durationComposer notes the length it is asked to mix.
type durationComposer struct {
	mu  sync.Mutex
	got []time.Duration
}

func (c *durationComposer) Run(_ context.Context, j ComposeJob) error {
	c.mu.Lock()
	c.got = append(c.got, j.Duration)
	c.mu.Unlock()
	return os.WriteFile(j.Out, []byte("mixed"), 0o644)
}

func (c *durationComposer) Thumbnail(context.Context, string, string) error { return nil }

// A COMPOSED recording is as long as the time from start to the stop request: files that take
// long to close must not pad the mix with black and silence.
func TestComposedDurationEndsAtStop(t *testing.T) {
	m := makeMedia(t, 2)
	comp := &durationComposer{}
	h := newHarness(t, Config{AutostopTimeout: time.Hour, Composer: comp})
	var slow atomic.Bool
	h.cfg.createFile = func(path string) (*syncFile, error) {
		f, err := createSyncFile(path)
		if err == nil {
			f.w = slowDisk{w: f.w, slow: &slow}
		}
		return f, err
	}
	h.r = h.newRecorder()
	h.s.add("ses_T", 1, h.stream("str_CAM_Tttt_con_T", "con_T", true))
	props := session.RecordingProperties{Name: "grid", HasAudio: true, HasVideo: true, OutputMode: "COMPOSED",
		RecordingLayout: "BEST_FIT", Resolution: "320x240", FrameRate: 10}
	started, err := h.r.Start("ses_T", props)
	if err != nil {
		t.Fatal(err)
	}
	h.run()
	h.sources["str_CAM_Tttt_con_T"].feed(t, m, 0, time.Second)
	slow.Store(true)
	asked := time.Now()
	if _, err := h.r.Stop("ses_T"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(asked); took < 500*time.Millisecond {
		t.Fatalf("stop took %v: the slow disk did not slow the close, the test proves nothing", took)
	}
	waitUntil(t, "the mix", func() bool {
		comp.mu.Lock()
		defer comp.mu.Unlock()
		return len(comp.got) == 1
	})
	want := asked.Sub(started.CreatedAt)
	if got := comp.got[0]; got < want-50*time.Millisecond || got > want+200*time.Millisecond {
		t.Errorf("mixed %v, want the %v from start to the stop request", got, want)
	}
	if info, _ := h.r.Get("ses_T"); info.Duration > want.Seconds()+0.2 {
		t.Errorf("recording duration %.3f s, want %.3f s", info.Duration, want.Seconds())
	}
}
