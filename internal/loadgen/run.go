// Package loadgen is Parley's load generator: it joins a media server through its public protocol
// with many pion participants that publish real encoded media (files made with ffmpeg) and
// subscribe, and measures, per step, what the subscribers got and what the server spent — the
// headline being microseconds of server CPU per RTP packet delivered to a subscriber.
//
// It imports nothing of Parley's: it must measure any OpenVidu 2 server, and LiveKit through the
// Target interface (bench/livekit-load).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// Config is one load scenario.
type Config struct {
	// Mode is "fanout" (publishers and separate subscribers per room) or "meeting" (everyone
	// publishes audio and video and subscribes to everyone else).
	Mode string
	// Rooms per step in fanout mode (each gets the same publishers and subscribers); in meeting
	// mode Steps counts rooms instead.
	Rooms int
	// VideoPublishers, AudioPublishers and AVPublishers per room (fanout): participants publishing
	// a video-only, audio-only, or audio+video stream.
	VideoPublishers, AudioPublishers, AVPublishers int
	// Steps: subscribers per room (fanout) or rooms (meeting), cumulative; each step adds
	// participants up to the count and then measures.
	Steps []int
	// MeetingSize is the participants per room in meeting mode.
	MeetingSize int
	// Ramp is joins started per second.
	Ramp float64
	// Warmup is how long each step runs before its measurement window (up to three times as long
	// while some expected track has not started); Window is that window.
	Warmup, Window time.Duration
	// MaxParticipants bounds the whole run.
	MaxParticipants int
	// Media is what publishers send.
	Media MediaSpec
	// ServerPIDs are the server processes whose CPU and memory are measured, added up (the nodes
	// of a cluster); none: not measured.
	ServerPIDs []int
	// RoomPrefix names the rooms (sessions) the run creates.
	RoomPrefix string
}

// Row is one step's measurement.
type Row struct {
	Step          int     `json:"step"`
	Rooms         int     `json:"rooms"`
	Publishers    int     `json:"publishers"`
	Subscribers   int     `json:"subscribers"`   // participants that subscribe
	Subscriptions int     `json:"subscriptions"` // tracks they receive, expected
	TracksLive    int     `json:"tracks_live"`   // of those, tracks that delivered media
	JoinErrors    int     `json:"join_errors"`
	JoinsPerSec   float64 `json:"joins_per_sec"`
	FirstMediaP50 float64 `json:"first_media_ms_p50"` // join start → first RTP packet
	FirstMediaP95 float64 `json:"first_media_ms_p95"`
	FirstKeyP50   float64 `json:"first_keyframe_ms_p50"` // join start → first video keyframe
	FirstKeyP95   float64 `json:"first_keyframe_ms_p95"`
	WindowSec     float64 `json:"window_s"`
	Packets       uint64  `json:"packets"` // RTP packets delivered to all subscribers in the window
	PPS           float64 `json:"pps"`
	PPSPerSub     float64 `json:"pps_per_subscriber"`
	MbpsPerSub    float64 `json:"mbps_per_subscriber"`
	MbpsTotal     float64 `json:"mbps_total"`
	LossPct       float64 `json:"loss_pct"`
	JitterAudioMs float64 `json:"jitter_audio_ms"`
	JitterVideoMs float64 `json:"jitter_video_ms"`
	NACKs         uint64  `json:"nacks"`
	PLIs          uint64  `json:"plis"`
	ServerCPU     float64 `json:"server_cpu"` // vCPUs (1.0 = one core busy)
	ServerRSSMB   float64 `json:"server_rss_mb"`
	RSSPerSubKB   float64 `json:"server_rss_kb_per_subscription"`
	UsPerPacket   float64 `json:"server_us_per_packet"`
	LoadCPU       float64 `json:"load_cpu"` // the generator's own vCPUs
	// SkippedFrames were not sent because the generator fell behind: the load, not the server,
	// was the limit.
	SkippedFrames uint64 `json:"skipped_frames"`
}

