// Package whip lets an encoder publish into an OpenVidu session over WHIP (RFC 9725) instead of
// openvidu-browser: OBS, GStreamer's whipclientsink, ffmpeg or any WebRTC stack POSTs an SDP offer
// with a connection token as its Bearer token and gets the answer; the stream then appears to
// every participant like a browser's (participantJoined, participantPublished).
//
//	POST   /openvidu/whip        Authorization: Bearer <token, as REST returned it>
//	                             Content-Type: application/sdp          → 201, answer, Location
//	PATCH  <Location>            application/trickle-ice-sdpfrag         → 204 (candidates applied)
//	DELETE <Location>            the same Bearer token                   → 200, the participant leaves
//
// WHEP (ServeWHEP) is the same for a viewer: POST /openvidu/whep/<streamId> with a receive-only
// offer subscribes the token's connection to that stream.
//
// It owns the WHIP resources (one per joined connection, so bounded by the connections REST
// created) and translates them into calls on the session model. Like signaling, it must not import
// api, edge or anything of pion.
package whip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/parley/parley/internal/session"
)

// Model is the session model as WHIP uses it.
type Model interface {
	// Join consumes token and makes its connection a participant of session id.
	Join(id session.SessionID, token string, j session.JoinInfo, sink session.Sink) (Participant, session.JoinResult, error)
}

// Participant is what a WHIP or WHEP resource does with its connection.
type Participant interface {
	ID() session.ConnectionID
	Publish(ctx context.Context, req session.PublishParams) (session.StreamInfo, string, error)
	Subscribe(ctx context.Context, sid session.StreamID, offer string) (string, error)
	AddCandidate(endpoint string, c session.Candidate) error
	Leave()
}

// FromManager adapts the session model to Model.
func FromManager(m *session.Manager) Model { return manager{m} }

type manager struct{ m *session.Manager }

func (a manager) Join(id session.SessionID, token string, j session.JoinInfo, sink session.Sink) (Participant, session.JoinResult, error) {
	p, res, err := a.m.Join(id, token, j, sink)
	if err != nil {
		return nil, res, err // not a typed nil inside the interface
	}
	return p, res, nil
}

// Path is where the handler is mounted; resources live below it.
const Path = "/openvidu/whip"

// maxBody bounds an offer or a trickle fragment: the SFU refuses SDP past 32 KiB anyway.
const maxBody = 64 << 10

// Handler serves WHIP.
type Handler struct {
	m        Model
	log      *slog.Logger
	clientIP func(*http.Request) string

	mu  sync.Mutex
	res map[string]*resource
	// wg: the goroutines that make vanished encoders leave (Wait).
	wg sync.WaitGroup
}

// Wait returns when no vanished encoder is still being made to leave; call it after the session
// model has evicted everyone.
func (h *Handler) Wait() { h.wg.Wait() }

// resource is one WHIP session: a joined connection publishing one stream.
type resource struct {
	id    string
	token string
	part  Participant // set under Handler.mu once joined
	// endpoint names the media connection for trickled candidates: the participant's own id for
	// WHIP, the publisher's for WHEP.
	endpoint string
}

// New returns a Handler publishing into m. clientIP, optional, names the participant's address
// behind a request (trusted proxies); without it the TCP peer is.
func New(m Model, log *slog.Logger, clientIP func(*http.Request) string) *Handler {
	return &Handler{m: m, log: log, clientIP: clientIP, res: map[string]*resource{}}
}

