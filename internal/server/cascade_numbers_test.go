package server

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TestCascadeNumbers measures what cascading costs (bench/RESULTS.md): the time from
// receiveVideoFrom to a subscriber's first video packet (which the SFU passes from a keyframe on,
// so a keyframe request travelled to the publisher and its keyframe back) for a subscriber on the
// publisher's node, the first one on another node (the pull and the link's setup included) and a
// second one there; and the bytes that cross between the nodes against what the publisher sends,
// with three subscribers on the other node. A measurement, not a check: it runs only with
// PARLEY_CASCADE_RUNS set (the number of runs; bench/cascade.sh).
func TestCascadeNumbers(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("PARLEY_CASCADE_RUNS"))
	if runs <= 0 {
		t.Skip("a measurement: set PARLEY_CASCADE_RUNS")
	}
	srvs, bases := startClusterServers(t, "node-a", "node-b")
	a, b := bases[0], bases[1]
	var same, firstRemote, secondRemote []time.Duration
	var ratio float64
	for run := range runs {
		sid := fmt.Sprintf("numbers-%d", run)
		if st, _ := rest(t, "POST", a+"/openvidu/api/sessions", map[string]any{"customSessionId": sid}); st != 200 {
			t.Fatalf("create: %d", st)
		}
		join := func(base string) *rpcClient {
			_, c := rest(t, "POST", a+"/openvidu/api/sessions/"+sid+"/connection", map[string]any{"role": "PUBLISHER"})
			r := dial(t, base)
			r.result("joinRoom", map[string]any{"token": c["token"], "session": sid, "platform": "test", "metadata": "{}"})
			return r
		}
		ctx, stop := context.WithCancel(context.Background())
		streamID := publishCamera(ctx, t, join(a))
		// Pacing, not synchronisation: the keyframe the SFU asked for at publish time has gone, so
		// each measurement below waits for a keyframe of its own request.
		time.Sleep(500 * time.Millisecond)
		same = append(same, firstVideo(t, join(a), streamID))
		firstRemote = append(firstRemote, firstVideo(t, join(b), streamID))
		secondRemote = append(secondRemote, firstVideo(t, join(b), streamID))
		if run == runs-1 {
			firstVideo(t, join(b), streamID) // a third on B
			time.Sleep(time.Second)          // let the third settle
			in0, cross0 := srvs[0].media.Stats().BytesIn, srvs[1].media.Stats().BytesIn
			time.Sleep(5 * time.Second) // the window measured
			in1, cross1 := srvs[0].media.Stats().BytesIn, srvs[1].media.Stats().BytesIn
			ratio = float64(cross1-cross0) / float64(in1-in0)
			st := srvs[0].links.Stats()
			t.Logf("A's links with 3 subscribers on B: %+v", st)
		}
		stop()
		if st, _ := rest(t, "DELETE", a+"/openvidu/api/sessions/"+sid, nil); st != 204 {
			t.Fatalf("close: %d", st)
		}
	}
	t.Logf("first video after receiveVideoFrom, median of %d (min–max): same node %v (%v–%v); other node, first subscriber there %v (%v–%v); other node, second %v (%v–%v)",
		runs, median(same), slices.Min(same), slices.Max(same), median(firstRemote), slices.Min(firstRemote), slices.Max(firstRemote),
		median(secondRemote), slices.Min(secondRemote), slices.Max(secondRemote))
	t.Logf("bytes received over the link on B / bytes the publisher sent A, 3 subscribers on B, 5 s: %.3f", ratio)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// publishCamera publishes 30 fps of 1,000-byte VP8 frames and 50 Opus packets a second, as a
// camera whose encoder sends a keyframe only when asked (PLI), and returns the stream id.
func publishCamera(ctx context.Context, t *testing.T, c *rpcClient) string {
	t.Helper()
	p, video, audio := newAVPublisher(t)
	r := c.result("publishVideo", map[string]any{"sdpOffer": p.offer(t), "hasAudio": true, "hasVideo": true,
		"audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": `{"width":640,"height":480}`})
	p.answer(t, r["sdpAnswer"].(string))
	var key atomic.Bool
	key.Store(true)
	for _, tr := range p.pc.GetTransceivers() {
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			go func(snd *webrtc.RTPSender) {
				for {
					pkts, _, err := snd.ReadRTCP()
					if err != nil {
						return
					}
					for _, p := range pkts {
						if _, ok := p.(*rtcp.PictureLossIndication); ok {
							key.Store(true)
						}
					}
				}
			}(tr.Sender())
		}
	}
	go func() {
		tick := time.NewTicker(time.Second / 50)
		defer tick.Stop()
		payload := make([]byte, 1000)
		var vseq, aseq uint16
		for i := uint32(0); ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			aseq++
			_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: aseq, Timestamp: i * 960}, Payload: payload[:80]})
			if i%5 == 0 || i%5 == 2 || i%5 == 4 { // 30 of 50 ticks
				vseq++
				payload[0], payload[1] = 0x10, 0x01 // start of partition 0, inter frame
				if key.Swap(false) {
					payload[1] = 0x00 // key frame
				}
				_ = video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: vseq, Timestamp: i * 1800, Marker: true}, Payload: payload})
			}
		}
	}()
	return r["id"].(string)
}

// firstVideo subscribes c to stream sid and returns the time from the request to the first video
// packet.
func firstVideo(t *testing.T, c *rpcClient, sid string) time.Duration {
	t.Helper()
	p := recvPeer(t)
	var once sync.Once
	got := make(chan time.Time, 1)
	p.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				once.Do(func() { got <- time.Now() })
			}
		}
	})
	offer := p.offer(t)
	start := time.Now()
	r := c.result("receiveVideoFrom", map[string]any{"sender": sid, "sdpOffer": offer})
	p.answer(t, r["sdpAnswer"].(string))
	select {
	case at := <-got:
		return at.Sub(start)
	case <-time.After(20 * time.Second):
		t.Fatal("no video within 20 s")
		return 0
	}
}
