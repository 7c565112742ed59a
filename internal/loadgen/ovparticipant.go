package loadgen

// One participant of an OpenVidu target: its JSON-RPC session, its publisher and subscriber
// PeerConnections, and the notifications it follows.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

type streamInfo struct {
	ID       string `json:"id"`
	HasAudio bool   `json:"hasAudio"`
	HasVideo bool   `json:"hasVideo"`
}

type remoteParticipant struct {
	ID      string       `json:"id"`
	Streams []streamInfo `json:"streams"`
}

// ovParticipant is one joined OpenVidu participant.
type ovParticipant struct {
	t         *OpenVidu
	rpc       *rpcConn
	id        string
	mediaMode string
	onTrack   func(RemoteTrack)
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu       sync.Mutex
	peers    map[string]*ovPeer // by stream owner's connection id (own id = the publisher)
	subs     map[string]bool    // stream ids subscribed or being subscribed
	wantSubs bool
}

// ovPeer is one PeerConnection and the server candidates that arrived before its answer.
type ovPeer struct {
	pc        *webrtc.PeerConnection
	mu        sync.Mutex
	remoteSet bool
	pending   []webrtc.ICECandidateInit
}

func (p *ovPeer) addCandidate(c webrtc.ICECandidateInit) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.remoteSet {
		p.pending = append(p.pending, c)
		return
	}
	_ = p.pc.AddICECandidate(c)
}

func (p *ovPeer) setRemote(d webrtc.SessionDescription) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.pc.SetRemoteDescription(d); err != nil {
		return err
	}
	p.remoteSet = true
	for _, c := range p.pending {
		_ = p.pc.AddICECandidate(c)
	}
	p.pending = nil
	return nil
}

// Join implements Target.
func (t *OpenVidu) Join(ctx context.Context, room, identity string, pub []*webrtc.TrackLocalStaticSample, subscribe bool, onTrack func(RemoteTrack)) (Participant, error) {
	role := "PUBLISHER"
	if len(pub) == 0 {
		role = "SUBSCRIBER"
	}
	token, err := t.token(ctx, room, role)
	if err != nil {
		return nil, err
	}
	// The SDK dials <scheme>://<host of the token>/openvidu; we dial the host we were given (the
	// same server) so a token naming "localhost" or a public name still reaches it, and send the
	// token verbatim.
	ws := *t.base
	ws.Scheme = strings.Replace(ws.Scheme, "http", "ws", 1)
	ws.Path = "/openvidu"
	ws.RawQuery = "sessionId=" + url.QueryEscape(room)
	pctx, cancel := context.WithCancel(context.Background())
	p := &ovParticipant{t: t, onTrack: onTrack, ctx: pctx, cancel: cancel, peers: map[string]*ovPeer{}, subs: map[string]bool{}}
	p.rpc, err = dialRPC(ctx, ws.String(), p.note)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("websocket: %w", err)
	}
	fail := func(err error) (Participant, error) { p.Close(); return nil, err }
	if err := p.rpc.call(ctx, "ping", map[string]any{"interval": 5000}, nil); err != nil {
		return fail(err)
	}
	p.wg.Add(1)
	go p.pinger()
	var jr struct {
		ID             string              `json:"id"`
		Role           string              `json:"role"`
		Value          []remoteParticipant `json:"value"`
		MediaServer    string              `json:"mediaServer"`
		VideoSimulcast bool                `json:"videoSimulcast"`
	}
	// Streams published after the join arrive as participantPublished, possibly right behind the
	// join result: accept them from the start (startSubscribe ignores repeats).
	p.mu.Lock()
	p.wantSubs = subscribe
	p.mu.Unlock()
	err = p.rpc.call(ctx, "joinRoom", map[string]any{"token": token, "session": room, "platform": "parley-load (pion)",
		"sdkVersion": "2.32.2", "metadata": fmt.Sprintf(`{"clientData":%q}`, identity), "secret": "", "recorder": false, "stt": false}, &jr)
	if err != nil {
		return fail(err)
	}
	p.mu.Lock()
	p.id, p.mediaMode = jr.ID, jr.MediaServer
	p.mu.Unlock()
	t.mu.Lock()
	t.media, t.simulcast = jr.MediaServer, jr.VideoSimulcast
	t.mu.Unlock()
	if len(pub) > 0 {
		if err := p.publish(ctx, pub); err != nil {
			return fail(err)
		}
	}
	if subscribe {
		for _, rp := range jr.Value {
			for _, s := range rp.Streams {
				p.startSubscribe(rp.ID, s)
			}
		}
	}
	return p, nil
}

