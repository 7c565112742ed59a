package turn

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps enforces the package's place at the bottom of the dependency graph (see doc.go):
//   - no other github.com/parley/parley/internal package: turn reports upward only through
//     Liveness and Stats, so session, sfu, api, signaling and edge can all depend on it;
//   - no "testing" in production code: it would register test flags in the server binary.
func TestDeps(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const self = "github.com/parley/parley/internal/turn"
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != self {
		t.Fatalf("unexpected go list output:\n%s", out)
	}
	for _, d := range deps {
		switch {
		case d == self:
		case strings.HasPrefix(d, "github.com/parley/parley/"):
			t.Errorf("imports %s: turn must not depend on other Parley packages", d)
		case d == "testing" || strings.HasPrefix(d, "testing/"):
			t.Errorf("imports %s in production code", d)
		}
	}
}
