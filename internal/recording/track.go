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

// maxSeqJump is the largest sequence number step (forward or back) fed to a sample builder as is;
// beyond it the builder starts afresh. A second of 2 Mbit/s video is about 200 packets.
const maxSeqJump = 1000

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
	if w.clock != nil {
		return w.clock().Sub(w.start)
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
	track    int // index in streamWriter.tracks
	codec    string
	newSB    func() *samplebuilder.SampleBuilder
	seen     bool          // a packet arrived: firstAt and ref are set
	ssrc     uint32        // the RTP source the clock follows
	firstAt  time.Duration // arrival of the first packet of ssrc
	lastAt   time.Duration // arrival of the latest packet
	ref      uint32        // RTP timestamp the unwrapped count is relative to
	lastSeq  uint16        // newest sequence number pushed
	unwrap   int64         // ticks from the first packet's timestamp to ref
	needKey  bool          // video: wait for a keyframe before writing
	lastMs   int64
	anyFrame bool
	pads     padGaps // padding-only packets left out of sb
}

// padGaps closes up, for a sample builder, the sequence numbers of padding-only packets. A sender
// probing its link (Chrome, on the video's own SSRC when no RTX was negotiated, or on the simulcast
// layer it sends while a higher one is off) sends packets of padding between frames; pushed to the
// builder, such a packet is counted as dropped, which the writer must take for a loss that breaks
// the reference chain (it waits for a keyframe). Left out, it would leave a hole that the builder
// waits for and then counts as dropped too. So it is left out and the packets after it are
// numbered one less. Packets that arrive after a later padding one (reordered, or a
// retransmission) are numbered by the padding before them only, from the last padMemory ones.
type padGaps struct {
	recent [padMemory]uint16
	n      int // padding packets seen since reset; the last min(n, padMemory) are in recent
}

// padMemory bounds the padding packets remembered for reordered packets: a packet that arrives
// after more than that many later padding ones is numbered as if it came after them.
const padMemory = 64

// add notes padding packet seq, once.
func (g *padGaps) add(seq uint16) {
	for i := range min(g.n, padMemory) {
		if g.recent[i] == seq {
			return // a duplicate
		}
	}
	g.recent[g.n%padMemory] = seq
	g.n++
}

// seq is the builder's number for media packet seq: less the padding packets before it.
func (g *padGaps) seq(seq uint16) uint16 {
	if g.n == 0 {
		return seq
	}
	after := 0
	for i := range min(g.n, padMemory) {
		if int16(g.recent[i]-seq) > 0 {
			after++
		}
	}
	return seq - uint16(g.n-after)
}

// streamWriter writes one stream's audio and video to one WebM (or, for H.264, Matroska) file, on
// its own goroutine.
type streamWriter struct {
	path    string
	start   time.Time // when the writer was created; frame times count from here
	in      chan packet
	stop    chan struct{}
	done    chan struct{}
	closing atomic.Bool
	drops   atomic.Uint64

	file     *syncFile
	kinds    [2]*kindState
	tracks   []webm.TrackEntry
	main     uint64 // the track clusters start on
	matroska bool   // H.264: a .mkv whose header waits for the first keyframe
	open     bool   // the header is written
	held     []heldFrame
	onFail   func(error)           // told once, from the writer goroutine, when the file cannot be written
	pli      func()                // asks the publisher for a keyframe
	fatal    atomic.Pointer[error] // a muxer error
	// testClock, when set, is the arrival time of packets instead of the real clock.
	testClock *atomic.Int64
	clock     func() time.Time // the recorder's clock, when not the real one
	newFile   func(string) (*syncFile, error)
	pw        partWriter // COMPOSED: the stream in parts

	// Set by the goroutine, read after done is closed.
	err            error
	firstMs, endMs int64 // media times written, ms since start; firstMs < 0 until a frame is written
}

