package router

import (
	"context"

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
}

// Admission is an admitted request's reservation. The router calls Settle
// exactly once on every exit after a successful Admit: success, upstream
// error, client cancel, broken stream and panic alike, with the usage the
// request was accounted for (zero when nothing was), so a reservation
// can be trued up or refunded. Settle must not block.
type Admission interface {
	Settle(u llm.Usage, costMicros int64)
}

// Ask is what admission may know about a request. Its methods that look at
// the body are computed on first use, at most once per request, and are
// valid only during Admit.
type Ask struct {
	// Principal is the authenticated caller.
	Principal *auth.Principal
	// Model is the configured model name the request resolved to.
	Model string
	// Endpoint is the API surface.
	Endpoint llm.Endpoint
	// Stream is true for a streamed request.
	Stream bool
	// MaxTokens is the larger of the client's max_tokens and
	// max_completion_tokens, 0 when absent.
	MaxTokens int

	body *requestFacts
}

// PromptTokens is the estimated prompt size of the request in tokens.
func (a Ask) PromptTokens() int { return a.body.promptTokens() }

// promptCounter estimates the prompt tokens of a request body;
// *quota.Estimator is one.
type promptCounter interface {
	PromptTokens(body []byte) int
}

var _ promptCounter = (*quota.Estimator)(nil)

// noAdmission admits everything; it is the Admitter until quotas exist.
type noAdmission struct{}

func (noAdmission) Admit(context.Context, Ask) (Admission, *llm.Error) { return noAdmission{}, nil }
func (noAdmission) Settle(llm.Usage, int64)                            {}

// requestFacts computes the prompt estimate of a request body lazily,
// once: it is a full JSON decode, so it runs at most once per request
// whoever asks (admission, estimation of missing usage, the record of a
// failed request).
type requestFacts struct {
	est    promptCounter
	body   []byte
	prompt int
	done   bool
}

func (f *requestFacts) promptTokens() int {
	if !f.done {
		f.prompt, f.done = f.est.PromptTokens(f.body), true
	}
	return f.prompt
}
