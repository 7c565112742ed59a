package api

import (
	"strings"
	"testing"

	"github.com/parley/parley/internal/config"
)

// TestConfigJSON: GET /openvidu/api/config uses OpenVidu's names, shows the simulcast mode as
// configured and recording settings only with recording on, and never shows a webhook header's
// value (usually a credential).
func TestConfigJSON(t *testing.T) {
	t.Parallel()
	env := map[string]string{"OPENVIDU_WEBHOOK": "true", "OPENVIDU_WEBHOOK_ENDPOINT": "http://127.0.0.1:7777/hook",
		"OPENVIDU_WEBHOOK_HEADERS": `["Authorization: Basic c2VjcmV0"]`, "OPENVIDU_WEBRTC_SIMULCAST": "true"}
	cfg, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := ConfigJSON(cfg)
	if m["VERSION"] != Version || m["OPENVIDU_WEBHOOK"] != true || m["OPENVIDU_RECORDING"] != false || m["OPENVIDU_PUBLICURL"] != cfg.PublicURL() {
		t.Errorf("config %v", m)
	}
	if m["OPENVIDU_WEBRTC_SIMULCAST"] != true {
		t.Errorf("OPENVIDU_WEBRTC_SIMULCAST=true shown as %v", m["OPENVIDU_WEBRTC_SIMULCAST"])
	}
	if _, ok := m["OPENVIDU_RECORDING_PATH"]; ok {
		t.Error("recording path shown with recording off")
	}
	h, _ := m["OPENVIDU_WEBHOOK_HEADERS"].([]string)
	if len(h) != 1 || h[0] != "Authorization: <redacted>" || strings.Contains(strings.Join(h, ""), "c2VjcmV0") {
		t.Errorf("webhook headers shown as %q", h)
	}
}
