package config

import "testing"

// Vectors after OpenVidu's IceServerPropertiesTest (protocol note §8.2).
func TestIceServerValidate(t *testing.T) {
	cases := []struct {
		s     IceServer
		valid bool
	}{
		{IceServer{URL: "stun:hostname.com"}, true},
		{IceServer{URL: "stun:hostname.com:1234"}, true},
		{IceServer{URL: "stuns:192.168.1.1:443"}, true},
		{IceServer{URL: "stun:[1:2:3:4:5:6:7:8]:4321"}, true},
		{IceServer{URL: "stun:hostname.com?transport=tcp"}, false},
		{IceServer{URL: "stun:hostname.com", Username: "u", Credential: "p"}, false},
		{IceServer{URL: "turn:hostname.com:3478", Username: "u", Credential: "p"}, true},
		{IceServer{URL: "turn:[1:2:3:4:5:6:7:8]:4321?transport=udp", Username: "u", Credential: "p"}, true},
		{IceServer{URL: "turns:turn.example.com:443?transport=tcp", StaticAuthSecret: "s"}, true},
		{IceServer{URL: "turn:hostname.com:3478"}, false},
		{IceServer{URL: "turn:hostname.com:3478", Username: "u"}, false},
		{IceServer{URL: "turn:hostname.com", Username: "u", Credential: "p", StaticAuthSecret: "s"}, false},
		{IceServer{URL: "turn:hostname.com?transport=sctp", Username: "u", Credential: "p"}, false},
		{IceServer{URL: "turn:hostname.com?transport=udp&x=1", Username: "u", Credential: "p"}, false},
		{IceServer{URL: "turn:hostname.com:0", Username: "u", Credential: "p"}, false},
		{IceServer{URL: "turn:hostname.com:65536", Username: "u", Credential: "p"}, false},
		{IceServer{URL: "turn::3478", Username: "u", Credential: "p"}, false},
		{IceServer{URL: "turn:[1:2:3:4:5:6:7:8", Username: "u", Credential: "p"}, false},
		{IceServer{URL: "turn:1:2:3:4:5:6:7:8:4321", Username: "u", Credential: "p"}, false},
		{IceServer{URL: "http:hostname.com"}, false},
		{IceServer{URL: "stunhostname.com"}, false},
		{IceServer{URL: "stun:"}, false},
		{IceServer{URL: "stun:host name"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.s.URL, func(t *testing.T) {
			err := tc.s.Validate()
			if (err == nil) != tc.valid {
				t.Fatalf("valid=%v, got err=%v", tc.valid, err)
			}
		})
	}
}

func TestParseIceServers(t *testing.T) {
	got, err := ParseIceServers(`["url=turn:turn.example.com:3478,username=u,credential=p","url=stun:stun.example.com:3478"]`)
	if err != nil || len(got) != 2 || got[0].Username != "u" || got[1].URL != "stun:stun.example.com:3478" {
		t.Fatalf("got %+v, %v", got, err)
	}
	for _, bad := range []string{`not json`, `["url=stun:x,color=red"]`, `["url"]`, `["url=turn:x"]`, `[1]`} {
		if _, err := ParseIceServers(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func FuzzParseIceServers(f *testing.F) {
	for _, s := range []string{`["url=turns:turn.example.com:443,staticAuthSecret=secret"]`,
		`["url=turn:[::1]:3478?transport=udp,username=u,credential=p"]`, `["url=stun:a"]`, `[]`, `["="]`, `[","]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		servers, err := ParseIceServers(text)
		if err != nil {
			return
		}
		for _, s := range servers {
			if s.Validate() != nil {
				t.Fatalf("parser returned an invalid server %+v", s)
			}
		}
	})
}