// ServeHTTP routes POST on Path and PATCH, DELETE on a resource.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Browser-based WHIP clients call across origins; the token is the credential, not a cookie.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Expose-Headers", "Location, Link")
	rest, ok := strings.CutPrefix(r.URL.Path, Path)
	switch {
	case !ok:
		http.NotFound(w, r)
	case r.Method == http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
		if rest == "" || rest == "/" {
			w.Header().Set("Accept-Post", "application/sdp")
		}
		w.WriteHeader(http.StatusNoContent)
	case rest == "" || rest == "/":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.create(w, r)
	default:
		id := strings.TrimPrefix(rest, "/")
		switch r.Method {
		case http.MethodDelete:
			h.remove(w, r, id)
		case http.MethodPatch:
			h.trickle(w, r, id)
		default:
			w.Header().Set("Allow", "PATCH, DELETE, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	}
}

// bearer returns the request's Bearer token.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
	http.Error(w, msg, http.StatusUnauthorized)
}

// body reads a request body of the given media type, at most maxBody bytes.
func body(w http.ResponseWriter, r *http.Request, mediaType string) ([]byte, bool) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != mediaType {
		http.Error(w, "Content-Type must be "+mediaType, http.StatusUnsupportedMediaType)
		return nil, false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	return b, true
}

// join reads the offer and joins the Bearer token's connection as platform (WHIP or WHEP), with
// the participant's events filtered for endpoint ("": its own). It answers the error itself.
func (h *Handler) join(w http.ResponseWriter, r *http.Request, platform, endpoint string) (res *resource, offer []byte, sid string, ok bool) {
	token, ok := bearer(r)
	if !ok {
		unauthorized(w, "a connection token is required as the Bearer token")
		return nil, nil, "", false
	}
	if offer, ok = body(w, r, "application/sdp"); !ok {
		return nil, nil, "", false
	}
	if sid = sessionOf(token); sid == "" {
		unauthorized(w, "the Bearer token must be a connection token as REST returned it (it names the session)")
		return nil, nil, "", false
	}
	ip := r.RemoteAddr
	if h.clientIP != nil {
		ip = h.clientIP(r)
	}
	res = &resource{id: newID(), token: token, endpoint: endpoint}
	part, _, err := h.m.Join(session.SessionID(sid), token, session.JoinInfo{Platform: platform + " " + clip(r.UserAgent()), IP: ip}, sink{h, res})
	if err != nil {
		h.fail(w, err)
		return nil, nil, "", false
	}
	h.mu.Lock()
	if res.endpoint == "" {
		res.endpoint = string(part.ID())
	}
	res.part = part
	h.res[res.id] = res
	h.mu.Unlock()
	return res, offer, sid, true
}

// answered writes the 201 Created with the SDP answer and the resource's Location.
func answered(w http.ResponseWriter, location, answer string) {
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// create joins the token's connection and publishes the offer (RFC 9725 §4.2).
func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	res, offer, sid, ok := h.join(w, r, "WHIP", "")
	if !ok {
		return
	}
	part := res.part
	audio, video := mediaOf(string(offer))
	md := session.MediaOptions{HasAudio: audio, HasVideo: video, AudioActive: audio, VideoActive: video, FrameRate: -1}
	if video {
		md.TypeOfVideo = "CUSTOM" // neither a camera nor a screen the SDK captured
	}
	// An encoder that vanishes without DELETE (crashed, unplugged) ends as its media connection
	// fails: its participant leaves then. Leaving closes that connection, so not on its goroutine.
	end := func() {
		h.wg.Go(func() {
			if h.drop(res.id) {
				h.log.Info("WHIP publisher's media ended: it leaves", "connection", part.ID(), "resource", res.id)
				part.Leave()
			}
		})
	}
	_, answer, err := part.Publish(r.Context(), session.PublishParams{Offer: string(offer), Media: md, OnMediaEnd: end})
	if err != nil {
		h.drop(res.id)
		part.Leave()
		h.fail(w, err)
		return
	}
	h.log.Info("WHIP publisher joined", "session", sid, "connection", part.ID(), "resource", res.id)
	answered(w, Path+"/"+res.id, answer)
}

// lookup returns the resource id names if the request carries its token.
func (h *Handler) lookup(w http.ResponseWriter, r *http.Request, id string) (*resource, bool) {
	token, ok := bearer(r)
	if !ok {
		unauthorized(w, "the resource's connection token is required as the Bearer token")
		return nil, false
	}
	h.mu.Lock()
	res := h.res[id]
	h.mu.Unlock()
	if res == nil || res.token != token {
		http.Error(w, "no such WHIP resource", http.StatusNotFound)
		return nil, false
	}
	return res, true
}

// remove ends a WHIP session (RFC 9725 §4.2): the participant leaves as a browser's leaveRoom does.
func (h *Handler) remove(w http.ResponseWriter, r *http.Request, id string) {
	res, ok := h.lookup(w, r, id)
	if !ok {
		return
	}
	if h.drop(id) {
		res.part.Leave()
	}
	w.WriteHeader(http.StatusOK)
}

// trickle applies the candidates of an SDP fragment (RFC 9725 §4.3.1, RFC 8840). ICE restarts are
// not supported: new credentials in a fragment are not looked at, so a client that lost its path
// DELETEs the resource and POSTs a new offer.
func (h *Handler) trickle(w http.ResponseWriter, r *http.Request, id string) {
	res, ok := h.lookup(w, r, id)
	if !ok {
		return
	}
	frag, ok := body(w, r, "application/trickle-ice-sdpfrag")
	if !ok {
		return
	}
	for _, c := range candidatesOf(string(frag)) {
		if err := res.part.AddCandidate(res.endpoint, c); err != nil {
			h.log.Debug("WHIP candidate not applied", "resource", id, "error", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// drop forgets resource id; it reports whether it was still there.
func (h *Handler) drop(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.res[id]
	delete(h.res, id)
	return ok
}

// Resources reports how many WHIP sessions are live.
func (h *Handler) Resources() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.res)
}

// fail answers a model error with the HTTP status of its kind.
func (h *Handler) fail(w http.ResponseWriter, err error) {
	status := session.HTTPStatus(err)
	if status == http.StatusUnauthorized {
		unauthorized(w, err.Error())
		return
	}
	http.Error(w, err.Error(), status)
}

// sink receives the WHIP participant's notifications: it has no one to tell them to, but learns
// when the model evicted it (REST or a moderator disconnected it, the session closed), so the
// resource goes too.
type sink struct {
	h   *Handler
	res *resource
}

// Notify implements session.Sink.
func (s sink) Notify(e session.Event) {
	if e.Kind != session.ParticipantEvicted {
		return
	}
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if s.res.part != nil && e.Connection == s.res.part.ID() {
		delete(s.h.res, s.res.id)
	}
}

// sessionOf reads the session id from a connection token (the URL REST returns).
func sessionOf(token string) string {
	u, err := url.Parse(token)
	if err != nil {
		return ""
	}
	return u.Query().Get("sessionId")
}

// mediaOf tells which kinds an offer sends: m-lines with a non-zero port that are not recvonly or
// inactive.
func mediaOf(offer string) (audio, video bool) {
	var kind string
	var port bool
	direction := ""
	flush := func() {
		if kind == "" || !port || direction == "recvonly" || direction == "inactive" {
			return
		}
		audio = audio || kind == "audio"
		video = video || kind == "video"
	}
	for line := range strings.Lines(offer) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "m="):
			flush()
			f := strings.Fields(line[2:])
			kind, port, direction = "", false, ""
			if len(f) >= 2 {
				kind, port = f[0], f[1] != "0"
			}
		case line == "a=sendrecv" || line == "a=sendonly" || line == "a=recvonly" || line == "a=inactive":
			direction = line[2:]
		}
	}
	flush()
	return audio, video
}

