package compose

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Live is a window of a composition mixed by one ffmpeg as the call goes on: the track files,
// still being written, are fed to it through pipes as they grow, and it writes the window as
// consecutive pieces of Piece each (the segment muxer for the video, an ADTS stream cut here
// for the audio), each piece a Segment's files that Output.Append takes. One process for a
// whole window instead of one per piece: starting ffmpeg and opening and decoding its inputs
// from their keyframes cost more than a third of a 5 s segment's mix.
//
// The pieces join one another, and the segments MixSegment makes, without a gap: the video
// encoder is the same (segmentVideoArgs) with a keyframe forced at each piece's start, and the
// audio starts one AAC frame early as a Segment's does, so its pieces are cut from one
// continuous encoding.
type Live struct {
	// Segment is the window: Tracks, From, Length (a whole number of Piece), the picture, Nice,
	// Threads and Log as for MixSegment. Video and Audio are the pieces' file names with a %d
	// verb for the piece's number (Audio "" for no audio); Boost is not used.
	Segment
	// Piece is the length of a piece; First the number of the window's first one.
	Piece time.Duration
	First int
	// Growing reports whether a track's file is still being written: its feeder then waits for
	// more at the end of the file, and ends the input when it is complete. nil: none is.
	Growing func(path string) bool
	// Ready is told each piece whose files are complete, in order, from a goroutine of MixLive.
	Ready func(k int)
}

// feedPoll is how often a feeder at the end of a file still being written looks for more: the
// writers hand their files to the kernel every second (flushInterval in package recording).
const feedPoll = 200 * time.Millisecond

// liveSkipMin is how far into a part a live mix must start for its feeder to skip to a cluster
// near that point (findCluster): a window's first run starts about a second into its parts
// (package recording starts each on a keyframe 2 s before the window; less seekPreRoll), and
// skipping that saves nothing worth another path. A restart late in a window saves the most: at
// 10 pieces in, 3.3–3.4 CPU-s for a 5.12 s piece of two 640x480 streams became 1.35–1.41.
const liveSkipMin = 2 * time.Second

// feedBuffer is what each feeder holds in memory; the file on disk is the rest of the backlog,
// so a mix that falls behind costs disk the recording writes anyway, never memory.
const feedBuffer = 64 << 10

