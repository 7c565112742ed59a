package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env builds a Lookup and the environ list from pairs, the shape cmd/parley passes to Load.
func env(kv ...string) (Lookup, []string) {
	m := map[string]string{}
	var environ []string
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
		environ = append(environ, kv[i]+"="+kv[i+1])
	}
	return func(n string) (string, bool) { v, ok := m[n]; return v, ok }, environ
}

func mustLoad(t *testing.T, dotenv string, kv ...string) *Config {
	t.Helper()
	lookup, environ := env(kv...)
	c, err := Load(dotenv, lookup, environ)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func loadErr(t *testing.T, kv ...string) string {
	t.Helper()
	lookup, environ := env(kv...)
	c, err := Load("", lookup, environ)
	if err == nil {
		t.Fatalf("Load accepted %v: %+v", kv, c)
	}
	return err.Error()
}

const prodSecret = "a-long-enough-secret"

func TestDevDefaults(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "")
	checks := []struct {
		name      string
		got, want any
	}{
		{"Dev", c.Dev, true},
		{"Domain", c.Domain, ""},
		{"Secret", c.Secret, "MY_SECRET"},
		{"HTTPSPort", c.HTTPSPort, 4443},
		{"HTTPPort", c.HTTPPort, 80},
		{"PublicURL", c.PublicURL(), "http://localhost:4443/"},
		{"WebSocketURL", c.WebSocketURL(), "ws://localhost:4443/openvidu"},
		{"CertificateType", c.CertificateType, "selfsigned"},
		{"SupportDeprecatedAPI", c.SupportDeprecatedAPI, true},
		{"LogLevel", c.LogLevel, "info"},
		{"DataDir", c.DataDir, ".parley"},
		{"IceServers", len(c.IceServers), 0},
		{"Media.Port", c.Media.Port, 4443},
		{"Media.MaxRecvBandwidth", c.Media.MaxRecvBandwidth, 1000},
		{"Media.MinRecvBandwidth", c.Media.MinRecvBandwidth, 300},
		{"Media.MaxSendBandwidth", c.Media.MaxSendBandwidth, 1000},
		{"Media.MinSendBandwidth", c.Media.MinSendBandwidth, 300},
		{"Session.GarbageInterval", c.Session.GarbageInterval, 900 * time.Second},
		{"Session.GarbageThreshold", c.Session.GarbageThreshold, 3600 * time.Second},
		{"Session.ForcedVideoCodec", c.Session.ForcedVideoCodec, "MEDIA_SERVER_PREFERRED"},
		{"Session.AllowTranscoding", c.Session.AllowTranscoding, false},
		{"Session.ReconnectGrace", c.Session.ReconnectGrace, 10 * time.Second},
		{"Session.PingTimeout", c.Session.PingTimeout, 15 * time.Second},
		{"TURN.Enabled", c.TURN.Enabled, true},
		{"TURN.UDPPort", c.TURN.UDPPort, 0},
		{"App.Private", c.App.Private, false},
		{"Recording.Enabled", c.Recording.Enabled, false},
		{"Recording.Path", c.Recording.Path, filepath.Join(".parley", "recordings")},
		{"Recording.PublicAccess", c.Recording.PublicAccess, false},
		{"Recording.AutostopTimeout", c.Recording.AutostopTimeout, 120 * time.Second},
		{"Session.RecordingNotification", c.Session.RecordingNotification, "publisher_moderator"},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

func TestPublicURLs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		env           []string
		dev           bool
		public, ws    string
		port, mediaPt int
	}{
		{"dev on another port", []string{"HTTPS_PORT", "5443"}, true,
			"http://localhost:5443/", "ws://localhost:5443/openvidu", 5443, 5443},
		{"production on 443", []string{"DOMAIN_OR_PUBLIC_IP", "example.com", "OPENVIDU_SECRET", prodSecret}, false,
			"https://example.com/", "wss://example.com/openvidu", 443, 443},
		{"production on 4443", []string{"DOMAIN_OR_PUBLIC_IP", "example.com", "OPENVIDU_SECRET", prodSecret, "HTTPS_PORT", "4443"}, false,
			"https://example.com:4443/", "wss://example.com:4443/openvidu", 4443, 4443},
		{"production IPv4", []string{"DOMAIN_OR_PUBLIC_IP", "203.0.113.7", "OPENVIDU_SECRET", prodSecret}, false,
			"https://203.0.113.7/", "wss://203.0.113.7/openvidu", 443, 443},
		{"production IPv6 is bracketed", []string{"DOMAIN_OR_PUBLIC_IP", "2001:db8::7", "OPENVIDU_SECRET", prodSecret, "HTTPS_PORT", "8443"}, false,
			"https://[2001:db8::7]:8443/", "wss://[2001:db8::7]:8443/openvidu", 8443, 8443},
		{"separate media port", []string{"DOMAIN_OR_PUBLIC_IP", "example.com", "OPENVIDU_SECRET", prodSecret, "PARLEY_MEDIA_PORT", "40000"}, false,
			"https://example.com/", "wss://example.com/openvidu", 443, 40000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, "", tc.env...)
			if c.Dev != tc.dev || c.PublicURL() != tc.public || c.WebSocketURL() != tc.ws || c.HTTPSPort != tc.port || c.Media.Port != tc.mediaPt {
				t.Errorf("dev=%v public=%q ws=%q port=%d media=%d", c.Dev, c.PublicURL(), c.WebSocketURL(), c.HTTPSPort, c.Media.Port)
			}
		})
	}
	t.Run("production defaults", func(t *testing.T) {
		c := mustLoad(t, "", "DOMAIN_OR_PUBLIC_IP", "example.com", "OPENVIDU_SECRET", prodSecret)
		if c.Secret != prodSecret || c.DataDir != "/var/lib/parley" || !c.App.Private || c.TLS.Type != "selfsigned" {
			t.Errorf("secret=%q dataDir=%q private=%v tls=%q", c.Secret, c.DataDir, c.App.Private, c.TLS.Type)
		}
	})
}

