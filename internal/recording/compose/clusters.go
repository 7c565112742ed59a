package compose

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"time"
)

// A live window's ffmpeg reads each file through a pipe, which cannot seek: started in the middle
// of a window (someone joined or left), it would decode each stream from its part's start, up to
// a window's length, to throw it away. The feeder skips that instead: it sends the file's header
// (EBML header, Segment, Info, Tracks: everything before the first Cluster) and then the file from
// a Cluster that starts on a video keyframe shortly before the moment needed. Cluster timestamps
// are absolute, so the demuxer reads it as a file that begins there.

// Matroska element IDs (RFC 9559), with their length markers.
const (
	idEBML          = 0x1A45DFA3
	idSegment       = 0x18538067
	idInfo          = 0x1549A966
	idTimecodeScale = 0x2AD7B1
	idTracks        = 0x1654AE6B
	idTrackEntry    = 0xAE
	idTrackNumber   = 0xD7
	idTrackType     = 0x83
	idCluster       = 0x1F43B675
	idTimecode      = 0xE7
	idSimpleBlock   = 0xA3
	idBlockGroup    = 0xA0
)

// unknownSize marks an element of unknown size (a live writer's Segment and Clusters).
const unknownSize = -1

// maxHeaderElement bounds the Info and Tracks elements read into memory.
const maxHeaderElement = 1 << 20

// clusterSkip is where a feeder resumes after the header: file offset From, whose first frame
// is at Start in the file's time.
type clusterSkip struct {
	Header int64         // the bytes before the first Cluster
	From   int64         // the Cluster fed after them
	Start  time.Duration // its first frame's time
}

// findCluster finds in the Matroska file at path, as far as it is written, the last Cluster
// after the first that starts at or before `at` (file time) and whose first video frame is a
// keyframe (any Cluster when the file has no video); Start is the time of its first frame of any
// kind, where a demuxer fed from it starts the file's time. ok is false when there is none, or
// when the file is not laid out so (an element of unknown size other than the Segment or a
// Cluster).
func findCluster(path string, at time.Duration) (skip clusterSkip, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return clusterSkip{}, false, err
	}
	defer f.Close()
	r := &ebmlReader{f: f}
	id, size, err := r.header()
	if err != nil || id != idEBML || size == unknownSize {
		return clusterSkip{}, false, err
	}
	r.pos += size
	if id, _, err = r.header(); err != nil || id != idSegment {
		return clusterSkip{}, false, err
	}
	scale := time.Millisecond // TimecodeScale's default: 1,000,000 ns
	video := uint64(0)        // the video track's number; 0: none
	var clusterAt, clusterTime int64 = -1, 0
	var first, decided bool     // in the current cluster: no block seen yet; its first video block seen
	var firstTime time.Duration // the time of its first block
	skip.Header = -1
	for {
		start := r.pos
		id, size, err := r.header()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break // the end of what is written
		}
		if err != nil {
			return clusterSkip{}, false, err
		}
		switch id {
		case idCluster:
			if skip.Header < 0 {
				skip.Header = start
			}
			clusterAt, first, decided = start, true, false
			continue // into it: its children follow
		case idInfo, idTracks:
			if size == unknownSize || size > maxHeaderElement {
				return clusterSkip{}, false, nil
			}
			b, err := r.bytes(size)
			if err != nil {
				return clusterSkip{}, false, nil // not all written yet: no cluster either
			}
			if id == idInfo {
				if v, ok := ebmlUint(b, idTimecodeScale); ok && v > 0 {
					scale = time.Duration(v)
				}
			} else {
				video = videoTrack(b)
			}
			continue
		case idTimecode:
			if clusterAt >= 0 && size <= 8 {
				b, err := r.bytes(size)
				if err != nil {
					break
				}
				clusterTime = int64(uintOf(b))
				continue
			}
		case idSimpleBlock, idBlockGroup:
			if clusterAt >= 0 && !decided {
				if id == idBlockGroup || size < 4 {
					decided = true // not a keyframe we can tell: not a start
					break
				}
				b, err := r.bytes(min(size, 12))
				if err != nil {
					break
				}
				track, n := vint(b)
				if n < 0 || n+3 > len(b) {
					decided = true
					break
				}
				t := time.Duration(clusterTime+int64(int16(binary.BigEndian.Uint16(b[n:])))) * scale
				if first {
					if t > at {
						return skip, skip.Header >= 0 && skip.From > skip.Header, nil
					}
					first, firstTime = false, t
				}
				// The cluster's first video frame decides: a keyframe makes it a start.
				if video == 0 || track == video {
					decided = true
					if b[n+2]&0x80 != 0 {
						skip.From, skip.Start = clusterAt, firstTime
					}
				}
				r.pos = start + int64(r.n) + size
				continue
			}
		}
		if size == unknownSize {
			return clusterSkip{}, false, nil
		}
		r.pos = start + int64(r.n) + size
	}
	return skip, skip.Header >= 0 && skip.From > skip.Header, nil
}

