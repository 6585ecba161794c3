package router

import (
	"context"
	"net/http"

	"github.com/sluice-ai/sluice/auth"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/quota"
)

// Admitter decides whether a request may go upstream at all (rate limits,
// token and money budgets) before any upstream contact. It is called once
// per request, after the model and the caller's access to it are resolved.
// A non-nil error is answered to the client as is (a quota rejection is
// llm.KindRateLimited: 429 with Retry-After) and no Admission is settled.
type Admitter interface {
	Admit(ctx context.Context, a Ask) (Admission, *llm.Error)
	// AdmitDeployment admits one attempt on deployment d against the
	// deployment's own limits (the provider account's rpm and tpm). A
	// refusal moves the request to the next deployment. It is called only
	// for deployments with limits.
	AdmitDeployment(ctx context.Context, a Ask, d *llm.Deployment) (Admission, *llm.Error)
}

// Admission is an admitted request's reservation. The router calls Settle
// exactly once on every exit after a successful Admit: success, upstream
// error, client cancel, broken stream and panic alike, with the usage the
// request was accounted for (zero when nothing was), so a reservation
// can be trued up or refunded. Settle must not block.
type Admission interface {
	Settle(u llm.Usage, costMicros int64)
	// Headers sets the rate-limit headers the admission knows of
	// (x-ratelimit-*) before the answer's first byte. Admit may return an
	// Admission with its refusal just for these; it is then not settled.
	Headers(h http.Header)
}

// Ask is what admission may know about a request. Its methods that look at
// the body are computed on first use, at most once per request, and are
// valid only during Admit.
type Ask struct {
	// ID is the gateway's request id: it names the reservation.
	ID string
	// Principal is the authenticated caller.
	Principal *auth.Principal
	// Model is the configured model the request resolved to.
	Model *llm.Model
	// Snapshot is the configuration the request is served from (owners'
	// limits live there).
	Snapshot *llm.Snapshot
	// Endpoint is the API surface.
	Endpoint llm.Endpoint
	// Stream is true for a streamed request.
	Stream bool
	// MaxTokens is the larger of the client's max_tokens and
	// max_completion_tokens, 0 when absent; Choices is n (0 when absent).
	MaxTokens, Choices int

	body *requestFacts
}

// PromptTokens is the estimated prompt size of the request in tokens.
func (a Ask) PromptTokens() int { return a.body.promptTokens() }

// promptCounter estimates the prompt tokens of a request body with the
// encoding of the model's family; *quota.Estimator is one.
type promptCounter interface {
	PromptTokensFor(model string, body []byte) int
}

var _ promptCounter = (*quota.Estimator)(nil)

// noAdmission admits everything; it is the Admitter until quotas exist.
type noAdmission struct{}

func (noAdmission) Admit(context.Context, Ask) (Admission, *llm.Error) { return noAdmission{}, nil }
func (noAdmission) AdmitDeployment(context.Context, Ask, *llm.Deployment) (Admission, *llm.Error) {
	return noAdmission{}, nil
}
func (noAdmission) Settle(llm.Usage, int64) {}
func (noAdmission) Headers(http.Header)     {}

// requestFacts computes the prompt estimate of a request body lazily,
// once: it is a full JSON decode, so it runs at most once per request
// whoever asks (admission, estimation of missing usage, the record of a
// failed request).
type requestFacts struct {
	est    promptCounter
	model  string // picks the encoding
	body   []byte
	prompt int
	done   bool
}

func (f *requestFacts) promptTokens() int {
	if !f.done {
		f.prompt, f.done = f.est.PromptTokensFor(f.model, f.body), true
	}
	return f.prompt
}