// Report is a whole run.
type Report struct {
	Target string    `json:"target"`
	Info   string    `json:"info"`
	Mode   string    `json:"mode"`
	Media  MediaSpec `json:"media"`
	Rows   []Row     `json:"rows"`
	Start  time.Time `json:"start"`
}

// progress prints status lines: rewritten in place on a terminal, otherwise at most one line
// every 5 s so logs stay short.
type progress struct {
	w    io.Writer
	tty  bool
	last time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// status is a transient line.
func (p *progress) status(format string, a ...any) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K"+format, a...)
		return
	}
	if time.Since(p.last) >= 5*time.Second {
		p.last = time.Now()
		fmt.Fprintf(p.w, format+"\n", a...)
	}
}

// line is a lasting line.
func (p *progress) line(format string, a ...any) {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, format+"\n", a...)
}

type participant struct {
	start  time.Time
	handle Participant
	mu     sync.Mutex
	tracks []*trackStats
}

type runner struct {
	cfg    Config
	target Target
	media  *Media
	log    *progress
	ctx    context.Context
	// play runs the publishers' media loops; close ends it.
	play     context.Context
	stopPlay context.CancelFunc

	mu       sync.Mutex
	parts    []*participant // subscribers
	pubs     []Participant
	joinErrs atomic.Int64
	wg       sync.WaitGroup // publisher media loops
}

// Validate checks a configuration and fills in defaults.
func (c *Config) Validate() error {
	var errs []error
	if c.Mode == "" {
		c.Mode = "fanout"
	}
	if c.Rooms <= 0 {
		c.Rooms = 1
	}
	if c.Ramp <= 0 {
		c.Ramp = 10
	}
	if c.MaxParticipants <= 0 {
		c.MaxParticipants = 2000
	}
	if c.RoomPrefix == "" {
		c.RoomPrefix = fmt.Sprintf("load%d", time.Now().Unix()%100000)
	}
	if c.Window <= 0 {
		c.Window = 10 * time.Second
	}
	if c.Warmup < 0 {
		errs = append(errs, errors.New("warm-up must not be negative"))
	}
	if len(c.Steps) == 0 {
		errs = append(errs, errors.New("no steps"))
	}
	for i, s := range c.Steps {
		if s < 0 || (i > 0 && s < c.Steps[i-1]) {
			errs = append(errs, fmt.Errorf("steps %v: want non-negative and non-decreasing", c.Steps))
			break
		}
	}
	total := 0
	switch c.Mode {
	case "fanout":
		if c.VideoPublishers+c.AudioPublishers+c.AVPublishers == 0 {
			errs = append(errs, errors.New("fanout needs at least one publisher"))
		}
		if len(c.Steps) > 0 {
			total = c.Rooms * (c.VideoPublishers + c.AudioPublishers + c.AVPublishers + c.Steps[len(c.Steps)-1])
		}
	case "meeting":
		if c.MeetingSize < 2 {
			errs = append(errs, errors.New("a meeting needs at least 2 participants"))
		}
		if len(c.Steps) > 0 {
			total = c.MeetingSize * c.Steps[len(c.Steps)-1]
		}
	default:
		errs = append(errs, fmt.Errorf("mode %q: want fanout or meeting", c.Mode))
	}
	if total > c.MaxParticipants {
		errs = append(errs, fmt.Errorf("%d participants exceed the limit of %d", total, c.MaxParticipants))
	}
	return errors.Join(errs...)
}

