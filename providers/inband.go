package providers

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sluice-ai/sluice/llm"
)

// InbandError maps an error an upstream sent inside a 2xx answer (the
// error member of a JSON body, or an error event of a stream) to the
// attempt's error, as providers map an error status: its numeric code or
// status, when a plausible HTTP status (400-599), is taken as the status
// the upstream meant (so a 4xx stays neutral for health through
// balancer.Classify, and vLLM's client-caused 400 events are not held
// against the deployment); anything else is a 502 whose UpstreamStatus is
// the 2xx sent, a failure of the deployment. Every string field is
// redacted with red (when the provider has one) and bounded and cleaned as
// an error status's fields are (see clip). It is the one mapping of
// in-band errors: the router's raw relays and the codecs' decoder share it.
func InbandError(provider string, errV []byte, status int, red Redactor) *llm.Error {
	var f struct {
		Message json.RawMessage `json:"message"`
		Type    json.RawMessage `json:"type"`
		Param   json.RawMessage `json:"param"`
		Code    json.RawMessage `json:"code"`
		Status  json.RawMessage `json:"status"`
	}
	var msg string
	if len(errV) > 0 && errV[0] == '"' {
		_ = json.Unmarshal(errV, &msg)
	} else if json.Unmarshal(errV, &f) == nil {
		msg = rawString(f.Message)
	}
	scrub := func(s string, n int) string {
		if red != nil && s != "" {
			s = string(red.Redact(nil, []byte(s)))
		}
		return clip(s, n)
	}
	e := &llm.Error{Kind: llm.KindUpstream, Provider: provider}
	e.Message = scrub(msg, maxErrorMessage)
	e.Type = scrub(rawString(f.Type), maxErrorField)
	e.Param = scrub(rawString(f.Param), maxErrorField)
	e.Code = scrub(rawString(f.Code), maxErrorField)
	code := rawStatus(f.Code)
	if code == 0 {
		code = rawStatus(f.Status)
	}
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden || code == http.StatusProxyAuthRequired:
		e.Status, e.UpstreamStatus = http.StatusBadGateway, code
		e.Type, e.Code, e.Param = "upstream_error", "upstream_auth_failed", ""
		e.Message = fmt.Sprintf("upstream %s rejected the gateway's provider credentials (error code %d)", provider, code)
		return e
	case code != 0:
		e.Status, e.UpstreamStatus = code, code
	default:
		e.Status, e.UpstreamStatus = http.StatusBadGateway, status
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("upstream %s reported an error", provider)
	}
	if e.Type == "" {
		if e.Status >= 500 {
			e.Type = "upstream_error"
		} else {
			e.Type = "invalid_request_error"
		}
	}
	return e
}

// IsErrorValue reports whether the value of an error member says an error
// happened: an object or a non-empty string. null, false, "" and the like,
// which some servers send beside a good answer, do not.
func IsErrorValue(v []byte) bool {
	return len(v) > 0 && (v[0] == '{' || (v[0] == '"' && len(v) > 2))
}

// rawString is a JSON string value, or "" for anything else.
func rawString(raw json.RawMessage) string {
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

// rawStatus is a JSON integer between 400 and 599, or 0.
func rawStatus(raw json.RawMessage) int {
	var n int
	if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' || json.Unmarshal(raw, &n) != nil || n < 400 || n > 599 {
		return 0
	}
	return n
}
