package edge

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSelfSignedPersists(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state") // not there yet: TLSConfig creates it
	get := func(domain string) *tls.Certificate {
		t.Helper()
		cfg, _, err := TLSConfig(CertConfig{Type: CertSelfSigned, Domain: domain, Dir: dir}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		return &cfg.Certificates[0]
	}
	first := get("parley.example.com")
	second := get("parley.example.com")
	if !bytes.Equal(first.Certificate[0], second.Certificate[0]) {
		t.Fatal("the self-signed certificate changed across restarts")
	}

	leaf := first.Leaf
	if err := leaf.VerifyHostname("parley.example.com"); err != nil {
		t.Error(err)
	}
	if len(leaf.DNSNames) != 1 || len(leaf.IPAddresses) != 0 {
		t.Errorf("SANs %v %v, want the domain only", leaf.DNSNames, leaf.IPAddresses)
	}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if v := leaf.NotAfter.Sub(leaf.NotBefore); v < 10*365*24*time.Hour {
		t.Errorf("validity %v, want 10 years", v)
	}
	if leaf.IsCA {
		t.Error("self-signed certificate is a CA")
	}
	for _, f := range []string{selfSignedCertFile, selfSignedKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}

	// A new domain needs a new certificate; an IP address goes in an IP SAN.
	third := get("192.0.2.7")
	if bytes.Equal(third.Certificate[0], first.Certificate[0]) {
		t.Fatal("certificate kept although the domain changed")
	}
	if err := third.Leaf.VerifyHostname("192.0.2.7"); err != nil || len(third.Leaf.DNSNames) != 0 {
		t.Errorf("IP certificate: %v, DNS names %v", err, third.Leaf.DNSNames)
	}

	// A damaged pair (here, a crash between writing the key and the certificate) is replaced.
	if err := os.WriteFile(filepath.Join(dir, selfSignedKeyFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fourth := get("192.0.2.7"); bytes.Equal(fourth.Certificate[0], third.Certificate[0]) {
		t.Fatal("a damaged pair was not replaced")
	}
}

// writePair makes a self-signed pair for domain in dir with the given file names.
func writePair(t *testing.T, dir, domain, certName, keyName string) (string, string) {
	t.Helper()
	tmp := t.TempDir()
	if _, err := loadOrCreateSelfSigned(tmp, domain, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, certName), filepath.Join(dir, keyName)
	for src, dst := range map[string]string{selfSignedCertFile: certPath, selfSignedKeyFile: keyPath} {
		b, err := os.ReadFile(filepath.Join(tmp, src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certPath, keyPath
}

func TestOwnCert(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certA, keyA := writePair(t, dir, "parley.example.com", "a.crt", "a.key")
	_, keyB := writePair(t, dir, "parley.example.com", "b.crt", "b.key")

	cfg, _, err := TLSConfig(CertConfig{Type: CertOwn, Domain: "parley.example.com", CertFile: certA, KeyFile: keyA}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "parley.example.com"})
	if err != nil || cert.Leaf.VerifyHostname("parley.example.com") != nil {
		t.Fatalf("GetCertificate: %v", err)
	}

	for _, tt := range []struct {
		name, cert, key string
		want            []string // substrings of the error
	}{
		{"missing certificate", filepath.Join(dir, "nope.crt"), keyA, []string{"certificate file", "nope.crt", "no such file"}},
		{"missing key", certA, filepath.Join(dir, "nope.key"), []string{"key file", "nope.key", "no such file"}},
		{"mismatched pair", certA, keyB, []string{"a.crt", "b.key", "does not match"}},
		{"key given as certificate", keyA, keyA, []string{"a.key", "certificate"}},
		{"no files", "", "", []string{"owncert needs"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := TLSConfig(CertConfig{Type: CertOwn, Domain: "parley.example.com", CertFile: tt.cert, KeyFile: tt.key}, testLogger(t))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestOwnCertReload: a renewed pair is picked up without a restart; a broken one is not.
func TestOwnCertReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certPath, keyPath := writePair(t, dir, "parley.example.com", "c.crt", "c.key")
	r, err := newCertReloader(certPath, keyPath, "parley.example.com", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	old, _ := r.getCertificate(nil)

	// The renewal lands mid-way: a new key with the old certificate is not taken.
	renewed := t.TempDir()
	newCert, newKey := writePair(t, renewed, "parley.example.com", "c.crt", "c.key")
	copyFile(t, newKey, keyPath)
	bump(t, keyPath)
	r.nextCheck = time.Time{}
	if got, _ := r.getCertificate(nil); !bytes.Equal(got.Certificate[0], old.Certificate[0]) {
		t.Fatal("a mismatched pair replaced the certificate in service")
	}
	copyFile(t, newCert, certPath)
	bump(t, certPath)
	r.nextCheck = time.Time{}
	if got, _ := r.getCertificate(nil); bytes.Equal(got.Certificate[0], old.Certificate[0]) {
		t.Fatal("the renewed certificate was not loaded")
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// bump moves a file's modification time forward, as a renewal does on a coarse-clock filesystem.
func bump(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	mt := fi.ModTime().Add(time.Second)
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		c    CertConfig
		want string
	}{
		{"unknown type", CertConfig{Type: "acme", Domain: "x.example"}, `unknown type "acme"`},
		{"no domain", CertConfig{Type: CertSelfSigned, Dir: t.TempDir()}, "no domain"},
		{"selfsigned without dir", CertConfig{Type: CertSelfSigned, Domain: "x.example"}, "state directory"},
		{"letsencrypt for an IP", CertConfig{Type: CertLetsEncrypt, Domain: "192.0.2.1", Dir: t.TempDir()}, "domain name"},
		{"letsencrypt without dir", CertConfig{Type: CertLetsEncrypt, Domain: "x.example"}, "state directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := TLSConfig(tt.c, testLogger(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestHTTPPortHandler(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, domain string
		port         int
		method, url  string
		wantStatus   int
		wantLocation string
	}{
		{"redirect keeps path and query", "parley.example.com", 443, "GET", "http://evil.example/openvidu?x=1", 301, "https://parley.example.com/openvidu?x=1"},
		{"non-default port", "parley.example.com", 8443, "HEAD", "http://parley.example.com/", 301, "https://parley.example.com:8443/"},
		{"ipv6", "2001:db8::1", 443, "GET", "http://[2001:db8::1]/a", 301, "https://[2001:db8::1]/a"},
		{"ipv6 with port", "2001:db8::1", 4443, "GET", "http://[2001:db8::1]/a", 301, "https://[2001:db8::1]:4443/a"},
		{"post is refused", "parley.example.com", 443, "POST", "http://parley.example.com/openvidu/api/sessions", 400, ""},
		{"no acme client, no challenge", "parley.example.com", 443, "GET", "http://parley.example.com/.well-known/acme-challenge/tok", 404, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, h, err := TLSConfig(CertConfig{Type: CertSelfSigned, Domain: tt.domain, Dir: t.TempDir(), HTTPSPort: tt.port}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.url, nil))
			if w.Code != tt.wantStatus || w.Header().Get("Location") != tt.wantLocation {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Header().Get("Location"), tt.wantStatus, tt.wantLocation)
			}
		})
	}
}

// TestSlowCertificate: a certificate source that blocks (autocert during the first issuance)
// costs a handshake no more than the sniff deadline, frees its sniff slot, and does not hold up
// shutdown.
func TestSlowCertificate(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	called := make(chan struct{}, 4)
	t.Cleanup(func() { close(release) }) // lets the background calls end
	blocking := giveUpWithHandshake(func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		called <- struct{}{}
		<-release
		return nil, errors.New("released")
	})
	tlsCfg := &tls.Config{GetCertificate: blocking}

	e := startEdge(t, Config{TLS: tlsCfg, SniffTimeout: 200 * time.Millisecond, MaxPendingSniffs: 1}, false)
	c := tls.Client(dial(t, e.addr), &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
	if err := c.Handshake(); err == nil {
		t.Fatal("handshake succeeded without a certificate")
	}
	// The one slot the handshake held serves the next client, once the edge has dropped it (the
	// client sees the alert before the edge's goroutine lets go; a newcomer earlier would evict it).
	waitFor(t, "the failed handshake to be dropped", func() bool { return e.Stats().DropTLSHandshake == 1 })
	resp, _ := httpGet(t, dial(t, e.addr))
	if resp.StatusCode != http.StatusBadRequest { // plain HTTP on a TLS port
		t.Errorf("status %d", resp.StatusCode)
	}
	if s := e.Stats(); s.DropTLSHandshake != 1 {
		t.Errorf("stats %+v", s)
	}

	e2 := startEdge(t, Config{TLS: tlsCfg, SniffTimeout: time.Minute}, false)
	raw := dial(t, e2.addr)
	handshook := make(chan error, 1)
	go func() {
		handshook <- tls.Client(raw, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true}).Handshake()
	}()
	<-called
	<-called
	if err := e2.stop(); err != nil { // within testTimeout, far below the minute of SniffTimeout
		t.Fatalf("Run: %v", err)
	}
	if err := <-handshook; err == nil {
		t.Error("handshake succeeded during shutdown")
	}
}
