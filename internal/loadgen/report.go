package loadgen

import (
	"fmt"
	"io"
	"strings"
)

// WriteTable prints the report as a Markdown table, one row per step, headline column first.
func (rep *Report) WriteTable(w io.Writer) {
	m := rep.Media
	fmt.Fprintf(w, "target: %s · %s · mode %s · video %s %dx%d@%d %d kbit/s GOP %d · audio Opus %d kbit/s 20 ms\n\n",
		rep.Target, rep.Info, rep.Mode, m.VideoCodec, m.Width, m.Height, m.FPS, m.VideoKbps, m.GOP, m.AudioKbps)
	cols := []string{"step", "rooms", "pubs", "subs", "tracks live/expected", "µs CPU/pkt", "server vCPU", "server RSS MB", "RSS KB/track",
		"pps delivered", "pps/sub", "Mbit/s/sub", "loss %", "jitter a/v ms", "NACKs", "PLIs", "joins/s", "join errors", "first media p50/p95 ms",
		"first keyframe p50/p95 ms", "load vCPU", "frames skipped by load"}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
	for _, r := range rep.Rows {
		fmt.Fprintf(w, "| %d | %d | %d | %d | %d/%d | %s | %.2f | %s | %s | %.0f | %.1f | %.3f | %.3f | %.1f/%.1f | %d | %d | %.1f | %d | %.0f/%.0f | %.0f/%.0f | %.2f | %d |\n",
			r.Step, r.Rooms, r.Publishers, r.Subscribers, r.TracksLive, r.Subscriptions, opt(r.UsPerPacket, "%.1f"), r.ServerCPU,
			opt(r.ServerRSSMB, "%.0f"), opt(r.RSSPerSubKB, "%.0f"), r.PPS, r.PPSPerSub, r.MbpsPerSub, r.LossPct,
			r.JitterAudioMs, r.JitterVideoMs, r.NACKs, r.PLIs, r.JoinsPerSec, r.JoinErrors,
			r.FirstMediaP50, r.FirstMediaP95, r.FirstKeyP50, r.FirstKeyP95, r.LoadCPU, r.SkippedFrames)
	}
}

// opt prints v, or "–" when it was not measured.
func opt(v float64, format string) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf(format, v)
}
