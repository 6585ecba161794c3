package router

import (
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// run is the state of one request's attempts across deployments and
// models, and their bounds: at most max attempts, none started after
// deadline, none after the first without a token of the requested
// model's retry budget.
type run struct {
	m        *llm.Model // the model the client asked for
	max      int        // attempts allowed, the first included
	deadline time.Time  // zero: none
	budget   *retryBudget

	n         int               // attempts made
	last      *llm.Error        // why the last attempt failed (or was skipped)
	dep       *llm.Deployment   // the last deployment attempted
	servedBy  *llm.Model        // the model of dep
	models    []*llm.Model      // the models planned, in order
	upstreams []*llm.Deployment // the deployments attempted, in order
	stop      bool              // no further attempt
	window    bool              // the last model's attempt exceeded its context window

	// Backing arrays of models and upstreams for the common case.
	modelBuf    [2]*llm.Model
	upstreamBuf [4]*llm.Deployment
}

// newRun starts the attempts of a request for m and credits m's retry
// budget with the request.
func (x *exchange) newRun(m *llm.Model) *run {
	h := x.h
	now := h.opts.Now()
	x.run = run{m: m, max: m.Routing.Retry.Attempts(h.opts.MaxAttempts), budget: h.budgets.of(m.Name, now)}
	r := &x.run
	r.models, r.upstreams = r.modelBuf[:0], r.upstreamBuf[:0]
	if t := m.Routing.Retry.Timeout(); t > 0 {
		r.deadline = x.start.Add(t)
	}
	r.budget.deposit(now)
	return r
}

// skip notes why a deployment was passed over without an attempt; it is
// the answer only when nothing better comes.
func (r *run) skip(e *llm.Error) {
	if r.last == nil || r.n == 0 {
		r.last = e
	}
}

// planned reports whether m's deployments were already tried.
func (r *run) planned(m *llm.Model) bool {
	for _, p := range r.models {
		if p == m || p.Name == m.Name {
			return true
		}
	}
	return false
}

// triedUpstream reports whether d's upstream (its provider and upstream
// model) was already attempted among the first n deployments attempted,
// those of the models tried before d's.
func (r *run) triedUpstream(d *llm.Deployment, n int) bool {
	for _, t := range r.upstreams[:n] {
		if t.ID == d.ID || (t.Provider == d.Provider && t.Model == d.Model) {
			return true
		}
	}
	return false
}
