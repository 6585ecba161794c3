package balancer

import (
	"math"

	"github.com/sluice-ai/sluice/llm"
)

// Request is what a pick may weigh of the request being routed.
type Request struct {
	// PromptTokens is the estimated prompt size; 0 when unknown.
	PromptTokens int
	// MaxTokens is the output cap the request asked for; 0 when unset.
	MaxTokens int
	// Affinity is the id of the deployment that last served the
	// request's prompt prefix (prompt-cache affinity, see affinity.go);
	// "" for none. CachedTokens is the part of the prompt that deployment
	// is expected to read from its provider's cache.
	Affinity     string
	CachedTokens int
}

// Token counts the cost estimate assumes when the request does not say.
const (
	DefaultPromptTokens = 1000
	DefaultOutputTokens = 1000
)

// NeedsPromptTokens reports whether Request.PromptTokens can change m's
// picks: its strategy weighs cost (cost, auto) and its deployments do not
// all have the same input price. The caller computes a prompt estimate
// only then.
func NeedsPromptTokens(m *llm.Model) bool {
	if m == nil || len(m.Deployments) < 2 {
		return false
	}
	switch m.Strategy {
	case "", llm.StrategyAuto, llm.StrategyCost:
	default:
		return false
	}
	for i := 1; i < len(m.Deployments); i++ {
		if m.Deployments[i].InputPerMTok != m.Deployments[0].InputPerMTok {
			return true
		}
	}
	return false
}

// Plan hands out one request's deployments one at a time. It is used by one
// goroutine (the request's); the Balancer behind it is shared.
type Plan struct {
	b   *Balancer
	m   *llm.Model
	ms  *modelState
	req Request
	// now is the balancer's clock at the current Next, for the policies.
	now   int64
	tried []bool
	left  int
	// cand and hs back the candidates of models with more than 8
	// deployments, allocated at the first pick and reused.
	cand []int
	hs   []*health
	// small backs tried for models with few deployments, so a plan costs
	// one allocation.
	small [8]bool
}

// Plan hands out m's deployments one at a time, for a request the
// strategy knows nothing about (see PlanFor).
func (b *Balancer) Plan(m *llm.Model) *Plan { return b.PlanFor(m, Request{}) }

// PlanFor hands out m's deployments one at a time for req.
func (b *Balancer) PlanFor(m *llm.Model, req Request) *Plan {
	p := &Plan{b: b, m: m, req: req}
	if m == nil {
		return p
	}
	p.ms = b.modelState(m)
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
// Available deployments come first, in the order of the model's strategy;
// cooling or ejected ones, and those whose provider account has no
// headroom left (see SetHeadroom), next (soonest back first), credential-dead ones
// last: a last resort beats failing outright. The deployment points into
// the model given to Plan.
func (p *Plan) Next() *llm.Deployment {
	if p.left == 0 {
		return nil
	}
	now := p.b.now()
	p.now = now
	deps := p.m.Deployments
	var buf [8]int
	var hbuf [8]*health
	avail, hs := buf[:0], hbuf[:0]
	if len(deps) > len(buf) {
		if p.cand == nil {
			p.cand, p.hs = make([]int, 0, len(deps)), make([]*health, 0, len(deps))
		}
		avail, hs = p.cand[:0], p.hs[:0]
	}
	all := p.ms.healths(p.b, deps)
	fallback, fbDead, fbUntil := -1, false, int64(math.MaxInt64)
	for i := range deps {
		if p.tried[i] {
			continue
		}
		h := all[i]
		if h.available(now) {
			avail = append(avail, i)
			hs = append(hs, h)
			continue
		}
		dead, until := h.dead.Load(), max(h.until.Load(), h.roomUntil(now))
		if h.gated.Load() {
			until = math.MaxInt64 // back when its probes pass: after every timed return
		}
		if fallback < 0 || (!dead && fbDead) || (dead == fbDead && until < fbUntil) {
			fallback, fbDead, fbUntil = i, dead, until
		}
	}
	pick := fallback
	if len(avail) > 0 {
		pick = p.choose(deps, avail, hs)
	}
	p.tried[pick] = true
	p.left--
	return &deps[pick]
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