// candidatesOf reads the candidates of a trickle-ice-sdpfrag (RFC 8840), each with the mid and
// index of the m-line it follows.
func candidatesOf(frag string) (cands []session.Candidate) {
	var mid *string
	var index *uint16
	var n uint16
	for line := range strings.Lines(frag) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "m="):
			i := n
			index, mid = &i, nil
			n++
		case strings.HasPrefix(line, "a=mid:"):
			v := line[len("a=mid:"):]
			mid = &v
		case strings.HasPrefix(line, "a=candidate:"):
			cands = append(cands, session.Candidate{Candidate: line[len("a="):], SDPMid: mid, SDPMLineIndex: index})
		}
	}
	return cands
}

// newID is a resource id: 128 random bits, unguessable, as the resource URL is shown in logs and
// to the client only.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// clip keeps at most 64 bytes of what a client chose to put in its User-Agent.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

// WHEPPath is where viewers watch a stream: POST WHEPPath/<streamId>.
const WHEPPath = "/openvidu/whep"

// ServeWHEP serves WHEP (draft-ietf-wish-whep): a viewer POSTs a receive-only offer to
// WHEPPath/<streamId> with a connection token as its Bearer token, joins the stream's session as
// that connection (platform "WHEP …") and receives the stream as a browser's subscription does.
// PATCH and DELETE on the Location work as for WHIP.
func (h *Handler) ServeWHEP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Expose-Headers", "Location, Link")
	rest, _ := strings.CutPrefix(r.URL.Path, WHEPPath+"/")
	stream, id, isResource := strings.Cut(rest, "/")
	switch {
	case stream == "":
		http.NotFound(w, r)
	case r.Method == http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
		w.WriteHeader(http.StatusNoContent)
	case !isResource && r.Method == http.MethodPost:
		h.watch(w, r, session.StreamID(stream))
	case !isResource:
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case r.Method == http.MethodDelete:
		h.remove(w, r, id)
	case r.Method == http.MethodPatch:
		h.trickle(w, r, id)
	default:
		w.Header().Set("Allow", "PATCH, DELETE, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// watch joins the token's connection and subscribes it to stream with the viewer's offer.
func (h *Handler) watch(w http.ResponseWriter, r *http.Request, stream session.StreamID) {
	res, offer, sid, ok := h.join(w, r, "WHEP", string(stream.Owner()))
	if !ok {
		return
	}
	part := res.part
	answer, err := part.Subscribe(r.Context(), stream, string(offer))
	if err != nil {
		h.drop(res.id)
		part.Leave()
		h.fail(w, err)
		return
	}
	h.log.Info("WHEP viewer joined", "session", sid, "connection", part.ID(), "stream", stream, "resource", res.id)
	answered(w, WHEPPath+"/"+string(stream)+"/"+res.id, answer)
}
