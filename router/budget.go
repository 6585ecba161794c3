package router

import (
	"math"
	"sync"
	"time"
)

// Retry budget defaults (Finagle's RetryBudget, with a floor of 1 retry a
// second rather than its 10: 20% of requests, at least 1 retry a second,
// deposits counted over 10 s). A floor of 10 would let a model in full
// outage at 50 requests a second send 1.4× its client traffic upstream;
// with 1 it is 1.22×, and a rarely used model can still retry.
const (
	// DefaultRetryRatio is the share of requests that may be retried.
	DefaultRetryRatio = 0.2
	// DefaultRetryFloor is the retries per second a model may always make,
	// so that low traffic can still retry.
	DefaultRetryFloor = 1.0
	// retryWindow is the time constant over which deposits fade: the
	// balance is about what the last 10 s of requests deposited.
	retryWindow = 10 * time.Second
)

// retryBudget bounds the retries of one model, gateway-wide (per
// process): every request deposits ratio tokens, the clock adds floor
// tokens a second, every retry (an attempt after a request's first)
// withdraws one, and a retry without a whole token is not made. The
// balance decays exponentially with time constant retryWindow, so it is
// about what the last window deposited (never more than
// (ratio×rps + floor) × window): during a full outage at N client
// requests a second, upstream attempts stay at most (1+ratio)×N + floor a
// second, however many attempts each request may make. It starts full at
// floor × window, as if the model had been idle.
type retryBudget struct {
	ratio, floor float64
	mu           sync.Mutex
	balance      float64
	last         time.Time // of the last update
}

func newRetryBudget(ratio, floor float64, now time.Time) *retryBudget {
	return &retryBudget{ratio: ratio, floor: floor, balance: floor * retryWindow.Seconds(), last: now}
}

// age brings the balance to now: decay, then the floor's accrual over the
// elapsed time (its integral under the same decay). Called with mu held.
func (b *retryBudget) age(now time.Time) {
	dt := now.Sub(b.last).Seconds()
	if dt <= 0 {
		return // a clock that stepped back adds nothing
	}
	b.last = now
	tau := retryWindow.Seconds()
	k := math.Exp(-dt / tau)
	b.balance = b.balance*k + b.floor*tau*(1-k)
}

// deposit credits one request.
func (b *retryBudget) deposit(now time.Time) {
	b.mu.Lock()
	b.age(now)
	b.balance += b.ratio
	b.mu.Unlock()
}

// withdraw takes one retry's token; false when the budget has none.
func (b *retryBudget) withdraw(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.age(now)
	if b.balance < 1 {
		return false
	}
	b.balance--
	return true
}

// retryBudgets holds each model's budget. Models are keyed by their
// configured name (never client input: the request resolved to it), so
// the map is bounded by the models ever configured.
type retryBudgets struct {
	ratio, floor float64
	m            sync.Map // model name -> *retryBudget
}

// of returns model's budget, created on first use.
func (r *retryBudgets) of(model string, now time.Time) *retryBudget {
	if b, ok := r.m.Load(model); ok {
		return b.(*retryBudget)
	}
	b, _ := r.m.LoadOrStore(model, newRetryBudget(r.ratio, r.floor, now))
	return b.(*retryBudget)
}
