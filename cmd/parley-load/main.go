// Command parley-load is Parley's load generator: pion participants that join an OpenVidu 2
// server (Parley or openvidu-server) exactly as openvidu-browser does, publish real encoded media
// and subscribe, then report per step what subscribers received and what the server spent —
// microseconds of server CPU per delivered RTP packet first.
//
//	parley-load --url http://127.0.0.1:4443 --subscribers 50,100 --window 20s
//	parley-load --mode meeting --meeting 4 --rooms 1,3 --json
//
// Progress goes to stderr, the table (or --json) to stdout. It only targets loopback addresses,
// unless --own-namespace says the address is in a network namespace this session made.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

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
	serverURL := fs.String("url", "http://127.0.0.1:4443", "server base URL")
	secret := fs.String("secret", "MY_SECRET", "REST secret (user OPENVIDUAPP)")
	ownNS := fs.Bool("own-namespace", false, "allow a non-loopback address: it is in a network namespace of our own")
	mode := fs.String("mode", "fanout", "fanout (publishers → subscribers) or meeting (everyone publishes and subscribes)")
	rooms := fs.String("rooms", "1", "fanout: rooms, each with the same load; meeting: rooms per step, comma-separated (e.g. 1,2,4)")
	vpubs := fs.Int("video-publishers", 1, "fanout: video-only publishers per room")
	apubs := fs.Int("audio-publishers", 1, "fanout: audio-only publishers per room")
	avpubs := fs.Int("av-publishers", 0, "fanout: audio+video publishers per room")
	subs := fs.String("subscribers", "10", "fanout: subscribers per room per step, comma-separated (e.g. 50,100,200)")
	meeting := fs.Int("meeting", 4, "meeting: participants per room")
	codec := fs.String("codec", "VP8", "video codec: VP8 or H264")
	res := fs.String("resolution", "640x480", "video WIDTHxHEIGHT")
	fps := fs.Int("fps", 30, "video frames per second")
	vkbps := fs.Int("video-kbps", 800, "video bitrate")
	akbps := fs.Int("audio-kbps", 32, "audio bitrate")
	gop := fs.Int("gop", 0, "frames between keyframes (default: one second)")
	ramp := fs.Float64("ramp", 10, "joins per second")
	warmup := fs.Duration("warmup", 5*time.Second, "settling time of each step before its measurement")
	window := fs.Duration("window", 10*time.Second, "measurement window of each step")
	duration := fs.Duration("duration", 10*time.Minute, "hard limit on the whole run")
	maxp := fs.Int("max-participants", 2000, "refuse scenarios with more participants")
	pid := fs.Int("server-pid", 0, "server process to measure (default: whoever listens on the URL's port, when local)")
	mediaDir := fs.String("media-dir", "", "cache of the generated media files (default: the user cache dir)")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := loadgen.CheckTarget(*serverURL, *ownNS)
	if err != nil {
		return err
	}
	w, h, ok := strings.Cut(*res, "x")
	width, err1 := strconv.Atoi(w)
	height, err2 := strconv.Atoi(h)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("--resolution %q: want WIDTHxHEIGHT", *res)
	}
	cfg := loadgen.Config{Mode: *mode, VideoPublishers: *vpubs, AudioPublishers: *apubs, AVPublishers: *avpubs, MeetingSize: *meeting,
		Ramp: *ramp, Warmup: *warmup, Window: *window, MaxParticipants: *maxp, ServerPID: *pid,
		Media: loadgen.MediaSpec{Dir: *mediaDir, VideoCodec: *codec, Width: width, Height: height, FPS: *fps, VideoKbps: *vkbps, AudioKbps: *akbps, GOP: *gop}}
	roomSteps, err := ints(*rooms)
	if err != nil {
		return fmt.Errorf("--rooms: %w", err)
	}
	if cfg.Mode == "meeting" {
		cfg.Steps = roomSteps
	} else {
		if len(roomSteps) != 1 {
			return errors.New("--rooms: fanout takes one number")
		}
		cfg.Rooms = roomSteps[0]
		if cfg.Steps, err = ints(*subs); err != nil {
			return fmt.Errorf("--subscribers: %w", err)
		}
	}
	if cfg.ServerPID == 0 && !*ownNS {
		port, _ := strconv.Atoi(u.Port())
		if p, err := loadgen.FindListener(port); err == nil {
			cfg.ServerPID = p
		} else {
			fmt.Fprintf(os.Stderr, "server CPU not measured: %v\n", err)
		}
	}
	target, err := loadgen.NewOpenVidu(loadgen.OpenViduOptions{URL: u.String(), Secret: *secret, VideoCodec: *codec, LoopbackOnly: !*ownNS})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	rep, err := loadgen.Run(ctx, cfg, target, os.Stderr)
	if rep != nil && len(rep.Rows) > 0 {
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			if e := enc.Encode(rep); e != nil {
				return e
			}
		} else {
			rep.WriteTable(os.Stdout)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stopped at --duration %s", *duration)
	}
	return err
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q: want numbers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}
