package sfu

import (
	"sync/atomic"
	"time"

	"github.com/parley/parley/internal/sendq"
)

// Every subscription owns its down path: what its link takes is estimated from its own feedback,
// and when the stream does not fit, this subscriber's video is paused at a frame boundary and
// resumed at a keyframe, with its audio untouched. Nothing here reaches the publisher or another
// subscriber: the publisher's rate follows its own uplink (TWCC, capped by REMB), as the other
// subscribers deserve, and a weak subscriber's keyframe requests are filtered.
//
// The estimate is loss-based, as libwebrtc's sender side is when it has nothing better: a receiver
// report with more than 10 % loss sets it to what we sent times (1 − loss/2) (or times (1 − loss)
// beyond 50 %, where the loss is the link's capacity showing), under 2 % loss it grows 12 % a
// second, except during a hold after each cut (2 s, doubling to 16 s while cuts keep coming), so a
// link that refuses a higher rate is offered it less and less often. Random loss of 5–15 % (Wi-Fi) keeps the estimate near the stream's rate and the video
// flowing, repaired by retransmission; a link that carries a quarter of the stream loses three
// quarters of it and pauses at once. The state is updated once a second per subscription from the
// sender-report goroutine; the forwarder's hot path reads one atomic.
const (
	ccHighLoss     = 0.10 // above: the estimate follows what got through
	ccLowLoss      = 0.02 // below: the estimate may grow
	ccGrowth       = 1.12 // per second, under low loss and outside a hold
	ccPausedGrowth = 1.5  // per second while the video is paused (see pausedGrowth)
	// ccHoldMin/Max bound the hold on growth after a cut (see cut).
	ccHoldMin      = 2 * time.Second
	ccHoldMax      = 16 * time.Second
	ccPauseBelow   = 0.80 // pause video when the estimate is under this share of what the stream needs
	ccResumeAbove  = 1.10 // resume it when the estimate is this share above it
	ccReportMaxAge = 3 * time.Second
	ccMaxRTT       = time.Second // a round trip beyond this is a standing queue, not distance
	ccEstimateCap  = 2e6         // bps an estimate may reach above twice the stream's rate
	// ccBackoffMin/Max space out attempts to resume video on a link that could not take it, so a
	// paused subscriber does not flood its link every few seconds.
	ccBackoffMin = 2 * time.Second
	ccBackoffMax = 30 * time.Second
	// ccStable is how long resumed video must run before the backoff starts again from its minimum.
	ccStable = 20 * time.Second
	// ccQueueDelay: over a TCP path (ICE-TCP, TURN/TCP, TURN/TLS) the link's limit shows as a
	// send queue, not as loss. When media waited longer than this in it all through a tick (its
	// shortest wait; a keyframe's burst only raises the longest), or the queue dropped media, the
	// estimate follows what the queue got out.
	ccQueueDelay = 100 * time.Millisecond
	// ccProbeGap, ccProbeTime: while a subscription over TCP has its video paused, every
	// ccProbeGap the forwarder sends padding in place of its video for ccProbeTime, at half as
	// much again as the video needs (ccProbeGain): a probe that costs only this link (what it
	// cannot take is dropped in its own queue, and the first sign of a queue ends the probe;
	// audio goes first), never the publisher a keyframe. If the queue kept up, video resumes: a
	// freed link has its video back within about ccProbeGap + ccProbeTime, and video does not
	// resume into a link that only a token bucket's burst and the socket's buffers made look wide
	// (the gain is what they cannot hide). The probe runs on the sender reports' 100 ms clock, not
	// the estimate's second.
	ccProbeGap  = 800 * time.Millisecond
	ccProbeTime = 600 * time.Millisecond
	// lossyPLIGap bounds keyframe requests from a subscriber whose link loses more than ccHighLoss:
	// they pass at most this often; healthy ones pass every request (merged per publisher).
	lossyPLIGap = 3 * time.Second
)

