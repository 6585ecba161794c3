package balancer

import (
	"math"
	"time"
)

// Headroom is what a deployment's provider account has left of its
// declared limits (rpm, tpm, max_parallel), as the quota limiter saw it
// at its latest admission on the deployment.
type Headroom struct {
	// Frac is the fraction left of the tightest limit, in [0, 1].
	Frac float64
	// Refill is how long the tightest limit takes to be full again (a
	// token bucket refills evenly over it); 0 means a second.
	Refill time.Duration
	// Empty, when positive, is how long the deployment cannot take a
	// request at all (its bucket is empty): it is then passed over as if
	// cooling while others are available.
	Empty time.Duration
}

// roomObs is a Headroom as of at, on the balancer's clock.
type roomObs struct {
	at, refill, emptyUntil int64
	frac                   float64
}

// Headroom terms of the cost-aware strategies: a deployment with less
// than headroomLow of its tightest limit left counts as up to
// 1 + headroomWeight times as expensive (linearly, at 0 left), so picks
// drift to deployments whose accounts have room before the provider
// answers 429. Above headroomLow nothing changes.
const (
	headroomLow    = 0.5
	headroomWeight = 1.0
)

// SetHeadroom records deployment id's headroom, observed now. Ids the
// Balancer keeps no state for are ignored. Values out of range are
// clamped: a fraction to [0, 1], Empty to MaxRetryAfterCooldown.
func (b *Balancer) SetHeadroom(id string, hr Headroom) {
	v, ok := b.health.Load(id)
	if !ok {
		return
	}
	f := hr.Frac
	switch {
	case math.IsNaN(f) || f > 1:
		f = 1
	case f < 0:
		f = 0
	}
	refill := hr.Refill
	if refill <= 0 {
		refill = time.Second
	}
	refill = min(refill, b.opts.MaxRetryAfterCooldown)
	now := b.now()
	o := &roomObs{at: now, frac: f, refill: int64(refill)}
	if hr.Empty > 0 {
		o.emptyUntil = now + int64(min(hr.Empty, b.opts.MaxRetryAfterCooldown))
	}
	v.(*health).room.Store(o)
}

// drained reports whether the deployment's account has no headroom at
// now.
func (h *health) drained(now int64) bool {
	o := h.room.Load()
	return o != nil && o.emptyUntil > now
}

// roomUntil is when a drained deployment has headroom again (0 if not
// drained).
func (h *health) roomUntil(now int64) int64 {
	if o := h.room.Load(); o != nil && o.emptyUntil > now {
		return o.emptyUntil
	}
	return 0
}

// headroom is the fraction left at now: the observed one, refilled
// evenly over its refill time since. 1 when never observed.
func (h *health) headroom(now int64) float64 {
	o := h.room.Load()
	if o == nil {
		return 1
	}
	if el := now - o.at; el > 0 {
		if el >= o.refill {
			return 1
		}
		return o.frac + (1-o.frac)*float64(el)/float64(o.refill)
	}
	return o.frac
}

// roomPenalty is the cost factor of low headroom at now (1 with enough).
func (h *health) roomPenalty(now int64) float64 {
	f := h.headroom(now)
	if f >= headroomLow {
		return 1
	}
	return 1 + headroomWeight*(headroomLow-f)/headroomLow
}

// knownBestAt is knownBest with each latency also inflated by the
// deployment's headroom penalty at now (auto's scores).
func knownBestAt(hs []*health, errWeight float64, now int64) float64 {
	best := math.Inf(1)
	for _, h := range hs {
		if l := h.firstEWMA(); l > 0 {
			best = min(best, l*(1+errWeight*h.errorRate())*h.roomPenalty(now))
		}
	}
	if math.IsInf(best, 1) {
		return 0
	}
	return best
}
