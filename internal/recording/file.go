package recording

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"sync"
	"time"
)

// flushInterval bounds what a crash loses: the file is handed to the kernel at least this often,
// so a kill -9 leaves everything written up to the last flush readable.
const flushInterval = time.Second

// syncFile buffers writes to a track file. It never returns an error to its writer (the WebM muxer
// wedges after a failed write): the first error is kept and Err reports it, after which writes are
// discarded, and the recording is stopped as failed by whoever watches Err.
type syncFile struct {
	mu   sync.Mutex
	f    *os.File
	w    io.Writer // f, or a test's failing writer
	buf  []byte
	err  error
	size int64 // bytes handed to the kernel
	// durOff is where the Segment's Duration value sits (0: not found). The muxer writes the real
	// Duration only when it finishes; keeping it current makes a file cut short by a crash report
	// how long it is.
	durOff int64
}

// durationPlaceholder is the Duration element the muxer writes before it knows the value: ID
// 0x4489, size 8, float64 bits 1 (the smallest non-zero float).
var durationPlaceholder = []byte{0x44, 0x89, 0x88, 0, 0, 0, 0, 0, 0, 0, 1}

func createSyncFile(path string) (*syncFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &syncFile{f: f, w: f, buf: make([]byte, 0, 64<<10)}, nil
}

// Write buffers p; a full buffer is flushed at once.
func (s *syncFile) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return len(p), nil
	}
	s.buf = append(s.buf, p...)
	if len(s.buf) >= 48<<10 {
		s.flushLocked()
	}
	return len(p), nil
}

func (s *syncFile) flushLocked() {
	if s.err != nil || len(s.buf) == 0 {
		return
	}
	if s.size == 0 && s.durOff == 0 {
		if i := bytes.Index(s.buf, durationPlaceholder); i >= 0 {
			s.durOff = int64(i) + 3
		}
	}
	n, err := s.w.Write(s.buf)
	s.size += int64(n)
	if err == nil && n < len(s.buf) {
		err = io.ErrShortWrite
	}
	s.err = err
	s.buf = s.buf[:0]
}

// Flush hands the buffered bytes to the kernel.
func (s *syncFile) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushLocked()
}

// Err is the first write error, or nil.
func (s *syncFile) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close flushes and closes the file (called by the muxer when it finalises).
func (s *syncFile) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushLocked()
	if s.f == nil {
		return s.err
	}
	if err := s.f.Close(); s.err == nil {
		s.err = err
	}
	s.f = nil
	return s.err
}

// WriteAt patches bytes already written (the muxer fills in Cues and Duration when it finishes).
func (s *syncFile) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushLocked()
	wa, ok := s.w.(io.WriterAt)
	if s.err != nil || !ok {
		return len(p), nil
	}
	if _, err := wa.WriteAt(p, off); err != nil {
		s.err = err
	}
	return len(p), nil
}

// SetDuration flushes and writes ms into the header's Duration.
func (s *syncFile) SetDuration(ms float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushLocked()
	wa, ok := s.w.(io.WriterAt)
	if s.err != nil || !ok || s.durOff == 0 || s.size < s.durOff+8 {
		return
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], math.Float64bits(ms))
	if _, err := wa.WriteAt(b[:], s.durOff); err != nil {
		s.err = err
	}
}
