package config

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps config at the bottom of the graph (style §2): it imports no package of ours, so
// every other package can depend on its sub-structs without cycles, and `parley ports` and the
// config check can read the effective configuration without building servers. No pion either
// (defaults must not be borrowed from the SFU), and no "testing" in production code.
func TestDeps(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const self = "github.com/parley/parley/internal/config"
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != self {
		t.Fatalf("unexpected go list output:\n%s", out)
	}
	for _, d := range deps {
		switch {
		case d == self:
		case strings.HasPrefix(d, "github.com/parley/parley/"):
			t.Errorf("imports %s: config imports nothing of ours", d)
		case strings.HasPrefix(d, "github.com/pion/"):
			t.Errorf("imports %s: config must not borrow from the media stack", d)
		case d == "testing" || strings.HasPrefix(d, "testing/"):
			t.Errorf("imports %s in production code", d)
		}
	}
}
