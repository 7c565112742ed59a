package sfu

import (
	"context"
	"fmt"

	"github.com/pion/webrtc/v4"
)

// Server-offered subscriptions: OpenVidu's mediasoup mode (joinRoom mediaServer "mediasoup"). The
// client asks with prepareReceiveVideoFrom, we offer a sendonly description with the publisher's
// tracks, and its answer comes back in receiveVideoFrom (or reconnectStream). The stock client
// only enables simulcast in this mode.

// SubscribeOffer creates a subscription PeerConnection carrying pub's tracks and returns our offer
// (candidates included); the browser's answer goes to SetAnswer. req.Offer is not used.
func (s *SFU) SubscribeOffer(ctx context.Context, pub *Publisher, req SubscribeRequest) (*Subscriber, string, error) {
	sub, senders, err := s.newSubscriber(pub, req, true)
	if err != nil {
		return nil, "", err
	}
	offer, err := sub.pc.CreateOffer(nil)
	if err != nil {
		sub.Close()
		return nil, "", fmt.Errorf("%w: %v", ErrSDP, err)
	}
	if err := setLocal(ctx, sub.pc, offer); err != nil {
		sub.Close()
		return nil, "", err
	}
	sub.start(senders)
	return sub, sub.pc.LocalDescription().SDP, nil
}

// ErrAnswered means a subscription already has the browser's answer.
var ErrAnswered = fmt.Errorf("%w: the subscription is already answered", ErrSDP)

// SetAnswer applies the browser's answer to our offer (SubscribeOffer) and the candidates it sent
// before it.
func (sub *Subscriber) SetAnswer(answer string) error {
	if err := checkSDP(answer); err != nil {
		return err
	}
	sub.earlyMu.Lock()
	defer sub.earlyMu.Unlock()
	if sub.answered.Load() {
		return ErrAnswered
	}
	if err := sub.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("%w: %v", ErrSDP, err)
	}
	sub.answered.Store(true)
	for _, c := range sub.early {
		_ = addCandidate(sub.pc, c) // a bad candidate fails alone, as when it is applied at once
	}
	sub.early = nil
	return nil
}

// maxEarlyCandidates bounds the candidates kept for a subscription waiting for its answer; a
// browser gathers a handful.
const maxEarlyCandidates = 64

// keepCandidate keeps c until the answer arrives; false means the answer is already applied and c
// must go to the PeerConnection.
func (sub *Subscriber) keepCandidate(c Candidate) bool {
	sub.earlyMu.Lock()
	defer sub.earlyMu.Unlock()
	if sub.answered.Load() {
		return false
	}
	if len(sub.early) < maxEarlyCandidates {
		sub.early = append(sub.early, c)
	}
	return true
}
