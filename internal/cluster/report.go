package cluster

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/parley/parley/internal/session"
)

// Reporting: webhooks and the CDR must see each event once in the whole cluster, as they would
// from one OpenVidu server. Each node's model emits what it saw, which is right for what happens
// to a participant (the node that holds it reports it) but not for a session, which every node in
// it holds a copy of: every copy would report its own end, and a REST signal delivered by three
// nodes would be three signals. So the session-level events are decided here, where the shared
// record says what happened cluster-wide:
//
//   - sessionCreated: by the node whose CreateSession created the record;
//   - sessionDestroyed: by the node whose write removed the record, the last participant having
//     left on it (lastParticipantLeft) or its recording of a session nobody was in any more having
//     stopped (automaticStop), or whose REST call closed it (sessionClosedByServer); a
//     node that merely drops its copy, or stops, reports none (the session lives on elsewhere);
//   - signalSent of a REST signal: by the node that took the REST call, with every recipient;
//   - the rest (participants, streams, media connections, participants' own signals, recordings)
//     by the node that emitted it, which is the one that holds the participant or the recording.

// reporters are the listeners Report registered.
type reporters struct {
	mu sync.Mutex
	ls []session.Listener
}

// Report registers l for the events this node reports for the cluster: its model's events except
// the session-level ones, which the Node emits itself once per cluster (see above). l must not
// block; it is called from the model's event delivery and from the Node's own goroutines.
func (n *Node) Report(l session.Listener) {
	n.reporters.mu.Lock()
	n.reporters.ls = append(n.reporters.ls, l)
	n.reporters.mu.Unlock()
	n.m.Listen(func(e session.Event) {
		if reportedByModel(e) {
			l(e)
		}
	})
}

// reportedByModel tells the model's events that the Node passes on as they are.
func reportedByModel(e session.Event) bool {
	switch e.Kind {
	case session.SessionCreated, session.SessionDestroyed:
		return false
	case session.SignalSent:
		return e.Signal != nil && e.Signal.From != "" // a participant's: reported where it was sent
	}
	return true
}

// report hands a cluster-wide event to the reporters.
func (n *Node) report(e session.Event) {
	n.reporters.mu.Lock()
	ls := n.reporters.ls
	n.reporters.mu.Unlock()
	for _, l := range ls {
		l(e)
	}
}

// reportDestroyed reports the end of a session whose record rec (JSON, as the script that removed
// it returned it) this node removed.
func (n *Node) reportDestroyed(rec string, reason string, at time.Time) {
	var r sessionRecord
	if err := json.Unmarshal([]byte(rec), &r); err != nil {
		n.log.Warn("cluster: unreadable session record; its sessionDestroyed is not reported", "err", err)
		return
	}
	if at.IsZero() {
		at = n.cfg.Now()
	}
	n.report(session.Event{Kind: session.SessionDestroyed, Time: at, Session: r.ID, Reason: reason,
		SessionCreatedAt: r.CreatedAt, Started: r.CreatedAt})
}
