// Package config holds Parley's effective configuration: defaults, the .env file, the environment,
// and the checks that run before anything starts.
//
// Names follow OpenVidu 2 (OPENVIDU_*, DOMAIN_OR_PUBLIC_IP, HTTPS_PORT…) so an existing OpenVidu .env
// works unchanged; settings of our own are PARLEY_*. This package imports nothing of ours: every other
// package receives only the sub-struct it needs.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DevSecret is the secret of OpenVidu's public dev container; accepted only in dev mode.
const DevSecret = "MY_SECRET"

// Config is the whole effective configuration.
type Config struct {
	// Dev is true when DOMAIN_OR_PUBLIC_IP is empty: plain HTTP on localhost, like openvidu-dev.
	Dev bool
	// Domain is DOMAIN_OR_PUBLIC_IP: the public host written into tokens and URLs.
	Domain string
	// Secret is OPENVIDU_SECRET, the REST password (user OPENVIDUAPP). Default MY_SECRET in dev mode.
	Secret string
	// HTTPSPort is HTTPS_PORT: the one public TCP port (default 443, 4443 in dev mode).
	HTTPSPort int
	// HTTPPort is HTTP_PORT: redirects to HTTPS and answers ACME (default 80; unused in dev mode).
	HTTPPort int
	// CertificateType is CERTIFICATE_TYPE: selfsigned (default), owncert or letsencrypt.
	CertificateType string
	// SupportDeprecatedAPI is SUPPORT_DEPRECATED_API (default true): legacy /api/* paths.
	SupportDeprecatedAPI bool
	// LogLevel is PARLEY_LOG_LEVEL: debug, info (default), warn or error.
	LogLevel string
	// MemoryLimitMiB is PARLEY_MEMORY_LIMIT in MiB: the Go runtime's soft memory limit. Default
	// 0: 80 % of the cgroup's memory.max, else of the machine's RAM; GOMEMLIMIT, when set, wins.
	MemoryLimitMiB int

	// DataDir is PARLEY_DATA_DIR: where state that must survive restarts lives (the self-signed
	// certificate, the ACME cache). Default /var/lib/parley, or .parley in dev mode.
	DataDir string
	// IceServers is OPENVIDU_WEBRTC_ICE_SERVERS: external STUN/TURN servers sent to every client
	// besides the embedded TURN.
	IceServers []IceServer
	// TrustedProxies is PARLEY_TRUSTED_PROXIES: the reverse proxies (CIDRs or addresses, comma
	// separated; "none" for none) whose X-Forwarded-For and X-Real-IP name the participant's
	// address. Default loopback (127.0.0.0/8, ::1): a proxy on this machine. From any other peer
	// the headers are ignored.
	TrustedProxies []netip.Prefix
	// ProxyProtocolFrom is PARLEY_PROXY_PROTOCOL_FROM: the L4 load balancers (CIDRs or
	// addresses, comma separated; default "none") in front of the edge's TCP port (HTTPS_PORT,
	// or PARLEY_MEDIA_TCP_PORT behind a proxy) that send a PROXY protocol header (v1 or v2).
	// Their connections must carry one, and its client address stands for the balancer's in
	// HTTP, TURN and ICE-TCP; a header from any other peer is refused.
	ProxyProtocolFrom []netip.Prefix

	Session SessionConfig
	Media   MediaConfig
	TLS     TLSConfig
	TURN    TURNConfig
	App     AppConfig
	Webhook WebhookConfig
	CDR     CDRConfig
	Metrics MetricsConfig
	// Proxy is proxied mode (PARLEY_BEHIND_PROXY): behind the organisation's reverse proxy.
	Proxy ProxyConfig
	// Recording is what internal/recording needs.
	Recording RecordingConfig
	// Cluster is what internal/cluster needs; without PARLEY_REDIS_URL this node runs alone.
	Cluster ClusterConfig
}

