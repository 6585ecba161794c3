package router

import (
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
	"github.com/sluice-ai/sluice/state"
)

// Hedged first tokens: for a model with routing.hedge on, an attempt that
// has not started answering (no first byte of its body) within the
// configured delay, or its deployment's observed p95 time to first token,
// is raced against one more attempt on the plan's next available
// deployment; the first to start answering is relayed and the other is
// cancelled at once. One hedge per request at most; it counts as an
// attempt (MaxAttempts), and is never sent for a request offering a tool
// the operator marked unsafe.

// Outcomes of sluice_hedges_total.
const (
	hedgeWon           = "won"            // the hedge answered first
	hedgeLost          = "lost"           // the hedge was sent but did not serve the answer
	hedgeSkippedBudget = "skipped_budget" // the delay passed but the retry budget was empty
)

// errAbandoned is the balancer's outcome of an attempt cancelled because
// another answered first: neutral for its health.
var errAbandoned = llm.Errorf(llm.KindCanceled, "attempt abandoned: another answered first")

// tryOrHedge runs the attempt on d (admitted by adm), hedged when m and
// the request allow it. It returns the result of the attempt delivered and
// that attempt (whose deployment and admission may be the hedge's); r
// counts a hedge sent as an attempt.
func (x *exchange) tryOrHedge(st *state.State, p *balancer.Plan, m *llm.Model, prov providers.Provider, d *llm.Deployment, adm Admission, r *run) (tryResult, *contender) {
	c := x.prepare(prov, d)
	c.adm = adm
	delay, ok := x.hedgeDelay(m, d, r)
	if !ok || c.err != nil {
		return x.deliver(c), c
	}
	return x.hedged(st, p, m, c, delay, r)
}

// hedgeDelay reports whether an attempt on d may be hedged, and after how
// long without a first byte: the model's configured delay, or else d's
// observed p95 time to first token (of its streams, or for a non-streamed
// request its answers' latency; no hedge until it has enough samples).
// Never for a model with one deployment, a request already hedged or at
// its last attempt, nor one offering a tool the policy names unsafe.
func (x *exchange) hedgeDelay(m *llm.Model, d *llm.Deployment, r *run) (time.Duration, bool) {
	hp := m.Routing.Hedge
	if !hp.On() || x.rec.Hedged || len(m.Deployments) < 2 || r.n >= r.max {
		return 0, false
	}
	delay := hp.Delay()
	if delay <= 0 {
		quantile := x.h.opts.Balancer.AnswerQuantile
		if x.req.stream {
			quantile = x.h.opts.Balancer.TTFTQuantile
		}
		q, ok := quantile(d.ID, 0.95)
		if !ok {
			return 0, false
		}
		delay = q
	}
	if offersUnsafeTool(x.req.body, hp.UnsafeTools) {
		return 0, false
	}
	return max(delay, time.Millisecond), true
}

// hedgeRace is where a hedged request's contenders meet: the first whose
// answer starts decides it; one that opens after that abandons itself.
type hedgeRace struct {
	mu      sync.Mutex
	decided bool
	ch      chan *contender // capacity 2: a send never blocks
	log     *slog.Logger
}

// start opens c in a goroutine of its own. Call with r.mu held or before
// r is shared.
func (r *hedgeRace) start(c *contender) {
	go func() {
		r.open(c)
		r.mu.Lock()
		if r.decided {
			r.mu.Unlock()
			c.abandon()
			return
		}
		r.decided = c.err == nil
		// Sent under the lock: a failure that came before the decision is
		// received before the winner.
		r.ch <- c
		r.mu.Unlock()
	}()
}

// open opens c, a panic in its provider becoming its error (the
// request's goroutine, which the handler's recovery guards, is not this
// one).
func (r *hedgeRace) open(c *contender) {
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("panic in a hedged attempt", "panic", v, "deployment", c.d.ID)
			if c.resp != nil {
				c.resp.Body.Close()
				c.resp = nil
			}
			c.err = errPanicked
		}
	}()
	c.open(true)
}

// close ends the race however hedged returns, a panic included: every
// contender is cancelled, one still running abandons itself, and one that
// reported without being received (only on a panic) is abandoned here.
func (r *hedgeRace) close(all *[2]*contender) {
	r.mu.Lock()
	r.decided = true
	r.mu.Unlock()
	for _, c := range all {
		if c != nil {
			c.cancel()
		}
	}
	for {
		select {
		case c := <-r.ch:
			c.abandon()
		default:
			return
		}
	}
}

// join starts c unless the race is decided.
func (r *hedgeRace) join(c *contender) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.decided {
		return false
	}
	r.start(c)
	return true
}

// hedged runs the attempt c and, when it has not started answering
// within delay, one hedge on the plan's next available deployment. It
// returns the result of the attempt delivered, the first to start
// answering or, when all failed, the last to fail, and that attempt.
// Every other contender is finished: reported to the balancer and its
// admission settled, by this goroutine or, for one still running when
// the race was decided, by its own once its cancelled call returns.
func (x *exchange) hedged(st *state.State, p *balancer.Plan, m *llm.Model, c *contender, delay time.Duration, run *run) (tryResult, *contender) {
	r := &hedgeRace{ch: make(chan *contender, 2), log: x.h.opts.Logger}
	r.start(c)
	all := [2]*contender{c}
	defer r.close(&all)
	timer := time.NewTimer(delay)
	defer timer.Stop()
	wait, running := timer.C, 1
	for {
		select {
		case got := <-r.ch:
			running--
			if got.err == nil {
				for _, o := range all {
					if o != nil && o != got {
						o.cancel() // it abandons itself (r is decided)
					}
				}
				return x.deliverFrom(m, all, got), got
			}
			if running == 0 {
				// All failed (or the first failed before any hedge): the
				// usual retry logic takes it from here.
				return x.deliverFrom(m, all, got), got
			}
			// The other may still answer.
			x.deliver(got)
			got.adm.Settle(llm.Usage{}, 0)
		case <-wait:
			wait = nil
			if h := x.launchHedge(st, p, m, r, run); h != nil {
				all[1] = h
				running++
			}
		}
	}
}