func TestParseDotenv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		text    string
		want    map[string]string
		wantErr string
	}{
		{"empty", "", map[string]string{}, ""},
		{"comments and blanks", "# OpenVidu configuration\n\n   # indented\nA=1\n", map[string]string{"A": "1"}, ""},
		{"spaces around", "  A  =  x y  \n", map[string]string{"A": "x y"}, ""},
		{"quotes", "A=\"quoted # not a comment\"\nB='single'\nC=\"\"\nD=\"unbalanced\n", map[string]string{"A": "quoted # not a comment", "B": "single", "C": "", "D": "\"unbalanced"}, ""},
		{"export prefix", "export A=1\n", map[string]string{"A": "1"}, ""},
		{"equals in value", "OPENVIDU_WEBRTC_ICE_SERVERS=[\"url=stun:a\"]\n", map[string]string{"OPENVIDU_WEBRTC_ICE_SERVERS": "[\"url=stun:a\"]"}, ""},
		{"empty value", "OPENVIDU_SECRET=\n", map[string]string{"OPENVIDU_SECRET": ""}, ""},
		{"CRLF", "A=1\r\nB=2\r\n", map[string]string{"A": "1", "B": "2"}, ""},
		{"byte-order mark", "\uFEFFDOMAIN_OR_PUBLIC_IP=example.com\n", map[string]string{"DOMAIN_OR_PUBLIC_IP": "example.com"}, ""},
		{"later wins", "A=1\nA=2\n", map[string]string{"A": "2"}, ""},
		{"dotted name", "ws.sessionReconnectionTime=10\n", map[string]string{"ws.sessionReconnectionTime": "10"}, ""},
		{"no equals", "A=1\nJUSTANAME\n", nil, "line 2"},
		{"empty name", "=value\n", nil, "line 1"},
		{"name with space", "MY VAR=1\n", nil, "not a variable name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDotenv(tc.text)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDotenvFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, ".env")
	text := "# production\nDOMAIN_OR_PUBLIC_IP=meet.example.com\nOPENVIDU_SECRET=" + prodSecret + "\nHTTPS_PORT=8443\nOPENVIDU_STREAMS_FORCED_VIDEO_CODEC=H264\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		dotenv string
		env    []string
		port   int
		codec  string
		domain string
	}{
		{"file only", file, nil, 8443, "H264", "meet.example.com"},
		{"directory, as OpenVidu's DOTENV_PATH", dir, nil, 8443, "H264", "meet.example.com"},
		{"environment overrides the file", file, []string{"HTTPS_PORT", "9443", "OPENVIDU_STREAMS_FORCED_VIDEO_CODEC", "VP9"}, 9443, "VP9", "meet.example.com"},
		{"empty environment value does not hide the file", file, []string{"HTTPS_PORT", ""}, 8443, "H264", "meet.example.com"},
		{"missing file is no error", filepath.Join(dir, "absent.env"), nil, 4443, "MEDIA_SERVER_PREFERRED", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, tc.dotenv, tc.env...)
			if c.HTTPSPort != tc.port || c.Session.ForcedVideoCodec != tc.codec || c.Domain != tc.domain {
				t.Errorf("port=%d codec=%q domain=%q", c.HTTPSPort, c.Session.ForcedVideoCodec, c.Domain)
			}
		})
	}
	t.Run("bad file names the file and line", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), ".env")
		if err := os.WriteFile(bad, []byte("A=1\nnonsense\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		lookup, environ := env()
		_, err := Load(bad, lookup, environ)
		if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "line 2") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unknown PARLEY_ name in the file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), ".env")
		if err := os.WriteFile(f, []byte("PARLEY_MEDIA_PROT=5000\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		lookup, environ := env()
		_, err := Load(f, lookup, environ)
		if err == nil || !strings.Contains(err.Error(), "PARLEY_MEDIA_PROT is not a setting") {
			t.Fatalf("err = %v", err)
		}
	})
}

