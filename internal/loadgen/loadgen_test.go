package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/server"
)

// startParley runs an in-process Parley in dev mode on kernel-chosen loopback ports.
func startParley(t *testing.T) string {
	t.Helper()
	env := map[string]string{"HTTPS_PORT": "0", "PARLEY_MEDIA_PORT": "0", "PARLEY_MEDIA_LISTEN_IPS": "127.0.0.1", "PARLEY_PING_TIMEOUT": "60"}
	cfg, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server run: %v", err)
		}
	})
	return fmt.Sprintf("http://%s", s.Addr())
}

// TestFanoutAgainstParley: one audio+video publisher and three subscribers through the public
// protocol; every subscription delivers media, nothing is lost, and the numbers add up.
func TestFanoutAgainstParley(t *testing.T) {
	base := startParley(t)
	target, err := NewOpenVidu(OpenViduOptions{URL: base, Secret: "MY_SECRET", VideoCodec: "VP8", LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Mode: "fanout", AVPublishers: 1, Steps: []int{3}, Ramp: 20, Warmup: 2 * time.Second, Window: 3 * time.Second,
		ServerPIDs: []int{os.Getpid()}, // in-process: the CPU figure includes the generator, so only its sanity is checked
		Media:      MediaSpec{Dir: t.TempDir(), Width: 320, Height: 240, FPS: 30, VideoKbps: 300, Seconds: 3}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg, target, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 {
		t.Fatalf("rows: %+v", rep.Rows)
	}
	r := rep.Rows[0]
	t.Logf("%+v", r)
	if r.Subscribers != 3 || r.Subscriptions != 6 || r.TracksLive != 6 || r.JoinErrors != 0 {
		t.Errorf("subscribers %d, tracks %d/%d live, join errors %d: want 3, 6/6, 0", r.Subscribers, r.TracksLive, r.Subscriptions, r.JoinErrors)
	}
	if r.LossPct >= 0.5 {
		t.Errorf("loss %.2f%% on loopback", r.LossPct)
	}
	// 50 Opus packets a second plus at least one packet per video frame, per subscriber.
	if r.PPSPerSub < 0.8*(50+30) || r.PPSPerSub > 400 {
		t.Errorf("%.1f packets/s per subscriber: want about 50 audio + 30–100 video", r.PPSPerSub)
	}
	if r.MbpsPerSub < 0.1 || r.MbpsPerSub > 1 {
		t.Errorf("%.3f Mbit/s per subscriber for 300 + 32 kbit/s sent", r.MbpsPerSub)
	}
	if r.FirstMediaP50 <= 0 || r.FirstMediaP95 < r.FirstMediaP50 || r.FirstMediaP95 > 10000 {
		t.Errorf("first media p50 %.0f ms, p95 %.0f ms", r.FirstMediaP50, r.FirstMediaP95)
	}
	if r.FirstKeyP50 <= 0 {
		t.Errorf("no video keyframe seen")
	}
	if r.UsPerPacket <= 0 || r.ServerCPU <= 0 || r.ServerRSSMB <= 0 {
		t.Errorf("server figures missing: %.1f µs/packet, %.2f vCPU, %.0f MB", r.UsPerPacket, r.ServerCPU, r.ServerRSSMB)
	}
	if rep.Info == "" || rep.Target == "" {
		t.Errorf("report without target info: %+v", rep)
	}
}

func TestCheckTarget(t *testing.T) {
	for _, tc := range []struct {
		url   string
		ownNS bool
		ok    bool
	}{
		{"http://127.0.0.1:4443", false, true},
		{"http://localhost:4443", false, true},
		{"http://[::1]:4443", false, true},
		{"http://10.0.0.1:4443", false, false},
		{"https://example.com", false, false},
		{"http://10.200.0.2:4443", true, true},
		{"http://example.com", true, false},
		{"ftp://127.0.0.1", false, false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			if _, err := CheckTarget(tc.url, tc.ownNS); (err == nil) != tc.ok {
				t.Errorf("CheckTarget(%q, %v) = %v, want ok=%v", tc.url, tc.ownNS, err, tc.ok)
			}
		})
	}
}

func TestIsKeyframe(t *testing.T) {
	rtpHdr := []byte{0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}
	pkt := func(payload ...byte) []byte { return append(append([]byte{}, rtpHdr...), payload...) }
	for _, tc := range []struct {
		name string
		pkt  []byte
		h264 bool
		want bool
	}{
		{"vp8 key, no extension", pkt(0x10, 0x00), false, true},
		{"vp8 inter frame", pkt(0x10, 0x01), false, false},
		{"vp8 continuation", pkt(0x00, 0x00), false, false},
		{"vp8 key, 15-bit picture id", pkt(0x90, 0x80, 0x81, 0x02, 0x00), false, true},
		{"vp8 inter, 7-bit picture id", pkt(0x90, 0x80, 0x05, 0x01), false, false},
		{"h264 IDR", pkt(0x65, 0x88), true, true},
		{"h264 P slice", pkt(0x41, 0x9a), true, false},
		{"h264 STAP-A with SPS", pkt(0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce), true, true},
		{"h264 FU-A IDR start", pkt(0x7c, 0x85), true, true},
		{"h264 FU-A IDR middle", pkt(0x7c, 0x05), true, false},
		{"runt", rtpHdr[:8], false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isKeyframe(tc.pkt, tc.h264); got != tc.want {
				t.Errorf("isKeyframe = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestReadH264Frames: slices of one picture stay together; parameter sets start a frame.
func TestReadH264Frames(t *testing.T) {
	sc := []byte{0, 0, 0, 1}
	var in []byte
	for _, nal := range [][]byte{{0x67, 1}, {0x68, 1}, {0x65, 0x88}, {0x65, 0x40}, {0x41, 0x9a}, {0x41, 0x20}, {0x41, 0x9a}} {
		in = append(append(in, sc...), nal...)
	}
	frames, err := readH264(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 3 {
		t.Fatalf("%d frames, want 3 (SPS+PPS+2 IDR slices, 2 P slices, 1 P slice)", len(frames))
	}
	if want := 4 * (4 + 2); len(frames[0]) != want {
		t.Errorf("first frame %d bytes, want %d", len(frames[0]), want)
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	if p := percentile(v, 50); p != 5 {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(v, 95); p != 10 {
		t.Errorf("p95 = %v", p)
	}
	if p := percentile(nil, 50); p != 0 {
		t.Errorf("empty p50 = %v", p)
	}
}

// durations sums what each sample advances the RTP timestamp by, as pion's packetizer does.
type durations struct {
	n     int
	total time.Duration
}

func (d *durations) WriteSample(s media.Sample) error {
	d.n++
	d.total += s.Duration
	return nil
}

// A starved generator skips frames but keeps its media clock on the wall clock: after frame i the
// RTP timestamp has advanced i frame durations, so a recording of a loaded hour does not run
// slow.
func TestCatchUpKeepsTheMediaClock(t *testing.T) {
	m := &Media{}
	frames := [][]byte{{1}, {2}, {3}}
	const dur = 40 * time.Millisecond
	var w durations
	i := m.catchUp(&w, frames, dur, 0, 5) // a short delay: every frame owed is sent
	if i != 5 || w.n != 5 || w.total != 5*dur || m.Skipped.Load() != 0 {
		t.Fatalf("short catch-up: next %d, %d samples, %v, %d skipped", i, w.n, w.total, m.Skipped.Load())
	}
	i = m.catchUp(&w, frames, dur, i, 105) // starved for 100 frames
	if i != 105 || w.n != 6 || m.Skipped.Load() != 99 {
		t.Fatalf("starved: next %d, %d samples, %d skipped", i, w.n, m.Skipped.Load())
	}
	if w.total != 105*dur {
		t.Fatalf("media clock at frame 105 is %v, want %v", w.total, 105*dur)
	}
}
