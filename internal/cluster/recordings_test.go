package cluster

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/poll"
	"github.com/parley/parley/internal/session"
)

// slowRecorder is a node's recorder whose Stop waits until the test lets it answer.
type slowRecorder struct {
	LocalRecorder // nil: only what the test calls is implemented
	stopping      chan string
	release       chan struct{}
}

func (s *slowRecorder) Get(id string) (session.RecordingInfo, error) {
	return session.RecordingInfo{}, errNoRecording(id)
}

func (s *slowRecorder) Stop(id string) (session.RecordingInfo, error) {
	s.stopping <- id
	<-s.release
	return session.RecordingInfo{ID: id, Status: "stopped"}, nil
}

// A burst of REST stops of recordings another node runs: this node waits on at most maxRecAsks of
// them (each holds a pooled Redis connection in BLPOP); the next is answered 503 at once, and the
// node's other Redis use goes on meanwhile. Once the other node answers, they all succeed.
func TestRecordingAsksAreBounded(t *testing.T) {
	nodes := newNodes(t, 2, nil)
	a, b := nodes[0], nodes[1]
	slow := &slowRecorder{stopping: make(chan string, maxRecAsks), release: make(chan struct{})}
	ra := a.n.Recordings(&slowRecorder{})
	rb := b.n.Recordings(slow)
	for i := range maxRecAsks + 1 {
		rb.writeNow(session.RecordingInfo{ID: "s~" + string(rune('a'+i)), Status: "started"})
	}

	var wg sync.WaitGroup
	errs := make(chan error, maxRecAsks)
	for i := range maxRecAsks {
		wg.Go(func() {
			_, err := ra.Stop("s~" + string(rune('a'+i)))
			errs <- err
		})
	}
	t.Cleanup(wg.Wait)
	released := false
	release := func() {
		if !released {
			released = true
			close(slow.release)
		}
	}
	t.Cleanup(release)
	for range maxRecAsks { // every one of them is now waiting for node b's answer
		select {
		case <-slow.stopping:
		case <-time.After(within):
			t.Fatal("node b never got the stop requests")
		}
	}

	_, err := ra.Stop("s~" + string(rune('a'+maxRecAsks)))
	if got := session.HTTPStatus(err); got != http.StatusServiceUnavailable {
		t.Fatalf("a stop past the bound: %v (HTTP %d), want 503 at once", err, got)
	}
	// The pool is not exhausted: this node's other Redis calls are answered.
	if _, err := ra.Get("s~a"); err != nil {
		t.Fatalf("reading the shared record while the asks wait: %v", err)
	}
	if _, err := a.n.Nodes(t.Context()); err != nil {
		t.Fatalf("listing the nodes while the asks wait: %v", err)
	}

	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a waiting stop failed once node b answered: %v", err)
		}
	}
	// The slots are free again.
	poll.Until(t, within, "a stop within the bound after the burst", func() bool {
		_, err := ra.Stop("s~a")
		return err == nil
	})
}