// congestion is one subscription's down-path state.
type congestion struct {
	// Set by the RTCP reader of the video down-track.
	fraction atomic.Uint32 // last RTCP fraction lost of our video (0–255)
	reportAt atomic.Int64  // unix nanos of that report
	rtt      atomic.Int64  // nanoseconds; 0 until a receiver report answers one of our sender reports

	// pause is the wanted video state, read by the forwarder, which applies it at a frame boundary.
	pause atomic.Bool
	// rtxBudget is how many bytes of retransmissions may still be sent in this second.
	rtxBudget atomic.Int64
	// pliOK is when this subscriber's next keyframe request may pass (unix nanos).
	pliOK atomic.Int64

	pauses, resumes atomic.Uint64

	// Owned by tick (the sender-report goroutine).
	est        float64 // bits per second; 0 = no evidence of a limit yet
	lastAt     time.Time
	lastSent   uint64  // bytes sent to the subscriber at lastAt (media and retransmissions)
	lastSrc    uint64  // bytes the publisher sent us at lastAt
	need       float64 // bits per second the stream needs (recent peak, decaying)
	resumeAt   time.Time
	resumedAt  time.Time
	backoff    time.Duration
	lastReport int64
	hold       time.Duration
	holdUntil  time.Time
	longRTT    int // consecutive reports with a round trip over ccMaxRTT
	// The probe (probeStep): running since probeStart, the queue as it was then; the next one
	// not before probeNext.
	probing               bool
	probeStart, probeNext time.Time
	probeAt               probeSample
	// probeQ is the send queue a probe watches, and probeBase its media drops when the probe
	// began: the forwarder ends the probe at the first drop, or once padding waited there over
	// ccQueueDelay (the link has answered), so a failed probe costs the link's audio a fraction
	// of a second. Set before
	// the gate's probe flag, read by the forwarder after it.
	probeQ    atomic.Pointer[sendq.Conn]
	probeBase atomic.Uint64
	probeBps  atomic.Uint64 // bytes per second the probe pads at: ccProbeGain × need
	// probeWanted: the video is paused over TCP, so the report goroutine probes every 100 ms.
	probeWanted atomic.Bool
	// The send queue's counters at lastAt, and whose they are (a new path starts over).
	queue      *sendq.Conn
	lastQSent  uint64
	lastQDrops uint64
}

// ccInput is what one tick sees: bytes sent to the subscriber, bytes the publisher's tracks
// carried, and the subscriber's latest report.
type ccInput struct {
	now        time.Time
	sent, src  uint64
	fraction   uint32 // 0–255
	reportAt   int64  // unix nanos; 0 if none
	rtt        time.Duration
	videoCarry bool // the subscription has video to pause
	// Over a TCP path, its send queue in the interval: bytes it wrote, media frames it dropped, and
	// how long media waited in it.
	queued       bool
	qSent, qDrop uint64
	qDelay       sendq.Delay
}

// ccDecision is what a tick decided.
type ccDecision struct {
	pause, resume bool
	rtxBudget     int64
}

