package recording

import (
	"context"
	"io"
	"os"
	"slices"
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
	waitUntil(t, "the mix", func() bool {
		comp.mu.Lock()
		defer comp.mu.Unlock()
		return len(comp.got) == 1
	})
	if took := time.Since(asked); took < 500*time.Millisecond {
		t.Fatalf("the mix began %v after the stop: the slow disk did not slow the close, the test proves nothing", took)
	}
	want := asked.Sub(started.CreatedAt)
	if got := comp.got[0]; got < want-50*time.Millisecond || got > want+200*time.Millisecond {
		t.Errorf("mixed %v, want the %v from start to the stop request", got, want)
	}
	if info, _ := h.r.Get("ses_T"); info.Duration > want.Seconds()+0.2 {
		t.Errorf("recording duration %.3f s, want %.3f s", info.Duration, want.Seconds())
	}
}

// heldDisk blocks every write once held is set, until release is closed: a disk, or a writer
// goroutine, that cannot keep up.
type heldDisk struct {
	w       io.Writer
	held    *atomic.Bool
	blocked *atomic.Int32 // writes waiting
	release <-chan struct{}
}

func (d heldDisk) Write(p []byte) (int, error) {
	if d.held.Load() {
		d.blocked.Add(1)
		<-d.release
	}
	return d.w.Write(p)
}

// Stop answers at once, whatever the machine's load: a COMPOSED recording whose file cannot be
// written to is "stopped" (and the model told so) while that file is still open and nothing is
// mixed yet; "ready" comes later, through the status the model hands to recordingStatusChanged
// and webhooks.
func TestStopAnswersBeforeTheFilesAreClosed(t *testing.T) {
	m := makeMedia(t, 2)
	comp := &durationComposer{}
	h := newHarness(t, Config{AutostopTimeout: time.Hour, Composer: comp})
	var held atomic.Bool
	var blocked atomic.Int32
	release := make(chan struct{})
	h.cfg.createFile = func(path string) (*syncFile, error) {
		f, err := createSyncFile(path)
		if err == nil {
			f.w = heldDisk{w: f.w, held: &held, blocked: &blocked, release: release}
		}
		return f, err
	}
	h.r = h.newRecorder()
	h.s.add("ses_H", 1, h.stream("str_CAM_Hhhh_con_H", "con_H", true))
	props := session.RecordingProperties{Name: "grid", HasAudio: true, HasVideo: true, OutputMode: "COMPOSED",
		RecordingLayout: "BEST_FIT", Resolution: "320x240", FrameRate: 10}
	if _, err := h.r.Start("ses_H", props); err != nil {
		t.Fatal(err)
	}
	h.run()
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the recorder's own cleanup
	h.sources["str_CAM_Hhhh_con_H"].feed(t, m, 0, time.Second)
	held.Store(true)
	h.sources["str_CAM_Hhhh_con_H"].feed(t, m, time.Second, 2*time.Second)
	waitUntil(t, "the writer to be stuck in a write", func() bool { return blocked.Load() > 0 })

	answered := make(chan session.RecordingInfo, 1)
	go func() {
		info, err := h.r.Stop("ses_H")
		if err != nil {
			t.Error(err)
		}
		answered <- info
	}()
	var info session.RecordingInfo
	waitUntil(t, "stop to answer while the file is still being written", func() bool {
		select {
		case info = <-answered:
			return true
		default:
			return false
		}
	})
	if info.Status != session.RecordingStopped {
		t.Errorf("stop answered %q, want stopped", info.Status)
	}
	if got := h.s.seen(); !slices.Equal(got, []string{"started", "stopped"}) {
		t.Errorf("statuses told to the model when stop answered: %v, want started, stopped", got)
	}
	comp.mu.Lock()
	mixed := len(comp.got)
	comp.mu.Unlock()
	if mixed != 0 || blocked.Load() == 0 {
		t.Fatalf("at stop's answer: %d mixes begun, %d writes waiting; want none begun and the write still waiting", mixed, blocked.Load())
	}

	once.Do(func() { close(release) })
	waitUntil(t, "the recording ready", func() bool {
		return slices.Equal(h.s.seen(), []string{"started", "stopped", "ready"})
	})
	if got, _ := h.r.Get("ses_H"); got.Status != session.RecordingReady || got.Duration != info.Duration {
		t.Errorf("after the files closed: %s lasting %.3f s, want ready lasting %.3f s (as stop answered)", got.Status, got.Duration, info.Duration)
	}
}
