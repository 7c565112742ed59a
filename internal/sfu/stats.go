package sfu

import (
	"sync"

	"github.com/parley/parley/internal/sendq"
)

// Stats are the SFU's counters since start (gauges: Publishers, Subscribers).
type Stats struct {
	Publishers, Subscribers int
	// PacketsIn and BytesIn were received from publishers.
	PacketsIn, BytesIn uint64
	// PacketsOut and BytesOut were sent to subscribers (retransmissions included); over ICE-TCP,
	// packets the send queue dropped are not counted (their bytes to within SRTP's tag size).
	PacketsOut, BytesOut uint64
	// WriteErrors are packets that could not be sent to a subscriber (not yet connected, gone).
	WriteErrors uint64
	// NACKs are sequence numbers subscribers asked for again; Retransmitted of them were still
	// in the buffer and were sent.
	NACKs, Retransmitted uint64
	// KeyframeRequests are PLIs sent to publishers.
	KeyframeRequests uint64
	// LostIn are packets missing from the publishers' RTP sequences when they reached us (network
	// loss on the way in, before any retransmission; reordering counts too).
	LostIn uint64
	// LostOut are packets lost on the way to subscribers, as their RTCP receiver reports say
	// (cumulative per subscription, after retransmissions).
	LostOut uint64
	// ICETCP counts the frames (RTP, RTCP, DTLS, STUN) of every ICE-TCP connection: sent, and
	// dropped by its send queue as stale or over its bound; MediaDropped are the RTP packets.
	ICETCP sendq.Stats
	// RetransmitSkipped are requested packets not sent again, by reason (RetransmitSkipReasons).
	RetransmitSkipped [rtxSkipReasons]uint64
	// VideoPauses and VideoResumes count subscriptions whose link could not carry the video and
	// got audio only, and their returns to video; CongestionDropped are the video packets not sent
	// to them meanwhile.
	VideoPauses, VideoResumes, CongestionDropped uint64
	// KeyframeRequestsFiltered are subscribers' PLI/FIR not passed on to the publisher because
	// their link was congested.
	KeyframeRequestsFiltered uint64
	// RetransmittedRTX are the retransmissions sent on a subscriber's RTX stream (RFC 4588)
	// rather than its media stream: those who negotiated one.
	RetransmittedRTX uint64
	// RetransmittedBytes and PaddingBytes are the parts of BytesOut that were retransmissions
	// and probes' padding (the rest is media sent once).
	RetransmittedBytes, PaddingBytes uint64
	// Probes are the tests of a paused subscription's link with padding, ProbesPassed those that
	// resumed its video.
	Probes, ProbesPassed uint64
	// VideoPaused are the subscriptions whose video is paused now (a gauge): audio only, because
	// their link cannot carry the video.
	VideoPaused int
}

// registry tracks live publishers and subscribers, and the totals of closed ones, so Stats can sum
// per-track counters without any counter shared between forwarding goroutines.
type registry struct {
	mu     sync.Mutex
	pubs   map[*Publisher]struct{}
	subs   map[*Subscriber]struct{}
	closed Stats
}

func (s *SFU) track(p *Publisher, sub *Subscriber) {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	if s.reg.pubs == nil {
		s.reg.pubs, s.reg.subs = map[*Publisher]struct{}{}, map[*Subscriber]struct{}{}
	}
	if p != nil {
		s.reg.pubs[p] = struct{}{}
	}
	if sub != nil {
		s.reg.subs[sub] = struct{}{}
	}
}

func (s *SFU) untrack(p *Publisher, sub *Subscriber) {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	if _, ok := s.reg.pubs[p]; ok && p != nil {
		delete(s.reg.pubs, p)
		p.addTo(&s.reg.closed)
	}
	if _, ok := s.reg.subs[sub]; ok && sub != nil {
		delete(s.reg.subs, sub)
		sub.addTo(&s.reg.closed)
	}
}

// Stats sums the counters of live and closed tracks.
func (s *SFU) Stats() Stats {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	st := s.reg.closed
	st.Publishers, st.Subscribers = len(s.reg.pubs), len(s.reg.subs)
	for p := range s.reg.pubs {
		p.addTo(&st)
	}
	for sub := range s.reg.subs {
		sub.addTo(&st)
		if sub.cc != nil && sub.cc.pause.Load() {
			st.VideoPaused++
		}
	}
	st.subtractDropped(s.tcpQ.Stats())
	return st
}

func (p *Publisher) addTo(st *Stats) {
	p.mu.Lock()
	fs := []*forwarder{p.audio, p.video}
	p.mu.Unlock()
	for _, f := range fs {
		if f != nil {
			st.PacketsIn += f.packets.Load()
			st.BytesIn += f.bytes.Load()
			st.KeyframeRequests += f.plis.Load()
			st.LostIn += f.lost.Load()
		}
	}
}

func (sub *Subscriber) addTo(st *Stats) {
	if sub.cc != nil {
		st.VideoPauses += sub.cc.pauses.Load()
		st.VideoResumes += sub.cc.resumes.Load()
		st.Probes += sub.cc.probes.Load()
		st.ProbesPassed += sub.cc.probesPass.Load()
	}
	for _, d := range sub.downs {
		for i := range st.RetransmitSkipped {
			st.RetransmitSkipped[i] += d.rtx.skipped[i].Load()
		}
		st.KeyframeRequestsFiltered += d.plisCut.Load()
		if d.gated {
			st.CongestionDropped += d.gate.dropped.Load()
		}
		st.PacketsOut += d.sent.Load() + d.rtxSent.Load()
		st.RetransmittedRTX += d.rtxSent.Load()
		st.BytesOut += d.bytes.Load()
		st.RetransmittedBytes += d.rtxB.Load()
		st.PaddingBytes += d.padB.Load()
		st.WriteErrors += d.errs.Load()
		st.NACKs += d.nacks.Load()
		st.Retransmitted += d.resent.Load()
		st.LostOut += d.lost.Load()
	}
}