// Run runs the scenario against target and reports each step. Progress lines go to log. It
// stops, with what it measured so far, when ctx ends.
func Run(ctx context.Context, cfg Config, target Target, log io.Writer) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	media, err := LoadMedia(ctx, cfg.Media)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, target: target, media: media, log: newProgress(log), ctx: ctx}
	r.play, r.stopPlay = context.WithCancel(context.Background())
	rep := &Report{Target: target.Name(), Mode: cfg.Mode, Media: media.Spec, Start: time.Now()}
	defer r.close()

	var baseRSS uint64
	if cfg.Mode == "fanout" {
		for room := 0; room < cfg.Rooms; room++ {
			if err := r.joinPublishers(room); err != nil {
				return rep, err
			}
		}
	}
	if len(cfg.ServerPIDs) > 0 {
		if s, err := readProcs(cfg.ServerPIDs); err == nil {
			baseRSS = s.rssKB
		}
	}
	prevJoined := 0
	for i, n := range cfg.Steps {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		before := len(r.snapshotParts())
		if err := r.grow(n); err != nil {
			return rep, err
		}
		parts := r.snapshotParts()
		rampSec := time.Since(t0).Seconds()
		row := Row{Step: i + 1, Rooms: cfg.Rooms, Subscribers: len(parts)}
		if cfg.Mode == "meeting" {
			row.Rooms, row.Publishers = n, n*cfg.MeetingSize
		} else {
			row.Publishers = cfg.Rooms * (cfg.VideoPublishers + cfg.AudioPublishers + cfg.AVPublishers)
		}
		row.Subscriptions = r.expectedTracks(n)
		if joined := len(parts) - before; joined > 0 && rampSec > 0 {
			row.JoinsPerSec = float64(joined) / rampSec
		}
		r.wait(cfg.Warmup, i, n)
		if ctx.Err() != nil {
			break
		}
		r.measure(&row, parts[before:], parts, baseRSS)
		row.JoinErrors = int(r.joinErrs.Load()) - prevJoined
		prevJoined = int(r.joinErrs.Load())
		rep.Rows = append(rep.Rows, row)
		r.log.line("step %d/%d done: %d subscribers, %.0f pps delivered, %.2f%% loss, server %.2f vCPU, %.1f µs/packet",
			i+1, len(cfg.Steps), row.Subscribers, row.PPS, row.LossPct, row.ServerCPU, row.UsPerPacket)
	}
	rep.Info = target.Info()
	return rep, ctx.Err()
}

func (r *runner) snapshotParts() []*participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.parts)
}

func (r *runner) room(i int) string { return fmt.Sprintf("%s-%d", r.cfg.RoomPrefix, i) }

// expectedTracks is how many tracks the subscribers should receive at step size n.
func (r *runner) expectedTracks(n int) int {
	c := r.cfg
	if c.Mode == "meeting" {
		return n * c.MeetingSize * (c.MeetingSize - 1) * 2
	}
	return c.Rooms * n * (c.VideoPublishers + c.AudioPublishers + 2*c.AVPublishers)
}

func (r *runner) joinPublishers(room int) error {
	c := r.cfg
	kinds := []struct {
		n            int
		video, audio bool
		name         string
	}{{c.VideoPublishers, true, false, "video"}, {c.AudioPublishers, false, true, "audio"}, {c.AVPublishers, true, true, "av"}}
	for _, k := range kinds {
		for i := 0; i < k.n; i++ {
			if _, err := r.join(r.room(room), fmt.Sprintf("pub-%s-%d", k.name, i), k.video, k.audio, false); err != nil {
				return fmt.Errorf("publisher %s %d in room %d: %w", k.name, i, room, err)
			}
		}
	}
	return nil
}

// join connects one participant; publishers start playing at once.
func (r *runner) join(room, identity string, video, audio, subscribe bool) (*participant, error) {
	var tracks []*webrtc.TrackLocalStaticSample
	if video || audio {
		var err error
		if tracks, err = r.media.NewTracks(video, audio, identity); err != nil {
			return nil, err
		}
	}
	p := &participant{start: time.Now()}
	onTrack := func(rt RemoteTrack) {
		ts := &trackStats{video: rt.Track.Kind() == webrtc.RTPCodecTypeVideo, start: p.start}
		p.mu.Lock()
		p.tracks = append(p.tracks, ts)
		p.mu.Unlock()
		ts.read(rt)
	}
	ctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
	defer cancel()
	h, err := r.target.Join(ctx, room, identity, tracks, subscribe, onTrack)
	if err != nil {
		return nil, err
	}
	p.handle = h
	if len(tracks) > 0 {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.media.Play(r.play, tracks) }()
	}
	r.mu.Lock()
	if subscribe {
		r.parts = append(r.parts, p)
	} else {
		r.pubs = append(r.pubs, h)
	}
	r.mu.Unlock()
	return p, nil
}

