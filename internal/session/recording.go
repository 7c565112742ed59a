package session

import (
	"context"
	"slices"
	"time"
)

// Recording statuses (protocol note §10.1).
const (
	RecordingStarting = "starting"
	RecordingStarted  = "started"
	RecordingStopped  = "stopped"
	RecordingReady    = "ready"
	RecordingFailed   = "failed"
)

// RecordingInfo is a recording as the REST API shows it and recordingStatusChanged reports it
// (protocol note §10.3). The recorder owns it; the model only keeps which recording a session has.
type RecordingInfo struct {
	ID      string
	Name    string
	Session SessionID
	// SessionCreatedAt tells apart two sessions of one customSessionId (uniqueSessionId).
	SessionCreatedAt time.Time
	CreatedAt        time.Time
	Props            RecordingProperties
	Status           string
	// Size in bytes and Duration in seconds, filled once the files are final.
	Size     int64
	Duration float64
	// File is the name of the downloadable file inside the recording's folder once it is ready
	// (<name>.zip, .mp4 or .webm); empty before.
	File string
	// Reason is why it stopped (recordingStoppedByServer, sessionClosedByServer, automaticStop…).
	Reason string
}

// RecordableStream is what a recorder needs of a published stream.
type RecordableStream struct {
	ID         StreamID
	Connection ConnectionID
	// Record is the connection's record property: false keeps its streams out of recordings.
	Record     bool
	ClientData string
	ServerData string
	Media      MediaOptions
	CreatedAt  time.Time
	// Publisher is the stream's media on this node; nil for another node's stream (Node set),
	// which a recorder brings here with Room.PullStream.
	Publisher PublishedMedia
	// Node holds the publisher when it is another node's participant (a mirror).
	Node string
}

// RecordingTarget is a session as a recorder sees it when starting or autostopping.
type RecordingTarget struct {
	ID        SessionID
	CreatedAt time.Time
	Props     Properties
	// Participants counts the session's participants on every node, as Streams lists their streams:
	// a recording on this node records the whole session.
	Participants int
	Streams      []RecordableStream
	// Recording is the id of the session's current recording, empty when none.
	Recording string
}

// recordingState is the recording a session is being recorded by. Guarded by Manager.mu.
type recordingState struct {
	id, name string
}

// RecordingTarget snapshots the session for a recorder.
func (r Room) RecordingTarget() (RecordingTarget, error) {
	m, id := r.m, r.id
	m.mu.Lock()
	defer m.unlock()
	s, err := m.lookup(id)
	if err != nil {
		return RecordingTarget{}, err
	}
	t := RecordingTarget{ID: s.id, CreatedAt: s.createdAt, Props: s.props}
	if s.recording != nil {
		t.Recording = s.recording.id
	}
	for _, c := range m.everyone(s) {
		t.Participants++
		if c.stream != nil {
			t.Streams = append(t.Streams, c.recordable())
		}
	}
	return t, nil
}

// RecordableStream returns one published stream of the session; ok is false when it is gone.
func (r Room) RecordableStream(sid StreamID) (RecordableStream, bool) {
	m, id := r.m, r.id
	m.mu.Lock()
	defer m.unlock()
	s := m.sessions[id]
	if s == nil {
		return RecordableStream{}, false
	}
	c := s.conns[sid.Owner()]
	if c == nil || !c.active || c.gone || c.stream == nil || c.stream.id != sid {
		return RecordableStream{}, false
	}
	return c.recordable(), true
}

func (c *Connection) recordable() RecordableStream {
	return RecordableStream{ID: c.stream.id, Connection: c.id, Record: c.opts.Record, ClientData: c.clientData,
		ServerData: c.opts.Data, Media: c.stream.media, CreatedAt: c.stream.createdAt, Publisher: c.stream.pub, Node: c.node}
}

// PullStream brings stream sid of another node's participant (RecordableStream.Node) to this node
// for a recorder, over the inter-node link (Remote.Pull). The caller closes what it gets when it
// is done: that releases the pull, not the stream.
func (r Room) PullStream(ctx context.Context, sid StreamID) (PublishedMedia, error) {
	m := r.m
	m.mu.Lock()
	c := m.mirror(r.id, sid.Owner())
	if c == nil || c.stream == nil || c.stream.id != sid {
		m.unlock()
		return nil, errorf(KindNotFound, CodeUserNotStreaming, "stream %s is not another node's stream of session %s", sid, r.id)
	}
	node, remote := c.node, m.remote
	m.unlock()
	return remote.Pull(ctx, node, r.id, sid)
}

