package router

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/state"
)

// attempt runs the request's attempts: m's deployments as the balancer's
// plan hands them out, then, when every one failed or was unavailable,
// m's fallback models in order (their own fallbacks are not followed);
// a context-length error moves straight to m's context-window fallbacks.
// An attempt moves on only before the first byte reaches the client, only
// when the error says another deployment may succeed (judged on the
// upstream's own status), never after a whole-call deadline that expired
// once the upstream's headers came, and only within the request's bounds
// (see withinBounds and budgeted).
func (x *exchange) attempt(st *state.State, m *llm.Model) result {
	r := x.newRun(m)
	if res, ok := x.attemptModel(st, m, r); ok {
		return res
	}
	list, window := m.Routing.Fallbacks, false
	for i := 0; !r.stop; i++ {
		if r.window && !window {
			// Only a model with a larger window may answer; the plain
			// fallbacks are not tried after this.
			list, window, i = m.Routing.ContextWindowFallbacks, true, 0
		}
		if i >= len(list) {
			break
		}
		fm := x.fallback(st, list[i], r)
		if fm == nil {
			continue
		}
		if res, ok := x.attemptModel(st, fm, r); ok {
			return res
		}
	}
	last := r.last
	if last == nil {
		last = llm.Errorf(llm.KindUnavailable, "model %q has no deployment available", m.Name)
	}
	return result{err: last, dep: r.dep}
}

// fallback returns the fallback model named name, or nil when it is to
// be skipped: no longer configured, already tried for this request, or
// not allowed to the caller.
func (x *exchange) fallback(st *state.State, name string, r *run) *llm.Model {
	fm, ok := st.Snapshot.Models[name]
	if !ok || r.planned(fm) {
		return nil
	}
	if x.principal != nil && !x.principal.Allows(fm.Name) {
		return nil
	}
	return fm
}

// attemptModel tries m's deployments until one delivers (ok), the plan
// is exhausted, or r says to stop.
func (x *exchange) attemptModel(st *state.State, m *llm.Model, r *run) (res result, ok bool) {
	h := x.h
	r.models = append(r.models, m)
	req := balancer.Request{MaxTokens: x.req.maxTokens}
	if balancer.NeedsPromptTokens(m) {
		req.PromptTokens = x.promptTokens()
	}
	x.aff = affinity{} // keyed by model: a fallback's are its own
	x.affinityFor(m, &req)
	p := h.opts.Balancer.PlanFor(m, req)
	r.window = false
	prior := len(r.upstreams) // of the models tried before m
	for d := p.Next(); d != nil; d = p.Next() {
		if r.triedUpstream(d, prior) {
			// The same upstream model on the same provider already failed
			// for this request under another model's name.
			continue
		}
		prov, ok := st.Providers.Get(d.Provider)
		if !ok {
			r.skip(llm.Errorf(llm.KindUnavailable, "no provider is configured for deployment %s", d.ID))
			continue
		}
		if !x.withinBounds(r) {
			break
		}
		dadm, e := x.admitDeployment(d)
		if e != nil {
			// No headroom left on this provider account: the next
			// deployment may have some; no upstream was contacted.
			r.skip(e)
			continue
		}
		if !x.budgeted(r) {
			dadm.Settle(llm.Usage{}, 0)
			break
		}
		x.began(r, m, d)
		tr, c := x.tryOrHedge(st, p, m, prov, d, dadm, r)
		d, dadm, r.dep = c.d, c.adm, c.d
		if tr.delivered {
			u := x.sanitize(tr.usage)
			cost := d.Cost(u)
			dadm.Settle(u, cost)
			if tr.err == nil {
				x.remember(m, d)
			}
			return result{usage: u, cost: cost, dep: d}, true
		}
		dadm.Settle(llm.Usage{}, 0)
		r.last = tr.err
		switch {
		case tr.final || x.r.Context().Err() != nil:
			r.stop = true
		case tr.err.ContextLength():
			// Every deployment of m has the same window.
			r.window = true
			return result{}, false
		case !balancer.Retryable(tr.err):
			r.stop = true
		}
		if r.stop {
			return result{}, false
		}
	}
	return result{}, false
}

// began records that an attempt on d, a deployment of m, starts now.
func (x *exchange) began(r *run, m *llm.Model, d *llm.Deployment) {
	if r.n > 0 {
		x.h.opts.Metrics.retries.WithLabelValues(r.m.Name).Inc()
	}
	if m != r.m && r.servedBy != m {
		x.h.opts.Metrics.fallbacks.WithLabelValues(r.m.Name, m.Name).Inc()
	}
	r.n++
	r.dep, r.servedBy = d, m
	r.upstreams = append(r.upstreams, d)
	x.rec.Attempts = r.n
	x.rec.Provider, x.rec.Deployment, x.rec.UpstreamModel = d.Provider, d.ID, d.Model
	x.rec.ServedModel = ""
	if m != r.m {
		x.rec.ServedModel = m.Name
	}
}

// withinBounds reports whether another attempt may start within the
// request's bounds: attempts and the retry timeout. When not, r stops.
// The first attempt always may.
func (x *exchange) withinBounds(r *run) bool {
	if r.n == 0 {
		return true
	}
	if r.n >= r.max || (!r.deadline.IsZero() && !x.h.opts.Now().Before(r.deadline)) {
		r.stop = true
		return false
	}
	return true
}

