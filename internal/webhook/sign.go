package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Header names Parley adds to every webhook request.
const (
	SignatureHeader = "X-Parley-Signature"
	EventIDHeader   = "X-Parley-Event-Id"
)

// DefaultKey is the signing key when PARLEY_WEBHOOK_SECRET is unset: the hex HMAC-SHA256 of the
// string "parley-webhook" keyed with OPENVIDU_SECRET, used as the key's text. The operator can give
// a receiver this derived key without handing over the REST secret it comes from:
//
//	printf %s parley-webhook | openssl dgst -sha256 -hmac "$OPENVIDU_SECRET"
func DefaultKey(openviduSecret string) []byte {
	m := hmac.New(sha256.New, []byte(openviduSecret))
	m.Write([]byte("parley-webhook"))
	return []byte(hex.EncodeToString(m.Sum(nil)))
}

// Sign returns the X-Parley-Signature value of body sent at t.
func Sign(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(key, ts, body))
}

func mac(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verification errors.
var (
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrStale        = errors.New("webhook signature timestamp outside the tolerance")
)

// Verify checks a signature header as a receiver would: the MAC over its timestamp and body, and
// that the timestamp is within tolerance of now (a replayed old request fails).
func Verify(key []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, v1 string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(v1)
	if err != nil || !hmac.Equal(got, mac(key, ts, body)) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}
