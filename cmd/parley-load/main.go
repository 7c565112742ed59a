// Command parley-load is Parley's load generator: pion participants that join an OpenVidu 2
// server (Parley or openvidu-server) exactly as openvidu-browser does, publish real encoded media
// and subscribe, then report per step what subscribers received and what the server spent —
// microseconds of server CPU per delivered RTP packet first.
//
//	parley-load --url http://127.0.0.1:4443 --subscribers 50,100 --window 20s
//	parley-load --mode meeting --meeting 4 --rooms 1,3 --json
//	parley-load --url http://127.0.0.1:4443,http://127.0.0.1:4453,http://127.0.0.1:4463 --subscribers 300
//
// Progress goes to stderr, the table (or --json) to stdout. It only targets loopback addresses,
// unless --own-namespace says the address is in a network namespace this session made.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/parley/parley/internal/loadgen"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "parley-load:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("parley-load", flag.ContinueOnError)
	cli := loadgen.CLI{Several: true}
	cli.Register(fs, "http://127.0.0.1:4443")
	secret := fs.String("secret", "MY_SECRET", "REST secret (user OPENVIDUAPP)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, _, err := cli.Config("http", "https")
	if err != nil {
		return err
	}
	// Several URLs are the nodes of one cluster: publishers join the first, subscribers each in turn.
	var nodes []loadgen.Target
	for _, u := range cli.URLs() {
		t, err := loadgen.NewOpenVidu(loadgen.OpenViduOptions{URL: u.String(), Secret: *secret, VideoCodec: cfg.Media.VideoCodec, LoopbackOnly: !cli.OwnNS})
		if err != nil {
			return err
		}
		nodes = append(nodes, t)
	}
	target := loadgen.NewSpread(nodes...)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Execute(ctx, cfg, target, os.Stdout)
}