// budgeted takes a retry's token from the model's retry budget (the first
// attempt needs none); when there is none, r stops.
func (x *exchange) budgeted(r *run) bool {
	if r.n == 0 || r.budget.withdraw(x.h.opts.Now()) {
		return true
	}
	x.h.opts.Metrics.budgetExhausted.WithLabelValues(r.m.Name).Inc()
	r.stop = true
	return false
}

// admitDeployment admits one attempt against d's own limits (the provider
// account's rpm, tpm and concurrency), when it has any.
func (x *exchange) admitDeployment(d *llm.Deployment) (Admission, *llm.Error) {
	if d.Limits.IsZero() {
		return noAdmission{}, nil
	}
	if _, none := x.h.opts.Admitter.(noAdmission); none {
		return noAdmission{}, nil
	}
	adm, e := x.h.opts.Admitter.AdmitDeployment(x.r.Context(), x.ask, d)
	if e == nil && adm == nil {
		adm = noAdmission{}
	}
	return adm, e
}

// tryResult is the outcome of one attempt.
type tryResult struct {
	// delivered is true once an answer (or a stream that then broke)
	// reached the client: the request is answered, nothing is retried.
	delivered bool
	// err is why the attempt failed before delivering anything, or how a
	// delivered stream ended badly (broken, client gone); nil on success.
	err *llm.Error
	// final is true when err must not be retried on another deployment
	// whatever it is: a generation that outlasted the whole-call deadline
	// after the upstream had accepted it.
	final bool
	usage llm.Usage // of a delivered answer
	ttft  time.Duration
}

// errPanicked is the balancer's outcome of an attempt that panicked.
var errPanicked = llm.Errorf(llm.KindInternal, "internal error")

// deliver completes the attempt c: its call, unless a hedge race already
// made it, then the relay of its answer. The balancer's in-flight mark is
// released by a deferred call, so even a panic in the relay reports the
// attempt.
func (x *exchange) deliver(c *contender) (tr tryResult) {
	prov, d, to, t0, cancel := c.prov, c.d, c.to, c.t0, c.cancel
	defer cancel()
	o := balancer.Outcome{Err: errPanicked}
	defer func() {
		o.Latency = time.Since(t0)
		c.done(o)
	}()
	if c.err == nil && c.resp == nil {
		c.open(false)
	}
	x.upstream += c.waited
	resp := c.resp
	if resp == nil {
		// Nothing was sent (the request cannot be expressed for this
		// provider: neutral for its health, no upstream status), or the
		// call failed.
		e := c.err
		if e.UpstreamStatus != 0 {
			x.rec.UpstreamStatus = e.UpstreamStatus
		}
		o.Err = e
		return tryResult{err: e}
	}
	defer resp.Body.Close()
	x.rec.UpstreamStatus = resp.Status
	// From the response headers on, the provider's idle timeout bounds
	// every quiet gap in the body, streamed or not.
	idle := watchIdle(to.Idle, cancel)
	defer idle.stop()
	if resp.Decoder != nil {
		// The translated lane: the same bounds, the answer decoded into
		// neutral form and rendered in the client's dialect.
		idle.until(t0.Add(to.FirstByte))
		if x.req.stream {
			tr = x.translatedStream(resp, d, idle, cancel)
		} else {
			tr = x.translatedJSON(resp, d, idle, to.FirstByte)
		}
	} else if x.req.stream && isEventStream(resp.Header) {
		// The first event must come within the first-byte timeout too:
		// keepalive comments (activity, but held back with the headers
		// until the first event) must not make the client wait forever.
		idle.until(t0.Add(to.FirstByte))
		if x.in.sniffer != nil {
			tr = x.rawStream(resp, prov, d, idle, cancel)
		} else {
			tr = x.stream(resp, prov, d, idle, cancel)
		}
	} else {
		// One JSON body is one generation (also when it answers a stream
		// request): the provider's first-byte timeout bounds the whole
		// call, the headers (the transport) and the body (the watch), so
		// an upstream trickling it cannot hold the client.
		idle.until(t0.Add(to.FirstByte))
		tr = x.json(resp, prov, d, idle, to.FirstByte)
	}
	o.Err = tr.err
	if tr.ttft > 0 {
		o.TTFT = tr.ttft - t0.Sub(x.start) // from the attempt's start
	}
	return tr
}

// isEventStream reports a text/event-stream body. Media types are
// case-insensitive and may carry parameters ("Text/Event-Stream;
// charset=utf-8").
func isEventStream(h http.Header) bool {
	const sse = "text/event-stream"
	ct := strings.TrimSpace(h.Get("Content-Type"))
	return len(ct) >= len(sse) && strings.EqualFold(ct[:len(sse)], sse) &&
		(len(ct) == len(sse) || ct[len(sse)] == ';' || ct[len(sse)] == ' ' || ct[len(sse)] == '\t')
}

func asError(err error) *llm.Error {
	var e *llm.Error
	if errors.As(err, &e) {
		return e
	}
	e = llm.Errorf(llm.KindInternal, "internal error")
	e.Err = err
	return e
}
