// Package api serves OpenVidu 2.32's REST API (/openvidu/api, protocol note §9) on top of the session
// model, with the exact JSON shapes and status codes openvidu-node-client 2.32.2 checks.
//
// It owns HTTP routing, Basic authentication, body validation and the JSON views. It must not import
// signaling or edge and never touches pion.
package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/session"
)

// Version is the OpenVidu version reported by the config endpoints.
const Version = "2.32.2"

// Config is what the REST API needs.
type Config struct {
	// Secret is OPENVIDU_SECRET; clients authenticate as OPENVIDUAPP:<Secret>.
	Secret string
	// PublicURL is the openvidu-publicurl value, with a trailing slash.
	PublicURL string
	// Domain and HTTPSPort are reported by GET /config.
	Domain    string
	HTTPSPort int
	// SupportDeprecatedAPI serves /api/* as /openvidu/api/*.
	SupportDeprecatedAPI bool
	// ConfigJSON is the body of GET /openvidu/api/config (built by the caller from the effective
	// configuration, which this package does not import). Nil: a minimal body from the fields above.
	ConfigJSON map[string]any
	// ForcedVideoCodec and AllowTranscoding are what a session gets when POST /sessions does not
	// say (OPENVIDU_STREAMS_FORCED_VIDEO_CODEC, OPENVIDU_STREAMS_ALLOW_TRANSCODING): the reference
	// fills them in from its configuration, and node-client sends them only when the application
	// set them. Unset, they are read from ConfigJSON's entries of those names, else
	// MEDIA_SERVER_PREFERRED and false.
	ForcedVideoCodec string
	AllowTranscoding bool
	// Recordings is the recorder; nil when OPENVIDU_RECORDING=false (every recording endpoint 501).
	Recordings Recordings
	// RecordingPublicAccess is OPENVIDU_RECORDING_PUBLIC_ACCESS: files without credentials.
	RecordingPublicAccess bool
	// RecordingPath is OPENVIDU_RECORDING_PATH, reported by config/openvidu-recording-path.
	RecordingPath string
}

// sessionDefaults resolves the configured session defaults (see Config.ForcedVideoCodec).
func (c Config) sessionDefaults() (codec string, transcoding bool) {
	codec, transcoding = c.ForcedVideoCodec, c.AllowTranscoding
	if codec == "" {
		codec, _ = c.ConfigJSON["OPENVIDU_STREAMS_FORCED_VIDEO_CODEC"].(string)
	}
	if !slices.Contains(videoCodecs, codec) {
		codec = "MEDIA_SERVER_PREFERRED"
	}
	if v, ok := c.ConfigJSON["OPENVIDU_STREAMS_ALLOW_TRANSCODING"].(bool); ok && v {
		transcoding = true
	}
	return codec, transcoding
}

// videoCodecs are the forcedVideoCodec values (OpenVidu VideoCodec).
var videoCodecs = []string{"MEDIA_SERVER_PREFERRED", "NONE", "VP8", "VP9", "H264"}

// API is the REST handler.
type API struct {
	cfg  Config
	m    *session.Manager
	log  *slog.Logger
	mux  *http.ServeMux
	user [32]byte
	pass [32]byte
	// defCodec and defTranscoding are the session defaults (Config.sessionDefaults).
	defCodec       string
	defTranscoding bool
}

// maxBody bounds request bodies; the largest legitimate one (a session with recording properties
// and ICE servers) is a few KB.
const maxBody = 64 << 10

