// Package archtest checks that dependencies between Parley's packages flow one way:
// edge → api/signaling → session → sfu/turn (design.md). A package reaching back up makes the
// layers impossible to test and reason about alone.
package archtest

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/parley/parley/internal/"

// forbidden lists, per package, the packages it must not import directly, and why.
var forbidden = map[string]struct {
	deny []string
	why  string
}{
	"config":    {[]string{"api", "signaling", "session", "sfu", "turn", "edge", "server"}, "config imports nothing of ours"},
	"edge":      {[]string{"api", "signaling", "session", "sfu", "turn", "server"}, "edge knows nothing of sessions or media"},
	"api":       {[]string{"signaling", "edge", "sfu", "turn", "server"}, "api talks to the session model only"},
	"signaling": {[]string{"api", "edge", "sfu", "turn", "server"}, "signaling talks to the session model only (sfu types via session)"},
	"session":   {[]string{"api", "signaling", "edge", "server"}, "the model never reaches back up"},
	"sfu":       {[]string{"config", "api", "signaling", "session", "edge", "turn", "server"}, "sfu reports up through funcs only"},
	"ports":     {[]string{"api", "signaling", "session", "edge", "sfu", "turn", "server"}, "ports reads the configuration only"},
	"turn":      {[]string{"config", "api", "signaling", "session", "edge", "sfu", "server"}, "turn reports up through Liveness only"},
}

func TestDependenciesFlowOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "github.com/parley/parley/internal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, mod)
		rule, ok := forbidden[name]
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			if imp == "testing" {
				t.Errorf("%s imports testing in production code", name)
			}
			if dep, ours := strings.CutPrefix(imp, mod); ours && slices.Contains(rule.deny, dep) {
				t.Errorf("%s imports %s: %s", name, dep, rule.why)
			}
		}
	}
}
