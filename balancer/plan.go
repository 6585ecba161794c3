package balancer

import (
	"math"

	"github.com/sluice-ai/sluice/llm"
)

// Plan hands out one request's deployments one at a time. It is used by one
// goroutine (the request's); the Balancer behind it is shared.
type Plan struct {
	b     *Balancer
	m     *llm.Model
	tried []bool
	left  int
	// small backs tried for models with few deployments, so a plan costs
	// one allocation.
	small [8]bool
}

// Plan hands out m's deployments one at a time.
func (b *Balancer) Plan(m *llm.Model) *Plan {
	p := &Plan{b: b, m: m}
	if m == nil {
		return p
	}
	n := len(m.Deployments)
	p.left = n
	if n <= len(p.small) {
		p.tried = p.small[:n]
	} else {
		p.tried = make([]bool, n)
	}
	return p
}

// Next picks the next deployment with the health and in-flight state at
// this moment, never one it already returned; nil when none is left.
// Available deployments come first, by weighted random pick; cooling or
// ejected ones next (soonest back first), credential-dead ones last: a last
// resort beats failing outright. The deployment points into the model
// given to Plan.
func (p *Plan) Next() *llm.Deployment {
	if p.left == 0 {
		return nil
	}
	now := p.b.now()
	deps := p.m.Deployments
	total := 0
	var buf [8]int
	avail := buf[:0]
	fallback, fbDead, fbUntil := -1, false, int64(math.MaxInt64)
	for i := range deps {
		if p.tried[i] {
			continue
		}
		h := p.b.get(deps[i].ID)
		if h.available(now) {
			total += weight(&deps[i])
			avail = append(avail, i)
			continue
		}
		dead, until := h.dead.Load(), h.until.Load()
		if fallback < 0 || (!dead && fbDead) || (dead == fbDead && until < fbUntil) {
			fallback, fbDead, fbUntil = i, dead, until
		}
	}
	pick := fallback
	if len(avail) > 0 {
		pick = pickWeighted(deps, avail, p.b.opts.Rand(total))
	}
	p.tried[pick] = true
	p.left--
	return &deps[pick]
}

// pickWeighted returns the candidate that r (in [0, sum of their weights))
// falls on.
func pickWeighted(deps []llm.Deployment, candidates []int, r int) int {
	for _, i := range candidates {
		if r -= weight(&deps[i]); r < 0 {
			return i
		}
	}
	return candidates[len(candidates)-1]
}

// MaxWeight caps a deployment's weight in picks, so the sum of a model's
// weights cannot overflow whatever the configuration says.
const MaxWeight = 1 << 20

// weight is d's share in picks: 0 counts as 1, beyond MaxWeight as MaxWeight.
func weight(d *llm.Deployment) int {
	if d.Weight <= 0 {
		return 1
	}
	return min(d.Weight, MaxWeight)
}
