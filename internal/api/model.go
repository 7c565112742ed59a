package api

import "github.com/parley/parley/internal/session"

// Model is the session model as the REST API calls it; *session.Manager satisfies it, tests may
// put a fake here.
type Model interface {
	SessionStore
	ConnectionStore
	// ForceUnpublishByServer stops a stream (DELETE .../stream/{id}).
	ForceUnpublishByServer(id session.SessionID, sid session.StreamID) error
	// SendSignal sends a REST signal (from is nil).
	SendSignal(id session.SessionID, from *session.Connection, to []session.ConnectionID, typ, data string) error
}

// SessionStore creates, lists and closes sessions.
type SessionStore interface {
	CreateSession(p session.Properties) (session.SessionInfo, error)
	Session(id session.SessionID, pending bool) (session.SessionInfo, error)
	Sessions(pending bool) []session.SessionInfo
	CloseSession(id session.SessionID) error
}

// ConnectionStore creates, lists, changes and deletes a session's connections.
type ConnectionStore interface {
	CreateConnection(id session.SessionID, o session.ConnectionOptions) (session.ConnectionInfo, error)
	Connection(id session.SessionID, cid session.ConnectionID) (session.ConnectionInfo, error)
	Connections(id session.SessionID, pending bool) ([]session.ConnectionInfo, error)
	UpdateConnection(id session.SessionID, cid session.ConnectionID, role *session.Role, record *bool) (session.ConnectionInfo, error)
	DeleteConnection(id session.SessionID, cid session.ConnectionID) error
}

var _ Model = (*session.Manager)(nil)