// ClusterConfig is what internal/cluster needs: several nodes share sessions through Redis.
type ClusterConfig struct {
	// RedisURL is PARLEY_REDIS_URL: redis://[[user]:password@]host[:port][/db], or rediss:// for
	// TLS. Empty (default): one node exactly as before, no Redis needed. Every node needs the same
	// OPENVIDU_SECRET.
	RedisURL string
	// NodeID is PARLEY_NODE_ID: this node's name in the cluster, unique among the nodes (letters,
	// digits, '.', '_' and '-', at most 64). Default: the host name.
	NodeID string
}

// RecordingConfig is what internal/recording needs (protocol note §10, §12.1).
type RecordingConfig struct {
	// Enabled is OPENVIDU_RECORDING (default false): off, every recording endpoint answers 501.
	Enabled bool
	// Path is OPENVIDU_RECORDING_PATH: one folder per recording (default /opt/openvidu/recordings,
	// as OpenVidu; <PARLEY_DATA_DIR>/recordings in dev mode).
	Path string
	// PublicAccess is OPENVIDU_RECORDING_PUBLIC_ACCESS (default false): serve
	// /openvidu/recordings/** without the REST credentials.
	PublicAccess bool
	// AutostopTimeout is OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT (default 120 s, 0 = at once): how long a
	// recording goes on after the last participant left, or with nobody publishing.
	AutostopTimeout time.Duration
}

// AppConfig is what the built-in videoconference app, the device test and the customer-app proxy
// need (internal/app).
type AppConfig struct {
	// Private is PARLEY_APP_PRIVATE: rooms and the device test need a login from Users. Default true
	// in production (a public server must not hand out media rooms to anyone who finds it), false in
	// dev mode unless PARLEY_APP_USERS is set.
	Private bool
	// Users is PARLEY_APP_USERS, "user:password" pairs separated by commas (a password may contain
	// ':' but not ','). Private with no users means nobody can use the app.
	Users map[string]string
	// Upstream is PARLEY_APP_UPSTREAM, e.g. http://127.0.0.1:5442: the customer's application, to
	// which every path that is not Parley's own is proxied (what nginx did for OpenVidu CE). Empty:
	// the built-in app is served at /.
	Upstream string
	// MaxParticipants is PARLEY_APP_MAX_PARTICIPANTS (default 16, what the room grid lays out): the
	// most people in one app room; screen shares do not count.
	MaxParticipants int
}

// TLSConfig is what the edge needs to terminate TLS in production mode.
type TLSConfig struct {
	// Type is CERTIFICATE_TYPE: selfsigned, owncert or letsencrypt.
	Type string
	// CertFile and KeyFile are PARLEY_CERT_FILE / PARLEY_KEY_FILE, the PEM files of an owncert
	// (default owncert/certificate.cert and owncert/certificate.key, OpenVidu's layout).
	CertFile string
	KeyFile  string
	// Email is LETSENCRYPT_EMAIL, the ACME account contact.
	Email string
	// ACMEDirectory is PARLEY_ACME_DIRECTORY (default Let's Encrypt production).
	ACMEDirectory string
}

// TURNConfig is what the embedded TURN server needs.
type TURNConfig struct {
	// Enabled is PARLEY_TURN (default true): TURN over TCP and TLS on the shared TCP port.
	Enabled bool
	// UDPPort is PARLEY_TURN_UDP_PORT (default 0 = off; OpenVidu used 3478). TURN over UDP is only
	// useful where UDP reaches us but not our media port.
	UDPPort int
	// MaxAllocationsPerConnection is PARLEY_TURN_MAX_ALLOCATIONS_PER_CONNECTION (default 100), the
	// ceiling of a participant's TURN allocations; the bound in force is 6 per PeerConnection it
	// has (one per publish and per subscription) plus 12 (internal/turn/share.go).
	MaxAllocationsPerConnection int
	// MaxAllocations is PARLEY_TURN_MAX_ALLOCATIONS (default 1000) for this node.
	MaxAllocations int
}

