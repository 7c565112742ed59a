package api_test

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDeps keeps the REST API a thin layer over the session model (style §2, package doc):
//   - it imports no signaling, edge, server or app: those sit above it or beside it, and the API
//     must stay testable with a bare session.Manager;
//   - it imports no sfu, turn or pion directly: media is the model's business. (session itself
//     still reaches sfu for shared types, so sfu and pion appear among the indirect dependencies;
//     only the direct import is refused here);
//   - no "testing" in production code.
func TestDeps(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var p struct {
		ImportPath    string
		Imports, Deps []string
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/parley/parley/internal/"
	if p.ImportPath != mod+"api" || len(p.Deps) == 0 {
		t.Fatalf("unexpected go list output:\n%s", out)
	}
	for _, d := range p.Deps {
		name, ours := strings.CutPrefix(d, mod)
		switch {
		case ours && slices.Contains([]string{"signaling", "edge", "server", "app", "turn"}, strings.Split(name, "/")[0]):
			t.Errorf("depends on %s: the REST API talks to the session model only", d)
		case d == "testing" || strings.HasPrefix(d, "testing/"):
			t.Errorf("depends on %s in production code", d)
		}
	}
	for _, d := range p.Imports {
		name, ours := strings.CutPrefix(d, mod)
		switch {
		case ours && !slices.Contains([]string{"session", "config"}, name):
			t.Errorf("imports %s: only session (the model) and config (the ICE server rules) are allowed", d)
		case strings.HasPrefix(d, "github.com/pion/"):
			t.Errorf("imports %s: the REST API never touches media", d)
		}
	}
}
