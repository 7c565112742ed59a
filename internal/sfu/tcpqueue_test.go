package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/sendq"
)

// queueRun feeds tick one second at a time for a subscription over TCP: what is sent above the
// link's rate waits in the send queue and is dropped there; the receiver sees no loss (TCP) and,
// when asked, the round trip says whatever the test wants.
type queueRun struct {
	ccRun
	probes int
}

func (r *queueRun) second(srcBps, linkBps float64, rtt time.Duration) ccDecision {
	r.now = r.now.Add(time.Second)
	send := srcBps + 40e3
	if r.c.pause.Load() && !r.c.probing {
		send = 40e3 // audio only; a probe pads in place of the video: as many bytes
	}
	in := ccInput{now: r.now, reportAt: r.now.UnixNano(), rtt: rtt, videoCarry: true, queued: true}
	r.sent += uint64(send / 8)
	r.src += uint64(srcBps / 8)
	in.sent, in.src = r.sent, r.src
	in.qSent = uint64(min(send, linkBps) / 8)
	if send > linkBps {
		in.qDrop = uint64((send - linkBps) / 8 / 1200)
		in.qDelay = sendq.Delay{Frames: 10, Min: 300 * time.Millisecond, Max: 300 * time.Millisecond}
	} else {
		in.qDelay = sendq.Delay{Frames: 10, Min: 5 * time.Millisecond, Max: 40 * time.Millisecond}
	}
	d := r.c.tick(in)
	if d.probe {
		r.probes++
	}
	if d.pause {
		r.c.pause.Store(true)
		r.pauses++
	}
	if d.resume {
		r.c.pause.Store(false)
		r.resumes++
	}
	return d
}

// TestCongestionOverTCPFollowsTheQueue: over TCP nothing is lost, the send queue shows the
// bottleneck: a 150 kbit/s subscriber of a 500 kbit/s stream is paused at once, its link is probed
// with padding every other second (never with video, never asking the publisher for a keyframe),
// and once the link is freed its video is back within two seconds.
func TestCongestionOverTCPFollowsTheQueue(t *testing.T) {
	r := &queueRun{ccRun: ccRun{now: t0}}
	r.c.tick(ccInput{now: t0})
	for range 2 {
		r.second(500e3, 2e6, 20*time.Millisecond)
	}
	if r.pauses != 0 {
		t.Fatal("paused on a link that takes the stream")
	}
	r.second(500e3, 150e3, 20*time.Millisecond)
	if r.pauses != 1 {
		t.Fatal("not paused after a second of a standing queue")
	}
	for range 30 {
		r.second(500e3, 150e3, 20*time.Millisecond)
	}
	if r.resumes != 0 || r.pauses != 1 {
		t.Fatalf("%d resumes, %d pauses on a link that never took the stream", r.resumes, r.pauses)
	}
	if r.probes < 12 {
		t.Fatalf("%d probes in 30 s", r.probes)
	}
	for i := range 3 {
		r.second(500e3, 10e6, 20*time.Millisecond)
		if r.resumes == 1 {
			if i > 1 {
				t.Fatalf("video back %d s after the link was freed", i+1)
			}
			break
		}
	}
	if r.resumes != 1 {
		t.Fatal("video not back 3 s after the link was freed")
	}
	// A long round trip alone (a starved browser's late reports; TCP repairing a loss) does not
	// pause video over TCP while the queue keeps up.
	for range 5 {
		r.second(500e3, 10e6, 2*time.Second)
	}
	if r.pauses != 1 {
		t.Fatal("paused for a long round trip while the queue kept up")
	}
}

// padSink records what the subscriber's write stream got.
type padSink struct{ pkts []rtp.Header }

func (w *padSink) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	c := *h
	c.PaddingSize = h.PaddingSize
	w.pkts = append(w.pkts, c)
	if len(payload) != 0 && h.Padding {
		panic("padding with payload")
	}
	return len(payload), nil
}

func (w *padSink) Write(b []byte) (int, error) { return len(b), nil }

// TestProbePadsInPlaceOfVideo: while a paused subscription is probed, each video packet the gate
// drops goes out as padding-only packets of its size on consecutive sequence numbers, and the
// video that resumes at the next keyframe continues right after them: the subscriber sees no gap.
func TestProbePadsInPlaceOfVideo(t *testing.T) {
	tr, err := newBoundTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "s")
	if err != nil {
		t.Fatal(err)
	}
	var sink padSink
	tr.out.Store(&binding{id: "b", ssrc: 1, pt: 96, stream: &sink})
	d := &downTrack{track: tr, cc: &congestion{}, gated: true}
	pkt := func(seq uint16, ts uint32, n int) *rtp.Packet {
		return &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts}, Payload: make([]byte, n)}
	}
	d.write(pkt(10, 1, 1000), true)
	d.gate.pause.Store(true)
	d.write(pkt(11, 2, 1000), false) // dropped, nothing in its place
	d.gate.probe.Store(true)
	d.write(pkt(12, 3, 600), false) // three padding packets: 255 + 255 + 90
	d.write(pkt(13, 3, 100), false) // one
	d.gate.probe.Store(false)
	d.gate.pause.Store(false)
	d.write(pkt(14, 4, 800), true)
	d.write(pkt(15, 4, 800), false)
	want := []struct {
		seq uint16
		pad uint8
	}{{10, 0}, {11, 255}, {12, 255}, {13, 90}, {14, 100}, {15, 0}, {16, 0}}
	if len(sink.pkts) != len(want) {
		t.Fatalf("sent %d packets, want %d", len(sink.pkts), len(want))
	}
	for i, w := range want {
		h := sink.pkts[i]
		if h.SequenceNumber != w.seq || h.Padding != (w.pad != 0) || h.PaddingSize != w.pad {
			t.Fatalf("packet %d: seq %d padding %v/%d, want seq %d padding %d", i, h.SequenceNumber, h.Padding, h.PaddingSize, w.seq, w.pad)
		}
	}
	if d.padded.Load() != 4 {
		t.Fatalf("%d padding packets counted", d.padded.Load())
	}
	// A NACK for a padding packet is not answered from the video.
	if _, ok := d.gate.nackable(12); ok {
		t.Fatal("a padding packet's sequence number maps to video")
	}
	if in, ok := d.gate.nackable(15); !ok || in != 14 {
		t.Fatalf("outgoing 15 maps to %d (%v), want the publisher's 14", in, ok)
	}
}
