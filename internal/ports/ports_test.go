package ports

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/mediaaddr"
)

func load(t *testing.T, kv ...string) *config.Config {
	t.Helper()
	env := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, environ)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func row(r Report, purpose string) (Row, bool) {
	for _, x := range r.Rows {
		if strings.HasPrefix(x.Purpose, purpose) {
			return x, true
		}
	}
	return Row{}, false
}

var production = []string{"DOMAIN_OR_PUBLIC_IP", "meet.example.com", "OPENVIDU_SECRET", "a-long-production-secret"}

func TestMetricsListener(t *testing.T) {
	t.Run("production: on loopback by default", func(t *testing.T) {
		r := Build(load(t, production...))
		m, ok := row(r, "Prometheus")
		if !ok || m.Port != "9464" || m.Protocol != "TCP" || m.Direction != "inbound" || !strings.Contains(m.Bind, "loopback") || m.Auth == "" {
			t.Fatalf("metrics row %+v (found %v)", m, ok)
		}
		for _, n := range r.Notes {
			if strings.Contains(n, "PARLEY_METRICS_ADDR") {
				t.Errorf("a loopback listener needs no warning: %s", n)
			}
		}
		var mm strings.Builder
		_ = r.WriteMermaid(&mm)
		if !strings.Contains(mm.String(), `"TCP 9464: /metrics" --> metrics`) {
			t.Errorf("the diagram lacks the metrics flow:\n%s", mm.String())
		}
	})
	t.Run("exposed: a note says it has no authentication", func(t *testing.T) {
		r := Build(load(t, append(production, "PARLEY_METRICS_ADDR", "0.0.0.0:9100")...))
		m, _ := row(r, "Prometheus")
		if m.Port != "9100" || m.Bind != "all interfaces" {
			t.Fatalf("metrics row %+v", m)
		}
		if !strings.Contains(strings.Join(r.Notes, "\n"), "no authentication") {
			t.Errorf("notes %q", r.Notes)
		}
	})
	t.Run("off", func(t *testing.T) {
		for _, cfg := range []*config.Config{load(t), load(t, append(production, "PARLEY_METRICS_ADDR", "off")...)} {
			if m, ok := row(Build(cfg), "Prometheus"); ok {
				t.Errorf("metrics off, yet %+v", m)
			}
		}
	})
}

func TestWebhookRowNamesTheHostOnly(t *testing.T) {
	r := Build(load(t, append(production, "OPENVIDU_WEBHOOK", "true", "OPENVIDU_WEBHOOK_ENDPOINT", "https://hooks.example.org/in?key=s3cret")...))
	w, ok := row(r, "OpenVidu webhook")
	if !ok || w.Port != "443" || w.Direction != "outbound" || !strings.Contains(w.Peer, "hooks.example.org") {
		t.Fatalf("webhook row %+v (found %v)", w, ok)
	}
	var b strings.Builder
	_ = r.WriteText(&b)
	_ = r.WriteMermaid(&b)
	if strings.Contains(b.String(), "s3cret") || strings.Contains(b.String(), "/in") {
		t.Errorf("the endpoint's path or query is shown:\n%s", b.String())
	}
}

func TestPrivateLowPorts(t *testing.T) {
	priv, pub, v6 := netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("fd00::5")
	for _, tc := range []struct {
		name     string
		addrs    []netip.Addr
		udp, tcp int
		want     []string // one substring per warning
	}{
		{"private on 443", []netip.Addr{priv}, 443, 443, []string{"10.0.0.5 is private and the media port UDP 443"}},
		{"private v6 on 443", []netip.Addr{v6}, 443, 443, []string{"fd00::5"}},
		{"public on 443", []netip.Addr{pub}, 443, 443, nil},
		{"private, media port moved up: ICE-TCP still refused", []netip.Addr{priv}, 40000, 443, []string{"ICE-TCP shares TCP 443"}},
		{"private on high ports", []netip.Addr{priv}, 4443, 4443, nil},
		{"mixed", []netip.Addr{pub, priv}, 443, 443, []string{"10.0.0.5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PrivateLowPorts(tc.addrs, tc.udp, tc.tcp)
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %q lacks %q", got[i], w)
				}
			}
		})
	}
}

