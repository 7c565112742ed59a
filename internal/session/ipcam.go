package session

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// IP cameras (OpenVidu's IPCAM connections): created by REST with an rtspUri, active at once, and
// publishing the camera's stream to the session like a participant that never speaks signaling.

// Ingester pulls media from something that is not a browser into a published stream. Options.Ingest
// is nil where the server cannot (IPCAM connections are then refused).
type Ingester interface {
	// Ingest starts pulling req.URI and returns the stream's media once the source answered.
	Ingest(ctx context.Context, req IngestRequest) (PublishedMedia, IngestInfo, error)
}

// IngestRequest asks an Ingester for a stream.
type IngestRequest struct {
	URI string
	// OnlyWithSubscribers: pull the source only while the stream has subscribers (or a recording),
	// from the first to shortly after the last (onlyPlayWithSubscribers).
	OnlyWithSubscribers bool
	Log                 *slog.Logger
}

// IngestInfo is what the source sends.
type IngestInfo struct {
	Audio, Video  bool
	Width, Height int
	FrameRate     int
}

// IPCamOptions are an IPCAM connection's settings, with OpenVidu's defaults (true, true, 2000).
type IPCamOptions struct {
	RTSPURI                 string
	AdaptativeBitrate       bool
	OnlyPlayWithSubscribers bool
	NetworkCache            int
}

// ingestTimeout bounds how long creating an IPCAM connection waits for the camera to answer.
const ingestTimeout = 15 * time.Second

// newIPCamID names an IPCAM connection: ipc_IPCAM_ plus random characters, so that the ids of its
// streams end in ipc_… (StreamID.Owner).
func newIPCamID() ConnectionID {
	return ConnectionID("ipc_IPCAM_" + randomString(upper, 1) + randomString(alnum, 9))
}

// createIPCam adds an IPCAM connection to session id and publishes the camera: the REST call
// returns once the camera answered, with the connection active and its stream published (what
// OpenVidu answers), or fails with nothing left behind.
func (m *Manager) createIPCam(id SessionID, o ConnectionOptions) (ConnectionInfo, error) {
	if m.opts.Ingest == nil {
		return ConnectionInfo{}, errorf(KindUnsupported, CodeMediaEndpointError, "IPCAM connections need ffmpeg and ffprobe on the server")
	}
	if o.IPCam == nil || o.IPCam.RTSPURI == "" {
		return ConnectionInfo{}, errorf(KindInvalid, CodeMediaEndpointError, `IPCAM connections need "rtspUri"`)
	}
	m.mu.Lock()
	if m.closing {
		m.unlock()
		return ConnectionInfo{}, errorf(KindNotAcceptable, CodeRoomClosed, "server is shutting down")
	}
	s, err := m.lookup(id)
	if err != nil {
		m.unlock()
		return ConnectionInfo{}, err
	}
	cid := newIPCamID()
	for m.conns[cid] != nil {
		cid = newIPCamID()
	}
	c := &Connection{id: cid, sess: s, opts: o, createdAt: m.opts.Now(), publishing: true}
	s.conns[cid] = c
	m.conns[cid] = c
	s.order = append(s.order, cid)
	log := m.log.With("session", s.id, "connection", cid)
	m.unlock()

	ctx, cancel := context.WithTimeout(context.Background(), ingestTimeout)
	defer cancel()
	pub, info, ingestErr := m.opts.Ingest.Ingest(ctx, IngestRequest{URI: o.IPCam.RTSPURI, OnlyWithSubscribers: o.IPCam.OnlyPlayWithSubscribers, Log: log})

	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
	c.publishing = false
	if ingestErr != nil || c.gone {
		if ingestErr == nil {
			cleanup = append(cleanup, pub.Close)
			ingestErr = fmt.Errorf("the connection was removed while the camera answered")
		} else {
			m.forget(c)
		}
		e := errorf(KindInternal, CodeMediaEndpointError, "Error publishing IPCAM: %v", ingestErr)
		e.Err = ingestErr
		return ConnectionInfo{}, e
	}
	existing := m.activeConns(s, nil)
	now := m.opts.Now()
	c.active, c.activeAt, c.platform, c.ip = true, now, "IPCAM", cameraHost(o.IPCam.RTSPURI)
	c.subs = map[ConnectionID]*subscription{}
	c.pendingCands = map[string][]Candidate{}
	s.everJoined = true
	self := c.participantInfo()
	m.emit(Event{Kind: ParticipantJoined, Session: s.id, Connection: c.id, Time: now, Participant: &self, Client: c.clientInfo()}, existing...)

	media := MediaOptions{HasAudio: info.Audio, AudioActive: info.Audio, HasVideo: info.Video, VideoActive: info.Video,
		TypeOfVideo: "IPCAM", FrameRate: float64(info.FrameRate)}
	if info.Video {
		media.VideoDimensions = fmt.Sprintf(`{"width":%d,"height":%d}`, info.Width, info.Height)
	}
	sid := newStreamID("IPCAM", info.Video, cid)
	c.stream = &stream{id: sid, createdAt: now, media: media, pub: pub}
	si := c.stream.info()
	m.emit(Event{Kind: WebRTCConnectionCreated, Session: s.id, Connection: c.id, Stream: sid, Time: now, Media: c.stream.mediaSnapshot()})
	m.emit(Event{Kind: StreamPublished, Session: s.id, Connection: c.id, Stream: sid, StreamInfo: &si}, existing...)
	log.Info("camera published", "stream", sid, "audio", info.Audio, "video", info.Video)
	return c.info(), nil
}

// cameraHost is the host of the camera's URI, reported as the connection's ip like OpenVidu's
// location of a camera; never its credentials.
func cameraHost(uri string) string {
	rest, ok := strings.CutPrefix(uri, "rtsp://")
	if !ok {
		rest, _ = strings.CutPrefix(uri, "rtsps://")
	}
	host, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = host[i+1:]
	}
	return host
}
