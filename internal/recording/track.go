package recording

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// queueLen bounds the packets waiting for a track writer (about 2 s of 1 Mbit/s video with its
// audio). A writer that falls further behind drops packets and counts them: the forwarding
// goroutine that feeds it must never wait for a disk.
const queueLen = 1024

// maxClockDrift is how far a frame's RTP time may be from its arrival before the RTP clock is taken
// to have jumped: well above jitter and the sample builders' delay, well below any real gap's
// error.
const maxClockDrift = 5 * time.Second

const (
	kindAudio = iota
	kindVideo
)

// packet is one RTP packet on its way from a tap to its writer, in a pooled buffer.
type packet struct {
	kind uint8
	at   time.Duration // arrival, since the writer started (monotonic clock)
	n    int
	buf  *[1500]byte
}

var bufPool = sync.Pool{New: func() any { return new([1500]byte) }}

// tap is what the SFU calls for every packet of one kind of a recorded stream.
type tap struct {
	w    *streamWriter
	kind uint8
}

// WriteRTP copies p into a pooled buffer and queues it; it never blocks and never allocates.
func (t *tap) WriteRTP(p *rtp.Packet) {
	w := t.w
	if w.closing.Load() {
		return
	}
	b := bufPool.Get().(*[1500]byte)
	n, err := p.MarshalTo(b[:])
	if err != nil {
		bufPool.Put(b)
		w.drops.Add(1)
		return
	}
	select {
	case w.in <- packet{kind: t.kind, at: w.now(), n: n, buf: b}:
	default:
		bufPool.Put(b)
		w.drops.Add(1)
	}
}

// now is a packet's arrival time, since the writer started (monotonic clock).
func (w *streamWriter) now() time.Duration {
	if c := w.testClock; c != nil {
		return time.Duration(c.Load())
	}
	return time.Since(w.start)
}

// trackSpec says what one stream's file holds.
type trackSpec struct {
	audio      bool
	video      bool
	videoCodec string // VP8 or VP9
	width      int
	height     int
}

// kindState turns one kind's RTP into timed frames.
type kindState struct {
	sb       *samplebuilder.SampleBuilder
	clock    int64
	out      webm.BlockWriteCloser
	codec    string
	newSB    func() *samplebuilder.SampleBuilder
	seen     bool          // a packet arrived: firstAt and ref are set
	ssrc     uint32        // the RTP source the clock follows
	firstAt  time.Duration // arrival of the first packet of ssrc
	lastAt   time.Duration // arrival of the latest packet
	ref      uint32        // RTP timestamp the unwrapped count is relative to
	unwrap   int64         // ticks from the first packet's timestamp to ref
	needKey  bool          // video: wait for a keyframe before writing
	lastMs   int64
	frames   uint64
	anyFrame bool
}

// streamWriter writes one stream's audio and video to one WebM file, on its own goroutine.
type streamWriter struct {
	path    string
	start   time.Time // when the writer was created; frame times count from here
	in      chan packet
	stop    chan struct{}
	done    chan struct{}
	closing atomic.Bool
	drops   atomic.Uint64

	file   *syncFile
	kinds  [2]*kindState
	onFail func(error)           // told once, from the writer goroutine, when the file cannot be written
	pli    func()                // asks the publisher for a keyframe
	fatal  atomic.Pointer[error] // a muxer error
	// testClock, when set, is the arrival time of packets instead of the real clock.
	testClock *atomic.Int64

	// Set by the goroutine, read after done is closed.
	err            error
	firstMs, endMs int64 // media times written, ms since start; firstMs < 0 until a frame is written
}

func opusHead() []byte {
	h := make([]byte, 19)
	copy(h, "OpusHead")
	h[8] = 1 // version
	h[9] = 2 // channels
	binary.LittleEndian.PutUint16(h[10:], 0)
	binary.LittleEndian.PutUint32(h[12:], 48000)
	return h
}

