package router

import (
	"math"
	"net/http"
	"strconv"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
	"github.com/sluice-ai/sluice/wire/jsonspan"
	"github.com/sluice-ai/sluice/wire/openai"
)

// writeError renders e as the HTTP response. It must be called before any
// byte of the body is written.
func writeError(w http.ResponseWriter, e *llm.Error) {
	writeErrorIn(w, e, openai.AppendError)
}

// writeErrorIn is writeError with the body in the shape render gives it
// (the client's dialect).
func writeErrorIn(w http.ResponseWriter, e *llm.Error, render func([]byte, *llm.Error) []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	switch {
	case e.NoRetry:
		// The gateway's own verdict (an exhausted budget): the SDKs must
		// not retry, and Retry-After says when it resets, uncapped.
		h.Set("X-Should-Retry", "false")
		if e.RetryAfter > 0 {
			h.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(e.RetryAfter.Seconds())), 10))
		}
	case e.RetryAfter > 0:
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(min(e.RetryAfter, providers.MaxClientRetryAfter).Seconds()))))
	}
	status := e.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
		if e.Status == 499 { // client is gone; nobody reads this
			status = 499
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(render(make([]byte, 0, 160), e))
}

// appendJSONString appends s as a JSON string literal (jsonspan.AppendString).
func appendJSONString(b []byte, s string) []byte { return jsonspan.AppendString(b, s) }
