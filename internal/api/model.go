package api

import "github.com/parley/parley/internal/session"

// Model is the session model as the REST API calls it: sessions are created and listed here, and
// everything else goes through the handle of the session the URL names. FromManager adapts the
// session model; tests may put a fake here.
type Model interface {
	CreateSession(p session.Properties) (session.SessionInfo, error)
	Sessions(pending bool) []session.SessionInfo
	Room(id session.SessionID) Room
}

// Room is one session as REST changes it (a session.Room).
type Room interface {
	SessionOps
	ConnectionStore
}

// SessionOps reads, closes and acts on one session.
type SessionOps interface {
	// Info is the session's snapshot; pending includes connections nobody joined with yet.
	Info(pending bool) (session.SessionInfo, error)
	Close() error
	// ForceUnpublish stops a stream (DELETE .../stream/{id}).
	ForceUnpublish(sid session.StreamID) error
	// Signal sends a REST signal (from nobody).
	Signal(to []session.ConnectionID, typ, data string) error
}

// ConnectionStore creates, reads, changes and deletes a session's connections.
type ConnectionStore interface {
	CreateConnection(o session.ConnectionOptions) (session.ConnectionInfo, error)
	Connection(cid session.ConnectionID) (session.ConnectionInfo, error)
	UpdateConnection(cid session.ConnectionID, role *session.Role, record *bool) (session.ConnectionInfo, error)
	DeleteConnection(cid session.ConnectionID) error
}

var _ Room = session.Room{}

// FromManager adapts the session model to Model. It is needed only because a Go method returning
// the concrete session.Room does not satisfy an interface method returning Room.
func FromManager(m *session.Manager) Model { return manager{m} }

type manager struct{ *session.Manager }

func (m manager) Room(id session.SessionID) Room { return m.Manager.Room(id) }