// tick updates the estimate from one interval and decides the video state and the coming second's
// retransmission budget.
func (c *congestion) tick(in ccInput) ccDecision {
	var d ccDecision
	if c.lastAt.IsZero() {
		c.lastAt, c.lastSent, c.lastSrc = in.now, in.sent, in.src
		d.rtxBudget = rtxBudgetFloor
		return d
	}
	dt := in.now.Sub(c.lastAt).Seconds()
	if dt <= 0 {
		return d
	}
	sentRate := float64(in.sent-c.lastSent) * 8 / dt
	// What the stream needs is its recent peak, decaying 10 % a second: a publisher's rate
	// swings (keyframes, a busy encoder), and resuming into a dip only to pause at the next
	// keyframe would flood the link for nothing.
	need := max(float64(in.src-c.lastSrc)*8/dt, c.need*0.9)
	c.need = need
	c.lastAt, c.lastSent, c.lastSrc = in.now, in.sent, in.src
	paused := c.pause.Load()

	fresh := in.reportAt != 0 && in.reportAt != c.lastReport && in.now.Sub(time.Unix(0, in.reportAt)) < ccReportMaxAge
	queueFull := in.queued && (in.qDrop > 0 || in.qDelay.Frames > 0 && in.qDelay.Min > ccQueueDelay)
	if fresh {
		c.lastReport = in.reportAt
		if in.rtt <= ccMaxRTT {
			c.longRTT = 0
		}
	}
	if queueFull && !paused {
		// The queue in front of a TCP path held media all through the tick or dropped some: the
		// link took what the queue got out (everything on the connection, media or not).
		c.est = float64(in.qSent) * 8 / dt
		c.cut(in.now)
	} else if fresh {
		loss := float64(in.fraction) / 256
		grow := growth(dt)
		if in.now.Before(c.holdUntil) {
			grow = 1 // right after a cut the link has just shown its limit
		}
		switch {
		case paused:
			if loss < ccLowLoss && c.est > 0 && !in.now.Before(c.holdUntil) {
				c.est *= pausedGrowth(dt)
			}
		case loss > 0.5:
			c.est = sentRate * (1 - loss)
			c.cut(in.now)
		case loss > ccHighLoss:
			c.est = sentRate * (1 - loss/2)
			c.cut(in.now)
		case in.rtt > ccMaxRTT && !in.queued && c.longRTT == 0:
			// One late report is not yet a queue: a browser starved of CPU answers late too (the
			// weak-network bed paused an unshaped subscriber for one 1.1-s round trip). Wait for the
			// next report, without growing.
			c.longRTT++
		case in.rtt > ccMaxRTT && !in.queued:
			// Nothing lost but everything late: a queue in front of the subscriber (TCP, TURN/TCP,
			// a bufferbloated router) holds more than a second. Our sender reports wait in the same
			// queue, so the report's round trip measures it. Over TCP our own queue says so first and
			// better: there a long round trip is TCP repairing loss, which the queue's delay shows.
			c.est = sentRate * 0.5
			c.cut(in.now)
		case loss < ccLowLoss:
			// What got through is a lower bound of the link, so a publisher ramping up does not
			// outrun an estimate that grows only a few per cent a second.
			c.est = max(c.est, sentRate) * grow
		default:
			c.est = max(c.est, sentRate*(1-loss))
		}
	} else if paused && c.est > 0 && !in.now.Before(c.holdUntil) {
		c.est *= pausedGrowth(dt)
	}
	if c.est > 0 {
		c.est = min(c.est, max(2*need, ccEstimateCap)) // keep growth bounded on a clean link
	}

	switch {
	case in.videoCarry && !paused && c.est > 0 && c.est < ccPauseBelow*need:
		d.pause = true
		if c.backoff == 0 || in.now.Sub(c.resumedAt) > ccStable {
			c.backoff = ccBackoffMin
		} else {
			c.backoff = min(2*c.backoff, ccBackoffMax)
		}
		c.resumeAt = in.now.Add(c.backoff)
		c.probing, c.probeNext = false, in.now.Add(ccProbeGap)
	case paused && in.queued:
		// Over TCP the probes (probeStep), not the estimate's growth, say when video fits again.
	case paused && !in.now.Before(c.resumeAt) && c.est >= ccResumeAbove*need:
		d.resume = true
		c.resumedAt = in.now
	}

	// Retransmissions take what the estimate leaves above the media; unknown, half the media
	// rate. A floor keeps a lossy but otherwise fine link repairable.
	media := sentRate
	if c.pause.Load() || d.pause {
		d.rtxBudget = rtxBudgetFloor // nothing from before the pause is sent again anyway
		return d
	}
	if c.est > 0 {
		d.rtxBudget = int64((c.est - media) / 8)
	} else {
		d.rtxBudget = int64(media / 16)
	}
	// Never more than a quarter of the media either: retransmissions are counted as received in
	// the subscriber's loss fraction, so an unbounded share would hide the very loss that should
	// cut the estimate (the weak-network bed saw 6× the link after a resume).
	d.rtxBudget = max(min(d.rtxBudget, int64(media/32)), rtxBudgetFloor, int64(media/80))
	return d
}

