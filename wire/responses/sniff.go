package responses

import (
	"net/http"
	"strings"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// Sniffer watches a Responses stream the raw lane relays untouched: it
// tells the router which event ends the answer, which one reports an
// error (and what HTTP status that error means), and reads the usage of
// the final response object. Its zero value is ready; it keeps no bytes
// of the stream. Not safe for concurrent use.
type Sniffer struct {
	usage llm.Usage
	has   bool
}

// Event looks at one event (name from the event: line, possibly empty;
// data the event's data). final is true for the events that end an
// answer: response.completed, response.incomplete and response.failed.
// errV is the error an event reports: the response's error object for
// response.failed (the whole data when it has none), the event's data
// for an "error" event; status is the HTTP status the error means
// (500 when its code does not say). errV aliases data. Only the events
// that matter are scanned: the deltas cost a name comparison, or a look
// at the first member when the event has no name.
func (s *Sniffer) Event(name, data []byte) (errV []byte, status int, final bool) {
	typ := name
	if len(typ) == 0 {
		typ = typeOf(data)
	}
	switch string(typ) {
	case "response.completed", "response.incomplete":
		s.read(member(data, "response"))
		return nil, 0, true
	case "response.failed":
		resp := member(data, "response")
		s.read(resp)
		errV = member(resp, "error")
		if len(errV) == 0 || errV[0] != '{' {
			errV = data
		}
		return errV, errorStatus(errV), true
	case "error":
		if inner := member(data, "error"); len(inner) > 0 && inner[0] == '{' {
			return inner, errorStatus(inner), false
		}
		return data, errorStatus(data), false
	}
	return nil, 0, false
}

// Usage returns the usage of the final response object; ok is false when
// none was seen (or it was not readable).
func (s *Sniffer) Usage() (llm.Usage, bool) { return s.usage, s.has }

// read reads the usage of a response object.
func (s *Sniffer) read(resp []byte) {
	if u, ok := parseUsage(member(resp, "usage")); ok {
		s.usage, s.has = u, true
	}
}

// typeOf returns the value of the "type" member of an event's data
// (OpenAI writes it first), without its quotes; nil when there is none.
func typeOf(data []byte) []byte {
	var t []byte
	_, _ = jsonspan.EachMember(data, func(k []byte, vs, ve int) error {
		if string(k) == "type" {
			if ve-vs >= 2 && data[vs] == '"' && data[ve-1] == '"' {
				t = data[vs+1 : ve-1]
			}
			return errStop
		}
		return nil
	})
	return t
}

// ResponseUsage reads the usage of a whole (non-streamed) Response
// object: input_tokens (cache reads included, as OpenAI counts them),
// input_tokens_details.cached_tokens, output_tokens (reasoning included)
// and output_tokens_details.reasoning_tokens. ok is false when there is
// no readable usage.
func ResponseUsage(body []byte) (llm.Usage, bool) {
	return parseUsage(member(body, "usage"))
}

// parseUsage reads a Responses usage object.
func parseUsage(v []byte) (llm.Usage, bool) {
	if len(v) == 0 || v[0] != '{' {
		return llm.Usage{}, false
	}
	var u llm.Usage
	bad := false
	num := func(dst *int, v []byte) {
		n, ok := count(v)
		if !ok {
			bad = true
		}
		*dst = n
	}
	detail := func(v []byte, name string, dst *int) {
		if string(v) == "null" {
			return
		}
		if len(v) == 0 || v[0] != '{' {
			bad = true
			return
		}
		if d := member(v, name); d != nil {
			num(dst, d)
		}
	}
	_, err := jsonspan.EachMember(v, func(k []byte, vs, ve int) error {
		mv := v[vs:ve]
		switch string(k) {
		case "input_tokens":
			num(&u.PromptTokens, mv)
		case "output_tokens":
			num(&u.CompletionTokens, mv)
		case "input_tokens_details":
			detail(mv, "cached_tokens", &u.CacheReadTokens)
		case "output_tokens_details":
			detail(mv, "reasoning_tokens", &u.ReasoningTokens)
		}
		return nil
	})
	if err != nil || bad {
		return llm.Usage{}, false
	}
	return u, true
}

// errorStatus returns the HTTP status an error object's code (or type)
// means, 500 when neither says.
func errorStatus(e []byte) int {
	if c, ok := stringValue(member(e, "code")); ok {
		if st := codeStatus(c); st != 0 {
			return st
		}
	}
	if t, ok := stringValue(member(e, "type")); ok {
		if st := codeStatus(t); st != 0 {
			return st
		}
	}
	return http.StatusInternalServerError
}

// codeStatus maps an OpenAI error code or type to its HTTP status (0 when
// unknown).
func codeStatus(c string) int {
	switch c {
	case "rate_limit_exceeded", "rate_limit_error", "insufficient_quota", "tokens", "requests":
		return http.StatusTooManyRequests
	case "invalid_request_error", "invalid_prompt", "context_length_exceeded", "bio_policy",
		"misalignment_policy_violation", "data_residency_mismatch", "empty_image_file",
		"failed_to_download_image", "unsupported_image_media_type", "invalid_value":
		return http.StatusBadRequest
	case "authentication_error", "invalid_api_key":
		return http.StatusUnauthorized
	case "permission_error", "permission_denied":
		return http.StatusForbidden
	case "not_found_error", "model_not_found":
		return http.StatusNotFound
	case "vector_store_timeout", "timeout":
		return http.StatusGatewayTimeout
	case "server_error", "api_error", "internal_error":
		return http.StatusInternalServerError
	case "overloaded_error", "service_unavailable", "server_is_overloaded":
		return http.StatusServiceUnavailable
	}
	if strings.HasPrefix(c, "invalid_image") || strings.HasPrefix(c, "image_") || strings.HasPrefix(c, "invalid_base64") {
		return http.StatusBadRequest
	}
	return 0
}
