package recording

import (
	"context"

	"github.com/parley/parley/internal/session"
)

// Sessions is what the recorder needs from the session model. It names sessions by id because the
// recorder works from events and recordings, which carry ids. Tests put a fake here; FromManager
// adapts the model.
type Sessions interface {
	RecordingTarget(session.SessionID) (session.RecordingTarget, error)
	RecordableStream(session.SessionID, session.StreamID) (session.RecordableStream, bool)
	RecordingStatus(session.RecordingInfo) error
	CloseIfEmpty(session.SessionID, string)
	// PullStream brings another node's stream (RecordableStream.Node) here; closing what it
	// returns releases the pull.
	PullStream(context.Context, session.SessionID, session.StreamID) (session.PublishedMedia, error)
}

// FromManager adapts the session model, whose per-session operations are on a session.Room handle,
// to Sessions.
func FromManager(m *session.Manager) Sessions { return manager{m} }

type manager struct{ *session.Manager }

func (m manager) RecordingTarget(id session.SessionID) (session.RecordingTarget, error) {
	return m.Room(id).RecordingTarget()
}

func (m manager) RecordableStream(id session.SessionID, sid session.StreamID) (session.RecordableStream, bool) {
	return m.Room(id).RecordableStream(sid)
}

func (m manager) PullStream(ctx context.Context, id session.SessionID, sid session.StreamID) (session.PublishedMedia, error) {
	return m.Room(id).PullStream(ctx, sid)
}

func (m manager) CloseIfEmpty(id session.SessionID, reason string) { m.Room(id).CloseIfEmpty(reason) }
