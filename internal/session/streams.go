package session

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Streams and subscriptions: what a participant negotiates with the media layer, and the
// operations on them.

// PublishParams is a publishVideo request.
type PublishParams struct {
	Offer string
	Media MediaOptions
	// Loopback sends the stream back to its publisher on the same connection (doLoopback).
	Loopback bool
	// OnMediaEnd, optional, is told when the stream's media connection fails or closes; it runs on
	// a media goroutine and must not block. A publisher with no signaling socket (WHIP) has no
	// other way to be noticed gone.
	OnMediaEnd func()
}

// Publish negotiates c's stream and announces it to the other participants.
func (m *Manager) publish(ctx context.Context, c *Connection, p PublishParams) (StreamInfo, string, error) {
	return m.publishAs(ctx, c, p, "", time.Time{})
}

// publishAs is publish with the stream's id and creation time given (a restored participant's
// stream keeps them), or new ones when sid is empty.
func (m *Manager) publishAs(ctx context.Context, c *Connection, p PublishParams, sid StreamID, createdAt time.Time) (StreamInfo, string, error) {
	m.mu.Lock()
	if err := usable(c); err != nil {
		m.unlock()
		return StreamInfo{}, "", err
	}
	if !c.opts.Role.CanPublish() {
		m.unlock()
		return StreamInfo{}, "", errorf(KindUnauthorized, CodeUserUnauthorized, "Unable to publish video. The user does not have a valid token")
	}
	if c.stream != nil || c.publishing {
		m.unlock()
		return StreamInfo{}, "", errorf(KindConflict, CodeUserAlreadyStreams, "connection %s is already publishing", c.id)
	}
	c.publishing = true
	if sid == "" {
		sid = newStreamID(p.Media.TypeOfVideo, p.Media.HasVideo, c.id)
	}
	codec := resolveCodec(c.sess.props.ForcedVideoCodec, m.opts.Config.ForcedVideoCodec)
	log := m.log.With("session", c.sess.id, "connection", c.id, "stream", sid)
	maxKbps, minKbps, _ := c.opts.bandwidths()
	m.unlock()

	var created atomic.Pointer[PublishedMedia]
	pub, answer, err := m.opts.Media.Publish(ctx, PublishRequest{Offer: p.Offer, VideoCodec: codec, Log: log, MaxKbps: maxKbps, MinKbps: minKbps, Loopback: p.Loopback,
		OnState: func(st string) {
			if pub := created.Load(); pub != nil && st == "connected" {
				m.mediaConnected(c, sid, "", (*pub).Path(), log)
			}
			if (st == "failed" || st == "closed") && p.OnMediaEnd != nil {
				p.OnMediaEnd()
			}
			log.Debug("publisher state", "state", st)
		},
		OnPath: func(p MediaPath) { m.mediaPath(c, sid, "", p, log) }})
	if err == nil {
		created.Store(&pub)
	}

	var cleanup []func()
	defer func() { run(cleanup) }() // after the unlock below
	m.mu.Lock()
	defer m.unlock()
	c.publishing = false
	if err != nil {
		return StreamInfo{}, "", mediaError(err)
	}
	if usable(c) != nil {
		cleanup = append(cleanup, pub.Close)
		return StreamInfo{}, "", errorf(KindNotFound, CodeUserNotFound, "participant left while publishing")
	}
	hasAudio, hasVideo := pub.Tracks()
	p.Media.HasAudio = p.Media.HasAudio && hasAudio
	p.Media.HasVideo = p.Media.HasVideo && hasVideo
	if createdAt.IsZero() {
		createdAt = m.opts.Now()
	}
	c.stream, c.resume = &stream{id: sid, createdAt: createdAt, media: p.Media, pub: pub}, nil
	m.flushCandidates(c, string(c.id), pub.AddCandidate)
	si := c.stream.info()
	m.emit(Event{Kind: WebRTCConnectionCreated, Session: c.sess.id, Connection: c.id, Stream: sid, Time: c.stream.createdAt, Media: c.stream.mediaSnapshot()})
	m.emit(Event{Kind: StreamPublished, Session: c.sess.id, Connection: c.id, Stream: sid, StreamInfo: &si}, m.activeConns(c.sess, c)...)
	log.Info("stream published", "codec", codec)
	return si, answer, nil
}

