package cluster

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/poll"
	"github.com/parley/parley/internal/session"
)

// publisherToken mints a publisher's token for session sid on n.
func publisherToken(t *testing.T, n node, sid session.SessionID) string {
	t.Helper()
	ci, err := n.n.Room(sid).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	if err != nil {
		t.Fatal(err)
	}
	return ci.Token
}

// recordingSession makes session id on a with a publisher on a and one on b, and has a's model
// report a recording of it started, as a's recorder does; it returns b's participant's sink once
// b's participant was told of the recording, and the recording.
func recordingSession(t *testing.T, a, b node, id session.SessionID) (*sink, session.RecordingInfo) {
	t.Helper()
	si, err := a.n.CreateSession(session.Properties{CustomSessionID: string(id)})
	if err != nil {
		t.Fatal(err)
	}
	mk := func() string { return publisherToken(t, a, si.ID) }
	join(t, a, si.ID, mk())
	_, onB := join(t, b, si.ID, mk())
	ri := session.RecordingInfo{ID: string(id), Name: string(id), Session: si.ID, SessionCreatedAt: si.CreatedAt,
		CreatedAt: time.Now(), Status: session.RecordingStarted}
	if err := a.m.RecordingStatus(ri); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, within, "B's participant told of A's recording", func() bool { return told(onB, session.RecordingStarted) })
	return onB, ri
}

// told reports whether s got a recording status of that status.
func told(s *sink, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e.Kind == session.RecordingStatusChanged && e.Recording != nil && e.Recording.Status == status {
			return true
		}
	}
	return false
}

// joinedRecording is the recording a newcomer on on is told of when it joins session id.
func joinedRecording(t *testing.T, on node, id session.SessionID) string {
	t.Helper()
	ci, err := on.n.Room(id).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	if err != nil {
		t.Fatal(err)
	}
	_, jr, err := on.n.Join(id, ci.Token, session.JoinInfo{Metadata: "{}"}, &sink{})
	if err != nil {
		t.Fatal(err)
	}
	return jr.RecordingID
}

// TestCleanShutdownEndsItsRecordings: A records a session that B's participant is in, and stops
// cleanly before its recorder's stop reached Redis. The recording ends with A for the cluster: B's
// participant is told it stopped, REST shows it stopped, and a newcomer on B is told of no
// recording (the session goes on with B's participant).
func TestCleanShutdownEndsItsRecordings(t *testing.T) {
	t.Parallel()
	nodes := newNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	onB, ri := recordingSession(t, a, b, "rec-clean")
	if got := joinedRecording(t, b, ri.Session); got != ri.ID {
		t.Fatalf("a newcomer on B while A records: told of %q, want %q", got, ri.ID)
	}

	a.stop() // no stop from the recorder: it never reached Redis
	poll.Until(t, within, "B's participant told the recording stopped", func() bool { return told(onB, session.RecordingStopped) })
	ctx := context.Background()
	if n, err := b.n.rdb.Exists(ctx, b.n.keys.sessionRecording(ri.Session)).Result(); err != nil || n != 0 {
		t.Fatalf("rs:%s after A's clean shutdown: %d, %v; want gone", ri.Session, n, err)
	}
	if got := joinedRecording(t, b, ri.Session); got != "" {
		t.Fatalf("a newcomer on B after A shut down was told of recording %q", got)
	}
	raw, err := b.n.rdb.HGet(ctx, b.n.keys.recordings(), ri.ID).Result()
	if err != nil || !strings.Contains(raw, `"Status":"stopped"`) || !strings.Contains(raw, `"Reason":"openviduServerStopped"`) {
		t.Fatalf("the shared record of the recording: %s, %v; want stopped, openviduServerStopped", raw, err)
	}
}

// cutOff runs during while b hears nothing of the cluster's messages (its subscription dropped, as
// when its connection to Redis is lost), has a write and publish what changed, then subscribes b
// again, as go-redis does once it reconnects.
func cutOff(t *testing.T, a, b node, during func()) {
	t.Helper()
	ctx := context.Background()
	if err := b.n.sub.Unsubscribe(ctx, b.n.keys.channel()); err != nil {
		t.Fatal(err)
	}
	// Nobody hears the channel on B's side now: what A publishes is lost to B.
	poll.Until(t, within, "B's subscription gone", func() bool {
		subs, err := a.n.rdb.PubSubNumSub(ctx, a.n.keys.channel()).Result()
		return err == nil && subs[a.n.keys.channel()] == 1
	})
	during()
	a.n.Flush(ctx) // written and published while B was away
	if err := b.n.sub.Subscribe(ctx, b.n.keys.channel()); err != nil {
		t.Fatal(err)
	}
}

// TestMirrorsResyncAfterResubscribing: a participant joins on A while B's subscription is down.
// When B subscribes again, its participant is told of the join it missed, once.
func TestMirrorsResyncAfterResubscribing(t *testing.T) {
	t.Parallel()
	nodes := newNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	si, err := a.n.CreateSession(session.Properties{CustomSessionID: "mirror-resync"})
	if err != nil {
		t.Fatal(err)
	}
	mk := func() string { return publisherToken(t, a, si.ID) }
	first, _ := join(t, a, si.ID, mk())
	_, onB := join(t, b, si.ID, mk())
	var late *session.Participant
	cutOff(t, a, b, func() { late, _ = join(t, a, si.ID, mk()) })
	joined := func(id session.ConnectionID) int {
		onB.mu.Lock()
		defer onB.mu.Unlock()
		n := 0
		for _, e := range onB.events {
			if e.Kind == session.ParticipantJoined && e.Connection == id {
				n++
			}
		}
		return n
	}
	poll.Until(t, within, "B's participant told of the join it missed", func() bool { return joined(late.ID()) == 1 })
	if got := b.m.Mirrors(si.ID); len(got) != 2 || got[0] != first.ID() || got[1] != late.ID() {
		t.Fatalf("B mirrors %v after the resync; want %s and %s", got, first.ID(), late.ID())
	}
	if n := joined(first.ID()); n != 0 {
		t.Fatalf("B's participant was told %d times of a participant already there before it joined", n)
	}
}

