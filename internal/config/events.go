package config

import (
	"encoding/json"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WebhookConfig is what internal/webhook needs (protocol note §11).
type WebhookConfig struct {
	// Enabled is OPENVIDU_WEBHOOK (default false).
	Enabled bool
	// Endpoint is OPENVIDU_WEBHOOK_ENDPOINT: the http(s) URL events are POSTed to; required when
	// enabled.
	Endpoint string
	// Headers are OPENVIDU_WEBHOOK_HEADERS, a JSON array of "Name: value" strings (default none),
	// added to every request, e.g. ["Authorization: Basic dXNlcjpwYXNz"].
	Headers []HTTPHeader
	// Events is OPENVIDU_WEBHOOK_EVENTS, a JSON array of event names (quotes optional, as OpenVidu's
	// lenient parser allows). Default: DefaultWebhookEvents.
	Events []string
	// Secret is PARLEY_WEBHOOK_SECRET, the key of the X-Parley-Signature HMAC. Empty: a key
	// derived from OPENVIDU_SECRET (see webhook.DefaultKey).
	Secret string
	// RetryTimeout is PARLEY_WEBHOOK_RETRY_TIMEOUT (default 60 s): how long an undelivered event is
	// retried before it is dropped and counted.
	RetryTimeout time.Duration
}

// HTTPHeader is one header of OPENVIDU_WEBHOOK_HEADERS.
type HTTPHeader struct {
	Name, Value string
}

// CDRConfig is what internal/cdr needs.
type CDRConfig struct {
	// Enabled is OPENVIDU_CDR (default false).
	Enabled bool
	// Path is OPENVIDU_CDR_PATH: the directory of the call detail record files (default
	// /opt/openvidu/cdr, as OpenVidu; <PARLEY_DATA_DIR>/cdr in dev mode).
	Path string
}

// MetricsConfig is what internal/metrics needs.
type MetricsConfig struct {
	// Addr is PARLEY_METRICS_ADDR: the host:port of the Prometheus /metrics listener, separate
	// from the public port. Default 127.0.0.1:9464 in production (loopback: metrics describe
	// traffic and are nobody else's business; not 9090, where a Prometheus on the same host listens),
	// off in dev mode, where tests and tutorials run several servers on one machine. Empty or
	// "off" disables it.
	Addr string
}

// DefaultWebhookEvents is OPENVIDU_WEBHOOK_EVENTS when unset: openvidu-server's own default
// (application.properties), which includes signalSent. The CE .env template omits signalSent,
// but it sets the variable explicitly, so a deployment that copied it keeps what it had, while one
// that never set it gets what openvidu-server sent (protocol note Q11).
var DefaultWebhookEvents = []string{
	"sessionCreated", "sessionDestroyed", "participantJoined", "participantLeft", "webrtcConnectionCreated",
	"webrtcConnectionDestroyed", "recordingStatusChanged", "filterEventDispatched", "signalSent",
	"mediaNodeStatusChanged", "autoscaling", "nodeCrashed", "nodeRecovered", "broadcastStarted", "broadcastStopped",
}

// webhookEventNames are the names OpenVidu accepts in OPENVIDU_WEBHOOK_EVENTS (its CDREventName).
var webhookEventNames = append(slices.Clone(DefaultWebhookEvents), "HANodeRegistered", "HANodeDeregistered")

// RFC 9110 token: what a header name may be made of.
var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// parseEvents reads the webhook, CDR and metrics settings, apart from parse so they can grow
// without touching the shared function. Header values and endpoints are never echoed in
// problems: they carry credentials.
func parseEvents(c *Config, d modeDefaults, str func(name, def string) string, boolean func(name string, def bool) bool,
	num func(name string, def, lo, hi int) int, get Lookup, bad *problems) {
	w := &c.Webhook
	w.Enabled = boolean("OPENVIDU_WEBHOOK", false)
	w.Endpoint = str("OPENVIDU_WEBHOOK_ENDPOINT", "")
	w.Secret = str("PARLEY_WEBHOOK_SECRET", "")
	w.RetryTimeout = time.Duration(num("PARLEY_WEBHOOK_RETRY_TIMEOUT", 60, 1, 86400)) * time.Second
	if w.Endpoint != "" {
		if u, err := url.Parse(w.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			*bad = append(*bad, "OPENVIDU_WEBHOOK_ENDPOINT is invalid: expected an http:// or https:// URL with a host")
		}
	} else if w.Enabled {
		*bad = append(*bad, "OPENVIDU_WEBHOOK_ENDPOINT is required when OPENVIDU_WEBHOOK=true")
	}
	if v := str("OPENVIDU_WEBHOOK_HEADERS", ""); v != "" {
		var raw []string
		if err := json.Unmarshal([]byte(v), &raw); err != nil {
			*bad = append(*bad, `OPENVIDU_WEBHOOK_HEADERS is invalid: expected a JSON array of strings, e.g. ["Authorization: Basic ..."]`)
		}
		for i, h := range raw {
			// OpenVidu splits on the first ": ".
			name, value, ok := strings.Cut(h, ": ")
			if !ok || !headerNameRE.MatchString(name) || strings.ContainsAny(value, "\r\n") {
				*bad = append(*bad, "OPENVIDU_WEBHOOK_HEADERS is invalid: entry "+strconv.Itoa(i+1)+` is not "Name: value"`)
				continue
			}
			w.Headers = append(w.Headers, HTTPHeader{Name: name, Value: value})
		}
	}
	w.Events = DefaultWebhookEvents
	if v := str("OPENVIDU_WEBHOOK_EVENTS", ""); v != "" {
		names, ok := stringList(v)
		if !ok {
			bad.add("OPENVIDU_WEBHOOK_EVENTS", v, "expected an array of event names, e.g. [sessionCreated,participantJoined]")
		}
		for _, n := range names {
			if !slices.Contains(webhookEventNames, n) {
				bad.add("OPENVIDU_WEBHOOK_EVENTS", v, "unknown event "+strconv.Quote(n)+" (known: "+strings.Join(webhookEventNames, ", ")+")")
			}
		}
		w.Events = names
	}

	c.CDR.Enabled = boolean("OPENVIDU_CDR", false)
	c.CDR.Path = str("OPENVIDU_CDR_PATH", d.under(c.DataDir, d.CDRPath, "cdr"))

	defMetrics := d.MetricsAddr
	// An explicitly empty value disables metrics: str would take it for unset.
	if v, ok := get("PARLEY_METRICS_ADDR"); ok {
		defMetrics = v
	}
	c.Metrics.Addr = defMetrics
	if c.Metrics.Addr == "off" {
		c.Metrics.Addr = ""
	}
	if a := c.Metrics.Addr; a != "" {
		host, port, err := net.SplitHostPort(a)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 0 || p > 65535 || strings.Contains(host, "/") {
			bad.add("PARLEY_METRICS_ADDR", a, "host:port, e.g. 127.0.0.1:9464 (empty or off disables metrics)")
		}
	}
}

// stringList reads a JSON array of strings, or OpenVidu's lenient form without quotes
// ([a,b]) that its .env template uses.
func stringList(v string) ([]string, bool) {
	var out []string
	if json.Unmarshal([]byte(v), &out) == nil {
		return out, true
	}
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, "[") || !strings.HasSuffix(v, "]") {
		return nil, false
	}
	out = nil
	for _, f := range strings.Split(v[1:len(v)-1], ",") {
		if f = strings.Trim(strings.TrimSpace(f), `"'`); f != "" {
			out = append(out, f)
		}
	}
	return out, true
}
