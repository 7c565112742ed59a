package edge

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// Real first messages, as seen on the wire.
var (
	// stunAllocate is Chromium's first TURN message (research notes §2.6): an Allocate with
	// REQUESTED-TRANSPORT UDP.
	stunAllocate = []byte{
		0x00, 0x03, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42, // type, length 8, cookie
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, // transaction ID
		0x00, 0x19, 0x00, 0x04, 0x11, 0x00, 0x00, 0x00, // REQUESTED-TRANSPORT: UDP
	}
	// stunBinding is a Binding request with no attributes.
	stunBinding = []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	// tlsHello is the start of a TLS 1.3 ClientHello record (record version 3.1).
	tlsHello   = []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
	httpGetMsg = []byte("GET / HTTP/1.1\r\nHost: example\r\n\r\n")
)

// framed puts msg in an RFC 4571 frame.
func framed(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
		want kind
	}{
		{"tls client hello", tlsHello, kindTLS},
		{"tls 1.2 record version", []byte{0x16, 0x03, 0x03, 0x00, 0x10}, kindTLS},
		{"turn allocate", stunAllocate, kindTURN},
		{"stun binding", stunBinding, kindTURN},
		{"ice-tcp binding", framed(stunBinding), kindICETCP},
		{"ice-tcp allocate-shaped", framed(stunAllocate), kindICETCP},
		{"http get", httpGetMsg, kindHTTP},
		{"http post", []byte("POST /openvidu/api/sessions HTTP/1.1\r\n"), kindHTTP},
		{"http/2 preface", []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), kindHTTP},
		{"garbage", []byte("hello world\r\n\r\n"), kindHTTP},
		{"binary garbage", []byte{0xff, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0}, kindHTTP},
		{"zeros", make([]byte, 10), kindHTTP},
		{"stun with bad cookie", append([]byte{0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x43}, make([]byte, 12)...), kindHTTP},
		{"stun with unpadded length", append([]byte{0, 1, 0, 5, 0x21, 0x12, 0xA4, 0x42}, make([]byte, 12)...), kindHTTP},
		{"frame length disagrees with stun length", append([]byte{0, 21}, stunBinding...), kindHTTP},
		{"tls record of another type", []byte{0x17, 0x03, 0x03, 0x00, 0x10, 0x01, 0, 0, 0, 0}, kindHTTP},
		{"tls version 3.5", []byte{0x16, 0x03, 0x05, 0x00, 0x10, 0x01, 0, 0, 0, 0}, kindHTTP},
		{"empty", nil, kindNeedMore},
		{"one tls byte", []byte{0x16}, kindNeedMore},
		{"stun prefix", stunBinding[:7], kindNeedMore},
		{"ice-tcp prefix", framed(stunBinding)[:9], kindNeedMore},
		{"http decided after three bytes", []byte("GET"), kindHTTP},
		{"two bytes of http", []byte("GE"), kindNeedMore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.in); got != tt.want {
				t.Errorf("classify(% x) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestClassifyInTLS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
		want kind
	}{
		{"turn allocate", stunAllocate, kindTURN},
		{"http get", httpGetMsg, kindHTTP},
		{"ice-tcp is not expected in tls", framed(stunBinding), kindHTTP},
		{"stun prefix", stunAllocate[:5], kindNeedMore},
		{"http decided on first byte", []byte("G"), kindHTTP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyInTLS(tt.in); got != tt.want {
				t.Errorf("classifyInTLS(% x) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// referenceClassify is the byte layouts of classify.go written out plainly, for inputs of at
// least maxPeek bytes; the fuzz test checks the incremental classifier against it.
func referenceClassify(b []byte) kind {
	cookie := []byte{0x21, 0x12, 0xA4, 0x42}
	be16 := func(i int) int { return int(b[i])<<8 | int(b[i+1]) }
	switch {
	case b[0] == 0x16 && b[1] == 0x03 && b[2] <= 0x04:
		return kindTLS
	case b[0]>>6 == 0 && be16(2)%4 == 0 && bytes.Equal(b[4:8], cookie):
		return kindTURN
	case b[2]>>6 == 0 && be16(4)%4 == 0 && bytes.Equal(b[6:10], cookie) && be16(0) == 20+be16(4):
		return kindICETCP
	}
	return kindHTTP
}

func referenceClassifyInTLS(b []byte) kind {
	if b[0]>>6 == 0 && b[3]%4 == 0 && bytes.Equal(b[4:8], []byte{0x21, 0x12, 0xA4, 0x42}) {
		return kindTURN
	}
	return kindHTTP
}

// FuzzClassify checks the sniffer's decoder: it never panics, decides within maxPeek bytes,
// agrees with the plain reference, and gives the same answer however the bytes are split
// across reads (a decision on a prefix never changes when more bytes arrive). The seed corpus
// in testdata/fuzz/FuzzClassify holds every real first message: TLS ClientHellos, STUN
// Binding and Allocate, RFC 4571-framed STUN, HTTP requests, garbage and short inputs.
func FuzzClassify(f *testing.F) {
	for _, seed := range [][]byte{tlsHello, stunAllocate, stunBinding, framed(stunBinding), httpGetMsg, nil, {0x16}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range []struct {
			name string
			fn   func([]byte) kind
			ref  func([]byte) kind
		}{
			{"classify", classify, referenceClassify},
			{"classifyInTLS", classifyInTLS, referenceClassifyInTLS},
		} {
			full := c.fn(b)
			if len(b) >= maxPeek {
				if full == kindNeedMore {
					t.Fatalf("%s(% x) needs more than %d bytes", c.name, b, maxPeek)
				}
				if want := c.ref(b); full != want {
					t.Fatalf("%s(% x) = %v, reference says %v", c.name, b, full, want)
				}
			}
			if full > kindICETCP {
				t.Fatalf("%s(% x) = invalid kind %d", c.name, b, full)
			}
			// Split reads: the sniffer classifies each prefix as it arrives and stops at the
			// first decision, which must be the one the whole input gets.
			for i := range len(b) {
				if k := c.fn(b[:i]); k != kindNeedMore {
					if k != full {
						t.Fatalf("%s: prefix % x decided %v, whole input % x decided %v", c.name, b[:i], k, b, full)
					}
					break
				}
			}
		}
	})
}

// BenchmarkClassify measures the per-connection cost of deciding; it must not allocate.
func BenchmarkClassify(b *testing.B) {
	for _, bb := range []struct {
		name string
		in   []byte
	}{{"tls", tlsHello}, {"turn", stunAllocate}, {"ice-tcp", framed(stunBinding)}, {"http", httpGetMsg}} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = classify(bb.in)
			}
		})
	}
}

func TestClassifyDoesNotAllocate(t *testing.T) {
	in := framed(stunBinding)
	if n := testing.AllocsPerRun(100, func() { _ = classify(in) }); n != 0 {
		t.Errorf("classify allocates %v times", n)
	}
}
