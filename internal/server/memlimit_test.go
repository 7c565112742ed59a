package server

import (
	"log/slog"
	"runtime/debug"
	"testing"
)

// TestSetMemoryLimit: PARLEY_MEMORY_LIMIT sets the runtime's limit, and without it the limit
// comes from the machine; GOMEMLIMIT, the operator's own, is left alone.
func TestSetMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	log := slog.New(slog.DiscardHandler)
	if got := SetMemoryLimit(512, log); got != 512<<20 || debug.SetMemoryLimit(-1) != 512<<20 {
		t.Errorf("PARLEY_MEMORY_LIMIT=512: limit %d, runtime %d", got, debug.SetMemoryLimit(-1))
	}
	if got := SetMemoryLimit(0, log); got <= 0 || debug.SetMemoryLimit(-1) != got {
		t.Errorf("from the machine: limit %d, runtime %d", got, debug.SetMemoryLimit(-1))
	}
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetMemoryLimit(123 << 20)
	if got := SetMemoryLimit(512, log); got != 123<<20 {
		t.Errorf("with GOMEMLIMIT set: %d, want the runtime's own", got)
	}
}
