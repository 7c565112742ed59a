// Command turnrelay runs Parley's embedded TURN server alone, for benchmarks against coturn: it
// relays only to the one peer address given (turnutils_peer stands in for the SFU) and prints the
// credentials a load client should use.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/parley/parley/internal/turn"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:3479", "TCP address for TURN over TCP")
	peer := flag.String("peer", "127.0.0.1:3480", "the only address the relay may reach")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	p, err := netip.ParseAddrPort(*peer)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	srv, err := turn.New(turn.Config{MediaAddrs: []netip.AddrPort{p}, RelayIP: p.Addr(), MaxAllocationsPerConnection: 1000},
		turn.LivenessFunc(func(string) bool { return true }), slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	user, pass := srv.Credentials("con_Bench00000")
	fmt.Printf("%s %s\n", user, pass)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); _ = ln.Close() }()
	_ = srv.ServeTCP(ln)
	_ = srv.Close()
}
