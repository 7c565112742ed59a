package session

import (
	"crypto/rand"
	"strings"
)

// SessionID names a session: generated as ses_XXXXXXXXXX, or the application's customSessionId.
type SessionID string

// ConnectionID names a connection (a token and, once joined, a participant): con_XXXXXXXXXX.
type ConnectionID string

// StreamID names a published stream: str_<CAM|SCR|CUS|IPC|MIC>_XXXX_<connectionId>. The suffix from
// the last "con_" (an IP camera's: "ipc_") is the owner, which the OpenVidu protocol relies on
// (receiveVideoFrom sends stream ids).
type StreamID string

// Owner returns the connection that published the stream, derived from the id as OpenVidu does.
func (s StreamID) Owner() ConnectionID {
	i := max(strings.LastIndex(string(s), "con_"), strings.LastIndex(string(s), "ipc_"))
	if i < 0 {
		return ""
	}
	return ConnectionID(s[i:])
}

const (
	upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	alnum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	lowAlp = "abcdefghijklmnopqrstuvwxyz0123456789"
)

// randomString draws n characters of alphabet from crypto/rand. Tokens are bearer credentials, so a
// predictable generator would let anyone join; rejection sampling keeps the draw unbiased.
func randomString(alphabet string, n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n*2)
	limit := 256 - 256%len(alphabet)
	for len(out) < n {
		_, _ = rand.Read(buf) // crypto/rand.Read never fails on Linux (Go ≥ 1.24 panics instead)
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}

// reference formats (protocol note §2): one uppercase letter, then alphanumerics.
func newSessionID() SessionID {
	return SessionID("ses_" + randomString(upper, 1) + randomString(alnum, 9))
}
func newConnectionID() ConnectionID {
	return ConnectionID("con_" + randomString(upper, 1) + randomString(alnum, 9))
}
func newTokenValue() string { return "tok_" + randomString(upper, 1) + randomString(alnum, 15) }
func newRPCID() string      { return randomString(lowAlp, 26) }

func newStreamID(typeOfVideo string, hasVideo bool, owner ConnectionID) StreamID {
	prefix := "MIC"
	if hasVideo {
		prefix = "CAM"
		if len(typeOfVideo) >= 3 {
			prefix = strings.ToUpper(typeOfVideo[:3])
		}
	}
	return StreamID("str_" + prefix + "_" + randomString(upper, 1) + randomString(alnum, 3) + "_" + string(owner))
}

// NewRPCSessionID returns an opaque id for a JSON-RPC session (Kurento's participantPrivateId).
func NewRPCSessionID() string { return newRPCID() }
