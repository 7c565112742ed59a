package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CLI holds the command-line flags parley-load and bench/livekit-load share, so both drive the
// same load shape from the same words.
type CLI struct {
	// URL is the server, or with Several the servers, comma-separated.
	URL string
	// Several, set before Config, lets URL name several servers (the nodes of one cluster).
	Several    bool
	urls       []*url.URL
	OwnNS      bool
	Duration   time.Duration
	JSON       bool
	mode       string
	rooms      string
	subs       string
	res        string
	cfg        Config
	serverPIDs string
}

// Register defines the shared flags on fs; defaultURL is the target's usual address.
func (c *CLI) Register(fs *flag.FlagSet, defaultURL string) {
	fs.StringVar(&c.URL, "url", defaultURL, "server URL (parley-load: several nodes of one cluster, comma-separated: publishers join the first, subscribers each in turn)")
	fs.BoolVar(&c.OwnNS, "own-namespace", false, "allow a non-loopback address: it is in a network namespace of our own")
	fs.StringVar(&c.mode, "mode", "fanout", "fanout (publishers → subscribers) or meeting (everyone publishes and subscribes)")
	fs.StringVar(&c.rooms, "rooms", "1", "fanout: rooms, each with the same load; meeting: rooms per step, comma-separated (e.g. 1,2,4)")
	fs.IntVar(&c.cfg.VideoPublishers, "video-publishers", 1, "fanout: video-only publishers per room")
	fs.IntVar(&c.cfg.AudioPublishers, "audio-publishers", 1, "fanout: audio-only publishers per room")
	fs.IntVar(&c.cfg.AVPublishers, "av-publishers", 0, "fanout: audio+video publishers per room")
	fs.StringVar(&c.subs, "subscribers", "10", "fanout: subscribers per room per step, comma-separated (e.g. 50,100,200)")
	fs.IntVar(&c.cfg.MeetingSize, "meeting", 4, "meeting: participants per room")
	fs.StringVar(&c.cfg.Media.VideoCodec, "codec", "VP8", "video codec: VP8 or H264")
	fs.StringVar(&c.res, "resolution", "640x480", "video WIDTHxHEIGHT")
	fs.IntVar(&c.cfg.Media.FPS, "fps", 30, "video frames per second")
	fs.IntVar(&c.cfg.Media.VideoKbps, "video-kbps", 800, "video bitrate")
	fs.IntVar(&c.cfg.Media.AudioKbps, "audio-kbps", 32, "audio bitrate")
	fs.IntVar(&c.cfg.Media.GOP, "gop", 0, "frames between keyframes (default: one second)")
	fs.StringVar(&c.cfg.Media.Dir, "media-dir", "", "cache of the generated media files (default: the user cache dir)")
	fs.Float64Var(&c.cfg.Ramp, "ramp", 10, "joins per second")
	fs.DurationVar(&c.cfg.Warmup, "warmup", 5*time.Second, "settling time of each step before its measurement (up to 3x while tracks are still starting)")
	fs.DurationVar(&c.cfg.Window, "window", 10*time.Second, "measurement window of each step")
	fs.DurationVar(&c.Duration, "duration", 10*time.Minute, "hard limit on the whole run")
	fs.IntVar(&c.cfg.MaxParticipants, "max-participants", 2000, "refuse scenarios with more participants")
	fs.StringVar(&c.serverPIDs, "server-pid", "", "server processes to measure, comma-separated (default: whoever listens on each URL's TCP port, when local)")
	fs.StringVar(&c.cfg.RoomPrefix, "room-prefix", "", "name prefix of the rooms the run creates (default: load<time>)")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON instead of a table")
}

// Config checks the target address and returns the scenario. schemes are the URL schemes the
// target takes.
func (c *CLI) Config(schemes ...string) (Config, *url.URL, error) {
	raws := strings.Split(c.URL, ",")
	if len(raws) > 1 && !c.Several {
		return Config{}, nil, fmt.Errorf("--url %q: this target takes one server", c.URL)
	}
	c.urls = nil
	for _, raw := range raws {
		u, err := CheckTarget(strings.TrimSpace(raw), c.OwnNS, schemes...)
		if err != nil {
			return Config{}, nil, err
		}
		c.urls = append(c.urls, u)
	}
	u := c.urls[0]
	cfg := c.cfg
	cfg.Mode = c.mode
	if c.serverPIDs != "" {
		pids, err := ints(c.serverPIDs)
		if err != nil {
			return Config{}, nil, fmt.Errorf("--server-pid: %w", err)
		}
		cfg.ServerPIDs = pids
	}
	w, h, ok := strings.Cut(c.res, "x")
	var err1, err2 error
	cfg.Media.Width, err1 = strconv.Atoi(w)
	cfg.Media.Height, err2 = strconv.Atoi(h)
	if !ok || err1 != nil || err2 != nil {
		return Config{}, nil, fmt.Errorf("--resolution %q: want WIDTHxHEIGHT", c.res)
	}
	roomSteps, err := ints(c.rooms)
	if err != nil {
		return Config{}, nil, fmt.Errorf("--rooms: %w", err)
	}
	if cfg.Mode == "meeting" {
		cfg.Steps = roomSteps
	} else {
		if len(roomSteps) != 1 {
			return Config{}, nil, errors.New("--rooms: fanout takes one number")
		}
		cfg.Rooms = roomSteps[0]
		if cfg.Steps, err = ints(c.subs); err != nil {
			return Config{}, nil, fmt.Errorf("--subscribers: %w", err)
		}
	}
	if len(cfg.ServerPIDs) == 0 && !c.OwnNS {
		for _, u := range c.urls {
			port, _ := strconv.Atoi(u.Port())
			p, err := FindListener(port)
			if err != nil {
				fmt.Fprintf(os.Stderr, "server CPU not measured: %v\n", err)
				cfg.ServerPIDs = nil
				break
			}
			if !slices.Contains(cfg.ServerPIDs, p) {
				cfg.ServerPIDs = append(cfg.ServerPIDs, p)
			}
		}
	}
	return cfg, u, cfg.Validate()
}

// URLs are the servers Config checked, in the order given.
func (c *CLI) URLs() []*url.URL { return c.urls }

// Execute runs cfg against target within the --duration bound and prints the report (table or
// JSON) to out, progress to stderr.
func (c *CLI) Execute(ctx context.Context, cfg Config, target Target, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	rep, err := Run(ctx, cfg, target, os.Stderr)
	if rep != nil && len(rep.Rows) > 0 {
		if c.JSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			if e := enc.Encode(rep); e != nil {
				return e
			}
		} else {
			rep.WriteTable(out)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stopped at --duration %s", c.Duration)
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
