// Command parley is a self-hosted WebRTC videoconference server, wire-compatible with OpenVidu 2.32.
//
// Usage: parley [serve|version]. Configuration comes from the environment and a .env file in the
// working directory (DOTENV_PATH to use another).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	cmd := "serve"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	switch cmd {
	case "serve":
		if err := serve(); err != nil {
			fmt.Fprintln(os.Stderr, "parley:", err)
			os.Exit(1)
		}
	case "version", "--version", "-v":
		fmt.Printf("parley %s (OpenVidu 2.32.2 compatible)\n", version)
	case "help", "--help", "-h":
		fmt.Println("usage: parley [serve|version]\n  serve    run the server (default)\n  version  print the version")
	default:
		fmt.Fprintf(os.Stderr, "parley: unknown command %q (want serve or version)\n", cmd)
		os.Exit(2)
	}
}

func serve() error {
	dotenv := ".env"
	if p, ok := os.LookupEnv("DOTENV_PATH"); ok {
		dotenv = p
	}
	cfg, err := config.Load(dotenv, os.LookupEnv, os.Environ())
	if err != nil {
		return err
	}
	log := newLogger(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// newLogger writes readable text in dev mode and JSON in production, for log pipelines.
func newLogger(cfg *config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Dev {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
