package sfu

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/parley/parley/internal/sendq"
	"github.com/pion/rtcp"
)

// Every subscription owns its down path: what its link takes is estimated from its own feedback,
// and when the stream does not fit, this subscriber's video is paused at a frame boundary and
// resumed at a keyframe, with its audio untouched. Nothing here reaches the publisher or another
// subscriber: the publisher's rate follows its own uplink (TWCC, capped by REMB), as the other
// subscribers deserve, and a weak subscriber's keyframe requests are filtered.
//
// The estimate is loss-based, as libwebrtc's sender side is when it has nothing better: a receiver
// report with more than 10 % loss sets it to what we sent times (1 − loss/2) (or times (1 − loss)
// beyond 30 %, or with a round trip 100 ms over the path's least: the link's capacity showing, a
// bottleneck's queue overflowing), under 2 % loss it grows 12 % a
// second, except during a hold after each cut (2 s, doubling to 16 s while cuts keep coming), so a
// link that refuses a higher rate is offered it less and less often. Random loss of 5–15 % (Wi-Fi) keeps the estimate near the stream's rate and the video
// flowing, repaired by retransmission; a link that carries a quarter of the stream loses three
// quarters of it and pauses at once. A paused video comes back only once a probe (padding in its
// place) got through: over TCP its send queue says so, over UDP the subscriber's NACKs and
// reports. The state is updated once a second per subscription from the
// sender-report goroutine; the forwarder's hot path reads one atomic.
const (
	ccHighLoss = 0.10 // above: the estimate follows what got through
	// ccCongestedLoss: above in two reports in a row (or over half in one), the loss is a
	// bottleneck's, not a radio's: the estimate is what got through, not libwebrtc's (1 − loss/2)
	// of what was sent. One report alone can say 49 % on a link with 5 % random loss (the
	// weak-network bed, at a subscriber's start).
	ccCongestedLoss = 0.30
	ccLowLoss       = 0.02 // below: the estimate may grow
	ccGrowth        = 1.12 // per second, under low loss and outside a hold
	ccPausedGrowth  = 1.5  // per second while the video is paused (see pausedGrowth)
	// ccHoldMin/Max bound the hold on growth after a cut (see cut).
	ccHoldMin      = 2 * time.Second
	ccHoldMax      = 16 * time.Second
	ccPauseBelow   = 0.80 // pause video when the estimate is under this share of what the stream needs
	ccResumeAbove  = 1.10 // resume it when the estimate is this share above it
	ccReportMaxAge = 3 * time.Second
	ccMaxRTT       = time.Second // a round trip beyond this is a standing queue, not distance
	// ccQueueRTT: a round trip this much over the path's least is a queue in front of the
	// subscriber; loss with it is the queue overflowing.
	ccQueueRTT    = 100 * time.Millisecond
	ccEstimateCap = 2e6 // bps an estimate may reach above twice the stream's rate
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
	// much again as the video needs (ccProbeGain): a probe that costs only this link, and its
	// audio nothing (the send queue writes padding only into room the link has left, never in
	// front of audio, and drops what finds none: sendq.Padding), never the publisher a keyframe.
	// If the link carried what the video needs, video resumes: a freed link has its video back
	// within about ccProbeGap + ccProbeTime. A token bucket's burst and the socket's buffers take
	// a probe's first few hundred milliseconds whole, so it is judged from ccProbeSettle on,
	// once they are full: judged from its start, a probe passed on a 150 kbit/s ICE-TCP link
	// whose 4 kB burst and buffers took the excess over a simulcast video's lowest layer, and the
	// video resumed into it twice. (Padding at 3x the need and no end at the padding's first
	// drops, tried instead, had the bed's TCP subscribers conceal 36-46 % of their audio.) The
	// probe runs on the sender reports' 100 ms clock, not the estimate's second.
	// A failed probe ends at its padding's first drops, 0.2-0.3 s in on the bed's 150 kbit/s
	// links, so the cycle is mostly the gap, and a freed link waits for the next probe and then
	// all of it: with 0.8 s of gap and 0.9 s of probe a freed ICE-TCP link was back to real time
	// 1.9-2.1 s later (the bound: 2 s). The probe's judged part stays 0.2 s (0.1 s let a
	// burst pass it: TestTCPProbeNotFooledByABurst), and the gap is shortened by only 0.1 s: at
	// 0.5 s the probes' padding cost the bed's paused subscribers 4-6 % of their audio
	// concealed, against under 1 % (TestTCPFreedLinkBackSoon: back within 1.4 s in the model).
	ccProbeGap    = 700 * time.Millisecond
	ccProbeTime   = 700 * time.Millisecond
	ccProbeSettle = 500 * time.Millisecond
	// ccProbePadDrops: a TCP probe whose queue dropped this many padding frames (no room on the
	// link for them) failed. A few, not one: a writer late by a scheduling hiccup drops some.
	ccProbePadDrops = 8
	// ccQueueFullTicks: over TCP, a send queue full (dropping media, or never drained) this many
	// ticks in a row while it got out less than the stream needs pauses the video, however
	// close to the need: the margin of ccPauseBelow is for a loss-based estimate's noise, and
	// kept the lowest layer of a simulcast video (need 157 kbit/s with its audio) flowing into a
	// 150 kbit/s TURN/TCP link for 15 s, its frames shown up to 1.3 s late.
	ccQueueFullTicks = 2
	// ccShortTicks: over UDP, the lowest simulcast layer seen short of the link this many ticks
	// in a row (simulcast lowShort) pauses the video, however close the estimate is to the need.
	ccShortTicks = 2
	// ccUDPProbeGapMin/Max, ccUDPProbeTime: over UDP, where the link's answer is what the
	// subscriber reports (a NACK for a padding packet it missed, a receiver report that covers
	// the probe), a probe costs what it sends: everything the link could not carry was still sent
	// by us. So the first probe comes ccUDPProbeGapMin after a pause, each failed one doubles the
	// gap up to ccUDPProbeGapMax, and so does video paused again within ccStable of resuming. The
	// NACKs that end a probe come only once the bottleneck's queue has overflowed and the packets
	// behind it arrived (0.5 s at 150 kbit/s in the weak-network bed), so a probe pads for
	// ccUDPProbeTime, not ccProbeTime: a failed one costs the link about 28 kB, where 0.6 s cost
	// 50 kB, and at the longest gap probes take a third of a 150 kbit/s link, as 8 s did with
	// 0.6 s, while a freed link waits half as long for its next probe (the bed measured 6.3 s from
	// freeing to video with 8 s). 0.3 s at 1.5x the video is still about twice what a 200 ms queue
	// and a token bucket's burst hide on a link that cannot carry the video.
	// ccUDPProbeWait bounds the wait for a report covering the probe.
	ccUDPProbeGapMin = 2 * time.Second
	ccUDPProbeGapMax = 4 * time.Second
	ccUDPProbeTime   = 300 * time.Millisecond
	ccUDPProbeWait   = 3 * time.Second
	// A paused simulcast video over UDP with transport-wide feedback (delayfeedback.go) has its
	// probes judged by delay as well: a probe fails as soon as a queue of ccUDPProbeQueue stands
	// in front of the subscriber (a few hundred milliseconds in, long before its padding is lost:
	// a failed probe costs the link a short queue, not loss), and passes once a span measured
	// from ccUDPProbeTime into it delivered what the video needs with no queue, without waiting
	// for a receiver report. It pads for up to ccUDPDelayProbeTime to give the feedback that span.
	// Such probes are cheap, so they come every ccUDPDelayGapMin (up to ccUDPDelayGapMax):
	// simulcast's lowest layer needs about 150 kbit/s with its audio, and 0.3 s of padding at
	// 1.5x that fits in the bed's 150 kbit/s tbf (200 ms of queue, 4 KiB of burst), so probes
	// judged by NACKs and reports alone passed on the shaped link; and a freed link waited up to
	// 4 s for its next one. (With a gap doubling to 2 s the bed's freed link waited 0.6-1.9 s for
	// its video; a failed probe costs its 150 kbit/s link about 11 kB, so one every 1.4 s takes
	// under half of what the audio leaves.)
	ccUDPProbeQueue     = 50 * time.Millisecond
	ccUDPDelayProbeTime = 700 * time.Millisecond
	ccUDPDelayGapMin    = time.Second
	ccUDPDelayGapMax    = time.Second
	// ccUDPFullGapMax: the probes of a video without simulcast pad at its whole rate (500 kbit/s
	// and more from the bed's 640x480 publisher, not a lowest layer's 150), so even ended at the
	// first queued feedback each costs a 150 kbit/s link 15-20 kB: their gap doubles from
	// ccUDPDelayGapMin up to this.
	ccUDPFullGapMax = 2 * time.Second
	// ccProbeLoss: a UDP probe that lost more of its padding than this failed.
	ccProbeLoss = 0.10
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
	// resumedBytes is what the video down-track had sent at the last resume (for the pause log).
	resumedBytes uint64
	minRTT       time.Duration
	heavy        int // consecutive reports with loss over ccCongestedLoss, before this one
	// randomLoss is the latest report's loss when nothing showed a queue behind it (0 otherwise):
	// a lossy path with room, whose losses are repaired in full (rtxRepairMax).
	randomLoss float64
	// roomy: the latest tick saw no queue behind the path (randomLoss); read by allowPLI.
	roomy atomic.Bool
	// lossyAt: the latest tick that saw loss over ccLowLoss with no queue behind it, since the
	// path was last seen queued (zero then): a path that loses at random (the simulcast layer
	// choice's lossyPath; one second's loss of such a path reads 0-27 % at 15 %).
	lossyAt time.Time
	// repairCap: the retransmission budget a lossy path's (randomLately) is refilled up to
	// (topUpRepairs), 0 for others; repairAt the video bytes sent at the last refill.
	repairCap int64
	repairAt  uint64
	// The video report's cumulative counters at the last tick that read them (intervalLoss), and
	// the video's holes as of it.
	lossHighest, lossLost uint32
	lossHoles             int64
	lossSet               bool
	// lastPkts and lastNacked: the video packets sent and first asked for again at lastAt.
	lastPkts, lastNacked uint64
	// The probe (probeStep): running since probeStart, the queue as it was then; the next one
	// not before probeNext.
	probing               bool
	probeStart, probeNext time.Time
	probeAt               probeSample
	probeMid              probeSample // the queue at ccProbeSettle into the probe
	probeMidAt            time.Time   // zero before
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
	// A probe over UDP (probeFeedbackStep) reads the subscriber's feedback instead: while the
	// video is paused, all that goes on its SSRC is the probes' padding, so a NACK for one of the
	// probe's sequence numbers is padding the link dropped, and a receiver report whose highest
	// sequence number reaches the probe's last tells whether anything went missing.
	// padFirst and padLast are the outgoing sequence numbers (+1; 0 = none yet) of the probe's
	// first and latest padding, set by the forwarder; probeLost counts NACKs for them (RTCP
	// reader); rrHighest and rrLost are the latest video report's extended highest sequence
	// number and cumulative loss (reportAt says when).
	padFirst, padLast  atomic.Uint32
	probeLost          atomic.Uint64
	probePkts0         atomic.Uint64 // the down-track's padding packets when the probe began
	rrHighest, rrLost  atomic.Uint32
	rrHoles            atomic.Int64 // the video's holes (downTrack) as of that report
	probeEnd           time.Time    // when the running UDP probe stopped padding (zero while it pads)
	probeFB            fbSample     // the feedback as the running UDP probe began
	probeGap           time.Duration
	probeDelay         bool   // the running UDP probe is judged by the transport-wide feedback too
	probeWhy           string // why the last probe failed, for the log
	probes, probesPass atomic.Uint64
	// The send queue's counters at lastAt, and whose they are (a new path starts over).
	queue      *sendq.Conn
	lastQSent  uint64
	lastQDrops uint64
	qFull      int // ticks in a row the queue was full with the video flowing (ccQueueFullTicks)
	short      int // ticks in a row the lowest simulcast layer was short of the link (ccShortTicks)
	// lastVsrc: the video's share of lastSrc; other: the rate of the rest (the audio) in the last
	// tick, which a probe in place of the video does not replace.
	lastVsrc uint64
	other    float64
	// fbShort: over UDP, the transport-wide feedback of a flowing video without simulcast showed
	// its link at its limit (bottleneck); set by the RTCP reader, judged by fbPause at the next
	// 100 ms step. A new subscriber on a 150 kbit/s link was sent 1.5-2 s of a 500 kbit/s stream
	// (160-180 kB, over half of what its link carries in the bed's 16 s) before a receiver report
	// of its loss paused it; the feedback shows the queue in a few hundred milliseconds.
	fbShort atomic.Bool
	// probeQueued: the RTCP reader ended the running UDP probe on a feedback that showed its
	// padding queued (ccUDPProbeQueue).
	probeQueued atomic.Bool
	// fullProbe: the video has no simulcast, so its probes pad at its whole rate (ccUDPFullGapMax).
	fullProbe bool
}