// ebmlReader reads element headers at pos.
type ebmlReader struct {
	f   *os.File
	pos int64
	n   int // the last header's length
}

// header reads the ID and size of the element at pos and moves pos past them (size
// unknownSize: of unknown size).
func (r *ebmlReader) header() (id uint64, size int64, err error) {
	var b [12]byte
	n, err := r.f.ReadAt(b[:], r.pos)
	if n == 0 {
		if err == nil {
			err = io.EOF
		}
		return 0, 0, err
	}
	l := vintLen(b[0])
	if l == 0 || l > 4 || l >= n {
		return 0, 0, io.ErrUnexpectedEOF
	}
	for _, c := range b[:l] {
		id = id<<8 | uint64(c)
	}
	sl := vintLen(b[l])
	if sl == 0 || l+sl > n {
		return 0, 0, io.ErrUnexpectedEOF
	}
	v, _ := vint(b[l : l+sl])
	size = int64(v)
	if v == 1<<(7*sl)-1 {
		size = unknownSize
	}
	r.n = l + sl
	r.pos += int64(r.n)
	return id, size, nil
}

// bytes reads n bytes at pos and moves pos past them.
func (r *ebmlReader) bytes(n int64) ([]byte, error) {
	b := make([]byte, n)
	if _, err := r.f.ReadAt(b, r.pos); err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	r.pos += n
	return b, nil
}

// vintLen is the length of the variable-size integer starting with c (0: invalid).
func vintLen(c byte) int {
	for i := range 8 {
		if c&(0x80>>i) != 0 {
			return i + 1
		}
	}
	return 0
}

// vint decodes the variable-size integer at the start of b, its length marker removed; n is its
// length, -1 when b is too short.
func vint(b []byte) (v uint64, n int) {
	if len(b) == 0 {
		return 0, -1
	}
	n = vintLen(b[0])
	if n == 0 || n > len(b) {
		return 0, -1
	}
	v = uint64(b[0] & (0xFF >> n))
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
	}
	return v, n
}

func uintOf(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// ebmlElements calls f with each child element of the body b (IDs with markers), until f returns false.
func ebmlElements(b []byte, f func(id uint64, body []byte) bool) {
	for len(b) > 0 {
		l := vintLen(b[0])
		if l == 0 || l > 4 || l >= len(b) {
			return
		}
		id := uintOf(b[:l])
		size, sl := vint(b[l:])
		if sl < 0 || uint64(len(b)-l-sl) < size {
			return
		}
		body := b[l+sl : l+sl+int(size)]
		if !f(id, body) {
			return
		}
		b = b[l+sl+int(size):]
	}
}

// ebmlUint is the unsigned integer value of the first child id of body b.
func ebmlUint(b []byte, id uint64) (v uint64, ok bool) {
	ebmlElements(b, func(cid uint64, body []byte) bool {
		if cid == id && len(body) <= 8 {
			v, ok = uintOf(body), true
			return false
		}
		return true
	})
	return v, ok
}

// videoTrack is the number of the first video track of a Tracks body (0: none).
func videoTrack(b []byte) uint64 {
	var video uint64
	ebmlElements(b, func(id uint64, body []byte) bool {
		if id != idTrackEntry {
			return true
		}
		if t, _ := ebmlUint(body, idTrackType); t == 1 {
			video, _ = ebmlUint(body, idTrackNumber)
			return false
		}
		return true
	})
	return video
}
