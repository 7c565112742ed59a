package server

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/parley/parley/internal/config"
)

// TestNewLeavesTheConfigAlone: the configuration config.Load validated is never changed, even
// when the kernel picks the ports (HTTPS_PORT=0); the server runs on a copy with the port bound.
func TestNewLeavesTheConfigAlone(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HTTPS_PORT": "0", "PARLEY_MEDIA_PORT": "0", "PARLEY_MEDIA_LISTEN_IPS": "127.0.0.1"}
	cfg, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := *cfg
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	port, media := s.Addr().(*net.TCPAddr).Port, s.MediaAddrs()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if cfg.HTTPSPort != before.HTTPSPort || cfg.Media.Port != before.Media.Port {
		t.Errorf("New changed the validated config: HTTPS_PORT %d → %d, media port %d → %d",
			before.HTTPSPort, cfg.HTTPSPort, before.Media.Port, cfg.Media.Port)
	}
	if port == 0 || len(media) != 1 || media[0].Port() != uint16(port) {
		t.Errorf("bound TCP %d and media %v: the kernel's port must be used by both", port, media)
	}
}
