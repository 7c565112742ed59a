package signaling

import (
	"context"

	"github.com/parley/parley/internal/session"
)

// Model is the session model as signaling calls it. Joining is the only entry point; everything a
// participant does afterwards goes through the handle Join returns. Tests put a hand-written fake
// here.
type Model interface {
	// Join consumes token and makes its connection a participant of session id whose
	// notifications go to sink.
	Join(id session.SessionID, token string, j session.JoinInfo, sink session.Sink) (Participant, session.JoinResult, error)
}

// Restorer, optional on a Model, takes over a participant that another node of a cluster held
// until that node was lost: `connect` with a JSON-RPC session id this node does not know asks it.
// On success the participant is this node's, its notifications go to sink, and the SDK goes on
// with reconnectStream for its stream. subs are the streams it was subscribed to on the lost
// node: signaling offers each of them to it anew (forciblyReconnectSubscriber) instead of
// waiting for the SDK to reconnect them, which it does only once its browser's ICE has given up
// on the lost node (about ten seconds).
type Restorer interface {
	Restore(rpc string, ip string, sink session.Sink) (p Participant, subs []session.StreamID, err error)
}

// Participant is one joined participant: its identity and the operations its methods call.
type Participant interface {
	ID() session.ConnectionID
	Session() session.SessionID
	// Leave removes it at its own request (leaveRoom); Evict for reason (a grace timer ran out).
	Leave()
	Evict(reason string)
	// Signal sends an application message to to (everyone, when empty).
	Signal(to []session.ConnectionID, typ, data string) error
	Publisher
	Subscriber
	Moderator
}

// Publisher is what a participant does with its own stream.
type Publisher interface {
	Publish(ctx context.Context, req session.PublishParams) (session.StreamInfo, string, error)
	Unpublish() error
	ReconnectPublisher(ctx context.Context, offer string) (session.StreamInfo, string, error)
	ChangeStreamProperty(property, newValue, reason string) error
}

// Subscriber is what a participant does with other participants' streams.
type Subscriber interface {
	Subscribe(ctx context.Context, sid session.StreamID, offer string) (string, error)
	// PrepareSubscribe and AnswerSubscribe are a subscription whose offer is ours (mediasoup mode).
	PrepareSubscribe(ctx context.Context, sid session.StreamID) (offer string, err error)
	AnswerSubscribe(sid session.StreamID, answer string) error
	Unsubscribe(publisher session.ConnectionID) error
	// AddCandidate hands over a browser's ICE candidate for endpoint (its own connection id for its
	// stream, the publisher's for a subscription).
	AddCandidate(endpoint string, cand session.Candidate) error
}

// Moderator is what a MODERATOR may do to others (the model checks the role).
type Moderator interface {
	ForceDisconnect(target session.ConnectionID) error
	ForceUnpublish(sid session.StreamID) error
}

var _ Participant = (*session.Participant)(nil)

// FromManager adapts the session model to Model. It is needed only because a Go method returning
// the concrete *session.Participant does not satisfy an interface method returning Participant.
func FromManager(m *session.Manager) Model { return manager{m} }

type manager struct{ m *session.Manager }

func (a manager) Join(id session.SessionID, token string, j session.JoinInfo, sink session.Sink) (Participant, session.JoinResult, error) {
	p, res, err := a.m.Join(id, token, j, sink)
	if err != nil {
		return nil, res, err // not a typed nil inside the interface
	}
	return p, res, nil
}
