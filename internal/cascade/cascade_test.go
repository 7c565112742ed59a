package cascade

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
)

// bus records what a node sends.
type bus struct{ sent [][]byte }

func (b *bus) Send(_ context.Context, _ string, p []byte) error {
	b.sent = append(b.sent, p)
	return nil
}

// Only a node that knows the shared secret can talk to the links, each message once, to the node
// it names.
func TestSignallingIsAuthenticated(t *testing.T) {
	t.Parallel()
	var out bus
	a := New(Config{NodeID: "a", Secret: "shared"}, nil, &out, nil, nil)
	b := New(Config{NodeID: "b", Secret: "shared"}, nil, &bus{}, nil, nil)
	c := New(Config{NodeID: "c", Secret: "shared"}, nil, &bus{}, nil, nil)
	stranger := New(Config{NodeID: "a", Secret: "guessed"}, nil, &out, nil, nil)

	if err := a.send(context.Background(), "b", body{Kind: kindPull, Stream: "str_CAM_Abcd_con_X"}); err != nil {
		t.Fatal(err)
	}
	msg := out.sent[0]
	if err := b.Handle("a", msg); err != nil {
		t.Fatalf("a genuine message: %v", err)
	}
	if err := b.Handle("a", msg); !errors.Is(err, errForged) {
		t.Fatalf("a replayed message: %v", err)
	}
	if err := c.Handle("a", msg); !errors.Is(err, errForged) {
		t.Fatalf("a message for another node: %v", err)
	}

	// A changed body, a claimed sender that is not the bus's, a wrong secret: refused.
	if err := a.send(context.Background(), "b", body{Kind: kindPull, Stream: "str_CAM_Abcd_con_X"}); err != nil {
		t.Fatal(err)
	}
	var e envelope
	if err := json.Unmarshal(out.sent[1], &e); err != nil {
		t.Fatal(err)
	}
	e.Body = json.RawMessage(`{"kind":"pull","stream":"str_CAM_Other_con_Y"}`)
	tampered, _ := json.Marshal(e)
	if err := b.Handle("a", tampered); !errors.Is(err, errForged) {
		t.Fatalf("a tampered message: %v", err)
	}
	if err := b.Handle("c", out.sent[1]); !errors.Is(err, errForged) {
		t.Fatalf("a message whose sender is not the bus's: %v", err)
	}
	if err := stranger.send(context.Background(), "b", body{Kind: kindPull, Stream: "s"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Handle("a", out.sent[2]); !errors.Is(err, errForged) {
		t.Fatalf("a message signed without the secret: %v", err)
	}
	if len(b.inbox) != 1 {
		t.Fatalf("%d messages queued, want the one genuine", len(b.inbox))
	}
}