// SessionConfig is what the session model and the signaling layer need.
type SessionConfig struct {
	// GarbageInterval is OPENVIDU_SESSIONS_GARBAGE_INTERVAL (default 900 s; 0 disables the collector
	// of sessions that nobody ever joined).
	GarbageInterval time.Duration
	// GarbageThreshold is OPENVIDU_SESSIONS_GARBAGE_THRESHOLD (default 3600 s): the age a never-joined
	// session must reach before it is collected.
	GarbageThreshold time.Duration
	// ForcedVideoCodec is OPENVIDU_STREAMS_FORCED_VIDEO_CODEC: MEDIA_SERVER_PREFERRED (= VP8), NONE,
	// VP8, VP9 or H264. Sessions may override it.
	ForcedVideoCodec string
	// AllowTranscoding is OPENVIDU_STREAMS_ALLOW_TRANSCODING; reported only, Parley never transcodes.
	AllowTranscoding bool
	// ReconnectGrace is PARLEY_RECONNECT_GRACE (default 10 s): how long a participant whose socket
	// dropped is kept, waiting for the client's `connect`.
	ReconnectGrace time.Duration
	// PingTimeout is PARLEY_PING_TIMEOUT (default 15 s = 3 × the SDK's 5 s interval): a socket that
	// sends no ping for this long is closed.
	PingTimeout time.Duration
	// RecordingNotification is OPENVIDU_RECORDING_NOTIFICATION: which roles are told of recordings
	// (none, moderator, publisher_moderator (default), all).
	RecordingNotification string
}

// MediaConfig is what the SFU needs.
type MediaConfig struct {
	// Port is PARLEY_MEDIA_PORT: the one UDP port for all ICE media (default: the same as HTTPS_PORT).
	Port int
	// AnnounceIPs is PARLEY_MEDIA_ANNOUNCE_IPS: addresses written into our ICE candidates instead of the
	// interface addresses (public IP behind 1:1 NAT). Empty: the interface addresses.
	AnnounceIPs []netip.Addr
	// ListenIPs is PARLEY_MEDIA_LISTEN_IPS: interface addresses to bind the media port on. Empty: every
	// up interface (loopback included in dev mode).
	ListenIPs []netip.Addr
	// MaxRecvBandwidth is OPENVIDU_STREAMS_VIDEO_MAX_RECV_BANDWIDTH in kbps (default 1000, 0 = no cap):
	// the most a publisher is asked to send.
	MaxRecvBandwidth int
	// MinRecvBandwidth is OPENVIDU_STREAMS_VIDEO_MIN_RECV_BANDWIDTH in kbps (default 300).
	MinRecvBandwidth int
	// MaxSendBandwidth is OPENVIDU_STREAMS_VIDEO_MAX_SEND_BANDWIDTH in kbps (default 1000).
	MaxSendBandwidth int
	// MinSendBandwidth is OPENVIDU_STREAMS_VIDEO_MIN_SEND_BANDWIDTH in kbps (default 300).
	MinSendBandwidth int
	// Simulcast is OPENVIDU_WEBRTC_SIMULCAST (default true): joinRoom reports mediaServer
	// "mediasoup" with videoSimulcast, so the stock client publishes simulcast layers and takes
	// its subscriptions from server offers, as OpenVidu's mediasoup edition did.
	Simulcast bool
}

// PublicURL is the base URL clients use, with a trailing slash (OpenVidu's openvidu-publicurl).
func (c *Config) PublicURL() string {
	if c.Dev {
		return fmt.Sprintf("http://localhost:%d/", c.HTTPSPort)
	}
	host := c.Domain
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
		host = "[" + host + "]" // RFC 3986: an IPv6 literal in a URL is bracketed
	}
	if c.HTTPSPort == 443 {
		return "https://" + host + "/"
	}
	return fmt.Sprintf("https://%s:%d/", host, c.HTTPSPort)
}

// WebSocketURL is the signaling URL written into tokens: the public URL with ws(s) and path /openvidu.
func (c *Config) WebSocketURL() string {
	u := c.PublicURL()
	u = strings.Replace(u, "http", "ws", 1) // http→ws, https→wss
	return u + "openvidu"
}

// Lookup returns the value of a variable and whether it is set (os.LookupEnv's shape).
type Lookup func(name string) (string, bool)

