package sfu

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// The fan-out benchmark runs the SFU in the test process and every peer (one publisher, N
// subscribers, all pion) in a child process, so that the test process's CPU time (getrusage) is
// the server's alone, as it would be for a real deployment measured from /proc. The two talk
// JSON lines over the child's stdin and stdout.
//
//	go test -run '^$' -bench Fanout -benchtime 1x ./internal/sfu
//	SFU_BENCH_SUBS=100 SFU_BENCH_SECONDS=10 SFU_BENCH_LOAD_CPUS=1 taskset -c 0 go test ...
//
// SFU_BENCH_MEMPROFILE=<path> writes a heap profile once everyone has joined.
// SFU_BENCH_CHROMIUM_SRTP=1 gives the peers Chromium's SRTP preferences (see
// TestSRTPIsGCMWithChromiumPreferences). SFU_BENCH_PPS overrides the packet rate (video 200, audio 50). SFU_BENCH_LOAD_CPUS pins the load process (taskset -c), SFU_BENCH_CPUPROFILE=<path> writes a
// CPU profile of the measurement window to <path>.video and <path>.audio.
//
// Reported: µs of server CPU per forwarded RTP packet (the headline of issue 7), loss seen by the
// subscribers, and server memory per subscriber (heap in use and RSS growth while they joined).

const loadEnv = "SFU_BENCH_LOAD" // set in the child: "video" or "audio"