// resolveCodec maps OpenVidu's forcedVideoCodec to the SFU's choice: MEDIA_SERVER_PREFERRED means VP8
// (what Kurento resolved it to), NONE means whatever the publisher offers first.
func resolveCodec(session, global string) string {
	v := session
	if v == "" {
		v = global
	}
	switch v {
	case "VP8", "VP9", "H264":
		return v
	case "NONE":
		return CodecAny
	default:
		return CodecVP8
	}
}

func mediaError(err error) error {
	var e *Error
	switch {
	case errors.Is(err, ErrMediaCodec):
		e = errorf(KindInvalid, CodeForcedCodec, "%v", err)
	case errors.Is(err, ErrMediaSDP):
		e = errorf(KindInvalid, CodeMediaSDPError, "%v", err)
	default:
		e = errorf(KindInternal, CodeMediaEndpointError, "media error: %v", err)
	}
	e.Err = err
	return e
}

// flushCandidates applies candidates buffered for endpoint. Caller holds m.mu; AddICECandidate only
// queues inside pion, it never blocks on the network.
func (m *Manager) flushCandidates(c *Connection, endpoint string, add func(Candidate) error) {
	for _, cand := range c.pendingCands[endpoint] {
		_ = add(cand)
		c.pendingN--
		c.pendingBytes -= pendingSize(endpoint, cand)
	}
	delete(c.pendingCands, endpoint)
}

// Candidates that arrive before their endpoint exists are kept for it, within these bounds per
// participant (README's bounds table); past them they are dropped, as a browser's extra
// candidates would be. A browser sends a few tens per PeerConnection, each under 300 bytes.
const (
	maxPendingCandidates = 64
	maxPendingBytes      = 32 << 10
)

// pendingSize is what a buffered candidate counts against maxPendingBytes: its endpoint name,
// which keys the buffer, included.
func pendingSize(endpoint string, cand Candidate) int {
	n := len(endpoint) + len(cand.Candidate)
	if cand.SDPMid != nil {
		n += len(*cand.SDPMid)
	}
	return n
}

// Unpublish stops c's own stream (unpublishVideo).
func (m *Manager) stopPublishing(c *Connection) error {
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
	if err := usable(c); err != nil {
		return err
	}
	if c.stream == nil {
		return errorf(KindNotAcceptable, CodeUserNotStreaming, "connection %s is not publishing", c.id)
	}
	cleanup = m.unpublish(c, ReasonUnpublish, othersOnly)
	return nil
}

type subscribeFunc func(context.Context, PublishedMedia, SubscribeRequest) (SubscribedMedia, string, error)

// answerSubscribe applies the browser's answer to the offer of a server-offered subscription.
func (m *Manager) answerSubscribe(c *Connection, sid StreamID, answer string) error {
	m.mu.Lock()
	if err := usable(c); err != nil {
		m.unlock()
		return err
	}
	sub := c.subs[sid.Owner()]
	if sub == nil || sub.stream != sid {
		m.unlock()
		return errorf(KindNotFound, CodeUserNotFound, "no subscription to %s is waiting for an answer: send prepareReceiveVideoFrom first", sid)
	}
	s := sub.sub
	m.unlock()
	if err := s.SetAnswer(answer); err != nil {
		return mediaError(err)
	}
	return nil
}

