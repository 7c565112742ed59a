package app

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the app a client of the session model (doc.go): it must not reach into the
// protocol layers beside it (api, signaling), the edge, or the media and TURN packages under the
// model, and must not import "testing" in production code.
func TestDeps(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/parley/parley/"
	for _, d := range strings.Fields(string(out)) {
		switch {
		case d == "testing" || strings.HasPrefix(d, "testing/"):
			t.Errorf("imports %s in production code", d)
		case strings.HasPrefix(d, mod) && d != mod+"internal/session" && d != mod+"internal/config":
			t.Errorf("imports %s: the app may use only the session model and its own configuration", d)
		}
	}
}
