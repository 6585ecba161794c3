package router

import (
	"net/http"
	"time"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
)

// plan hands out the deployments to try, one at a time; nil when none is
// left. It never repeats a deployment.
type plan interface {
	Next() *llm.Deployment
}

// attemptOutcome is what the balancer learns from one attempt.
type attemptOutcome struct {
	// Err is nil for a success; for a failure it carries the upstream
	// status the decision is based on.
	Err           *llm.Error
	Latency, TTFT time.Duration
}

// indexPlan walks the balancer's precomputed order.
type indexPlan struct {
	m     *llm.Model
	order []int
	i     int
}

func (p *indexPlan) Next() *llm.Deployment {
	if p.i >= len(p.order) {
		return nil
	}
	d := &p.m.Deployments[p.order[p.i]]
	p.i++
	return d
}

func (h *Handler) plan(m *llm.Model) plan {
	return &indexPlan{m: m, order: h.opts.Balancer.Plan(m)}
}

// start marks an attempt on d in flight; the returned function must be
// called exactly once (deferred) with the attempt's outcome.
func (h *Handler) start(d *llm.Deployment) func(attemptOutcome) {
	done := h.opts.Balancer.Start(d.ID)
	return func(o attemptOutcome) {
		var ra time.Duration
		if o.Err != nil {
			ra = o.Err.RetryAfter
		}
		done(balancer.Outcome{Failed: unhealthy(o.Err), RetryAfter: ra})
	}
}

// upstreamStatus is the status the upstream actually sent, or the
// rewritten one for errors that predate UpstreamStatus.
func upstreamStatus(e *llm.Error) int {
	if e.UpstreamStatus != 0 {
		return e.UpstreamStatus
	}
	return e.Status
}

// retryable reports whether another deployment may succeed where this
// attempt failed. It is judged on what the upstream sent: its 401/403
// (credentials of this deployment) and 404 (its upstream model) are worth
// another deployment; a 400 is the client's.
func retryable(e *llm.Error) bool {
	switch e.Kind {
	case llm.KindUnreachable, llm.KindTimeout:
		return true
	case llm.KindUpstream:
		s := upstreamStatus(e)
		return s >= 500 || s < 400 || s == http.StatusTooManyRequests || s == http.StatusUnauthorized ||
			s == http.StatusForbidden || s == http.StatusNotFound || s == http.StatusRequestTimeout
	}
	return false
}

// unhealthy reports whether an attempt's error says the deployment is
// failing (as opposed to the request or the client).
func unhealthy(e *llm.Error) bool {
	return e != nil && retryable(e)
}
