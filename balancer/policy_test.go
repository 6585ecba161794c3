package balancer

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// profile is how a simulated deployment behaves.
type profile struct {
	ttft time.Duration // median time to first token; ±20% jitter
	// failEvery makes every failEvery-th attempt fail with a 500 (0:
	// never); status, when set, is the failure's upstream status instead.
	failEvery int
	status    int
	in, out   float64 // prices per million tokens
	priority  int
	weight    int
}

// sim is a deterministic simulation: an injected clock and random source,
// deployments with profiles, and requests run one after another, each
// retried on the plan's next deployment until one succeeds.
type sim struct {
	t     *testing.T
	c     *clock
	rnd   *rand.Rand
	b     *Balancer
	m     *llm.Model
	profs []profile
	tries []int
	// first counts the deployment each request was first sent to.
	first map[string]int
}

func newSim(t *testing.T, strategy llm.Strategy, opts *llm.StrategyOptions, profs ...profile) *sim {
	t.Helper()
	c := newClock()
	rnd := rand.New(rand.NewPCG(7, 11))
	s := &sim{t: t, c: c, rnd: rnd, b: New(Options{Now: c.now, Rand: rnd.IntN}), profs: profs,
		tries: make([]int, len(profs)), first: map[string]int{}}
	s.m = &llm.Model{ID: "mdl_sim", Name: "sim", Strategy: strategy, StrategyOptions: opts}
	var ts []Target
	for i, p := range profs {
		d := llm.Deployment{ID: fmt.Sprintf("dep_%d", i), Provider: fmt.Sprintf("p%d", i), Model: "x", Weight: p.weight, Priority: p.priority}
		d.InputPerMTok, d.OutputPerMTok = p.in, p.out
		s.m.Deployments = append(s.m.Deployments, d)
		ts = append(ts, Target{ID: d.ID, Model: s.m.ID})
	}
	s.b.Retain(ts)
	t.Cleanup(s.idle)
	return s
}

// idle checks that no attempt is left in flight.
func (s *sim) idle() {
	for _, d := range s.m.Deployments {
		if st := s.b.Status(d.ID); st.InFlight != 0 {
			s.t.Errorf("%s: %d in flight after the test", d.ID, st.InFlight)
		}
	}
}

// run sends n requests of shape req.
func (s *sim) run(n int, req Request) {
	for range n {
		p := s.b.PlanFor(s.m, req)
		for k := 0; ; k++ {
			d := p.Next()
			if d == nil {
				break
			}
			if k == 0 {
				s.first[d.ID]++
			}
			if s.attempt(d) {
				break
			}
		}
		s.c.add(10 * time.Millisecond)
	}
}

// attempt runs one attempt on d by its profile; true on success.
func (s *sim) attempt(d *llm.Deployment) bool {
	var i int
	fmt.Sscanf(d.ID, "dep_%d", &i)
	pr := s.profs[i]
	done := s.b.Start(d)
	s.tries[i]++
	if pr.failEvery > 0 && s.tries[i]%pr.failEvery == 0 {
		done(Outcome{Err: upstream(max(pr.status, 500)), Latency: pr.ttft / 10})
		return false
	}
	jitter := 0.8 + 0.4*s.rnd.Float64()
	ttft := time.Duration(float64(pr.ttft) * jitter)
	done(Outcome{TTFT: ttft, Latency: 3 * ttft})
	return true
}

// share is the fraction of requests first sent to dep_i since the last
// reset.
func (s *sim) share(i int) float64 {
	total := 0
	for _, n := range s.first {
		total += n
	}
	return float64(s.first[fmt.Sprintf("dep_%d", i)]) / float64(total)
}

func (s *sim) reset() { s.first = map[string]int{} }

func TestLatencyPolicyPrefersFastestHealthy(t *testing.T) {
	s := newSim(t, llm.StrategyLatency, nil,
		profile{ttft: 300 * time.Millisecond},
		profile{ttft: 120 * time.Millisecond, failEvery: 10},
		profile{ttft: 60 * time.Millisecond},
		profile{ttft: 900 * time.Millisecond},
	)
	s.run(1000, Request{})
	if got := s.share(2); got < 0.9 {
		t.Fatalf("fastest got %.3f of the requests, want >= 0.9 (%v)", got, s.first)
	}
	// Every deployment was tried once, so its latency is known.
	for i := range s.profs {
		if s.first[fmt.Sprintf("dep_%d", i)] == 0 {
			t.Errorf("dep_%d never explored", i)
		}
	}
	// The fastest's credential dies: the next fastest healthy one takes over.
	fail(s.b, &s.m.Deployments[2], upstream(401))
	s.reset()
	s.run(500, Request{})
	if got := s.share(1); got < 0.9 {
		t.Fatalf("next fastest got %.3f of the requests, want >= 0.9 (%v)", got, s.first)
	}
}

