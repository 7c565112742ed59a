package api_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/api"
	"github.com/parley/parley/internal/session"
	"github.com/parley/parley/internal/sfu"
)

// newMediaEnv is newEnv with a real SFU on loopback, for the REST views of publishers and
// subscribers and for DELETE /stream. Only the test imports sfu and pion; the package does not.
func newMediaEnv(t *testing.T) *env {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	media, err := sfu.New(sfu.Config{Port: 0, Loopback: true, ListenIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}, log)
	if err != nil {
		t.Fatalf("sfu: %v", err)
	}
	m := session.NewManager(session.Options{WebSocketURL: wsURL, Media: media, Log: log})
	srv := httptest.NewServer(api.New(testConfig(), m, log))
	t.Cleanup(func() {
		srv.Close()
		m.Shutdown() // closes the server-side PeerConnections before their socket
		_ = media.Close()
	})
	return &env{t: t, srv: srv, m: m, logs: logs}
}

// offer returns a browser-like offer: sendonly VP8 + Opus to publish, or recvonly to subscribe.
// Nobody applies our answer, so ICE never connects and connectionPath stays null.
func offer(t *testing.T, dir webrtc.RTPTransceiverDirection) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	for _, c := range []webrtc.RTPCodecCapability{{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, {MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}} {
		if dir == webrtc.RTPTransceiverDirectionSendonly {
			tr, err := webrtc.NewTrackLocalStaticSample(c, c.MimeType, "browser")
			if err == nil {
				_, err = pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: dir})
			}
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		kind := webrtc.RTPCodecTypeAudio
		if c.MimeType == webrtc.MimeTypeVP8 {
			kind = webrtc.RTPCodecTypeVideo
		}
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

func TestPublishersAndSubscribers(t *testing.T) {
	t.Parallel()
	e := newMediaEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.session("S")
	pubConn, subConn := e.connection("S", `{"role":"PUBLISHER"}`), e.connection("S", `{"role":"SUBSCRIBER"}`)
	pub, pubSink := e.join("S", pubConn, session.JoinInfo{Metadata: "pub", Platform: "Chrome", IP: "127.0.0.1"})
	sub, subSink := e.join("S", subConn, session.JoinInfo{Metadata: "sub", Platform: "Firefox", IP: "127.0.0.1"})

	st, _, err := pub.Publish(ctx, session.PublishParams{Offer: offer(t, webrtc.RTPTransceiverDirectionSendonly), Media: session.MediaOptions{
		HasAudio: true, HasVideo: true, AudioActive: true, VideoActive: true, TypeOfVideo: "CAMERA", FrameRate: 30,
		VideoDimensions: `{"width":640,"height":480}`,
	}})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if _, err := sub.Subscribe(ctx, st.ID, offer(t, webrtc.RTPTransceiverDirectionRecvonly)); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	pubPath := "/openvidu/api/sessions/S/connection/" + pubConn["id"].(string)
	subPath := "/openvidu/api/sessions/S/connection/" + subConn["id"].(string)

	t.Run("publisher", func(t *testing.T) {
		r := e.mustStatus(200, "GET", pubPath, "")
		p := r.obj(t)["publishers"].([]any)
		if len(p) != 1 || p[0].(map[string]any)["streamId"] != string(st.ID) {
			t.Fatalf("publishers %v", p)
		}
		golden(t, "connection_publishing", r.body)
	})
	t.Run("subscriber", func(t *testing.T) {
		r := e.mustStatus(200, "GET", subPath, "")
		s := r.obj(t)["subscribers"].([]any)
		if len(s) != 1 || s[0].(map[string]any)["streamId"] != string(st.ID) {
			t.Fatalf("subscribers %v", s)
		}
		golden(t, "connection_subscribing", r.body)
	})
	t.Run("session", func(t *testing.T) {
		golden(t, "session_active", e.mustStatus(200, "GET", "/openvidu/api/sessions/S", "").body)
	})

	pubSink.take()
	subSink.take()
	streamPath := "/openvidu/api/sessions/S/stream/" + string(st.ID)
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"unknown session", "/openvidu/api/sessions/nope/stream/" + string(st.ID), 400},
		{"unknown stream", "/openvidu/api/sessions/S/stream/str_CAM_Zzzz_" + pubConn["id"].(string), 404},
		{"stream of a connection that does not publish", "/openvidu/api/sessions/S/stream/str_CAM_Zzzz_" + subConn["id"].(string), 404},
		{"not a stream id", "/openvidu/api/sessions/S/stream/whatever", 404},
	} {
		t.Run("delete stream/"+tc.name, func(t *testing.T) {
			e.mustStatus(tc.status, "DELETE", tc.path, "")
			if ev := append(pubSink.take(), subSink.take()...); len(ev) != 0 {
				t.Errorf("a failed DELETE notified %v", ev)
			}
		})
	}
	t.Run("delete stream", func(t *testing.T) {
		e.mustStatus(204, "DELETE", streamPath, "")
		for who, s := range map[string]*sink{"owner": pubSink, "subscriber": subSink} {
			ev := s.take()
			if len(ev) != 1 || ev[0].Kind != session.StreamUnpublished || ev[0].Reason != "forceUnpublishByServer" || ev[0].Connection != pub.ID() {
				t.Errorf("%s got %+v, want participantUnpublished forceUnpublishByServer", who, ev)
			}
		}
		if p := e.mustStatus(200, "GET", pubPath, "").obj(t); len(p["publishers"].([]any)) != 0 {
			t.Errorf("still publishing: %v", p["publishers"])
		}
		if s := e.mustStatus(200, "GET", subPath, "").obj(t); len(s["subscribers"].([]any)) != 0 {
			t.Errorf("still subscribed: %v", s["subscribers"])
		}
		e.mustStatus(404, "DELETE", streamPath, "")
	})
}