func TestMain(m *testing.M) {
	if kind := os.Getenv(loadEnv); kind != "" {
		os.Exit(runLoad(kind, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// loadMsg is one line between the benchmark and its load process.
type loadMsg struct {
	Kind     string `json:"kind"` // pub, sub, answer, ready, mark, counts, stop
	SDP      string `json:"sdp,omitempty"`
	Sent     uint64 `json:"sent,omitempty"`
	Received uint64 `json:"received,omitempty"`
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkFanout: 1 publisher → N subscribers (SFU_BENCH_SUBS, default 50), VP8-sized video
// packets (1,100 B payload, 200 packets/s) at a fixed rate over loopback through the real SFU.
func BenchmarkFanout(b *testing.B) {
	subs := envInt("SFU_BENCH_SUBS", 50)
	b.Run(fmt.Sprintf("video/subs=%d", subs), func(b *testing.B) { benchFanout(b, "video", 1, subs) })
}

// BenchmarkAudioRoom: 10 audio publishers (Opus-sized packets, 120 B every 20 ms) → N
// subscribers (SFU_BENCH_AUDIO_SUBS, default 20), each with one subscription per publisher as in
// OpenVidu: N × 10 subscriber PeerConnections.
func BenchmarkAudioRoom(b *testing.B) {
	subs := envInt("SFU_BENCH_AUDIO_SUBS", 20)
	b.Run(fmt.Sprintf("pubs=10/subs=%d", subs), func(b *testing.B) { benchFanout(b, "audio", 10, subs) })
}

func benchFanout(b *testing.B, kind string, pubs, subs int) {
	window := time.Duration(envInt("SFU_BENCH_SECONDS", 5)) * time.Second
	cfg := Config{Loopback: true}
	if ip := os.Getenv("SFU_BENCH_LISTEN"); ip != "" {
		cfg.ListenIPs = []netip.Addr{netip.MustParseAddr(ip)}
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()

	args := []string{os.Args[0], "-test.run=^$"}
	if cpus := os.Getenv("SFU_BENCH_LOAD_CPUS"); cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), loadEnv+"="+kind, "SFU_BENCH_LOAD_PUBS="+strconv.Itoa(pubs), "SFU_BENCH_LOAD_SUBS="+strconv.Itoa(subs))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	in := json.NewDecoder(stdout)
	out := json.NewEncoder(stdin)
	recv := func(want string) loadMsg {
		var m loadMsg
		if err := in.Decode(&m); err != nil || m.Kind != want {
			b.Fatalf("load process: want %q, got %+v (%v)", want, m, err)
		}
		return m
	}
	ctx := context.Background()

	var publishers []*Publisher
	for range pubs {
		m := recv("pub")
		pub, ans, err := s.Publish(ctx, PublishRequest{Offer: m.SDP, VideoCodec: CodecVP8})
		if err != nil {
			b.Fatal(err)
		}
		defer pub.Close()
		publishers = append(publishers, pub)
		_ = out.Encode(loadMsg{Kind: "answer", SDP: ans})
	}

	heap0, stack0, rss0 := memNow()
	g0 := runtime.NumGoroutine()
	var all []*Subscriber
	for range subs {
		for _, pub := range publishers {
			m := recv("sub")
			sub, ans, err := s.Subscribe(ctx, pub, SubscribeRequest{Offer: m.SDP, StreamID: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			all = append(all, sub)
			_ = out.Encode(loadMsg{Kind: "answer", SDP: ans})
		}
	}
	defer func() {
		for _, sub := range all {
			sub.Close()
		}
	}()
	recv("ready")
	heap1, stack1, rss1 := memNow()
	g1 := runtime.NumGoroutine()
	if path := os.Getenv("SFU_BENCH_MEMPROFILE"); path != "" { // what the subscribers hold
		if f, err := os.Create(path + "." + kind); err == nil {
			_ = pprof.WriteHeapProfile(f)
			_ = f.Close()
		}
		if f, err := os.Create(path + "." + kind + ".goroutines"); err == nil {
			_ = pprof.Lookup("goroutine").WriteTo(f, 1)
			_ = f.Close()
		}
	}

	// Warm up past the joins (DTLS, keyframe requests), then measure a window.
	time.Sleep(time.Second) // lets the joins' work finish before the window; not synchronisation
	_ = out.Encode(loadMsg{Kind: "mark"})
	c0 := recv("counts")
	if path := os.Getenv("SFU_BENCH_CPUPROFILE"); path != "" { // the window alone, not the joins
		f, err := os.Create(path + "." + kind)
		if err != nil {
			b.Fatal(err)
		}
		_ = pprof.StartCPUProfile(f)
		defer f.Close()
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	st0, cpu0 := s.Stats(), cpuTime()
	time.Sleep(window) // the measurement window itself
	pprof.StopCPUProfile()
	_ = out.Encode(loadMsg{Kind: "mark"})
	c1 := recv("counts")
	st1, cpu1 := s.Stats(), cpuTime()
	runtime.ReadMemStats(&ms1)
	_ = out.Encode(loadMsg{Kind: "stop"})

	fwd := st1.PacketsOut - st0.PacketsOut
	sent := c1.Sent - c0.Sent
	got := c1.Received - c0.Received
	if fwd == 0 || sent == 0 {
		b.Fatalf("nothing forwarded: sent %d, forwarded %d", sent, fwd)
	}
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(fwd), "µs-cpu/pkt")
	b.ReportMetric(float64(fwd)/window.Seconds(), "pkt/s")
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/window.Seconds()/1e4, "%cpu")
	b.ReportMetric(100*(1-float64(got)/float64(sent*uint64(subs))), "%loss") // every subscriber gets every publisher
	b.ReportMetric(float64(heap1-heap0)/float64(subs)/1024, "KiB-heap/sub")
	b.ReportMetric(float64(rss1-rss0)/float64(subs)/1024, "KiB-rss/sub")
	b.ReportMetric(float64(stack1-stack0)/float64(subs)/1024, "KiB-stack/sub")
	b.ReportMetric(float64(g1-g0)/float64(subs*pubs), "goroutines/subscription")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(fwd), "B-alloc/pkt")
	b.ReportMetric(float64(ms1.NumGC-ms0.NumGC), "GCs")
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memNow returns the heap in use after a GC, and the resident set size.
func memNow() (heap, stack, rss int64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		var size, res int64
		if _, err := fmt.Sscan(string(b), &size, &res); err == nil {
			rss = res * int64(os.Getpagesize())
		}
	}
	return int64(ms.HeapInuse), int64(ms.StackInuse), rss
}

// runLoad is the child: it publishes P tracks of kind at a fixed rate and subscribes N peers to
// each, answering marks with its counters, until told to stop.
func runLoad(kind string, stdin io.Reader, stdout io.Writer) int {
	pubs, subs := envInt("SFU_BENCH_LOAD_PUBS", 1), envInt("SFU_BENCH_LOAD_SUBS", 50)
	in := json.NewDecoder(bufio.NewReader(stdin))
	out := json.NewEncoder(stdout)
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "load:", err); return 1 }
	recvAnswer := func(pc *webrtc.PeerConnection) error {
		var m loadMsg
		if err := in.Decode(&m); err != nil {
			return err
		}
		return pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP})
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return fail(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	if os.Getenv("SFU_BENCH_CHROMIUM_SRTP") != "" {
		// Chromium's order when it is the DTLS server: AES-CM + HMAC-SHA1 before GCM.
		se.SetSRTPProtectionProfiles(dtls.SRTP_AES128_CM_HMAC_SHA1_80, dtls.SRTP_AEAD_AES_128_GCM)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	offer := func(pc *webrtc.PeerConnection) (string, error) {
		o, err := pc.CreateOffer(nil)
		if err != nil {
			return "", err
		}
		done := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(o); err != nil {
			return "", err
		}
		<-done
		return pc.LocalDescription().SDP, nil
	}

	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	payload, pps, tsStep := make([]byte, 1100), 200, uint32(90000/200)
	rtpKind := webrtc.RTPCodecTypeVideo
	if kind == "audio" {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
		payload, pps, tsStep = make([]byte, 120), 50, 960
		rtpKind = webrtc.RTPCodecTypeAudio
	}
	pps = envInt("SFU_BENCH_PPS", pps)
	tsStep = codec.ClockRate / uint32(pps)
	payload[0] = 0x10 // VP8: start of a partition; harmless for Opus
	var sent, received atomic.Uint64
	stop := make(chan struct{})
	for p := range pubs {
		pubPC, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			return fail(err)
		}
		defer pubPC.Close()
		track, _ := webrtc.NewTrackLocalStaticRTP(codec, kind, "bench")
		if _, err := pubPC.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			return fail(err)
		}
		sdp, err := offer(pubPC)
		if err != nil {
			return fail(err)
		}
		_ = out.Encode(loadMsg{Kind: "pub", SDP: sdp})
		if err := recvAnswer(pubPC); err != nil {
			return fail(err)
		}
		go func() { // a fixed packet rate, marker on every packet (one per frame)
			t := time.NewTicker(time.Second / time.Duration(pps))
			defer t.Stop()
			seq, ts := uint16(p*1000), uint32(p)*123456
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				seq++
				ts += tsStep
				if track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: true}, Payload: payload}) == nil {
					sent.Add(1)
				}
			}
		}()
	}
	receiving := make([]atomic.Bool, subs*pubs)
	for i := range subs * pubs {
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			return fail(err)
		}
		defer pc.Close()
		if _, err := pc.AddTransceiverFromKind(rtpKind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fail(err)
		}
		pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			buf := make([]byte, 1500)
			for {
				if _, _, err := tr.Read(buf); err != nil {
					return
				}
				receiving[i].Store(true)
				received.Add(1)
			}
		})
		sdp, err := offer(pc)
		if err != nil {
			return fail(err)
		}
		_ = out.Encode(loadMsg{Kind: "sub", SDP: sdp})
		if err := recvAnswer(pc); err != nil {
			return fail(err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for i := range receiving {
		for !receiving[i].Load() {
			if time.Now().After(deadline) {
				return fail(fmt.Errorf("subscriber %d never received media", i))
			}
			time.Sleep(10 * time.Millisecond) // polling a condition
		}
	}
	_ = out.Encode(loadMsg{Kind: "ready"})
	for {
		var m loadMsg
		if err := in.Decode(&m); err != nil || m.Kind == "stop" {
			close(stop)
			return 0
		}
		_ = out.Encode(loadMsg{Kind: "counts", Sent: sent.Load(), Received: received.Load()})
	}
}
