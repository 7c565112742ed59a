package sfu

import (
	"fmt"
	"time"
)

// Simulcast over a TCP path (ICE-TCP, TURN/TCP, TURN/TLS): the send queue in front of the
// connection (internal/sendq) is the link's answer, as it is for a paused video's probes
// (congestion.go probeStep). Nothing is lost on the way; what the subscriber misses, the queue
// dropped. A probe's padding goes only into room the link has left and the queue drops the rest
// (sendq.Padding), so the subscriber's NACKs and receiver reports count those drops as loss: read
// as the link's loss they failed every probe of a freed link (the weak-network bed: TURN/TCP got
// to 270p within 10 s of being freed where kurento mode showed 540p after 1.3 s). So over TCP a
// probe for a higher layer pads at its full rate at once (padding never waits in front of media,
// so there is nothing to ramp for), and is judged by the queue alone: media dropped there fails
// it; a probe whose padding went out (nearly) whole for tcpProbeTime passes, and one whose padding
// the queue dropped for want of room takes the highest layer below its target that what the link
// carried meanwhile covers with upTakeGain's margin, or fails.
const (
	// tcpProbeTime is how long a probe over TCP pads at its full rate before it passes: long
	// enough that a token bucket's burst and the socket's buffers (bounded by the queue: a few
	// kB) cannot hide a link too narrow for the padding.
	tcpProbeTime = 700 * time.Millisecond
	// tcpPadPass is the share of the probe's padding packets the queue may have dropped for it
	// to pass: a writer late by a scheduling hiccup drops some on any link.
	tcpPadPass = 0.10
	// tcpSettle: what the connection carried is measured from this long into the probe, once the
	// socket's buffers (and a token bucket's burst) have taken what they hold: counted from the
	// start they made a 150 kbit/s link read over 500 and a probe took a layer it could not carry.
	tcpSettle = 200 * time.Millisecond
)

// queueCounters is what the layer choice reads of the send queue in front of a TCP path
// (*sendq.Conn): media and padding frames dropped so far.
type queueCounters interface {
	MediaDropped() uint64
	PaddingDropped() uint64
	SentBytes() uint64
}

// tcpProbe is a probe's starting point over TCP: the queue's drops and the down-track's padding.
type tcpProbe struct {
	media, pads   uint64 // the queue's media and padding frames dropped
	padded, padB  uint64 // the down-track's padding packets and bytes
	lastMediaSeen uint64 // the queue's media drops at the last measure (see measureQueue)
	// sent is the bytes the queue had written at settled (tcpSettle into the probe; zero before).
	sent    uint64
	settled time.Time
}

// measureQueue notes, once a second with measure, whether the queue dropped media since the last
// time: over TCP that is the link's congestion, where the receiver's loss and NACKs also count a
// probe's padding.
func (sc *simulcast) measureQueue() {
	if sc.q == nil {
		sc.qDropped = false
		return
	}
	m := sc.q.MediaDropped()
	sc.qDropped = m != sc.tcp.lastMediaSeen
	sc.tcp.lastMediaSeen = m
}

// startQueueProbe begins a probe over TCP: at its full rate, judged by the queue (checkQueueProbe).
func (sc *simulcast) startQueueProbe(now time.Time) {
	d := sc.main
	sc.up.queue, sc.up.delay, sc.up.capped = true, false, false
	sc.up.full = now
	sc.tcp.media, sc.tcp.pads = sc.q.MediaDropped(), sc.q.PaddingDropped()
	sc.tcp.padded, sc.tcp.padB = d.padded.Load(), d.padB.Load()
	sc.tcp.settled = time.Time{}
	sc.probeBps.Store(uint64(sc.up.pad / 8))
}

// checkQueueProbe is checkProbe over TCP.
func (sc *simulcast) checkQueueProbe(now time.Time) {
	d := sc.main
	ran := now.Sub(sc.up.start)
	media := sc.q.MediaDropped() - sc.tcp.media
	drops := sc.q.PaddingDropped() - sc.tcp.pads
	pkts := d.padded.Load() - sc.tcp.padded
	share := float64(drops) / float64(max(pkts, 1))
	if sc.tcp.settled.IsZero() && ran >= tcpSettle {
		sc.tcp.sent, sc.tcp.settled = sc.q.SentBytes(), now
	}
	switch {
	case media > 0:
		sc.endProbe(now, false, fmt.Sprintf("queue: %d media frames dropped", media))
	case ran < tcpProbeTime || sc.tcp.settled.IsZero() || !now.After(sc.tcp.settled):
	case float64(d.padB.Load()-sc.tcp.padB)*8 < 0.5*sc.up.pad*ran.Seconds():
		// The publisher sent too few frames to pad after (a stall): the probe showed nothing.
		sc.endProbe(now, false, "queue: padded too little")
	case share <= tcpPadPass:
		sc.endProbe(now, true, "")
	default:
		sc.endQueueProbe(now, share)
	}
}

// endQueueProbe ends a probe over TCP whose padding found no room for share of it: it takes the
// highest layer under its target that the link carried (everything the queue wrote since the
// probe settled: the audio is inside upTakeGain's margin), if one is above the current layer, or
// fails.
func (sc *simulcast) endQueueProbe(now time.Time, share float64) {
	cur := sc.fit()
	carried := float64(sc.q.SentBytes()-sc.tcp.sent) * 8 / now.Sub(sc.tcp.settled).Seconds()
	for l := sc.up.target - 1; l > cur; l-- {
		if sc.rate[l] > 0 && upTakeGain*sc.rate[l] <= carried && !sc.skipped(l) {
			sc.up.target = l
			sc.endProbe(now, true, "")
			return
		}
	}
	sc.endProbe(now, false, fmt.Sprintf("queue: no room for %.0f %% of the padding, carried %.0f kbit/s", share*100, carried/1000))
}