// Load builds the configuration from defaults, then the .env file at dotenvPath (if it exists), then
// the process environment given by env, and validates the result. The returned error lists every
// problem at once.
//
// dotenvPath may name the file or, as OpenVidu's DOTENV_PATH does (its deployments set it to the
// installation directory), the directory holding .env. An empty value counts as unset wherever it
// comes from, so an empty environment variable does not hide the .env file's value.
func Load(dotenvPath string, env Lookup, environ []string) (*Config, error) {
	file := map[string]string{}
	if dotenvPath != "" {
		if fi, err := os.Stat(dotenvPath); err == nil && fi.IsDir() {
			dotenvPath = filepath.Join(dotenvPath, ".env")
		}
		data, err := os.ReadFile(dotenvPath)
		switch {
		case err == nil:
			if file, err = ParseDotenv(string(data)); err != nil {
				return nil, fmt.Errorf("%s: %w", dotenvPath, err)
			}
		case !errors.Is(err, os.ErrNotExist):
			return nil, err
		}
	}
	get := func(name string) (string, bool) {
		if v, ok := env(name); ok && v != "" {
			return v, true
		}
		if v, ok := file[name]; ok {
			return v, true
		}
		return env(name)
	}
	var names []string
	for k := range file {
		names = append(names, k)
	}
	for _, kv := range environ {
		if k, _, ok := strings.Cut(kv, "="); ok {
			names = append(names, k)
		}
	}
	return parse(get, names)
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// ParseDotenv reads KEY=VALUE lines; blank lines and # comments are skipped, values may be quoted.
// A name that is not an environment variable name is an error rather than a setting nobody reads
// (a byte-order mark left by an editor would otherwise hide the first line).
func ParseDotenv(text string) (map[string]string, error) {
	out := map[string]string{}
	text = strings.TrimPrefix(text, "\uFEFF")
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: expected NAME=value", i+1)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !envNameRE.MatchString(k) {
			return nil, fmt.Errorf("line %d: %q is not a variable name", i+1, k)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	return out, nil
}

// known lists the PARLEY_* names we read, so a typo is reported instead of silently ignored.
var known = []string{
	"PARLEY_LOG_LEVEL", "PARLEY_MEDIA_PORT", "PARLEY_MEDIA_ANNOUNCE_IPS", "PARLEY_MEDIA_LISTEN_IPS",
	"PARLEY_RECONNECT_GRACE", "PARLEY_PING_TIMEOUT", "PARLEY_DATA_DIR", "PARLEY_CERT_FILE",
	"PARLEY_KEY_FILE", "PARLEY_ACME_DIRECTORY", "PARLEY_TURN", "PARLEY_TURN_UDP_PORT",
	"PARLEY_TURN_MAX_ALLOCATIONS_PER_CONNECTION", "PARLEY_TURN_MAX_ALLOCATIONS",
	"PARLEY_APP_PRIVATE", "PARLEY_APP_USERS", "PARLEY_APP_UPSTREAM", "PARLEY_APP_MAX_PARTICIPANTS",
	"PARLEY_WEBHOOK_SECRET", "PARLEY_WEBHOOK_RETRY_TIMEOUT", "PARLEY_METRICS_ADDR",
	"PARLEY_MEMORY_LIMIT",
	"PARLEY_TRUSTED_PROXIES", "PARLEY_PROXY_PROTOCOL_FROM",
	"PARLEY_BEHIND_PROXY", "PARLEY_HTTP_ADDR", "PARLEY_MEDIA_TCP_PORT", "PARLEY_TURN_TLS_HOST",
	"PARLEY_REDIS_URL", "PARLEY_NODE_ID",
}

var secretRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// problems collects every validation error so start-up reports them all at once.
type problems []string

func (p *problems) add(name, value, allowed string) {
	*p = append(*p, fmt.Sprintf("%s=%q is invalid: %s", name, value, allowed))
}

func parse(get Lookup, names []string) (*Config, error) {
	var bad problems
	str := func(name, def string) string {
		if v, ok := get(name); ok && v != "" {
			return v
		}
		return def
	}
	num := func(name string, def, lo, hi int) int {
		v, ok := get(name)
		if !ok || v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			bad.add(name, v, fmt.Sprintf("an integer from %d to %d", lo, hi))
			return def
		}
		return n
	}
	boolean := func(name string, def bool) bool {
		v, ok := get(name)
		if !ok || v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad.add(name, v, "true or false")
			return def
		}
		return b
	}
	oneOf := func(name, def string, allowed ...string) string {
		v := str(name, def)
		if !slices.Contains(allowed, v) {
			bad.add(name, v, "one of "+strings.Join(allowed, ", "))
			return def
		}
		return v
	}
	ips := func(name string) []netip.Addr {
		v := str(name, "")
		var out []netip.Addr
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			a, err := netip.ParseAddr(f)
			if err != nil {
				bad.add(name, v, "a comma-separated list of IP addresses")
				return nil
			}
			out = append(out, a)
		}
		return out
	}

	c := &Config{}
	c.Domain = str("DOMAIN_OR_PUBLIC_IP", "")
	c.Dev = c.Domain == ""
	d := defaultsFor(c.Dev)
	c.Secret = str("OPENVIDU_SECRET", d.Secret)
	c.HTTPSPort = num("HTTPS_PORT", d.HTTPSPort, 0, 65535) // 0: the kernel picks (tests)
	c.HTTPPort = num("HTTP_PORT", 80, 1, 65535)
	c.CertificateType = oneOf("CERTIFICATE_TYPE", "selfsigned", "selfsigned", "owncert", "letsencrypt")
	c.SupportDeprecatedAPI = boolean("SUPPORT_DEPRECATED_API", true)
	c.LogLevel = oneOf("PARLEY_LOG_LEVEL", "info", "debug", "info", "warn", "error")
	c.MemoryLimitMiB = num("PARLEY_MEMORY_LIMIT", 0, 0, 1<<24)
	c.DataDir = str("PARLEY_DATA_DIR", d.DataDir)
	if v := str("OPENVIDU_WEBRTC_ICE_SERVERS", ""); v != "" {
		var err error
		if c.IceServers, err = ParseIceServers(v); err != nil {
			bad = append(bad, "OPENVIDU_WEBRTC_ICE_SERVERS is invalid: "+err.Error())
		}
	}
	c.TrustedProxies = prefixes("PARLEY_TRUSTED_PROXIES", str("PARLEY_TRUSTED_PROXIES", "127.0.0.0/8,::1/128"), &bad)
	c.ProxyProtocolFrom = prefixes("PARLEY_PROXY_PROTOCOL_FROM", str("PARLEY_PROXY_PROTOCOL_FROM", "none"), &bad)
	c.TLS = TLSConfig{
		Type:          c.CertificateType,
		CertFile:      str("PARLEY_CERT_FILE", "owncert/certificate.cert"),
		KeyFile:       str("PARLEY_KEY_FILE", "owncert/certificate.key"),
		Email:         str("LETSENCRYPT_EMAIL", ""),
		ACMEDirectory: str("PARLEY_ACME_DIRECTORY", "https://acme-v02.api.letsencrypt.org/directory"),
	}
	c.TURN = TURNConfig{
		Enabled:                     boolean("PARLEY_TURN", true),
		UDPPort:                     num("PARLEY_TURN_UDP_PORT", 0, 0, 65535),
		MaxAllocationsPerConnection: num("PARLEY_TURN_MAX_ALLOCATIONS_PER_CONNECTION", 100, 1, 10000),
		MaxAllocations:              num("PARLEY_TURN_MAX_ALLOCATIONS", 1000, 1, 1_000_000),
	}

	parseApp(c, d, str, boolean, num, get, &bad)
	parseEvents(c, d, str, boolean, num, get, &bad)

	s := &c.Session
	s.GarbageInterval = time.Duration(num("OPENVIDU_SESSIONS_GARBAGE_INTERVAL", 900, 0, 1<<30)) * time.Second
	s.GarbageThreshold = time.Duration(num("OPENVIDU_SESSIONS_GARBAGE_THRESHOLD", 3600, 0, 1<<30)) * time.Second
	s.ForcedVideoCodec = oneOf("OPENVIDU_STREAMS_FORCED_VIDEO_CODEC", "MEDIA_SERVER_PREFERRED",
		"MEDIA_SERVER_PREFERRED", "NONE", "VP8", "VP9", "H264")
	s.AllowTranscoding = boolean("OPENVIDU_STREAMS_ALLOW_TRANSCODING", false)
	s.ReconnectGrace = time.Duration(num("PARLEY_RECONNECT_GRACE", 10, 1, 3600)) * time.Second
	s.PingTimeout = time.Duration(num("PARLEY_PING_TIMEOUT", 15, 1, 3600)) * time.Second
	s.RecordingNotification = oneOf("OPENVIDU_RECORDING_NOTIFICATION", "publisher_moderator", "none", "moderator", "publisher_moderator", "all")

	r := &c.Recording
	r.Enabled = boolean("OPENVIDU_RECORDING", false)
	r.Path = str("OPENVIDU_RECORDING_PATH", d.under(c.DataDir, d.RecordingPath, "recordings"))
	r.PublicAccess = boolean("OPENVIDU_RECORDING_PUBLIC_ACCESS", false)
	r.AutostopTimeout = time.Duration(num("OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT", 120, 0, 1<<30)) * time.Second

	m := &c.Media
	m.Port = num("PARLEY_MEDIA_PORT", c.HTTPSPort, 0, 65535)
	m.AnnounceIPs = ips("PARLEY_MEDIA_ANNOUNCE_IPS")
	m.ListenIPs = ips("PARLEY_MEDIA_LISTEN_IPS")
	m.MaxRecvBandwidth = num("OPENVIDU_STREAMS_VIDEO_MAX_RECV_BANDWIDTH", 1000, 0, 1<<20)
	m.MinRecvBandwidth = num("OPENVIDU_STREAMS_VIDEO_MIN_RECV_BANDWIDTH", 300, 0, 1<<20)
	m.MaxSendBandwidth = num("OPENVIDU_STREAMS_VIDEO_MAX_SEND_BANDWIDTH", 1000, 0, 1<<20)
	m.MinSendBandwidth = num("OPENVIDU_STREAMS_VIDEO_MIN_SEND_BANDWIDTH", 300, 0, 1<<20)
	m.Simulcast = boolean("OPENVIDU_WEBRTC_SIMULCAST", true)
	parseProxy(c, str, boolean, num, &bad)

	parseCluster(&c.Cluster, str, &bad)
	bad = append(bad, c.problems()...)
	for _, n := range names {
		if strings.HasPrefix(n, "PARLEY_") && !slices.Contains(known, n) {
			bad = append(bad, n+" is not a setting Parley knows (known: "+strings.Join(known, ", ")+")")
		}
	}
	if len(bad) > 0 {
		return nil, bad.err()
	}
	return c, nil
}

