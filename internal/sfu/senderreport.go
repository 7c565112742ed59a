package sfu

import (
	"time"

	"github.com/pion/rtcp"
)

// Sender reports for every subscriber come from one goroutine of the SFU instead of pion's report
// interceptor, which runs a goroutine and a ticker per PeerConnection and takes a lock and the
// time on every packet it counts (6–9 % of the audio room's CPU, where each subscriber holds one
// PeerConnection per publisher). The forwarder already knows what a report needs: the publisher's
// last RTP timestamp and when it arrived (subscribers get the publisher's timestamps unchanged),
// and each down-track counts its own packets and payload octets.

const (
	// srInterval is how often each down-track reports, as pion's interceptor and libwebrtc do.
	srInterval = time.Second
	// srSlices spreads the reports over the interval so a big room does not send them in one burst.
	srSlices = 10
)

// runSenderReports sends each subscriber's reports, one slice of the subscribers per tick, until
// the SFU is closed.
func (s *SFU) runSenderReports() {
	t := time.NewTicker(srInterval / srSlices)
	defer t.Stop()
	var due, probing []*Subscriber
	for tick := uint32(0); ; tick = (tick + 1) % srSlices {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		due = due[:0]
		s.reg.mu.Lock()
		probing = probing[:0]
		for sub := range s.reg.subs {
			if sub.srSlice == tick {
				due = append(due, sub)
			}
			if sub.stepped() {
				probing = append(probing, sub)
			}
		}
		s.reg.mu.Unlock()
		now := time.Now()
		for _, sub := range due {
			sub.sendReports(now)
			sub.adapt(now)
		}
		for _, sub := range probing {
			sub.probe(now)
		}
		clear(probing)
		clear(due) // let closed subscribers go
	}
}

// stepped reports whether the subscription's probe runs at the coming 100 ms step: a simulcast
// video's layer choice, a paused video's probes, a flowing one's feedback to judge (fbShort).
func (sub *Subscriber) stepped() bool {
	return sub.sc != nil || sub.cc != nil && (sub.cc.probeWanted.Load() || sub.cc.fbShort.Load())
}

// sendReports writes one sender report per down-track that has sent media.
func (sub *Subscriber) sendReports(now time.Time) {
	var pkts []rtcp.Packet
	for _, d := range sub.downs {
		if sr, ok := d.senderReport(now); ok {
			pkts = append(pkts, sr)
		}
	}
	if len(pkts) > 0 {
		_ = sub.pc.WriteRTCP(pkts) // fails only once the PeerConnection is closing
	}
}

// senderReport describes what d has sent so far, its RTP clock extrapolated from the publisher's
// last packet to now (RFC 3550 6.4.1).
func (d *downTrack) senderReport(now time.Time) (*rtcp.SenderReport, bool) {
	b := d.track.out.Load() // a subscriber's down-tracks always have one; taps are not among them
	sent := d.sent.Load()
	ts, at := d.clock()
	if b == nil || sent == 0 || at == 0 {
		return nil, false
	}
	elapsed := now.Sub(time.Unix(0, at))
	rtpTime := ts + uint32(elapsed.Seconds()*float64(d.fwd.codec.ClockRate))
	return &rtcp.SenderReport{
		SSRC:        b.ssrc,
		NTPTime:     ntpTime(now),
		RTPTime:     rtpTime,
		PacketCount: uint32(sent),
		OctetCount:  uint32(d.payload.Load()),
	}, true
}

// ntpTime is t in the 64-bit NTP format: seconds since 1900 and a binary fraction.
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	ns := t.UnixNano()
	secs := uint64(ns/1e9) + unixToNTP
	frac := (uint64(ns%1e9) << 32) / 1e9
	return secs<<32 | frac
}
