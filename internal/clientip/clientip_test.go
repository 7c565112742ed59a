package clientip

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestAddr(t *testing.T) {
	t.Parallel()
	r := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("10.1.0.0/16")})
	tests := []struct {
		name, remote, xff, xRealIP, want string
	}{
		{"no headers", "198.51.100.7:5000", "", "", "198.51.100.7"},
		{"spoofed X-Real-IP from an untrusted peer", "198.51.100.7:5000", "", "203.0.113.9", "198.51.100.7"},
		{"spoofed X-Forwarded-For from an untrusted peer", "198.51.100.7:5000", "203.0.113.9", "", "198.51.100.7"},
		{"trusted proxy, X-Real-IP", "127.0.0.1:40000", "", "203.0.113.9", "203.0.113.9"},
		{"trusted proxy, X-Forwarded-For", "127.0.0.1:40000", "203.0.113.9", "", "203.0.113.9"},
		{"trusted IPv6 proxy", "[::1]:40000", "2001:db8::9", "", "2001:db8::9"},
		{"client wrote a hop before the proxy's", "127.0.0.1:40000", "192.0.2.66, 203.0.113.9", "", "203.0.113.9"},
		{"two trusted proxies", "10.1.2.3:40000", "203.0.113.9, 127.0.0.1", "", "203.0.113.9"},
		{"only trusted hops", "127.0.0.1:40000", "10.1.0.5", "", "10.1.0.5"},
		{"X-Forwarded-For wins over X-Real-IP", "127.0.0.1:40000", "203.0.113.9", "10.1.0.9", "203.0.113.9"},
		{"hop with a port", "127.0.0.1:40000", "203.0.113.9:1234", "", "203.0.113.9"},
		{"garbage X-Forwarded-For, then X-Real-IP", "127.0.0.1:40000", "<script>", "203.0.113.9", "203.0.113.9"},
		{"garbage everywhere", "127.0.0.1:40000", "not an ip", "nor this", "127.0.0.1"},
		{"v4-mapped peer", "[::ffff:127.0.0.1]:40000", "203.0.113.9", "", "203.0.113.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tc.remote
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			if tc.xRealIP != "" {
				req.Header.Set("X-Real-IP", tc.xRealIP)
			}
			if got := r.String(req); got != tc.want {
				t.Errorf("client of %s (X-Forwarded-For %q, X-Real-IP %q) = %s, want %s", tc.remote, tc.xff, tc.xRealIP, got, tc.want)
			}
		})
	}
}

func TestNoTrustedProxies(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("X-Real-IP", "203.0.113.9")
	if got := New(nil).String(req); got != "127.0.0.1" {
		t.Errorf("with no trusted proxy the header was believed: %s", got)
	}
}

func TestProtoAndHost(t *testing.T) {
	t.Parallel()
	r := New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	tests := []struct {
		name, remote, proto, host, wantProto, wantHost string
	}{
		{"trusted proxy", "127.0.0.1:40000", "https", "meet.example.com", "https", "meet.example.com"},
		{"trusted proxy, list", "127.0.0.1:40000", "https, http", "meet.example.com, inner", "https", "meet.example.com"},
		{"trusted proxy, no headers", "127.0.0.1:40000", "", "", "http", "parley.internal:5443"},
		{"trusted proxy, odd proto", "127.0.0.1:40000", "gopher", "bad/host", "http", "parley.internal:5443"},
		{"untrusted peer", "198.51.100.7:5000", "https", "evil.example", "http", "parley.internal:5443"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "http://parley.internal:5443/", nil)
			req.RemoteAddr = tc.remote
			if tc.proto != "" {
				req.Header.Set("X-Forwarded-Proto", tc.proto)
			}
			if tc.host != "" {
				req.Header.Set("X-Forwarded-Host", tc.host)
			}
			if got := r.Proto(req); got != tc.wantProto {
				t.Errorf("Proto = %q, want %q", got, tc.wantProto)
			}
			if got := r.Host(req); got != tc.wantHost {
				t.Errorf("Host = %q, want %q", got, tc.wantHost)
			}
		})
	}
}