func TestReportWarnsForAPrivateAnnouncedAddress(t *testing.T) {
	r := Build(load(t, append(production, "PARLEY_MEDIA_ANNOUNCE_IPS", "192.168.1.20")...))
	if len(r.Notes) == 0 || !strings.HasPrefix(r.Notes[0], "WARNING: media address 192.168.1.20 is private") {
		t.Fatalf("notes %q", r.Notes)
	}
	r = Build(load(t, append(production, "PARLEY_MEDIA_ANNOUNCE_IPS", "198.51.100.20")...))
	for _, n := range r.Notes {
		if strings.HasPrefix(n, "WARNING") {
			t.Errorf("public address, yet %q", n)
		}
	}
}

// TestMediaBindShowsChosenAddresses: the media row lists the addresses the server binds, and a
// note says why each other one is not bound.
func TestMediaBindShowsChosenAddresses(t *testing.T) {
	host := []mediaaddr.Addr{
		{IP: netip.MustParseAddr("127.0.0.1"), Interface: "lo", Up: true, Loopback: true},
		{IP: netip.MustParseAddr("192.0.2.10"), Interface: "eth0", Up: true},
		{IP: netip.MustParseAddr("2001:db8::5"), Interface: "eth0", Up: true, Tentative: true},
		{IP: netip.MustParseAddr("fe80::1%eth0"), Interface: "eth0", Up: true},
	}
	r := build(load(t, production...), host)
	m, ok := row(r, "all WebRTC media")
	if !ok || !strings.HasPrefix(m.Bind, "192.0.2.10 (every usable address") {
		t.Errorf("media row bind = %q, want 192.0.2.10 only", m.Bind)
	}
	notes := strings.Join(r.Notes, "\n")
	for _, want := range []string{"2001:db8::5 (eth0): tentative", "fe80::1%eth0 (eth0): link-local", "127.0.0.1 (lo): loopback"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	r = build(load(t, append(production, "PARLEY_MEDIA_LISTEN_IPS", "192.0.2.10")...), host)
	if m, _ := row(r, "all WebRTC media"); m.Bind != "192.0.2.10 (PARLEY_MEDIA_LISTEN_IPS)" {
		t.Errorf("with PARLEY_MEDIA_LISTEN_IPS the media row bind = %q", m.Bind)
	}
}

func TestProxiedLayout(t *testing.T) {
	t.Parallel()
	proxied := append(production[:len(production):len(production)], "PARLEY_BEHIND_PROXY", "true")
	warnings := func(r Report) string {
		var w []string
		for _, n := range r.Notes {
			if strings.HasPrefix(n, "WARNING") && !strings.Contains(n, "below 1024") { // the host's own addresses vary
				w = append(w, n)
			}
		}
		return strings.Join(w, "\n")
	}
	t.Run("SNI split: the proxy's 443 carries the web and TURN/TLS by name", func(t *testing.T) {
		r := build(load(t, append(proxied, "PARLEY_MEDIA_TCP_PORT", "5349", "PARLEY_TURN_TLS_HOST", "turn.example.com")...), nil)
		if r.Mode != ModeBehindProxy {
			t.Errorf("mode %q", r.Mode)
		}
		want := map[string]string{
			"HTTPS + WSS at https://meet.example.com/":  "443 TCP your reverse proxy",
			"TURN over TLS to turn.example.com":         "443 TCP your reverse proxy",
			"plain HTTP + WebSocket":                    "5443 TCP 127.0.0.1 only (loopback)",
			"ICE-TCP media; TURN over TLS and over TCP": "5349 TCP all interfaces",
			"all WebRTC media":                          "443 UDP no usable address yet (bound on each as it appears)",
		}
		for purpose, where := range want {
			x, ok := row(r, purpose)
			if got := x.Port + " " + x.Protocol + " " + x.Bind; !ok || got != where {
				t.Errorf("%q: %q (found %v), want %q", purpose, got, ok, where)
			}
		}
		if _, ok := row(r, "redirect"); ok {
			t.Error("a row for HTTP_PORT: the proxy owns it")
		}
		if w := warnings(r); w != "" {
			t.Errorf("warnings for a sound layout:\n%s", w)
		}
		var b strings.Builder
		_ = r.WriteMermaid(&b)
		if !strings.Contains(b.String(), `proxy -- "TLS passed through untouched" --> edge`) || !strings.Contains(b.String(), `proxy -- "TCP 5443: HTTP + WS, X-Forwarded-For" --> web`) {
			t.Errorf("diagram misses the proxy's flows:\n%s", b.String())
		}
	})
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"turns: at the web's own name and port", nil, "the turns: URL is meet.example.com:443, the web's own name and port"},
		{"loopback listener, no loopback proxy", []string{"PARLEY_TRUSTED_PROXIES", "10.0.0.0/8", "PARLEY_MEDIA_TCP_PORT", "5349"}, "PARLEY_TRUSTED_PROXIES has no loopback address"},
		{"everyone trusted", []string{"PARLEY_TRUSTED_PROXIES", "0.0.0.0/0", "PARLEY_HTTP_ADDR", ":5443", "PARLEY_MEDIA_TCP_PORT", "5349"}, "PARLEY_TRUSTED_PROXIES has 0.0.0.0/0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := build(load(t, append(proxied, tc.env...)...), nil)
			if w := warnings(r); !strings.Contains(w, tc.want) {
				t.Errorf("warnings %q do not say %q", w, tc.want)
			}
		})
	}
}

