package signaling

import (
	"encoding/json"
	"errors"

	"github.com/parley/parley/internal/session"
)

// request is a JSON-RPC 2.0 request as kurento-jsonrpc frames it: the SDK always sends an id, never
// batches and never notifications (protocol note §1.2).
type request struct {
	ID      json.RawMessage `json:"id"`
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type response struct {
	ID      json.RawMessage `json:"id"`
	JSONRPC string          `json:"jsonrpc"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type notification struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
}

// JSON-RPC transport codes for frames that never reach a method.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	// codeReconnection is kurento's answer to `connect` for an unknown or expired session.
	codeReconnection = 40007
)

// errorOf maps a model error to its JSON-RPC form: the OpenVidu code travels in the error itself.
func errorOf(err error) *rpcError {
	var se *session.Error
	if errors.As(err, &se) {
		return &rpcError{Code: se.Code, Message: se.Msg}
	}
	var re *rpcError
	if errors.As(err, &re) {
		return re
	}
	return &rpcError{Code: session.CodeGeneric, Message: err.Error()}
}

func (e *rpcError) Error() string { return e.Message }

func invalidParams(method string, err error) error {
	return &rpcError{Code: codeInvalidParams, Message: "invalid params for " + method + ": " + err.Error()}
}

func missing(method, name string) error {
	return &rpcError{Code: codeInvalidParams, Message: "Request element '" + name + "' is missing in RPC method '" + method + "'"}
}
