package edge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// Certificate types, the values of OpenVidu's CERTIFICATE_TYPE.
const (
	CertSelfSigned  = "selfsigned"
	CertOwn         = "owncert"
	CertLetsEncrypt = "letsencrypt"
)

// CertConfig says where the shared port's certificate comes from.
type CertConfig struct {
	// Type is CertSelfSigned, CertOwn or CertLetsEncrypt (CERTIFICATE_TYPE).
	Type string
	// Domain is the name (or, except for Let's Encrypt, the IP address) clients use
	// (DOMAIN_OR_PUBLIC_IP). It is the self-signed certificate's only SAN, the only name
	// Let's Encrypt is asked for, and the host HTTP-port redirects point to.
	Domain string
	// Dir is Parley's state directory: the self-signed certificate is generated there once and
	// kept across restarts (so browsers' exceptions keep working), and Let's Encrypt
	// certificates and the ACME account key are cached under Dir/acme. Created 0700 if missing.
	Dir string
	// CertFile and KeyFile are the PEM files of an owncert certificate (chain first) and its
	// key. They are re-read when they change on disk, so renewing them needs no restart.
	CertFile, KeyFile string
	// Email is given to Let's Encrypt for expiry notices (optional).
	Email string
	// ACMEDirectoryURL is the ACME server; empty means Let's Encrypt production. Staging:
	// https://acme-staging-v02.api.letsencrypt.org/directory.
	ACMEDirectoryURL string
	// HTTPSPort is the shared port (HTTPS_PORT), for redirects; 443 is left out of URLs.
	HTTPSPort int

	// acmeHTTPClient reaches the ACME server (tests: trust a local test CA). nil: the default.
	acmeHTTPClient *http.Client
}

// Self-signed certificate files in CertConfig.Dir.
const (
	selfSignedCertFile = "selfsigned-cert.pem"
	selfSignedKeyFile  = "selfsigned-key.pem"
	selfSignedValidity = 10 * 365 * 24 * time.Hour
)

// TLSConfig returns the TLS configuration for the shared port (Config.TLS) and the handler for
// the plain HTTP port (HTTP_PORT, usually 80), which answers ACME http-01 challenges under
// /.well-known/acme-challenge/ (Let's Encrypt only) and redirects everything else to
// https://Domain[:HTTPSPort].
//
// With Let's Encrypt, a certificate is obtained at the first TLS handshake that needs it and
// renewed before it expires. The CA checks TLS-ALPN-01 on port 443 (the shared port answers it)
// or http-01 on port 80 (the returned handler), so one of the two must be reachable from the
// Internet under Domain. The handshake that triggers issuance may time out while it runs; the
// browser's retry gets the certificate.
func TLSConfig(c CertConfig, log *slog.Logger) (*tls.Config, http.Handler, error) {
	if c.Domain == "" {
		return nil, nil, errors.New("certificate: no domain (DOMAIN_OR_PUBLIC_IP) to issue it for")
	}
	redirect := redirectHandler(c.Domain, c.HTTPSPort)
	base := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// http/1.1 first: Go's server picks by its own order, and HTTP is what most ALPN-speaking
		// clients want. No h2: see Config.TLS.
		NextProtos: []string{ALPNHTTP1, ALPNTURN},
	}
	switch c.Type {
	case CertSelfSigned:
		cert, err := loadOrCreateSelfSigned(c.Dir, c.Domain, log)
		if err != nil {
			return nil, nil, err
		}
		base.Certificates = []tls.Certificate{cert}
		return base, noACME(redirect), nil
	case CertOwn:
		r, err := newCertReloader(c.CertFile, c.KeyFile, c.Domain, log)
		if err != nil {
			return nil, nil, err
		}
		base.GetCertificate = r.getCertificate
		return base, noACME(redirect), nil
	case CertLetsEncrypt:
		return letsEncrypt(c, base, redirect)
	}
	return nil, nil, fmt.Errorf("certificate: unknown type %q (CERTIFICATE_TYPE: %s, %s or %s)",
		c.Type, CertSelfSigned, CertOwn, CertLetsEncrypt)
}

