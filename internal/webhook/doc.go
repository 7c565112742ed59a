// Package webhook POSTs session events to the operator's endpoint with OpenVidu 2.32's event names
// and fields (OPENVIDU_WEBHOOK*, protocol note §11), signed so the receiver can tell them from
// forgeries.
//
// It owns a bounded queue and the one goroutine that drains it. Delivery never blocks the session
// model: Listen only queues (a full queue drops the event and counts it). The sender delivers one
// event at a time, so events reach the endpoint in the order the model emitted them, which keeps
// each session's events in order; like OpenVidu's single sender thread, a slow endpoint therefore
// delays every session's events, never the calls themselves. A failed delivery (network error, 408,
// 429, 5xx) is retried with exponential backoff until the event is RetryTimeout old, then dropped,
// counted and logged; other statuses are the receiver's refusal and are not retried. Receivers
// should expect a retried event twice (same X-Parley-Event-Id) and deduplicate.
//
// Each request carries
//
//	X-Parley-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>
//	X-Parley-Event-Id:  <boot id>-<sequence>
//
// (Stripe's scheme: the timestamp inside the MAC lets receivers refuse replays of old requests).
// The key is PARLEY_WEBHOOK_SECRET, or by default DefaultKey(OPENVIDU_SECRET).
//
// It imports session (the Event type) and eventjson (the codec), never api, signaling or edge.
package webhook
