package session

// Event delivery. State changes queue their events in the outbox while Manager.mu is held, in the
// order they happen; whoever releases the lock with events queued delivers them after unlocking.
// One caller delivers at a time, draining the queue until it is empty, so every sink and listener
// sees events in the order the model made them (per session and overall), and none runs under the
// model's lock: a listener may call back into the Manager (its events are queued behind the ones
// being delivered and delivered by the same loop) and a slow one costs REST and TURN nothing.
//
// The price: a call may return before its events reached every sink, when another goroutine was
// delivering at the time. Sinks and listeners queue and return, so that is brief. Shutdown alone
// waits for every event to be delivered (waitDelivered): the server flushes sockets next.

// listenerSet says which listeners get a delivery besides the sinks it is addressed to.
type listenerSet uint8

const (
	toListeners       listenerSet = iota // a new event of this node: every listener
	toSinksOnly                          // a notification, not a new event
	toMirrorListeners                    // another node's participant changed: the mirror listeners
)

// delivery is one queued event and the sinks it is addressed to.
type delivery struct {
	e   Event
	to  []Sink
	aud listenerSet
}

// queue adds e for the sinks of to and the listeners aud names. Caller holds m.mu.
func (m *Manager) queue(e Event, aud listenerSet, to []*Connection) {
	d := delivery{e: e, aud: aud}
	for _, c := range to {
		if c.sink != nil {
			d.to = append(d.to, c.sink)
		}
	}
	if len(d.to) == 0 && len(m.listenersOf(aud)) == 0 {
		return
	}
	m.outbox = append(m.outbox, d)
}

// listenersOf returns the listeners of aud. Caller holds m.mu.
func (m *Manager) listenersOf(aud listenerSet) []Listener {
	switch aud {
	case toListeners:
		return m.listeners
	case toMirrorListeners:
		return m.mirrorListeners
	}
	return nil
}

// unlock releases m.mu and delivers what is queued, unless another caller is delivering already
// (it will deliver ours too). Every m.mu.Lock in this package is paired with unlock.
func (m *Manager) unlock() {
	if m.delivering || len(m.outbox) == 0 {
		m.mu.Unlock()
		return
	}
	m.delivering = true
	done := false
	defer func() {
		if !done { // a sink or listener panicked: let the next caller deliver what is left
			m.mu.Lock()
			m.delivering = false
			m.delivered.Broadcast()
			m.mu.Unlock()
		}
	}()
	for len(m.outbox) > 0 {
		batch, listeners, mirrorListeners := m.outbox, m.listeners, m.mirrorListeners
		m.outbox = nil
		m.mu.Unlock()
		for _, d := range batch {
			for _, s := range d.to {
				s.Notify(d.e)
			}
			ls := listeners
			switch d.aud {
			case toSinksOnly:
				ls = nil
			case toMirrorListeners:
				ls = mirrorListeners
			}
			for _, l := range ls {
				l(d.e)
			}
		}
		m.mu.Lock()
	}
	m.delivering = false
	done = true
	m.delivered.Broadcast()
	m.mu.Unlock()
}

// waitDelivered returns once every event queued so far has been delivered. Never call it from a
// sink or listener: it would wait for itself.
func (m *Manager) waitDelivered() {
	m.mu.Lock()
	for m.delivering || len(m.outbox) > 0 {
		m.delivered.Wait()
	}
	m.mu.Unlock()
}
