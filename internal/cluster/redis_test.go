package cluster

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/parley/parley/internal/cluster/redistest"
)

// redisURL is the URL of the redis-server TestMain started, or "" when none is installed.
var redisURL string

// TestMain starts one real redis-server for every test of the package; each test keeps its keys
// apart with a prefix of its own.
func TestMain(m *testing.M) {
	srv, err := redistest.Start()
	switch {
	case errors.Is(err, redistest.ErrAbsent):
	case err != nil:
		fmt.Fprintln(os.Stderr, "cluster tests:", err)
		os.Exit(1)
	default:
		redisURL = srv.URL
	}
	code := m.Run()
	if srv != nil {
		srv.Stop()
	}
	os.Exit(code)
}

// needRedis skips a test when redis-server is absent, saying why.
func needRedis(t *testing.T) string {
	t.Helper()
	if redisURL == "" {
		t.Skip(redistest.ErrAbsent.Error())
	}
	return redisURL
}

// ownRedis starts a redis-server of the test's own, one it may kill and restart, stopped when the
// test ends; it skips the test when redis-server is absent.
func ownRedis(t *testing.T) *redistest.Server {
	t.Helper()
	needRedis(t)
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}