// deliverFrom delivers got, the attempt that ends the race, counting the
// hedge's outcome when one was sent.
func (x *exchange) deliverFrom(m *llm.Model, all [2]*contender, got *contender) tryResult {
	if all[1] != nil {
		outcome := hedgeLost
		if got == all[1] && got.err == nil {
			outcome = hedgeWon
		}
		x.h.opts.Metrics.hedges.WithLabelValues(m.Name, outcome).Inc()
	}
	x.rec.Provider, x.rec.Deployment, x.rec.UpstreamModel = got.d.Provider, got.d.ID, got.d.Model
	return x.deliver(got)
}

// launchHedge sends the hedge: on the plan's next deployment that is
// available (never one cooling, ejected or without a credential), has a
// provider and admits the attempt. It returns nil when none does, when
// the request's retry timeout has passed, when the retry budget is empty
// or when the race was decided meanwhile.
func (x *exchange) launchHedge(st *state.State, p *balancer.Plan, m *llm.Model, r *hedgeRace, run *run) *contender {
	if !run.deadline.IsZero() && !x.h.opts.Now().Before(run.deadline) {
		return nil
	}
	if !x.hedgeBudget(run) {
		x.h.opts.Metrics.hedges.WithLabelValues(m.Name, hedgeSkippedBudget).Inc()
		return nil
	}
	for {
		d := p.NextAvailable()
		if d == nil {
			return nil
		}
		prov, ok := st.Providers.Get(d.Provider)
		if !ok {
			continue
		}
		adm, e := x.admitDeployment(d)
		if e != nil {
			continue
		}
		c := x.prepare(prov, d)
		c.adm, c.hedge = adm, true
		if c.err != nil {
			// Cannot be expressed for this provider; nothing was sent.
			c.cancel()
			adm.Settle(llm.Usage{}, 0)
			continue
		}
		if !r.join(c) {
			c.cancel()
			c.done(balancer.Outcome{Err: errAbandoned})
			adm.Settle(llm.Usage{}, 0)
			return nil
		}
		run.n++
		run.upstreams = append(run.upstreams, d)
		x.rec.Attempts = run.n
		x.rec.Hedged = true
		x.w.Header()["X-Sluice-Hedged"] = []string{"true"}
		return c
	}
}

// hedgeBudget reports whether a hedge may be sent now: it is an attempt
// after the request's first, paid from the model's retry budget like a
// retry.
func (x *exchange) hedgeBudget(r *run) bool { return r.budget.withdraw(x.h.opts.Now()) }

// abandon ends an attempt that lost its race, from the goroutine that
// opened it: cancelled, its body closed, reported to the balancer (a
// cancellation, neutral for health, unless it had failed on its own; the
// first attempt's wait counts as a time-to-first-token sample, see
// balancer.Outcome.Abandoned) and its admission settled. It had relayed
// nothing; an upstream that bills a cancelled request's prompt is not
// seen by the gateway.
func (c *contender) abandon() {
	c.cancel()
	if c.resp != nil {
		c.resp.Body.Close()
	}
	o := balancer.Outcome{Err: errAbandoned, Latency: time.Since(c.t0), Stream: c.call.Stream}
	if c.err != nil && c.err.Kind != llm.KindCanceled {
		o.Err = c.err
	} else if !c.hedge {
		o.Abandoned = o.Latency
	}
	c.done(o)
	c.adm.Settle(llm.Usage{}, 0)
}

// offersUnsafeTool reports whether body offers a tool named in unsafe
// ("*" is any tool). Tools are read in every dialect's shape: OpenAI's
// tools[].function.name and functions[].name, Anthropic's and the
// Responses API's tools[].name (a built-in tool without one by its type),
// Gemini's tools[].functionDeclarations[].name. A body whose tools do not
// parse counts as offering one: such a request is never hedged by mistake.
func offersUnsafeTool(body []byte, unsafe []string) bool {
	if len(unsafe) == 0 {
		return false
	}
	type named struct {
		Name string `json:"name"`
	}
	var v struct {
		Tools []struct {
			Type                 string  `json:"type"`
			Name                 string  `json:"name"`
			Function             named   `json:"function"`
			FunctionDeclarations []named `json:"functionDeclarations"`
		} `json:"tools"`
		Functions []named `json:"functions"`
	}
	if json.Unmarshal(body, &v) != nil {
		return true
	}
	if len(v.Tools) == 0 && len(v.Functions) == 0 {
		return false
	}
	if slices.Contains(unsafe, "*") {
		return true
	}
	is := func(name string) bool { return name != "" && slices.Contains(unsafe, name) }
	for _, t := range v.Tools {
		if is(t.Name) || is(t.Function.Name) || (t.Name == "" && t.Function.Name == "" && is(t.Type)) {
			return true
		}
		for _, f := range t.FunctionDeclarations {
			if is(f.Name) {
				return true
			}
		}
	}
	for _, f := range v.Functions {
		if is(f.Name) {
			return true
		}
	}
	return false
}
