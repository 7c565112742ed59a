// Command turnalloc measures how fast clients can get TURN allocations: workers that each, in a
// loop, open a TURN/TCP connection, Allocate a UDP relay (with the 401 round trip a browser
// makes), release it and close the connection. It drives any TURN server (ours or coturn) with
// pion/turn's client and prints one line: allocations, failures, seconds and allocations/s.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
)

func main() {
	server := flag.String("server", "127.0.0.1:3478", "TURN/TCP address")
	user := flag.String("u", "", "TURN username")
	pass := flag.String("w", "", "TURN password")
	workers := flag.Int("workers", 20, "concurrent clients")
	dur := flag.Duration("duration", 10*time.Second, "how long to run")
	flag.Parse()
	if *user == "" || *pass == "" || *workers < 1 || *dur <= 0 {
		fmt.Fprintln(os.Stderr, "turnalloc: -u and -w are required; -workers and -duration must be positive")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	// A different 127.x per run, so that the TIME_WAIT of the previous runs (minutes of it)
	// is never in the way.
	net2 := byte(64 + rand.IntN(190))
	for i := range *workers {
		// Each worker dials from its own loopback address: the client closes first, so its
		// side keeps TIME_WAIT, and thousands of connections a second from one address would
		// run out of ephemeral ports within a few runs.
		local := &net.TCPAddr{IP: net.IPv4(127, net2, byte(i>>8), byte(i&0xff)+1)}
		if !strings.HasPrefix(*server, "127.") {
			local = nil
		}
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if err := allocateOnce(ctx, *server, *user, *pass, local); err != nil {
					if ctx.Err() != nil {
						return // cut short by the deadline: not a failure
					}
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					kindsMu.Lock()
					kinds[errKind(err)+" after "+time.Since(t0).Round(time.Second).String()]++
					kindsMu.Unlock()
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	fmt.Printf("allocations %d failures %d seconds %.2f allocs/s %.0f\n", ok.Load(), failed.Load(), secs, float64(ok.Load())/secs)
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "first error:", e, "· failures by kind:", kinds)
	}
}

var (
	kindsMu sync.Mutex
	kinds   = map[string]int{}
)

// errKind names a failure without its addresses, so that failures can be counted by cause.
func errKind(err error) string {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Op + ": " + op.Err.Error()
	}
	return err.Error()
}

// quiet keeps pion's client from logging the deallocations it does not wait for.
var quiet = logging.NewDefaultLoggerFactory()

func init() { quiet.DefaultLogLevel = logging.LogLevelDisabled }

func allocateOnce(ctx context.Context, server, user, pass string, local *net.TCPAddr) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != nil {
		d.LocalAddr = local
	}
	conn, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return err
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server,
		TURNServerAddr: server,
		Conn:           turn.NewSTUNConn(conn),
		Username:       user,
		Password:       pass,
		LoggerFactory:  quiet,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		return err
	}
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	defer acancel()
	relay, err := c.AllocateWithContext(actx)
	if err != nil {
		return err
	}
	return relay.Close()
}
