package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeStopsCleanlyOnSIGTERM: SIGTERM makes serve return nil, which main turns into exit 0.
func TestServeStopsCleanlyOnSIGTERM(t *testing.T) {
	t.Setenv("HTTPS_PORT", "0")
	t.Setenv("PARLEY_MEDIA_PORT", "0")
	t.Setenv("DOTENV_PATH", "")
	t.Setenv("PARLEY_LOG_LEVEL", "warn")
	done := make(chan error, 1)
	go func() { done <- serve() }()
	// serve binds before it serves; SIGTERM before the handler is installed would kill the test
	// binary, so wait until it answers.
	waitServing(t)
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return within 10 s of SIGTERM")
	}
}

func waitServing(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if addr := servingAddr.Load(); addr != nil {
			resp, err := http.Get("http://" + addr.(string) + "/openvidu/api/config/openvidu-publicurl")
			if err == nil {
				resp.Body.Close()
				return
			}
		}
		time.Sleep(20 * time.Millisecond) // polling readiness, not synchronising on time
	}
	t.Fatal("server never became ready")
}

func TestUnknownCommand(t *testing.T) {
	if err := run([]string{"parley", "frobnicate"}); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("want unknown command error, got %v", err)
	}
	var usage *usageError
	if err := run([]string{"parley", "frobnicate"}); !errors.As(err, &usage) {
		t.Fatalf("want a usage error, got %T", err)
	}
}

func TestPortsReport(t *testing.T) {
	t.Setenv("DOTENV_PATH", "")
	t.Run("dev", func(t *testing.T) {
		var b strings.Builder
		if err := ports(nil, &b); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, want := range []string{"4443  TCP", "4443  UDP", "127.0.0.1 only", "HTTP Basic", "```mermaid", "TURN"} {
			if !strings.Contains(out, want) {
				t.Errorf("dev report lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("production json", func(t *testing.T) {
		t.Setenv("DOMAIN_OR_PUBLIC_IP", "meet.example.com")
		t.Setenv("OPENVIDU_SECRET", "a-long-production-secret")
		t.Setenv("CERTIFICATE_TYPE", "letsencrypt")
		t.Setenv("LETSENCRYPT_EMAIL", "ops@example.com")
		var b strings.Builder
		if err := ports([]string{"--format", "json"}, &b); err != nil {
			t.Fatal(err)
		}
		var r struct {
			Mode  string
			Ports []struct{ Port, Protocol, Direction, Purpose string }
		}
		if err := json.Unmarshal([]byte(b.String()), &r); err != nil {
			t.Fatal(err)
		}
		has := func(port, proto, dir string) bool {
			for _, p := range r.Ports {
				if p.Port == port && p.Protocol == proto && p.Direction == dir {
					return true
				}
			}
			return false
		}
		if r.Mode != "production" || !has("443", "TCP", "inbound") || !has("443", "UDP", "inbound") || !has("80", "TCP", "inbound") || !has("443", "TCP", "outbound") {
			t.Fatalf("production matrix: %+v", r)
		}
	})
	t.Run("bad format", func(t *testing.T) {
		var usage *usageError
		if err := ports([]string{"--format", "xml"}, io.Discard); !errors.As(err, &usage) {
			t.Fatalf("want a usage error, got %v", err)
		}
	})
}
