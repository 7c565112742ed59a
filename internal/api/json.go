package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// body is a JSON object whose fields are read one by one with type checks, the way OpenVidu
// validates: a field may be absent or null (= default), or present with the right type (else 400).
type body map[string]json.RawMessage

func parseBody(data []byte) (body, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return body{}, nil
	}
	var b body
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("request body must be a JSON object: %v", err)
	}
	if b == nil { // the literal null
		b = body{}
	}
	return b, nil
}

func (b body) present(key string) bool {
	v, ok := b[key]
	return ok && string(v) != "null"
}

func (b body) str(key, def string) (string, error) {
	if !b.present(key) {
		return def, nil
	}
	var s string
	if err := json.Unmarshal(b[key], &s); err != nil {
		return "", fmt.Errorf("%q must be a string", key)
	}
	return s, nil
}

// required reads a string that must be present and non-empty.
func (b body) required(key string) (string, error) {
	s, err := b.str(key, "")
	if err == nil && s == "" {
		err = fmt.Errorf("%q is required", key)
	}
	return s, err
}

func (b body) enum(key, def string, allowed ...string) (string, error) {
	s, err := b.str(key, def)
	if err != nil {
		return "", err
	}
	if !slices.Contains(allowed, s) {
		return "", fmt.Errorf("%q must be one of %s", key, strings.Join(allowed, ", "))
	}
	return s, nil
}

func (b body) boolean(key string, def bool) (bool, error) {
	if !b.present(key) {
		return def, nil
	}
	var v bool
	if err := json.Unmarshal(b[key], &v); err != nil {
		return false, fmt.Errorf("%q must be a boolean", key)
	}
	return v, nil
}

// integer reads a JSON number. The reference reads these fields as Java Numbers and keeps
// intValue()/longValue(), so 25.0 (or 25.7) is accepted and truncated; strings are refused.
func (b body) integer(key string, def int64) (int64, error) {
	if !b.present(key) {
		return def, nil
	}
	var i int64
	if err := json.Unmarshal(b[key], &i); err == nil {
		return i, nil
	}
	var f float64
	if err := json.Unmarshal(b[key], &f); err != nil || math.IsNaN(f) || math.Abs(f) >= 1<<63 {
		return 0, fmt.Errorf("%q must be a number", key)
	}
	return int64(f), nil
}

func (b body) object(key string) (body, error) {
	if !b.present(key) {
		return nil, nil
	}
	var o body
	if err := json.Unmarshal(b[key], &o); err != nil {
		return nil, fmt.Errorf("%q must be a JSON object", key)
	}
	return o, nil
}

func (b body) strings(key string) ([]string, bool, error) {
	if !b.present(key) {
		return nil, false, nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b[key], &raw); err != nil {
		return nil, true, fmt.Errorf("%q must be an array of strings", key)
	}
	out := make([]string, 0, len(raw))
	for _, r := range raw {
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return nil, true, fmt.Errorf("%q must be an array of strings", key)
		}
		out = append(out, s)
	}
	return out, true, nil
}
