package recording

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/at-wat/ebml-go/webm"
)

// A COMPOSED recording is mixed while the call goes on, one window (a minute or so) at a time,
// by one ffmpeg that reads each stream's file as it grows. Mixing a window must not mean decoding
// a stream from its beginning, and browsers send a keyframe only when asked, so the writer of
// such a recording writes each stream in parts: rotateLead (at most 3/8 of a piece) before each
// window boundary it asks the publisher for a keyframe and starts a new file on it. The old part
// goes on being written until overlapAfter past the boundary, so each window's mix reads one part
// per stream, with no switch of files inside it. The tail a stop leaves is mixed piece by piece
// (a few seconds each) from the parts: before each piece boundary the writer asks for a keyframe
// too, so such a mix seeks to one a second or two before its piece rather than decoding the
// part from its start.
const (
	rotateLead   = 2 * time.Second
	overlapAfter = 500 * time.Millisecond
)

// part is one file of a stream written in parts. Times are ms since the writer's start.
type part struct {
	path           string
	firstMs, endMs int64 // media written; firstMs < 0 while there is none
	// since and until bound when the part is the stream's, in recording time (0: no bound): a part
	// takes over from the one before at the segment boundary it was started for (or at its first
	// frame when the keyframe came late). Exact, not in ms: they meet the segments' boundaries.
	since, until time.Duration
	audio, video bool // frames of that kind were written
	closed       bool
}

// partWriter is the part bookkeeping of a streamWriter; only its goroutine changes it, under mu
// so that the mixer can read it.
type partWriter struct {
	seg    time.Duration // window length: a part per window; 0: one file, no parts
	piece  time.Duration // piece length: a keyframe asked for before each piece
	offset time.Duration // the writer's start in the recording

	mu    sync.Mutex
	parts []part

	next      time.Duration // the next window boundary, recording time
	nextKey   time.Duration // the next piece boundary, recording time
	rotating  bool          // a keyframe is awaited to start the next part
	prev      *prevPart     // the part before, written until its overlap ends
	flushedMs atomic.Int64  // media handed to the kernel in the current part, ms since start (-1: none)
}

// prevPart is the previous part's muxer during the overlap.
type prevPart struct {
	file      *syncFile
	outs      [2]webm.BlockWriteCloser
	untilMs   int64 // writer ms after which the overlap ends
	partIndex int
}

// partPath is the name of part n: the stream's file name for the first, then name.n.ext.
func partPath(path string, n int) string {
	if n == 0 {
		return path
	}
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s.%d%s", strings.TrimSuffix(path, ext), n, ext)
}

// snapshotParts returns a copy of the parts.
func (w *streamWriter) snapshotParts() []part {
	w.pw.mu.Lock()
	defer w.pw.mu.Unlock()
	return append([]part(nil), w.pw.parts...)
}

func (w *streamWriter) updatePart(f func(p *part)) {
	w.pw.mu.Lock()
	f(&w.pw.parts[len(w.pw.parts)-1])
	w.pw.mu.Unlock()
}

// currentPart is a copy of the part being written.
func (w *streamWriter) currentPart() part {
	w.pw.mu.Lock()
	defer w.pw.mu.Unlock()
	return w.pw.parts[len(w.pw.parts)-1]
}

// inParts makes the writer write in parts for windows of length seg and ask for a keyframe
// before each piece, its start being offset into the recording. Called before run.
func (w *streamWriter) inParts(seg, piece, offset time.Duration) {
	w.pw.seg, w.pw.piece, w.pw.offset = seg, piece, offset
	w.pw.next = (offset/seg + 1) * seg
	w.pw.nextKey = (offset/piece + 1) * piece
}

// recTime is a writer time in recording time.
func (w *streamWriter) recTime(ms int64) time.Duration {
	return w.pw.offset + time.Duration(ms)*time.Millisecond
}

