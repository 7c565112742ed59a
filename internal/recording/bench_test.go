package recording

import (
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestTapDoesNotAllocate: the tap runs on the SFU's forwarding goroutine, once per packet.
func TestTapDoesNotAllocate(t *testing.T) {
	w := &streamWriter{start: time.Now(), in: make(chan packet, 1)}
	tp := &tap{w: w, kind: kindVideo}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, Timestamp: 3000, SSRC: 1}, Payload: make([]byte, 1100)}
	allocs := testing.AllocsPerRun(1000, func() {
		tp.WriteRTP(pkt)
		select {
		case p := <-w.in:
			bufPool.Put(p.buf)
		default:
		}
	})
	if allocs != 0 {
		t.Fatalf("tap allocates %.1f times per packet, want 0", allocs)
	}
	// A full queue drops and counts instead of waiting.
	tp.WriteRTP(pkt)
	tp.WriteRTP(pkt)
	if w.drops.Load() != 1 {
		t.Fatalf("drops %d, want 1", w.drops.Load())
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTap is the cost on the forwarding goroutine: copy and queue one packet.
func BenchmarkTap(b *testing.B) {
	w := &streamWriter{start: time.Now(), in: make(chan packet, 1)}
	tp := &tap{w: w, kind: kindVideo}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, Timestamp: 3000, SSRC: 1}, Payload: make([]byte, 1100)}
	b.ReportAllocs()
	for b.Loop() {
		tp.WriteRTP(pkt)
		p := <-w.in
		bufPool.Put(p.buf)
	}
}

// BenchmarkStreamWriter records real VP8 + Opus (30 fps, 300 kbit/s, 50 packets/s of audio) to a
// WebM file as fast as the writer takes it: the whole recording path per packet (tap, queue,
// depacketising, muxing, file writes), reported as CPU time of the process per packet.
func BenchmarkStreamWriter(b *testing.B) {
	m := makeMedia(b, 10)
	packets := len(m.Audio)
	for _, f := range m.Video {
		packets += len(f)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var cpu time.Duration
	total := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "bench.webm")
		w, err := newStreamWriter(path, trackSpec{audio: true, video: true, videoCodec: "VP8", width: 320, height: 240}, createSyncFile)
		if err != nil {
			b.Fatal(err)
		}
		w.testClock = new(atomic.Int64) // packets arrive at their media time, however fast they are fed
		go w.run()
		b.StartTimer()
		c0 := cpuTime()
		m.feed(w, 0, 10*time.Second)
		w.close()
		cpu += cpuTime() - c0
		total += packets
		if w.err != nil || w.drops.Load() != 0 {
			b.Fatalf("err %v, %d drops", w.err, w.drops.Load())
		}
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(total), "cpu-µs/packet")
	b.ReportMetric(float64(total)/float64(b.N)/10, "packets/s-of-media")
	b.ReportMetric(cpu.Seconds()/float64(b.N)/10*100, "%cpu-per-stream")
}
