package signaling

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/parley/parley/internal/session"
)

// fakeModel is a hand-written session model: it records every call as a line of text, answers
// with fixed values, and fails a method when errs names it.
type fakeModel struct {
	mu      sync.Mutex
	calls   []string
	errs    map[string]error // by method name
	res     session.JoinResult
	joined  int
	sinks   map[session.ConnectionID]session.Sink
	evicted chan session.ConnectionID // told of every Leave and Evict, when set
	// restorable are the JSON-RPC session ids Restore knows (a cluster's lost node held them),
	// with the streams each was subscribed to there; PrepareSubscribe fails for unpublished ones.
	restorable  map[string][]session.StreamID
	unpublished map[session.StreamID]bool
}

// fakeEpoch is the fake's clock: every createdAt the fake reports.
var fakeEpoch = time.UnixMilli(1_700_000_000_000)

func newFakeModel() *fakeModel {
	return &fakeModel{errs: map[string]error{}, sinks: map[session.ConnectionID]session.Sink{}}
}

func (f *fakeModel) record(format string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	line := fmt.Sprintf(format, args...)
	f.calls = append(f.calls, line)
	name, _, _ := strings.Cut(line, " ")
	return f.errs[name]
}

// takeCalls returns the calls recorded so far and forgets them.
func (f *fakeModel) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeModel) fail(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[method] = err
}

func (f *fakeModel) Join(id session.SessionID, token string, j session.JoinInfo, sink session.Sink) (Participant, session.JoinResult, error) {
	if err := f.record("Join %s %s metadata=%q platform=%q", id, token, j.Metadata, j.Platform); err != nil {
		return nil, session.JoinResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.joined++
	p := &fakeParticipant{f: f, id: session.ConnectionID(fmt.Sprintf("con_Fake%06d", f.joined)), sess: id}
	f.sinks[p.id] = sink
	res := f.res
	res.Self = session.ParticipantInfo{ID: p.id, CreatedAt: fakeEpoch, Metadata: j.Metadata}
	res.Session = id
	if res.Role == "" {
		res.Role = session.RolePublisher
	}
	return p, res, nil
}

// restoringModel is the fake model of a cluster's node: a Restorer.
type restoringModel struct{ *fakeModel }

var _ Restorer = restoringModel{}

// Restore makes a participant of a lost node's JSON-RPC session rpc this node's.
func (r restoringModel) Restore(rpc, ip string, sink session.Sink) (Participant, []session.StreamID, error) {
	f := r.fakeModel
	if err := f.record("Restore %s ip=%s", rpc, ip); err != nil {
		return nil, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	subs, ok := f.restorable[rpc]
	if !ok {
		return nil, nil, fmt.Errorf("no participant under %s", rpc)
	}
	delete(f.restorable, rpc)
	p := &fakeParticipant{f: f, id: "con_Restored", sess: testSession}
	f.sinks[p.id] = sink
	return p, subs, nil
}

// notify delivers e to the sink of participant to, as the model does.
func (f *fakeModel) notify(to session.ConnectionID, e session.Event) {
	f.mu.Lock()
	s := f.sinks[to]
	f.mu.Unlock()
	s.Notify(e)
}

type fakeParticipant struct {
	f    *fakeModel
	id   session.ConnectionID
	sess session.SessionID
}

func (p *fakeParticipant) ID() session.ConnectionID   { return p.id }
func (p *fakeParticipant) Session() session.SessionID { return p.sess }

func (p *fakeParticipant) Leave() { p.gone("Leave") }

func (p *fakeParticipant) Evict(reason string) { p.gone("Evict " + reason) }

func (p *fakeParticipant) gone(call string) {
	_ = p.f.record("%s", call)
	if p.f.evicted != nil {
		p.f.evicted <- p.id
	}
}

func (p *fakeParticipant) Signal(to []session.ConnectionID, typ, data string) error {
	return p.f.record("Signal to=%v type=%q data=%q", to, typ, data)
}

func (p *fakeParticipant) Publish(_ context.Context, req session.PublishParams) (session.StreamInfo, string, error) {
	line := "Publish offer=%q media=%+v"
	if req.Loopback {
		line += " loopback"
	}
	if err := p.f.record(line, req.Offer, req.Media); err != nil {
		return session.StreamInfo{}, "", err
	}
	return session.StreamInfo{ID: session.StreamID("str_CAM_Fake_" + p.id), CreatedAt: fakeEpoch, Media: req.Media}, "answer to " + req.Offer, nil
}

func (p *fakeParticipant) Unpublish() error { return p.f.record("Unpublish") }

func (p *fakeParticipant) ReconnectPublisher(_ context.Context, offer string) (session.StreamInfo, string, error) {
	if err := p.f.record("ReconnectPublisher offer=%q", offer); err != nil {
		return session.StreamInfo{}, "", err
	}
	return session.StreamInfo{ID: session.StreamID("str_CAM_Fake_" + p.id), CreatedAt: fakeEpoch}, "answer to " + offer, nil
}

func (p *fakeParticipant) ChangeStreamProperty(property, newValue, reason string) error {
	return p.f.record("ChangeStreamProperty %s %s reason=%q", property, newValue, reason)
}

func (p *fakeParticipant) Subscribe(_ context.Context, sid session.StreamID, offer string) (string, error) {
	if err := p.f.record("Subscribe %s offer=%q", sid, offer); err != nil {
		return "", err
	}
	return "answer to " + offer, nil
}

func (p *fakeParticipant) PrepareSubscribe(_ context.Context, sid session.StreamID) (string, error) {
	if err := p.f.record("PrepareSubscribe %s", sid); err != nil {
		return "", err
	}
	p.f.mu.Lock()
	gone := p.f.unpublished[sid]
	p.f.mu.Unlock()
	if gone {
		return "", fmt.Errorf("stream %s not found", sid)
	}
	return "offer for " + string(sid), nil
}

func (p *fakeParticipant) AnswerSubscribe(sid session.StreamID, answer string) error {
	return p.f.record("AnswerSubscribe %s answer=%q", sid, answer)
}

func (p *fakeParticipant) Unsubscribe(publisher session.ConnectionID) error {
	return p.f.record("Unsubscribe %s", publisher)
}

func (p *fakeParticipant) AddCandidate(endpoint string, c session.Candidate) error {
	mid, idx := "<nil>", "<nil>"
	if c.SDPMid != nil {
		mid = *c.SDPMid
	}
	if c.SDPMLineIndex != nil {
		idx = fmt.Sprint(*c.SDPMLineIndex)
	}
	return p.f.record("AddCandidate %s %q mid=%s index=%s", endpoint, c.Candidate, mid, idx)
}

func (p *fakeParticipant) ForceDisconnect(target session.ConnectionID) error {
	return p.f.record("ForceDisconnect %s", target)
}

func (p *fakeParticipant) ForceUnpublish(sid session.StreamID) error {
	return p.f.record("ForceUnpublish %s", sid)
}