// Subscribe negotiates a subscription of c to stream sid (receiveVideoFrom, client offer).
func (m *Manager) subscribe(ctx context.Context, c *Connection, sid StreamID, offer string, negotiate subscribeFunc) (string, error) {
	m.mu.Lock()
	if err := usable(c); err != nil {
		m.unlock()
		return "", err
	}
	owner := c.sess.conns[sid.Owner()]
	if owner == nil || !owner.active {
		m.unlock()
		return "", errorf(KindNotFound, CodeUserNotFound, "participant %s not found", sid.Owner())
	}
	if owner.stream == nil || owner.stream.id != sid {
		m.unlock()
		return "", errorf(KindNotAcceptable, CodeUserNotStreaming, "participant %s is not publishing stream %s", owner.id, sid)
	}
	pub, remoteNode := owner.stream.pub, owner.node
	old := c.subs[owner.id]
	if old != nil {
		// A re-subscription (the browser reconnected) replaces the old one, which ends like any other.
		delete(c.subs, owner.id)
		m.emit(Event{Kind: WebRTCConnectionDestroyed, Session: c.sess.id, Connection: owner.id, Stream: old.stream, Subscriber: c.id,
			Reason: ReasonUnsubscribe, Started: old.createdAt, Media: old.src.mediaSnapshot()})
	}
	log := m.log.With("session", c.sess.id, "connection", c.id, "stream", sid)
	_, _, maxKbps := c.opts.bandwidths()
	m.unlock()
	if old != nil {
		old.sub.Close()
	}

	var pulled PublishedMedia
	if remoteNode != "" {
		// Another node's stream: its media crosses to this node once, however many subscribe here.
		var err error
		if pulled, err = m.remote.Pull(ctx, remoteNode, c.sess.id, sid); err != nil {
			return "", errorf(KindInternal, CodeMediaEndpointError, "stream %s cannot be brought from node %s: %v", sid, remoteNode, err)
		}
		pub = pulled
	}
	var created atomic.Pointer[SubscribedMedia]
	sub, answer, err := negotiate(ctx, pub, SubscribeRequest{Offer: offer, StreamID: string(sid), Log: log, MaxKbps: maxKbps,
		OnState: func(st string) {
			if sub := created.Load(); sub != nil && st == "connected" {
				m.mediaConnected(owner, sid, c.id, (*sub).Path(), log)
			}
			log.Debug("subscriber state", "state", st)
		},
		OnPath:        func(p MediaPath) { m.mediaPath(owner, sid, c.id, p, log) },
		OnVideoPaused: func(paused bool) { m.videoPaused(owner, sid, c, paused) }})
	if err != nil {
		if pulled != nil {
			pulled.Close()
		}
		return "", mediaError(err)
	}
	if pulled != nil {
		sub = pulledSub{sub, pulled}
	}
	created.Store(&sub)
	var cleanup []func()
	defer func() { run(cleanup) }() // after the unlock below
	m.mu.Lock()
	defer m.unlock()
	if usable(c) != nil || owner.gone || owner.stream == nil || owner.stream.id != sid || c.subs[owner.id] != nil {
		cleanup = append(cleanup, sub.Close)
		return "", errorf(KindNotFound, CodeUserNotFound, "stream %s went away while subscribing", sid)
	}
	ns := &subscription{stream: sid, createdAt: m.opts.Now(), sub: sub, src: owner.stream}
	c.subs[owner.id] = ns
	m.flushCandidates(c, string(owner.id), sub.AddCandidate)
	m.emit(Event{Kind: WebRTCConnectionCreated, Session: c.sess.id, Connection: owner.id, Stream: sid, Subscriber: c.id,
		Time: ns.createdAt, Media: owner.stream.mediaSnapshot()})
	log.Info("subscribed")
	return answer, nil
}

// ReasonNetworkConstrained is the streamPropertyChanged reason with which one subscriber learns
// that the SFU paused (videoActive false) or resumed (true) its copy of a stream's video because
// its own link cannot carry it. Nobody else is told: the publisher and the others are unaffected.
const ReasonNetworkConstrained = "networkConstrained"

// videoPaused tells subscriber c that its copy of stream sid's video stopped or started again (sfu
// OnVideoPaused). openvidu-browser sees the stream's videoActive change, as when the publisher
// turns its camera off, so an application shows the same placeholder; the reason tells them apart.
// Nothing is said while the publisher's own video is off.
func (m *Manager) videoPaused(owner *Connection, sid StreamID, c *Connection, paused bool) {
	m.mu.Lock()
	defer m.unlock()
	if usable(c) != nil || owner.gone || owner.stream == nil || owner.stream.id != sid || !owner.stream.media.VideoActive {
		return
	}
	m.notify(Event{Kind: StreamPropertyChanged, Session: c.sess.id, Connection: owner.id, Stream: sid,
		Property: &PropertyChange{Property: "videoActive", NewValue: strconv.FormatBool(!paused), Reason: ReasonNetworkConstrained}}, c)
}

