package balancer

import (
	"cmp"
	"math"
	"sync"
	"sync/atomic"

	"github.com/sluice-ai/sluice/llm"
)

// choose orders the available candidates (indexes into deps, with their
// health in hs) by the model's strategy and returns the one to try.
func (p *Plan) choose(deps []llm.Deployment, cand []int, hs []*health) int {
	if len(cand) == 1 {
		return cand[0]
	}
	if i := p.pinned(deps, cand); i >= 0 {
		return i
	}
	switch p.m.Strategy {
	case llm.StrategyWeighted:
		return p.ms.rr.pick(deps, cand)
	case llm.StrategyLeastBusy:
		return p.leastBusy(cand, hs)
	case llm.StrategyLatency:
		return p.fastest(deps, cand, hs)
	case llm.StrategyCost:
		return p.affineOr(deps, cand, hs, p.cheapest(deps, cand, hs))
	case llm.StrategyPriority:
		return p.priority(deps, cand)
	}
	return p.affineOr(deps, cand, hs, p.auto(deps, cand, hs))
}

// leastBusy is the power of two choices: of two distinct random
// candidates, the one with fewer attempts in flight (the first drawn on a
// tie).
func (p *Plan) leastBusy(cand []int, hs []*health) int {
	k := len(cand)
	a := p.b.opts.Rand(k)
	c := p.b.opts.Rand(k - 1)
	if c >= a {
		c++
	}
	if hs[c].inflight.Load() < hs[a].inflight.Load() {
		return cand[c]
	}
	return cand[a]
}

// ties is a running minimum over candidates by a key, breaking exact ties
// by weighted random choice (weighted reservoir sampling), so equal
// candidates share the traffic by their weights.
type ties struct {
	best  int
	total int
}

// offer considers candidate i of weight w that ties the current best; it
// replaces the best with probability w / (sum of the tied weights): when
// rnd falls in the top w of the range, so a Rand that always says 0 keeps
// the first.
func (t *ties) offer(rnd func(int) int, i, w int) {
	t.total += w
	if rnd(t.total) >= t.total-w || t.best < 0 {
		t.best = i
	}
}

// reset makes i of weight w the only best so far.
func (t *ties) reset(i, w int) { t.best, t.total = i, w }

// explore returns a candidate that has never reported an outcome that
// counts (no latency sample, no failure) and has nothing in flight
// (weighted random among them), or -1. Such a deployment is tried once so
// that the latency-aware strategies learn its latency; while that attempt
// runs, and if it only ever fails, it counts as good as the best known
// (failures are passive health's business, and raise auto's error rate).
func (p *Plan) explore(deps []llm.Deployment, cand []int, hs []*health) int {
	t := ties{best: -1}
	for k, i := range cand {
		if hs[k].firstEWMA() == 0 && hs[k].errorRate() == 0 && hs[k].inflight.Load() == 0 {
			t.offer(p.b.opts.Rand, i, weight(&deps[i]))
		}
	}
	return t.best
}

// fastest is the latency strategy: the lowest time-to-first-token average,
// fewer in flight on a tie, then weighted random.
func (p *Plan) fastest(deps []llm.Deployment, cand []int, hs []*health) int {
	if i := p.explore(deps, cand, hs); i >= 0 {
		return i
	}
	best := knownBest(hs, 0)
	t := ties{best: -1}
	var bestL float64
	var bestIn int64
	for k, i := range cand {
		l := cmp.Or(hs[k].firstEWMA(), best)
		in := hs[k].inflight.Load()
		switch {
		case t.best < 0 || l < bestL || (l == bestL && in < bestIn):
			t.reset(i, weight(&deps[i]))
			bestL, bestIn = l, in
		case l == bestL && in == bestIn:
			t.offer(p.b.opts.Rand, i, weight(&deps[i]))
		}
	}
	return t.best
}

// knownBest is the lowest latency average among hs that have one,
// multiplied by 1 + errWeight × error rate; 0 when none has.
func knownBest(hs []*health, errWeight float64) float64 {
	best := math.Inf(1)
	for _, h := range hs {
		if l := h.firstEWMA(); l > 0 {
			best = min(best, l*(1+errWeight*h.errorRate()))
		}
	}
	if math.IsInf(best, 1) {
		return 0
	}
	return best
}

// estCost is what req would cost on d at its input and output prices
// (micro-USD), with the defaults for counts the request does not give.
func estCost(d *llm.Deployment, req Request) float64 {
	in, out := req.PromptTokens, req.MaxTokens
	if in <= 0 {
		in = DefaultPromptTokens
	}
	if out <= 0 {
		out = DefaultOutputTokens
	}
	return float64(in)*d.InputPerMTok + float64(out)*d.OutputPerMTok
}

// cheapest is the cost strategy: the lowest estimated cost (inflated by
// low headroom, see roomPenalty), fewer in flight on a tie, then weighted
// random.
func (p *Plan) cheapest(deps []llm.Deployment, cand []int, hs []*health) int {
	t := ties{best: -1}
	var bestC float64
	var bestIn int64
	for k, i := range cand {
		c := estCost(&deps[i], p.req) * hs[k].roomPenalty(p.now)
		in := hs[k].inflight.Load()
		switch {
		case t.best < 0 || c < bestC || (c == bestC && in < bestIn):
			t.reset(i, weight(&deps[i]))
			bestC, bestIn = c, in
		case c == bestC && in == bestIn:
			t.offer(p.b.opts.Rand, i, weight(&deps[i]))
		}
	}
	return t.best
}

