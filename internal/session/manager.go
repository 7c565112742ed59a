// Package session is Parley's session model: sessions, connections (tokens), participants, streams
// and subscriptions, their lifecycle, and the events it emits.
//
// It owns all of that state behind one lock and drives the SFU through the small Media interface. It
// must not import api, signaling or edge (they call it) and knows nothing of HTTP or JSON-RPC.
//
// Its surface, by who calls it (each caller declares the interface it uses, in its own package):
//   - the wiring: NewManager, Listen, Run, Shutdown, CollectGarbage;
//   - REST and the app: CreateSession, Sessions, and Room, the handle of one session by id
//     (sessions.go: snapshot, close, connections, force-unpublish, signals);
//   - signaling: Join, which returns the Participant handle of everything a participant does
//     (participant.go);
//   - TURN: Alive and Footprint; the recorder: RecordingStatus and Room's recording operations
//     (recording.go); metrics: SessionCount.
//
// Seams: media below the model is the Media interface (media.go); what leaves the model is Events
// to Sinks and Listeners (event.go, outbox.go). Everything else is the two handles.
//
// Event contract: every state change queues its Events while the lock is held, and they are
// delivered after it is released, one caller at a time, in the order they were made (outbox.go), so
// events of a session arrive in order and no sink or listener runs under the model's lock. Each
// participant's Sink receives the events addressed to it (the OpenVidu notifications); Listeners
// receive each event once. Either may call back into the Manager. Neither may block: a signaling
// sink queues and closes an overflowing client, a webhook listener queues and counts drops. A call
// may return before its events are delivered, when another caller is delivering.
//
// Lock order: Manager.mu is the only lock here. pion objects are never closed and events never
// delivered while holding it, because closing fires pion callbacks and listeners may call back
// into the model.
package session

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/parley/parley/internal/config"
)

// Options configure a Manager.
type Options struct {
	Config config.SessionConfig
	// WebSocketURL is the signaling URL written into tokens (ws://localhost:4443/openvidu).
	WebSocketURL string
	Media        Media
	// Ingest pulls IP cameras (IPCAM connections); nil refuses them.
	Ingest Ingester
	Log    *slog.Logger
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// DescribePath, optional, completes a candidate pair with what only the caller knows (whether the
	// remote address is one of our TURN relays).
	DescribePath func(MediaPath) MediaPath
}

// Manager owns every session of this node. Its zero value is not usable: use NewManager.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	sessions map[SessionID]*session
	// conns indexes every connection of every session by id, for Alive.
	conns     map[ConnectionID]*Connection
	listeners []Listener
	// mirrorListeners get the changes of other nodes' participants (ListenMirrors).
	mirrorListeners []Listener
	// remote reaches other nodes for mirrors (mirror.go); noRemote on a lone node.
	remote  Remote
	closing bool
	// outbox holds events not delivered yet, in order; delivering is set while a caller delivers
	// them (outbox.go).
	outbox     []delivery
	delivering bool
	// delivered is signalled (on mu) whenever a caller stops delivering.
	delivered *sync.Cond
}

// NewManager returns an empty model.
func NewManager(opts Options) *Manager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{opts: opts, log: opts.Log, sessions: map[SessionID]*session{}, conns: map[ConnectionID]*Connection{}, remote: noRemote{}}
	m.delivered = sync.NewCond(&m.mu)
	return m
}

// Listen registers a listener for every event. Register before serving.
func (m *Manager) Listen(l Listener) {
	m.mu.Lock()
	defer m.unlock()
	m.listeners = append(m.listeners, l)
}

// emit queues e for the sinks of to and for every listener; it is delivered once m.mu is released
// (outbox.go). Caller holds m.mu.
func (m *Manager) emit(e Event, to ...*Connection) {
	if e.Time.IsZero() {
		e.Time = m.opts.Now()
	}
	if e.SessionCreatedAt.IsZero() {
		if s := m.sessions[e.Session]; s != nil {
			e.SessionCreatedAt = s.createdAt
		}
	}
	m.queue(e, toListeners, to)
}

// notify queues e for the sinks of to only (a notification that is not itself a new event, e.g.
// participantEvicted after participantLeft). Caller holds m.mu.
func (m *Manager) notify(e Event, to ...*Connection) {
	e.Time = m.opts.Now()
	m.queue(e, toSinksOnly, to)
}

// ListenMirrors adds a listener for the changes of other nodes' participants as this node sees
// them (Event.Node set): StreamPublished, StreamUnpublished and ParticipantLeft of its mirrors. A
// recorder here needs them to record the whole session; webhooks, call records and metrics must
// not see them, since the participant's own node reports each event once to its listeners.
func (m *Manager) ListenMirrors(l Listener) {
	m.mu.Lock()
	defer m.unlock()
	m.mirrorListeners = append(m.mirrorListeners, l)
}

// notifyMirror queues e, a change of mirror c, for the sinks of to and the mirror listeners.
// Caller holds m.mu.
func (m *Manager) notifyMirror(c *Connection, e Event, to ...*Connection) {
	e.Time, e.Node = m.opts.Now(), c.node
	if e.SessionCreatedAt.IsZero() {
		e.SessionCreatedAt = c.sess.createdAt
	}
	m.queue(e, toMirrorListeners, to)
}

// ---- sessions (REST) ----

// Alive reports whether a connection is an active participant (the TURN server asks on every
// authenticated request).
func (m *Manager) Alive(cid string) bool {
	m.mu.Lock()
	defer m.unlock()
	c := m.conns[ConnectionID(cid)]
	return c != nil && c.active && !c.gone && c.node == ""
}

// Footprint reports a participant's session and its PeerConnections (one per publish, one per
// subscription, those being negotiated included), or -1 if it is not active; the TURN server
// sizes a participant's relay allocations by them.
func (m *Manager) Footprint(cid string) (string, int) {
	m.mu.Lock()
	defer m.unlock()
	c := m.conns[ConnectionID(cid)]
	if c == nil || !c.active || c.gone || c.node != "" {
		return "", -1
	}
	n := len(c.subs)
	if c.stream != nil || c.publishing {
		n++
	}
	return string(c.sess.id), n
}

// Run collects sessions nobody joined (OPENVIDU_SESSIONS_GARBAGE_*) until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	if m.opts.Config.GarbageInterval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(m.opts.Config.GarbageInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.CollectGarbage()
		}
	}
}

// CollectGarbage removes sessions without participants that are older than the threshold, silently
// (OpenVidu sends no webhook for them either).
func (m *Manager) CollectGarbage() {
	m.mu.Lock()
	defer m.unlock()
	now := m.opts.Now()
	for id, s := range m.sessions {
		if len(m.activeConns(s, nil)) == 0 && s.recording == nil && now.Sub(s.createdAt) >= m.opts.Config.GarbageThreshold {
			m.dropSession(s)
			m.log.Info("session garbage-collected", "session", id)
		}
	}
}

// Shutdown refuses new work and evicts every participant with reason openviduServerStopped. It
// returns once every event is delivered, so the participants' sockets can be flushed next.
func (m *Manager) Shutdown() {
	var cleanup []func()
	m.mu.Lock()
	m.closing = true
	for _, s := range m.sessions {
		cleanup = append(cleanup, m.closeSession(s, ReasonServerStopped)...)
	}
	m.unlock()
	m.waitDelivered()
	run(cleanup)
}
