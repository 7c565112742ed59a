package main

import (
	"errors"
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
