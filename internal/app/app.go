package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/session"
)

// Rooms is what the app needs from the session model: it creates a room's session and works on it
// through the session's handle.
type Rooms interface {
	CreateSession(p session.Properties) (session.SessionInfo, error)
	Room(id session.SessionID) Room
}

// Room is one session as the app uses it (a session.Room).
type Room interface {
	Info(pending bool) (session.SessionInfo, error)
	CreateConnection(o session.ConnectionOptions) (session.ConnectionInfo, error)
	Close() error
}

var _ Room = session.Room{}

// FromManager adapts the session model to Rooms (a Go method returning the concrete session.Room
// does not satisfy one returning Room).
func FromManager(m *session.Manager) Rooms { return manager{m} }

type manager struct{ *session.Manager }

func (m manager) Room(id session.SessionID) Room { return m.Manager.Room(id) }

// Config configures the app.
type Config struct {
	config.AppConfig
	// Dev is dev mode: plain HTTP on localhost, so login cookies cannot be marked Secure.
	Dev bool
	// Secret is OPENVIDU_SECRET; login cookies are signed with a key derived from it.
	Secret string
	// SelfSigned is true when the port's certificate is self-signed (production, CERTIFICATE_TYPE
	// selfsigned): browsers then refuse TURN over TLS, which the network test explains.
	SelfSigned bool
	// Files are the built web app (package web): index.html, test.html and assets/. Without
	// index.html the pages say how to build it.
	Files fs.FS
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// ClientAddr, optional, is the client's address behind a request (clientip.Resolver: forwarding
	// headers only from trusted proxies). Without it the TCP peer is the client.
	ClientAddr func(r *http.Request) netip.Addr
	// Rate and Burst tune the per-address limit on POSTs to /app/api/ (default 1 per second, burst
	// 20: a room of people behind one NAT joining at once fits in the burst).
	Rate, Burst float64
}

// Tunables that are not worth a setting.
const (
	// pendingHold is how long an issued but unused token holds a seat in a room: the page joins
	// within a second or two of getting it, and a short hold keeps abandoned or hoarded tokens
	// from filling a room. Only an address's newest unused token in a room holds one (heldSeat).
	pendingHold = 10 * time.Second
	// testTTL bounds a device or network test session: the whole test takes under a minute, and a
	// loopback session must not become a free media relay.
	testTTL = 2 * time.Minute
	// maxTests bounds concurrent test sessions on this node.
	maxTests = 20
	// maxTestsPerAddr bounds them per address (IPv4, IPv6 /64): a person runs the device test
	// (one session) and the network test (one per probed transport, four), and one address must
	// not make /test busy for everyone.
	maxTestsPerAddr = 6
	// maxBody bounds a JSON request body.
	maxBody = 4 << 10
	// sweepEvery is how often Run closes expired test sessions and forgets idle rate buckets.
	sweepEvery = 5 * time.Second
)

// App serves /app/api/, the built-in app and /test.
type App struct {
	cfg   Config
	rooms Rooms
	log   *slog.Logger
	now   func() time.Time
	key   []byte
	limit *limiter[netip.Prefix]
	guess guesses
	files *static

	// mu makes a room's seat count and the token it then issues one step, so two people racing for
	// the last seat cannot both get it. Lock order: mu, then the model's own lock (the model never
	// calls us back).
	mu    sync.Mutex
	tests map[session.SessionID]testEntry
	held  map[heldSeat]heldToken
}

// heldSeat is who an unused token was issued to: one address (IPv4, IPv6 /64), in one room, as a
// person or a screen share. Only its newest token holds a seat, so one address cannot take a
// room's seats with tokens it never uses.
type heldSeat struct {
	room   session.SessionID
	addr   netip.Prefix
	screen bool
}

type heldToken struct {
	conn session.ConnectionID
	at   time.Time
}

// New returns the app; call Routes to serve it and Run to expire test sessions.
func New(cfg Config, rooms Rooms, log *slog.Logger) *App {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 1
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 20
	}
	if cfg.MaxParticipants <= 0 {
		cfg.MaxParticipants = 16
	}
	a := &App{
		cfg: cfg, rooms: rooms, log: log, now: cfg.Now, key: cookieKey(cfg.Secret),
		limit: newLimiter[netip.Prefix](cfg.Rate, cfg.Burst, 1<<16, cfg.Now),
		guess: newGuesses(cfg.Now),
		files: newStatic(cfg.Files, log),
		tests: map[session.SessionID]testEntry{},
	}
	if cfg.Private && len(cfg.Users) == 0 {
		log.Warn("the built-in app is private and has no users: nobody can join rooms or run /test; set PARLEY_APP_USERS=user:password (or PARLEY_APP_PRIVATE=false for open rooms)")
	}
	return a
}