// probeStep advances the probe of a subscription over TCP whose video is paused, every 100 ms.
// qs is its send queue's state; aborted says the forwarder ended the probe (a drop, or padding
// waiting there). It reports whether to start padding now, and whether the probe succeeded: for
// ccProbeTime the queue dropped nothing, kept its video wait under ccQueueDelay, and wrote out
// nine tenths of what it took, and it took at least what the video needs (the padding, at
// ccProbeGain times that, did flow). A token bucket's burst or a socket's buffer can take a short
// probe at more than the link's rate; they cannot drain the queue at it.
func (c *congestion) probeStep(now time.Time, qs probeSample, aborted bool) (start, resume bool) {
	if !c.probing {
		if now.Before(c.probeNext) {
			return false, false
		}
		c.probing, c.probeStart, c.probeAt = true, now, qs
		return true, false
	}
	ran := now.Sub(c.probeStart)
	took, wrote := qs.accepted-c.probeAt.accepted, qs.sent-c.probeAt.sent
	switch {
	case aborted || qs.drops != c.probeAt.drops || qs.wait > ccQueueDelay:
	case ran < ccProbeTime:
		return false, false
	case float64(wrote) >= 0.9*float64(took) && float64(took)*8/ran.Seconds() >= c.need:
		c.probing = false
		c.est = max(c.est, ccResumeAbove*c.need)
		c.resumedAt = now
		return false, true
	}
	c.probing, c.probeNext = false, now.Add(ccProbeGap)
	return false, false
}

// probeSample is a send queue's counters for probeStep: media frames dropped, bytes taken and
// written so far, and how long the latest video written waited.
type probeSample struct {
	drops, accepted, sent uint64
	wait                  time.Duration
}

// cut starts a hold on growth after the estimate was cut: 2 s, doubled up to ccHoldMax when the
// previous hold ended less than ccStable ago. A link that keeps refusing a higher rate (a layer up,
// video back) is then tried less and less often instead of every few seconds.
func (c *congestion) cut(now time.Time) {
	switch {
	case now.Before(c.holdUntil):
		return // the same congestion, still being reported
	case c.hold == 0 || now.Sub(c.holdUntil) > ccStable:
		c.hold = ccHoldMin
	default:
		c.hold = min(2*c.hold, ccHoldMax)
	}
	c.holdUntil = now.Add(c.hold)
}

// rtxBudgetFloor is the retransmission allowance a second never goes under: about ten packets.
const rtxBudgetFloor = 12 << 10

// pausedGrowth is the estimate's growth while the video is paused. Audio alone says nothing of
// the link's room, so time is the only probe: the estimate climbs fast and the resume backoff
// (2 s doubling to 30 s) is what spaces the tries, so a freed link gets its video back at the next
// try instead of after a slow climb.
func pausedGrowth(dt float64) float64 {
	g := 1.0
	for range int(dt + 0.5) {
		g *= ccPausedGrowth
	}
	return max(g, 1)
}

func growth(dt float64) float64 {
	g := 1.0
	for range int(dt + 0.5) {
		g *= ccGrowth
	}
	return max(g, 1)
}

// estimate returns the current estimate in bits per second (0 = unknown); for tests and stats.
func (c *congestion) estimate() float64 { return c.est }

// lossy reports whether the latest report shows more loss than retransmission should repair.
func (c *congestion) lossy(now time.Time) bool {
	at := c.reportAt.Load()
	return at != 0 && now.Sub(time.Unix(0, at)) < ccReportMaxAge && float64(c.fraction.Load())/256 > ccHighLoss
}

