package signaling

import (
	"sync"
	"time"

	"github.com/parley/parley/internal/session"
)

// rpcSession is a JSON-RPC session: at most one participant, reachable through the current socket,
// and kept for ReconnectGrace after that socket drops so the SDK's `connect` can re-attach it.
type rpcSession struct {
	id string
	h  *Handler

	mu    sync.Mutex
	sock  *socket // nil while waiting for a reconnection
	part  Participant
	grace *time.Timer
	// dead: forgotten by the handler; `connect` can no longer re-attach it.
	dead bool
	// stopped: the handler is shutting down; a dropped socket arms no grace timer.
	stopped bool
}

// Notify translates a model event into the OpenVidu notification and queues it (session.Sink).
func (r *rpcSession) Notify(e session.Event) {
	if b := r.h.notes.encode(e); b != nil {
		r.push(b)
	}
}

// push queues a frame on the session's current socket; without one (waiting for a
// reconnection) it is dropped, as notifications are.
func (r *rpcSession) push(b []byte) {
	r.mu.Lock()
	sock := r.sock
	r.mu.Unlock()
	if sock != nil {
		sock.send(b)
	}
}

// socket is the session's current socket (nil while waiting for a reconnection).
func (r *rpcSession) socket() *socket {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sock
}

func (r *rpcSession) participant() Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.part
}

// logIDs names the JSON-RPC session in a log line, with its participant's session and connection
// ids once it has joined.
func (r *rpcSession) logIDs() []any {
	ids := []any{"rpc", r.id}
	if p := r.participant(); p != nil {
		ids = append(ids, "session", p.Session(), "connection", p.ID())
	}
	return ids
}

// attach moves the session to a new socket, cancelling the eviction timer.
func (r *rpcSession) attach(sock *socket) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead {
		return false
	}
	if r.grace != nil {
		r.grace.Stop()
		r.grace = nil
	}
	old := r.sock
	r.sock = sock
	if old != nil && old != sock {
		old.finish() // a half-open socket the client has given up on
	}
	return true
}

// detach runs when sock closes. A participant that did not leave gets ReconnectGrace to come back
// before it is evicted with networkDisconnect.
func (r *rpcSession) detach(sock *socket) {
	r.mu.Lock()
	if r.sock != sock {
		r.mu.Unlock()
		return // already re-attached elsewhere
	}
	r.sock = nil
	if r.part == nil || r.dead || r.stopped {
		r.dead = true
		r.hookForget()
		r.mu.Unlock()
		r.h.forget(r)
		return
	}
	part := r.part
	r.grace = time.AfterFunc(r.h.cfg.ReconnectGrace, func() {
		r.mu.Lock()
		if r.sock != nil || r.dead {
			r.mu.Unlock()
			return
		}
		r.dead = true
		r.hookForget()
		r.mu.Unlock()
		r.h.forget(r)
		r.h.log.Info("participant did not reconnect in time", "connection", part.ID(), "rpc", r.id)
		part.Evict(session.ReasonNetworkDisconnect)
	})
	r.mu.Unlock()
}

// discard drops a session that was replaced by a reconnection before it joined anything.
func (r *rpcSession) discard() {
	r.mu.Lock()
	r.sock = nil
	if r.part != nil {
		r.mu.Unlock()
		return
	}
	r.dead = true
	r.hookForget()
	r.mu.Unlock()
	r.h.forget(r)
}

// hookForget runs the test hook, if any, at the point where the session is dead but still held
// under r.mu: the moment a lock inversion with Handler.Shutdown would bite.
func (r *rpcSession) hookForget() {
	if f := r.h.testHooks.forgetting; f != nil {
		f()
	}
}

// stopGrace cancels a pending eviction and keeps detach from arming a new one: the handler is
// shutting down and the model has already evicted everyone. Called with Handler.mu held, which
// comes before rpcSession.mu (locksordering.txt).
func (r *rpcSession) stopGrace() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	if r.grace != nil {
		r.grace.Stop()
	}
}
