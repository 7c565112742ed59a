package loadgen

import (
	"context"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Target is a media server the generator can join. OpenVidu speaks OpenVidu 2's public protocol
// (Parley, openvidu-server); bench/livekit-load implements it for LiveKit, so one generator
// measures both with the same load and the same counting.
type Target interface {
	// Name says what the target is, for reports.
	Name() string
	// Join connects one participant to room, publishes pub (possibly nothing) and, when subscribe
	// is set, receives every track the room's other participants publish, now or later, handing
	// each to onTrack on a goroutine that may keep reading it. Join returns once the participant's
	// own publishing is negotiated; subscriptions may complete after it returns.
	Join(ctx context.Context, room, identity string, pub []*webrtc.TrackLocalStaticSample, subscribe bool, onTrack func(RemoteTrack)) (Participant, error)
	// Feedback reports what the generator's subscribers sent back: NACKed sequence numbers and
	// PLIs. Targets that cannot count them return zeros.
	Feedback() (nacks, plis uint64)
	// Info reports what the server offered (simulcast and the like), free text.
	Info() string
}

// Participant is one joined participant; Close leaves the room and releases everything.
type Participant interface {
	Close()
}

// RemoteTrack is one received track and the way to ask its sender for a keyframe.
type RemoteTrack struct {
	Track *webrtc.TrackRemote
	// PLI asks the server for a keyframe of this track.
	PLI func() error
}

// FeedbackCounter is a pion interceptor factory that counts the RTCP feedback PeerConnections
// send. Register it first so it wraps the innermost writer and sees what later interceptors (the
// NACK generator) and the application write.
type FeedbackCounter struct {
	nacks, plis atomic.Uint64
}

// Counts returns the NACKed sequence numbers and PLIs sent so far.
func (f *FeedbackCounter) Counts() (nacks, plis uint64) { return f.nacks.Load(), f.plis.Load() }

// NewInterceptor implements interceptor.Factory.
func (f *FeedbackCounter) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &countingInterceptor{c: f}, nil
}

type countingInterceptor struct {
	interceptor.NoOp
	c *FeedbackCounter
}

func (i *countingInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, attrs interceptor.Attributes) (int, error) {
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.TransportLayerNack:
				for _, n := range p.Nacks {
					i.c.nacks.Add(uint64(len(n.PacketList())))
				}
			case *rtcp.PictureLossIndication:
				i.c.plis.Add(1)
			}
		}
		return w.Write(pkts, attrs)
	})
}