// Validate reports every problem of c at once, one per line, by variable and value: the rules
// that involve more than one setting or the mode (dev or production). Load runs it after reading;
// a Config built another way (tests, tools) is checked the same way. Problems a value has on its
// own (not a number, out of range, not one of the allowed words) are found while loading, where
// the text is still at hand.
func (c *Config) Validate() error {
	if bad := c.problems(); len(bad) > 0 {
		return bad.err()
	}
	return nil
}

func (c *Config) problems() problems {
	var bad problems
	switch {
	case c.Secret == "":
		bad = append(bad, "OPENVIDU_SECRET is required when DOMAIN_OR_PUBLIC_IP is set")
	case !secretRE.MatchString(c.Secret):
		bad = append(bad, "OPENVIDU_SECRET is invalid: only letters, digits, '_' and '-' are allowed")
	case !c.Dev && (len(c.Secret) < 12 || c.Secret == DevSecret):
		bad = append(bad, "OPENVIDU_SECRET is too weak for production: use at least 12 characters and not "+DevSecret)
	}
	if !c.Dev && !validHost(c.Domain) {
		bad.add("DOMAIN_OR_PUBLIC_IP", c.Domain, "a DNS name or an IP address, without scheme or port")
	}
	if !c.Dev && c.TLS.Type == "letsencrypt" {
		if _, err := netip.ParseAddr(c.Domain); err == nil {
			bad = append(bad, "CERTIFICATE_TYPE=letsencrypt needs DOMAIN_OR_PUBLIC_IP to be a DNS name, not an IP address")
		}
		if c.TLS.Email == "" {
			bad = append(bad, "LETSENCRYPT_EMAIL is required with CERTIFICATE_TYPE=letsencrypt")
		}
	}
	m := &c.Media
	if m.MaxRecvBandwidth != 0 && m.MinRecvBandwidth > m.MaxRecvBandwidth {
		bad = append(bad, "OPENVIDU_STREAMS_VIDEO_MIN_RECV_BANDWIDTH must not exceed OPENVIDU_STREAMS_VIDEO_MAX_RECV_BANDWIDTH")
	}
	if m.MaxSendBandwidth != 0 && m.MinSendBandwidth > m.MaxSendBandwidth {
		bad = append(bad, "OPENVIDU_STREAMS_VIDEO_MIN_SEND_BANDWIDTH must not exceed OPENVIDU_STREAMS_VIDEO_MAX_SEND_BANDWIDTH")
	}
	if c.Recording.Enabled && !filepath.IsAbs(c.Recording.Path) && !c.Dev {
		bad.add("OPENVIDU_RECORDING_PATH", c.Recording.Path, "an absolute path")
	}
	return bad
}