// beforeWrite runs before a frame is written: it asks for a keyframe as a boundary nears, and
// starts the next part on it. Writer goroutine only.
func (w *streamWriter) beforeWrite(kind uint8, key bool, ms int64) {
	pw := &w.pw
	if pw.seg <= 0 || !w.open {
		return
	}
	at := w.recTime(ms)
	cur := pw.parts[len(pw.parts)-1]
	if cur.firstMs < 0 {
		return
	}
	lead := min(rotateLead, pw.piece*3/8)
	if at >= pw.nextKey-lead {
		for pw.nextKey-lead <= at {
			pw.nextKey += pw.piece
		}
		// A keyframe a little before each piece, for a mix of that piece alone to start on; the
		// window boundaries' own request follows.
		if at < pw.next-lead && w.pli != nil && w.kinds[kindVideo] != nil {
			w.pli()
		}
	}
	if !pw.rotating && at >= pw.next-lead {
		if w.recTime(cur.firstMs) >= pw.next-lead {
			// This part began close enough before the boundary to serve the next segment.
			pw.next += pw.seg
			return
		}
		pw.rotating = true
		if w.pli != nil && w.kinds[kindVideo] != nil {
			w.pli()
		}
	}
	hasVideo := w.kinds[kindVideo] != nil
	if !pw.rotating || hasVideo && !(kind == kindVideo && key) || pw.prev != nil {
		return
	}
	w.rotate(ms)
}

// rotate starts a new part at writer time ms, keeping the current one as prev for the overlap.
func (w *streamWriter) rotate(ms int64) {
	pw := &w.pw
	at := w.recTime(ms)
	takeover := max(pw.next, at)
	takeMs := (takeover - pw.offset).Milliseconds()
	n := len(pw.parts)
	f, err := w.newFile(partPath(w.path, n))
	if err != nil {
		w.fatal.Store(&err)
		return
	}
	prev := &prevPart{file: w.file, untilMs: takeMs + overlapAfter.Milliseconds(), partIndex: n - 1}
	for i, ks := range w.kinds {
		if ks != nil {
			prev.outs[i] = ks.out
		}
	}
	pw.prev = prev
	w.file = f
	w.open = false
	pw.mu.Lock()
	pw.parts[n-1].until = takeover
	pw.parts = append(pw.parts, part{path: partPath(w.path, n), firstMs: -1, since: takeover})
	pw.mu.Unlock()
	pw.flushedMs.Store(-1)
	for pw.next <= at {
		pw.next += pw.seg
	}
	pw.next += pw.seg
	pw.rotating = false
	if !w.matroska {
		if err := w.openMuxer(); err != nil {
			w.fatal.Store(&err)
		}
	}
	// H.264: write opens the new file's header on this keyframe's parameter sets.
}

// afterWrite notes a written frame in the current part and feeds the previous part during the
// overlap. Writer goroutine only.
func (w *streamWriter) afterWrite(kind uint8, key bool, ms int64, data []byte) {
	pw := &w.pw
	if p := pw.prev; p != nil {
		if ms <= p.untilMs {
			if o := p.outs[kind]; o != nil {
				_, _ = o.Write(key, ms, data)
				pw.mu.Lock()
				pp := &pw.parts[p.partIndex]
				pp.endMs = max(pp.endMs, ms)
				pw.mu.Unlock()
			}
		} else {
			w.closePrev()
		}
	}
	w.updatePart(func(p *part) {
		if p.firstMs < 0 {
			p.firstMs = ms
		}
		p.endMs = max(p.endMs, ms)
		if kind == kindVideo {
			p.video = true
		} else {
			p.audio = true
		}
	})
}

// closePrev finalises the previous part.
func (w *streamWriter) closePrev() {
	pw := &w.pw
	p := pw.prev
	if p == nil {
		return
	}
	pw.prev = nil
	for _, o := range p.outs {
		if o != nil {
			_ = o.Close()
		}
	}
	if err := p.file.Err(); err != nil {
		w.fatal.Store(&err)
	}
	pw.mu.Lock()
	pw.parts[p.partIndex].closed = true
	pw.mu.Unlock()
}
