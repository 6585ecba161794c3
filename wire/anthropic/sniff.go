package anthropic

import (
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// Sniffer watches a Messages event stream relayed untouched (the raw
// lane) for its usage, its in-band error and its end. The zero value is
// ready; it is not safe for concurrent use.
type Sniffer struct {
	usage wireUsage
}

// Event reads one event (its SSE name and data). For an error event it
// returns the error object's bytes (a slice of data) and the HTTP status
// its type implies (overloaded_error 529, rate_limit_error 429,
// api_error 500, invalid_request_error 400…); final is true on
// message_stop. Content deltas, the bulk of a stream, are recognised by
// name and not parsed.
func (s *Sniffer) Event(name, data []byte) (errV []byte, status int, final bool) {
	switch string(name) {
	case "content_block_delta", "content_block_start", "content_block_stop", "ping":
		return nil, 0, false
	case "message_stop":
		return nil, 0, true
	case "message_start", "message_delta", "error":
	default:
		// No name (or an unknown one): the data's type says.
		vs, ve, ok := member(data, "type")
		if !ok {
			return nil, 0, false
		}
		switch string(data[vs:ve]) {
		case `"message_stop"`:
			return nil, 0, true
		case `"message_start"`, `"message_delta"`, `"error"`:
		default:
			return nil, 0, false
		}
	}
	_, _ = jsonspan.EachMember(data, func(key []byte, vs, ve int) error {
		v := data[vs:ve]
		switch string(key) {
		case "message":
			if obj(v) {
				if us, ue, ok := member(v, "usage"); ok && obj(v[us:ue]) {
					s.usage.merge(v[us:ue])
				}
			}
		case "usage":
			if obj(v) {
				s.usage.merge(v)
			}
		case "error":
			if obj(v) {
				errV = v
				status = 500
				if ts, te, ok := member(v, "type"); ok {
					t, _ := unquote(v[ts:te])
					status = statusOf(t)
				}
			}
		}
		return nil
	})
	return errV, status, false
}

// Usage returns the usage seen so far in neutral form: message_start's,
// updated by each message_delta (whose figures are cumulative: each one
// present replaces the last). ok is false when none was reported.
func (s *Sniffer) Usage() (llm.Usage, bool) {
	return s.usage.neutral(), s.usage.known
}
