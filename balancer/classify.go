package balancer

import (
	"net/http"

	"github.com/sluice-ai/sluice/llm"
)

// Class is what an attempt's outcome means for the deployment's health.
type Class int

// Outcome classes.
const (
	// ClassOK is a success: it re-admits the deployment.
	ClassOK Class = iota
	// ClassNeutral says nothing about the deployment: the client's own
	// fault (a 4xx the upstream blamed on the request), a client cancel, or
	// an error of the gateway itself.
	ClassNeutral
	// ClassFailure counts towards ejection: upstream 5xx, a 404 or 408
	// (this deployment's upstream model or the upstream itself is wrong),
	// timeout, unreachable, or a broken or invalid response.
	ClassFailure
	// ClassRateLimited is an upstream 429: the deployment cools down until
	// its Retry-After (capped).
	ClassRateLimited
	// ClassCredential is an upstream 401 or 403: the provider rejected the
	// gateway's credential, which stays dead until the provider's
	// configuration revision changes.
	ClassCredential
)

// String returns the class name, for logs and tests.
func (c Class) String() string {
	switch c {
	case ClassOK:
		return "ok"
	case ClassNeutral:
		return "neutral"
	case ClassFailure:
		return "failure"
	case ClassRateLimited:
		return "rate_limited"
	case ClassCredential:
		return "credential"
	}
	return "unknown"
}

// Classify says what an attempt's error means for the deployment that
// produced it; nil is ClassOK. It decides by e.Kind and e.UpstreamStatus
// (what the upstream actually answered), never by e.Status, which is the
// status rewritten for the client (an upstream 401 reaches the client as
// 502, say).
func Classify(e *llm.Error) Class {
	if e == nil {
		return ClassOK
	}
	switch e.Kind {
	case llm.KindCanceled:
		return ClassNeutral
	case llm.KindUnreachable, llm.KindTimeout:
		return ClassFailure
	}
	switch s := e.UpstreamStatus; {
	case s == http.StatusTooManyRequests:
		return ClassRateLimited
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return ClassCredential
	case s == http.StatusNotFound || s == http.StatusRequestTimeout:
		// The gateway chose the path and the upstream model name, so a 404
		// is this deployment's configuration, not the client's request.
		return ClassFailure
	case s >= 400 && s < 500:
		// The upstream blamed the request itself: another deployment would
		// say the same, and a client must not be able to eject deployments
		// by sending bad requests.
		return ClassNeutral
	case s != 0:
		// 5xx, or a 1xx/2xx/3xx whose answer was broken or invalid.
		return ClassFailure
	}
	if e.Kind == llm.KindUpstream {
		// Broken or invalid before any status could be kept.
		return ClassFailure
	}
	// The gateway's own errors (bad request, auth, quota, internal).
	return ClassNeutral
}

// Retryable reports whether another deployment may succeed where this
// attempt failed: unreachable, timeout, upstream 5xx, 429, 401/403 (another
// deployment has another credential), 404 (this deployment's upstream model
// is wrong), or a response broken before its first byte reached the client.
// The caller still must not retry once it has written to the client.
func Retryable(e *llm.Error) bool {
	switch Classify(e) {
	case ClassFailure, ClassRateLimited, ClassCredential:
		return true
	}
	return false
}