// Every invalid value is reported with its variable and what is allowed.
func TestInvalidValues(t *testing.T) {
	t.Parallel()
	prod := []string{"DOMAIN_OR_PUBLIC_IP", "example.com", "OPENVIDU_SECRET", prodSecret}
	tests := []struct {
		name string
		env  []string
		want []string // all must appear in the error
	}{
		{"port not a number", []string{"HTTPS_PORT", "https"}, []string{`HTTPS_PORT="https"`, "an integer from 0 to 65535"}},
		{"port out of range", []string{"HTTPS_PORT", "70000"}, []string{"HTTPS_PORT", "0 to 65535"}},
		{"http port zero", []string{"HTTP_PORT", "0"}, []string{"HTTP_PORT", "1 to 65535"}},
		{"boolean", []string{"SUPPORT_DEPRECATED_API", "maybe"}, []string{`SUPPORT_DEPRECATED_API="maybe"`, "true or false"}},
		{"codec", []string{"OPENVIDU_STREAMS_FORCED_VIDEO_CODEC", "AV1"}, []string{"OPENVIDU_STREAMS_FORCED_VIDEO_CODEC", "MEDIA_SERVER_PREFERRED, NONE, VP8, VP9, H264"}},
		{"certificate type", []string{"CERTIFICATE_TYPE", "acme"}, []string{"CERTIFICATE_TYPE", "selfsigned, owncert, letsencrypt"}},
		{"log level", []string{"PARLEY_LOG_LEVEL", "loud"}, []string{"PARLEY_LOG_LEVEL", "debug, info, warn, error"}},
		{"negative bandwidth", []string{"OPENVIDU_STREAMS_VIDEO_MAX_RECV_BANDWIDTH", "-1"}, []string{"OPENVIDU_STREAMS_VIDEO_MAX_RECV_BANDWIDTH", "an integer"}},
		{"min above max", []string{"OPENVIDU_STREAMS_VIDEO_MIN_SEND_BANDWIDTH", "2000"}, []string{"OPENVIDU_STREAMS_VIDEO_MIN_SEND_BANDWIDTH must not exceed OPENVIDU_STREAMS_VIDEO_MAX_SEND_BANDWIDTH"}},
		{"garbage interval", []string{"OPENVIDU_SESSIONS_GARBAGE_INTERVAL", "15m"}, []string{"OPENVIDU_SESSIONS_GARBAGE_INTERVAL", "an integer"}},
		{"announce IPs", []string{"PARLEY_MEDIA_ANNOUNCE_IPS", "1.2.3.4,not-an-ip"}, []string{"PARLEY_MEDIA_ANNOUNCE_IPS", "IP addresses"}},
		{"ICE servers JSON", []string{"OPENVIDU_WEBRTC_ICE_SERVERS", "url=stun:a"}, []string{"OPENVIDU_WEBRTC_ICE_SERVERS is invalid", "JSON array"}},
		{"ICE server rule", []string{"OPENVIDU_WEBRTC_ICE_SERVERS", `["url=turn:turn.example.com:3478"]`}, []string{"OPENVIDU_WEBRTC_ICE_SERVERS is invalid", "username and credential"}},
		{"secret characters", []string{"OPENVIDU_SECRET", "my secret!"}, []string{"OPENVIDU_SECRET is invalid", "letters, digits"}},
		{"domain with scheme", append(prod[2:], "DOMAIN_OR_PUBLIC_IP", "https://example.com"), []string{"DOMAIN_OR_PUBLIC_IP", "without scheme or port"}},
		{"domain with port", append(prod[2:], "DOMAIN_OR_PUBLIC_IP", "example.com:443"), []string{"DOMAIN_OR_PUBLIC_IP", "without scheme or port"}},
		{"letsencrypt without email", append(prod, "CERTIFICATE_TYPE", "letsencrypt"), []string{"LETSENCRYPT_EMAIL is required"}},
		{"letsencrypt on an IP", []string{"DOMAIN_OR_PUBLIC_IP", "203.0.113.7", "OPENVIDU_SECRET", prodSecret, "CERTIFICATE_TYPE", "letsencrypt", "LETSENCRYPT_EMAIL", "a@b.c"}, []string{"needs DOMAIN_OR_PUBLIC_IP to be a DNS name"}},
		{"autostop timeout", []string{"OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT", "-1"}, []string{"OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT", "an integer"}},
		{"recording flag", []string{"OPENVIDU_RECORDING", "yes please"}, []string{"OPENVIDU_RECORDING", "true or false"}},
		{"recording notification", []string{"OPENVIDU_RECORDING_NOTIFICATION", "everyone"}, []string{"OPENVIDU_RECORDING_NOTIFICATION", "none, moderator, publisher_moderator, all"}},
		{"relative recording path in production", append(prod, "OPENVIDU_RECORDING", "true", "OPENVIDU_RECORDING_PATH", "recs"), []string{"OPENVIDU_RECORDING_PATH", "an absolute path"}},
		{"unknown PARLEY_ name", []string{"PARLEY_MEDIA_PROT", "5000"}, []string{"PARLEY_MEDIA_PROT is not a setting Parley knows", "PARLEY_MEDIA_PORT"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := loadErr(t, tc.env...)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not mention %q:\n%s", w, msg)
				}
			}
		})
	}
}

func TestProductionSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		secret  []string
		wantErr string
	}{
		{"missing", nil, "OPENVIDU_SECRET is required"},
		{"empty, as in OpenVidu's .env template", []string{"OPENVIDU_SECRET", ""}, "OPENVIDU_SECRET is required"},
		{"dev secret", []string{"OPENVIDU_SECRET", "MY_SECRET"}, "too weak for production"},
		{"11 characters", []string{"OPENVIDU_SECRET", "abcdefghijk"}, "at least 12 characters"},
		{"12 characters", []string{"OPENVIDU_SECRET", "abcdefghijkl"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kv := append([]string{"DOMAIN_OR_PUBLIC_IP", "example.com"}, tc.secret...)
			lookup, environ := env(kv...)
			c, err := Load("", lookup, environ)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %+v, %v; want an error containing %q", c, err, tc.wantErr)
			}
			if len(tc.secret) == 2 && tc.secret[1] != "" && strings.Contains(err.Error(), tc.secret[1]+" ") {
				t.Errorf("the error echoes the secret: %v", err)
			}
		})
	}
	t.Run("dev mode accepts MY_SECRET", func(t *testing.T) {
		if c := mustLoad(t, "", "OPENVIDU_SECRET", "MY_SECRET"); c.Secret != "MY_SECRET" {
			t.Fatal(c.Secret)
		}
	})
}

