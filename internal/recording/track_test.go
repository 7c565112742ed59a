package recording

import (
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/parley/parley/internal/recording/testmedia"
)

func newTestWriter(t *testing.T, path string) *streamWriter {
	t.Helper()
	return startTestWriter(t, path, nil)
}

// newClockedTestWriter is newTestWriter with a test clock: packets arrive at their media time.
func newClockedTestWriter(t *testing.T, path string) *streamWriter {
	t.Helper()
	return startTestWriter(t, path, new(atomic.Int64))
}

func startTestWriter(t *testing.T, path string, clock *atomic.Int64) *streamWriter {
	t.Helper()
	w, err := newStreamWriter(path, trackSpec{audio: true, video: true, videoCodec: "VP8", width: 320, height: 240}, createSyncFile)
	if err != nil {
		t.Fatal(err)
	}
	w.testClock = clock
	go w.run()
	return w
}

// TestWriterVP8Opus writes real VP8 and Opus through the taps and has ffprobe decode the file.
func TestWriterVP8Opus(t *testing.T) {
	m := makeMedia(t, 3)
	path := filepath.Join(t.TempDir(), "str_CAM_test.webm")
	w := newTestWriter(t, path)
	m.feed(w, 0, 3*time.Second)
	w.close()
	if w.err != nil {
		t.Fatal(w.err)
	}
	if d := w.drops.Load(); d != 0 {
		t.Errorf("%d packets dropped", d)
	}
	p := ffprobe(t, path)
	t.Logf("probe: %+v", p)
	vc, vf := p.Stream("video")
	ac, af := p.Stream("audio")
	if vc != "vp8" || ac != "opus" {
		t.Fatalf("codecs %q/%q, want vp8/opus: %+v", vc, ac, p)
	}
	if vf < 85 || af < 140 {
		t.Errorf("decoded %d video and %d audio frames, want ~90 and ~150", vf, af)
	}
	if d := p.Duration(); math.IsNaN(d) || math.Abs(d-3) > 0.3 {
		t.Errorf("duration %v s, want 3 ± 0.3", p.Format.Duration)
	}
}

// TestWriterCutShortIsReadable copies the file while it is being written, as a kill -9 would leave
// it, cut inside a block, and checks ffprobe still decodes what was flushed.
func TestWriterCutShortIsReadable(t *testing.T) {
	m := makeMedia(t, 3)
	dir := t.TempDir()
	path := filepath.Join(dir, "live.webm")
	w := newTestWriter(t, path)
	defer w.close()
	m.feed(w, 0, 3*time.Second)
	// The writer hands its buffer to the kernel and updates the Duration every second: copy the
	// file as it is on disk until a copy shows over a second of decodable media.
	cut := filepath.Join(dir, "cut.webm")
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if len(data) > 1000 {
			if err := os.WriteFile(cut, data[:len(data)-333], 0o644); err != nil {
				t.Fatal(err)
			}
			p := ffprobe(t, cut)
			vc, vf := p.Stream("video")
			ac, af := p.Stream("audio")
			if vc == "vp8" && ac == "opus" && vf >= 30 && af >= 50 && p.Duration() >= 1 {
				t.Logf("probe of the cut file: %+v", p)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("cut file: video %s %d frames, audio %s %d frames, duration %s; want over a second of each", vc, vf, ac, af, p.Format.Duration)
			}
		}
		time.Sleep(100 * time.Millisecond) // polling the file, not synchronising on time
	}
}

// TestWriterSequenceJump: a sequence number jump within one source (a sender restarting its
// counter) restarts the sample builders instead of stalling them; the media after it is kept.
func TestWriterSequenceJump(t *testing.T) {
	m := makeMedia(t, 4)
	path := filepath.Join(t.TempDir(), "jump.webm")
	w := newClockedTestWriter(t, path)
	m.feed(w, 0, 2*time.Second)
	jumped := m.mapped(func(c *rtp.Packet) { c.SequenceNumber += 30000 }, func(c *rtp.Packet) { c.SequenceNumber -= 20000 })
	jumped.feed(w, 2*time.Second, 4*time.Second)
	w.close()
	p := ffprobe(t, path)
	_, vf := p.Stream("video")
	_, af := p.Stream("audio")
	if d := p.Duration(); d < 3.5 || vf < 80 || af < 180 {
		t.Fatalf("after a sequence jump: %.2f s, %d video and %d audio frames, want about 4 s, 120 and 200", d, vf, af)
	}
}

// TestWriterFollowsANewSource: a publisher that renegotiates sends from a new SSRC with new
// sequence numbers and timestamps; the file goes on where it was instead of jumping hours.
func TestWriterFollowsANewSource(t *testing.T) {
	m := makeMedia(t, 4)
	path := filepath.Join(t.TempDir(), "renegotiated.webm")
	w := newClockedTestWriter(t, path)
	m.feed(w, 0, 2*time.Second)
	// The same media from 2 s on, as a new source: other SSRCs, sequence numbers and clock bases.
	shift := func(seq uint16, ts uint32) func(*rtp.Packet) {
		return func(c *rtp.Packet) {
			c.SSRC, c.SequenceNumber, c.Timestamp = c.SSRC+7, c.SequenceNumber+seq, c.Timestamp+ts
		}
	}
	moved := m.mapped(shift(20000, 0x7000_0000), shift(30000, 0x9000_0000))
	moved.feed(w, 2*time.Second, 4*time.Second)
	w.close()
	if w.err != nil {
		t.Fatal(w.err)
	}
	p := ffprobe(t, path)
	t.Logf("probe: %+v", p)
	_, vf := p.Stream("video")
	_, af := p.Stream("audio")
	if d := p.Duration(); d < 3 || d > 5 || vf < 80 || af < 150 {
		t.Fatalf("after a new source: %.2f s, %d video and %d audio frames, want about 4 s, 120 and 200", d, vf, af)
	}
}

