package iceconfig

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/session"
)

// fakeTURN mints predictable credentials naming the participant.
type fakeTURN struct{}

func (fakeTURN) Credentials(id string) (string, string) { return "u-" + id, "p-" + id }

func TestServers(t *testing.T) {
	static := config.IceServer{URL: "turn:ext.example.com:3478", Username: "eu", Credential: "ec"}
	cases := []struct {
		name       string
		cfg        Config
		configured []session.IceServer
		want       []string // "url user credential"
	}{
		{name: "dev: plain TURN over TCP on the shared port",
			cfg:  Config{Host: "127.0.0.1", Port: 4443, MediaPort: 4443, TURN: fakeTURN{}},
			want: []string{"turn:127.0.0.1:4443?transport=tcp u-c1 p-c1"}},
		{name: "production: TLS first, then TCP, then UDP, then the operator's servers",
			cfg: Config{Host: "meet.example.com", TLS: true, Port: 443, TURNUDPPort: 3478, MediaPort: 443, TURN: fakeTURN{},
				External: []config.IceServer{static}},
			want: []string{
				"turns:meet.example.com:443?transport=tcp u-c1 p-c1",
				"turn:meet.example.com:443?transport=tcp u-c1 p-c1",
				"turn:meet.example.com:3478?transport=udp u-c1 p-c1",
				"turn:ext.example.com:3478 eu ec",
			}},
		{name: "behind a proxy: TURN/TCP on the media TCP port, TURN/TLS at the name the proxy passes through",
			cfg: Config{Host: "meet.example.com", TLS: true, Port: 7443, TLSHost: "turn.example.com", TLSPort: 443, TURN: fakeTURN{}},
			want: []string{
				"turns:turn.example.com:443?transport=tcp u-c1 p-c1",
				"turn:meet.example.com:7443?transport=tcp u-c1 p-c1",
			}},
		{name: "the application's servers replace ours",
			cfg:        Config{Host: "meet.example.com", TLS: true, Port: 443, TURN: fakeTURN{}, External: []config.IceServer{static}},
			configured: []session.IceServer{{URL: "stun:app.example.com", Username: "a", Credential: "b"}},
			want:       []string{"stun:app.example.com a b"}},
		{name: "nothing configured: our own STUN, never the SDK's public default",
			cfg:  Config{Host: "meet.example.com", Port: 443, MediaPort: 50000},
			want: []string{"stun:meet.example.com:50000  "}},
		{name: "IPv6 host is bracketed",
			cfg:  Config{Host: "2001:db8::1", Port: 443, MediaPort: 443},
			want: []string{"stun:[2001:db8::1]:443  "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := New(tc.cfg).Servers("c1", tc.configured)
			var s []string
			for _, e := range got {
				s = append(s, e.URL+" "+e.Username+" "+e.Credential)
			}
			if strings.Join(s, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(s, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestStaticAuthSecretIsMintedPerJoin(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	p := New(Config{Host: "h", External: []config.IceServer{{URL: "turns:turn.example.com:443", StaticAuthSecret: "secret"}},
		Now: func() time.Time { return now }})
	a, b := p.Servers("c1", nil)[0], p.Servers("c2", nil)[0]
	for _, e := range []session.IceServer{a, b} {
		if !strings.HasPrefix(e.Username, "1700086400:") {
			t.Fatalf("username %q must start with the expiry, a day from now", e.Username)
		}
		mac := hmac.New(sha1.New, []byte("secret"))
		mac.Write([]byte(e.Username))
		if e.Credential != base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
			t.Fatal("credential is not base64(HMAC-SHA1(secret, username)) as coturn use-auth-secret expects")
		}
	}
	if a.Username == b.Username {
		t.Fatal("two participants got the same minted username")
	}
	// The application may configure a static secret for its connection too.
	got := p.Servers("c3", []session.IceServer{{URL: "turn:app.example.com", StaticAuthSecret: "k"}})
	if !strings.HasPrefix(got[0].Username, "1700086400:") || got[0].Credential == "" {
		t.Fatalf("application server not minted: %+v", got[0])
	}
}