func letsEncrypt(c CertConfig, base *tls.Config, redirect http.Handler) (*tls.Config, http.Handler, error) {
	if _, err := netip.ParseAddr(c.Domain); err == nil {
		return nil, nil, fmt.Errorf("certificate: letsencrypt needs a domain name, not the IP address %s (use selfsigned or owncert)", c.Domain)
	}
	if c.Dir == "" {
		return nil, nil, errors.New("certificate: letsencrypt needs a state directory to cache certificates in")
	}
	dir := filepath.Join(c.Dir, "acme")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("certificate: %w", err)
	}
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(dir),
		HostPolicy: autocert.HostWhitelist(c.Domain), // never ask the CA for names an attacker sends in SNI
		Email:      c.Email,
		Client:     &acme.Client{DirectoryURL: c.ACMEDirectoryURL, HTTPClient: c.acmeHTTPClient},
	}
	if m.Client.DirectoryURL == "" {
		m.Client.DirectoryURL = autocert.DefaultACMEDirectory
	}
	base.NextProtos = append(base.NextProtos, ALPNACME)
	get := giveUpWithHandshake(m.GetCertificate)
	base.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hello.ServerName == "" {
			// Clients that dial the IP (TURN with an IP-literal URL, scripts) send no SNI;
			// autocert would refuse them. Our one certificate is the best answer we have.
			hello.ServerName = c.Domain
		}
		return get(hello)
	}
	challenges := m.HTTPHandler(redirect)
	return base, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// autocert checks the host policy against Host as sent, port included; a CA only ever
		// validates on port 80, but a port forwarded to another HTTP_PORT (or a test) must not
		// turn the challenge away.
		if host, _, err := net.SplitHostPort(r.Host); err == nil {
			r.Host = host
		}
		challenges.ServeHTTP(w, r)
	}), nil
}

// giveUpWithHandshake makes get return when the handshake's context ends (the edge's sniff
// deadline, or shutdown). autocert's GetCertificate blocks while it obtains a certificate, for
// up to five minutes and regardless of the connection; without this, every handshake during
// the first issuance would hold one of the edge's sniff slots for that long. The call itself
// goes on in the background and its result is cached by autocert for the client's retry; the
// goroutine ends when it returns.
func giveUpWithHandshake(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	type result struct {
		cert *tls.Certificate
		err  error
	}
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		ch := make(chan result, 1) // buffered: the goroutine never waits for a reader that left
		go func() {
			cert, err := get(hello)
			ch <- result{cert, err}
		}()
		select {
		case r := <-ch:
			return r.cert, r.err
		case <-hello.Context().Done():
			return nil, fmt.Errorf("certificate for %q not ready yet: %w", hello.ServerName, context.Cause(hello.Context()))
		}
	}
}

// redirectHandler sends GET and HEAD to the same path on https://domain[:port]. The host is the
// configured domain, never the request's Host header, so the redirect cannot be pointed
// elsewhere. Other methods get 400: a client that POSTs in plain text has already exposed its
// secret, and should be told to fix its URL rather than silently succeed.
func redirectHandler(domain string, port int) http.Handler {
	host := domain
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	if port != 0 && port != 443 {
		host = net.JoinHostPort(domain, strconv.Itoa(port))
	}
	base := "https://" + host
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "Use HTTPS: "+base, http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, base+r.URL.RequestURI(), http.StatusMovedPermanently)
	})
}