// mediaConnected records the candidate pair of a publisher (subscriber empty) or subscription once
// ICE and DTLS are up, and logs it: the first thing to look at when someone sees only themselves.
func (m *Manager) mediaConnected(owner *Connection, sid StreamID, subscriber ConnectionID, path MediaPath, log *slog.Logger) {
	m.recordPath(owner, sid, subscriber, path, log, true)
}

// mediaPath records a pair ICE selected (sfu OnPath). Browsers move after connecting, e.g. from a
// TURN relay to ICE-TCP once that check succeeds; REST's connectionPath and the log follow.
func (m *Manager) mediaPath(owner *Connection, sid StreamID, subscriber ConnectionID, path MediaPath, log *slog.Logger) {
	m.recordPath(owner, sid, subscriber, path, log, false)
}

func (m *Manager) recordPath(owner *Connection, sid StreamID, subscriber ConnectionID, path MediaPath, log *slog.Logger, connected bool) {
	if m.opts.DescribePath != nil {
		path = m.opts.DescribePath(path)
	}
	m.mu.Lock()
	var at *MediaPath
	if subscriber == "" {
		if owner.stream != nil && owner.stream.id == sid {
			at = &owner.stream.path
		}
	} else if c := owner.sess.conns[subscriber]; c != nil && c.subs[owner.id] != nil && c.subs[owner.id].stream == sid {
		at = &c.subs[owner.id].path
	}
	var was MediaPath
	if at != nil {
		was, *at = *at, path
	}
	m.unlock()
	switch {
	case connected:
		log.Info("media connected", "path", path.String())
	case at != nil && was.Protocol != "" && was != path:
		log.Info("media path changed", "path", path.String(), "was", was.String())
	}
}

// Unsubscribe ends c's subscription to the stream of publisher (unsubscribeFromVideo sends the
// publisher's connection id, not a stream id).
func (m *Manager) unsubscribe(c *Connection, publisher ConnectionID) error {
	m.mu.Lock()
	if err := usable(c); err != nil {
		m.unlock()
		return err
	}
	sub := c.subs[publisher]
	if sub == nil {
		m.unlock()
		return errorf(KindNotFound, CodeUserNotFound, "not subscribed to %s", publisher)
	}
	delete(c.subs, publisher)
	m.emit(Event{Kind: WebRTCConnectionDestroyed, Session: c.sess.id, Connection: publisher, Stream: sub.stream, Subscriber: c.id, Reason: ReasonUnsubscribe,
		Started: sub.createdAt, Media: sub.src.mediaSnapshot()})
	m.unlock()
	m.log.Info("unsubscribed", "session", c.sess.id, "connection", c.id, "stream", sub.stream, "reason", ReasonUnsubscribe)
	sub.sub.Close()
	return nil
}

// AddCandidate routes a browser candidate: endpointName is c's own id for its publisher connection,
// or the publisher's id for a subscription. Candidates for endpoints not negotiated yet are kept.
func (m *Manager) addCandidate(c *Connection, endpoint string, cand Candidate) error {
	m.mu.Lock()
	defer m.unlock()
	if err := usable(c); err != nil {
		return err
	}
	var add func(Candidate) error
	if endpoint == string(c.id) && c.stream != nil {
		add = c.stream.pub.AddCandidate
	} else if sub := c.subs[ConnectionID(endpoint)]; sub != nil {
		add = sub.sub.AddCandidate
	}
	if add == nil {
		if size := pendingSize(endpoint, cand); c.pendingN < maxPendingCandidates && c.pendingBytes+size <= maxPendingBytes {
			c.pendingCands[endpoint] = append(c.pendingCands[endpoint], cand)
			c.pendingN++
			c.pendingBytes += size
		}
		return nil
	}
	return add(cand)
}

// ChangeStreamProperty records a property change of c's stream and tells the others. newValue is the
// JSON text the client sent.
func (m *Manager) changeStreamProperty(c *Connection, property, newValue, reason string) error {
	m.mu.Lock()
	defer m.unlock()
	if err := usable(c); err != nil {
		return err
	}
	if c.stream == nil {
		return errorf(KindNotAcceptable, CodeUserNotStreaming, "connection %s is not publishing", c.id)
	}
	if err := applyProperty(&c.stream.media, property, newValue); err != nil {
		return err
	}
	m.emit(Event{Kind: StreamPropertyChanged, Session: c.sess.id, Connection: c.id, Stream: c.stream.id,
		Property: &PropertyChange{Property: property, NewValue: newValue, Reason: reason}}, m.activeConns(c.sess, c)...)
	return nil
}