// The operator sees every mistake in one go, one per line, sorted.
func TestAllProblemsAtOnce(t *testing.T) {
	t.Parallel()
	msg := loadErr(t,
		"DOMAIN_OR_PUBLIC_IP", "example.com",
		"OPENVIDU_SECRET", "short",
		"HTTPS_PORT", "x",
		"OPENVIDU_STREAMS_FORCED_VIDEO_CODEC", "AV1",
		"PARLEY_TURN", "perhaps",
		"PARLEY_TYPO", "1",
		"OTHER_TOOL_SETTING", "ignored",
	)
	lines := strings.Split(msg, "\n")
	if lines[0] != "invalid configuration:" || len(lines) != 6 {
		t.Fatalf("want a header and 5 problems, got:\n%s", msg)
	}
	for _, w := range []string{"OPENVIDU_SECRET", "HTTPS_PORT", "OPENVIDU_STREAMS_FORCED_VIDEO_CODEC", "PARLEY_TURN=", "PARLEY_TYPO"} {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %s:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "OTHER_TOOL_SETTING") {
		t.Errorf("names outside PARLEY_* belong to other tools and must not be reported:\n%s", msg)
	}
}

func TestParsedValues(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "",
		"PARLEY_MEDIA_ANNOUNCE_IPS", " 203.0.113.7 , 2001:db8::7 ",
		"PARLEY_MEDIA_LISTEN_IPS", "127.0.0.1",
		"OPENVIDU_WEBRTC_ICE_SERVERS", `["url=turns:turn.example.com:443?transport=tcp,staticAuthSecret=s3cr3t"]`,
		"OPENVIDU_SESSIONS_GARBAGE_INTERVAL", "0",
		"OPENVIDU_STREAMS_VIDEO_MAX_RECV_BANDWIDTH", "0",
		"OPENVIDU_STREAMS_VIDEO_MIN_RECV_BANDWIDTH", "500",
		"SUPPORT_DEPRECATED_API", "false",
		"PARLEY_TURN", "FALSE",
		"PARLEY_RECONNECT_GRACE", "30",
		"OPENVIDU_RECORDING", "true",
		"OPENVIDU_RECORDING_PATH", "/srv/recs",
		"OPENVIDU_RECORDING_PUBLIC_ACCESS", "true",
		"OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT", "0",
		"OPENVIDU_RECORDING_NOTIFICATION", "all",
	)
	if r := c.Recording; !r.Enabled || r.Path != "/srv/recs" || !r.PublicAccess || r.AutostopTimeout != 0 || c.Session.RecordingNotification != "all" {
		t.Errorf("recording %+v, notification %q", r, c.Session.RecordingNotification)
	}
	want := []netip.Addr{netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8::7")}
	if !reflect.DeepEqual(c.Media.AnnounceIPs, want) || len(c.Media.ListenIPs) != 1 {
		t.Errorf("announce %v listen %v", c.Media.AnnounceIPs, c.Media.ListenIPs)
	}
	if len(c.IceServers) != 1 || c.IceServers[0].StaticAuthSecret != "s3cr3t" {
		t.Errorf("ice servers %+v", c.IceServers)
	}
	if c.Session.GarbageInterval != 0 || c.Media.MaxRecvBandwidth != 0 || c.SupportDeprecatedAPI || c.TURN.Enabled || c.Session.ReconnectGrace != 30*time.Second {
		t.Errorf("%+v", c)
	}
}

