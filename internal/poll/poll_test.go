package poll

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

type fakeT struct{ failed string }

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	panic(f) // as t.Fatalf ends the test goroutine
}

func run(within time.Duration, cond func() bool) (failed string) {
	f := &fakeT{}
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
		failed = f.failed
	}()
	Until(f, within, "the thing", cond)
	return ""
}

func TestUntil(t *testing.T) {
	t.Parallel()
	n := 0
	if msg := run(10*time.Second, func() bool { n++; return n == 3 }); msg != "" || n != 3 {
		t.Errorf("condition true on the third call: failed %q after %d calls", msg, n)
	}
	if msg := run(0, func() bool { return false }); !strings.Contains(msg, "still waiting for the thing") {
		t.Errorf("never true: %q, want it to name what it waited for", msg)
	}
}