// pinger keeps the server's ping watchdog fed, as the SDK does every 5 s.
func (p *ovParticipant) pinger() {
	defer p.wg.Done()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
			if ch, err := p.rpc.send(p.ctx, "ping", nil); err == nil {
				_ = wait(p.ctx, "ping", ch, nil)
			}
		}
	}
}

// note handles server notifications on the socket's reader goroutine; anything slow goes to a
// goroutine of the participant.
func (p *ovParticipant) note(method string, params json.RawMessage) {
	switch method {
	case "iceCandidate":
		var c struct {
			SenderConnectionID string  `json:"senderConnectionId"`
			Candidate          string  `json:"candidate"`
			SdpMid             *string `json:"sdpMid"`
			SdpMLineIndex      *uint16 `json:"sdpMLineIndex"`
		}
		if json.Unmarshal(params, &c) != nil {
			return
		}
		p.mu.Lock()
		peer := p.peers[c.SenderConnectionID]
		p.mu.Unlock()
		if peer != nil {
			peer.addCandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SdpMid, SDPMLineIndex: c.SdpMLineIndex})
		}
	case "participantPublished":
		var rp remoteParticipant
		if json.Unmarshal(params, &rp) != nil {
			return
		}
		p.mu.Lock()
		want := p.wantSubs
		p.mu.Unlock()
		if want {
			for _, s := range rp.Streams {
				p.startSubscribe(rp.ID, s)
			}
		}
	case "participantUnpublished", "participantLeft":
		var l struct {
			ConnectionID string `json:"connectionId"`
		}
		if json.Unmarshal(params, &l) != nil {
			return
		}
		p.mu.Lock()
		peer := p.peers[l.ConnectionID]
		if l.ConnectionID != p.id {
			delete(p.peers, l.ConnectionID)
		} else {
			peer = nil
		}
		p.mu.Unlock()
		if peer != nil {
			p.wg.Add(1)
			go func() { defer p.wg.Done(); _ = peer.pc.Close() }()
		}
	}
}

// newPeer makes a PeerConnection whose candidates trickle to the server tagged with owner (the
// connection id of the stream's publisher, protocol note §3.7), sent only after the request
// carrying the offer so they follow it on the socket.
func (p *ovParticipant) newPeer(api *webrtc.API, owner string) (*ovPeer, func(), error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, err
	}
	peer := &ovPeer{pc: pc}
	var mu sync.Mutex
	var queued []webrtc.ICECandidateInit
	released := false
	sendCand := func(c webrtc.ICECandidateInit) {
		params := map[string]any{"endpointName": owner, "candidate": c.Candidate, "sdpMid": c.SDPMid, "sdpMLineIndex": c.SDPMLineIndex}
		if ch, err := p.rpc.send(p.ctx, "onIceCandidate", params); err == nil {
			p.wg.Add(1)
			go func() { defer p.wg.Done(); _ = wait(p.ctx, "onIceCandidate", ch, nil) }()
		}
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		mu.Lock()
		if !released {
			queued = append(queued, init)
			mu.Unlock()
			return
		}
		mu.Unlock()
		sendCand(init)
	})
	release := func() {
		mu.Lock()
		q := queued
		queued, released = nil, true
		mu.Unlock()
		for _, c := range q {
			sendCand(c)
		}
	}
	p.mu.Lock()
	p.peers[owner] = peer
	p.mu.Unlock()
	return peer, release, nil
}

func (p *ovParticipant) publish(ctx context.Context, tracks []*webrtc.TrackLocalStaticSample) error {
	peer, release, err := p.newPeer(p.t.pubAPI, p.id)
	if err != nil {
		return err
	}
	hasAudio, hasVideo := false, false
	// Audio first, as MediaStream.getTracks() orders a camera stream.
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		for _, tr := range tracks {
			if tr.Kind() != kind {
				continue
			}
			snd, err := peer.pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
			if err != nil {
				return err
			}
			hasAudio = hasAudio || kind == webrtc.RTPCodecTypeAudio
			hasVideo = hasVideo || kind == webrtc.RTPCodecTypeVideo
			p.wg.Add(1)
			go p.drainRTCP(snd.Sender())
		}
	}
	offer, err := peer.pc.CreateOffer(nil)
	if err == nil {
		err = peer.pc.SetLocalDescription(offer)
	}
	if err != nil {
		return err
	}
	params := map[string]any{"sdpOffer": offer.SDP, "doLoopback": false, "hasAudio": hasAudio, "hasVideo": hasVideo,
		"audioActive": hasAudio, "videoActive": hasVideo, "frameRate": 30}
	if hasVideo {
		params["typeOfVideo"] = "CAMERA"
		params["videoDimensions"] = `{"width":640,"height":480}`
	}
	return p.exchange(ctx, release, "publishVideo", params, peer)
}

