package session

import (
	"context"
	"errors"
	"log/slog"
)

// The model drives media through the interfaces below, which the SFU satisfies through an adapter
// in the wiring: session never imports sfu (internal/archtest), and tests put fakes here.

// Media creates media connections.
type Media interface {
	// Publish negotiates a publisher PeerConnection for the browser's offer; it returns the answer.
	Publish(ctx context.Context, req PublishRequest) (PublishedMedia, string, error)
	// Subscribe negotiates a subscription to pub for the browser's (recvonly) offer.
	Subscribe(ctx context.Context, pub PublishedMedia, req SubscribeRequest) (SubscribedMedia, string, error)
	// SubscribeOffer is Subscribe with our offer instead of the browser's (mediasoup mode); the
	// browser's answer goes to the subscription's SetAnswer. req.Offer is empty.
	SubscribeOffer(ctx context.Context, pub PublishedMedia, req SubscribeRequest) (SubscribedMedia, string, error)
}

// PublishedMedia is one published stream's media connection.
type PublishedMedia interface {
	// Tracks reports which kinds the offer carried.
	Tracks() (audio, video bool)
	AddCandidate(Candidate) error
	// Renegotiate moves the stream to a new PeerConnection (reconnectStream); subscribers stay.
	Renegotiate(ctx context.Context, offer string) (string, error)
	// Path is the candidate pair carrying it (zero before it connects).
	Path() MediaPath
	Close()
}

// SubscribedMedia is one subscription's media connection.
type SubscribedMedia interface {
	// SetAnswer completes a subscription made by SubscribeOffer.
	SetAnswer(answer string) error
	AddCandidate(Candidate) error
	Path() MediaPath
	Close()
}

// PublishRequest asks Media for a publisher connection.
type PublishRequest struct {
	Offer string
	// VideoCodec is the codec the stream must use (CodecVP8, CodecVP9, CodecH264) or CodecAny.
	VideoCodec string
	// Log carries the caller's fields (session, connection, stream).
	Log *slog.Logger
	// OnState is told about ICE/DTLS state changes ("connected", "failed"…); OnPath each candidate
	// pair ICE selects. Both optional; they run on media goroutines and must return quickly.
	OnState func(state string)
	OnPath  func(MediaPath)
	// MaxKbps and MinKbps are the connection's kurentoOptions videoMaxRecvBandwidth and
	// videoMinRecvBandwidth; nil leaves the server's setting.
	MaxKbps, MinKbps *int
	// Loopback: the publisher gets its own media back on the same connection (OpenVidu
	// doLoopback, which Publisher.subscribeToRemote asks for).
	Loopback bool
}

// SubscribeRequest asks Media for a subscription connection.
type SubscribeRequest struct {
	Offer string
	// StreamID labels the subscriber's tracks (the browser's MediaStream id).
	StreamID string
	Log      *slog.Logger
	// OnState, OnPath: as in PublishRequest. OnVideoPaused is told when this subscription's video is
	// paused because its link cannot carry it (true) and when it flows again (false).
	OnState       func(state string)
	OnPath        func(MediaPath)
	OnVideoPaused func(paused bool)
	// MaxKbps is the subscribing connection's kurentoOptions videoMaxSendBandwidth; nil leaves the
	// server's setting.
	MaxKbps *int
}

// Video codecs a publisher may be forced to (OpenVidu's forcedVideoCodec).
const (
	CodecAny  = "" // whatever the publisher offers first
	CodecVP8  = "VP8"
	CodecVP9  = "VP9"
	CodecH264 = "H264"
)

// Errors Media wraps so the model can give the client the right OpenVidu code.
var (
	// ErrMediaSDP: the offer cannot be used.
	ErrMediaSDP = errors.New("unusable session description")
	// ErrMediaCodec: the offer lacks the forced codec (it is also an ErrMediaSDP).
	ErrMediaCodec = errors.New("forced codec not offered")
)

// Candidate is a browser's ICE candidate (RTCIceCandidateInit). An empty Candidate is the end of
// candidates.
type Candidate struct {
	Candidate     string
	SDPMid        *string
	SDPMLineIndex *uint16
}

// MediaPath is the ICE candidate pair that carries a media connection, as seen from the server:
// what a person debugging "I only see myself" needs.
type MediaPath struct {
	// LocalType and RemoteType are ICE candidate types: host, srflx, prflx or relay.
	LocalType  string
	RemoteType string
	// Protocol is udp or tcp.
	Protocol string
	// Local and Remote are ip:port.
	Local  string
	Remote string
	// ViaTURN is set when Remote is a relayed address of our own embedded TURN server.
	ViaTURN bool
}

// String is the compact form used in logs, e.g. "udp host→prflx 10.0.0.5:50000".
func (p MediaPath) String() string {
	if p.Protocol == "" {
		return "none"
	}
	s := p.Protocol + " " + p.LocalType + "→" + p.RemoteType + " " + p.Remote
	if p.ViaTURN {
		s += " (via embedded TURN)"
	}
	return s
}
