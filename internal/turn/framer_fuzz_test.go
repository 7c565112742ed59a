package turn

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
)

// chunkConn hands out its data in reads of the sizes cuts gives (cycled, 1 byte at least), then
// io.EOF: the split reads a TCP stream can deliver.
type chunkConn struct {
	net.Conn
	data []byte
	cuts []byte
	n    int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	size := len(c.data)
	if len(c.cuts) > 0 {
		size = int(c.cuts[c.n%len(c.cuts)])%64 + 1
		c.n++
	}
	n := copy(p, c.data[:min(size, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

// referenceFrames cuts a stream into TURN frames the simple way, with the whole stream in hand.
// ok is false when the stream holds bytes that are neither STUN nor ChannelData, or a frame
// larger than one read: the framer then passes bytes through as they come, not whole frames.
func referenceFrames(b []byte, readSize int) (frames [][]byte, ok bool) {
	for len(b) >= channelDataHeader {
		l := int(binary.BigEndian.Uint16(b[2:4]))
		var size int
		switch b[0] >> 6 {
		case 0:
			size = 20 + l
		case 1:
			size = channelDataHeader + (l+3)&^3
		default:
			return frames, false
		}
		if size > readSize || size > tcpReadBuffer {
			return frames, false
		}
		if size > len(b) {
			break // cut off by the end of the stream: never delivered
		}
		frames = append(frames, b[:size])
		b = b[size:]
	}
	return frames, true
}

// FuzzStreamFramer feeds the TURN/TCP framer (tcpConn.Read, fastpath.go) a stream cut into reads
// of fuzzed sizes and reads it with a buffer of fuzzed size, as pion's STUNConn does. No channel
// is mirrored, so every byte goes to pion: what comes out must be a prefix of what went in, in
// order, and where the stream is made of whole frames that fit, exactly those frames, one per
// Read, however the stream was split.
func FuzzStreamFramer(f *testing.F) {
	stunHeader := func(length uint16) []byte {
		b := make([]byte, 20+int(length))
		binary.BigEndian.PutUint16(b[0:2], 0x0001) // Binding request
		binary.BigEndian.PutUint16(b[2:4], length)
		binary.BigEndian.PutUint32(b[4:8], 0x2112A442)
		return b
	}
	var burst []byte
	burst = append(burst, channelFrame(0x4000, []byte("one"))...)
	burst = append(burst, stunHeader(8)...)
	burst = append(burst, channelFrame(0x4001, bytes.Repeat([]byte{7}, 150))...)
	f.Add(burst, []byte{1}, uint16(1600))
	f.Add(burst, []byte{3, 17, 60}, uint16(1600))
	f.Add(burst, []byte{9}, uint16(100))                                // the last frame is larger than a read
	f.Add(append(stunHeader(4), 0xC0, 0, 0, 0), []byte{}, uint16(1600)) // then not TURN
	f.Add(stunHeader(0xFFFF), []byte{5}, uint16(100))
	f.Add([]byte{0x40, 0x00, 0x00}, []byte{}, uint16(1600)) // shorter than a header
	f.Fuzz(func(t *testing.T, stream, cuts []byte, readSize uint16) {
		if readSize == 0 {
			readSize = 1
		}
		if len(stream) > 3*tcpReadBuffer {
			return // longer streams only repeat what shorter ones test, slower
		}
		c := &tcpConn{Conn: &chunkConn{data: stream, cuts: cuts}}
		p := make([]byte, readSize)
		var got [][]byte
		var all []byte
		for range len(stream) + 2 { // every Read returns at least one byte or an error
			n, err := c.Read(p)
			if n > 0 {
				got = append(got, bytes.Clone(p[:n]))
				all = append(all, p[:n]...)
			}
			if err != nil {
				break
			}
			if n == 0 {
				t.Fatal("Read returned 0 bytes and no error")
			}
		}
		if !bytes.HasPrefix(stream, all) {
			t.Fatalf("framer delivered % x, not a prefix of the stream % x", all, stream)
		}
		want, whole := referenceFrames(stream, int(readSize))
		if !whole {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("framer delivered %d reads, want %d frames", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("read %d = % x, want frame % x", i, got[i], want[i])
			}
		}
	})
}