// drainRTCP reads a sender's RTCP so pion's interceptors (NACK responder) run; publishers loop
// files and cannot honour keyframe requests, as in LiveKit's own load tester.
func (p *ovParticipant) drainRTCP(s *webrtc.RTPSender) {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}

// startSubscribe subscribes to one remote stream once, on a goroutine of the participant.
func (p *ovParticipant) startSubscribe(owner string, s streamInfo) {
	p.mu.Lock()
	if p.subs[s.ID] || owner == p.id || p.ctx.Err() != nil {
		p.mu.Unlock()
		return
	}
	p.subs[s.ID] = true
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
		defer cancel()
		_ = p.subscribe(ctx, owner, s) // a failed subscription shows as a track that never started
	}()
}

func (p *ovParticipant) subscribe(ctx context.Context, owner string, s streamInfo) error {
	peer, release, err := p.newPeer(p.t.subAPI, owner)
	if err != nil {
		return err
	}
	pc := peer.pc
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		ssrc := uint32(tr.SSRC())
		p.onTrack(RemoteTrack{Track: tr, PLI: func() error {
			return pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
		}})
	})
	p.mu.Lock()
	serverOffers := p.mediaMode == "mediasoup"
	p.mu.Unlock()
	if serverOffers {
		// Server-offer mode (protocol note §6.1): the server offers, the client answers.
		var r struct {
			SdpOffer string `json:"sdpOffer"`
		}
		if err := p.rpc.call(ctx, "prepareReceiveVideoFrom", map[string]any{"sender": s.ID, "reconnect": false}, &r); err != nil {
			return err
		}
		if err := peer.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: r.SdpOffer}); err != nil {
			return err
		}
		ans, err := pc.CreateAnswer(nil)
		if err == nil {
			err = pc.SetLocalDescription(ans)
		}
		if err != nil {
			return err
		}
		return p.exchange(ctx, release, "receiveVideoFrom", map[string]any{"sender": s.ID, "sdpAnswer": ans.SDP}, nil)
	}
	for _, k := range []struct {
		has  bool
		kind webrtc.RTPCodecType
	}{{s.HasAudio, webrtc.RTPCodecTypeAudio}, {s.HasVideo, webrtc.RTPCodecTypeVideo}} {
		if !k.has {
			continue
		}
		if _, err := pc.AddTransceiverFromKind(k.kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return err
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	if err != nil {
		return err
	}
	return p.exchange(ctx, release, "receiveVideoFrom", map[string]any{"sender": s.ID, "sdpOffer": offer.SDP}, peer)
}

// exchange sends the request carrying our SDP, lets the queued candidates follow it, and, when
// peer is given, applies the answer in the reply.
func (p *ovParticipant) exchange(ctx context.Context, release func(), method string, params map[string]any, peer *ovPeer) error {
	ch, err := p.rpc.send(ctx, method, params)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	release()
	var r struct {
		SdpAnswer string `json:"sdpAnswer"`
	}
	if err := wait(ctx, method, ch, &r); err != nil || peer == nil {
		return err
	}
	return peer.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: r.SdpAnswer})
}

// Close implements Participant: leaveRoom, then every PeerConnection and the socket.
func (p *ovParticipant) Close() {
	if p.id != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = p.rpc.call(ctx, "leaveRoom", nil, nil)
		cancel()
	}
	p.cancel()
	p.mu.Lock()
	peers := p.peers
	p.peers = map[string]*ovPeer{}
	p.mu.Unlock()
	for _, peer := range peers {
		_ = peer.pc.Close()
	}
	p.rpc.close()
	p.wg.Wait()
	// PeerConnections a subscription goroutine created after the first sweep.
	p.mu.Lock()
	for _, peer := range p.peers {
		_ = peer.pc.Close()
	}
	p.mu.Unlock()
}

var _ Target = (*OpenVidu)(nil)
