package session

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind classifies an error so each protocol maps it in one table (REST status, JSON-RPC code).
type Kind int

// Error kinds.
const (
	KindInvalid       Kind = iota + 1 // malformed or out-of-range input
	KindNotFound                      // unknown session, connection or stream
	KindUnauthorized                  // bad token, wrong role
	KindConflict                      // already exists / already doing it
	KindNotAcceptable                 // a valid request the current state cannot honour
	KindUnsupported                   // a feature Parley does not implement
	KindInternal                      // our fault
	KindNotAllowed                    // not done to this kind of thing (an IPCAM connection's stream)
	KindUnavailable                   // too busy right now: the same request may succeed later
)

// Error is what the session model returns. Code is the OpenVidu error code (protocol note §1.6) that
// the signaling layer sends as JSON-RPC error.code.
type Error struct {
	Kind Kind
	Code int
	Msg  string
	// Err, when set, is what failed underneath (a media error); Msg already tells it.
	Err error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the cause, so errors.Is sees through the model's error.
func (e *Error) Unwrap() error { return e.Err }

func errorf(kind Kind, code int, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// OpenVidu error codes used by the model (protocol note §1.6).
const (
	CodeGeneric            = 999
	CodeUserNotFound       = 102
	CodeUserNotStreaming   = 105
	CodeUserAlreadyStreams = 106
	CodeRoomNotFound       = 202
	CodeRoomClosed         = 203
	CodeMediaSDPError      = 302
	CodeMediaEndpointError = 303
	CodeUserUnauthorized   = 401
	CodeFilterNotApplied   = 406
	CodeSignalFormat       = 600
	CodeSignalTo           = 601
	CodeForcedCodec        = 800
	CodeTransportError     = 803
	CodeServiceNotEnabled  = 996
)

// HTTPStatus is the status an HTTP interface (REST, WHIP) answers err with: its Kind's, or 500 for
// an error that is not the model's. The one table every HTTP caller shares.
func HTTPStatus(err error) int {
	var se *Error
	if !errors.As(err, &se) {
		return http.StatusInternalServerError
	}
	switch se.Kind {
	case KindInvalid:
		return http.StatusBadRequest
	case KindNotFound:
		return http.StatusNotFound
	case KindUnauthorized:
		return http.StatusUnauthorized
	case KindConflict:
		return http.StatusConflict
	case KindNotAcceptable:
		return http.StatusNotAcceptable
	case KindUnsupported:
		return http.StatusNotImplemented
	case KindNotAllowed:
		return http.StatusMethodNotAllowed
	case KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