// opusHead is the Opus identification header (RFC 7845 §5.1) Matroska wants as CodecPrivate:
// stereo, 48 kHz, a pre-skip of 312 samples to match the track's CodecDelay of 6.5 ms.
func opusHead() []byte {
	h := make([]byte, 19)
	copy(h, "OpusHead")
	h[8] = 1 // version
	h[9] = 2 // channels
	binary.LittleEndian.PutUint16(h[10:], 312)
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
		done: make(chan struct{}), file: f, firstMs: -1, newFile: newFile}
	w.pw.parts = []part{{path: path, firstMs: -1}}
	w.pw.flushedMs.Store(-1)
	if spec.video {
		codecID, dep := "V_VP8", rtp.Depacketizer(&codecs.VP8Packet{})
		switch spec.videoCodec {
		case "VP9":
			codecID, dep = "V_VP9", &codecs.VP9Packet{}
		case "H264":
			// Matroska's AVC: length-prefixed NAL units, SPS and PPS in CodecPrivate (avcC), which
			// the first keyframe brings: the header waits for it (openMuxer).
			codecID, dep, w.matroska = "V_MPEG4/ISO/AVC", &codecs.H264Packet{IsAVC: true}, true
		}
		n := uint64(len(w.tracks) + 1)
		w.tracks = append(w.tracks, webm.TrackEntry{Name: "Video", TrackNumber: n, TrackUID: n, CodecID: codecID, TrackType: 1,
			Video: &webm.Video{PixelWidth: uint64(spec.width), PixelHeight: uint64(spec.height)}})
		w.main = n
		// maxLate in packets: a keyframe of 1 Mbit/s video is ~100 packets; 512 tolerates reordering
		// without holding more than a fraction of a second in normal flow.
		w.kinds[kindVideo] = &kindState{newSB: func() *samplebuilder.SampleBuilder {
			return samplebuilder.New(512, dep, 90000, samplebuilder.WithMaxTimeDelay(500*time.Millisecond))
		}, clock: 90000, codec: spec.videoCodec, needKey: true, track: len(w.tracks) - 1}
	}
	if spec.audio {
		n := uint64(len(w.tracks) + 1)
		w.tracks = append(w.tracks, webm.TrackEntry{Name: "Audio", TrackNumber: n, TrackUID: n, CodecID: "A_OPUS", TrackType: 2,
			CodecPrivate: opusHead(), CodecDelay: 6500000, SeekPreRoll: 80000000,
			Audio: &webm.Audio{SamplingFrequency: 48000, Channels: 2}})
		if w.main == 0 {
			w.main = n
		}
		w.kinds[kindAudio] = &kindState{newSB: func() *samplebuilder.SampleBuilder {
			return samplebuilder.New(64, &codecs.OpusPacket{}, 48000, samplebuilder.WithMaxTimeDelay(300*time.Millisecond))
		}, clock: 48000, codec: "opus", track: len(w.tracks) - 1}
	}
	for _, ks := range w.kinds {
		if ks != nil {
			ks.sb = ks.newSB()
		}
	}
	if !w.matroska {
		if err := w.openMuxer(); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	return w, nil
}

// openMuxer writes the header and starts the muxer; frames held until then are written.
func (w *streamWriter) openMuxer() error {
	info := *webm.DefaultSegmentInfo
	info.MuxingApp, info.WritingApp = "parley", "parley"
	opts := []mkvcore.BlockWriterOption{
		mkvcore.WithSegmentInfo(&info),
		// SeekHead and Cues make a finished file seekable and give it a Duration; the Segment and
		// Clusters stay of unknown size, so a file cut short by a crash still plays to its end.
		mkvcore.WithSeekHead(true), mkvcore.WithCues(16 << 10),
		mkvcore.WithMinMaxClusterDuration(w.main, 1000, 5000),
		mkvcore.WithOnFatalHandler(func(err error) { w.fatal.Store(&err) }),
		mkvcore.WithOnErrorHandler(func(error) {}), // frames too old for their cluster: dropped
	}
	if w.matroska {
		h := *webm.DefaultEBMLHeader
		h.DocType = "matroska"
		opts = append(opts, mkvcore.WithEBMLHeader(&h))
	}
	ws, err := webm.NewSimpleBlockWriter(w.file, w.tracks, opts...)
	if err != nil {
		return err
	}
	for _, ks := range w.kinds {
		if ks != nil {
			ks.out = ws[ks.track]
		}
	}
	w.open = true
	for _, f := range w.held {
		_, _ = w.kinds[f.kind].out.Write(f.key, f.ms, f.data)
		w.afterWrite(f.kind, f.key, f.ms, f.data)
	}
	w.held = nil
	return nil
}

// heldFrame waits for the header of an H.264 file.
type heldFrame struct {
	kind uint8
	key  bool
	ms   int64
	data []byte
}

// maxHeld bounds the frames kept before an H.264 file's first keyframe (10 s of audio).
const maxHeld = 500

// write hands one frame to the muxer, or holds it until the header can be written.
func (w *streamWriter) write(kind uint8, key bool, ms int64, data []byte) {
	w.beforeWrite(kind, key, ms)
	if !w.open {
		if kind == kindVideo {
			sps, pps := h264ParameterSets(data)
			if sps == nil || pps == nil {
				return // a keyframe without its parameter sets cannot start the file
			}
			w.tracks[w.kinds[kindVideo].track].CodecPrivate = avcC(sps, pps)
			if err := w.openMuxer(); err != nil {
				w.fatal.Store(&err)
				return
			}
		} else {
			if len(w.held) == maxHeld {
				w.held = w.held[1:]
			}
			w.held = append(w.held, heldFrame{kind, key, ms, data})
			return
		}
	}
	_, _ = w.kinds[kind].out.Write(key, ms, data)
	w.afterWrite(kind, key, ms, data)
}

