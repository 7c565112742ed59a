// Command abuse runs one attack from issue 14 against a running Parley and prints what it cost
// the server (RSS, CPU seconds, open files, read from /proc of -pid) and what a legitimate user
// saw meanwhile. bench/abuse.sh starts a server and runs every attack; the short versions of
// the attacks, with asserted bounds, are Go tests of the packages that hold the limits.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4443", "the server's shared port (host:port)")
	pid := flag.Int("pid", 0, "the server's process id, for its costs")
	n := flag.Int("n", 10000, "attack size (connections, requests, …)")
	sources := flag.Int("sources", 4, "attacker addresses (127.0.1.x)")
	flag.Parse()
	if flag.NArg() != 1 || *pid == 0 {
		fmt.Fprintln(os.Stderr, "usage: abuse -addr host:port -pid N [-n N] idle")
		os.Exit(2)
	}
	a := attacks[flag.Arg(0)]
	if a == nil {
		fmt.Fprintf(os.Stderr, "abuse: unknown attack %q\n", flag.Arg(0))
		os.Exit(2)
	}
	before := readCost(*pid)
	seen, err := a(env{addr: *addr, n: *n, sources: *sources})
	after := readCost(*pid)
	if err != nil {
		fmt.Fprintf(os.Stderr, "abuse %s: %v\n", flag.Arg(0), err)
		os.Exit(1)
	}
	fmt.Printf("%-8s n=%-6d server: RSS %+.1f MB (%.1f MB), CPU %.2f s, fds %d→%d | legitimate user: %s\n",
		flag.Arg(0), *n, float64(after.rss-before.rss)/1e6, float64(after.rss)/1e6,
		after.cpu-before.cpu, before.fds, after.fds, seen)
}

type env struct {
	addr       string
	n, sources int
}

var attacks = map[string]func(env) (string, error){
	"idle": idle,
}

type cost struct {
	rss int64   // bytes
	cpu float64 // seconds, user + system
	fds int
}

func readCost(pid int) cost {
	var c cost
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for l := range strings.Lines(string(b)) {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				c.rss = kb * 1024
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		c.cpu = (ut + st) / 100 // USER_HZ
	}
	if es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		c.fds = len(es)
	}
	return c
}

// from is a dialer bound to attacker address i (127.0.1.i+1) or, for the legitimate user,
// 127.0.2.1.
func from(ip string) *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
}

func attacker(i, sources int) string { return fmt.Sprintf("127.0.1.%d", i%sources+1) }

// classifyTime is how long a fresh connection takes to get an HTTP answer from the port.
func classifyTime(addr string) (time.Duration, error) {
	start := time.Now()
	c, err := from("127.0.2.1").Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "GET /nothing-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return time.Since(start), nil
}

func durations(ds []time.Duration) string {
	slices.Sort(ds)
	return fmt.Sprintf("median %v, max %v over %d", ds[len(ds)/2].Round(time.Millisecond),
		ds[len(ds)-1].Round(time.Millisecond), len(ds))
}

// idle opens n connections that send nothing, from a few addresses, keeps reopening those the
// server drops, and times a newcomer's first HTTP answer meanwhile.
func idle(e env) (string, error) {
	stop := make(chan struct{})
	opened := make(chan int, 1)
	full := make(chan struct{})
	held := make(chan struct{}, e.n) // one per attacker connection open
	go func() {
		conns := 0
		defer func() { opened <- conns }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case held <- struct{}{}:
			}
			c, err := from(attacker(i, e.sources)).Dial("tcp", e.addr)
			if err != nil {
				<-held
				continue
			}
			conns++
			if conns == e.n {
				close(full)
			}
			go func() { // hold it until the server lets go; then the loop opens another
				_, _ = c.Read(make([]byte, 1))
				c.Close()
				<-held
			}()
		}
	}()
	select { // let the flood build up
	case <-full:
	case <-time.After(30 * time.Second):
	}
	var ds []time.Duration
	failed := 0
	for range 10 {
		d, err := classifyTime(e.addr)
		if err != nil {
			failed++
			continue
		}
		ds = append(ds, d)
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	if len(ds) == 0 {
		return fmt.Sprintf("never classified (%d tries); %d attacker connections opened", failed, <-opened), nil
	}
	return fmt.Sprintf("classified in %s (%d failed); %d attacker connections opened", durations(ds), failed, <-opened), nil
}
