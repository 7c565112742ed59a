// Command parley is a self-hosted WebRTC videoconference server, wire-compatible with OpenVidu 2.32.
//
// Usage: parley [serve|version]. Configuration comes from the environment and a .env file in the
// working directory (DOTENV_PATH to use another).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/parley/parley/internal/config"
	portsreport "github.com/parley/parley/internal/ports"
	"github.com/parley/parley/internal/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// servingAddr is the bound TCP address once serve is ready (read by tests).
var servingAddr atomic.Value

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func main() {
	if err := run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		var usage *usageError
		if errors.As(err, &usage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(args []string) error {
	cmd := "serve"
	if len(args) > 1 {
		cmd = args[1]
	}
	switch cmd {
	case "serve":
		return serve()
	case "ports":
		return ports(args[2:], os.Stdout)
	case "version", "--version", "-v":
		fmt.Printf("parley %s (OpenVidu 2.32.2 compatible)\n", version)
		return nil
	case "help", "--help", "-h":
		fmt.Println("usage: parley [serve|ports|version]\n  serve    run the server (default)\n  ports    print what listens where, and why (--format text|json|mermaid)\n  version  print the version")
		return nil
	default:
		return &usageError{fmt.Sprintf("unknown command %q (want serve, ports or version)", cmd)}
	}
}

// loadConfig reads the effective configuration: defaults, .env, environment.
func loadConfig() (*config.Config, error) {
	dotenv := ".env"
	if p, ok := os.LookupEnv("DOTENV_PATH"); ok {
		dotenv = p
	}
	return config.Load(dotenv, os.LookupEnv, os.Environ())
}

// ports prints the port matrix of the effective configuration.
func ports(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("ports", flag.ContinueOnError)
	format := fs.String("format", "text", "text, json or mermaid")
	if err := fs.Parse(args); err != nil {
		return &usageError{err.Error()}
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	r := portsreport.Build(cfg)
	switch *format {
	case "text":
		if err := r.WriteText(w); err != nil {
			return err
		}
		_, _ = fmt.Fprintln(w)
		return r.WriteMermaid(w)
	case "json":
		return r.WriteJSON(w)
	case "mermaid":
		return r.WriteMermaid(w)
	}
	return &usageError{fmt.Sprintf("unknown --format %q (want text, json or mermaid)", *format)}
}

func serve() error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	log := newLogger(cfg)
	server.SetMemoryLimit(cfg.MemoryLimitMiB, log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	servingAddr.Store(s.Addr().String())
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