// notifiedOfRecording says whether role gets recordingStarted/Stopped under
// OPENVIDU_RECORDING_NOTIFICATION (none, moderator, publisher_moderator, all).
func (m *Manager) notifiedOfRecording(r Role) bool {
	switch m.opts.Config.RecordingNotification {
	case "none":
		return false
	case "moderator":
		return r == RoleModerator
	case "all":
		return true
	default: // publisher_moderator, OpenVidu's default
		return r == RoleModerator || r == RolePublisher
	}
}

// RecordingStatus takes a recording's new status from the recorder: "started" marks the session
// as recorded (REST "recording": true, joinRoom's recordingId) and tells its participants
// (recordingStarted); "stopped" or "failed" of the session's current recording clears the mark and
// tells them recordingStopped. Every change is one RecordingStatusChanged event for webhooks.
// A session that is gone is fine: the event still goes to the listeners.
func (m *Manager) RecordingStatus(r RecordingInfo) error {
	m.mu.Lock()
	defer m.unlock()
	s := m.sessions[r.Session]
	if s != nil && !s.createdAt.Equal(r.SessionCreatedAt) {
		s = nil // a newer session of the same custom id
	}
	var to []*Connection
	switch r.Status {
	case RecordingStarted:
		if s == nil {
			return errorf(KindNotFound, CodeRoomNotFound, "session %s cannot be found", r.Session)
		}
		if s.recording != nil && s.recording.id != r.ID {
			return errorf(KindConflict, CodeGeneric, "session %s is already being recorded", r.Session)
		}
		s.recording = &recordingState{id: r.ID, name: r.Name}
		to = m.recordingAudience(s)
	case RecordingStopped, RecordingFailed:
		if s != nil && s.recording != nil && s.recording.id == r.ID {
			s.recording = nil
			to = m.recordingAudience(s)
		}
	}
	ri := r
	m.emit(Event{Kind: RecordingStatusChanged, Session: r.Session, SessionCreatedAt: r.SessionCreatedAt, Started: r.CreatedAt,
		Reason: r.Reason, Recording: &ri}, to...)
	return nil
}

// shownRecording is the recording REST and joiners are told of: this node's, or another node's.
func (s *session) shownRecording() *recordingState {
	if s.recording != nil {
		return s.recording
	}
	return s.remoteRecording
}

// MirrorRecording takes the status of a recording of session r.Session that another node runs:
// "started" marks the session as recorded here too (REST "recording": true, joinRoom's
// recordingId) and tells this node's participants recordingStarted; "stopped" or "failed" clears
// it and tells them recordingStopped. Only participants' sinks hear of it: the recording's node
// reports it to webhooks, once. A start already shown, or of a recording that stopped, changes
// nothing, so a node may be told of a start both by the shared record and by a message.
func (m *Manager) MirrorRecording(r RecordingInfo) {
	m.mu.Lock()
	defer m.unlock()
	s := m.sessions[r.Session]
	if s == nil || !s.createdAt.Equal(r.SessionCreatedAt) {
		return
	}
	switch r.Status {
	case RecordingStarted:
		// Told twice (the shared record read by a joiner and the message) or after its stop: once.
		if s.recording != nil || s.remoteRecording != nil && s.remoteRecording.id == r.ID || s.remoteStopped == r.ID {
			return
		}
		s.remoteRecording = &recordingState{id: r.ID, name: r.Name}
	case RecordingStopped, RecordingFailed:
		s.remoteStopped = r.ID
		if s.remoteRecording == nil || s.remoteRecording.id != r.ID {
			return
		}
		s.remoteRecording = nil
	default:
		return
	}
	ri := r
	m.notify(Event{Kind: RecordingStatusChanged, Session: r.Session, SessionCreatedAt: r.SessionCreatedAt, Started: r.CreatedAt,
		Reason: r.Reason, Recording: &ri}, m.recordingAudience(s)...)
}

func (m *Manager) recordingAudience(s *session) []*Connection {
	return slices.DeleteFunc(m.activeConns(s, nil), func(c *Connection) bool { return !m.notifiedOfRecording(c.opts.Role) })
}

// CloseIfEmpty destroys the session if nobody is in it any more (after a recording's automatic
// stop).
func (r Room) CloseIfEmpty(reason string) {
	m, id := r.m, r.id
	var cleanup []func()
	defer func() { run(cleanup) }()
	m.mu.Lock()
	defer m.unlock()
	s := m.sessions[id]
	if s == nil || s.recording != nil || len(m.activeConns(s, nil)) > 0 {
		return
	}
	cleanup = m.closeSession(s, reason)
}