// allowPLI decides whether a keyframe request from this subscriber goes on to the publisher: never
// while its video is paused (a keyframe is asked for when it resumes), at most every lossyPLIGap
// while its link is lossy, otherwise always (the forwarder merges them).
func (c *congestion) allowPLI(now time.Time) bool {
	if c.pause.Load() {
		return false
	}
	if !c.lossy(now) {
		return true
	}
	next := c.pliOK.Load()
	if now.UnixNano() < next {
		return false
	}
	return c.pliOK.CompareAndSwap(next, now.Add(lossyPLIGap).UnixNano())
}

// videoGate drops one subscriber's video at frame boundaries while its congestion state says pause,
// and lets it through again from a keyframe. It also rewrites sequence numbers so that what the
// subscriber gets is one continuous sequence: a hole would make it ask for packets we chose not to
// send. Owned by the forwarder goroutine, except the atomics the RTCP reader reads.
type videoGate struct {
	dropping bool
	lastTS   uint32 // of the last packet seen: a different one starts a new frame
	off      uint16 // the forwarder's copy of offset
	// pause mirrors the subscription's congestion.pause here, in the down-track's own memory, so
	// the hot path reads no other cache line.
	pause atomic.Bool
	// probe asks for padding in place of the video dropped while paused (see ccProbeGap).
	probe atomic.Bool
	// offset is subtracted from the publisher's sequence numbers (dropped packets so far).
	offset atomic.Uint32
	// validFrom is the first outgoing sequence number NACKs may ask for, +1 (0: any): packets
	// sent before a pause are of no use once the decoder restarts from a keyframe.
	validFrom atomic.Uint32
	dropped   atomic.Uint64
}

// admit decides for one packet while the gate is dropping or asked to pause: forward (with the
// returned outgoing sequence number) or drop. The caller records ts as lastTS afterwards; the
// common case (flowing, no pause) never calls it.
func (g *videoGate) admit(seq uint16, ts uint32, key bool) (uint16, bool) {
	newFrame := ts != g.lastTS
	pause := g.pause.Load()
	switch {
	case g.dropping && key && newFrame && !pause:
		g.dropping = false
		out := seq - g.off
		g.validFrom.Store(uint32(out) + 1)
		return out, true
	case g.dropping || (pause && newFrame):
		if !g.dropping {
			g.dropping = true
			g.validFrom.Store(1 << 17) // nothing sent so far is worth sending again
		}
		g.off++
		g.offset.Store(uint32(g.off))
		g.dropped.Add(1)
		return 0, false
	}
	return seq - g.off, true
}

// pass is the forwarder's path through the gate for one packet (what write does inline).
func (g *videoGate) pass(seq uint16, ts uint32, key bool) (uint16, bool) {
	out, ok := seq-g.off, true
	if g.dropping || g.pause.Load() {
		out, ok = g.admit(seq, ts, key)
	}
	g.lastTS = ts
	return out, ok
}

// nackable maps a sequence number the subscriber asks for back to the publisher's, or reports that
// it is not worth sending (before the last resume, or while dropping).
func (g *videoGate) nackable(out uint16) (uint16, bool) {
	v := g.validFrom.Load()
	switch {
	case v == 0:
	case v > 1<<16:
		return 0, false
	case out-uint16(v-1) >= 0x8000:
		return 0, false
	}
	return out + uint16(g.offset.Load()), true
}

