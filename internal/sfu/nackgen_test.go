package sfu

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// uplinkModel is a publisher on a modelled uplink, on a fake clock in milliseconds: it sends a
// packet every 10 ms, keeps a second of history and, like Chrome, resends a packet it is asked for
// unless it resent it less than its own round-trip estimate (pubRTT) ago. The uplink delays each
// packet by delay(t) and drops it with probability loss(t); NACKs come back in 5 ms, unharmed.
// The server side is a nackList ticking every nackTick.
type uplinkModel struct {
	delay, loss func(t int64) float64 // ms, probability
	pubRTT      int64                 // ms

	nackMsgs  map[int64]int // NACK messages reaching the publisher, by second
	resends   map[uint16]int
	lost      map[uint16]int64 // originals lost on the uplink: when sent
	repairAt  map[uint16]int64 // when a lost original's retransmission reached the server
	originals int
}

func (m *uplinkModel) run(ms int64) {
	rng := rand.New(rand.NewPCG(1, 2))
	l := newNackList()
	type arrival struct {
		at  int64
		seq uint16
	}
	var inFlight []arrival         // toward the server
	var nacksIn [][2]int64         // [arrival ms, index into nackSets]
	var nackSets [][]uint16        // what each NACK asks for
	sentAt := map[uint16]int64{}   // first send
	lastSend := map[uint16]int64{} // last send
	m.nackMsgs, m.resends, m.lost, m.repairAt = map[int64]int{}, map[uint16]int{}, map[uint16]int64{}, map[uint16]int64{}
	send := func(t int64, seq uint16, resend bool) {
		lastSend[seq] = t
		if rng.Float64() < m.loss(t) {
			if !resend {
				m.lost[seq] = t
			}
			return
		}
		inFlight = append(inFlight, arrival{at: t + int64(m.delay(t)), seq: seq})
	}
	seq := uint16(0)
	for t := int64(0); t < ms; t++ {
		if t%10 == 0 {
			sentAt[seq] = t
			send(t, seq, false)
			m.originals++
			seq++
		}
		// Arrivals at the server, in order of arrival.
		keep := inFlight[:0]
		for _, a := range inFlight {
			if a.at > t {
				keep = append(keep, a)
				continue
			}
			if _, wasLost := m.lost[a.seq]; wasLost {
				if _, done := m.repairAt[a.seq]; !done {
					m.repairAt[a.seq] = t
				}
			}
			l.received(a.seq, t*int64(time.Millisecond))
		}
		inFlight = keep
		if t%int64(nackTick/time.Millisecond) == 0 {
			if due := l.due(t*int64(time.Millisecond), nil); len(due) > 0 {
				nackSets = append(nackSets, due)
				nacksIn = append(nacksIn, [2]int64{t + 5, int64(len(nackSets) - 1)})
			}
		}
		// NACKs reaching the publisher.
		rest := nacksIn[:0]
		for _, n := range nacksIn {
			if n[0] > t {
				rest = append(rest, n)
				continue
			}
			m.nackMsgs[t/1000]++
			for _, s := range nackSets[n[1]] {
				if t-sentAt[s] <= 1000 && t-lastSend[s] >= m.pubRTT {
					m.resends[s]++
					send(t, s, true)
				}
			}
		}
		nacksIn = rest
	}
}

// A publisher whose uplink is congested for 2 s (a 200 ms queue, a third of its packets lost),
// then cut off for 1.5 s: each packet lost to congestion is asked for again only after the repair
// time, so it is resent about as often as it takes to get through once, not once per NACK
// interval while the first resend still queues; almost all of them are repaired; and the packets
// of the outage, gone from the publisher's history before it is back, are not asked for long
// after: NACKs stop within nackMaxAge. (pion's generator asked every 100 ms, for every missing
// packet among the last 512: in this model three resends per lost packet, and NACKs for 4 s
// after the outage; in the bed's pub-udp:150 cell 10 a second for 30 s.)
func TestNACKsToACongestedPublisher(t *testing.T) {
	congested := func(t int64) bool { return t >= 1000 && t < 3000 }
	cut := func(t int64) bool { return t >= 3000 && t < 4500 }
	m := &uplinkModel{
		delay: func(t int64) float64 { return map[bool]float64{true: 200, false: 2}[congested(t) || cut(t)] },
		loss: func(t int64) float64 {
			switch {
			case congested(t):
				return 1.0 / 3
			case cut(t):
				return 1
			}
			return 0
		},
		pubRTT: 10, // Chrome's estimate lags the queue that just built up
	}
	m.run(10000)
	var lost, resent, repaired, most int
	for seq, at := range m.lost {
		if !congested(at) || at >= 2500 {
			continue // not lost to congestion, or its resends may fall into the outage
		}
		lost++
		resent += m.resends[seq]
		most = max(most, m.resends[seq])
		if _, ok := m.repairAt[seq]; ok {
			repaired++
		}
	}
	t.Logf("congestion: %d lost, %d resends, %d repaired, at most %d resends of one; NACKs reaching the publisher by second %v", lost, resent, repaired, most, m.nackMsgs)
	if lost < 40 {
		t.Fatalf("the model lost only %d packets", lost)
	}
	if most > nackMaxTries {
		t.Errorf("a packet was resent %d times, want at most %d", most, nackMaxTries)
	}
	// Each resend is lost a third of the time: about 1.5 resends per lost packet get one through.
	if resent > 2*lost {
		t.Errorf("%d resends for %d lost packets: the publisher resent what was still queued", resent, lost)
	}
	if float64(repaired) < 0.95*float64(lost) {
		t.Errorf("%d of %d lost packets repaired, want ≥ 95 %%", repaired, lost)
	}
	// The outage ends at 4.5 s (its gap is seen by 4.5 s): from 6 s on, nothing is asked for.
	for s := int64(6); s < 10; s++ {
		if m.nackMsgs[s] != 0 {
			t.Errorf("second %d, 1.5 s after the uplink came back: %d NACKs reached the publisher", s, m.nackMsgs[s])
		}
	}
}

// Random loss on a short round trip (the bed's 5 % on the publisher) is still repaired: every lost
// packet gets through within 200 ms.
func TestNACKsRepairRandomLoss(t *testing.T) {
	m := &uplinkModel{delay: func(int64) float64 { return 1 }, loss: func(int64) float64 { return 0.05 }, pubRTT: 2}
	m.run(20000)
	if len(m.lost) < 50 {
		t.Fatalf("the model lost only %d packets", len(m.lost))
	}
	for seq, at := range m.lost {
		if seq > uint16(m.originals-5) {
			continue // the last few have no later packet to show their gap
		}
		r, ok := m.repairAt[seq]
		if !ok || r-at > 200 {
			t.Errorf("packet %d lost at %d ms: repaired %v at %d ms", seq, at, ok, r)
		}
	}
}

// The generator is the one on publishers' PeerConnections: a publisher that skips a sequence
// number is asked for it.
func TestPublisherAskedForMissingPacket(t *testing.T) {
	s := newTestSFU(t, Config{Port: 0})
	pubB, track, _, _, _, _ := setup(t, s)
	const skipped = 40
	streamWith(t, track, func(seq uint16) []byte {
		if seq == skipped {
			return nil
		}
		return []byte{0x10, 1, 2, 3}
	})
	waitRTCP(t, pubB, "a NACK for the skipped packet", func(p rtcp.Packet) bool {
		n, ok := p.(*rtcp.TransportLayerNack)
		if !ok {
			return false
		}
		for _, pair := range n.Nacks {
			for _, seq := range pair.PacketList() {
				if seq == skipped {
					return true
				}
			}
		}
		return false
	})
}
