package app

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parley/parley/internal/session"
)

// roomRE is what a room name may be: it becomes part of a session id, so it stays within OpenVidu's
// customSessionId alphabet, and it sits in invite links, so it stays short and URL-safe. Names are
// lowercased first: "Standup" and "standup" are the same room to a person.
var roomRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9_-]{0,48}[a-z0-9])?$`)

const (
	roomPrefix = "room_"
	testPrefix = "test_"
	maxNick    = 40 // runes
)

// RoomSession is the session id behind an app room. Exported for tests and operators' tools.
func RoomSession(room string) session.SessionID { return session.SessionID(roomPrefix + room) }

// cleanNickname trims a nickname and checks it: printable, at most maxNick characters.
func cleanNickname(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxNick {
		return "", false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "", false
		}
	}
	return s, true
}

// connData is the server data of every app connection. "clientData" is the key the OpenVidu
// tutorials read, so a stock tutorial page shows the same names; the app joins without client data
// so the metadata a participant sees is exactly this, written by the server (nobody can pose as
// someone else by editing their page).
type connData struct {
	ClientData string `json:"clientData"`
	Screen     bool   `json:"screen,omitempty"`
}

func parseConnData(s string) connData {
	var d connData
	_ = json.Unmarshal([]byte(s), &d)
	return d
}

// appRoom are the session properties of an app room: OpenVidu's REST defaults, so recording and
// the REST API see the same values as for a session created without a body.
func appRoom(id session.SessionID) session.Properties {
	return session.Properties{
		MediaMode: "ROUTED", RecordingMode: "MANUAL", CustomSessionID: string(id), ForcedVideoCodec: "MEDIA_SERVER_PREFERRED",
		DefaultRecording: session.RecordingProperties{
			HasAudio: true, HasVideo: true, OutputMode: "COMPOSED", RecordingLayout: "BEST_FIT",
			Resolution: "1280x720", FrameRate: 25, ShmSize: 536870912,
		},
	}
}

type joinResponse struct {
	Token    string `json:"token"`
	Room     string `json:"room"`
	Nickname string `json:"nickname"`
}

// join is POST /app/api/rooms/{name}/join {"nickname": "…", "screen": false}: the room's session is
// created on first use, and a PUBLISHER token is issued for the nickname, unless the room is full.
// A screen share is a second connection of the same person ("screen": true); it needs the room to
// exist and does not take a seat.
func (a *App) join(w http.ResponseWriter, r *http.Request) {
	room := strings.ToLower(r.PathValue("name"))
	if !roomRE.MatchString(room) {
		fail(w, http.StatusBadRequest, "invalid_room", "Room names use letters, digits, '-' and '_' (up to 50), and start and end with a letter or digit.")
		return
	}
	var req struct {
		Nickname string `json:"nickname"`
		Screen   bool   `json:"screen"`
	}
	if err := decode(r, &req); err != nil {
		fail(w, http.StatusBadRequest, "bad_request", "The join request was malformed.")
		return
	}
	nick, ok := cleanNickname(req.Nickname)
	if !ok {
		fail(w, http.StatusBadRequest, "invalid_nickname", fmt.Sprintf("Type a name others will see: 1 to %d characters.", maxNick))
		return
	}
	sid := RoomSession(room)
	data, _ := json.Marshal(connData{ClientData: nick, Screen: req.Screen})

	a.mu.Lock()
	defer a.mu.Unlock()
	si, err := a.rooms.Room(sid).Info(true)
	var se *session.Error
	switch {
	case err == nil:
	case errors.As(err, &se) && se.Kind == session.KindNotFound && !req.Screen:
		if si, err = a.rooms.CreateSession(appRoom(sid)); err != nil {
			modelError(w, err)
			return
		}
		a.log.Info("app room created", "session", sid, "remote", a.clientKey(r).Addr())
	case errors.As(err, &se) && se.Kind == session.KindNotFound:
		fail(w, http.StatusConflict, "room_closed", "This meeting has ended, so there is nothing to share your screen into.")
		return
	default:
		modelError(w, err)
		return
	}
	if n := a.seats(si, req.Screen); n >= a.cfg.MaxParticipants {
		what := "people"
		if req.Screen {
			what = "screen shares"
		}
		fail(w, http.StatusConflict, "room_full", fmt.Sprintf("This room is full: it already has %d %s, the most this server allows. Try again when someone leaves, or use another room name.", n, what))
		return
	}
	ci, err := a.rooms.Room(sid).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Data: string(data), Role: session.RolePublisher, Record: true})
	if err != nil {
		modelError(w, err)
		return
	}
	if a.held == nil {
		a.held = map[heldSeat]heldToken{}
	}
	a.held[heldSeat{room: sid, addr: a.clientKey(r), screen: req.Screen}] = heldToken{conn: ci.ID, at: a.now()}
	writeJSON(w, http.StatusOK, joinResponse{Token: ci.Token, Room: room, Nickname: nick})
}

// seats counts the people (or screen shares) in a room: joined connections, and tokens issued
// within pendingHold that are presumably on their way in, at most one per address (the newest).
// Caller holds a.mu.
func (a *App) seats(si session.SessionInfo, screen bool) int {
	held := map[session.ConnectionID]bool{}
	for k, t := range a.held {
		if k.room == si.ID && k.screen == screen {
			held[t.conn] = true
		}
	}
	n := 0
	now := a.now()
	for _, c := range si.Connections {
		if parseConnData(c.Options.Data).Screen != screen {
			continue
		}
		if c.Active || (held[c.ID] && now.Sub(c.CreatedAt) < pendingHold) {
			n++
		}
	}
	return n
}

// sweepHeld forgets tokens that no longer hold a seat.
func (a *App) sweepHeld() {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	for k, t := range a.held {
		if now.Sub(t.at) >= pendingHold {
			delete(a.held, k)
		}
	}
}

// ---- /test ----

// deviceTestResponse holds the two tokens of the device test: the page publishes with the first and
// subscribes to its own stream, through the server, with the second.
type deviceTestResponse struct {
	PublisherToken string `json:"publisherToken"`
	LoopbackToken  string `json:"loopbackToken"`
	ExpiresIn      int    `json:"expiresIn"` // seconds until the server closes the session
}

// networkTestResponse holds the token of one network probe: the page publishes a tiny stream over a
// PeerConnection restricted to one transport (UDP, ICE-TCP, TURN/TCP or TURN/TLS). Each probe gets
// its own session because the model closes a session when its last participant leaves.
type networkTestResponse struct {
	Token     string `json:"token"`
	ExpiresIn int    `json:"expiresIn"`
}

func (a *App) deviceTest(w http.ResponseWriter, r *http.Request) {
	toks, ok := a.newTest(w, r, []session.Role{session.RolePublisher, session.RoleSubscriber})
	if ok {
		writeJSON(w, http.StatusOK, deviceTestResponse{PublisherToken: toks[0], LoopbackToken: toks[1], ExpiresIn: int(testTTL.Seconds())})
	}
}

func (a *App) networkTest(w http.ResponseWriter, r *http.Request) {
	toks, ok := a.newTest(w, r, []session.Role{session.RolePublisher})
	if ok {
		writeJSON(w, http.StatusOK, networkTestResponse{Token: toks[0], ExpiresIn: int(testTTL.Seconds())})
	}
}

// testEntry is a running test session: when it is closed, and the address that asked for it.
type testEntry struct {
	deadline time.Time
	addr     netip.Prefix
}

// newTest creates a private session nobody else can find (a random id, never listed by the app)
// with one token per role, closed by Run after testTTL.
func (a *App) newTest(w http.ResponseWriter, r *http.Request, roles []session.Role) ([]string, bool) {
	var req struct{}
	if err := decode(r, &req); err != nil {
		fail(w, http.StatusBadRequest, "bad_request", "The test request was malformed.")
		return nil, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	addr, mine := clientKey(r), 0
	for _, te := range a.tests {
		if te.addr == addr {
			mine++
		}
	}
	if mine >= maxTestsPerAddr {
		fail(w, http.StatusTooManyRequests, "rate_limited", "You already have tests running. Finish them or try again in two minutes.")
		return nil, false
	}
	if len(a.tests) >= maxTests {
		fail(w, http.StatusServiceUnavailable, "busy", "Too many people are testing right now. Try again in a minute.")
		return nil, false
	}
	sid := session.SessionID(testPrefix + rand.Text()[:16])
	if _, err := a.rooms.CreateSession(appRoom(sid)); err != nil {
		modelError(w, err)
		return nil, false
	}
	a.tests[sid] = testEntry{deadline: a.now().Add(testTTL), addr: addr}
	data, _ := json.Marshal(connData{ClientData: "device test"})
	var toks []string
	for _, role := range roles {
		ci, err := a.rooms.Room(sid).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Data: string(data), Role: role})
		if err != nil {
			modelError(w, err)
			return nil, false
		}
		toks = append(toks, ci.Token)
	}
	return toks, true
}

// sweepTests closes test sessions past their deadline and forgets those that already ended (the
// model destroys a session when its last participant leaves).
func (a *App) sweepTests() {
	now := a.now()
	var expired []session.SessionID
	a.mu.Lock()
	for sid, te := range a.tests {
		_, err := a.rooms.Room(sid).Info(false)
		switch {
		case err != nil:
			delete(a.tests, sid)
		case now.After(te.deadline):
			delete(a.tests, sid)
			expired = append(expired, sid)
		}
	}
	a.mu.Unlock()
	for _, sid := range expired {
		// Closing evicts the page's participants, which see "sessionClosedByServer".
		if err := a.rooms.Room(sid).Close(); err == nil {
			a.log.Info("test session expired", "session", sid)
		}
	}
}