// noACME answers 404 to ACME challenges when we run no ACME client, rather than redirecting a
// CA's validator to a port it will not follow.
func noACME(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loadOrCreateSelfSigned returns the certificate kept in dir, or makes and keeps a new one if
// there is none, it no longer covers domain, or it is about to expire. Keeping it matters:
// browsers remember an accepted exception per certificate.
func loadOrCreateSelfSigned(dir, domain string, log *slog.Logger) (tls.Certificate, error) {
	if dir == "" {
		return tls.Certificate{}, errors.New("certificate: selfsigned needs a state directory to keep the certificate in")
	}
	certPath := filepath.Join(dir, selfSignedCertFile)
	keyPath := filepath.Join(dir, selfSignedKeyFile)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	switch {
	case err == nil:
		leaf := cert.Leaf
		if why := selfSignedStale(leaf, domain); why != "" {
			log.Warn("replacing the self-signed certificate", "file", certPath, "reason", why)
			break
		}
		return cert, nil
	case errors.Is(err, fs.ErrNotExist):
		log.Info("generating a self-signed certificate", "file", certPath, "domain", domain)
	default:
		// Both files are ours: a half-written pair (a crash between the two renames) or a
		// hand-edited one is replaced rather than keeping the server down.
		log.Warn("replacing an unreadable self-signed certificate", "file", certPath, "err", err)
	}
	return createSelfSigned(dir, certPath, keyPath, domain)
}

// selfSignedStale says why leaf should be replaced, or "".
func selfSignedStale(leaf *x509.Certificate, domain string) string {
	if err := leaf.VerifyHostname(domain); err != nil {
		return "it does not cover " + domain
	}
	if time.Until(leaf.NotAfter) < 30*24*time.Hour {
		return "it expires on " + leaf.NotAfter.Format(time.DateOnly)
	}
	return ""
}

func createSelfSigned(dir, certPath, keyPath, domain string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: domain, Organization: []string{"Parley self-signed"}},
		NotBefore:    now.Add(-time.Hour), // tolerate clients whose clock is a little behind
		NotAfter:     now.Add(selfSignedValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// A leaf, not a CA: importing it as trusted must not let it vouch for other names.
		BasicConstraintsValid: true,
	}
	if ip, err := netip.ParseAddr(domain); err == nil {
		tmpl.IPAddresses = []net.IP{ip.AsSlice()}
	} else {
		tmpl.DNSNames = []string{domain}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate: %w", err)
	}
	// Key first: a crash between the two leaves an old certificate with a new key, which the
	// next start detects as a mismatch and replaces.
	if err := writeFileAtomic(keyPath, keyPEM); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(certPath, certPEM); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// writeFileAtomic writes data to path with mode 0600 through a temporary file and a rename, so
// that a reader never sees half a file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }() // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("certificate: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("certificate: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("certificate: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("certificate: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	return nil
}

// certReloader serves an owncert pair and reloads it when either file changes, checking at most
// once per reloadCheckEvery, so that a renewal (certbot, an operator) needs no restart. A pair
// that fails to load keeps the previous one in service.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	certMod   time.Time
	keyMod    time.Time
	nextCheck time.Time
}

const reloadCheckEvery = time.Minute

func newCertReloader(certFile, keyFile, domain string, log *slog.Logger) (*certReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("certificate: owncert needs both a certificate file and a key file")
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	cert, certMod, keyMod, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	if err := cert.Leaf.VerifyHostname(domain); err != nil {
		// A warning, not an error: clients may reach us under another name on the certificate.
		log.Warn("the certificate does not cover the domain", "file", certFile, "domain", domain, "err", err)
	}
	if time.Now().After(cert.Leaf.NotAfter) {
		log.Warn("the certificate has expired", "file", certFile, "not_after", cert.Leaf.NotAfter)
	}
	r.cert, r.certMod, r.keyMod = cert, certMod, keyMod
	r.nextCheck = time.Now().Add(reloadCheckEvery)
	return r, nil
}

// loadPair loads a PEM pair, with an error that names the file at fault.
func loadPair(certFile, keyFile string) (*tls.Certificate, time.Time, time.Time, error) {
	ci, err := os.Stat(certFile)
	if err != nil {
		return nil, time.Time{}, time.Time{}, fmt.Errorf("certificate: owncert certificate file: %w", err)
	}
	ki, err := os.Stat(keyFile)
	if err != nil {
		return nil, time.Time{}, time.Time{}, fmt.Errorf("certificate: owncert key file: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, time.Time{}, time.Time{}, fmt.Errorf("certificate: owncert %s and %s: %w", certFile, keyFile, err)
	}
	return &cert, ci.ModTime(), ki.ModTime(), nil
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.After(r.nextCheck) {
		r.nextCheck = now.Add(reloadCheckEvery)
		r.reloadLocked()
	}
	return r.cert, nil
}

func (r *certReloader) reloadLocked() {
	ci, err1 := os.Stat(r.certFile)
	ki, err2 := os.Stat(r.keyFile)
	if err1 != nil || err2 != nil || (ci.ModTime().Equal(r.certMod) && ki.ModTime().Equal(r.keyMod)) {
		return
	}
	cert, certMod, keyMod, err := loadPair(r.certFile, r.keyFile)
	if err != nil {
		// Mid-renewal the two files may briefly disagree: keep serving the old pair and look
		// again at the next check.
		r.log.Warn("keeping the previous certificate", "err", err)
		return
	}
	r.cert, r.certMod, r.keyMod = cert, certMod, keyMod
	r.log.Info("certificate reloaded", "file", r.certFile, "not_after", cert.Leaf.NotAfter)
}