// err formats the problems sorted, without repeats, under one header.
func (p problems) err() error {
	bad := slices.Clone(p)
	sort.Strings(bad)
	return fmt.Errorf("invalid configuration:\n  %s", strings.Join(slices.Compact(bad), "\n  "))
}

// modeDefaults are the defaults that differ between dev mode (no DOMAIN_OR_PUBLIC_IP: plain HTTP on
// this machine only, like OpenVidu's public openvidu-dev container, so its tutorials work
// unmodified) and production. Every other default is the same in both modes.
type modeDefaults struct {
	HTTPSPort int
	Secret    string // production has none: OPENVIDU_SECRET is required
	DataDir   string
	// RecordingPath and CDRPath are OpenVidu's deployment paths; empty means a folder of the data
	// directory (dev mode keeps everything beside the binary's working directory).
	RecordingPath, CDRPath string
	// MetricsAddr: production serves /metrics on loopback; dev mode does not serve it.
	MetricsAddr string
	// AppPrivate: an operator expects a public server to be closed until they open it; dev mode
	// is this machine only, so its app is open (unless PARLEY_APP_USERS are given).
	AppPrivate bool
}

func defaultsFor(dev bool) modeDefaults {
	if dev {
		return modeDefaults{HTTPSPort: 4443, Secret: DevSecret, DataDir: ".parley"}
	}
	return modeDefaults{HTTPSPort: 443, DataDir: "/var/lib/parley", RecordingPath: "/opt/openvidu/recordings",
		CDRPath: "/opt/openvidu/cdr", MetricsAddr: "127.0.0.1:9464", AppPrivate: true}
}

// under returns path, or dir/sub when path is empty.
func (modeDefaults) under(dir, path, sub string) string {
	if path == "" {
		return filepath.Join(dir, sub)
	}
	return path
}

// prefixes reads a comma-separated list of CIDRs or addresses (an address is its own /32 or /128);
// "none" is the empty list.
func prefixes(name, v string, bad *problems) []netip.Prefix {
	out := []netip.Prefix{}
	if strings.TrimSpace(v) == "none" {
		return out
	}
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				bad.add(name, v, `a comma-separated list of CIDRs or IP addresses, or "none"`)
				return nil
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

var hostRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$`)

func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return len(h) <= 253 && hostRE.MatchString(h)
}