// h264NALs calls f for each NAL unit of a length-prefixed (AVC) access unit.
func h264NALs(b []byte, f func(nal []byte)) {
	for len(b) >= 4 {
		n := int(binary.BigEndian.Uint32(b))
		b = b[4:]
		if n <= 0 || n > len(b) {
			return
		}
		f(b[:n])
		b = b[n:]
	}
}

func h264ParameterSets(b []byte) (sps, pps []byte) {
	h264NALs(b, func(nal []byte) {
		switch nal[0] & 0x1f {
		case 7:
			if sps == nil {
				sps = nal
			}
		case 8:
			if pps == nil {
				pps = nal
			}
		}
	})
	return sps, pps
}

// avcC is the AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1) of one SPS and one PPS,
// with 4-byte NAL lengths:
//
//	version=1 | profile | compat | level | 0xFF (lengthSize-1=3) | 0xE1 (1 SPS) | len | SPS | 1 | len | PPS
func avcC(sps, pps []byte) []byte {
	if len(sps) < 4 {
		return nil
	}
	b := []byte{1, sps[1], sps[2], sps[3], 0xFF, 0xE1}
	b = binary.BigEndian.AppendUint16(b, uint16(len(sps)))
	b = append(b, sps...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pps)))
	return append(b, pps...)
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
			if cur := w.currentPart(); cur.firstMs >= 0 {
				w.file.SetDuration(float64(cur.endMs - cur.firstMs))
				w.pw.flushedMs.Store(cur.endMs)
			} else {
				w.file.Flush()
			}
			if w.pw.rotating && w.pli != nil && w.kinds[kindVideo] != nil {
				w.pli() // the keyframe for the next part has not come yet: ask again
			}
			check()
		case <-w.stop:
			for len(w.in) > 0 { // the taps no longer queue: drain what they left
				take(<-w.in)
			}
			// No sample builder Flush: it only adds the last partial frame, and on a wide buffer its
			// purge loop can take seconds (see maxSeqJump), during which the stop would wait.
			if !w.open && !failed {
				// No keyframe ever came: write what there is (the audio) with an empty avcC.
				if err := w.openMuxer(); err != nil {
					w.fatal.Store(&err)
				}
			}
			w.closePrev()
			for _, ks := range w.kinds {
				if ks != nil && ks.out != nil {
					_ = ks.out.Close()
				}
			}
			if !w.open {
				_ = w.file.Close()
			}
			w.updatePart(func(p *part) { p.closed = true })
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
		// timestamps start anew, so the clock restarts here. The old source's last partial frame
		// is dropped rather than flushed (see maxSeqJump).
		ks.sb, ks.seen, ks.pads = ks.newSB(), false, padGaps{}
		if p.kind == kindVideo {
			ks.needKey = true
		}
	}
	if !ks.seen {
		ks.seen, ks.ssrc, ks.firstAt, ks.ref, ks.unwrap, ks.lastSeq = true, pkt.SSRC, p.at, pkt.Timestamp, 0, pkt.SequenceNumber
	}
	if d := int16(pkt.SequenceNumber - ks.lastSeq); d > maxSeqJump || d < -maxSeqJump {
		// The sample builder's buffer spans the sequence numbers it holds and its purge rescans
		// that span for each one it drops: a jump far ahead or back would cost it seconds of CPU
		// (seen with Chrome's H.264). Start it afresh instead; video waits for a keyframe.
		ks.sb, ks.pads = ks.newSB(), padGaps{}
		if p.kind == kindVideo {
			ks.needKey = true
		}
		ks.lastSeq = pkt.SequenceNumber
	} else if d > 0 {
		ks.lastSeq = pkt.SequenceNumber
	}
	ks.lastAt = p.at
	if len(pkt.Payload) == 0 {
		ks.pads.add(pkt.SequenceNumber) // padding: no media, and no loss
		return
	}
	pkt.SequenceNumber = ks.pads.seq(pkt.SequenceNumber)
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
		w.write(kind, key, ms, s.Data)
		if w.firstMs < 0 || ms < w.firstMs {
			w.firstMs = ms
		}
		if ms > w.endMs {
			w.endMs = ms
		}
	}
}

// isKeyframe reads the codec's frame header: VP8's P bit (RFC 6386 §9.1), VP9's frame_type in the
// uncompressed header (VP9 bitstream spec §6.2), an H.264 IDR slice (NAL type 5).
func isKeyframe(codec string, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	switch codec {
	case "H264":
		key := false
		h264NALs(b, func(nal []byte) { key = key || nal[0]&0x1f == 5 })
		return key
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
	case "video/h264":
		return "H264", nil
	}
	return "", fmt.Errorf("video codec %s cannot be recorded (VP8, VP9 and H.264 can)", mime)
}