// Routes registers the app on mux: /app/api/ and /test always; / is the customer's application
// when upstream is non-nil (PARLEY_APP_UPSTREAM), else the built-in app.
func (a *App) Routes(mux *http.ServeMux, upstream http.Handler) {
	api := http.NewServeMux()
	api.HandleFunc("GET /app/api/config", a.getConfig)
	api.HandleFunc("POST /app/api/login", a.post(false, a.login))
	api.HandleFunc("POST /app/api/logout", a.post(false, a.logout))
	api.HandleFunc("POST /app/api/rooms/{name}/join", a.post(true, a.join))
	api.HandleFunc("POST /app/api/test/device", a.post(true, a.deviceTest))
	api.HandleFunc("POST /app/api/test/network", a.post(true, a.networkTest))
	api.HandleFunc("/app/api/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, "not_found", "No such app API endpoint.")
	})
	mux.Handle("/app/api/", api)

	mux.HandleFunc("/test", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			// Without this, ServeMux would redirect POST /test to /test/; answer plainly instead.
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		a.files.page(w, r, "test.html")
	})
	mux.Handle("GET /test/assets/", http.StripPrefix("/test", http.HandlerFunc(a.files.asset)))
	mux.Handle("/test/", http.NotFoundHandler())

	if upstream != nil {
		mux.Handle("/", upstream)
		return
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { a.files.page(w, r, "index.html") })
	mux.HandleFunc("GET /assets/", a.files.asset)
}

// Run closes expired test sessions and forgets idle rate-limit buckets until ctx ends.
func (a *App) Run(ctx context.Context) error {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			a.limit.sweep()
			a.guess.byAddr.sweep()
			a.guess.byUser.sweep()
			a.sweepTests()
			a.sweepHeld()
		}
	}
}

// ---- API plumbing ----

// apiError is the body of every failed API call: a stable code for the page's logic and a sentence
// a person can act on.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Error: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // tokens must not sit in a cache
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// post wraps a POST handler with the checks every one needs: a JSON body (a cross-site form cannot
// send one without a CORS preflight we never grant, which with the SameSite cookie stops CSRF), the
// per-address rate limit, and, when auth is set, the app's access control.
func (a *App) post(auth bool, h func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
			fail(w, http.StatusUnsupportedMediaType, "bad_request", "Send a JSON body (Content-Type: application/json).")
			return
		}
		if ok, wait := a.limit.allow(a.clientKey(r), 1); !ok {
			secs := int(wait/time.Second) + 1
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			fail(w, http.StatusTooManyRequests, "rate_limited", fmt.Sprintf("Too many requests from your address. Try again in %d seconds.", secs))
			return
		}
		if auth && !a.authorize(w, r) {
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h(w, r)
	}
}

// authorize enforces PARLEY_APP_PRIVATE / PARLEY_APP_USERS and writes the refusal.
func (a *App) authorize(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case !a.cfg.Private:
		return true
	case len(a.cfg.Users) == 0:
		fail(w, http.StatusForbidden, "app_closed", "This server's app is private and has no user accounts yet. Ask its operator to set PARLEY_APP_USERS.")
		return false
	case a.user(r) == "":
		fail(w, http.StatusUnauthorized, "login_required", "Sign in to use this server.")
		return false
	}
	return true
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// ---- endpoints ----

type configJSON struct {
	Private         bool   `json:"private"`
	Available       bool   `json:"available"` // false: private with no users, nobody can get in
	User            string `json:"user"`
	MaxParticipants int    `json:"maxParticipants"`
	Dev             bool   `json:"dev"`
	BuiltIn         bool   `json:"builtIn"` // the app is served at / (false: / is the customer's application)
	SelfSigned      bool   `json:"selfSignedCert"`
}

func (a *App) getConfig(w http.ResponseWriter, r *http.Request) {
	c := configJSON{Private: a.cfg.Private, Available: !a.cfg.Private || len(a.cfg.Users) > 0, MaxParticipants: a.cfg.MaxParticipants, Dev: a.cfg.Dev, BuiltIn: a.cfg.Upstream == "", SelfSigned: a.cfg.SelfSigned}
	if a.cfg.Private {
		c.User = a.user(r)
	}
	writeJSON(w, http.StatusOK, c)
}

func (a *App) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := decode(r, &req); err != nil {
		fail(w, http.StatusBadRequest, "bad_request", "The login request was malformed.")
		return
	}
	ok, wait := false, time.Duration(0)
	if len(a.cfg.Users) > 0 {
		ok, wait = a.passwordOK(r, req.User, req.Password)
	}
	if wait > 0 {
		secs := int(wait/time.Second) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		fail(w, http.StatusTooManyRequests, "rate_limited", fmt.Sprintf("Too many failed sign-ins. Try again in %d seconds.", secs))
		return
	}
	if !ok {
		fail(w, http.StatusUnauthorized, "bad_login", "That user name and password do not match. Check them and try again.")
		return
	}
	a.setLogin(w, req.User)
	a.log.Info("app login", "user", req.User, "remote", a.clientKey(r).Addr())
	w.WriteHeader(http.StatusNoContent)
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	a.clearLogin(w)
	w.WriteHeader(http.StatusNoContent)
}

// modelError maps a session-model failure to a response a person can act on.
func modelError(w http.ResponseWriter, err error) {
	var se *session.Error
	if errors.As(err, &se) && se.Kind == session.KindNotAcceptable {
		fail(w, http.StatusServiceUnavailable, "unavailable", "The server is restarting. Try again in a moment.")
		return
	}
	fail(w, http.StatusInternalServerError, "internal", "Something went wrong on the server. Try again; if it keeps happening, tell the server's operator.")
}