// In a cluster the media port also carries the inter-node links, and says so; alone it does not.
func TestInterNodeLinksRow(t *testing.T) {
	if _, ok := row(Build(load(t, production...)), "inter-node media"); ok {
		t.Fatal("a lone node lists inter-node links")
	}
	r := Build(load(t, append(production, "PARLEY_REDIS_URL", "redis://redis.internal:6379/0", "PARLEY_NODE_ID", "n1")...))
	l, ok := row(r, "inter-node media")
	if !ok || l.Port != "443" || l.Protocol != "UDP" || !strings.Contains(l.Auth, "HMAC") || !strings.Contains(l.Auth, "SRTP") {
		t.Fatalf("link row %+v (found %v)", l, ok)
	}
}

// Behind an L4 balancer sending the PROXY protocol, the edge's TCP port says who may send the
// header; without the setting, nothing mentions it.
func TestProxyProtocolRow(t *testing.T) {
	if _, ok := row(Build(load(t, production...)), "the above passed through"); ok {
		t.Fatal("PROXY protocol listed without PARLEY_PROXY_PROTOCOL_FROM")
	}
	l, ok := row(Build(load(t, append(production, "PARLEY_PROXY_PROTOCOL_FROM", "10.0.0.10")...)), "the above passed through")
	if !ok || l.Port != "443" || l.Protocol != "TCP" || !strings.Contains(l.Peer, "10.0.0.10/32") || !strings.Contains(l.Purpose, "PROXY protocol") {
		t.Fatalf("PROXY protocol row %+v (found %v)", l, ok)
	}
	l, ok = row(Build(load(t, append(production, "PARLEY_PROXY_PROTOCOL_FROM", "10.0.0.10", "PARLEY_BEHIND_PROXY", "true", "PARLEY_MEDIA_TCP_PORT", "5349")...)), "the above passed through")
	if !ok || l.Port != "5349" {
		t.Fatalf("behind a proxy, the row names the media TCP port: %+v (found %v)", l, ok)
	}
}

func TestRedisRows(t *testing.T) {
	r := Build(load(t, append(production, "PARLEY_REDIS_URL", "rediss://:s3cret@redis.internal:6380/0", "PARLEY_NODE_ID", "n1")...))
	l, ok := row(r, "the cluster's shared state")
	if !ok || l.Port != "6380" || l.Direction != "outbound" || !strings.Contains(l.Peer, "redis.internal") || !strings.Contains(l.Auth, "TLS") {
		t.Fatalf("redis row %+v (found %v)", l, ok)
	}
	r = Build(load(t, append(production, "PARLEY_REDIS_URL", "redis://:s3cret@s1:26379/0?master_name=main&addr=s2:26379&password=m4ster", "PARLEY_NODE_ID", "n1")...))
	var b strings.Builder
	_ = r.WriteText(&b)
	for _, want := range []string{"Redis Sentinel s1", "Redis Sentinel s2", "Redis master main"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "s3cret") || strings.Contains(b.String(), "m4ster") {
		t.Errorf("a password is shown:\n%s", b.String())
	}
}
