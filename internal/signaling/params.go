package signaling

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Lenient scalars. openvidu-server reads every boolean and integer param with Gson's
// getAsBoolean/getAsInt, which also take a JSON string holding the value, and the native samples
// rely on it: openvidu-android's CustomWebSocket and the iOS sample put every param in a
// map of strings, so they send
//
//	{"doLoopback":"false","frameRate":"30","sdpMLineIndex":"0","reconnect":"false","recorder":"false"}
//
// These types accept a JSON value or a JSON string holding one. Anything else ("yes", "3x", an
// object) is still an error: Gson would read "yes" as false, which hides a client's bug, so Parley
// answers -32602 naming the param instead. Strings stay strict both ways: no client sends a number
// where a string belongs.

// flexBool is a boolean param: true, false, "true" or "false" (any case, as Boolean.parseBoolean).
type flexBool bool

// UnmarshalJSON implements json.Unmarshaler; null leaves the value unchanged, as for a plain bool.
func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch s := string(data); {
	case s == "true":
		*b = true
	case s == "false":
		*b = false
	case s == "null":
	default:
		v, ok := unquote(data)
		switch {
		case ok && strings.EqualFold(v, "true"):
			*b = true
		case ok && strings.EqualFold(v, "false"):
			*b = false
		default:
			return badValue(data, reflect.TypeFor[bool]())
		}
	}
	return nil
}

// flexNumber is a numeric param: a JSON number or a string holding a finite decimal number
// ("30", "29.97").
type flexNumber float64

// UnmarshalJSON implements json.Unmarshaler; null leaves the value unchanged.
func (n *flexNumber) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	text := string(data)
	if v, ok := unquote(data); ok {
		text = v
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return badValue(data, reflect.TypeFor[float64]())
	}
	*n = flexNumber(f)
	return nil
}

// flexIndex is an m-line index (sdpMLineIndex): a whole number from 0 to 65535, as a number or
// a string ("0").
type flexIndex uint16

// UnmarshalJSON implements json.Unmarshaler; null leaves the value unchanged.
func (x *flexIndex) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	text := string(data)
	if v, ok := unquote(data); ok {
		text = v
	}
	u, err := strconv.ParseUint(text, 10, 16)
	if err != nil {
		return badValue(data, reflect.TypeFor[uint16]())
	}
	*x = flexIndex(u)
	return nil
}

// unquote returns the text of a JSON string value.
func unquote(data []byte) (string, bool) {
	if len(data) == 0 || data[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(data, &s) != nil {
		return "", false
	}
	return s, true
}

// badValue reports a value of the wrong shape the way encoding/json does, so that decode names the
// param it belongs to.
func badValue(data []byte, t reflect.Type) error {
	return &json.UnmarshalTypeError{Value: string(data), Type: t}
}

// decode reads params into v (a struct of the method's params). A param of the wrong shape is a
// -32602 that names it and says what it takes.
func decode(method string, params json.RawMessage, v any) error {
	err := json.Unmarshal(params, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return &rpcError{Code: codeInvalidParams, Message: "invalid params for " + method + ": '" + te.Field + "' must be " + takes(te.Type) + ", not " + shown(te.Value)}
	}
	if bytes.HasPrefix(bytes.TrimSpace(params), []byte("{")) {
		return invalidParams(method, err)
	}
	return &rpcError{Code: codeInvalidParams, Message: "invalid params for " + method + ": params must be a JSON object"}
}

// takes says in words what a param of type t accepts.
func takes(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return `a boolean (true, false, "true" or "false")`
	case reflect.Float64:
		return `a number (30 or "30")`
	case reflect.Uint16:
		return `a whole number from 0 to 65535 (0 or "0")`
	case reflect.String:
		return "a string"
	}
	return "of type " + t.String()
}

// shown names the offending value: encoding/json gives its kind ("number") for values it refused
// itself, and badValue its text, cut short (it goes back to the client and into the log).
func shown(v string) string {
	switch v {
	case "number", "string", "bool", "array", "object":
		return "a JSON " + v
	}
	const limit = 40
	if len(v) <= limit {
		return v
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut] + "…"
}