func TestLatencyPolicyNonStreamedLatencyCounts(t *testing.T) {
	// Non-streamed answers report no TTFT: their whole latency is what the
	// client waits for the first token, and it feeds the average.
	s := newSim(t, llm.StrategyLatency, nil, profile{}, profile{})
	ds := s.m.Deployments
	s.b.Start(&ds[0])(Outcome{Latency: 900 * time.Millisecond})
	s.b.Start(&ds[1])(Outcome{Latency: 200 * time.Millisecond})
	for range 20 {
		if d := s.b.Plan(s.m).Next(); d.ID != "dep_1" {
			t.Fatalf("picked %s, want the one with the lower latency", d.ID)
		}
	}
}

// TestExploreOnlyTheUntried: a deployment that only ever failed is not
// explored again on every pick (its failures count in its health, not as
// an unknown latency to learn).
func TestExploreOnlyTheUntried(t *testing.T) {
	s := newSim(t, llm.StrategyLatency, nil, profile{}, profile{})
	ds := s.m.Deployments
	s.b.Start(&ds[1])(Outcome{TTFT: 100 * time.Millisecond})
	if d := s.b.Plan(s.m).Next(); d.ID != "dep_0" {
		t.Fatalf("the untried one is explored first, got %s", d.ID)
	}
	fail(s.b, &ds[0], upstream(500)) // one failure: not ejected
	n := 0
	for range 1000 {
		if s.b.Plan(s.m).Next().ID == "dep_0" {
			n++
		}
	}
	if n > 600 {
		t.Fatalf("the failing one got %d of 1000 picks", n)
	}
}

func TestCostPolicyPrefersCheapest(t *testing.T) {
	s := newSim(t, llm.StrategyCost, nil,
		profile{ttft: 50 * time.Millisecond, in: 3, out: 15},
		profile{ttft: 400 * time.Millisecond, in: 1, out: 2},
		profile{ttft: 400 * time.Millisecond, in: 0.5, out: 10},
	)
	// Short prompt, long answer: dep_1 (100×1 + 1000×2 < 50 + 10000).
	s.run(300, Request{PromptTokens: 100, MaxTokens: 1000})
	if got := s.share(1); got != 1 {
		t.Fatalf("cheapest for a long answer got %.3f (%v)", got, s.first)
	}
	// Long prompt, short answer: dep_2 (10000×0.5 + 10×10 < 10000 + 20).
	s.reset()
	s.run(300, Request{PromptTokens: 10000, MaxTokens: 10})
	if got := s.share(2); got != 1 {
		t.Fatalf("cheapest for a long prompt got %.3f (%v)", got, s.first)
	}
	// The cheapest cooling down (429): the next cheapest, then back.
	fail(s.b, &s.m.Deployments[2], upstream(429))
	s.reset()
	s.run(100, Request{PromptTokens: 10000, MaxTokens: 10})
	if got := s.share(1); got < 0.9 {
		t.Fatalf("next cheapest got %.3f while the cheapest cooled (%v)", got, s.first)
	}
	s.c.add(10 * time.Second)
	s.reset()
	s.run(100, Request{PromptTokens: 10000, MaxTokens: 10})
	if got := s.share(2); got != 1 {
		t.Fatalf("cheapest got %.3f after its cooldown (%v)", got, s.first)
	}
}