// New returns the REST handler for m.
func New(cfg Config, m *session.Manager, log *slog.Logger) *API {
	a := &API{cfg: cfg, m: m, log: log, mux: http.NewServeMux()}
	a.defCodec, a.defTranscoding = cfg.sessionDefaults()
	a.user = sha256.Sum256([]byte("OPENVIDUAPP"))
	a.pass = sha256.Sum256([]byte(cfg.Secret))
	p := "/openvidu/api"
	a.mux.HandleFunc("POST "+p+"/sessions", a.createSession)
	a.mux.HandleFunc("GET "+p+"/sessions", a.listSessions)
	a.mux.HandleFunc("GET "+p+"/sessions/{id}", a.getSession)
	a.mux.HandleFunc("DELETE "+p+"/sessions/{id}", a.deleteSession)
	a.mux.HandleFunc("POST "+p+"/sessions/{id}/connection", a.createConnection)
	a.mux.HandleFunc("GET "+p+"/sessions/{id}/connection", a.listConnections)
	a.mux.HandleFunc("GET "+p+"/sessions/{id}/connection/{cid}", a.getConnection)
	a.mux.HandleFunc("PATCH "+p+"/sessions/{id}/connection/{cid}", a.patchConnection)
	a.mux.HandleFunc("DELETE "+p+"/sessions/{id}/connection/{cid}", a.deleteConnection)
	a.mux.HandleFunc("DELETE "+p+"/sessions/{id}/stream/{sid}", a.deleteStream)
	a.mux.HandleFunc("POST "+p+"/tokens", a.createToken)
	a.mux.HandleFunc("POST "+p+"/signal", a.signal)
	a.mux.HandleFunc("GET "+p+"/config", a.config)
	a.mux.HandleFunc("GET "+p+"/config/{item}", a.configItem)
	a.mux.HandleFunc("GET "+p+"/health", a.health)
	a.routeRecordings(p)
	a.mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a
}

// ServeHTTP authenticates and routes. Preflights and the public URL probe need no credentials
// (the reference's readiness probe uses it).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.cfg.SupportDeprecatedAPI && strings.HasPrefix(r.URL.Path, "/api/") {
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/openvidu" + r.URL.Path
		if r.URL.RawPath != "" { // the mux matches the escaped path: keep both in step
			r2.URL.RawPath = "/openvidu" + r.URL.RawPath
		}
		r = r2
	}
	// CORS as the reference's @CrossOrigin: any origin, any requested header (openvidu-testapp and
	// browser apps call the API directly, sometimes with headers of their own).
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
		h.Set("Access-Control-Allow-Headers", rh)
	} else {
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	}
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PATCH, DELETE, OPTIONS")
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Max-Age", "1800")
		w.WriteHeader(http.StatusOK)
		return
	}
	public := (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.Path == "/openvidu/api/config/openvidu-publicurl"
	if !public && !a.authorized(r) {
		h.Set("WWW-Authenticate", `Basic realm="OpenVidu"`)
		a.fail(w, r, http.StatusUnauthorized, "wrong or missing credentials")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	a.mux.ServeHTTP(w, r)
}

// Authorized reports whether r carries the REST credentials, for OpenVidu routes served outside
// this handler (GET /openvidu/cdr).
func (a *API) Authorized(r *http.Request) bool { return a.authorized(r) }

// authorized compares hashes in constant time, so neither the secret's content nor its length leaks
// through timing.
func (a *API) authorized(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	if !ok {
		return false
	}
	uh, ph := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
	return subtle.ConstantTimeCompare(uh[:], a.user[:])&subtle.ConstantTimeCompare(ph[:], a.pass[:]) == 1
}

// ---- responses ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // tokens carry '&'; keep them readable
	_ = enc.Encode(v)
}

// fail writes OpenVidu's error body (protocol note §9.1) and logs the error once.
func (a *API) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	a.log.Info("rest error", "method", r.Method, "path", r.URL.Path, "status", status, "error", msg)
	writeJSON(w, status, map[string]any{
		"timestamp": time.Now().UnixMilli(), "status": status, "error": http.StatusText(status),
		"message": msg, "path": r.URL.Path,
	})
}

// failModel maps a model error kind to its status, in one table.
func (a *API) failModel(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	var se *session.Error
	if errors.As(err, &se) {
		switch se.Kind {
		case session.KindInvalid:
			status = http.StatusBadRequest
		case session.KindNotFound:
			status = http.StatusNotFound
		case session.KindUnauthorized:
			status = http.StatusUnauthorized
		case session.KindConflict:
			status = http.StatusConflict
		case session.KindNotAcceptable:
			status = http.StatusNotAcceptable
		case session.KindUnsupported:
			status = http.StatusNotImplemented
		}
	}
	a.fail(w, r, status, err.Error())
}

