package server

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/parley/parley/internal/config"
)

// TestShutdownStopsAcceptingFirst: when Run's context ends, the port stops taking connections
// before participants are told (design.md: stop accepting, tell participants, drain recordings,
// close), so nobody joins a server that is evicting everyone; the participant is still told over
// its open socket, and Run returns nil.
func TestShutdownStopsAcceptingFirst(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HTTPS_PORT": "0", "PARLEY_MEDIA_PORT": "0", "PARLEY_MEDIA_LISTEN_IPS": "127.0.0.1", "PARLEY_PING_TIMEOUT": "60"}
	cfg, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	base := "http://" + s.Addr().String()
	if st, _ := rest(t, "POST", base+"/openvidu/api/sessions", map[string]any{"customSessionId": "closing"}); st != 200 {
		t.Fatal(st)
	}
	c, _ := join(t, base, "closing", "PUBLISHER")
	cancel()
	c.waitNote("participantEvicted", func(p map[string]any) bool { return p["reason"] == "openviduServerStopped" })
	if conn, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		conn.Close()
		t.Error("the port still accepted a connection after participants were told the server stopped")
	}
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