func TestPriorityPolicyUsesLowerTierOnlyWhenNeeded(t *testing.T) {
	s := newSim(t, llm.StrategyPriority, nil,
		profile{ttft: 100 * time.Millisecond, priority: 1},
		profile{ttft: 100 * time.Millisecond, priority: 1},
		profile{ttft: 10 * time.Millisecond, priority: 2, in: 0},
		profile{ttft: 10 * time.Millisecond, priority: 3},
	)
	s.run(400, Request{})
	if s.share(0) != 0.5 || s.share(1) != 0.5 {
		t.Fatalf("tier 1 split %v, want 50/50 by round-robin and nothing elsewhere", s.first)
	}
	// One of tier 1 ejected: the other takes all.
	for range 3 {
		fail(s.b, &s.m.Deployments[0], upstream(503))
	}
	s.reset()
	s.run(100, Request{})
	if s.share(1) != 1 {
		t.Fatalf("with one of tier 1 out: %v", s.first)
	}
	// All of tier 1 unavailable: tier 2, never tier 3.
	fail(s.b, &s.m.Deployments[1], upstream(429))
	s.reset()
	s.run(100, Request{})
	if s.share(2) != 1 {
		t.Fatalf("with tier 1 out: %v", s.first)
	}
	// The rest of a plan: tier 3, then the unavailable ones, soonest back
	// first (the 429's 5s before the ejection's 30s).
	p := s.b.Plan(s.m)
	var got []string
	for d := p.Next(); d != nil; d = p.Next() {
		got = append(got, d.ID)
	}
	if fmt.Sprint(got) != "[dep_2 dep_3 dep_1 dep_0]" {
		t.Fatalf("plan %v", got)
	}
	// Tier 1 back: tier 2 idle again.
	s.c.add(31 * time.Second)
	s.reset()
	s.run(100, Request{})
	if s.share(2) != 0 || s.share(3) != 0 {
		t.Fatalf("tier 1 back: %v", s.first)
	}
}

func TestAutoPolicyTradesCostForLatency(t *testing.T) {
	cheapSlow := profile{ttft: 400 * time.Millisecond, in: 0.5, out: 1}
	dearFast := profile{ttft: 200 * time.Millisecond, in: 5, out: 15}
	tol := func(v float64) *llm.StrategyOptions { return &llm.StrategyOptions{LatencyTolerance: &v} }
	for _, c := range []struct {
		name string
		opts *llm.StrategyOptions
		slow time.Duration
		want int
	}{
		{"cheap within the default 50%", nil, 250 * time.Millisecond, 0},
		{"cheap beyond the default 50%", nil, 400 * time.Millisecond, 1},
		{"cheap within a 150% tolerance", tol(1.5), 400 * time.Millisecond, 0},
		{"tolerance 0: the fastest", tol(0), 250 * time.Millisecond, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := cheapSlow
			p.ttft = c.slow
			s := newSim(t, llm.StrategyAuto, c.opts, p, dearFast)
			s.run(2, Request{}) // explores both
			s.reset()
			s.run(1000, Request{PromptTokens: 500, MaxTokens: 500})
			if got := s.share(c.want); got < 0.9 {
				t.Fatalf("dep_%d got %.3f, want >= 0.9 (%v)", c.want, got, s.first)
			}
		})
	}
	t.Run("errors count against the cheap one", func(t *testing.T) {
		p := cheapSlow
		p.ttft, p.failEvery = 250*time.Millisecond, 2 // within 50%, but fails half its attempts
		s := newSim(t, "", nil, p, dearFast)          // "" is auto
		s.run(1000, Request{})
		if got := s.share(1); got < 0.9 {
			t.Fatalf("the reliable one got %.3f (%v)", got, s.first)
		}
	})
	t.Run("error weight 0 ignores errors", func(t *testing.T) {
		p := cheapSlow
		p.ttft, p.failEvery = 250*time.Millisecond, 2
		w := 0.0
		s := newSim(t, llm.StrategyAuto, &llm.StrategyOptions{ErrorWeight: &w}, p, dearFast)
		s.run(1000, Request{})
		if got := s.share(0); got < 0.9 {
			t.Fatalf("the cheap one got %.3f (%v)", got, s.first)
		}
	})
	t.Run("no prices: weights among equally fast", func(t *testing.T) {
		s := newSim(t, llm.StrategyAuto, nil, profile{ttft: 100 * time.Millisecond, weight: 3}, profile{ttft: 100 * time.Millisecond})
		s.run(4000, Request{})
		if got := s.share(0); got < 0.7 || got > 0.8 {
			t.Fatalf("weight 3 of 4 got %.3f (%v)", got, s.first)
		}
	})
}

