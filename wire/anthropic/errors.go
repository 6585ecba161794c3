package anthropic

import (
	"net/http"

	"github.com/sluice-ai/sluice/llm"
)

// ErrorType returns Anthropic's error type for an HTTP status.
func ErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusServiceUnavailable, 529:
		return "overloaded_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	}
	if status >= 400 && status < 500 {
		return "invalid_request_error"
	}
	return "api_error"
}

// statusOf returns the HTTP status Anthropic means by error type t (what
// it answers with that type outside a stream); 500 for unknown types.
func statusOf(t string) int {
	switch t {
	case "invalid_request_error":
		return http.StatusBadRequest
	case "authentication_error":
		return http.StatusUnauthorized
	case "billing_error":
		return http.StatusPaymentRequired
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "rate_limit_error":
		return http.StatusTooManyRequests
	case "timeout_error":
		return http.StatusGatewayTimeout
	case "overloaded_error":
		return 529
	}
	return http.StatusInternalServerError
}

// StatusOf returns the HTTP status Anthropic means by error type t
// (overloaded_error is 529, unknown types 500).
func StatusOf(t string) int { return statusOf(t) }

// upstreamErr builds the gateway error for an error Anthropic reported in
// band (a stream's error event, an error object in a 2xx body): the status
// it implies is UpstreamStatus; the client gets it too, except 529, which
// is no standard status: 503.
func upstreamErr(typ, msg string) *llm.Error {
	st := statusOf(typ)
	e := llm.Errorf(llm.KindUpstream, "%s", msg)
	e.UpstreamStatus = st
	e.Status = st
	if st == 529 {
		e.Status = http.StatusServiceUnavailable
	}
	if typ != "" {
		e.Type = typ
	}
	e.Code = ""
	return e
}

// AppendError appends e in Anthropic's error shape:
// {"type":"error","error":{"type":T,"message":M}}, T from e.Status.
func AppendError(dst []byte, e *llm.Error) []byte {
	dst = append(dst, `{"type":"error","error":`...)
	dst = appendErrorObject(dst, e)
	return append(dst, '}')
}

func appendErrorObject(dst []byte, e *llm.Error) []byte {
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, ErrorType(e.Status))
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, e.Message)
	return append(dst, '}')
}
