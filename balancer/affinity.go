package balancer

import (
	"math"

	"github.com/sluice-ai/sluice/llm"
)

// Prompt-cache affinity in picks. The router looks up which deployment
// last served the request's prompt prefix and passes it as
// Request.Affinity; the plan prefers it while it is available (healthy,
// not cooling, ejected or credential-dead: only available deployments are
// candidates). Its headroom is the router's per-deployment admission: a
// refusal there moves the plan on like any other.
//
// How much it is preferred depends on the strategy:
//
//   - weighted, least-busy, latency: the affinity deployment is picked
//     whenever it is a candidate (the cache discount and the provider's
//     faster cached prefill beat the strategy's spread);
//   - priority: picked when it is in the best tier available, so traffic
//     returns to the primary tier once it is back;
//   - cost and auto: it competes at its expected cost with the cache
//     discount counted, (prompt − cached) × input + cached × cache-read +
//     output, against the other candidates' full cost; it wins ties. Auto
//     considers it only within its latency tolerance, like any candidate.

// affine returns the affinity deployment when it is among cand (indexes
// into deps), with its position in cand; -1, -1 otherwise.
func (p *Plan) affine(deps []llm.Deployment, cand []int) (i, k int) {
	if p.req.Affinity == "" {
		return -1, -1
	}
	for k, i := range cand {
		if deps[i].ID == p.req.Affinity {
			return i, k
		}
	}
	return -1, -1
}

// pinned returns the affinity deployment when the strategy takes it
// without weighing it (see above), else -1.
func (p *Plan) pinned(deps []llm.Deployment, cand []int) int {
	i, _ := p.affine(deps, cand)
	if i < 0 {
		return -1
	}
	switch p.m.Strategy {
	case "", llm.StrategyAuto, llm.StrategyCost:
		return -1
	case llm.StrategyPriority:
		for _, j := range cand {
			if deps[j].Priority < deps[i].Priority {
				return -1
			}
		}
	}
	return i
}

// affineOr returns the affinity deployment instead of the strategy's pick
// when it is a candidate and costs no more than pick once its expected
// cache discount is counted (for auto: with both inflated by their error
// rates, and the affinity deployment within the latency tolerance).
func (p *Plan) affineOr(deps []llm.Deployment, cand []int, hs []*health, pick int) int {
	i, k := p.affine(deps, cand)
	if i < 0 || i == pick {
		return pick
	}
	in, out := p.req.PromptTokens, p.req.MaxTokens
	if in <= 0 {
		in = DefaultPromptTokens
	}
	if out <= 0 {
		out = DefaultOutputTokens
	}
	in = max(in, p.req.CachedTokens)
	ca := cachedCost(&deps[i], in, out, p.req.CachedTokens)
	cp := cachedCost(&deps[pick], in, out, 0)
	if p.m.Strategy != llm.StrategyCost {
		ew := max(p.m.StrategyOptions.ErrWeight(), 0)
		limit := knownBest(hs, ew) * (1 + max(p.m.StrategyOptions.Tolerance(), 0))
		pa := 1 + ew*hs[k].errorRate()
		if hs[k].firstEWMA()*pa > limit {
			return pick
		}
		ca *= pa
		for kk, j := range cand {
			if j == pick {
				cp *= 1 + ew*hs[kk].errorRate()
				break
			}
		}
	}
	if ca <= cp || math.IsNaN(cp) {
		return i
	}
	return pick
}

// cachedCost is the estimated cost (micro-USD) of in prompt tokens, cached
// of them read from d's provider cache, and out output tokens on d. A zero
// cache-read price is the input price (no discount), as in llm.Prices.
func cachedCost(d *llm.Deployment, in, out, cached int) float64 {
	cached = min(max(cached, 0), in)
	read := d.CacheReadPerMTok
	if !(read > 0) {
		read = d.InputPerMTok
	}
	return float64(in-cached)*d.InputPerMTok + float64(cached)*read + float64(out)*d.OutputPerMTok
}