// Configuration errors end up in logs: they must not carry secrets.
func TestErrorsDoNotEchoSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, secret string
		env          []string
	}{
		{"bad secret characters", "p@ss word", []string{"OPENVIDU_SECRET", "p@ss word"}},
		{"ICE entry with an unknown key", "hunter2hunter2", []string{"OPENVIDU_WEBRTC_ICE_SERVERS", `["url=turn:t.example.com,username=u,credential=hunter2hunter2,colour=red"]`}},
		{"ICE entry without '='", "hunter2hunter2", []string{"OPENVIDU_WEBRTC_ICE_SERVERS", `["url=turn:t.example.com,username=u,hunter2hunter2"]`}},
		{"stun with a secret", "hunter2hunter2", []string{"OPENVIDU_WEBRTC_ICE_SERVERS", `["url=stun:t.example.com,staticAuthSecret=hunter2hunter2"]`}},
		{"app users", "pw-hunter2", []string{"PARLEY_APP_USERS", "ann:pw-hunter2,bob"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if msg := loadErr(t, tc.env...); strings.Contains(msg, tc.secret) {
				t.Errorf("error echoes %q:\n%s", tc.secret, msg)
			}
		})
	}
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ value, want string }{
		{"", "[127.0.0.0/8 ::1/128]"},
		{"10.0.0.0/8, 192.0.2.7,2001:db8::/32", "[10.0.0.0/8 192.0.2.7/32 2001:db8::/32]"},
		{"10.1.2.3/8", "[10.0.0.0/8]"},
		{"none", "[]"},
	} {
		c := mustLoad(t, "", "PARLEY_TRUSTED_PROXIES", tc.value)
		if got := fmt.Sprint(c.TrustedProxies); got != tc.want {
			t.Errorf("PARLEY_TRUSTED_PROXIES=%q → %s, want %s", tc.value, got, tc.want)
		}
	}
	if err := loadErr(t, "PARLEY_TRUSTED_PROXIES", "proxy.example.com"); !strings.Contains(err, "PARLEY_TRUSTED_PROXIES") {
		t.Errorf("a host name: %v, want an error naming the setting", err)
	}
}

func TestProxyProtocolFrom(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ value, want string }{
		{"", "[]"}, // off unless asked for: a PROXY header from anyone is refused
		{"192.0.2.10, 10.0.0.0/24", "[192.0.2.10/32 10.0.0.0/24]"},
		{"none", "[]"},
	} {
		c := mustLoad(t, "", "PARLEY_PROXY_PROTOCOL_FROM", tc.value)
		if got := fmt.Sprint(c.ProxyProtocolFrom); got != tc.want {
			t.Errorf("PARLEY_PROXY_PROTOCOL_FROM=%q → %s, want %s", tc.value, got, tc.want)
		}
	}
	if err := loadErr(t, "PARLEY_PROXY_PROTOCOL_FROM", "lb.example.com"); !strings.Contains(err, "PARLEY_PROXY_PROTOCOL_FROM") {
		t.Errorf("a host name: %v, want an error naming the setting", err)
	}
}

