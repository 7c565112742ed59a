package recording

// Following the session model: streams join and leave running recordings, sessions end them, and
// ALWAYS sessions start and autostop theirs.

import (
	"context"
	"time"

	"github.com/parley/parley/internal/session"
)

// Listen takes the session model's events (session.Listener), and in a cluster its mirrors'
// (session.Manager.ListenMirrors: other nodes' streams join and leave this node's recordings too).
// The model delivers events to its listeners one at a time, so it only queues: the queue is
// unbounded but grows only by session-level events, never per packet.
func (r *Recorder) Listen(e session.Event) {
	switch e.Kind {
	case session.StreamPublished, session.WebRTCConnectionDestroyed, session.ParticipantLeft, session.SessionDestroyed:
	case session.StreamUnpublished: // another node's stream ended (this node's end with WebRTCConnectionDestroyed)
		if e.Node == "" {
			return
		}
	default:
		return
	}
	r.enqueue(func() { r.handle(e) })
}

func (r *Recorder) enqueue(f func()) {
	r.qmu.Lock()
	r.queue = append(r.queue, f)
	r.qmu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run handles events until ctx ends, then stops every recording still going (reason
// openviduServerStopped) and waits for their files to be final.
func (r *Recorder) Run(ctx context.Context) error {
	for {
		r.drain()
		select {
		case <-r.wake:
		case <-ctx.Done():
			r.drain()
			r.mu.Lock()
			r.closed = true
			ids := make([]string, 0, len(r.active))
			for _, x := range r.active {
				ids = append(ids, x.info.ID)
			}
			r.mu.Unlock()
			for _, id := range ids {
				_, _ = r.stop(id, "openviduServerStopped", false)
			}
			done := make(chan struct{})
			go func() { r.finals.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(shutdownWait):
				r.log.Warn("shutdown: recordings still being finalised are cancelled", "waited", shutdownWait)
				r.cancelFinal()
				<-done
			}
			r.cancelFinal()
			return nil
		}
	}
}

func (r *Recorder) drain() {
	for {
		r.qmu.Lock()
		q := r.queue
		r.queue = nil
		r.qmu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, f := range q {
			f()
		}
	}
}

func (r *Recorder) handle(e session.Event) {
	switch e.Kind {
	case session.StreamPublished:
		r.mu.Lock()
		x := r.active[e.Session]
		if x != nil {
			if t := r.autostop[e.Session]; t != nil {
				t.Stop()
				delete(r.autostop, e.Session)
			}
			if rs, ok := r.s.RecordableStream(e.Session, e.Stream); ok {
				r.addStream(x, rs, nil)
			}
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		if e.Node != "" {
			return // the publisher's own node starts an ALWAYS recording
		}
		t, err := r.s.RecordingTarget(e.Session)
		if err != nil || t.Props.RecordingMode != "ALWAYS" || t.Recording != "" {
			return
		}
		if _, err := r.Start(e.Session, t.Props.DefaultRecording); err != nil {
			r.log.Warn("recordingMode ALWAYS: cannot start recording", "session", e.Session, "error", err)
		}
	case session.WebRTCConnectionDestroyed, session.StreamUnpublished:
		if e.Subscriber != "" {
			return
		}
		r.mu.Lock()
		x := r.active[e.Session]
		r.mu.Unlock()
		if x == nil {
			return
		}
		x.mu.Lock()
		if se := x.streams[e.Stream]; se != nil {
			x.closeStream(se)
		}
		x.mu.Unlock()
	case session.ParticipantLeft:
		r.mu.Lock()
		x := r.active[e.Session]
		if x != nil {
			if t, err := r.s.RecordingTarget(e.Session); err == nil && t.Participants == 0 {
				r.armAutostop(e.Session, x.info.ID)
			}
		}
		r.mu.Unlock()
	case session.SessionDestroyed:
		r.mu.Lock()
		x := r.active[e.Session]
		r.mu.Unlock()
		if x != nil && x.info.SessionCreatedAt.Equal(e.SessionCreatedAt) {
			_, _ = r.stop(x.info.ID, e.Reason, false)
		}
	}
}

// armAutostop starts the countdown of OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT. Caller holds r.mu.
func (r *Recorder) armAutostop(sid session.SessionID, id string) {
	if r.autostop[sid] != nil {
		return
	}
	fire := func() { r.enqueue(func() { r.autostopNow(sid, id) }) }
	r.autostop[sid] = time.AfterFunc(r.cfg.AutostopTimeout, fire)
}

func (r *Recorder) autostopNow(sid session.SessionID, id string) {
	r.mu.Lock()
	x := r.active[sid]
	armed := r.autostop[sid] != nil
	r.mu.Unlock()
	if x == nil || x.info.ID != id || !armed {
		return
	}
	reason := "automaticStop"
	if r.cfg.AutostopTimeout == 0 {
		reason = "lastParticipantLeft"
	}
	if _, err := r.stop(id, reason, false); err != nil {
		return
	}
	r.s.CloseIfEmpty(sid, reason)
}
