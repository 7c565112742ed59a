package server

import (
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
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

// TestJoinsRefusedNearMemoryLimit: with the live heap at 90 % of the memory limit new joins are
// refused with the numbers; below it, or with no limit, they are not.
func TestJoinsRefusedNearMemoryLimit(t *testing.T) {
	const limit = 1000 << 20
	for _, tc := range []struct {
		name   string
		limit  int64
		live   uint64
		refuse bool
	}{
		{"well below", limit, limit / 2, false},
		{"just below", limit, limit*9/10 - 1, false},
		{"at 90 %", limit, limit * 9 / 10, true},
		{"over", limit, limit + 1, true},
		{"no limit", math.MaxInt64, 1 << 40, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := memoryGuard{limit: func() int64 { return tc.limit }, live: func() uint64 { return tc.live }}
			err := g.admit()
			if (err != nil) != tc.refuse {
				t.Fatalf("admit: %v, want refused %v", err, tc.refuse)
			}
			if err != nil && !strings.Contains(err.Error(), "1000 MiB") {
				t.Errorf("refusal %q does not say the limit", err)
			}
		})
	}
	if err := newMemoryGuard().admit(); err != nil {
		t.Errorf("this test process is refused: %v", err)
	}
}
