// Package redistest starts a real redis-server for tests: Debian's, which
// scripts/install-test-deps.sh installs, on a free loopback port in a temporary directory, with a
// password, no persistence, and nothing kept when it stops. It does not import testing, so test
// helpers of any package may use it.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrAbsent is returned when redis-server is not installed; tests skip with its message.
var ErrAbsent = errors.New("redis-server is not installed (scripts/install-test-deps.sh installs Debian's)")

// Server is a running redis-server.
type Server struct {
	// URL is redis://:password@127.0.0.1:port/db.
	URL    string
	cmd    *exec.Cmd
	exited chan error
	dir    string
	args   []string
}

// Start runs redis-server until Stop.
func Start() (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrAbsent
	}
	dir, err := os.MkdirTemp("", "parley-redis-")
	if err != nil {
		return nil, err
	}
	var last error
	// The port is picked free and may be taken before redis binds it: try again a few times.
	for range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		args := []string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", "no", "--requirepass", "test-pass", "--logfile", filepath.Join(dir, "redis.log")}
		cmd := exec.Command(args[0], args[1:]...)
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		s := &Server{URL: fmt.Sprintf("redis://:test-pass@127.0.0.1:%d/3", port), cmd: cmd, exited: make(chan error, 1), dir: dir, args: args}
		go func() { s.exited <- cmd.Wait() }()
		if last = s.waitReady(); last == nil {
			return s, nil
		}
		_ = cmd.Process.Kill()
		<-s.exited
	}
	log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
	_ = os.RemoveAll(dir)
	return nil, fmt.Errorf("redis-server did not start: %v\n%s", last, log)
}

// waitReady pings until redis answers, it exits, or 10 s pass.
func (s *Server) waitReady() error {
	opts, err := redis.ParseURL(s.URL)
	if err != nil {
		return err
	}
	c := redis.NewClient(opts)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	interval := time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case err := <-s.exited:
			s.exited <- err
			return fmt.Errorf("redis-server exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval) // a poll interval, not synchronisation
		interval = min(2*interval, 20*time.Millisecond)
	}
}

// Kill kills redis-server, as a crash would; Restart brings it back.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	err := <-s.exited
	s.exited <- err // Stop and Restart wait for it too
}

// Restart starts redis-server again on the same port, empty (it keeps nothing), after Kill.
func (s *Server) Restart() error {
	<-s.exited
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	if err := s.cmd.Start(); err != nil {
		s.exited <- err
		return err
	}
	go func(cmd *exec.Cmd) { s.exited <- cmd.Wait() }(s.cmd)
	return s.waitReady()
}

// Stop kills redis-server and removes its directory.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
	}
	<-s.exited
	_ = os.RemoveAll(s.dir)
}

// Sentinel is a running Redis Sentinel watching a Server as master "mymaster".
type Sentinel struct {
	// URL is PARLEY_REDIS_URL through the Sentinel: redis://127.0.0.1:port/db?master_name=…
	URL  string
	Addr string
	srv  *Server
}

// StartSentinel runs a Sentinel (redis-server --sentinel) monitoring master until Stop.
func StartSentinel(master *Server) (*Sentinel, error) {
	mu, err := url.Parse(master.URL)
	if err != nil {
		return nil, err
	}
	pass, _ := mu.User.Password()
	dir, err := os.MkdirTemp("", "parley-sentinel-")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\nsentinel monitor mymaster %s %s 1\nsentinel auth-pass mymaster %s\n",
		port, dir, filepath.Join(dir, "sentinel.log"), mu.Hostname(), mu.Port(), pass)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrAbsent
	}
	args := []string{bin, conf, "--sentinel"}
	cmd := exec.Command(args[0], args[1:]...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &Server{URL: "redis://" + addr, cmd: cmd, exited: make(chan error, 1), dir: dir, args: args}
	go func() { s.exited <- cmd.Wait() }()
	if err := s.waitReady(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("redis sentinel did not start: %v", err)
	}
	return &Sentinel{URL: fmt.Sprintf("redis://%s%s?master_name=mymaster&password=%s", addr, mu.Path, url.QueryEscape(pass)), Addr: addr, srv: s}, nil
}

// Stop ends the Sentinel and removes its directory.
func (s *Sentinel) Stop() { s.srv.Stop() }