func (a *API) readBody(w http.ResponseWriter, r *http.Request) (body, bool) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.fail(w, r, http.StatusRequestEntityTooLarge, "request body larger than 64 KiB")
		} else {
			a.fail(w, r, http.StatusBadRequest, "cannot read request body")
		}
		return nil, false
	}
	b, err := parseBody(data)
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return b, true
}

func queryBool(r *http.Request, key string, def bool) bool {
	switch r.URL.Query().Get(key) {
	case "true":
		return true
	case "false":
		return false
	}
	return def
}

// ---- sessions ----

var customIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

func (a *API) createSession(w http.ResponseWriter, r *http.Request) {
	b, ok := a.readBody(w, r)
	if !ok {
		return
	}
	p, err := sessionProperties(b, a.defCodec, a.defTranscoding)
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	si, err := a.m.CreateSession(p)
	if err != nil {
		var se *session.Error
		if errors.As(err, &se) && se.Kind == session.KindConflict {
			// node-client reads 409 as "exists, fetch it"; the reference sends no body.
			w.WriteHeader(http.StatusConflict)
			return
		}
		a.failModel(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionJSON(si))
}

// sessionProperties reads a POST /sessions body (the reference's SessionProperties.fromJson);
// codec and transcoding are the configured defaults.
func sessionProperties(b body, codec string, transcoding bool) (session.Properties, error) {
	var p session.Properties
	var err error
	if p.MediaMode, err = b.enum("mediaMode", "ROUTED", "ROUTED", "RELAYED"); err != nil {
		return p, err
	}
	if p.RecordingMode, err = b.enum("recordingMode", "MANUAL", "MANUAL", "ALWAYS"); err != nil {
		return p, err
	}
	if p.CustomSessionID, err = b.str("customSessionId", ""); err != nil {
		return p, err
	}
	if p.CustomSessionID != "" && (!customIDRE.MatchString(p.CustomSessionID) || len(p.CustomSessionID) > 128) {
		return p, errors.New(`"customSessionId" may contain only letters, digits, '_' and '-' (at most 128)`)
	}
	if p.ForcedVideoCodec, err = b.enum("forcedVideoCodec", codec, videoCodecs...); err != nil {
		return p, err
	}
	if p.AllowTranscoding, err = b.boolean("allowTranscoding", transcoding); err != nil {
		return p, err
	}
	rec, err := b.object("defaultRecordingProperties")
	if err != nil {
		return p, err
	}
	if p.DefaultRecording, err = recordingProperties(rec); err != nil {
		return p, fmt.Errorf(`"defaultRecordingProperties" is not valid: %w`, err)
	}
	return p, nil
}

var (
	recordingNameRE = regexp.MustCompile(`^[a-zA-Z0-9_\-~]+$`)
	resolutionRE    = regexp.MustCompile(`^([1-9][0-9]{2,3})x([1-9][0-9]{2,3})$`)
)

// validResolution is the reference's Utils.isAcceptableRecordingResolution: WxH, each 100..1999.
func validResolution(s string) bool {
	m := resolutionRE.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	for _, d := range m[1:] {
		if len(d) == 4 && d[0] != '1' {
			return false
		}
	}
	return true
}

// recordingProperties reads defaultRecordingProperties with the reference's checks
// (RecordingProperties.fromJson, protocol note §10.2): every field's type always; the layout,
// resolution, frame rate and shared memory only for composed output, where they are used.
func recordingProperties(b body) (session.RecordingProperties, error) {
	rp := session.RecordingProperties{}
	var err error
	if b == nil {
		b = body{}
	}
	if rp.Name, err = b.str("name", ""); err != nil {
		return rp, err
	}
	if rp.Name != "" && !recordingNameRE.MatchString(rp.Name) {
		return rp, errors.New(`"name" may contain only letters, digits, '_', '-' and '~'`)
	}
	if rp.HasAudio, err = b.boolean("hasAudio", true); err != nil {
		return rp, err
	}
	if rp.HasVideo, err = b.boolean("hasVideo", true); err != nil {
		return rp, err
	}
	if !rp.HasAudio && !rp.HasVideo {
		return rp, errors.New(`"hasAudio" and "hasVideo" cannot both be false`)
	}
	if rp.OutputMode, err = b.enum("outputMode", "COMPOSED", "COMPOSED", "COMPOSED_QUICK_START", "INDIVIDUAL"); err != nil {
		return rp, err
	}
	layout, err := b.str("recordingLayout", "BEST_FIT")
	if err != nil {
		return rp, err
	}
	if rp.CustomLayout, err = b.str("customLayout", ""); err != nil {
		return rp, err
	}
	if rp.Resolution, err = b.str("resolution", "1280x720"); err != nil {
		return rp, err
	}
	fr, err := b.integer("frameRate", 25)
	if err != nil {
		return rp, err
	}
	rp.FrameRate = int(fr)
	if rp.ShmSize, err = b.integer("shmSize", 536870912); err != nil {
		return rp, err
	}
	if rp.IgnoreFailedStreams, err = b.boolean("ignoreFailedStreams", false); err != nil {
		return rp, err
	}
	rp.RecordingLayout = "BEST_FIT"
	if rp.OutputMode == "INDIVIDUAL" {
		return rp, nil
	}
	if rp.RecordingLayout, err = b.enum("recordingLayout", layout, "BEST_FIT", "CUSTOM", "PICTURE_IN_PICTURE", "VERTICAL_PRESENTATION", "HORIZONTAL_PRESENTATION"); err != nil {
		return rp, err
	}
	switch {
	case !validResolution(rp.Resolution):
		return rp, errors.New(`"resolution" must be WIDTHxHEIGHT, each from 100 to 1999`)
	case fr < 1 || fr > 120:
		return rp, errors.New(`"frameRate" must be from 1 to 120`)
	case rp.ShmSize < 134217728:
		return rp, errors.New(`"shmSize" must be at least 134217728 (128 MB)`)
	}
	return rp, nil
}

func recordingPropertiesJSON(rp session.RecordingProperties) map[string]any {
	v := map[string]any{"name": rp.Name, "hasAudio": rp.HasAudio, "hasVideo": rp.HasVideo, "outputMode": rp.OutputMode}
	if rp.OutputMode != "INDIVIDUAL" && rp.HasVideo {
		v["recordingLayout"], v["resolution"], v["frameRate"], v["shmSize"] = rp.RecordingLayout, rp.Resolution, rp.FrameRate, rp.ShmSize
		if rp.RecordingLayout == "CUSTOM" {
			v["customLayout"] = rp.CustomLayout
		}
	}
	if rp.OutputMode == "INDIVIDUAL" {
		v["ignoreFailedStreams"] = rp.IgnoreFailedStreams
	}
	return v
}

func sessionJSON(si session.SessionInfo) map[string]any {
	content := make([]any, 0, len(si.Connections))
	for _, c := range si.Connections {
		content = append(content, connectionJSON(c))
	}
	return map[string]any{
		"id": si.ID, "object": "session", "sessionId": si.ID, "createdAt": si.CreatedAt.UnixMilli(),
		"recording": si.Recording, "broadcasting": false,
		"mediaMode": si.Props.MediaMode, "recordingMode": si.Props.RecordingMode,
		"defaultRecordingProperties": recordingPropertiesJSON(si.Props.DefaultRecording),
		"customSessionId":            si.Props.CustomSessionID,
		"forcedVideoCodec":           si.Props.ForcedVideoCodec,
		"allowTranscoding":           si.Props.AllowTranscoding,
		"connections":                map[string]any{"numberOfElements": len(content), "content": content},
	}
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request) {
	all := a.m.Sessions(queryBool(r, "pendingConnections", false))
	content := make([]any, 0, len(all))
	for _, s := range all {
		content = append(content, sessionJSON(s))
	}
	writeJSON(w, http.StatusOK, map[string]any{"numberOfElements": len(content), "content": content})
}

func (a *API) getSession(w http.ResponseWriter, r *http.Request) {
	si, err := a.m.Session(session.SessionID(r.PathValue("id")), queryBool(r, "pendingConnections", false))
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sessionJSON(si))
}

