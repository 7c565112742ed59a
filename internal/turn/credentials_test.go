package turn

import (
	"net"
	"strings"
	"testing"

	"github.com/pion/stun/v4"
	pionturn "github.com/pion/turn/v5"
)

func TestParseUsername(t *testing.T) {
	t.Parallel()
	const h = "q3JrX0bH1m8tZ2aVwPc4Lg"
	for _, tc := range []struct {
		in     string
		ok     bool
		expiry int64
	}{
		{"1767225600:" + h, true, 1767225600},
		{"0:" + h, true, 0},
		{"9223372036854775807:" + h, true, 9223372036854775807},
		{"9223372036854775808:" + h, false, 0}, // overflows int64
		{"01767225600:" + h, false, 0},         // leading zero: not canonical
		{"+1767225600:" + h, false, 0},
		{"-1:" + h, false, 0},
		{" 1767225600:" + h, false, 0},
		{"1767225600:" + h + ":x", false, 0},     // second separator
		{"1767225600:" + h[:21], false, 0},       // short handle
		{"1767225600:" + h + "A", false, 0},      // long handle
		{"1767225600:" + h[:21] + "h", false, 0}, // non-zero padding bits
		{"1767225600:" + h[:21] + "=", false, 0},
		{"1767225600:q3JrX0bH1m8tZ2aVwPc4L+", false, 0}, // standard, not URL, alphabet
		{"1767225600:con_Ab12cd34Ef", false, 0},
		{"1767225600", false, 0},
		{":" + h, false, 0},
		{h, false, 0},
		{"", false, 0},
		{"1767225600:" + strings.Repeat("A", 21) + "\x00", false, 0},
	} {
		exp, handle, ok := parseUsername(tc.in)
		if ok != tc.ok || (ok && (exp != tc.expiry || handle != h)) {
			t.Errorf("parseUsername(%q) = %d, %q, %v; want %d, %v", tc.in, exp, handle, ok, tc.expiry, tc.ok)
		}
	}
}

// FuzzParseUsername: the parser sees attacker-controlled USERNAME attributes (up to 513 bytes,
// any bytes). It must never panic, and whatever it accepts must round-trip exactly, so that the
// HMAC (computed over the string as sent) and the parsed fields cannot disagree.
// Seed corpus: testdata/fuzz/FuzzParseUsername.
func FuzzParseUsername(f *testing.F) {
	f.Add("1767225600:q3JrX0bH1m8tZ2aVwPc4Lg")
	f.Add(formatUsername(1, newHandle()))
	f.Add("1767225600:con_Ab12cd34Ef")
	f.Add("1767225600")
	f.Add("")
	f.Fuzz(func(t *testing.T, u string) {
		exp, h, ok := parseUsername(u)
		if !ok {
			return
		}
		if got := formatUsername(exp, h); got != u {
			t.Fatalf("parseUsername(%q) accepted, but formats back as %q", u, got)
		}
		if len(h) != handleLen || strings.Contains(h, ":") {
			t.Fatalf("parseUsername(%q) returned handle %q", u, h)
		}
	})
}

// FuzzAuthenticate drives pion's AuthHandler with arbitrary USERNAME, REALM and method, as a
// client can send them. It must never panic, and it may accept only a credential we minted.
func FuzzAuthenticate(f *testing.F) {
	e := newEnv(f, nil)
	minted, _ := e.srv.Credentials("con_Fuzz")
	f.Add(minted, DefaultRealm, uint16(stun.MethodAllocate))
	f.Add(minted, DefaultRealm, uint16(stun.MethodRefresh))
	f.Add(minted, DefaultRealm, uint16(stun.MethodConnect))
	f.Add(minted, "openvidu", uint16(stun.MethodChannelBind))
	f.Add("1767225600:con_Fuzz", DefaultRealm, uint16(stun.MethodAllocate))
	f.Add("", "", uint16(0))
	f.Fuzz(func(t *testing.T, user, realm string, method uint16) {
		id, key, ok := e.srv.authenticate(&pionturn.RequestAttributes{
			Username: user, Realm: realm, Method: stun.Method(method),
			SrcAddr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 50000},
		})
		if !ok {
			return
		}
		if user != minted || realm != DefaultRealm || id != "con_Fuzz" || len(key) != 16 {
			t.Fatalf("accepted user %q realm %q method %v as %q", user, realm, stun.Method(method), id)
		}
	})
}
