// Command benchtab turns the JSON reports of parley-load (and bench/livekit-load, which writes the
// same shape) from several rounds into one Markdown table and one JSON file with the machine's
// facts. Round 0 is a warm-up and is dropped; every figure is the median of the other rounds, and
// with two servers the table gives their ratio.
//
//	benchtab -out bench/results/fanout -title "fan-out" -cmd "bench/fanout.sh 50 100" \
//	    parley:1:640x480=run1.json livekit:1:640x480=run2.json …
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/parley/parley/internal/loadgen"
)

type run struct {
	Server   string          `json:"server"`
	Round    int             `json:"round"`
	Scenario string          `json:"scenario"`
	Report   *loadgen.Report `json:"report"`
}

type summary struct {
	Scenario    string  `json:"scenario"`
	Server      string  `json:"server"`
	Step        int     `json:"step"`
	Subscribers int     `json:"subscribers"`
	Rounds      int     `json:"rounds"`
	UsPerPacket float64 `json:"server_us_per_packet_median"`
	ServerCPU   float64 `json:"server_cpu_median"`
	PPS         float64 `json:"pps_median"`
	MbpsPerSub  float64 `json:"mbps_per_subscriber_median"`
	LossPct     float64 `json:"loss_pct_median"`
	LossMax     float64 `json:"loss_pct_max"`
	RSSPerSubKB float64 `json:"server_rss_kb_per_subscription_median"`
	FirstP50    float64 `json:"first_media_ms_p50_median"`
	FirstP95    float64 `json:"first_media_ms_p95_median"`
	KeyP50      float64 `json:"first_keyframe_ms_p50_median"`
	LoadCPU     float64 `json:"load_cpu_median"`
	Skipped     uint64  `json:"frames_skipped_by_load_max"`
	Live        string  `json:"tracks_live"`
	Complete    bool    `json:"complete"` // every round delivered every track
}

func main() {
	out := flag.String("out", "bench/results/bench", "output path without extension (.md and .json are written)")
	title := flag.String("title", "benchmark", "table title")
	cmdline := flag.String("cmd", "", "the command that produced the runs")
	flag.Parse()
	var runs []run
	for _, a := range flag.Args() {
		spec, file, ok := strings.Cut(a, "=")
		parts := strings.SplitN(spec, ":", 3)
		if !ok || len(parts) != 3 {
			fatal(fmt.Errorf("argument %q: want server:round:scenario=report.json", a))
		}
		round, err := strconv.Atoi(parts[1])
		if err != nil {
			fatal(fmt.Errorf("argument %q: round: %v", a, err))
		}
		b, err := os.ReadFile(file)
		if err != nil {
			fatal(err)
		}
		var rep loadgen.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			fatal(fmt.Errorf("%s: %v", file, err))
		}
		runs = append(runs, run{Server: parts[0], Round: round, Scenario: parts[2], Report: &rep})
	}
	sums := summarise(runs)
	machine := facts()
	var md strings.Builder
	fmt.Fprintf(&md, "### %s\n\n", *title)
	if *cmdline != "" {
		fmt.Fprintf(&md, "`%s`\n\n", *cmdline)
	}
	fmt.Fprintf(&md, "%s · Go %s · kernel %s · %s · server on CPU 0, load on CPU 1 · medians of %s rounds (round 0 dropped)\n\n",
		machine["git"], machine["go"], machine["kernel"], machine["cpu"], roundsText(sums))
	cols := "| scenario | server | subs | tracks live | µs CPU/pkt | server vCPU | pps delivered | Mbit/s/sub | loss % (max) | RSS KB/track | first media p50/p95 ms | first keyframe p50 ms | load vCPU | frames skipped by load (max) |"
	fmt.Fprintf(&md, "%s\n|%s\n", cols, strings.Repeat("---|", strings.Count(cols, "|")-1))
	for _, s := range sums {
		fmt.Fprintf(&md, "| %s | %s | %d | %s | %.1f | %.2f | %.0f | %.3f | %.2f (%.2f) | %.0f | %.0f/%.0f | %.0f | %.2f | %d |\n",
			s.Scenario, s.Server, s.Subscribers, s.Live, s.UsPerPacket, s.ServerCPU, s.PPS, s.MbpsPerSub, s.LossPct, s.LossMax, s.RSSPerSubKB,
			s.FirstP50, s.FirstP95, s.KeyP50, s.LoadCPU, s.Skipped)
	}
	if r := ratios(sums); r != "" {
		md.WriteString("\n" + r)
	}
	if err := os.WriteFile(*out+".md", []byte(md.String()), 0o644); err != nil {
		fatal(err)
	}
	b, _ := json.MarshalIndent(map[string]any{"title": *title, "command": *cmdline, "machine": machine, "summary": sums, "runs": runs}, "", "  ")
	if err := os.WriteFile(*out+".json", b, 0o644); err != nil {
		fatal(err)
	}
	fmt.Print(md.String())
}