// priority is the lowest tier that has an available candidate, weighted
// round-robin within it.
func (p *Plan) priority(deps []llm.Deployment, cand []int) int {
	tier := math.MaxInt
	for _, i := range cand {
		tier = min(tier, deps[i].Priority)
	}
	n := 0
	for _, i := range cand {
		if deps[i].Priority == tier {
			cand[n] = i
			n++
		}
	}
	if n == 1 {
		return cand[0]
	}
	return p.ms.rr.pick(deps, cand[:n])
}

// auto scores each candidate by its latency and cost, both inflated by
// its error rate e (factor 1 + ErrorWeight × e) and by low headroom of
// its provider account (roomPenalty), and takes the cheapest of
// those whose latency is within (1 + LatencyTolerance) × the fastest's.
// Equal costs go by weighted random. A candidate without a latency sample
// is explored first (see explore) and otherwise counts as the fastest.
func (p *Plan) auto(deps []llm.Deployment, cand []int, hs []*health) int {
	if i := p.explore(deps, cand, hs); i >= 0 {
		return i
	}
	ew := max(p.m.StrategyOptions.ErrWeight(), 0)
	best := knownBestAt(hs, ew, p.now)
	limit := best * (1 + max(p.m.StrategyOptions.Tolerance(), 0))
	t := ties{best: -1}
	var bestC float64
	for k, i := range cand {
		penalty := (1 + ew*hs[k].errorRate()) * hs[k].roomPenalty(p.now)
		if l := hs[k].firstEWMA() * penalty; l > limit {
			continue
		}
		c := estCost(&deps[i], p.req) * penalty
		switch {
		case t.best < 0 || c < bestC:
			t.reset(i, weight(&deps[i]))
			bestC = c
		case c == bestC:
			t.offer(p.b.opts.Rand, i, weight(&deps[i]))
		}
	}
	if t.best < 0 {
		// Unreachable (the fastest is within its own limit) unless the
		// numbers are not finite: fall back on the first.
		return cand[0]
	}
	return t.best
}

// roundRobin is the smooth weighted round-robin state of one model
// (nginx's algorithm): each pick adds every candidate's weight to its
// current value, takes the largest, and subtracts the candidates' total
// from it. Over a cycle of the total weight every deployment is picked
// exactly its weight's times, spread out rather than in runs.
type roundRobin struct {
	mu  sync.Mutex
	ids []string // the deployments cur is for, by position
	cur []int64
}

// modelState is the Balancer's state of one model: its round-robin and
// the health of its deployments, looked up once per configuration rather
// than once per deployment and pick.
type modelState struct {
	rr roundRobin
	hc atomic.Pointer[healthCache]
}

// healthCache is the health of a model's deployments, by position, as of
// the Balancer's generation gen.
type healthCache struct {
	gen int64
	ids []string
	hs  []*health
}

// modelState returns m's state.
func (b *Balancer) modelState(m *llm.Model) *modelState {
	key := cmp.Or(m.ID, m.Name)
	if v, ok := b.models.Load(key); ok {
		return v.(*modelState)
	}
	v, _ := b.models.LoadOrStore(key, &modelState{})
	return v.(*modelState)
}

// healths returns the health of each of deps, by position. The cache is
// renewed when the deployments or the Balancer's generation changed (a
// Retain may have dropped or created states): the generation is read
// before the lookups, so a Retain running meanwhile renews it next time.
func (s *modelState) healths(b *Balancer, deps []llm.Deployment) []*health {
	gen := b.gen.Load()
	if c := s.hc.Load(); c != nil && c.gen == gen && sameIDs(c.ids, deps) {
		return c.hs
	}
	c := &healthCache{gen: gen, ids: make([]string, len(deps)), hs: make([]*health, len(deps))}
	for i := range deps {
		c.ids[i] = deps[i].ID
		c.hs[i] = b.get(deps[i].ID)
	}
	s.hc.Store(c)
	return c.hs
}

func sameIDs(ids []string, deps []llm.Deployment) bool {
	if len(ids) != len(deps) {
		return false
	}
	for i := range deps {
		if ids[i] != deps[i].ID {
			return false
		}
	}
	return true
}

// pick picks among cand, indexes into deps.
func (r *roundRobin) pick(deps []llm.Deployment, cand []int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !sameIDs(r.ids, deps) {
		// A new configuration of the model: start over.
		r.ids = r.ids[:0]
		for i := range deps {
			r.ids = append(r.ids, deps[i].ID)
		}
		r.cur = append(r.cur[:0], make([]int64, len(deps))...)
	}
	var total int64
	best := -1
	for _, i := range cand {
		w := int64(weight(&deps[i]))
		r.cur[i] += w
		total += w
		if best < 0 || r.cur[i] > r.cur[best] {
			best = i
		}
	}
	r.cur[best] -= total
	return best
}
