package llm

import (
	"fmt"
	"net/http"
	"time"
)

// ErrorKind classifies an error by what the client should make of it.
type ErrorKind int

// Error kinds.
const (
	KindInvalidRequest ErrorKind = iota + 1
	KindAuth
	KindPermissionDenied
	KindNotFound
	KindTooLarge
	KindRateLimited
	KindUpstream    // the upstream answered with an error status
	KindUnreachable // the upstream could not be reached
	KindTimeout     // the upstream did not answer in time
	KindCanceled    // the client went away
	KindInternal    // a bug or an unavailable dependency of the gateway
	KindUnavailable // no deployment can take the request now
)

// Error is the gateway's error. The router renders it in the client's API
// dialect. Message must never contain a secret.
type Error struct {
	Kind    ErrorKind
	Status  int    // HTTP status to answer with
	Message string // safe to show the client
	Type    string // OpenAI error.type
	Param   string
	Code    string
	// RetryAfter, when positive, is sent as Retry-After.
	RetryAfter time.Duration
	// NoRetry tells clients not to retry (x-should-retry: false, which the
	// official SDKs obey): waiting will not help, e.g. an exhausted budget.
	// The gateway's own Retry-After is then sent uncapped.
	NoRetry bool
	// Provider is the provider that produced the error, if any.
	Provider string
	// UpstreamStatus is the HTTP status the upstream actually answered
	// with, 0 when none was received. Status is what the client gets; health
	// and retry decisions look at this one.
	UpstreamStatus int
	// Err is the underlying cause, for logs; never shown to clients.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s (%d): %v", e.Message, e.Status, e.Err)
	}
	return fmt.Sprintf("%s (%d)", e.Message, e.Status)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error of kind with a formatted client-safe message and the
// default status, type and code for that kind.
func Errorf(kind ErrorKind, format string, args ...any) *Error {
	e := &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
	switch kind {
	case KindInvalidRequest:
		e.Status, e.Type = http.StatusBadRequest, "invalid_request_error"
	case KindAuth:
		e.Status, e.Type, e.Code = http.StatusUnauthorized, "authentication_error", "invalid_api_key"
	case KindPermissionDenied:
		e.Status, e.Type, e.Code = http.StatusForbidden, "permission_error", "model_not_allowed"
	case KindNotFound:
		e.Status, e.Type, e.Code = http.StatusNotFound, "invalid_request_error", "model_not_found"
	case KindTooLarge:
		e.Status, e.Type, e.Code = http.StatusRequestEntityTooLarge, "invalid_request_error", "request_too_large"
	case KindRateLimited:
		e.Status, e.Type, e.Code = http.StatusTooManyRequests, "rate_limit_error", "rate_limit_exceeded"
	case KindUpstream:
		e.Status, e.Type, e.Code = http.StatusBadGateway, "upstream_error", "upstream_error"
	case KindUnreachable:
		e.Status, e.Type, e.Code = http.StatusBadGateway, "upstream_error", "upstream_unreachable"
	case KindTimeout:
		e.Status, e.Type, e.Code = http.StatusGatewayTimeout, "timeout_error", "upstream_timeout"
	case KindCanceled:
		e.Status, e.Type, e.Code = 499, "client_closed_request", "client_closed_request"
	case KindUnavailable:
		e.Status, e.Type, e.Code = http.StatusServiceUnavailable, "service_unavailable_error", "no_deployment_available"
	default:
		e.Status, e.Type, e.Code = http.StatusInternalServerError, "internal_error", "internal_error"
	}
	return e
}

// CodeContextLengthExceeded is the error code of an upstream answer saying
// the request does not fit the model's context window. Providers normalise
// their own wordings of it to this code (OpenAI's own).
const CodeContextLengthExceeded = "context_length_exceeded"

// ContextLength reports whether e says the request exceeds the context
// window of the model that answered: another deployment of the same model
// would say the same, a model with a larger window may not.
func (e *Error) ContextLength() bool {
	return e != nil && e.Code == CodeContextLengthExceeded && e.UpstreamStatus >= 400 && e.UpstreamStatus < 500
}