// ccInput is what one tick sees: bytes sent to the subscriber, bytes the publisher's tracks
// carried, and the subscriber's latest report.
type ccInput struct {
	now       time.Time
	sent, src uint64
	// vsrc: the bytes of src that are the video's; lowMean: with simulcast, the lowest layer's
	// rate over the last seconds (0 without simulcast).
	vsrc       uint64
	lowMean    float64
	fraction   uint32 // 0–255
	reportAt   int64  // unix nanos; 0 if none
	rtt        time.Duration
	videoCarry bool // the subscription has video to pause
	// nackLoss is the share of the video packets sent in the interval that the subscriber asked
	// for for the first time (0 when not counted: simulcast judges its NACKs by layer).
	nackLoss float64
	// Over a TCP path, its send queue in the interval: bytes it wrote, media frames it dropped, and
	// how long media waited in it.
	queued       bool
	qSent, qDrop uint64
	qDelay       sendq.Delay
	// probed: the paused video is probed over UDP (probeFeedbackStep), and only a probe that
	// got through resumes it; byDelay: the probes are judged by transport-wide feedback too.
	probed, byDelay bool
	// lowShort: the transport-wide feedback shows the link delivering less than the lowest
	// simulcast layer, which is the one forwarded (simulcast lowShort).
	lowShort bool
	// standing: the transport-wide feedback shows a queue standing in front of the subscriber.
	standing bool
	// fbClear: fresh transport-wide feedback shows no queue at all in front of the subscriber.
	fbClear bool
}

