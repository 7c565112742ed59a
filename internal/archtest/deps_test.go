// Package archtest checks, in one table, that dependencies between Parley's packages flow one way:
// edge → api/signaling → session → sfu/turn (design.md), with config at the bottom. A package
// reaching back up makes the layers impossible to test and reason about alone.
package archtest

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/parley/parley/internal/"

// rule says what a package must not depend on.
type rule struct {
	// only, when set, is the complete list of our packages it may import directly.
	only []string
	// denyDirect are our packages it must not import directly.
	denyDirect []string
	// denyDeps are our packages that must not appear anywhere among its dependencies.
	denyDeps []string
	// noPion forbids pion anywhere among its dependencies (direct ones only with pionDirect).
	noPion, pionDirect bool
	why                string
}

var rules = map[string]rule{
	"config":    {only: []string{}, noPion: true, why: "config is read by everything and imports nothing of ours"},
	"ports":     {only: []string{"config", "mediaaddr"}, noPion: true, why: "ports reads the configuration and the media addresses only"},
	"clientip":  {only: []string{}, noPion: true, why: "who is behind a request is decided from the request and the trusted list alone"},
	"poll":      {only: []string{}, noPion: true, why: "the tests' wait-for-a-condition helper; it must not link testing into anything"},
	"mediaaddr": {only: []string{}, noPion: true, why: "the choice of media and announced addresses reads the kernel and DNS only, so the SFU and `parley ports` share it"},
	"iceconfig": {only: []string{"session", "config"}, noPion: true, why: "the ICE servers handed to participants are policy over the configuration; TURN is reached through an interface"},
	"edge":      {only: []string{}, noPion: true, why: "edge knows nothing of sessions or media: handlers in, net.Conns out"},
	"turn":      {only: []string{"pionlog", "sendq"}, why: "turn reports up through the Liveness interface only"},
	"sfu":       {only: []string{"pionlog", "sendq", "mediaaddr"}, why: "sfu reports up through the funcs its callers pass in"},
	"ipcam":     {only: []string{}, noPion: true, why: "ipcam runs ffprobe and ffmpeg for a camera URI and sends to addresses it is given; the SFU and the session model are the wiring's business"},
	"sendq":     {only: []string{}, noPion: true, why: "the send queue writes frames to a net.Conn and knows nothing of what they carry"},
	"pionlog":   {only: []string{}, why: "pionlog adapts pion's logger to slog and knows nothing of Parley"},
	"session": {only: []string{"config"}, noPion: true,
		why: "the model drives media through interfaces of its own, which the wiring adapts the SFU to; it never reaches back up"},
	"api": {only: []string{"session", "config"}, denyDeps: []string{"signaling", "edge", "server", "app", "turn", "sfu"}, noPion: true,
		why: "the REST layer talks to the session model only and never reaches pion, even through it"},
	"signaling": {only: []string{"session"}, denyDeps: []string{"api", "edge", "server", "app", "turn", "sfu"}, noPion: true,
		why: "signaling talks to the session model only and never reaches pion, even through it"},
	"whip": {only: []string{"session"}, denyDeps: []string{"api", "signaling", "edge", "server", "app", "turn", "sfu"}, noPion: true,
		why: "WHIP translates HTTP into the session model, like signaling, and never reaches pion, even through it"},
	"app": {only: []string{"session", "config"}, denyDeps: []string{"api", "signaling", "edge", "server", "turn"}, noPion: true,
		why: "the built-in app uses the session model like any application backend"},
	// Event subscribers (design.md): they listen to the session model and report outward.
	"eventjson": {only: []string{"session"}, denyDeps: []string{"api", "signaling", "edge", "server", "app", "turn"}, noPion: true,
		why: "the OpenVidu event codec knows the session Event type and nothing else"},
	"webhook": {only: []string{"session", "eventjson"}, denyDeps: []string{"api", "signaling", "edge", "server", "app", "turn"}, noPion: true,
		why: "webhooks listen to session events; they never reach back into the layers that emit them"},
	"cdr": {only: []string{"session", "eventjson"}, denyDeps: []string{"api", "signaling", "edge", "server", "app", "turn"}, noPion: true,
		why: "the call detail record listens to session events only"},
	"recording": {only: []string{"session", "sfu"}, denyDeps: []string{"api", "signaling", "edge", "server", "app", "turn"},
		why: "recording listens to session events and taps the SFU's forwarding; it never reaches back up"},
	"cluster": {only: []string{"session"}, denyDeps: []string{"api", "signaling", "edge", "server", "app", "turn", "sfu"}, noPion: true,
		why: "cluster sits beside the session model, behind its interfaces; the layers above call it through theirs and media never goes through it"},
	"cascade": {only: []string{"sfu"}, denyDeps: []string{"session", "cluster", "api", "signaling", "edge", "server", "app", "turn"}, noPion: true, pionDirect: true,
		why: "the inter-node media links drive the SFU's relay ends; the session model and the message bus reach them through the funcs the wiring passes in"},
	"cluster/redistest": {only: []string{}, noPion: true,
		why: "the tests' redis-server starter runs a process and knows nothing of Parley"},
	"recording/compose": {only: []string{}, noPion: true,
		why: "the ffmpeg mixer takes file names and knows nothing of sessions or media"},
	// Tools: they measure a server from outside, through its public protocol only.
	"loadgen": {only: []string{}, why: "the load generator speaks only the public wire protocol, so it measures any OpenVidu 2 server the same way"},
	"metrics": {only: []string{"session", "sfu", "sendq", "turn", "webhook", "cdr", "recording", "edge"}, denyDeps: []string{"api", "signaling", "server", "app"}, noPion: true, pionDirect: true,
		why: "metrics listen to session events and read the Stats of the layers below, of recording and of the edge (a leaf); signaling reports errors through a func"},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func TestDependenciesFlowOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "github.com/parley/parley/internal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := map[string]bool{}
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, mod)
		seen[name] = true
		// No production code links the testing package, whatever the package.
		for _, d := range append(p.Imports, p.Deps...) {
			if d == "testing" || strings.HasPrefix(d, "testing/") {
				t.Errorf("%s depends on %s in production code", name, d)
			}
		}
		r, ok := rules[name]
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, mod)
			switch {
			case ours && r.only != nil && !slices.Contains(r.only, dep):
				t.Errorf("%s imports %s (allowed: %v): %s", name, dep, r.only, r.why)
			case ours && slices.Contains(r.denyDirect, dep):
				t.Errorf("%s imports %s: %s", name, dep, r.why)
			case r.pionDirect && strings.HasPrefix(imp, "github.com/pion/"):
				t.Errorf("%s imports %s directly: %s", name, imp, r.why)
			}
		}
		for _, d := range p.Deps {
			dep, ours := strings.CutPrefix(d, mod)
			switch {
			case ours && slices.Contains(r.denyDeps, strings.Split(dep, "/")[0]):
				t.Errorf("%s depends on %s: %s", name, dep, r.why)
			case r.noPion && !r.pionDirect && strings.HasPrefix(d, "github.com/pion/"):
				t.Errorf("%s depends on %s: %s", name, d, r.why)
			}
		}
	}
	for name := range rules {
		if !seen[name] {
			t.Errorf("rule for %s, which no longer exists: update the table", name)
		}
	}
}