func TestWeightedPolicyIsExactOverACycle(t *testing.T) {
	s := newSim(t, llm.StrategyWeighted, nil, profile{weight: 5}, profile{weight: 1}, profile{weight: 1})
	var seq []string
	for range 7 {
		d := s.b.Plan(s.m).Next()
		seq = append(seq, d.ID[4:])
		s.b.Start(d)(Outcome{Latency: time.Millisecond})
	}
	// nginx's smooth sequence for 5, 1, 1: no run of the heavy one longer
	// than needed.
	if got := fmt.Sprint(seq); got != "[0 0 1 0 2 0 0]" {
		t.Fatalf("sequence %s", got)
	}
	s.run(700, Request{})
	if s.first["dep_0"] != 500 || s.first["dep_1"] != 100 || s.first["dep_2"] != 100 {
		t.Fatalf("over 100 cycles %v, want exactly 500/100/100", s.first)
	}
	// A new configuration of the model (a deployment more) starts over,
	// still exact.
	s.m.Deployments = append(s.m.Deployments, llm.Deployment{ID: "dep_3", Weight: 3})
	s.profs = append(s.profs, profile{})
	s.tries = append(s.tries, 0)
	s.reset()
	s.run(1000, Request{})
	if s.first["dep_0"] != 500 || s.first["dep_1"] != 100 || s.first["dep_2"] != 100 || s.first["dep_3"] != 300 {
		t.Fatalf("after reconfiguration %v", s.first)
	}
}

func TestLeastBusyPolicyPrefersLessLoaded(t *testing.T) {
	s := newSim(t, llm.StrategyLeastBusy, nil, profile{}, profile{}, profile{})
	ds := s.m.Deployments
	// dep_0 has 5 attempts in flight, dep_1 one, dep_2 none.
	var held []func(Outcome)
	for range 5 {
		held = append(held, s.b.Start(&ds[0]))
	}
	held = append(held, s.b.Start(&ds[1]))
	counts := map[string]int{}
	for range 3000 {
		counts[s.b.Plan(s.m).Next().ID]++
	}
	// Of two distinct candidates the busier never wins: dep_0 never, dep_1
	// only against dep_0 (a third of the draws).
	if counts["dep_0"] != 0 || counts["dep_1"] < 900 || counts["dep_1"] > 1100 {
		t.Fatalf("picks %v", counts)
	}
	for _, done := range held {
		done(Outcome{Latency: time.Millisecond})
	}
	// All idle: the picks spread evenly.
	counts = map[string]int{}
	for range 3000 {
		counts[s.b.Plan(s.m).Next().ID]++
	}
	for _, d := range ds {
		if n := counts[d.ID]; n < 900 || n > 1100 {
			t.Fatalf("idle picks %v", counts)
		}
	}
}

// TestPoliciesNeverRepeat: every strategy's plan hands out each deployment
// exactly once, with some unavailable.
func TestPoliciesNeverRepeat(t *testing.T) {
	for _, st := range []llm.Strategy{llm.StrategyAuto, llm.StrategyWeighted, llm.StrategyLeastBusy, llm.StrategyLatency, llm.StrategyCost, llm.StrategyPriority} {
		for _, n := range []int{2, 8, 9, 30} {
			profs := make([]profile, n)
			for i := range profs {
				profs[i] = profile{ttft: time.Duration(i+1) * time.Millisecond, in: float64(n - i), priority: i % 3, weight: i % 4}
			}
			s := newSim(t, st, nil, profs...)
			s.run(50, Request{})
			fail(s.b, &s.m.Deployments[0], upstream(429))
			for range 20 {
				seen := map[string]bool{}
				p := s.b.Plan(s.m)
				for d := p.Next(); d != nil; d = p.Next() {
					if seen[d.ID] {
						t.Fatalf("%s/%d: %s twice", st, n, d.ID)
					}
					seen[d.ID] = true
				}
				if len(seen) != n {
					t.Fatalf("%s/%d: %d handed out", st, n, len(seen))
				}
			}
		}
	}
}

func TestNeedsPromptTokens(t *testing.T) {
	m := model(1, 1)
	if NeedsPromptTokens(m) {
		t.Fatal("equal input prices need no estimate")
	}
	m.Deployments[1].InputPerMTok = 2
	for st, want := range map[llm.Strategy]bool{"": true, llm.StrategyAuto: true, llm.StrategyCost: true, llm.StrategyLatency: false, llm.StrategyWeighted: false} {
		m.Strategy = st
		if NeedsPromptTokens(m) != want {
			t.Errorf("%q: want %v", st, want)
		}
	}
	if NeedsPromptTokens(nil) || NeedsPromptTokens(model(1)) {
		t.Error("nil or one deployment")
	}
}
