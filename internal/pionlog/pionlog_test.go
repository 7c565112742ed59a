package pionlog

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// closedWriteError is what pion/turn gets writing ChannelData to a TURN client that just left.
func closedWriteError(t *testing.T) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	_, err = c.Write([]byte("x"))
	return err
}

// closeNotifyError is what crypto/tls returns closing a TLS conn whose TCP conn is already closed,
// as pion/turn does after a TURN/TLS client's read loop ends.
func closeNotifyError(t *testing.T) error {
	a, b := net.Pipe()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}})
	cli := tls.Client(b, &tls.Config{InsecureSkipVerify: true})
	done := make(chan error, 1)
	go func() { done <- cli.Handshake() }()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	_ = b.Close()
	return srv.Close()
}

func TestTeardownIsDebugRealProblemsWarn(t *testing.T) {
	var buf bytes.Buffer
	l := Factory{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), Levels: Default}.NewLogger("turn")
	src := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5000}

	closed, notify := closedWriteError(t), closeNotifyError(t)
	if closed == nil || notify == nil || !strings.Contains(notify.Error(), "closeNotify") {
		t.Fatalf("could not produce the real errors: %v / %v", closed, notify)
	}
	l.Errorf("Failed to send ChannelData from allocation %v %v", src, closed)
	l.Errorf("Failed to close conn: %s", notify)
	l.Errorf("TLS handshake failed: %s", errors.New("EOF"))
	l.Warnf("Failed to close %s candidate: %v", "relay", net.ErrClosed)
	l.Errorf("TLS handshake failed: %s", errors.New("tls: first record does not look like a TLS handshake"))
	l.Errorf("%v-%v with unknown comprehension-required attributes from %v: %v", "Allocate", "request", src, []string{"0x7fff"})

	var warn, debug []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		switch {
		case strings.Contains(line, "level=WARN"):
			warn = append(warn, line)
		case strings.Contains(line, "level=DEBUG "):
			debug = append(debug, line)
		}
	}
	if len(debug) != 4 || len(warn) != 2 || !strings.Contains(warn[0], "first record") || !strings.Contains(warn[1], "comprehension-required") {
		t.Fatalf("want the 4 teardown lines at debug and the 2 others at warn:\n%s", buf.String())
	}
}

func TestWarningsAreRateLimited(t *testing.T) {
	var buf bytes.Buffer
	l := Factory{Log: slog.New(slog.NewTextHandler(&buf, nil)), Levels: Default}.NewLogger("turn").(*Logger)
	for range Burst + 5 {
		l.Warn("bad ChannelBind from a client")
	}
	if n := strings.Count(buf.String(), "level=WARN"); n != Burst {
		t.Fatalf("%d warnings logged, want %d", n, Burst)
	}
	l.windowStart.Store(time.Now().Add(-2 * Window).UnixNano()) // the window has passed
	l.Warn("bad ChannelBind from a client")
	if !strings.Contains(buf.String(), "suppressed=5") {
		t.Fatalf("the next warning must say how many were suppressed:\n%s", buf.String())
	}
}

func TestLevels(t *testing.T) {
	var buf bytes.Buffer
	l := Factory{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), Levels: Default}.NewLogger("ice")
	l.Debugf("per packet %d", 1) // below debug: not shown
	l.Trace("per packet")
	l.Infof("per request %d", 2)
	if out := buf.String(); strings.Contains(out, "per packet") || !strings.Contains(out, `msg="per request 2" pion=ice`) {
		t.Fatalf("log:\n%s", out)
	}
}