// newStreamWriter creates the file and its muxer; the caller attaches taps and then calls run.
func newStreamWriter(path string, spec trackSpec, newFile func(string) (*syncFile, error)) (*streamWriter, error) {
	if !spec.audio && !spec.video {
		return nil, errors.New("nothing to record")
	}
	f, err := newFile(path)
	if err != nil {
		return nil, err
	}
	w := &streamWriter{path: path, start: time.Now(), in: make(chan packet, queueLen), stop: make(chan struct{}),
		done: make(chan struct{}), file: f, firstMs: -1}
	var tracks []webm.TrackEntry
	main := uint64(0)
	if spec.video {
		codecID, dep := "V_VP8", rtp.Depacketizer(&codecs.VP8Packet{})
		if spec.videoCodec == "VP9" {
			codecID, dep = "V_VP9", &codecs.VP9Packet{}
		}
		n := uint64(len(tracks) + 1)
		tracks = append(tracks, webm.TrackEntry{Name: "Video", TrackNumber: n, TrackUID: n, CodecID: codecID, TrackType: 1,
			Video: &webm.Video{PixelWidth: uint64(spec.width), PixelHeight: uint64(spec.height)}})
		main = n
		// maxLate in packets: a keyframe of 1 Mbit/s video is ~100 packets; 512 tolerates reordering
		// without holding more than a fraction of a second in normal flow.
		w.kinds[kindVideo] = &kindState{newSB: func() *samplebuilder.SampleBuilder {
			return samplebuilder.New(512, dep, 90000, samplebuilder.WithMaxTimeDelay(500*time.Millisecond))
		}, clock: 90000, codec: spec.videoCodec, needKey: true}
	}
	if spec.audio {
		n := uint64(len(tracks) + 1)
		tracks = append(tracks, webm.TrackEntry{Name: "Audio", TrackNumber: n, TrackUID: n, CodecID: "A_OPUS", TrackType: 2,
			CodecPrivate: opusHead(), CodecDelay: 6500000, SeekPreRoll: 80000000,
			Audio: &webm.Audio{SamplingFrequency: 48000, Channels: 2}})
		if main == 0 {
			main = n
		}
		w.kinds[kindAudio] = &kindState{newSB: func() *samplebuilder.SampleBuilder {
			return samplebuilder.New(64, &codecs.OpusPacket{}, 48000, samplebuilder.WithMaxTimeDelay(300*time.Millisecond))
		}, clock: 48000, codec: "opus"}
	}
	for _, ks := range w.kinds {
		if ks != nil {
			ks.sb = ks.newSB()
		}
	}
	info := *webm.DefaultSegmentInfo
	info.MuxingApp, info.WritingApp = "parley", "parley"
	ws, err := webm.NewSimpleBlockWriter(f, tracks,
		mkvcore.WithSegmentInfo(&info),
		// SeekHead and Cues make a finished file seekable and give it a Duration; the Segment and
		// Clusters stay of unknown size, so a file cut short by a crash still plays to its end.
		mkvcore.WithSeekHead(true), mkvcore.WithCues(16<<10),
		mkvcore.WithMinMaxClusterDuration(main, 1000, 5000),
		mkvcore.WithOnFatalHandler(func(err error) { w.fatal.Store(&err) }),
		mkvcore.WithOnErrorHandler(func(error) {}), // frames too old for their cluster: dropped
	)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	// Track numbers follow the order above: video first.
	i := 0
	if spec.video {
		w.kinds[kindVideo].out = ws[0]
		i = 1
	}
	if spec.audio {
		w.kinds[kindAudio].out = ws[i]
	}
	return w, nil
}

// run writes until stop, then drains, finalises the file and closes done.
func (w *streamWriter) run() {
	defer close(w.done)
	tick := time.NewTicker(flushInterval)
	defer tick.Stop()
	if w.pli != nil && w.kinds[kindVideo] != nil {
		w.pli()
	}
	failed := false
	check := func() {
		if failed {
			return
		}
		err := w.file.Err()
		if fe := w.fatal.Load(); err == nil && fe != nil {
			err = *fe
		}
		if err != nil {
			failed, w.err = true, err
			w.closing.Store(true) // taps stop queueing
			if w.onFail != nil {
				w.onFail(err)
			}
		}
	}
	take := func(p packet) {
		if !failed {
			w.handle(p)
		}
		bufPool.Put(p.buf)
	}
	for {
		select {
		case p := <-w.in:
			take(p)
		case <-tick.C:
			if w.firstMs >= 0 {
				w.file.SetDuration(float64(w.endMs - w.firstMs))
			} else {
				w.file.Flush()
			}
			check()
		case <-w.stop:
			for len(w.in) > 0 { // the taps no longer queue: drain what they left
				take(<-w.in)
			}
			if !failed {
				for k, ks := range w.kinds {
					if ks != nil {
						ks.sb.Flush()
						w.pop(uint8(k), ks)
					}
				}
			}
			for _, ks := range w.kinds {
				if ks != nil {
					_ = ks.out.Close()
				}
			}
			check()
			return
		}
	}
}

