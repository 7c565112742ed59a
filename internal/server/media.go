package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/parley/parley/internal/ipcam"
	"github.com/parley/parley/internal/session"
	"github.com/parley/parley/internal/sfu"
)

// sessionMedia lets the SFU serve the session model's Media interfaces: session never imports sfu,
// and sfu knows nothing of sessions.
type sessionMedia struct{ s *sfu.SFU }

var (
	_ session.Media           = sessionMedia{}
	_ session.PublishedMedia  = publishedMedia{}
	_ session.SubscribedMedia = subscribedMedia{}
	_ session.Ingester        = sessionMedia{}
)

// Ingest pulls an IP camera: ffprobe says what it sends (within ctx), the SFU binds loopback
// sockets for its tracks, and ffmpeg feeds them, restarted when the camera drops, until the stream
// is closed.
func (m sessionMedia) Ingest(ctx context.Context, req session.IngestRequest) (session.PublishedMedia, session.IngestInfo, error) {
	src, err := ipcam.Probe(ctx, req.URI)
	if err != nil {
		return nil, session.IngestInfo{}, err
	}
	pull, stop := context.WithCancel(context.Background())
	ir := sfu.IngestRequest{Video: src.Video, Audio: src.Audio, Log: req.Log, Stop: stop}
	changed := make(chan struct{}, 1)
	if req.OnlyWithSubscribers {
		ir.OnSubscribers = func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
	pub, addrs, err := m.s.Ingest(ir)
	if err != nil {
		stop()
		return nil, session.IngestInfo{}, err
	}
	run := func(ctx context.Context) { ipcam.Pull(ctx, req.URI, src, addrs.Video, addrs.Audio, req.Log, nil) }
	if req.OnlyWithSubscribers {
		go ipcam.OnDemand(pull, changed, pub.Subscribers, run)
	} else {
		go run(pull)
	}
	return publishedMedia{pub}, session.IngestInfo{Audio: src.Audio, Video: src.Video, Width: src.Width, Height: src.Height, FrameRate: src.FrameRate}, nil
}

func (m sessionMedia) Publish(ctx context.Context, req session.PublishRequest) (session.PublishedMedia, string, error) {
	r := sfu.PublishRequest{Offer: req.Offer, VideoCodec: req.VideoCodec, Log: req.Log, OnState: req.OnState, MaxKbps: req.MaxKbps, MinKbps: req.MinKbps,
		Loopback: req.Loopback}
	if req.OnPath != nil {
		r.OnPath = func(p sfu.Path) { req.OnPath(session.MediaPath(p)) }
	}
	pub, answer, err := m.s.Publish(ctx, r)
	if err != nil {
		return nil, "", mediaErr(err)
	}
	return publishedMedia{pub}, answer, nil
}

func (m sessionMedia) Subscribe(ctx context.Context, pub session.PublishedMedia, req session.SubscribeRequest) (session.SubscribedMedia, string, error) {
	return m.subscribe(ctx, pub, req, m.s.Subscribe)
}

func (m sessionMedia) SubscribeOffer(ctx context.Context, pub session.PublishedMedia, req session.SubscribeRequest) (session.SubscribedMedia, string, error) {
	return m.subscribe(ctx, pub, req, m.s.SubscribeOffer)
}

func (m sessionMedia) subscribe(ctx context.Context, pub session.PublishedMedia, req session.SubscribeRequest,
	negotiate func(context.Context, *sfu.Publisher, sfu.SubscribeRequest) (*sfu.Subscriber, string, error)) (session.SubscribedMedia, string, error) {
	var p publishedMedia
	switch pm := pub.(type) {
	case publishedMedia:
		p = pm
	case pulledMedia:
		p = pm.publishedMedia
	default:
		return nil, "", fmt.Errorf("publisher %T is not the SFU's", pub)
	}
	r := sfu.SubscribeRequest{Offer: req.Offer, StreamID: req.StreamID, Log: req.Log, OnState: req.OnState, OnVideoPaused: req.OnVideoPaused, MaxKbps: req.MaxKbps}
	if req.OnPath != nil {
		r.OnPath = func(p sfu.Path) { req.OnPath(session.MediaPath(p)) }
	}
	sub, answer, err := negotiate(ctx, p.Publisher, r)
	if err != nil {
		return nil, "", mediaErr(err)
	}
	return subscribedMedia{sub}, answer, nil
}

// mediaErr adds the session kind the client's error code comes from, keeping the SFU's text.
func mediaErr(err error) error {
	switch {
	case errors.Is(err, sfu.ErrCodec):
		return kindedErr{session.ErrMediaCodec, err}
	case errors.Is(err, sfu.ErrSDP):
		return kindedErr{session.ErrMediaSDP, err}
	}
	return err
}

type kindedErr struct{ kind, err error }

func (e kindedErr) Error() string   { return e.err.Error() }
func (e kindedErr) Unwrap() []error { return []error{e.kind, e.err} }

// publishedMedia embeds the SFU's publisher so recording reaches its taps and codecs through the
// session model's handle (RecordableStream.Publisher).
type publishedMedia struct{ *sfu.Publisher }

func (p publishedMedia) Tracks() (audio, video bool) { return p.HasAudio(), p.HasVideo() }
func (p publishedMedia) AddCandidate(c session.Candidate) error {
	return p.Publisher.AddCandidate(sfu.Candidate(c))
}
func (p publishedMedia) Path() session.MediaPath { return session.MediaPath(p.Publisher.Path()) }

// pulledMedia is another node's stream brought here (internal/cascade): one handle per
// subscription, whose Close releases the pull, not the shared publisher.
type pulledMedia struct {
	publishedMedia
	release func()
}

func (p pulledMedia) Close() { p.release() }

type subscribedMedia struct{ *sfu.Subscriber }

func (s subscribedMedia) SetAnswer(answer string) error {
	if err := s.Subscriber.SetAnswer(answer); err != nil {
		return mediaErr(err)
	}
	return nil
}

func (s subscribedMedia) AddCandidate(c session.Candidate) error {
	return s.Subscriber.AddCandidate(sfu.Candidate(c))
}
func (s subscribedMedia) Path() session.MediaPath { return session.MediaPath(s.Subscriber.Path()) }
