package balancer

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// Options tunes passive health. Zero values take the defaults.
type Options struct {
	// MaxFails is how many consecutive failures (ClassFailure) within
	// FailWindow eject a deployment. Default 3; at least 2, so one error
	// never ejects.
	MaxFails int
	// FailWindow bounds how far apart the consecutive failures may be: a
	// failure more than FailWindow after the first of the run starts a new
	// run. Default 1m.
	FailWindow time.Duration
	// Cooldown is the first ejection's length; each further ejection
	// without a success in between doubles it. Default 30s.
	Cooldown time.Duration
	// MaxEjection caps an ejection's length. Default 5m.
	MaxEjection time.Duration
	// RateLimitCooldown is how long a 429 without Retry-After cools the
	// deployment. Default 5s.
	RateLimitCooldown time.Duration
	// MaxRetryAfterCooldown caps the cooldown taken from an upstream
	// Retry-After. Default 5m.
	MaxRetryAfterCooldown time.Duration
	// Replica names this replica in shared health transitions: the
	// transitions OnTransition hands out carry it as Origin, and Apply
	// ignores those that do (its own echoes).
	Replica string
	// OnTransition, when set, is called with every transition this
	// replica's own attempts make (to cooling, ejected or credential_dead,
	// and back to healthy by a success), outside the balancer's locks, on
	// the goroutine reporting the attempt: it must not block (queue and
	// return).
	OnTransition func(Transition)
	// Now and Rand are injectable for tests. Rand(n) returns a number in
	// [0, n) and must be safe for concurrent use when the Balancer is.
	Now  func() time.Time
	Rand func(n int) int
}

// Balancer keeps health per deployment id across configuration reloads. It
// is safe for concurrent use. State of deployments the configuration no
// longer has is dropped by Retain.
type Balancer struct {
	opts Options
	// base is the origin of the balancer's clock: times are kept as
	// durations since base, which Go measures on the monotonic clock, so a
	// wall-clock step (NTP) neither prolongs nor ends an ejection.
	base   time.Time
	health sync.Map // deployment id -> *health
	// models holds the state per model id (*modelState).
	models sync.Map
	// gen counts the Retain calls, so cached health pointers are renewed.
	gen atomic.Int64
	// retainMu orders Retain calls; picks and reports never take it.
	retainMu sync.Mutex
	// managed is set by the first Retain: from then on only targets have
	// state.
	managed atomic.Bool
}

// New returns a Balancer.
func New(o Options) *Balancer {
	if o.MaxFails <= 0 {
		o.MaxFails = 3
	}
	o.MaxFails = max(o.MaxFails, 2)
	if o.FailWindow <= 0 {
		o.FailWindow = time.Minute
	}
	if o.Cooldown <= 0 {
		o.Cooldown = 30 * time.Second
	}
	if o.MaxEjection <= 0 {
		o.MaxEjection = 5 * time.Minute
	}
	o.MaxEjection = max(o.MaxEjection, o.Cooldown)
	if o.RateLimitCooldown <= 0 {
		o.RateLimitCooldown = 5 * time.Second
	}
	if o.MaxRetryAfterCooldown <= 0 {
		o.MaxRetryAfterCooldown = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.IntN
	}
	return &Balancer{opts: o, base: o.Now()}
}

// now is the balancer's clock: nanoseconds since base.
func (b *Balancer) now() int64 { return int64(b.opts.Now().Sub(b.base)) }

// get returns the health of deployment id. Before the first Retain it is
// created on first use; after, the Balancer keeps state only for its
// targets, and any other id (a deployment deleted while a request that
// still sees it was running) gets a throwaway state, so nothing accumulates.
func (b *Balancer) get(id string) *health {
	if h, ok := b.health.Load(id); ok {
		return h.(*health)
	}
	if b.managed.Load() {
		return &health{}
	}
	h, _ := b.health.LoadOrStore(id, &health{})
	return h.(*health)
}

// Target is one deployment as the current configuration has it.
type Target struct {
	// ID is the deployment's stable id.
	ID string
	// ProviderRevision identifies the configuration of the deployment's
	// provider. When it changes, a dead credential is given another chance.
	ProviderRevision int64
	// Model is the id of the deployment's model, whose round-robin state
	// is kept.
	Model string
	// ProbeHealthy and ProbeUnhealthy are the thresholds of the active
	// probes of the deployment's provider (see ProbeResult); 0 when it
	// has none, and then an ejection ends with its backoff as before.
	ProbeHealthy, ProbeUnhealthy int
}