// TestRecordingsResyncAfterResubscribing: B's subscription is down while A's recording starts,
// and again while it ends (pub/sub drops what B was not there to hear). Each time B subscribes
// again, as go-redis does after it lost its connection to Redis, B's participant is told what
// it missed.
func TestRecordingsResyncAfterResubscribing(t *testing.T) {
	t.Parallel()
	nodes := newNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	si, err := a.n.CreateSession(session.Properties{CustomSessionID: "rec-resync"})
	if err != nil {
		t.Fatal(err)
	}
	ci, _ := a.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	join(t, a, si.ID, ci.Token)
	ci, _ = a.n.Room(si.ID).CreateConnection(session.ConnectionOptions{Type: "WEBRTC", Role: session.RolePublisher})
	_, onB := join(t, b, si.ID, ci.Token)

	ctx := context.Background()
	cut := func(during func()) { t.Helper(); cutOff(t, a, b, during) }
	ri := session.RecordingInfo{ID: "rec-resync", Name: "rec-resync", Session: si.ID, SessionCreatedAt: si.CreatedAt, CreatedAt: time.Now(), Status: session.RecordingStarted}
	cut(func() {
		if err := a.m.RecordingStatus(ri); err != nil {
			t.Fatal(err)
		}
	})
	poll.Until(t, within, "B's participant told of the start it missed", func() bool { return told(onB, session.RecordingStarted) })

	ri.Status, ri.Reason = session.RecordingStopped, "recordingStoppedByServer"
	cut(func() {
		if err := a.m.RecordingStatus(ri); err != nil {
			t.Fatal(err)
		}
		// P recs says it ended, as a's Recordings writes it.
		b, _ := json.Marshal(recRecord{Info: ri, Node: a.n.id})
		if err := a.n.rdb.HSet(ctx, a.n.keys.recordings(), ri.ID, b).Err(); err != nil {
			t.Fatal(err)
		}
	})
	poll.Until(t, within, "B's participant told of the end it missed", func() bool { return told(onB, session.RecordingStopped) })
	if got := joinedRecording(t, b, si.ID); got != "" {
		t.Fatalf("a newcomer on B after the recording ended was told of recording %q", got)
	}
}

// TestRecordingSurvivesRedisRestart: Redis restarts empty while A records a session B's
// participant is in. B reconnects and catches up without taking the recording for ended (nothing
// in Redis says it ended), A writes its rs: entry again with its participants, and the recording's
// end, afterwards, reaches B's participant.
func TestRecordingSurvivesRedisRestart(t *testing.T) {
	t.Parallel()
	srv := ownRedis(t)
	nodes := newNodesOn(t, srv, 2)
	a, b := nodes[0], nodes[1]
	onB, ri := recordingSession(t, a, b, "rec-restart")

	srv.Kill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	poll.Until(t, within, "A's rs: entry written again", func() bool {
		n, err := b.n.rdb.Exists(ctx, b.n.keys.sessionRecording(ri.Session)).Result()
		return err == nil && n == 1
	})
	poll.Until(t, within, "B subscribed again", func() bool {
		subs, err := a.n.rdb.PubSubNumSub(ctx, a.n.keys.channel()).Result()
		return err == nil && subs[a.n.keys.channel()] == 2
	})
	if told(onB, session.RecordingStopped) {
		t.Fatal("B's participant was told the recording stopped when Redis restarted")
	}
	ri.Status, ri.Reason = session.RecordingStopped, "recordingStoppedByServer"
	if err := a.m.RecordingStatus(ri); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, within, "B's participant told the recording stopped", func() bool { return told(onB, session.RecordingStopped) })
}

// listRecorder is a node's recorder that holds the given recordings.
type listRecorder struct {
	LocalRecorder // nil: only what the test calls is implemented
	recs          []session.RecordingInfo
}

func (l *listRecorder) List() []session.RecordingInfo { return l.recs }

func (l *listRecorder) Get(id string) (session.RecordingInfo, error) {
	for _, ri := range l.recs {
		if ri.ID == id {
			return ri, nil
		}
	}
	return session.RecordingInfo{}, errNoRecording(id)
}

// TestRecordingsListedAgainAfterRedisRestart: Redis restarts empty; A writes the recordings its
// recorder holds back into the shared record, so REST on B lists A's recording again.
func TestRecordingsListedAgainAfterRedisRestart(t *testing.T) {
	t.Parallel()
	srv := ownRedis(t)
	nodes := newNodesOn(t, srv, 2)
	a, b := nodes[0], nodes[1]
	kept := session.RecordingInfo{ID: "kept-1", Name: "kept", Session: "kept", CreatedAt: time.Now(), Status: session.RecordingReady}
	a.n.Recordings(&listRecorder{recs: []session.RecordingInfo{kept}})
	rb := b.n.Recordings(&listRecorder{})

	srv.Kill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, within, "B lists A's recording again", func() bool {
		return slices.ContainsFunc(rb.List(), func(ri session.RecordingInfo) bool { return ri.ID == kept.ID })
	})
}