// grow joins participants at the ramp rate until the step's size is reached.
func (r *runner) grow(n int) error {
	c := r.cfg
	type spec struct {
		room, id     string
		video, audio bool
	}
	var todo []spec
	if c.Mode == "meeting" {
		have := len(r.snapshotParts()) / c.MeetingSize
		for room := have; room < n; room++ {
			for i := 0; i < c.MeetingSize; i++ {
				todo = append(todo, spec{r.room(room), fmt.Sprintf("m%d-%d", room, i), true, true})
			}
		}
	} else {
		have := len(r.snapshotParts()) / c.Rooms
		for i := have; i < n; i++ {
			for room := 0; room < c.Rooms; room++ {
				todo = append(todo, spec{r.room(room), fmt.Sprintf("sub-%d", i), false, false})
			}
		}
	}
	if len(todo) == 0 {
		return nil
	}
	every := time.Duration(float64(time.Second) / c.Ramp)
	tick := time.NewTicker(every)
	defer tick.Stop()
	sem := make(chan struct{}, 32) // joins in flight
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i, s := range todo {
		if i > 0 {
			select {
			case <-r.ctx.Done():
				wg.Wait()
				return nil
			case <-tick.C:
			}
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := r.join(s.room, s.id, s.video, s.audio, true); err != nil {
				failed.Add(1)
				if r.joinErrs.Add(1) <= 3 {
					r.log.line("join %s in %s: %v", s.id, s.room, err)
				}
			}
		}()
		r.log.status("joining %d/%d", i+1, len(todo))
	}
	wg.Wait()
	if int(failed.Load()) == len(todo) {
		return fmt.Errorf("every join failed")
	}
	return nil
}

