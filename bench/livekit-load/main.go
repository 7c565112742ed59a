// Command livekit-load drives a LiveKit server with exactly the load parley-load puts on Parley —
// the same flags, media files, counting and report (it is parley-load's engine with LiveKit's Go
// SDK for signalling) — so one benchmark run compares both. It lives in its own module so the
// product's dependency tree never carries LiveKit's.
//
//	livekit-load --url ws://127.0.0.1:7880 --api-key devkey --api-secret secret --subscribers 50,100
//
// Differences that are LiveKit's design, not the load's: a participant has one subscriber
// PeerConnection for all its tracks (OpenVidu: one per subscription), and publishers send one
// encoding (no simulcast), as parley-load does.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/loadgen"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "livekit-load:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("livekit-load", flag.ContinueOnError)
	var cli loadgen.CLI
	cli.Register(fs, "ws://127.0.0.1:7880")
	key := fs.String("api-key", "devkey", "LiveKit API key")
	secret := fs.String("api-secret", "secret", "LiveKit API secret")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, u, err := cli.Config("ws", "wss")
	if err != nil {
		return err
	}
	lksdk.SetLogger(logger.GetDiscardLogger())
	t := &liveKit{url: u.String(), key: *key, secret: *secret, width: cfg.Media.Width, height: cfg.Media.Height}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Execute(ctx, cfg, t, os.Stdout)
}

// liveKit is a loadgen.Target speaking LiveKit's protocol through its Go SDK.
type liveKit struct {
	url, key, secret string
	width, height    int
	fb               loadgen.FeedbackCounter
}

func (l *liveKit) Name() string { return "livekit " + l.url }

func (l *liveKit) Info() string {
	return "LiveKit Go SDK, one encoding per publisher (no simulcast), one subscriber PeerConnection per participant"
}

func (l *liveKit) Feedback() (uint64, uint64) { return l.fb.Counts() }

type participant struct {
	room *lksdk.Room
	once sync.Once
}

func (p *participant) Close() { p.once.Do(p.room.Disconnect) }

func (l *liveKit) Join(ctx context.Context, room, identity string, pub []*webrtc.TrackLocalStaticSample, subscribe bool, onTrack func(loadgen.RemoteTrack)) (loadgen.Participant, error) {
	cb := lksdk.NewRoomCallback()
	cb.ParticipantCallback.OnTrackSubscribed = func(track *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		go onTrack(loadgen.RemoteTrack{Track: track, PLI: func() error { rp.WritePLI(track.SSRC()); return nil }})
	}
	r := lksdk.NewRoom(cb)
	err := r.JoinWithContext(ctx, l.url, lksdk.ConnectInfo{APIKey: l.key, APISecret: l.secret, RoomName: room, ParticipantIdentity: identity},
		lksdk.WithAutoSubscribe(subscribe), lksdk.WithInterceptors([]interceptor.Factory{&l.fb}), lksdk.WithIncludeDefaultInterceptors(true))
	if err != nil {
		return nil, err
	}
	p := &participant{room: r}
	for _, t := range pub {
		opts := &lksdk.TrackPublicationOptions{Name: t.Kind().String()}
		if t.Kind() == webrtc.RTPCodecTypeVideo {
			opts.VideoWidth, opts.VideoHeight = l.width, l.height
		}
		if _, err := r.LocalParticipant.PublishTrack(t, opts); err != nil {
			p.Close()
			return nil, fmt.Errorf("publish %s: %w", t.Kind(), err)
		}
	}
	return p, nil
}

var _ loadgen.Target = (*liveKit)(nil)
