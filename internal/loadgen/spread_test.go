package loadgen

import (
	"context"
	"flag"
	"slices"
	"testing"

	"github.com/pion/webrtc/v4"
)

// countingTarget counts the publishers and subscribers that join it.
type countingTarget struct {
	name       string
	pubs, subs int
}

func (c *countingTarget) Name() string { return c.name }
func (c *countingTarget) Join(_ context.Context, _, _ string, pub []*webrtc.TrackLocalStaticSample, _ bool, _ func(RemoteTrack)) (Participant, error) {
	if len(pub) > 0 {
		c.pubs++
	} else {
		c.subs++
	}
	return nil, nil
}
func (c *countingTarget) Feedback() (uint64, uint64) { return 1, 2 }
func (c *countingTarget) Info() string               { return c.name }

// TestSpreadOverNodes: publishers join the first node, subscribers every node in turn, and the
// feedback counts add up.
func TestSpreadOverNodes(t *testing.T) {
	t.Parallel()
	a, b, c := &countingTarget{name: "a"}, &countingTarget{name: "b"}, &countingTarget{name: "c"}
	s := NewSpread(a, b, c)
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "pub")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Join(context.Background(), "room", "pub", []*webrtc.TrackLocalStaticSample{track}, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 7 {
		if _, err := s.Join(context.Background(), "room", "sub", nil, true, nil); err != nil {
			t.Fatal(err)
		}
	}
	got := [][2]int{{a.pubs, a.subs}, {b.pubs, b.subs}, {c.pubs, c.subs}}
	if want := [][2]int{{2, 3}, {0, 2}, {0, 2}}; !slices.Equal(got, want) {
		t.Fatalf("publishers and subscribers per node: %v, want %v", got, want)
	}
	if n, p := s.Feedback(); n != 3 || p != 6 {
		t.Fatalf("feedback %d NACKs %d PLIs, want 3 and 6", n, p)
	}
}

// TestCLISeveralURLs: --url takes several servers only where the target can spread over them;
// --server-pid takes one process per node.
func TestCLISeveralURLs(t *testing.T) {
	t.Parallel()
	parse := func(several bool, args ...string) (*CLI, Config, error) {
		c := &CLI{Several: several}
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		c.Register(fs, "http://127.0.0.1:4443")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := c.Config("http", "https")
		return c, cfg, err
	}
	urls := "http://127.0.0.1:4443, http://127.0.0.1:4453,http://localhost:4463"
	if _, _, err := parse(false, "--url", urls, "--server-pid", "11"); err == nil {
		t.Fatal("several URLs accepted by a target that takes one")
	}
	c, cfg, err := parse(true, "--url", urls, "--server-pid", "11,12,13")
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, u := range c.URLs() {
		hosts = append(hosts, u.Host)
	}
	if want := []string{"127.0.0.1:4443", "127.0.0.1:4453", "localhost:4463"}; !slices.Equal(hosts, want) {
		t.Fatalf("URLs %v, want %v", hosts, want)
	}
	if !slices.Equal(cfg.ServerPIDs, []int{11, 12, 13}) {
		t.Fatalf("server pids %v", cfg.ServerPIDs)
	}
	if _, _, err := parse(true, "--url", "http://127.0.0.1:4443,http://192.0.2.1:4443", "--server-pid", "11"); err == nil {
		t.Fatal("a node off loopback accepted")
	}
}