// adapt runs the subscription's congestion tick (once a second, from the sender-report goroutine)
// and applies what it decided.
func (sub *Subscriber) adapt(now time.Time) {
	in := ccInput{now: now, fraction: sub.cc.fraction.Load(), reportAt: sub.cc.reportAt.Load(), rtt: time.Duration(sub.cc.rtt.Load())}
	var video *downTrack
	for _, d := range sub.downs {
		in.sent += d.bytes.Load()
		in.src += d.srcBytes()
		if d.gated {
			video = d
		}
	}
	// A simulcast video goes down to its lowest layer before it is paused, and the loss its layer
	// probes' padding causes is theirs to judge (simulcast.go).
	in.videoCarry = video != nil && (video.sc == nil || video.sc.atLowest(now))
	if video != nil && video.sc != nil && video.sc.quiet(now) {
		in.reportAt = 0
	}
	q := sub.queue.Load()
	if p := sub.path.Load(); q == nil && p != nil && p.Protocol == "udp" && sub.sfu.cfg.SendQueue != nil {
		if q = sub.sfu.sendQueue(*p); q != nil {
			sub.queue.CompareAndSwap(nil, q)
		}
	}
	if q != nil {
		in.queued = true
		st := q.Stats()
		in.qDelay = q.Delay()
		if q != sub.cc.queue {
			// A new path: its first interval began before the queue carried anything (the
			// connection's start, its first keyframe's burst), so it says nothing of the link yet.
			sub.cc.queue, sub.cc.lastQSent, sub.cc.lastQDrops = q, st.Sent.Bytes, st.MediaDropped.Frames
			in.queued = false
		}
		in.qSent, in.qDrop = st.Sent.Bytes-sub.cc.lastQSent, st.MediaDropped.Frames-sub.cc.lastQDrops
		sub.cc.lastQSent, sub.cc.lastQDrops = st.Sent.Bytes, st.MediaDropped.Frames
	}
	dec := sub.cc.tick(in)
	sub.cc.rtxBudget.Store(dec.rtxBudget)
	switch {
	case dec.pause:
		sub.cc.pause.Store(true)
		video.gate.pause.Store(true)
		sub.cc.pauses.Add(1)
		sub.log.Info("video paused: the subscriber's link cannot carry it, audio goes on",
			"estimate_kbps", int(sub.cc.est/1000), "need_kbps", int(sub.cc.need/1000), "loss_pct", int(in.fraction*100/256), "rtt_ms", in.rtt.Milliseconds(),
			"queue_drops", in.qDrop, "queue_wait_ms", in.qDelay.Min.Milliseconds())
		if sub.onPaused != nil {
			sub.onPaused(true)
		}
	case dec.resume:
		sub.resume(video)
	}
	sub.cc.probeWanted.Store(q != nil && video != nil && sub.cc.pause.Load())
}

// resume lets the video of the subscription flow again.
func (sub *Subscriber) resume(video *downTrack) {
	sub.cc.pause.Store(false)
	video.gate.probe.Store(false)
	video.gate.pause.Store(false)
	sub.cc.resumes.Add(1)
	sub.log.Info("video resumed", "estimate_kbps", int(sub.cc.est/1000), "need_kbps", int(sub.cc.need/1000))
	if sub.onPaused != nil {
		sub.onPaused(false)
	}
	// The gate lets video through again from a keyframe; nothing is on screen until it comes.
	video.requestKeyframe(true)
}

// probe runs the probe of a subscription over TCP whose video is paused (probeWanted), every
// 100 ms on the sender-report goroutine (see probeStep).
func (sub *Subscriber) probe(now time.Time) {
	if sub.sc != nil {
		sub.sc.step(now, sub.cc.est, float64(sub.maxBps)) // the layer choice (simulcast.go)
	}
	q := sub.queue.Load()
	var video *downTrack
	for _, d := range sub.downs {
		if d.gated {
			video = d
		}
	}
	if q == nil || video == nil || !sub.cc.pause.Load() {
		return
	}
	qs := probeSample{drops: q.MediaDropped(), accepted: q.Accepted(), sent: q.SentBytes(), wait: q.VideoWait()}
	aborted := sub.cc.probing && !video.gate.probe.Load()
	start, resume := sub.cc.probeStep(now, qs, aborted)
	switch {
	case start:
		sub.cc.probeBps.Store(uint64(ccProbeGain * sub.cc.need / 8))
		sub.cc.probeBase.Store(qs.drops)
		q.ResetVideoWait()
		sub.cc.probeQ.Store(q)
		video.gate.probe.Store(true)
	case resume:
		sub.cc.probeWanted.Store(false)
		sub.resume(video)
	case !sub.cc.probing:
		video.gate.probe.Store(false)
	}
}
