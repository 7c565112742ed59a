package loadgen

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// Spread is one Target over several servers of one cluster (the same secret, shared sessions),
// as a load balancer spreads a fan-out over nodes: publishers join the first server, subscribers
// each server in turn, so with n servers each takes 1/n of them and the publishers' streams cross
// to the n-1 others once each.
type Spread struct {
	targets []Target
	next    atomic.Uint64
}

var _ Target = (*Spread)(nil)

// NewSpread spreads participants over targets (at least one).
func NewSpread(targets ...Target) *Spread {
	return &Spread{targets: targets}
}

// Name names the first server and how many there are.
func (s *Spread) Name() string {
	if len(s.targets) == 1 {
		return s.targets[0].Name()
	}
	return fmt.Sprintf("%s and %d more nodes", s.targets[0].Name(), len(s.targets)-1)
}

// Join joins a publisher on the first server, a subscriber on the next in turn.
func (s *Spread) Join(ctx context.Context, room, identity string, pub []*webrtc.TrackLocalStaticSample, subscribe bool, onTrack func(RemoteTrack)) (Participant, error) {
	t := s.targets[0]
	if len(pub) == 0 {
		t = s.targets[(s.next.Add(1)-1)%uint64(len(s.targets))]
	}
	return t.Join(ctx, room, identity, pub, subscribe, onTrack)
}

// Feedback adds up what every server's subscribers sent back.
func (s *Spread) Feedback() (nacks, plis uint64) {
	for _, t := range s.targets {
		n, p := t.Feedback()
		nacks += n
		plis += p
	}
	return nacks, plis
}

// Info is the first server's.
func (s *Spread) Info() string { return s.targets[0].Info() }
