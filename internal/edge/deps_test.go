package edge

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the edge at the top of the dependency graph and ignorant of what it carries
// (doc.go):
//   - no other github.com/parley/parley package: it receives handlers and a listener's consumer
//     (server.go wires api, signaling, turn and sfu to it), so it can be tested alone and never
//     grows a reason to know about sessions or media;
//   - no pion package: ICE-TCP leaves as a net.Listener, TURN as a func(net.Conn);
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
	const self = "github.com/parley/parley/internal/edge"
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != self {
		t.Fatalf("unexpected go list output:\n%s", out)
	}
	for _, d := range deps {
		switch {
		case d == self:
		case strings.HasPrefix(d, "github.com/parley/parley/"):
			t.Errorf("imports %s: edge must not depend on other Parley packages", d)
		case strings.HasPrefix(d, "github.com/pion/"):
			t.Errorf("imports %s: edge hands over connections, it does not speak ICE or TURN", d)
		case d == "testing" || strings.HasPrefix(d, "testing/"):
			t.Errorf("imports %s in production code", d)
		}
	}
}