// applyProperty records a stream property change in md. newValue is the JSON text the client sent.
func applyProperty(md *MediaOptions, property, newValue string) error {
	switch property {
	case "audioActive":
		md.AudioActive = strings.TrimSpace(newValue) == "true"
	case "videoActive":
		md.VideoActive = strings.TrimSpace(newValue) == "true"
	case "videoDimensions":
		// The SDK sends the JSON text of a string holding a JSON object: "{\"width\":…}".
		var dims string
		var obj map[string]any
		if json.Unmarshal([]byte(newValue), &dims) != nil || json.Unmarshal([]byte(dims), &obj) != nil {
			return errorf(KindInvalid, CodeGeneric, "videoDimensions %.64q is not a JSON object in a string", newValue)
		}
		md.VideoDimensions = dims
	}
	return nil
}

// ForceDisconnect evicts target on behalf of moderator by (reason forceDisconnectByUser).
func (m *Manager) forceDisconnect(by *Connection, target ConnectionID) error {
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
	if err := m.moderator(by); err != nil {
		return err
	}
	c := by.sess.conns[target]
	if c == nil || !c.active {
		return errorf(KindNotFound, CodeUserNotFound, "connection %s not found", target)
	}
	if c.node != "" { // its own node evicts it and tells everyone
		node, sess := c.node, c.sess.id
		cleanup = append(cleanup, func() { m.remote.ForceDisconnect(node, sess, target, ReasonForceDisconnectByUser) })
		return nil
	}
	cleanup = m.remove(c, ReasonForceDisconnectByUser, evicted|destroyIfLast)
	return nil
}

// ForceUnpublish stops stream sid on behalf of moderator by (reason forceUnpublishByUser).
func (m *Manager) forceUnpublish(by *Connection, sid StreamID) error {
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
	if err := m.moderator(by); err != nil {
		return err
	}
	c := by.sess.conns[sid.Owner()]
	if c == nil || !c.active || c.stream == nil || c.stream.id != sid {
		return errorf(KindNotFound, CodeUserNotFound, "stream %s not found", sid)
	}
	if c.node != "" {
		node, sess := c.node, c.sess.id
		cleanup = append(cleanup, func() { m.remote.ForceUnpublish(node, sess, sid, ReasonForceUnpublishByUser) })
		return nil
	}
	cleanup = m.unpublish(c, ReasonForceUnpublishByUser, ownerToo)
	return nil
}

func (m *Manager) moderator(c *Connection) error {
	if err := usable(c); err != nil {
		return err
	}
	if c.opts.Role != RoleModerator {
		return errorf(KindUnauthorized, CodeUserUnauthorized, "only a MODERATOR may do that")
	}
	return nil
}

// ReconnectPublisher renegotiates c's stream on a new PeerConnection (reconnectStream); subscribers
// stay attached and nobody is notified.
func (m *Manager) reconnectPublisher(ctx context.Context, c *Connection, offer string) (StreamInfo, string, error) {
	m.mu.Lock()
	if err := usable(c); err != nil {
		m.unlock()
		return StreamInfo{}, "", err
	}
	if c.stream == nil && c.resume != nil {
		// Restored from a lost node: the stream is published here anew under its old id.
		r := *c.resume
		m.unlock()
		return m.publishAs(ctx, c, PublishParams{Offer: offer, Media: r.Media}, r.ID, r.CreatedAt)
	}
	if c.stream == nil {
		m.unlock()
		return StreamInfo{}, "", errorf(KindNotAcceptable, CodeUserNotStreaming, "connection %s is not publishing", c.id)
	}
	st := c.stream
	m.unlock()
	answer, err := st.pub.Renegotiate(ctx, offer)
	if err != nil {
		return StreamInfo{}, "", mediaError(err)
	}
	return st.info(), answer, nil
}
