package turn

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// uclient runs coturn's turnutils_uclient (Debian package coturn; `make test` installs it) against
// the test server: -t TCP, -S TLS, -c one allocation (no RTCP pair: that uses EVEN-PORT, which we
// do not offer), -e/-r the peer, which must be our media address (the stand-in SFU echoes).
func uclient(t *testing.T, e *testEnv, user, pass string, extra ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("turnutils_uclient")
	if err != nil {
		t.Skip("turnutils_uclient not installed (apt-get install coturn)")
	}
	host, port, _ := net.SplitHostPort(e.tcp.String())
	media := e.mediaAddr()
	args := []string{"-t", "-c", "-n", "20", "-l", "200", "-z", "5",
		"-u", user, "-w", pass,
		"-e", media.Addr().String(), "-r", strconv.Itoa(int(media.Port())),
		"-p", port}
	args = append(args, extra...)
	args = append(args, host)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

var (
	uclientLost = regexp.MustCompile(`Total lost packets (\d+) \(([0-9.]+)%\)`)
	uclientRecv = regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\n`)
)

// TestUclient: coturn's own client allocates and relays through our TURN with valid credentials
// over TCP and TLS, and is refused with wrong, expired and revoked ones.
func TestUclient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"tcp", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var extra []string
			var e *testEnv
			// This is the relay's conformance with coturn's client, not the weak-link policy
			// (sendq_test.go): a writer starved for 300 ms on a loaded machine must not read as
			// protocol loss.
			noAge := func(c *Config) { c.clientQueue.MaxAge = time.Hour }
			if tc.tls {
				e = newEnvWith(t, noAge, selfSignedTLS(t))
				extra = []string{"-S"}
			} else {
				e = newEnv(t, noAge)
			}
			stop := echoT(t, e)
			defer stop()

			t.Run("valid", func(t *testing.T) {
				user, pass := e.srv.Credentials("con_Uclient")
				out, err := uclient(t, e, user, pass, extra...)
				if err != nil {
					t.Fatalf("turnutils_uclient: %v\n%s", err, out)
				}
				m := uclientLost.FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("no loss report in output:\n%s", out)
				}
				if m[1] != "0" {
					t.Errorf("lost %s packets (%s%%), client queue %+v:\n%s", m[1], m[2], e.srv.Stats().ClientQueue, out)
				}
				if r := uclientRecv.FindStringSubmatch(out); r == nil || r[1] != "20" || r[2] != "20" {
					t.Errorf("want 20 datagrams sent and received:\n%s", out)
				}
				if st := e.srv.Stats(); st.ToPeerPackets < 20 || st.FromPeerPackets < 20 {
					t.Errorf("relay counted %d/%d datagrams, want ≥ 20 each way\n%s", st.ToPeerPackets, st.FromPeerPackets, out)
				}
			})

			for _, bad := range []struct {
				name string
				cred func() (string, string)
			}{
				{"wrong password", func() (string, string) {
					u, _ := e.srv.Credentials("con_Wrong")
					return u, "bm90IHRoZSBwYXNzd29yZA=="
				}},
				{"expired", func() (string, string) {
					return e.srv.credentialsUntil("con_Expired", time.Now().Add(-time.Minute))
				}},
				{"revoked", func() (string, string) {
					u, p := e.srv.Credentials("con_Revoked")
					e.srv.Revoke("con_Revoked")
					return u, p
				}},
			} {
				t.Run(bad.name, func(t *testing.T) {
					before := e.srv.Stats()
					user, pass := bad.cred()
					out, err := uclient(t, e, user, pass, extra...)
					if err == nil {
						if m := uclientLost.FindStringSubmatch(out); m != nil && m[1] == "0" {
							t.Fatalf("turnutils_uclient relayed with bad credentials:\n%s", out)
						}
					}
					after := e.srv.Stats()
					if after.AuthFailures <= before.AuthFailures {
						t.Errorf("no auth failure counted\n%s", out)
					}
					if after.AllocationsTotal != before.AllocationsTotal {
						t.Errorf("an allocation was created\n%s", out)
					}
				})
			}
		})
	}
}

// echoT echoes datagrams on the env's media socket until stopped.
func echoT(t *testing.T, e *testEnv) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1600)
		for {
			n, from, err := e.media.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if _, err := e.media.WriteToUDPAddrPort(buf[:n], from); err != nil {
				t.Errorf("echo: %v", err)
				return
			}
		}
	}()
	return func() { _ = e.media.SetReadDeadline(time.Now()); <-done }
}