func TestBehindProxy(t *testing.T) {
	t.Parallel()
	prod := []string{"DOMAIN_OR_PUBLIC_IP", "meet.example.com", "OPENVIDU_SECRET", prodSecret, "PARLEY_BEHIND_PROXY", "true"}
	t.Run("defaults", func(t *testing.T) {
		c := mustLoad(t, "", prod...)
		p := c.Proxy
		if !p.Enabled || p.HTTPAddr != "127.0.0.1:5443" || p.MediaTCPPort != 443 || p.TURNHost != "meet.example.com" || p.TURNPort != 443 {
			t.Errorf("proxied defaults: %+v", p)
		}
		if c.PublicURL() != "https://meet.example.com/" || c.WebSocketURL() != "wss://meet.example.com/openvidu" {
			t.Errorf("public URL %s, signaling %s", c.PublicURL(), c.WebSocketURL())
		}
	})
	t.Run("media TCP port follows the UDP one; the turns: host defaults to port 443", func(t *testing.T) {
		c := mustLoad(t, "", append(prod, "PARLEY_MEDIA_PORT", "10000", "PARLEY_TURN_TLS_HOST", "turn.example.com")...).Proxy
		if c.MediaTCPPort != 10000 || c.TURNHost != "turn.example.com" || c.TURNPort != 443 {
			t.Errorf("%+v", c)
		}
		c = mustLoad(t, "", append(prod, "PARLEY_MEDIA_TCP_PORT", "5349", "PARLEY_TURN_TLS_HOST", "turn.example.com:8443")...).Proxy
		if c.MediaTCPPort != 5349 || c.TURNPort != 8443 {
			t.Errorf("%+v", c)
		}
	})
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"dev mode", []string{"PARLEY_BEHIND_PROXY", "true"}, "PARLEY_BEHIND_PROXY=true needs DOMAIN_OR_PUBLIC_IP"},
		{"not a boolean", append(prod[:4:4], "PARLEY_BEHIND_PROXY", "nginx"), `PARLEY_BEHIND_PROXY="nginx" is invalid`},
		{"no trusted proxy", append(prod, "PARLEY_TRUSTED_PROXIES", "none"), "needs PARLEY_TRUSTED_PROXIES"},
		{"bad listen address", append(prod, "PARLEY_HTTP_ADDR", "5443"), `PARLEY_HTTP_ADDR="5443" is invalid`},
		{"turns host with a scheme", append(prod, "PARLEY_TURN_TLS_HOST", "turns://turn.example.com"), "PARLEY_TURN_TLS_HOST"},
		{"proxy settings without proxied mode", append(prod[:4:4], "PARLEY_HTTP_ADDR", "127.0.0.1:5443"), "PARLEY_HTTP_ADDR is only read with PARLEY_BEHIND_PROXY=true"},
		{"letsencrypt for an IP", append(prod, "CERTIFICATE_TYPE", "letsencrypt", "LETSENCRYPT_EMAIL", "a@b.c", "PARLEY_TURN_TLS_HOST", "192.0.2.1"), "PARLEY_TURN_TLS_HOST must be a DNS name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := loadErr(t, tc.env...); !strings.Contains(err, tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// A Config changed or built after loading is checked by the same rules, every problem at once.
func TestValidate(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "", "DOMAIN_OR_PUBLIC_IP", "example.com", "OPENVIDU_SECRET", prodSecret)
	if err := c.Validate(); err != nil {
		t.Fatalf("a loaded configuration fails Validate: %v", err)
	}
	bad := *c
	bad.Secret = DevSecret
	bad.Media.MinSendBandwidth = bad.Media.MaxSendBandwidth + 1
	bad.Recording.Enabled, bad.Recording.Path = true, "recordings"
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate accepted a weak secret, min above max and a relative recording path")
	}
	for _, w := range []string{"OPENVIDU_SECRET is too weak", "MIN_SEND_BANDWIDTH must not exceed", `OPENVIDU_RECORDING_PATH="recordings"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the copy's problems leaked into the original: %v", err)
	}
}

// Production's defaults, the counterpart of TestDevDefaults for the settings that differ by mode.
func TestProductionDefaults(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "", "DOMAIN_OR_PUBLIC_IP", "example.com", "OPENVIDU_SECRET", prodSecret)
	got := []any{c.HTTPSPort, c.DataDir, c.Recording.Path, c.CDR.Path, c.Metrics.Addr, c.App.Private}
	want := []any{443, "/var/lib/parley", "/opt/openvidu/recordings", "/opt/openvidu/cdr", "127.0.0.1:9464", true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	d := mustLoad(t, "", "PARLEY_DATA_DIR", "/srv/p")
	if d.Recording.Path != "/srv/p/recordings" || d.CDR.Path != "/srv/p/cdr" || d.Metrics.Addr != "" || d.App.Private {
		t.Fatalf("dev mode: recordings %s, cdr %s, metrics %q, private %v", d.Recording.Path, d.CDR.Path, d.Metrics.Addr, d.App.Private)
	}
}
