package balancer

import (
	"cmp"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// healthState is where a deployment stands.
type healthState int32

const (
	stateHealthy        healthState = iota
	stateCooling                    // a 429: until its Retry-After
	stateEjected                    // consecutive failures: exponential backoff
	stateCredentialDead             // 401/403: until the provider revision changes
)

func (s healthState) String() string {
	switch s {
	case stateCooling:
		return "cooling"
	case stateEjected:
		return "ejected"
	case stateCredentialDead:
		return "credential_dead"
	}
	return "healthy"
}

// ewmaWeight is the weight of the newest sample in the latency averages.
const ewmaWeight = 0.2

// health is the passive health of one deployment. Picks read the atomics
// only; reports and Retain change them under mu.
type health struct {
	inflight atomic.Int64
	// until is when a cooling or ejected deployment is picked normally
	// again (Balancer.now); 0 or past means available.
	until atomic.Int64
	// dead is true while the provider credential is rejected.
	dead atomic.Bool
	// epoch counts the transitions to unhealthy. An attempt started before
	// the latest one has already been accounted for: its failure does not
	// count again (a burst of concurrent failures ejects once, not once per
	// MaxFails of them) and its success does not re-admit.
	epoch atomic.Int64
	// rev is the provider revision of the configuration in use.
	rev atomic.Int64
	// first is the EWMA (ns, float64 bits) of the time to the first token
	// of successful attempts: the TTFT of a stream, the whole latency of a
	// non-streamed answer (its first token reaches the client with the
	// last); 0 until one was measured. errRate is the EWMA of failures
	// (1) and successes (0), float64 bits. Policies read both lock-free.
	first   atomic.Uint64
	errRate atomic.Uint64
	// qStream and qWhole estimate quantiles of the time to the answer's
	// first byte, for hedging: of streams' first tokens, and of
	// non-streamed answers' latencies (which arrive whole), kept apart
	// because a model serves both and they differ by the whole generation.
	qStream, qWhole quantiles

	mu          sync.Mutex
	fails       int   // consecutive failures in the current run
	runStart    int64 // unix ns of the run's first failure
	ejections   int   // ejections since the last success
	successes   int64 // totals, for Status
	failures    int64
	latency     float64 // EWMA, ns
	ttft        float64 // EWMA, ns
	coolingOnly bool    // until was set by a 429, not an ejection
	// remoteOut and remoteDead are true while the cooldown or ejection
	// (until) and the dead credential were set by another replica's
	// transition (Apply); its healthy transition clears only those.
	remoteOut  bool
	remoteDead bool

	// room is the provider account's headroom as the quota limiter last
	// saw it (SetHeadroom); nil until then.
	room atomic.Pointer[roomObs]

	// gated is set while an ejected deployment of a probed provider waits
	// for passing probes (probe.go); probe is that state, under mu.
	gated atomic.Bool
	probe probeState
}

// available reports whether the deployment is picked normally at now.
func (h *health) available(now int64) bool {
	return !h.dead.Load() && !isOut(h.until.Load(), now) && !h.drained(now) && !h.gated.Load()
}

// isOut reports whether a deployment whose until is until is still cooling
// or ejected at now (0 is never set).
func isOut(until, now int64) bool { return until != 0 && until > now }

// setRevision records the provider revision in use; a change revives a
// dead credential.
func (h *health) setRevision(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rev.Load() == rev {
		return
	}
	h.rev.Store(rev)
	if h.dead.Load() {
		h.dead.Store(false)
		h.epoch.Add(1)
	}
}

// report applies one attempt's outcome. epoch and rev are the health's as
// the attempt started. It returns the transition it made, if any, for the
// OnTransition hook.
func (h *health) report(b *Balancer, epoch, rev int64, out Outcome) (ch change) {
	o := &b.opts
	c := Classify(out.Err)
	if out.Abandoned > 0 {
		h.quantiles(out.Stream).observe(out.Abandoned)
	}
	if c == ClassNeutral {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c != ClassOK {
		h.errRate.Store(math.Float64bits(ewmaRate(math.Float64frombits(h.errRate.Load()), 1)))
	}
	current := h.epoch.Load() == epoch
	switch c {
	case ClassOK:
		h.successes++
		if out.Latency > 0 {
			h.latency = ewma(h.latency, out.Latency)
		}
		if out.TTFT > 0 {
			h.ttft = ewma(h.ttft, out.TTFT)
		}
		if f := cmp.Or(out.TTFT, out.Latency); f > 0 {
			h.first.Store(math.Float64bits(ewma(math.Float64frombits(h.first.Load()), f)))
			h.quantiles(out.TTFT > 0).observe(f)
		}
		h.errRate.Store(math.Float64bits(ewmaRate(math.Float64frombits(h.errRate.Load()), 0)))
		if !current {
			// Started before the deployment was last taken out: this says
			// nothing about it now.
			return
		}
		h.fails, h.ejections = 0, 0
		if h.until.Load() != 0 || h.dead.Load() {
			h.until.Store(0)
			h.dead.Store(false)
			h.coolingOnly, h.remoteOut, h.remoteDead = false, false, false
			h.epoch.Add(1)
			ch = change{ok: true, state: stateHealthy, rev: h.rev.Load()}
		}
	case ClassFailure:
		h.failures++
		if !current {
			return
		}
		now := b.now()
		if h.fails == 0 || now-h.runStart > int64(o.FailWindow) {
			h.fails, h.runStart = 0, now
		}
		h.fails++
		if h.fails < o.MaxFails {
			return
		}
		h.fails = 0
		h.ejections++
		d := o.Cooldown
		for i := 1; i < h.ejections && d < o.MaxEjection; i++ {
			d *= 2
		}
		d = min(d, o.MaxEjection)
		h.until.Store(max(h.until.Load(), now+int64(d)))
		h.coolingOnly, h.remoteOut = false, false
		h.epoch.Add(1)
		h.gate()
		ch = change{ok: true, state: stateEjected, until: h.until.Load()}
	case ClassRateLimited:
		h.failures++
		now := b.now()
		d := o.RateLimitCooldown
		if ra := out.Err.RetryAfter; ra > 0 {
			d = min(ra, o.MaxRetryAfterCooldown)
		}
		if until := now + int64(d); until > h.until.Load() {
			if !isOut(h.until.Load(), now) {
				h.coolingOnly = true
			}
			h.until.Store(until)
			h.remoteOut = false
			h.epoch.Add(1)
			ch = change{ok: true, state: stateEjected, until: until}
			if h.coolingOnly {
				ch.state = stateCooling
			}
		}
	case ClassCredential:
		h.failures++
		// Only if the attempt used the configuration still in force: a 401
		// under the old credential says nothing about the new one.
		if rev == h.rev.Load() && !h.dead.Load() {
			h.dead.Store(true)
			h.remoteDead = false
			h.epoch.Add(1)
			ch = change{ok: true, state: stateCredentialDead, rev: rev}
		}
	}
	return ch
}

// quantiles is the estimate of streams' first tokens, or of non-streamed
// answers.
func (h *health) quantiles(stream bool) *quantiles {
	if stream {
		return &h.qStream
	}
	return &h.qWhole
}

func ewma(avg float64, d time.Duration) float64 {
	if avg == 0 {
		return float64(d)
	}
	return avg + ewmaWeight*(float64(d)-avg)
}

// ewmaRate moves the rate r towards sample (0 or 1).
func ewmaRate(r, sample float64) float64 { return r + ewmaWeight*(sample-r) }

// firstEWMA is the time-to-first-token average in ns; 0 until measured.
func (h *health) firstEWMA() float64 { return math.Float64frombits(h.first.Load()) }

// errorRate is the moving failure rate in [0, 1].
func (h *health) errorRate() float64 { return math.Float64frombits(h.errRate.Load()) }

func (h *health) status(id string, b *Balancer) Status {
	now := b.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	st := Status{
		Deployment: id, State: stateHealthy.String(), InFlight: h.inflight.Load(),
		Ejections: h.ejections, Successes: h.successes, Failures: h.failures,
		LatencyMS: h.latency / float64(time.Millisecond), TTFTMS: h.ttft / float64(time.Millisecond),
		ErrorRate: h.errorRate(),
	}
	switch until := h.until.Load(); {
	case h.dead.Load():
		st.State = stateCredentialDead.String()
	case isOut(until, now):
		st.CooldownUntil = b.base.Add(time.Duration(until)).UTC().Round(0)
		u := st.CooldownUntil
		st.Until, st.Cooldown = &u, time.Duration(until-now)
		st.State = stateEjected.String()
		if h.coolingOnly {
			st.State = stateCooling.String()
		}
	default:
		st.Healthy = true
	}
	h.probeStatus(&st, b)
	return st
}
