package webhook

import (
	"testing"
	"time"
)

// BenchmarkDelivery posts b.N events to a local receiver and reports the sender's throughput and
// the mean time from event to 2xx: "burst" queues them all at once (queueing included),
// "one-by-one" waits for each delivery before the next event (the latency of a quiet server).
func BenchmarkDelivery(b *testing.B) {
	for _, burst := range []bool{true, false} {
		name := "burst"
		if !burst {
			name = "one-by-one"
		}
		b.Run(name, func(b *testing.B) {
			r := newReceiver(b, []byte("k"))
			s := newSender(b, r, func(c *Config) { c.QueueSize = b.N + 1 })
			run(b, s)
			delivered := func(n int) {
				for s.Stats().Delivered < uint64(n) {
					time.Sleep(50 * time.Microsecond) // polling the counter, not synchronising on time
				}
			}
			b.ReportAllocs()
			start := time.Now()
			for i := range b.N {
				s.Listen(signal(i))
				if !burst {
					delivered(i + 1)
				}
			}
			delivered(b.N)
			st := s.Stats()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(float64(st.LatencySum.Microseconds())/float64(st.Delivered)/1000, "ms-latency")
		})
	}
}
