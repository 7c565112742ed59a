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
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

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
	// ConfigLive, optional, adds entries to GET /config that change while the server runs (the
	// cluster's nodes); it is called at each request.
	ConfigLive func() map[string]any
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
	m    Model
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
func New(cfg Config, m Model, log *slog.Logger) *API {
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
	a.fail(w, r, session.HTTPStatus(err), err.Error())
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

func (a *API) config(w http.ResponseWriter, r *http.Request) {
	v := a.cfg.ConfigJSON
	if v == nil {
		v = map[string]any{"VERSION": Version, "DOMAIN_OR_PUBLIC_IP": a.cfg.Domain, "HTTPS_PORT": a.cfg.HTTPSPort,
			"OPENVIDU_PUBLICURL": a.cfg.PublicURL, "OPENVIDU_CDR": false, "OPENVIDU_RECORDING": false, "OPENVIDU_WEBHOOK": false}
	}
	if a.cfg.ConfigLive != nil {
		v = maps.Clone(v)
		maps.Copy(v, a.cfg.ConfigLive())
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