func (a *API) deleteSession(w http.ResponseWriter, r *http.Request) {
	if err := a.m.CloseSession(session.SessionID(r.PathValue("id"))); err != nil {
		a.failModel(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- connections ----

func connectionOptions(b body) (session.ConnectionOptions, error) {
	o := session.ConnectionOptions{}
	var err error
	if o.Type, err = b.enum("type", "WEBRTC", "WEBRTC", "IPCAM"); err != nil {
		return o, err
	}
	if o.Type == "IPCAM" {
		return o, errors.New("IPCAM connections (RTSP ingest) are not supported by Parley")
	}
	if o.Data, err = b.str("data", ""); err != nil {
		return o, err
	}
	if o.Record, err = b.boolean("record", true); err != nil {
		return o, err
	}
	role, err := b.enum("role", "PUBLISHER", "PUBLISHER", "SUBSCRIBER", "MODERATOR")
	if err != nil {
		return o, err
	}
	o.Role = session.Role(role)
	ko, err := b.object("kurentoOptions")
	if err != nil {
		return o, err
	}
	if ko != nil {
		k := &session.KurentoOptions{}
		for key, dst := range map[string]**int{
			"videoMaxRecvBandwidth": &k.VideoMaxRecvBandwidth, "videoMinRecvBandwidth": &k.VideoMinRecvBandwidth,
			"videoMaxSendBandwidth": &k.VideoMaxSendBandwidth, "videoMinSendBandwidth": &k.VideoMinSendBandwidth,
		} {
			if ko.present(key) {
				v, err := ko.integer(key, 0)
				if err != nil {
					return o, err
				}
				n := int(v)
				*dst = &n
			}
		}
		if k.AllowedFilters, _, err = ko.strings("allowedFilters"); err != nil {
			return o, err
		}
		o.KurentoOptions = k
	}
	if b.present("customIceServers") {
		var raw []body
		if err := json.Unmarshal(b["customIceServers"], &raw); err != nil {
			return o, errors.New(`"customIceServers" must be an array of objects`)
		}
		for _, s := range raw {
			is, err := iceServer(s)
			if err != nil {
				return o, err
			}
			o.CustomIceServers = append(o.CustomIceServers, is)
		}
	}
	return o, nil
}

// iceServer checks one customIceServers entry with OpenVidu's rules (protocol note §8.2), the same
// ones that apply to OPENVIDU_WEBRTC_ICE_SERVERS.
func iceServer(b body) (session.IceServer, error) {
	var s session.IceServer
	var err error
	if s.URL, err = b.str("url", ""); err != nil {
		return s, err
	}
	if s.Username, err = b.str("username", ""); err != nil {
		return s, err
	}
	if s.Credential, err = b.str("credential", ""); err != nil {
		return s, err
	}
	if s.StaticAuthSecret, err = b.str("staticAuthSecret", ""); err != nil {
		return s, err
	}
	if err := (config.IceServer{URL: s.URL, Username: s.Username, Credential: s.Credential, StaticAuthSecret: s.StaticAuthSecret}).Validate(); err != nil {
		return s, err
	}
	return s, nil
}

func connectionJSON(c session.ConnectionInfo) map[string]any {
	var ko any
	if k := c.Options.KurentoOptions; k != nil {
		m := map[string]any{}
		for key, v := range map[string]*int{
			"videoMaxRecvBandwidth": k.VideoMaxRecvBandwidth, "videoMinRecvBandwidth": k.VideoMinRecvBandwidth,
			"videoMaxSendBandwidth": k.VideoMaxSendBandwidth, "videoMinSendBandwidth": k.VideoMinSendBandwidth,
		} {
			if v != nil {
				m[key] = *v
			}
		}
		if k.AllowedFilters != nil {
			m["allowedFilters"] = k.AllowedFilters
		}
		ko = m
	}
	ice := make([]any, 0, len(c.Options.CustomIceServers))
	for _, s := range c.Options.CustomIceServers {
		e := map[string]any{"url": s.URL}
		if s.Username != "" {
			e["username"], e["credential"] = s.Username, s.Credential
		}
		ice = append(ice, e)
	}
	v := map[string]any{
		"id": c.ID, "object": "connection", "type": c.Options.Type, "connectionId": c.ID, "sessionId": c.Session,
		"createdAt": c.CreatedAt.UnixMilli(), "token": c.Token, "serverData": c.Options.Data,
		"record": c.Options.Record, "role": c.Options.Role, "kurentoOptions": ko, "customIceServers": ice,
		"rtspUri": nil, "adaptativeBitrate": nil, "onlyPlayWithSubscribers": nil, "networkCache": nil,
		"status": "pending", "activeAt": nil, "location": nil, "ip": nil, "platform": nil, "clientData": nil,
		"publishers": nil, "subscribers": nil,
	}
	if c.Active {
		pubs := make([]any, 0, len(c.Publishers))
		for _, p := range c.Publishers {
			mo := map[string]any{"hasAudio": p.Media.HasAudio, "hasVideo": p.Media.HasVideo, "filter": map[string]any{}}
			if p.Media.HasAudio {
				mo["audioActive"] = p.Media.AudioActive
			}
			if p.Media.HasVideo {
				mo["videoActive"], mo["typeOfVideo"], mo["frameRate"], mo["videoDimensions"] = p.Media.VideoActive, p.Media.TypeOfVideo, p.Media.FrameRate, p.Media.VideoDimensions
			}
			pubs = append(pubs, map[string]any{"createdAt": p.CreatedAt.UnixMilli(), "streamId": p.ID, "mediaOptions": mo, "connectionPath": pathJSON(p.Path)})
		}
		subs := make([]any, 0, len(c.Subscribers))
		for _, s := range c.Subscribers {
			subs = append(subs, map[string]any{"createdAt": s.CreatedAt.UnixMilli(), "streamId": s.Stream, "connectionPath": pathJSON(s.Path)})
		}
		v["status"], v["activeAt"], v["location"], v["ip"], v["platform"], v["clientData"] = "active", c.ActiveAt.UnixMilli(), "unknown", c.IP, c.Platform, c.ClientData
		v["publishers"], v["subscribers"] = pubs, subs
	}
	return v
}

// pathJSON is Parley's extra field on publishers and subscribers (stock clients ignore unknown
// keys): the ICE candidate pair that carries the media, or null before it connects.
func pathJSON(p session.MediaPath) any {
	if p.Protocol == "" {
		return nil
	}
	return map[string]any{"protocol": p.Protocol, "localType": p.LocalType, "remoteType": p.RemoteType, "local": p.Local, "remote": p.Remote, "viaTurn": p.ViaTURN}
}

func (a *API) createConnection(w http.ResponseWriter, r *http.Request) {
	id := session.SessionID(r.PathValue("id"))
	if _, err := a.m.Session(id, false); err != nil {
		a.failModel(w, r, err)
		return
	}
	b, ok := a.readBody(w, r)
	if !ok {
		return
	}
	o, err := connectionOptions(b)
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ci, err := a.m.CreateConnection(id, o)
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, connectionJSON(ci))
}

func (a *API) listConnections(w http.ResponseWriter, r *http.Request) {
	cs, err := a.m.Connections(session.SessionID(r.PathValue("id")), queryBool(r, "pendingConnections", true))
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	content := make([]any, 0, len(cs))
	for _, c := range cs {
		content = append(content, connectionJSON(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"numberOfElements": len(content), "content": content})
}

// sessionOr400 checks the session of a /connection/{cid} or /stream/{sid} path: the reference
// answers 400 for an unknown session there, keeping 404 for the unknown connection or stream.
func (a *API) sessionOr400(w http.ResponseWriter, r *http.Request) (session.SessionID, bool) {
	id := session.SessionID(r.PathValue("id"))
	if _, err := a.m.Session(id, false); err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return id, false
	}
	return id, true
}

func (a *API) getConnection(w http.ResponseWriter, r *http.Request) {
	id, ok := a.sessionOr400(w, r)
	if !ok {
		return
	}
	ci, err := a.m.Connection(id, session.ConnectionID(r.PathValue("cid")))
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, connectionJSON(ci))
}

func (a *API) patchConnection(w http.ResponseWriter, r *http.Request) {
	id, ok := a.sessionOr400(w, r)
	if !ok {
		return
	}
	b, ok := a.readBody(w, r)
	if !ok {
		return
	}
	var role *session.Role
	var record *bool
	if b.present("role") {
		s, err := b.enum("role", "", "PUBLISHER", "SUBSCRIBER", "MODERATOR")
		if err != nil {
			a.fail(w, r, http.StatusBadRequest, err.Error())
			return
		}
		rl := session.Role(s)
		role = &rl
	}
	if b.present("record") {
		v, err := b.boolean("record", true)
		if err != nil {
			a.fail(w, r, http.StatusBadRequest, err.Error())
			return
		}
		record = &v
	}
	ci, err := a.m.UpdateConnection(id, session.ConnectionID(r.PathValue("cid")), role, record)
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, connectionJSON(ci))
}

