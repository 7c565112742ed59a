package session

import "context"

// Participant is the handle Join returns: the operations one joined participant can do. It stays
// valid after the participant leaves; every operation then fails with CodeTransportError (or, for
// Leave and Evict, does nothing).
type Participant struct {
	m *Manager
	c *Connection
}

// ID returns the participant's connection id.
func (p *Participant) ID() ConnectionID { return p.c.id }

// Session returns the id of the participant's session.
func (p *Participant) Session() SessionID { return p.c.sess.id }

// Leave removes a participant that asked to leave (leaveRoom): the others get participantLeft with
// reason disconnect.
func (p *Participant) Leave() { p.m.evict(p.c, ReasonDisconnect) }

// Evict removes the participant for reason. Reasons other than ReasonDisconnect are forced removals:
// every participant, the evicted one included, also gets participantEvicted.
func (p *Participant) Evict(reason string) { p.m.evict(p.c, reason) }

// Publish negotiates the participant's stream and announces it to the others (publishVideo).
func (p *Participant) Publish(ctx context.Context, req PublishParams) (StreamInfo, string, error) {
	return p.m.publish(ctx, p.c, req)
}

// Unpublish stops the participant's own stream (unpublishVideo).
func (p *Participant) Unpublish() error { return p.m.stopPublishing(p.c) }

// ReconnectPublisher renegotiates the participant's stream on a new PeerConnection (reconnectStream
// of its own stream); subscribers stay attached and nobody is notified.
func (p *Participant) ReconnectPublisher(ctx context.Context, offer string) (StreamInfo, string, error) {
	return p.m.reconnectPublisher(ctx, p.c, offer)
}

// ChangeStreamProperty records a property change of the participant's stream and tells the others.
// newValue is the JSON text the client sent.
func (p *Participant) ChangeStreamProperty(property, newValue, reason string) error {
	return p.m.changeStreamProperty(p.c, property, newValue, reason)
}

// Subscribe negotiates a subscription to stream sid with the client's offer (receiveVideoFrom) and
// returns the answer. A second subscription to the same publisher replaces the first.
func (p *Participant) Subscribe(ctx context.Context, sid StreamID, offer string) (string, error) {
	return p.m.subscribe(ctx, p.c, sid, offer, p.m.opts.Media.Subscribe)
}

// PrepareSubscribe starts a subscription to stream sid with our offer, which it returns
// (prepareReceiveVideoFrom, mediasoup mode); AnswerSubscribe completes it. Until then it is the
// participant's subscription to that stream: a new one replaces it, unpublishing or leaving ends it.
func (p *Participant) PrepareSubscribe(ctx context.Context, sid StreamID) (string, error) {
	return p.m.subscribe(ctx, p.c, sid, "", p.m.opts.Media.SubscribeOffer)
}

// AnswerSubscribe applies the browser's answer to PrepareSubscribe's offer (receiveVideoFrom with
// sdpAnswer, or reconnectStream with sdpString).
func (p *Participant) AnswerSubscribe(sid StreamID, answer string) error {
	return p.m.answerSubscribe(p.c, sid, answer)
}

// Unsubscribe ends the subscription to the stream of publisher (unsubscribeFromVideo sends the
// publisher's connection id, not a stream id).
func (p *Participant) Unsubscribe(publisher ConnectionID) error {
	return p.m.unsubscribe(p.c, publisher)
}

// AddCandidate routes a browser candidate: endpoint is the participant's own id for its publisher
// connection, or the publisher's id for a subscription. Candidates for endpoints not negotiated yet
// are kept, up to a bound.
func (p *Participant) AddCandidate(endpoint string, cand Candidate) error {
	return p.m.addCandidate(p.c, endpoint, cand)
}

// Signal sends an application signal from the participant to the participants to (all of them,
// the sender included, when to is empty).
func (p *Participant) Signal(to []ConnectionID, typ, data string) error {
	return p.m.sendSignal("", p.c, to, typ, data)
}

// ForceDisconnect evicts target (reason forceDisconnectByUser); the participant must be a MODERATOR.
func (p *Participant) ForceDisconnect(target ConnectionID) error {
	return p.m.forceDisconnect(p.c, target)
}

// ForceUnpublish stops stream sid (reason forceUnpublishByUser); the participant must be a
// MODERATOR.
func (p *Participant) ForceUnpublish(sid StreamID) error { return p.m.forceUnpublish(p.c, sid) }
