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
	// MaxFails is how many consecutive retryable failures put a deployment
	// in cooldown. Default 3.
	MaxFails int
	// Cooldown is how long a failing deployment is skipped. Default 30s.
	Cooldown time.Duration
	// MaxRetryAfterCooldown caps the cooldown taken from an upstream
	// Retry-After. Default 5m.
	MaxRetryAfterCooldown time.Duration
	// Now and Rand are injectable for tests.
	Now  func() time.Time
	Rand func(n int) int
}

// Balancer keeps health per deployment id across configuration reloads. It
// is safe for concurrent use.
type Balancer struct {
	opts   Options
	health sync.Map // deployment id -> *state
}

type state struct {
	fails         atomic.Int32
	cooldownUntil atomic.Int64 // unix nanoseconds
	inflight      atomic.Int64
	successes     atomic.Int64
	failures      atomic.Int64
}

// New returns a Balancer.
func New(o Options) *Balancer {
	if o.MaxFails <= 0 {
		o.MaxFails = 3
	}
	if o.Cooldown <= 0 {
		o.Cooldown = 30 * time.Second
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
	return &Balancer{opts: o}
}

func (b *Balancer) state(id string) *state {
	if s, ok := b.health.Load(id); ok {
		return s.(*state)
	}
	s, _ := b.health.LoadOrStore(id, &state{})
	return s.(*state)
}

// Plan returns the order in which m's deployments should be tried: a
// weighted random pick among available deployments first, then the other
// available ones by weight, then those cooling down (a last resort beats
// failing outright). The result indexes m.Deployments.
func (b *Balancer) Plan(m *llm.Model) []int {
	n := len(m.Deployments)
	if n == 0 {
		return nil
	}
	if n == 1 {
		return []int{0}
	}
	now := b.opts.Now().UnixNano()
	avail := make([]int, 0, n)
	var cooling []int
	total := 0
	for i := range m.Deployments {
		d := &m.Deployments[i]
		if b.state(d.ID).cooldownUntil.Load() > now {
			cooling = append(cooling, i)
			continue
		}
		avail = append(avail, i)
		total += weight(d)
	}
	out := make([]int, 0, n)
	for len(avail) > 0 {
		r := b.opts.Rand(total)
		pick := 0
		for j, i := range avail {
			r -= weight(&m.Deployments[i])
			if r < 0 {
				pick = j
				break
			}
		}
		i := avail[pick]
		out = append(out, i)
		total -= weight(&m.Deployments[i])
		avail = append(avail[:pick], avail[pick+1:]...)
	}
	return append(out, cooling...)
}

func weight(d *llm.Deployment) int {
	if d.Weight <= 0 {
		return 1
	}
	return d.Weight
}

// Outcome is the result of one attempt on a deployment.
type Outcome struct {
	// Failed is true when the deployment failed in a way that says
	// something about its health (unreachable, timeout, 5xx, 429).
	Failed bool
	// RetryAfter, when positive, cools the deployment down for that long.
	RetryAfter time.Duration
}

// Start marks an attempt on deployment id as in flight; call the returned
// function with the outcome when it ends.
func (b *Balancer) Start(id string) func(Outcome) {
	s := b.state(id)
	s.inflight.Add(1)
	return func(o Outcome) {
		s.inflight.Add(-1)
		b.report(s, o)
	}
}

func (b *Balancer) report(s *state, o Outcome) {
	if !o.Failed {
		s.successes.Add(1)
		if s.fails.Load() != 0 {
			s.fails.Store(0)
		}
		return
	}
	s.failures.Add(1)
	now := b.opts.Now()
	if o.RetryAfter > 0 {
		d := min(o.RetryAfter, b.opts.MaxRetryAfterCooldown)
		s.cooldownUntil.Store(now.Add(d).UnixNano())
	}
	if int(s.fails.Add(1)) >= b.opts.MaxFails {
		s.fails.Store(0)
		until := now.Add(b.opts.Cooldown).UnixNano()
		if until > s.cooldownUntil.Load() {
			s.cooldownUntil.Store(until)
		}
	}
}

// Status is the health of one deployment, for the admin API.
type Status struct {
	Deployment    string    `json:"deployment"`
	Healthy       bool      `json:"healthy"`
	CooldownUntil time.Time `json:"cooldown_until,omitzero"`
	InFlight      int64     `json:"in_flight"`
	Successes     int64     `json:"successes"`
	Failures      int64     `json:"failures"`
}

// Status reports the health of deployment id.
func (b *Balancer) Status(id string) Status {
	s := b.state(id)
	st := Status{Deployment: id, InFlight: s.inflight.Load(), Successes: s.successes.Load(), Failures: s.failures.Load()}
	if cu := s.cooldownUntil.Load(); cu > b.opts.Now().UnixNano() {
		st.CooldownUntil = time.Unix(0, cu).UTC()
	} else {
		st.Healthy = true
	}
	return st
}