func (a *API) deleteConnection(w http.ResponseWriter, r *http.Request) {
	id, ok := a.sessionOr400(w, r)
	if !ok {
		return
	}
	if err := a.m.DeleteConnection(id, session.ConnectionID(r.PathValue("cid"))); err != nil {
		a.failModel(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) deleteStream(w http.ResponseWriter, r *http.Request) {
	id, ok := a.sessionOr400(w, r)
	if !ok {
		return
	}
	if err := a.m.ForceUnpublishByServer(id, session.StreamID(r.PathValue("sid"))); err != nil {
		a.failModel(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// createToken is the deprecated POST /tokens: a connection, answered in the old token shape.
func (a *API) createToken(w http.ResponseWriter, r *http.Request) {
	b, ok := a.readBody(w, r)
	if !ok {
		return
	}
	sid, err := b.required("session")
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	delete(b, "record") // ignored by the reference on this endpoint
	o, err := connectionOptions(b)
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ci, err := a.m.CreateConnection(session.SessionID(sid), o)
	if err != nil {
		a.failModel(w, r, err)
		return
	}
	v := map[string]any{"id": ci.Token, "token": ci.Token, "createdAt": ci.CreatedAt.UnixMilli(), "connectionId": ci.ID,
		"session": ci.Session, "data": o.Data, "role": o.Role}
	if c := connectionJSON(ci); c["kurentoOptions"] != nil {
		v["kurentoOptions"] = c["kurentoOptions"]
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) signal(w http.ResponseWriter, r *http.Request) {
	b, ok := a.readBody(w, r)
	if !ok {
		return
	}
	sid, err := b.required("session")
	var typ, data string
	var to []string
	if err == nil {
		typ, err = b.str("type", "")
	}
	if err == nil {
		data, err = b.str("data", "")
	}
	if err == nil {
		to, _, err = b.strings("to")
	}
	if err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ids := make([]session.ConnectionID, len(to))
	for i, t := range to {
		ids[i] = session.ConnectionID(t)
	}
	if err := a.m.SendSignal(session.SessionID(sid), nil, ids, typ, data); err != nil {
		a.failModel(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// ---- config, health, recordings ----

func (a *API) config(w http.ResponseWriter, r *http.Request) {
	v := a.cfg.ConfigJSON
	if v == nil {
		v = map[string]any{"VERSION": Version, "DOMAIN_OR_PUBLIC_IP": a.cfg.Domain, "HTTPS_PORT": a.cfg.HTTPSPort,
			"OPENVIDU_PUBLICURL": a.cfg.PublicURL, "OPENVIDU_CDR": false, "OPENVIDU_RECORDING": false, "OPENVIDU_WEBHOOK": false}
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *API) configItem(w http.ResponseWriter, r *http.Request) {
	var v any
	switch r.PathValue("item") {
	case "openvidu-version":
		v = Version
	case "openvidu-publicurl":
		v = a.cfg.PublicURL
	case "openvidu-recording":
		v = a.cfg.Recordings != nil
	case "openvidu-cdr":
		v, _ = a.cfg.ConfigJSON["OPENVIDU_CDR"].(bool)
	case "openvidu-recording-path":
		v = a.cfg.RecordingPath
	default:
		a.fail(w, r, http.StatusNotFound, "no such configuration item")
		return
	}
	// As Spring serves the reference's String and Boolean handlers: text, or a bare JSON boolean.
	switch x := v.(type) {
	case string:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, x)
	case bool:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, strconv.FormatBool(x))
	}
}

func (a *API) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "UP", "disconnectedMediaNodes": []any{}})
}

func (a *API) recordingsDisabled(w http.ResponseWriter, r *http.Request) {
	a.fail(w, r, http.StatusNotImplemented, "recording is not enabled (OPENVIDU_RECORDING=false)")
}