// wait lets the step settle for d, and up to 2·d longer while some expected track has not
// delivered yet (a slow DTLS handshake), so the window measures the whole load when it can.
func (r *runner) wait(d time.Duration, step, n int) {
	start := time.Now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		live, want := r.liveTracks(), r.expectedTracks(n)
		since := time.Since(start)
		if since >= 3*d || (since >= d && live >= want) {
			return
		}
		r.log.status("step %d (%d): warming up, %d/%d tracks delivering", step+1, n, live, want)
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (r *runner) liveTracks() (live int) {
	for _, t := range r.allTracks() {
		if t.packets.Load() > 0 {
			live++
		}
	}
	return live
}

func (r *runner) allTracks() []*trackStats {
	var out []*trackStats
	for _, p := range r.snapshotParts() {
		p.mu.Lock()
		out = append(out, p.tracks...)
		p.mu.Unlock()
	}
	return out
}

// measure fills the row from a window of cfg.Window. newParts joined in this step; their first
// media latencies are the step's.
func (r *runner) measure(row *Row, newParts, parts []*participant, baseRSS uint64) {
	var first, key []float64
	for _, p := range newParts {
		p.mu.Lock()
		var f, k int64
		for _, t := range p.tracks {
			if v := t.firstPkt.Load(); v > 0 && (f == 0 || v < f) {
				f = v
			}
			if v := t.firstKey.Load(); v > 0 && (k == 0 || v < k) {
				k = v
			}
		}
		p.mu.Unlock()
		if f > 0 {
			first = append(first, float64(f)/1e6)
		}
		if k > 0 {
			key = append(key, float64(k)/1e6)
		}
	}
	row.FirstMediaP50, row.FirstMediaP95 = percentile(first, 50), percentile(first, 95)
	row.FirstKeyP50, row.FirstKeyP95 = percentile(key, 50), percentile(key, 95)

	tracks := r.allTracks()
	before := make([]trackSnap, len(tracks))
	for i, t := range tracks {
		before[i] = t.snap()
	}
	n0, p0 := r.target.Feedback()
	skip0 := r.media.Skipped.Load()
	var srv0, srv1 procSample
	var srvErr error
	if len(r.cfg.ServerPIDs) > 0 {
		srv0, srvErr = readProcs(r.cfg.ServerPIDs)
	}
	self0, _ := readProc(os.Getpid())
	t0 := time.Now()
	end := t0.Add(r.cfg.Window)
	tick := time.NewTicker(time.Second)
	for time.Now().Before(end) && r.ctx.Err() == nil {
		select {
		case <-r.ctx.Done():
		case <-tick.C:
		}
		r.log.status("step %d: measuring, %d pps delivered so far, %ds left", row.Step, r.deliveredSince(tracks, before, t0), int(time.Until(end).Seconds()))
	}
	tick.Stop()
	if len(r.cfg.ServerPIDs) > 0 && srvErr == nil {
		srv1, srvErr = readProcs(r.cfg.ServerPIDs)
	}
	self1, _ := readProc(os.Getpid())
	secs := time.Since(t0).Seconds()
	n1, p1 := r.target.Feedback()
	row.SkippedFrames = r.media.Skipped.Load() - skip0

	var pkts, bytes, expected uint64
	var ja, jv []float64
	for i, t := range tracks {
		a := t.snap()
		pkts += a.packets - before[i].packets
		bytes += a.bytes - before[i].bytes
		expected += a.expected - before[i].expected
		if a.packets > 0 {
			row.TracksLive++
			if t.video {
				jv = append(jv, t.jitterMs())
			} else {
				ja = append(ja, t.jitterMs())
			}
		}
	}
	row.WindowSec = secs
	row.Packets = pkts
	row.PPS = float64(pkts) / secs
	row.MbpsTotal = float64(bytes) * 8 / secs / 1e6
	if len(parts) > 0 {
		row.PPSPerSub = row.PPS / float64(len(parts))
		row.MbpsPerSub = row.MbpsTotal / float64(len(parts))
	}
	if expected > 0 && expected > pkts {
		row.LossPct = float64(expected-pkts) / float64(expected) * 100
	}
	row.JitterAudioMs, row.JitterVideoMs = mean(ja), mean(jv)
	row.NACKs, row.PLIs = n1-n0, p1-p0
	row.LoadCPU = (self1.cpuSec - self0.cpuSec) / secs
	if len(r.cfg.ServerPIDs) > 0 && srvErr == nil {
		cpu := srv1.cpuSec - srv0.cpuSec
		row.ServerCPU = cpu / secs
		row.ServerRSSMB = float64(srv1.rssKB) / 1024
		if row.Subscriptions > 0 && srv1.rssKB > baseRSS {
			row.RSSPerSubKB = float64(srv1.rssKB-baseRSS) / float64(row.Subscriptions)
		}
		if pkts > 0 {
			row.UsPerPacket = cpu * 1e6 / float64(pkts)
		}
	}
}

// deliveredSince is the packet rate of tracks since their snapshots at t0.
func (r *runner) deliveredSince(tracks []*trackStats, before []trackSnap, t0 time.Time) int {
	var n uint64
	for i, t := range tracks {
		n += t.packets.Load() - before[i].packets
	}
	return int(float64(n) / time.Since(t0).Seconds())
}

func (r *runner) close() {
	parts := r.snapshotParts()
	r.mu.Lock()
	pubs := slices.Clone(r.pubs)
	r.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, p := range parts {
		if p.handle == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() { defer func() { <-sem; wg.Done() }(); p.handle.Close() }()
	}
	wg.Wait()
	for _, p := range pubs {
		p.Close()
	}
	r.stopPlay()
	r.wg.Wait()
}

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0 // JSON has no NaN; no sample reads as 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
