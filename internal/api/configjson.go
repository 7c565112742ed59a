package api

import (
	"time"

	"github.com/parley/parley/internal/config"
)

// ConfigJSON is the body of GET /openvidu/api/config (protocol note §12.3): OpenVidu's names for the
// effective configuration.
func ConfigJSON(c *config.Config) map[string]any {
	m := map[string]any{
		"VERSION": Version, "DOMAIN_OR_PUBLIC_IP": c.Domain, "HTTPS_PORT": c.HTTPSPort,
		"OPENVIDU_PUBLICURL":                        c.PublicURL(),
		"OPENVIDU_STREAMS_VIDEO_MAX_RECV_BANDWIDTH": c.Media.MaxRecvBandwidth,
		"OPENVIDU_STREAMS_VIDEO_MIN_RECV_BANDWIDTH": c.Media.MinRecvBandwidth,
		"OPENVIDU_STREAMS_VIDEO_MAX_SEND_BANDWIDTH": c.Media.MaxSendBandwidth,
		"OPENVIDU_STREAMS_VIDEO_MIN_SEND_BANDWIDTH": c.Media.MinSendBandwidth,
		"OPENVIDU_STREAMS_FORCED_VIDEO_CODEC":       c.Session.ForcedVideoCodec,
		"OPENVIDU_STREAMS_ALLOW_TRANSCODING":        c.Session.AllowTranscoding,
		"OPENVIDU_WEBRTC_SIMULCAST":                 c.Media.Simulcast,
		"OPENVIDU_SESSIONS_GARBAGE_INTERVAL":        int(c.Session.GarbageInterval / time.Second),
		"OPENVIDU_SESSIONS_GARBAGE_THRESHOLD":       int(c.Session.GarbageThreshold / time.Second),
		"OPENVIDU_RECORDING":                        c.Recording.Enabled,
	}
	if c.Recording.Enabled {
		m["OPENVIDU_RECORDING_PATH"] = c.Recording.Path
		m["OPENVIDU_RECORDING_PUBLIC_ACCESS"] = c.Recording.PublicAccess
		m["OPENVIDU_RECORDING_NOTIFICATION"] = c.Session.RecordingNotification
		m["OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT"] = int(c.Recording.AutostopTimeout / time.Second)
		m["OPENVIDU_RECORDING_VERSION"] = Version
	}
	eventsConfigJSON(m, c)
	return m
}

// eventsConfigJSON adds the webhook and CDR entries of GET /openvidu/api/config (protocol note
// §12.3). Header values are replaced: they are usually credentials, and the body is shown in
// dashboards and support tickets.
func eventsConfigJSON(m map[string]any, c *config.Config) {
	m["OPENVIDU_CDR"] = c.CDR.Enabled
	if c.CDR.Enabled {
		m["OPENVIDU_CDR_PATH"] = c.CDR.Path
	}
	m["OPENVIDU_WEBHOOK"] = c.Webhook.Enabled
	if c.Webhook.Enabled {
		headers := make([]string, 0, len(c.Webhook.Headers))
		for _, h := range c.Webhook.Headers {
			headers = append(headers, h.Name+": <redacted>")
		}
		m["OPENVIDU_WEBHOOK_ENDPOINT"] = c.Webhook.Endpoint
		m["OPENVIDU_WEBHOOK_HEADERS"] = headers
		m["OPENVIDU_WEBHOOK_EVENTS"] = c.Webhook.Events
	}
}