// MixLive mixes l's window and returns when ffmpeg ends: every piece is then Ready, or an error
// says why not (the pieces already Ready stay good). Cancelling ctx stops it; the caller mixes
// the pieces that were not Ready some other way.
func MixLive(ctx context.Context, l Live) error {
	if err := l.validate(); err != nil {
		return err
	}
	if err := haveTools(); err != nil {
		return err
	}
	n := int((l.Length + l.Piece/2) / l.Piece)
	log := &lockedWriter{w: l.Log}
	if l.Log == nil {
		log.w = io.Discard
	}
	pl := planSegment(l.Segment, true)
	var extra []*os.File // ffmpeg's fds 3, 4, 5…: the piece list, the audio, the inputs
	var ours []*os.File  // every end, closed when done (a second Close is harmless)
	closeAll := func() {
		for _, f := range append(extra, ours...) {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err == nil {
			ours = append(ours, r, w) // each is also closed once handed over; a second Close is harmless
		}
		return r, w, err
	}
	listR, listW, err := pipe()
	if err != nil {
		return err
	}
	audioR, audioW, err := pipe()
	if err != nil {
		closeAll()
		return err
	}
	extra = append(extra, listW, audioW)
	type feed struct {
		path string
		w    *os.File
		skip *clusterSkip
	}
	var feeds []feed
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning", "-y"}
	for k := range pl.inputs {
		r, w, err := pipe()
		if err != nil {
			closeAll()
			return err
		}
		fd := feed{path: pl.inputs[k].path, w: w}
		// Started in the middle of a part (a join or a leave): fed from a keyframe's cluster
		// shortly before the window's first piece, not from the part's start.
		if target := pl.leads[k] - seekPreRoll; target >= liveSkipMin {
			if sk, ok, err := findCluster(fd.path, target); err == nil && ok {
				fd.skip = &sk
				pl.seeks[k], pl.leads[k] = sk.Start, pl.leads[k]-sk.Start
				fmt.Fprintf(log, "live: %s fed from its cluster at %.2f s (byte %d)\n", fd.path, sk.Start.Seconds(), sk.From)
			}
		}
		feeds = append(feeds, fd)
		extra = append(extra, r)
		// The pipe cannot be probed for its format as a file can: both WebM and Parley's
		// Matroska are the matroska demuxer's.
		args = append(args, "-f", "matroska")
		args = append(args, pl.inputArgs(k, fmt.Sprintf("pipe:%d", 3+len(extra)-1))...)
	}
	args = append(args, "-filter_complex", pl.graph(l.Segment))
	if l.Threads > 0 {
		args = append(args, "-filter_complex_threads", fmt.Sprint(l.Threads))
	}
	piece := seconds(l.Piece)
	args = append(args, "-map", "[vout]")
	args = append(args, segmentVideoArgs...)
	if l.Threads > 0 {
		args = append(args, "-threads", fmt.Sprint(l.Threads))
	}
	// A keyframe at each piece's start, where the segment muxer cuts; it lists each piece on
	// pipe:3 once the piece is complete.
	args = append(args, "-force_key_frames", "expr:gte(t,n_forced*"+piece+")",
		"-r", fmt.Sprint(l.FrameRate), "-frames:v", fmt.Sprint(int64(n)*Segment{Length: l.Piece, FrameRate: l.FrameRate}.frames()),
		"-f", "segment", "-segment_format", "mp4", "-segment_format_options", "video_track_timescale="+videoTimescale,
		"-segment_time", piece, "-segment_time_delta", seconds(time.Second/time.Duration(2*l.FrameRate)),
		"-segment_start_number", fmt.Sprint(l.First), "-reset_timestamps", "1",
		"-segment_list", "pipe:3", "-segment_list_type", "flat", fileURL(l.Video))
	if l.Audio != "" {
		args = append(args, "-map", "[aout]", "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
			// Each frame at once, not when a 32 KiB buffer fills: a piece is ready when its end is.
			"-flush_packets", "1", "-f", "adts", "pipe:4")
	}
	paths := make([]string, len(feeds))
	for i, f := range feeds {
		paths[i] = f.path
	}
	fmt.Fprintf(log, "live: pieces %d-%d from %s\n", l.First, l.First+n-1, strings.Join(paths, " "))
	fmt.Fprintf(log, "live: ffmpeg %s\n", strings.Join(args, " "))

	// Ready goes out in order once a piece has both its video (listed) and its audio (cut).
	var mu sync.Mutex
	videos, audios, told := 0, 0, 0
	if l.Audio == "" {
		audios = n
	}
	progress := func(v, a int) {
		mu.Lock()
		defer mu.Unlock()
		videos, audios = videos+v, audios+a
		for told < min(videos, audios, n) {
			if l.Ready != nil {
				l.Ready(l.First + told)
			}
			told++
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, f := range feeds {
		wg.Go(func() {
			defer f.w.Close()
			var growing func() bool
			if l.Growing != nil {
				growing = func() bool { return l.Growing(f.path) }
			}
			if err := feedFile(f.path, f.skip, f.w, growing, stop); err != nil {
				fmt.Fprintf(log, "live: feeding %s: %v\n", f.path, err)
			}
		})
	}
	var audioErr error
	wg.Go(func() {
		defer listR.Close()
		sc := bufio.NewScanner(listR)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) != "" {
				progress(1, 0)
			}
		}
	})
	wg.Go(func() {
		defer audioR.Close()
		if l.Audio == "" {
			_, _ = io.Copy(io.Discard, audioR) // pipe:4 unused: its end comes when ffmpeg exits
			return
		}
		audioErr = splitAudio(audioR, l, n, func() { progress(0, 1) })
	})
	err = runFFmpeg(ctx, args, log, l.Nice, nil, extra)
	extra = nil // closed by runFFmpeg
	close(stop)
	wg.Wait()
	closeAll()
	if err == nil {
		err = audioErr
	}
	mu.Lock()
	done := told
	mu.Unlock()
	if err == nil && done < n {
		err = fmt.Errorf("%d pieces of %d made", done, n)
	}
	if err != nil {
		return fmt.Errorf("live mix at %v: %w", l.From, err)
	}
	return nil
}

func (l Live) validate() error {
	var errs []error
	if l.Piece <= 0 || l.Length <= 0 || l.Length%l.Piece > time.Millisecond && l.Piece-l.Length%l.Piece > time.Millisecond {
		errs = append(errs, fmt.Errorf("%w: window %v is not a whole number of %v pieces", ErrInvalid, l.Length, l.Piece))
	}
	if l.Video == "" || !strings.Contains(l.Video, "%") || l.Audio != "" && !strings.Contains(l.Audio, "%") {
		errs = append(errs, fmt.Errorf("%w: live pieces %q, %q need a %%d for the piece's number", ErrInvalid, l.Video, l.Audio))
	}
	s := l.Segment
	s.Video, s.Audio = "v", ""
	if l.Audio != "" {
		s.Audio = "a"
	}
	return errors.Join(append(errs, s.validate())...)
}

// feedFile copies path to w as it grows: at its end it waits for more while growing says the
// file is still being written, and returns once it has copied a complete file, when w's reader
// is gone, or when stop is closed. With skip, it copies the header and then the file from
// skip.From on.
func feedFile(path string, skip *clusterSkip, w io.Writer, growing func() bool, stop <-chan struct{}) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if skip != nil {
		if _, err := io.Copy(w, io.NewSectionReader(f, 0, skip.Header)); err != nil {
			return nil // ffmpeg has ended
		}
		if _, err := f.Seek(skip.From, io.SeekStart); err != nil {
			return err
		}
	}
	buf := make([]byte, feedBuffer)
	var tick *time.Ticker
	complete := growing == nil
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return nil // ffmpeg has ended, or stopped reading this input
			}
			continue
		}
		if err != nil && err != io.EOF {
			return err
		}
		if complete {
			return nil
		}
		if !growing() {
			complete = true // one more read: the bytes written before it was closed
			continue
		}
		if tick == nil {
			tick = time.NewTicker(feedPoll)
			defer tick.Stop()
		}
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
	}
}