// TestWriterH264 records H.264 (and Opus) into Matroska: the header waits for the first keyframe's
// SPS and PPS, the audio before it is kept.
func TestWriterH264(t *testing.T) {
	m := makeMedia(t, 3)
	video, err := testmedia.MakeH264(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	m.Video = video
	path := filepath.Join(t.TempDir(), "str_CAM_h264.mkv")
	w, err := newStreamWriter(path, trackSpec{audio: true, video: true, videoCodec: "H264", width: 320, height: 240}, createSyncFile)
	if err != nil {
		t.Fatal(err)
	}
	w.testClock = new(atomic.Int64)
	go w.run()
	// The first half second of video is lost, as if the recording began between keyframes.
	vt, at := &tap{w: w, kind: kindVideo}, &tap{w: w, kind: kindAudio}
	skip := testMedia{m.Media}
	skip.Video = append(make([][]*rtp.Packet, 0, len(m.Video)), m.Video...)
	for i := range 15 {
		skip.Video[i] = nil
	}
	skip.feedTaps(vt, at, w, 0, 3*time.Second)
	w.close()
	if w.err != nil {
		t.Fatal(w.err)
	}
	p := ffprobe(t, path)
	t.Logf("probe: %+v", p)
	vc, vf := p.Stream("video")
	ac, af := p.Stream("audio")
	if vc != "h264" || ac != "opus" || vf < 55 || af < 140 {
		t.Fatalf("h264 file: video %s %d frames, audio %s %d frames; want about 60 and 150", vc, vf, ac, af)
	}
}

func TestWriterVP9(t *testing.T) {
	m := makeMedia(t, 2)
	vp9, err := testmedia.MakeWith(t.TempDir(), 2, "VP9")
	if err != nil {
		t.Fatal(err)
	}
	m.Video = vp9.Video
	path := filepath.Join(t.TempDir(), "vp9.webm")
	w, err := newStreamWriter(path, trackSpec{audio: true, video: true, videoCodec: "VP9", width: 320, height: 240}, createSyncFile)
	if err != nil {
		t.Fatal(err)
	}
	w.testClock = new(atomic.Int64)
	go w.run()
	m.feed(w, 0, 2*time.Second)
	w.close()
	p := ffprobe(t, path)
	t.Logf("probe: %+v", p)
	if vc, vf := p.Stream("video"); vc != "vp9" || vf < 55 {
		t.Fatalf("vp9 file: %+v", p)
	}
}

// TestWriterPaddingIsNoLoss: a sender probing its link sends padding-only packets between frames
// on the video's SSRC (Chrome's low simulcast layer while the top one is off). They are not a
// loss: every frame is written and no keyframe is asked for. Counted as dropped packets they made
// the writer wait for a keyframe after each burst, and the recording's picture went dark until
// one came (the e2e COMPOSED late-joiner test's dark tile). One burst comes before the last packet
// of the frame it follows (reordered), which must keep its place.
func TestWriterPaddingIsNoLoss(t *testing.T) {
	m := makeMedia(t, 3)
	padded := m.mapped(func(*rtp.Packet) {}, func(*rtp.Packet) {})
	want := min(len(m.Video), int(3*time.Second/testmedia.FrameInterval))
	var shift uint16
	bursts := 0
	for i, f := range padded.Video {
		for _, p := range f {
			p.SequenceNumber += shift
		}
		if i%5 != 4 || i >= want {
			continue
		}
		last := f[len(f)-1]
		var pads []*rtp.Packet
		for k := range 3 {
			pads = append(pads, &rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 255, PayloadType: last.PayloadType,
				SSRC: last.SSRC, Timestamp: last.Timestamp, SequenceNumber: last.SequenceNumber + 1 + uint16(k)}})
		}
		if bursts++; bursts == 3 {
			padded.Video[i] = append(append(f[:len(f)-1:len(f)-1], pads...), last) // the padding overtook the frame's end
		} else {
			padded.Video[i] = append(f, pads...)
		}
		shift += 3
	}
	write := func(m testMedia, name string) (frames int, asked int64) {
		path := filepath.Join(t.TempDir(), name)
		w, err := newStreamWriter(path, trackSpec{audio: true, video: true, videoCodec: "VP8", width: 320, height: 240}, createSyncFile)
		if err != nil {
			t.Fatal(err)
		}
		w.testClock = new(atomic.Int64)
		var n atomic.Int64
		w.pli = func() { n.Add(1) }
		go w.run()
		m.feed(w, 0, 3*time.Second)
		w.close()
		if w.err != nil {
			t.Fatal(w.err)
		}
		_, frames = ffprobe(t, path).Stream("video")
		return frames, n.Load()
	}
	plain, _ := write(m, "plain.webm")
	vf, n := write(padded, "padded.webm")
	if plain < want-1 || vf != plain {
		t.Errorf("%d video frames decoded with %d bursts of padding between them, %d without; %d sent", vf, bursts, plain, want)
	}
	if n != 1 {
		t.Errorf("%d keyframe requests; want only the one at the start", n)
	}
}
