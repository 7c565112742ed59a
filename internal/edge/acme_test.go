package edge

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// acmeDomain is the name certificates are issued for. autocert refuses single-label names such
// as "localhost", so the test runs its own DNS server (loopbackDNS) for pebble to resolve it.
const acmeDomain = "parley.test"

// loopbackDNS serves DNS over TCP (how pebble's validator asks a custom resolver), answering
// 127.0.0.1 for every A question and nothing for others.
func loopbackDNS(t *testing.T) string {
	t.Helper()
	ln, _ := listen(t)
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// startPebble runs Let's Encrypt's ACME test server in-process. Its validation authority checks
// http-01 on acmeDomain:httpPort and TLS-ALPN-01 on acmeDomain:tlsPort, both 127.0.0.1. It
// returns the directory URL and a client that trusts the server's own HTTPS certificate.
func startPebble(t *testing.T, httpPort, tlsPort int) (string, *http.Client) {
	t.Helper()
	// Read by pebble's constructors: no random validation delay (up to 15 s by default), no
	// deliberately rejected nonces, no reuse of authorizations across orders, so that each
	// test really validates.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	logger := log.New(tWriter{t}, "pebble ", 0)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, httpPort, tlsPort, false, loopbackDNS(t), store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 1, 1)
	srv := httptest.NewUnstartedServer(finalizeLocation(front.Handler()))
	srv.Config.ErrorLog = logger
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL + wfe.DirectoryPath, srv.Client()
}

// finalizeLocation adds the Location header that Let's Encrypt's production server (Boulder)
// sends with the finalize response and pebble deliberately no longer does (pebble#508).
// golang.org/x/crypto/acme up to at least v0.48.0 needs it to poll the order
// (golang/go#77704); remove this once x/crypto no longer does.
func finalizeLocation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := strings.CutPrefix(r.URL.Path, "/finalize-order/"); ok {
			w.Header().Set("Location", "https://"+r.Host+"/my-order/"+id)
		}
		next.ServeHTTP(w, r)
	})
}

// closedPort returns a port on 127.0.0.1 that refuses connections, for the challenge type a
// test must not pass.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}

func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// TestLetsEncrypt obtains certificates from a local pebble, once through TLS-ALPN-01 answered
// by the edge's shared port and once through http-01 answered by the HTTP-port handler, then
// restarts with the cache and no CA. Not parallel: pebble is configured through the
// environment.
func TestLetsEncrypt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an ACME exchange")
	}
	t.Run("tls-alpn-01 on the shared port", func(t *testing.T) {
		edgeLn, edgePort := listen(t)
		dirURL, client := startPebble(t, closedPort(t), edgePort)
		dir := t.TempDir()
		cfg, _, err := TLSConfig(CertConfig{
			Type: CertLetsEncrypt, Domain: acmeDomain, Dir: dir, Email: "ops@example.com",
			ACMEDirectoryURL: dirURL, acmeHTTPClient: client,
		}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		e := serveEdge(t, edgeLn, Config{TLS: cfg, SniffTimeout: time.Minute})
		expectIssued(t, e.addr)
		if s := e.Stats(); s.ACME == 0 {
			t.Errorf("the edge answered no TLS-ALPN-01 challenge: %+v", s)
		}

		if _, err := os.Stat(filepath.Join(dir, "acme", acmeDomain)); err != nil {
			t.Errorf("certificate not cached in the state directory: %v", err)
		}

		// Restart on the same state directory with the CA gone: the cached certificate serves.
		e.stop()
		cfg2, _, err := TLSConfig(CertConfig{
			Type: CertLetsEncrypt, Domain: acmeDomain, Dir: dir,
			ACMEDirectoryURL: "https://127.0.0.1:1/dir", acmeHTTPClient: client,
		}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		edgeLn2, _ := listen(t)
		expectIssued(t, serveEdge(t, edgeLn2, Config{TLS: cfg2}).addr)
	})

	t.Run("http-01 on the HTTP port", func(t *testing.T) {
		httpLn, httpPort := listen(t)
		edgeLn, edgePort := listen(t)
		dirURL, client := startPebble(t, httpPort, closedPort(t))
		cfg, httpHandler, err := TLSConfig(CertConfig{
			Type: CertLetsEncrypt, Domain: acmeDomain, Dir: t.TempDir(), HTTPSPort: edgePort,
			ACMEDirectoryURL: dirURL, acmeHTTPClient: client,
		}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		httpSrv := &http.Server{Handler: httpHandler, ReadHeaderTimeout: testTimeout}
		go func() { _ = httpSrv.Serve(httpLn) }()
		t.Cleanup(func() { _ = httpSrv.Close() })

		e := serveEdge(t, edgeLn, Config{TLS: cfg, SniffTimeout: time.Minute})
		expectIssued(t, e.addr)
		if s := e.Stats(); s.ACME != 0 {
			t.Errorf("TLS-ALPN-01 reached the edge although pebble was pointed elsewhere: %+v", s)
		}

		// Everything else on the HTTP port goes to HTTPS.
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noRedirect.Get("http://localhost:" + strconv.Itoa(httpPort) + "/openvidu?x=1")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		want := "https://" + acmeDomain + ":" + strconv.Itoa(edgePort) + "/openvidu?x=1"
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
			t.Errorf("HTTP port: %d %q, want 301 %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
	})
}

// serveEdge runs an edge with cfg on ln until the test ends.
func serveEdge(t *testing.T, ln net.Listener, cfg Config) *testEdge {
	t.Helper()
	if cfg.HTTP == nil {
		cfg.HTTP = httpHello
	}
	s, err := NewServer(ln, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &testEdge{Server: s, addr: ln.Addr().String(), stop: stop}
}

// expectIssued connects as a browser would and checks that the certificate it gets is issued
// by the ACME CA for acmeDomain (the first handshake waits while the certificate is obtained).
func expectIssued(t *testing.T, addr string) {
	t.Helper()
	c := tls.Client(dial(t, addr), &tls.Config{
		ServerName: acmeDomain, NextProtos: []string{ALPNHTTP1},
		InsecureSkipVerify: true, // pebble's roots change every run; the checks below suffice
	})
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	chain := c.ConnectionState().PeerCertificates
	leaf := chain[0]
	if err := leaf.VerifyHostname(acmeDomain); err != nil {
		t.Error(err)
	}
	if !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
		t.Errorf("issuer %q, want pebble's", leaf.Issuer.CommonName)
	}
	if len(chain) < 2 {
		t.Fatalf("no intermediate in the chain")
	}
	if err := leaf.CheckSignatureFrom(chain[1]); err != nil {
		t.Errorf("leaf not signed by the intermediate served: %v", err)
	}
	// The HTTPS side works on the issued certificate.
	if resp, body := httpGet(t, c); resp.StatusCode != 200 || !strings.HasPrefix(body, "hello tls") {
		t.Errorf("HTTPS: %d %q", resp.StatusCode, body)
	}
}
