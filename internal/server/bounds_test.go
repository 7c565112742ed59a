package server

import (
	"strings"
	"testing"
)

// TestLargeClientMetadata: a participant joining with 40 K characters of client metadata (apps
// put avatars there; openvidu-server accepted up to its 50 K-character frame) joins, and the next
// participant and REST see that metadata whole.
func TestLargeClientMetadata(t *testing.T) {
	_, base := startServer(t)
	if st, _ := rest(t, "POST", base+"/openvidu/api/sessions", map[string]any{"customSessionId": "meta"}); st != 200 {
		t.Fatal(st)
	}
	meta := `{"clientData":"` + strings.Repeat("m", 40_000) + `"}`
	_, c := rest(t, "POST", base+"/openvidu/api/sessions/meta/connection", map[string]any{"role": "PUBLISHER"})
	big := dial(t, base)
	r := big.result("joinRoom", map[string]any{"token": c["token"], "session": "meta", "platform": "test", "metadata": meta})
	if r["metadata"] != meta {
		t.Fatalf("joinRoom answered metadata of %d characters, want %d", len(r["metadata"].(string)), len(meta))
	}
	_, c2 := rest(t, "POST", base+"/openvidu/api/sessions/meta/connection", map[string]any{"role": "PUBLISHER"})
	next := dial(t, base)
	r2 := next.result("joinRoom", map[string]any{"token": c2["token"], "session": "meta", "metadata": ""})
	others, _ := r2["value"].([]any)
	if len(others) != 1 || others[0].(map[string]any)["metadata"] != meta {
		t.Fatalf("the next participant was told %d participants, want the first with its metadata", len(others))
	}
	_, conn := rest(t, "GET", base+"/openvidu/api/sessions/meta/connection/"+r["id"].(string), nil)
	if conn["clientData"] != meta {
		t.Errorf("REST clientData of %d characters, want %d", len(conn["clientData"].(string)), len(meta))
	}
}
