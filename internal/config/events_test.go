package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEventsDefaults(t *testing.T) {
	t.Parallel()
	dev := mustLoad(t, "")
	if dev.Webhook.Enabled || dev.CDR.Enabled || dev.Metrics.Addr != "" || dev.CDR.Path != ".parley/cdr" {
		t.Fatalf("dev: %+v %+v %+v", dev.Webhook, dev.CDR, dev.Metrics)
	}
	if !reflect.DeepEqual(dev.Webhook.Events, DefaultWebhookEvents) || dev.Webhook.RetryTimeout != time.Minute {
		t.Fatalf("webhook defaults %+v", dev.Webhook)
	}
	prod := mustLoad(t, "", "DOMAIN_OR_PUBLIC_IP", "example.com", "OPENVIDU_SECRET", prodSecret)
	if prod.Metrics.Addr != "127.0.0.1:9464" || prod.CDR.Path != "/opt/openvidu/cdr" {
		t.Fatalf("production: %+v %+v", prod.Metrics, prod.CDR)
	}
	off := mustLoad(t, "", "DOMAIN_OR_PUBLIC_IP", "example.com", "OPENVIDU_SECRET", prodSecret, "PARLEY_METRICS_ADDR", "")
	if off.Metrics.Addr != "" {
		t.Fatalf("an empty PARLEY_METRICS_ADDR must disable metrics, got %q", off.Metrics.Addr)
	}
}

func TestEventsParsed(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "", "OPENVIDU_WEBHOOK", "true", "OPENVIDU_WEBHOOK_ENDPOINT", "https://hooks.example.com/ov?k=1",
		"OPENVIDU_WEBHOOK_HEADERS", `["Authorization: Basic dTpw", "X-Tag: a: b"]`,
		"OPENVIDU_WEBHOOK_EVENTS", "[sessionCreated, participantJoined]", "PARLEY_WEBHOOK_SECRET", "k3y",
		"PARLEY_WEBHOOK_RETRY_TIMEOUT", "5", "OPENVIDU_CDR", "true", "OPENVIDU_CDR_PATH", "/var/cdr",
		"PARLEY_METRICS_ADDR", "0.0.0.0:9100")
	want := WebhookConfig{Enabled: true, Endpoint: "https://hooks.example.com/ov?k=1",
		Headers: []HTTPHeader{{"Authorization", "Basic dTpw"}, {"X-Tag", "a: b"}},
		Events:  []string{"sessionCreated", "participantJoined"}, Secret: "k3y", RetryTimeout: 5 * time.Second}
	if !reflect.DeepEqual(c.Webhook, want) {
		t.Fatalf("webhook\n got %+v\nwant %+v", c.Webhook, want)
	}
	if c.CDR != (CDRConfig{Enabled: true, Path: "/var/cdr"}) || c.Metrics.Addr != "0.0.0.0:9100" {
		t.Fatalf("%+v %+v", c.CDR, c.Metrics)
	}
	quoted := mustLoad(t, "", "OPENVIDU_WEBHOOK_EVENTS", `["signalSent"]`)
	if !reflect.DeepEqual(quoted.Webhook.Events, []string{"signalSent"}) {
		t.Fatalf("events %v", quoted.Webhook.Events)
	}
}

func TestEventsInvalid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  []string
		want string
	}{
		{"webhook without endpoint", []string{"OPENVIDU_WEBHOOK", "true"}, "OPENVIDU_WEBHOOK_ENDPOINT is required"},
		{"endpoint not http", []string{"OPENVIDU_WEBHOOK_ENDPOINT", "ftp://x/y"}, "OPENVIDU_WEBHOOK_ENDPOINT is invalid"},
		{"headers not JSON", []string{"OPENVIDU_WEBHOOK_HEADERS", "Authorization: x"}, "OPENVIDU_WEBHOOK_HEADERS is invalid"},
		{"header without ': '", []string{"OPENVIDU_WEBHOOK_HEADERS", `["Authorization=x"]`}, "entry 1"},
		{"header name with a space", []string{"OPENVIDU_WEBHOOK_HEADERS", `["Ok: 1", "Bad Name: x"]`}, "entry 2"},
		{"unknown event", []string{"OPENVIDU_WEBHOOK_EVENTS", "[sessionCreated,sesionDestroyed]"}, `unknown event "sesionDestroyed"`},
		{"events not a list", []string{"OPENVIDU_WEBHOOK_EVENTS", "sessionCreated"}, "OPENVIDU_WEBHOOK_EVENTS"},
		{"metrics address", []string{"PARLEY_METRICS_ADDR", "9464"}, "PARLEY_METRICS_ADDR"},
		{"retry timeout", []string{"PARLEY_WEBHOOK_RETRY_TIMEOUT", "0"}, "PARLEY_WEBHOOK_RETRY_TIMEOUT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if msg := loadErr(t, tc.env...); !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not mention %q", msg, tc.want)
			}
		})
	}
}

// TestEventsErrorsDoNotEchoCredentials: header values and endpoints carry credentials.
func TestEventsErrorsDoNotEchoCredentials(t *testing.T) {
	t.Parallel()
	for _, kv := range [][]string{
		{"OPENVIDU_WEBHOOK_HEADERS", `["Authorization hunter2hunter2"]`},
		{"OPENVIDU_WEBHOOK_HEADERS", `Authorization: hunter2hunter2`},
		{"OPENVIDU_WEBHOOK_ENDPOINT", "mailto:hunter2hunter2"},
	} {
		if msg := loadErr(t, kv...); strings.Contains(msg, "hunter2hunter2") {
			t.Errorf("error echoes the credential:\n%s", msg)
		}
	}
}
