package api_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/parley/parley/internal/api"
	"github.com/parley/parley/internal/session"
)

// newMediaEnv is newEnv with fake media under the model, for the REST views of publishers and
// subscribers and for DELETE /stream.
func newMediaEnv(t *testing.T) *env {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	m := session.NewManager(session.Options{WebSocketURL: wsURL, Media: fakeMedia{}, Ingest: fakeMedia{}, Log: log})
	srv := httptest.NewServer(api.New(testConfig(), api.FromManager(m), log))
	t.Cleanup(func() {
		srv.Close()
		m.Shutdown()
	})
	return &env{t: t, srv: srv, m: m, logs: logs}
}

// fakeMedia answers every offer; its connections never connect, so connectionPath stays null.
type fakeMedia struct{}

func (fakeMedia) Publish(context.Context, session.PublishRequest) (session.PublishedMedia, string, error) {
	return fakeConn{}, "answer", nil
}

func (fakeMedia) Subscribe(context.Context, session.PublishedMedia, session.SubscribeRequest) (session.SubscribedMedia, string, error) {
	return fakeConn{}, "answer", nil
}

func (fakeMedia) SubscribeOffer(context.Context, session.PublishedMedia, session.SubscribeRequest) (session.SubscribedMedia, string, error) {
	return fakeConn{}, "offer", nil
}

// Ingest stands for a camera that answers at once with 640x480 video and audio.
func (fakeMedia) Ingest(context.Context, session.IngestRequest) (session.PublishedMedia, session.IngestInfo, error) {
	return fakeConn{}, session.IngestInfo{Audio: true, Video: true, Width: 640, Height: 480, FrameRate: 25}, nil
}

type fakeConn struct{}

func (fakeConn) SetAnswer(string) error { return nil }

func (fakeConn) Tracks() (audio, video bool)                         { return true, true }
func (fakeConn) AddCandidate(session.Candidate) error                { return nil }
func (fakeConn) Renegotiate(context.Context, string) (string, error) { return "answer", nil }
func (fakeConn) Path() session.MediaPath                             { return session.MediaPath{} }
func (fakeConn) Close()                                              {}

// offer stands for a browser's offer: sendonly VP8 + Opus to publish, or recvonly to subscribe.
func offer(_ *testing.T, dir string) string { return "v=0 " + dir }

func TestPublishersAndSubscribers(t *testing.T) {
	t.Parallel()
	e := newMediaEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.session("S")
	pubConn, subConn := e.connection("S", `{"role":"PUBLISHER"}`), e.connection("S", `{"role":"SUBSCRIBER"}`)
	pub, pubSink := e.join("S", pubConn, session.JoinInfo{Metadata: "pub", Platform: "Chrome", IP: "127.0.0.1"})
	sub, subSink := e.join("S", subConn, session.JoinInfo{Metadata: "sub", Platform: "Firefox", IP: "127.0.0.1"})

	st, _, err := pub.Publish(ctx, session.PublishParams{Offer: offer(t, "sendonly"), Media: session.MediaOptions{
		HasAudio: true, HasVideo: true, AudioActive: true, VideoActive: true, TypeOfVideo: "CAMERA", FrameRate: 30,
		VideoDimensions: `{"width":640,"height":480}`,
	}})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if _, err := sub.Subscribe(ctx, st.ID, offer(t, "recvonly")); err != nil {
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

// TestIPCamConnections: an IPCAM connection is active at once with the camera's stream and
// OpenVidu's fields; without an ingester (no ffmpeg) it is refused with 501 and nothing is created.
func TestIPCamConnections(t *testing.T) {
	t.Parallel()
	e := newMediaEnv(t)
	e.session("S")
	r := e.do("POST", "/openvidu/api/sessions/S/connection", `{"type":"IPCAM","rtspUri":"rtsp://user:pw@cam.example.com:8554/live","networkCache":500,"onlyPlayWithSubscribers":false}`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	v := r.obj(t)
	pubs, _ := v["publishers"].([]any)
	if v["type"] != "IPCAM" || v["status"] != "active" || v["platform"] != "IPCAM" || v["ip"] != "cam.example.com:8554" || v["token"] != nil ||
		v["networkCache"] != float64(500) || v["onlyPlayWithSubscribers"] != false || v["adaptativeBitrate"] != true || len(pubs) != 1 {
		t.Fatalf("IPCAM connection: %s", r.body)
	}
	mo := pubs[0].(map[string]any)["mediaOptions"].(map[string]any)
	if mo["typeOfVideo"] != "IPCAM" || mo["videoDimensions"] != `{"width":640,"height":480}` || mo["frameRate"] != float64(25) {
		t.Fatalf("IPCAM media options: %v", mo)
	}

	plain := newEnv(t)
	plain.session("S")
	r = plain.do("POST", "/openvidu/api/sessions/S/connection", `{"type":"IPCAM","rtspUri":"rtsp://cam.example.com/live"}`)
	if r.status != 501 {
		t.Fatalf("IPCAM without an ingester: %d, want 501: %s", r.status, r.body)
	}
	if si, _ := plain.m.Room("S").Info(true); len(si.Connections) != 0 {
		t.Fatalf("a refused IPCAM connection was kept: %v", si.Connections)
	}
}