// splitAudio cuts the ADTS stream of a live window into its pieces' files: the encoder's
// priming frame and the frame before the window are dropped (as MixSegment's trimADTS does),
// then each piece takes its whole AAC frames; what follows the last piece is read and dropped.
func splitAudio(r io.Reader, l Live, n int, ready func()) error {
	per := Segment{Length: l.Piece}.audioFrames()
	br := bufio.NewReaderSize(r, 64<<10)
	var cur []byte
	frames, k := 0, 0
	hdr := make([]byte, 7)
	for {
		if _, err := io.ReadFull(br, hdr); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil // ffmpeg ended; what it made is ready
			}
			return err
		}
		if hdr[0] != 0xFF || hdr[1]&0xF0 != 0xF0 {
			return errors.New("not ADTS")
		}
		size := int(hdr[3]&3)<<11 | int(hdr[4])<<3 | int(hdr[5])>>5
		if size < 7 {
			return fmt.Errorf("ADTS frame of %d bytes", size)
		}
		frame := make([]byte, size)
		copy(frame, hdr)
		if _, err := io.ReadFull(br, frame[7:]); err != nil {
			return nil
		}
		frames++
		if frames <= 2 || k >= n {
			continue
		}
		cur = append(cur, frame...)
		if (frames-2)%per == 0 {
			path := fmt.Sprintf(l.Audio, l.First+k)
			tmp := partName(path)
			if err := os.WriteFile(tmp, cur, 0o644); err != nil {
				return err
			}
			if err := os.Rename(tmp, path); err != nil {
				return err
			}
			cur, k = cur[:0], k+1
			ready()
		}
	}
}