// pausing sets up the backoff and the probes of a video being paused now.
func (c *congestion) pausing(now time.Time, probed, byDelay bool) {
	if c.backoff == 0 || now.Sub(c.resumedAt) > ccStable {
		c.backoff = ccBackoffMin
	} else {
		c.backoff = min(2*c.backoff, ccBackoffMax)
	}
	c.resumeAt = now.Add(c.backoff)
	c.probing, c.probeNext = false, now.Add(ccProbeGap)
	if probed {
		lo, hi := c.udpProbeGaps(byDelay)
		if c.probeGap == 0 || now.Sub(c.resumedAt) > ccStable {
			c.probeGap = lo
		} else {
			c.probeGap = min(max(2*c.probeGap, lo), hi) // it resumed into a link that could not keep it
		}
		c.probeNext = now.Add(c.probeGap)
	}
}

// fbPause decides, at a 100 ms step after the RTCP reader flagged it (fbShort), whether a video
// without simulcast flowing over UDP pauses now: the transport-wide feedback shows its link at its
// limit (bottleneck: a standing queue, delivering slower than sent, lately or with a third of a
// span lost) delivering under ccPauseBelow of what the stream needs. src is the bytes the
// publisher's tracks carried so far (the ticks' count), which give the need before the ticks
// do; with no interval long enough to say, the rate the feedback's span was sent at stands for
// it (a keyframe's burst raises that one, so it is not kept as the need, which sizes the
// probes). The estimate becomes what the link delivered, as a report of its loss would have cut
// it a second or two later.
func (c *congestion) fbPause(now time.Time, sig delaySignal, src uint64, byDelay bool) bool {
	if dt := now.Sub(c.lastAt).Seconds(); !c.lastAt.IsZero() && dt >= 0.2 {
		c.need = max(c.need, float64(src-c.lastSrc)*8/dt)
	}
	need := c.need
	if need == 0 {
		need = sig.sentRate
	}
	link := linkRate(sig)
	if c.pause.Load() || !sig.bottleneck(downQueue) || link >= ccPauseBelow*need {
		return false
	}
	c.est = link
	c.cut(now)
	c.pausing(now, true, byDelay)
	return true
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
	srcRate := float64(in.src-c.lastSrc) * 8 / dt
	need := max(srcRate, c.need*0.9)
	c.other = max(srcRate-float64(in.vsrc-c.lastVsrc)*8/dt, 0)
	if in.lowMean > 0 {
		// A simulcast video paused or resumed is its lowest layer, and what that layer needs is
		// what it carries over seconds: a burst of its keyframes (new subscribers, layer
		// switches: 4-5 a second took the bed's 135p layer to 298 kbit/s for 2 s) queues on a
		// link that carries the layer well, and as the need it paused the make-test bed's
		// 300 kbit/s subscriber for 10 s, its probes padding toward a rate the link could not
		// deliver.
		need = min(need, in.lowMean+c.other)
	}
	c.need = need
	c.lastAt, c.lastSent, c.lastSrc, c.lastVsrc = in.now, in.sent, in.src, in.vsrc
	paused := c.pause.Load()

	fresh := in.reportAt != 0 && in.reportAt != c.lastReport && in.now.Sub(time.Unix(0, in.reportAt)) < ccReportMaxAge
	// The loss of the interval is the larger of what the report says and what the subscriber asked
	// for again: Chrome's reports said 0 % in two of four seconds on a 150 kbit/s link losing 70 %
	// of a 540 kbit/s stream (its NACKs never stopped), which kept the video flooding that link for
	// 6–8 s before the pause instead of 2.
	loss := max(float64(in.fraction)/256, in.nackLoss)
	if in.queued {
		// Over TCP nothing is lost on the way: what the subscriber missed, the send queue dropped,
		// and its counters say so (queueFull). The rest is a probe's padding that found no room,
		// which is the probe's answer, not the link's loss (a freed TURN/TCP link, its video just
		// resumed, was paused again on a report of the failed layer probe's padding).
		loss = 0
	}
	queueFull := in.queued && (in.qDrop > 0 || in.qDelay.Frames > 0 && in.qDelay.Min > ccQueueDelay)
	if queueFull && !paused {
		c.qFull++
	} else {
		c.qFull = 0
	}
	if in.lowShort && !paused {
		c.short++
	} else {
		c.short = 0
	}
	if fresh {
		c.lastReport = in.reportAt
		defer func(heavy bool) { // the next report's judgement reads this one's
			if heavy {
				c.heavy++
			} else {
				c.heavy = 0
			}
		}(loss > ccCongestedLoss)
		if in.rtt <= ccMaxRTT {
			c.longRTT = 0
		}
		if in.rtt > 0 {
			// The path's round trip without a queue: the least seen, forgotten by 1 ms a second
			// so a longer route is learnt.
			if c.minRTT == 0 {
				c.minRTT = in.rtt
			}
			c.minRTT = min(in.rtt, c.minRTT+time.Duration(dt*float64(time.Millisecond)))
		}
		// No queue behind the path: a round trip known and at its least, no standing queue in
		// the transport-wide feedback, nothing like a bottleneck's loss. Before any round trip
		// is known (the first report that carries one came 3-5 s after a 15 %-lossy subscriber
		// joined the bed: our sender reports and its reports get lost too), fresh transport-wide
		// feedback with no queue in it says as much: read as a full link's, that loss starved
		// the repairs of the subscriber's first seconds, and a frame left unrepaired froze its
		// picture 3 s, until Chrome asked for a keyframe.
		known := in.rtt > 0 && in.rtt <= c.minRTT+ccQueueRTT
		roomy := loss <= ccCongestedLoss && c.heavy == 0 && !in.queued && !in.standing &&
			(known || in.rtt == 0 && in.fbClear)
		c.roomy.Store(roomy)
		c.randomLoss = 0
		if roomy {
			c.randomLoss = loss
			if loss > ccLowLoss {
				c.lossyAt = in.now
			}
		} else {
			c.lossyAt = time.Time{}
		}
	}
	if queueFull && !paused {
		// The queue in front of a TCP path held media all through the tick or dropped some: the
		// link took what the queue got out (everything on the connection, media or not).
		c.est = float64(in.qSent) * 8 / dt
		c.cut(in.now)
	} else if fresh {
		grow := growth(dt)
		if in.now.Before(c.holdUntil) {
			grow = 1 // right after a cut the link has just shown its limit
		}
		switch {
		case paused:
			if loss < ccLowLoss && c.est > 0 && !in.now.Before(c.holdUntil) {
				c.est *= pausedGrowth(dt)
			}
		case loss > 0.5, loss > ccCongestedLoss && c.heavy > 0, loss > ccHighLoss && c.minRTT > 0 && in.rtt > c.minRTT+ccQueueRTT:
			// A bottleneck dropping what it cannot carry, not random loss (too much of it, or
			// behind a standing queue): the link carries what got through. (A 300 kbit/s link
			// under a 540 kbit/s stream loses 44 %, which the rule below would read as a link of
			// 420 kbit/s, keeping the video flowing with half of it lost.)
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
	case in.videoCarry && !paused && (c.est > 0 && (c.est < ccPauseBelow*need || c.qFull >= ccQueueFullTicks && c.est < need) && in.now.Before(c.holdUntil) || c.short >= ccShortTicks):
		// Only an estimate the link has just cut pauses: one merely left behind by a publisher
		// ramping up between two reports is no limit (the weak-network bed paused an unshaped
		// subscriber for 2.6 s at its start: its estimate 215 kbit/s from the last report, the
		// stream 413 a second later, no report in that tick). Or the transport-wide feedback
		// has shown the lowest simulcast layer short of the link two ticks running (lowShort).
		d.pause = true
		c.pausing(in.now, in.probed, in.byDelay)
	case paused && (in.queued || in.probed):
		// Probes (probeStep over TCP, probeFeedbackStep over UDP), not the estimate's growth, say
		// when video fits again: growth on time alone resumed video into a 150 kbit/s link every
		// few seconds, each time with a keyframe and a second of loss (1.6–2.3× the link).
	case paused && !in.now.Before(c.resumeAt) && c.est >= ccResumeAbove*need:
		d.resume = true
		c.resumedAt = in.now
	}

	// Retransmissions take what the estimate leaves above the media; unknown, half the media
	// rate. A floor keeps a lossy but otherwise fine link repairable.
	media := sentRate
	c.repairCap = 0
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
	// The floor is at most a tenth of the estimate: on a weak link 12 KiB/s of repairs would
	// be most of what it carries.
	floor := int64(rtxBudgetFloor)
	if c.est > 0 {
		floor = min(floor, int64(c.est/80))
	}
	d.rtxBudget = max(min(d.rtxBudget, int64(media/32)), floor, int64(media/80))
	if c.randomLoss > 0 || c.randomLately(in.now) {
		// Loss with no queue behind it is a lossy path with room, not a full one: the estimate,
		// held at what was sent, leaves nothing above the media, and a tenth of it repaired a
		// 15 %-lossy subscriber's 135p so little that it froze 17.5 s of 25 (the bed,
		// udp:5000:15). Repair it all (repeats included), up to rtxRepairMax of the stream at
		// its recent peak (need): not sized on the last second's loss and media, which read
		// 3-27 % at 15 % and miss a keyframe's second (sized so, the bed's 540p at 15 % was
		// refused 13-18 repairs in a second, and froze 0.45-0.6 s each time).
		d.rtxBudget = max(d.rtxBudget, int64(max(media, need)*rtxRepairMax/8))
		c.repairCap = d.rtxBudget // topUpRepairs refills it up to this
	}
	return d
}

// rtxRepairMax bounds the repairs of a lossy path as a share of the media rate (a quarter, as
// the estimate-driven budget is bounded): 15 % lost needs about a fifth, its repeats included.
const rtxRepairMax = 0.25

// topUpRepairs refills a lossy path's retransmission budget every 100 ms with rtxRepairMax of the
// video sent since, up to what the tick set it to (repairCap): the repairs follow the media as it
// is sent. Set once a second on the second before, the budget ran out when a layer's rate jumped
// (the bed at 15 % lost: the publisher's 270p layer grew as its 540p one started), and the
// subscriber's asks for what it missed, refused, stalled its picture 3.3 s until a keyframe.
func (sub *Subscriber) topUpRepairs() {
	c := sub.cc
	var media uint64
	for _, d := range sub.downs {
		if d.gated {
			media = d.bytes.Load() - d.rtxB.Load() - d.padB.Load()
		}
	}
	add := int64(float64(media-c.repairAt) * rtxRepairMax)
	c.repairAt = media
	if c.repairCap <= 0 || add <= 0 {
		return
	}
	if b := c.rtxBudget.Load(); b < c.repairCap {
		c.rtxBudget.Add(min(add, c.repairCap-b))
	}
}

// randomLately reports whether the path lost at random lately (lossyAt, lossyFor). A tick that
// sees a queue behind the path clears lossyAt, so it implies the latest tick's roomy.
func (c *congestion) randomLately(now time.Time) bool {
	return !c.lossyAt.IsZero() && now.Sub(c.lossyAt) < lossyFor
}

// probeStep advances the probe of a subscription over TCP whose video is paused, every 100 ms.
// qs is its send queue's state; aborted says the forwarder ended the probe (a media drop, or
// video waiting there). It reports whether to start padding now, and whether the probe
// succeeded: for ccProbeTime the queue dropped no media and fewer than ccProbePadDrops padding
// frames and kept its video wait under ccQueueDelay, and from ccProbeSettle on it wrote out nine
// tenths of what it took, at least what the video needs (the padding, at ccProbeGain times that,
// did flow). A token bucket's burst or a socket's buffer can take a short probe at more than the
// link's rate; they cannot drain the queue at it once full.
func (c *congestion) probeStep(now time.Time, qs probeSample, aborted bool) (start, resume bool) {
	if !c.probing {
		if now.Before(c.probeNext) {
			return false, false
		}
		c.probing, c.probeStart, c.probeAt, c.probeMidAt = true, now, qs, time.Time{}
		c.probes.Add(1)
		return true, false
	}
	ran := now.Sub(c.probeStart)
	if c.probeMidAt.IsZero() && ran >= ccProbeSettle {
		c.probeMid, c.probeMidAt = qs, now
	}
	var took, wrote, span float64
	if !c.probeMidAt.IsZero() {
		took, wrote, span = float64(qs.accepted-c.probeMid.accepted), float64(qs.sent-c.probeMid.sent), now.Sub(c.probeMidAt).Seconds()
	}
	switch {
	case aborted || qs.drops != c.probeAt.drops || qs.wait > ccQueueDelay:
		c.probeWhy = fmt.Sprintf("media: forwarder ended it %v, %d dropped, video waited %v", aborted, qs.drops-c.probeAt.drops, qs.wait)
	case qs.padDrops-c.probeAt.padDrops >= ccProbePadDrops:
		c.probeWhy = "no room for the padding"
	case ran < ccProbeTime || span <= 0:
		return false, false
	case wrote >= 0.9*took && wrote*8/span >= c.need:
		c.probing = false
		c.est = max(c.est, ccResumeAbove*c.need)
		c.resumedAt = now
		c.probesPass.Add(1)
		return false, true
	default:
		c.probeWhy = fmt.Sprintf("wrote %.0f of %.0f kbit/s taken, video needs %.0f", wrote*8/span/1000, took*8/span/1000, c.need/1000)
	}
	c.probing, c.probeNext = false, now.Add(ccProbeGap)
	return false, false
}

// fbSample is what probeFeedbackStep reads of a UDP probe: the padding's bytes so far (all
// probes), the running probe's padding packets NACKed and sent and its last sequence number (+1,
// 0 = none), and the latest receiver report of the video.
type fbSample struct {
	padded uint64
	// lost and pkts are the running probe's padding packets NACKed and sent.
	lost, pkts        uint64
	last              uint32
	rrAt              int64 // unix nanos, 0: none yet
	rrHighest, rrLoss uint32
	// byDelay: the subscriber sends transport-wide feedback of the padding, read in sig; queued:
	// the RTCP reader ended the probe on a feedback that showed its padding queued (probeQueued).
	byDelay, queued bool
	sig             delaySignal
}

// probeFeedbackStep advances the probe of a subscription over UDP whose video is paused, every
// 100 ms. It reports whether to start padding, whether to stop (the probe's time is up, or the
// link dropped some), and whether the probe passed. It passes when a receiver report sent after
// the padding stopped covers its last packet, the subscriber asked for none of it again, the
// report's cumulative loss grew by under 2 % of the packets it covers, and the padding flowed at
// what the video needs for ccUDPProbeTime. A failed probe doubles the gap to the next one (up to
// ccUDPProbeGapMax); a passed one resets it. With transport-wide feedback (byDelay) a standing
// queue fails it at once and a span that delivered the video's need without one passes it (see
// ccUDPProbeQueue).
func (c *congestion) probeFeedbackStep(now time.Time, s fbSample, rtt time.Duration) (start, stop, resume bool) {
	if !c.probing {
		if now.Before(c.probeNext) {
			return false, false, false
		}
		c.probing, c.probeStart, c.probeEnd, c.probeFB, c.probeDelay = true, now, time.Time{}, s, s.byDelay
		c.probes.Add(1)
		return true, false, false
	}
	fail := probeRefused(s.lost, s.pkts)
	c.probeWhy = "nack"
	if s.queued && !fail {
		fail, c.probeWhy = true, fmt.Sprintf("delay: a feedback showed %v queued", ccUDPProbeQueue)
	}
	if sig := s.sig; !fail && c.probeDelay && sig.ok {
		switch {
		case sig.standing(ccUDPProbeQueue):
			fail, c.probeWhy = true, fmt.Sprintf("delay: %v queued, delivered %.0f kbit/s", sig.queue, sig.rate/1000)
		case now.Sub(c.probeStart) >= ccUDPProbeTime && sig.rateAt.After(c.probeStart.Add(ccUDPProbeTime)) && sig.queue < ccUDPProbeQueue && sig.rate >= c.need:
			// A span of the probe's own packets (one closed earlier may hold the last probe's)
			// got through at the video's need, and nothing queued.
			return false, true, c.probePassed(now)
		}
	}
	padFor := ccUDPProbeTime
	if c.probeDelay {
		padFor = ccUDPDelayProbeTime
	}
	if !fail && c.probeEnd.IsZero() {
		if now.Sub(c.probeStart) < padFor {
			return false, false, false
		}
		c.probeEnd = now // the padding stops; the subscriber's report of it is awaited
		return false, true, false
	}
	if !fail {
		b := c.probeFB
		covered := s.last != 0 && s.rrAt > c.probeEnd.UnixNano() && int16(uint16(s.rrHighest)-uint16(s.last-1)) >= 0
		switch {
		case covered:
			took := float64(s.padded-b.padded) * 8 / c.probeEnd.Sub(c.probeStart).Seconds()
			expected, lost := s.rrHighest-b.rrHighest, (s.rrLoss-b.rrLoss)&0xFFFFFF
			if took >= c.need && (b.rrAt == 0 || expected == 0 || float64(lost) < ccProbeLoss*float64(expected)) {
				return false, true, c.probePassed(now)
			}
			c.probeWhy = fmt.Sprintf("report: %d of %d lost, padded at %.0f kbit/s", lost, expected, took/1000)
		case now.Sub(c.probeEnd) > ccUDPProbeWait, s.rrAt > c.probeEnd.Add(rtt+400*time.Millisecond).UnixNano():
			// No report covers the probe: its last packets were lost (nothing after them made a
			// gap to NACK), or the subscriber sends no reports.
			c.probeWhy = "no report covers it"
		default:
			return false, false, false
		}
	}
	c.probing = false
	lo, hi := c.udpProbeGaps(c.probeDelay)
	c.probeGap = min(max(2*c.probeGap, lo), hi)
	c.probeNext = now.Add(c.probeGap)
	return false, true, false
}

// probePassed ends a UDP probe that passed: the video resumes.
func (c *congestion) probePassed(now time.Time) bool {
	c.probing = false
	c.probeGap, _ = c.udpProbeGaps(c.probeDelay)
	c.est = max(c.est, ccResumeAbove*c.need)
	c.resumedAt = now
	c.probesPass.Add(1)
	return true
}

// udpProbeGaps is the least and the most time between UDP probes of a paused video: probes judged
// by transport-wide feedback see a queue early, so they cost less and may come more often (less
// often when they pad at a whole stream's rate: fullProbe).
func (c *congestion) udpProbeGaps(byDelay bool) (lo, hi time.Duration) {
	switch {
	case byDelay && c.fullProbe:
		return ccUDPDelayGapMin, ccUDPFullGapMax
	case byDelay:
		return ccUDPDelayGapMin, ccUDPDelayGapMax
	}
	return ccUDPProbeGapMin, ccUDPProbeGapMax
}

// probeLoss is the RTCP reader's check of one NACKed outgoing sequence number: while the video is
// paused, the current probe's padding packets missing are the link refusing the probe. It reports
// whether the probe has now lost too much (probeRefused), given the padding packets the
// down-track has sent so far.
//
// Not over TCP (probeQ set): there the send queue drops the padding the link has no room for, the
// subscriber NACKs each gap, and probeStep reads the drops; the NACKs, counted across probes
// (TCP probes reset none of the UDP counters), ended every probe at its first lost padding packet
// once the weak link had refused a tenth of all padding ever sent (weak-network bed: a freed link
// kept failing probes).
func (c *congestion) probeLoss(out uint16, padded uint64) bool {
	f, l := c.padFirst.Load(), c.padLast.Load()
	if f == 0 || l == 0 || !c.pause.Load() || c.probeQ.Load() != nil || out-uint16(f-1) > uint16(l-1)-uint16(f-1) {
		return false
	}
	return probeRefused(c.probeLost.Add(1), padded-c.probePkts0.Load())
}

// probeRefused: a probe that lost more than ccProbeLoss of its padding packets (and at least three:
// one lost packet on a radio link is not the link's capacity) failed.
func probeRefused(lost, sent uint64) bool {
	return lost >= 3 && float64(lost) > ccProbeLoss*float64(sent)
}

// probeSample is a send queue's counters for probeStep: media frames dropped, padding frames
// dropped, bytes taken and written so far, and how long the latest video written waited.
type probeSample struct {
	drops, padDrops, accepted, sent uint64
	wait                            time.Duration
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

// ccLossMinPackets: an interval of fewer packets than this says too little of the link's loss;
// the report's own fraction stands for it.
const ccLossMinPackets = 20

// intervalLoss returns the loss of the video since the last tick, 0–255 like a report's fraction,
// from the latest report's cumulative counters (extended highest sequence number, packets lost);
// frac, the report's own fraction, when the interval holds fewer than ccLossMinPackets. Chrome
// adds a report to every NACK it sends, each covering the few milliseconds since the one before:
// on a link losing 15 % at random, fractions of 0, 33, 49 and 66 % came second after second, and
// the 66 % paused the video as a bottleneck's loss.
// What the publisher's uplink lost is not the subscriber's link's: the report's fraction leaves
// it out already, and the counters' loss is taken less the holes (downTrack) left in the video's
// numbering meanwhile, which the report counted as lost.
func (c *congestion) intervalLoss(highest, lost uint32, holes int64, frac uint32) (loss uint32, counted bool) {
	prevHi, prevLost, prevHoles, set := c.lossHighest, c.lossLost, c.lossHoles, c.lossSet
	c.lossHighest, c.lossLost, c.lossHoles, c.lossSet = highest, lost, holes, true
	expected := highest - prevHi
	if !set || expected < ccLossMinPackets || expected >= 1<<15 {
		return frac, false // too few packets, or a new stream's numbering
	}
	// The cumulative loss is a signed 24-bit number: duplicates make it go down.
	d := max(int64(int32((lost-prevLost)<<8)>>8)-(holes-prevHoles), 0)
	return uint32(min(d*256/int64(expected), 255)), true
}

// lossy reports whether the latest report shows more loss than retransmission should repair: not
// on a path with no queue behind it, whose loss is repaired in full (randomLoss); its requests are
// those of a decoder the repairs missed, and the forwarder merges them with everyone's.
func (c *congestion) lossy(now time.Time) bool {
	at := c.reportAt.Load()
	return at != 0 && now.Sub(time.Unix(0, at)) < ccReportMaxAge && float64(c.fraction.Load())/256 > ccHighLoss && !c.roomy.Load()
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

// rearmPLI lets this subscriber's next keyframe request pass even on a lossy link: a layer switch
// makes the request about the new layer's keyframe, which the server chose to send, not about the
// link. A squeezed link can lose that keyframe in the queue the old layer left; waiting out
// lossyPLIGap then froze the bed's 300 kbit/s subscriber for about 4 s after its layer came down.
func (c *congestion) rearmPLI() { c.pliOK.Store(0) }

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
	if sub.cc == nil {
		return // an inter-node link's: nothing to adapt (relay.go)
	}
	in := ccInput{now: now, fraction: sub.cc.fraction.Load(), reportAt: sub.cc.reportAt.Load(), rtt: time.Duration(sub.cc.rtt.Load())}
	fresh := in.reportAt != 0 && in.reportAt != sub.cc.lastReport
	if fresh {
		in.fraction, _ = sub.cc.intervalLoss(sub.cc.rrHighest.Load(), sub.cc.rrLost.Load(), sub.cc.rrHoles.Load(), in.fraction)
	}
	var video *downTrack
	for _, d := range sub.downs {
		in.sent += d.bytes.Load()
		in.src += d.srcBytes()
		if d.gated {
			video = d
			in.vsrc = d.srcBytes()
		}
	}
	if video != nil && video.sc != nil {
		in.lowMean = video.sc.meanRate(0)
	}
	// A simulcast video goes down to its lowest layer before it is paused, and the loss its layer
	// probes' padding causes is theirs to judge (simulcast.go).
	in.videoCarry = video != nil && (video.sc == nil || video.sc.atLowest(now))
	if video != nil && video.sc != nil && video.sc.quiet(now) {
		in.reportAt = 0
	}
	if video != nil && video.sc == nil {
		in.nackLoss = sub.cc.nackLoss(video)
	}
	q := sub.tcpQueue()
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
	// Over UDP a paused video is probed with padding and resumed only if the probe got through
	// (probeFeedbackStep), simulcast or not: resumed on the estimate's growth alone, the bed's
	// simulcast subscriber got its video back 4.8-8.7 s after its link was freed (the growth
	// waits out the hold of the cuts that paused it), and would resume into a link still
	// shaped. A simulcast video's probes are judged by its transport-wide feedback too.
	in.probed = q == nil && video != nil
	in.byDelay = in.probed && video.feedback() != nil
	in.lowShort = q == nil && video != nil && video.sc != nil && video.sc.lowShort(now)
	if video != nil {
		sig := video.feedback().signal(now)
		in.standing = sig.standing(downQueue)
		in.fbClear = sig.ok && sig.queue < upQueueRise && sig.prevQ < upQueueRise
		sub.cc.fullProbe = video.sc == nil
	}
	dec := sub.cc.tick(in)
	if sub.log.Enabled(context.Background(), slog.LevelDebug) && video != nil {
		age := int64(-1) // no receiver report in force
		if in.reportAt != 0 {
			age = now.Sub(time.Unix(0, in.reportAt)).Milliseconds()
		}
		sub.log.Debug("congestion tick", "estimate_kbps", int(sub.cc.est/1000), "need_kbps", int(sub.cc.need/1000), "loss_pct", int(in.fraction*100/256),
			"nack_loss_pct", int(in.nackLoss*100), "report_age_ms", age, "rtt_ms", in.rtt.Milliseconds(), "paused", sub.cc.pause.Load(),
			"sent_kB", in.sent/1000, "retransmitted", video.resent.Load(), "nacked", video.nacks.Load(),
			"rtx_skipped_repeat", video.rtx.skipped[rtxSkipRepeat].Load(), "rtx_skipped_budget", video.rtx.skipped[rtxSkipBudget].Load(),
			"rtx_skipped_other", video.rtx.skipped[rtxSkipStale].Load()+video.rtx.skipped[rtxSkipOld].Load()+video.rtx.skipped[rtxSkipMissing].Load(),
			"rtx_budget", dec.rtxBudget, "plis_cut", video.plisCut.Load())
		if fb := video.feedback(); fb != nil {
			// What the transport-wide feedback says of the link, beside the reports.
			sig := fb.signal(now)
			layer0 := 0.0
			if video.sc != nil {
				layer0 = video.sc.rate[0]
			}
			sub.log.Debug("congestion tick: feedback", "ok", sig.ok, "queue_ms", sig.queue.Milliseconds(), "prev_queue_ms", sig.prevQ.Milliseconds(),
				"delivered_kbps", int(sig.rate/1000), "sent_kbps", int(sig.sentRate/1000), "recent_kbps", int(sig.recentRate/1000),
				"slow_ms", sig.slowFor.Milliseconds(), "span_loss", int(sig.spanLoss*100), "layer0_kbps", int(layer0/1000), "min_rtt_ms", sub.cc.minRTT.Milliseconds())
		}
	}
	sub.cc.rtxBudget.Store(dec.rtxBudget)
	switch {
	case dec.pause:
		sub.pauseVideo(now, video, "loss_pct", int(in.fraction*100/256), "rtt_ms", in.rtt.Milliseconds(),
			"queue_drops", in.qDrop, "queue_wait_ms", in.qDelay.Min.Milliseconds())
	case dec.resume:
		sub.resume(video)
	}
	sub.cc.probeWanted.Store(video != nil && sub.cc.pause.Load() && (q != nil || in.probed))
}

// tcpQueue returns the send queue in front of the subscription's TCP path (ICE-TCP, TURN/TCP,
// TURN/TLS), nil over UDP, looking again for one a TURN relay's channel binds late (its path
// reads udp: the relay reaches us over our own UDP port).
func (sub *Subscriber) tcpQueue() *sendq.Conn {
	q := sub.queue.Load()
	if p := sub.path.Load(); q == nil && p != nil && p.Protocol == "udp" && sub.sfu.cfg.SendQueue != nil {
		if q = sub.sfu.sendQueue(*p); q != nil {
			sub.queue.CompareAndSwap(nil, q)
		}
	}
	return q
}

// pauseVideo stops the video of the subscription (at its next frame boundary), which the
// congestion state has just decided; attrs say why, for the log.
func (sub *Subscriber) pauseVideo(now time.Time, video *downTrack, attrs ...any) {
	sub.cc.pause.Store(true)
	video.gate.pause.Store(true)
	sub.cc.pauses.Add(1)
	attrs = append([]any{"estimate_kbps", int(sub.cc.est / 1000), "need_kbps", int(sub.cc.need / 1000)}, attrs...)
	if !sub.cc.resumedAt.IsZero() {
		// What the last resume cost: the video (keyframe, retransmissions) sent until now.
		attrs = append(attrs, "since_resume_ms", now.Sub(sub.cc.resumedAt).Milliseconds(), "since_resume_kB", (video.bytes.Load()-sub.cc.resumedBytes)/1000)
	}
	sub.log.Info("video paused: the subscriber's link cannot carry it, audio goes on", attrs...)
	if sub.onPaused != nil {
		sub.onPaused(true)
	}
}

// nackLoss is the share of the video packets sent since the last tick (new sequence numbers, not
// retransmissions on the media stream) that the subscriber has asked for the first time.
func (c *congestion) nackLoss(video *downTrack) float64 {
	pkts := video.sent.Load() - (video.resent.Load() - video.rtxSent.Load())
	nacked := video.nackedNew.Load()
	dp, dn := pkts-c.lastPkts, nacked-c.lastNacked
	c.lastPkts, c.lastNacked = pkts, nacked
	if dp == 0 {
		return 0
	}
	return min(float64(dn)/float64(dp), 1)
}

// resume lets the video of the subscription flow again.
func (sub *Subscriber) resume(video *downTrack) {
	sub.cc.pause.Store(false)
	video.gate.probe.Store(false)
	video.gate.pause.Store(false)
	sub.cc.resumes.Add(1)
	sub.cc.resumedBytes = video.bytes.Load()
	sub.log.Info("video resumed", "estimate_kbps", int(sub.cc.est/1000), "need_kbps", int(sub.cc.need/1000), "probes", sub.cc.probes.Load())
	if sub.onPaused != nil {
		sub.onPaused(false)
	}
	// The gate lets video through again from a keyframe; nothing is on screen until it comes.
	video.requestKeyframe(true)
}

// probe runs the probe of a subscription whose video is paused (probeWanted), every 100 ms on
// the sender-report goroutine: over TCP its send queue tells (probeStep), over UDP the
// subscriber's feedback (probeFeedbackStep).
func (sub *Subscriber) probe(now time.Time) {
	sub.topUpRepairs()
	q := sub.queue.Load()
	if sub.sc != nil {
		sub.sc.q = nil
		if q != nil {
			sub.sc.q = q // a TCP path: its probes are judged by the send queue (tcpprobe.go)
		}
		sub.sc.step(now, sub.cc.est, float64(sub.maxBps)) // the layer choice (simulcast.go)
	}
	var video *downTrack
	for _, d := range sub.downs {
		if d.gated {
			video = d
		}
	}
	if video == nil {
		return
	}
	if sub.cc.fbShort.Swap(false) && video.sc == nil && sub.tcpQueue() == nil {
		var src uint64 // as the tick counts it
		for _, d := range sub.downs {
			src += d.srcBytes()
		}
		if sig := video.feedback().signal(now); sub.cc.fbPause(now, sig, src, true) {
			sub.pauseVideo(now, video, "delivered_kbps", int(linkRate(sig)/1000), "queue_ms", sig.queue.Milliseconds(), "span_loss", int(sig.spanLoss*100))
			sub.cc.probeWanted.Store(true)
		}
	}
	if !sub.cc.pause.Load() {
		return
	}
	if q == nil {
		sub.probeFeedback(now, video)
		return
	}
	qs := probeSample{drops: q.MediaDropped(), padDrops: q.PaddingDropped(), accepted: q.Accepted(), sent: q.SentBytes(), wait: q.VideoWait()}
	aborted := sub.cc.probing && !video.gate.probe.Load()
	probing := sub.cc.probing
	start, resume := sub.cc.probeStep(now, qs, aborted)
	if probing && !sub.cc.probing && !resume && sub.log.Enabled(context.Background(), slog.LevelDebug) {
		sub.log.Debug("probe failed: video stays paused", "why", sub.cc.probeWhy, "ran_ms", now.Sub(sub.cc.probeStart).Milliseconds())
	}
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

// probeFeedback is probe over UDP.
func (sub *Subscriber) probeFeedback(now time.Time, video *downTrack) {
	c := sub.cc
	s := fbSample{padded: video.padB.Load(), lost: c.probeLost.Load(), pkts: video.padded.Load() - c.probePkts0.Load(), last: c.padLast.Load(),
		rrAt: c.reportAt.Load(), rrHighest: c.rrHighest.Load(), rrLoss: c.rrLost.Load(), queued: c.probeQueued.Load()}
	if fb := video.feedback(); fb != nil {
		s.byDelay, s.sig = true, fb.signal(now)
	}
	rtt := time.Duration(c.rtt.Load())
	if rtt == 0 {
		rtt = defaultRTT
	}
	start, stop, resume := c.probeFeedbackStep(now, s, rtt)
	if stop && !resume && !c.probing {
		sub.log.Debug("probe failed: video stays paused", "why", c.probeWhy, "need_kbps", int(c.need/1000), "padded_kB", (s.padded-c.probeFB.padded)/1000,
			"ran_ms", now.Sub(c.probeStart).Milliseconds(), "next_ms", c.probeGap.Milliseconds())
	}
	switch {
	case start:
		c.padFirst.Store(0)
		c.padLast.Store(0)
		c.probeLost.Store(0)
		c.probeQueued.Store(false) // before the gate's flag, which the RTCP reader reads first
		c.probePkts0.Store(video.padded.Load())
		bps := ccProbeGain * c.need
		if video.sc != nil {
			// Padding in place of the video, beside the audio: the link is offered the probe's
			// margin over everything, not over the video alone (1.74x the need in all, which a
			// 250 kbit/s link, room for 1.5x the 135p layer and its audio, never passed).
			bps = max(bps-c.other, c.need)
		}
		c.probeBps.Store(uint64(bps / 8))
		c.probeQ.Store(nil)
		video.gate.probe.Store(true)
	case resume:
		c.probeWanted.Store(false)
		sub.resume(video)
	case stop:
		video.gate.probe.Store(false)
	}
}

// feedback returns the subscriber's transport-wide feedback of this video, nil until some came.
func (d *downTrack) feedback() *transportCC {
	if d.sc != nil {
		if d.sc.hasFeedback() {
			return d.sc.tcc
		}
		return nil
	}
	if d.track != nil && d.track.tcc != nil && d.track.tcc.feedbacks.Load() > 0 {
		return d.track.tcc
	}
	return nil
}

// onTransportCC reads one transport-wide feedback of the subscriber's (RTCP reader). Over UDP,
// for a video without simulcast (a simulcast one's layer choice reads it at its steps): while the
// video flows, a link at its limit is flagged for the next 100 ms step to judge (fbShort); while a
// probe pads in place of the paused video, a feedback that shows its padding queued ends it now,
// a feedback interval and a step sooner than the step would (padding has no keyframe's burst to
// be mistaken for a queue), as a NACK for its padding does.
func (d *downTrack) onTransportCC(fb *rtcp.TransportLayerCC, now time.Time) {
	t := d.track.tcc
	if t == nil {
		return
	}
	t.onFeedback(fb, now)
	c := d.cc
	if d.sc != nil || !d.gated || c == nil || d.sub == nil || d.sub.queue.Load() != nil {
		return
	}
	switch sig := t.signal(now); {
	case !c.pause.Load():
		if sig.bottleneck(downQueue) {
			c.fbShort.Store(true)
		}
	case d.gate.probe.Load() && c.probeQ.Load() == nil && sig.ok && sig.queue >= ccUDPProbeQueue:
		c.probeQueued.Store(true)
		d.gate.probe.Store(false)
	}
}