func roundsText(s []summary) string {
	if len(s) == 0 {
		return "0"
	}
	return strconv.Itoa(s[0].Rounds)
}

// summarise takes, per scenario, server and step, the median of the kept rounds.
func summarise(runs []run) []summary {
	type key struct {
		scenario, server string
		step             int
	}
	rows := map[key][]loadgen.Row{}
	var order []key
	for _, r := range runs {
		if r.Round == 0 {
			continue
		}
		for _, row := range r.Report.Rows {
			k := key{r.Scenario, r.Server, row.Step}
			if _, ok := rows[k]; !ok {
				order = append(order, k)
			}
			rows[k] = append(rows[k], row)
		}
	}
	var out []summary
	for _, k := range order {
		rs := rows[k]
		med := func(f func(loadgen.Row) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			sort.Float64s(v)
			if len(v)%2 == 1 {
				return v[len(v)/2]
			}
			return (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		s := summary{Scenario: k.scenario, Server: k.server, Step: k.step, Rounds: len(rs),
			Subscribers: int(med(func(r loadgen.Row) float64 { return float64(r.Subscribers) })),
			UsPerPacket: med(func(r loadgen.Row) float64 { return r.UsPerPacket }),
			ServerCPU:   med(func(r loadgen.Row) float64 { return r.ServerCPU }),
			PPS:         med(func(r loadgen.Row) float64 { return r.PPS }),
			MbpsPerSub:  med(func(r loadgen.Row) float64 { return r.MbpsPerSub }),
			LossPct:     med(func(r loadgen.Row) float64 { return r.LossPct }),
			RSSPerSubKB: med(func(r loadgen.Row) float64 { return r.RSSPerSubKB }),
			FirstP50:    med(func(r loadgen.Row) float64 { return r.FirstMediaP50 }),
			FirstP95:    med(func(r loadgen.Row) float64 { return r.FirstMediaP95 }),
			KeyP50:      med(func(r loadgen.Row) float64 { return r.FirstKeyP50 }),
			LoadCPU:     med(func(r loadgen.Row) float64 { return r.LoadCPU }),
		}
		minLive := rs[0].TracksLive
		s.Complete = true
		for _, r := range rs {
			s.Complete = s.Complete && r.TracksLive == r.Subscriptions && r.JoinErrors == 0
			s.LossMax = max(s.LossMax, r.LossPct)
			s.Skipped = max(s.Skipped, r.SkippedFrames)
			minLive = min(minLive, r.TracksLive)
		}
		s.Live = fmt.Sprintf("%d/%d", minLive, rs[0].Subscriptions)
		out = append(out, s)
	}
	return out
}

// ratios compares every other server with parley, step by step: their µs per packet over ours
// (above 1 means we spend less). A step where either side lost joins or tracks, or more than
// 0.5 % of packets, is shown but not compared: the servers did not carry the same load.
func ratios(sums []summary) string {
	var b strings.Builder
	for _, s := range sums {
		if s.Server == "parley" {
			continue
		}
		i := slices.IndexFunc(sums, func(o summary) bool { return o.Server == "parley" && o.Scenario == s.Scenario && o.Step == s.Step })
		if i < 0 || sums[i].UsPerPacket == 0 {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("| scenario | subs | µs/pkt " + s.Server + " ÷ parley |\n|---|---|---|\n")
		}
		if !s.Complete || !sums[i].Complete || s.LossPct > 0.5 || sums[i].LossPct > 0.5 {
			fmt.Fprintf(&b, "| %s | %d | not comparable: joins or tracks missing, or loss > 0.5 %% |\n", s.Scenario, sums[i].Subscribers)
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %.2f |\n", s.Scenario, s.Subscribers, s.UsPerPacket/sums[i].UsPerPacket)
	}
	return b.String()
}

// facts are the versions and machine the numbers belong to.
func facts() map[string]string {
	sh := func(name string, args ...string) string {
		b, err := exec.Command(name, args...).Output()
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(b))
	}
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return map[string]string{
		"git":    "parley " + sh("git", "describe", "--always", "--dirty"),
		"go":     strings.TrimPrefix(runtime.Version(), "go"),
		"kernel": sh("uname", "-r"),
		"cpu":    fmt.Sprintf("%s × %d", cpu, runtime.NumCPU()),
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "benchtab:", err)
	os.Exit(1)
}