func (w *streamWriter) handle(p packet) {
	ks := w.kinds[p.kind]
	if ks == nil {
		return
	}
	pkt := &rtp.Packet{}
	if err := pkt.Unmarshal(bytes.Clone(p.buf[:p.n])); err != nil {
		return
	}
	if ks.seen && pkt.SSRC != ks.ssrc {
		// A new RTP source (the publisher renegotiated, reconnectStream): its sequence numbers and
		// timestamps start anew. Finish the old one's frames, then restart the clock here.
		ks.sb.Flush()
		w.pop(p.kind, ks)
		ks.sb, ks.seen = ks.newSB(), false
		if p.kind == kindVideo {
			ks.needKey = true
		}
	}
	if !ks.seen {
		ks.seen, ks.ssrc, ks.firstAt, ks.ref, ks.unwrap = true, pkt.SSRC, p.at, pkt.Timestamp, 0
	}
	ks.lastAt = p.at
	ks.sb.Push(pkt)
	w.pop(p.kind, ks)
}

// pop writes every complete frame. A frame's time is its RTP time from the kind's first packet,
// placed at that packet's arrival: audio and video of one stream line up to within the network's
// jitter without RTCP.
func (w *streamWriter) pop(kind uint8, ks *kindState) {
	for {
		s := ks.sb.Pop()
		if s == nil {
			return
		}
		ks.unwrap += int64(int32(s.PacketTimestamp - ks.ref))
		ks.ref = s.PacketTimestamp
		at := ks.firstAt + time.Duration(ks.unwrap*int64(time.Second)/ks.clock)
		if d := at - ks.lastAt; d > maxClockDrift || d < -maxClockDrift {
			// The RTP clock jumped (a sender restarting its timestamps): follow the arrival time.
			ks.firstAt -= d
			at -= d
		}
		ms := at.Milliseconds()
		key := true
		if kind == kindVideo {
			if s.PrevDroppedPackets > 0 && ks.anyFrame {
				ks.needKey = true // a lost packet breaks the reference chain: wait for the next keyframe
			}
			key = isKeyframe(ks.codec, s.Data)
			if ks.needKey && !key {
				if w.pli != nil {
					w.pli()
				}
				continue
			}
			ks.needKey = false
		}
		if ms < ks.lastMs {
			ms = ks.lastMs
		}
		ks.lastMs = ms
		ks.anyFrame = true
		ks.frames++
		_, _ = ks.out.Write(key, ms, s.Data)
		if w.firstMs < 0 || ms < w.firstMs {
			w.firstMs = ms
		}
		if ms > w.endMs {
			w.endMs = ms
		}
	}
}

// isKeyframe reads the codec's frame header: VP8's P bit (RFC 6386 §9.1), VP9's frame_type in the
// uncompressed header (VP9 bitstream spec §6.2).
func isKeyframe(codec string, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	switch codec {
	case "VP9":
		// frame_marker(2) profile_low(1) profile_high(1) [reserved_zero(1) if profile 3]
		// show_existing_frame(1) frame_type(1)
		h := b[0]
		profile := (h>>5)&1 | (h>>4)&1<<1
		shift := 3
		if profile == 3 {
			shift = 2
		}
		if h>>shift&1 == 1 { // show_existing_frame
			return false
		}
		return h>>(shift-1)&1 == 0
	default:
		return b[0]&1 == 0
	}
}

// close stops the taps' queueing, lets the writer drain and finalise, and waits for it.
func (w *streamWriter) close() {
	w.closing.Store(true)
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// dims reads OpenVidu's videoDimensions JSON text, {"width":640,"height":480}.
func dims(s string) (int, int) {
	var d struct{ Width, Height int }
	if json.Unmarshal([]byte(s), &d) != nil || d.Width <= 0 || d.Height <= 0 || d.Width > 8192 || d.Height > 8192 {
		return 640, 480
	}
	return d.Width, d.Height
}

// videoCodecOf maps the SFU's MIME type to a codec this writer can put in WebM.
func videoCodecOf(mime string) (string, error) {
	switch strings.ToLower(mime) {
	case "video/vp8":
		return "VP8", nil
	case "video/vp9":
		return "VP9", nil
	}
	return "", fmt.Errorf("video codec %s cannot be recorded (VP8 and VP9 can)", mime)
}
