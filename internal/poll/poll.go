// Package poll is the tests' one way to wait for a condition: check it until a deadline, then fail
// saying what never happened. Sleeping a fixed time instead makes tests slow where they pass and
// flaky where the machine is busy.
//
// It takes a small interface rather than *testing.T so that no production package links testing
// (internal/archtest), and it imports nothing of ours.
package poll

import (
	"runtime"
	"time"
)

// T is the part of testing.TB that Until uses.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Until calls cond until it returns true, or fails t after within, naming what it waited for.
// The interval grows from a millisecond to 20 ms: quick conditions are seen at once, slow ones
// cost little CPU on a shared machine.
func Until(t T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	interval := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v, still waiting for %s", within, what)
		}
		runtime.Gosched()
		time.Sleep(interval) // a poll interval, not synchronisation
		interval = min(2*interval, 20*time.Millisecond)
	}
}