// Retain makes targets the deployments the Balancer keeps state for: their
// health carries over, new ones start healthy, and the state of every other
// deployment is dropped and never recreated (so deleted deployments do not
// accumulate). The round-robin state of models no target names is dropped
// too (a model picked later gets a fresh one). A target whose ProviderRevision changed is no longer
// credential-dead. Call it after a new configuration is in use: an attempt
// already started on a dropped deployment still reports to its own state,
// which is then simply forgotten, as are attempts on it that start later.
func (b *Balancer) Retain(targets []Target) {
	b.retainMu.Lock()
	defer b.retainMu.Unlock()
	keep := make(map[string]struct{}, len(targets))
	models := make(map[string]struct{})
	for _, t := range targets {
		keep[t.ID] = struct{}{}
		models[t.Model] = struct{}{}
		h, _ := b.health.LoadOrStore(t.ID, &health{})
		h.(*health).setRevision(t.ProviderRevision)
		h.(*health).setProbe(t.ProbeHealthy, t.ProbeUnhealthy)
	}
	b.managed.Store(true)
	b.health.Range(func(k, _ any) bool {
		if _, ok := keep[k.(string)]; !ok {
			b.health.Delete(k)
		}
		return true
	})
	b.models.Range(func(k, _ any) bool {
		if _, ok := models[k.(string)]; !ok {
			b.models.Delete(k)
		}
		return true
	})
	b.gen.Add(1)
}

// Outcome is the result of one attempt on a deployment.
type Outcome struct {
	// Err is nil on success.
	Err *llm.Error
	// Latency runs from sending the request to the response fully received
	// (or the attempt failing).
	Latency time.Duration
	// TTFT runs from sending the request to the first byte or event of the
	// answer; 0 if none arrived.
	TTFT time.Duration
	// Abandoned is set for an attempt the router gave up before its first
	// token because another answered first (the slow first attempt of a
	// hedged request): how long it had waited. Its Err is then a
	// cancellation, which says nothing of the deployment's health, but
	// the wait counts as a time-to-first-token sample in TTFTQuantile (a
	// lower bound of the real one), so that a deployment whose slow
	// answers are always abandoned is still seen to be slow.
	Abandoned time.Duration
	// Stream says which estimate an Abandoned wait feeds: streams' first
	// tokens, or non-streamed answers (see TTFTQuantile).
	Stream bool
}

// Start marks an attempt on d in flight. The returned function must be
// called exactly once, with the attempt's outcome (the router defers it);
// later calls do nothing.
func (b *Balancer) Start(d *llm.Deployment) func(Outcome) {
	h := b.get(d.ID)
	h.inflight.Add(1)
	a := &attempt{b: b, h: h, id: d.ID, epoch: h.epoch.Load(), rev: h.rev.Load()}
	return a.done
}

// attempt is one Start: what the health looked like when it began.
type attempt struct {
	b        *Balancer
	h        *health
	id       string
	epoch    int64
	rev      int64
	finished atomic.Bool
}

func (a *attempt) done(o Outcome) {
	if a.finished.Swap(true) {
		return
	}
	a.h.inflight.Add(-1)
	if ch := a.h.report(a.b, a.epoch, a.rev, o); ch.ok {
		a.b.publish(a.id, ch)
	}
}

// Status is the health of one deployment, for the admin API.
type Status struct {
	Deployment string `json:"deployment"`
	// Healthy is true when the deployment is picked normally (State
	// "healthy").
	Healthy bool `json:"healthy"`
	// State is "healthy", "cooling" (429), "ejected" (consecutive
	// failures) or "credential_dead" (401/403 until the provider changes).
	State string `json:"state"`
	// CooldownUntil is when a cooling or ejected deployment is picked
	// normally again.
	CooldownUntil time.Time `json:"cooldown_until,omitzero"`
	// Until is CooldownUntil as RFC 3339, null when the deployment is not
	// cooling or ejected (a dead credential has no end time).
	Until *time.Time `json:"until"`
	// Cooldown is how long until a cooling or ejected deployment is picked
	// normally again; 0 otherwise. Not serialized (Until says it).
	Cooldown time.Duration `json:"-"`
	// Ejections counts the ejections since the last success.
	Ejections int   `json:"ejections"`
	InFlight  int64 `json:"in_flight"`
	Successes int64 `json:"successes"`
	// Failures counts attempts that failed for the deployment's sake
	// (failures, 429s and credential rejections; not the client's errors).
	Failures int64 `json:"failures"`
	// LatencyMS and TTFTMS are moving averages over successful attempts,
	// in milliseconds; 0 until one was measured.
	LatencyMS float64 `json:"latency_ewma_ms"`
	TTFTMS    float64 `json:"ttft_ewma_ms"`
	// ErrorRate is the moving average of failures (1) and successes (0)
	// over the deployment's recent attempts, the one the auto strategy
	// weighs.
	ErrorRate float64 `json:"error_rate"`
	// Probe is the active probes' view of the deployment; nil when its
	// provider has none.
	Probe *ProbeStatus `json:"probe,omitempty"`
}

// Status reports the health of deployment id. An id the Balancer has no
// state for is healthy and idle.
func (b *Balancer) Status(id string) Status {
	v, ok := b.health.Load(id)
	if !ok {
		return Status{Deployment: id, Healthy: true, State: stateHealthy.String()}
	}
	return v.(*health).status(id, b)
}
