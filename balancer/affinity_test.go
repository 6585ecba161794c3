package balancer

import (
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// firstPick is the first deployment of a fresh plan for req.
func firstPick(b *Balancer, m *llm.Model, req Request) string {
	return b.PlanFor(m, req).Next().ID
}

// TestAffinityPinsWeighted: with weighted round-robin (and least-busy,
// latency), every first pick is the affinity deployment while it is
// available; the rest of the plan still has every other deployment.
func TestAffinityPinsWeighted(t *testing.T) {
	for _, s := range []llm.Strategy{llm.StrategyWeighted, llm.StrategyLeastBusy, llm.StrategyLatency} {
		b := New(Options{})
		m := model(1, 1, 1)
		m.Strategy = s
		req := Request{Affinity: "dep_2", CachedTokens: 2000}
		for range 20 {
			if got := firstPick(b, m, req); got != "dep_2" {
				t.Fatalf("%s: first pick %s; want the affinity deployment dep_2", s, got)
			}
		}
		p := b.PlanFor(m, req)
		seen := map[string]bool{}
		for d := p.Next(); d != nil; d = p.Next() {
			seen[d.ID] = true
		}
		if len(seen) != 3 {
			t.Fatalf("%s: plan handed out %v; want all three", s, seen)
		}
	}
}

// TestAffinityUnavailableFallsBack: an ejected, cooling or credential-dead
// affinity deployment is not preferred: the normal pick happens (and an
// unknown id changes nothing).
func TestAffinityUnavailableFallsBack(t *testing.T) {
	for _, status := range []int{500, 429, 401} {
		c := newClock()
		b := New(Options{Now: c.now})
		m := model(1, 1)
		m.Strategy = llm.StrategyWeighted
		for range 3 {
			fail(b, &m.Deployments[1], upstream(status))
		}
		req := Request{Affinity: "dep_1"}
		for range 10 {
			if got := firstPick(b, m, req); got != "dep_0" {
				t.Fatalf("status %d: first pick %s; want dep_0 (the affinity deployment is out)", status, got)
			}
		}
	}
	b := New(Options{})
	m := model(1, 1)
	m.Strategy = llm.StrategyWeighted
	got := map[string]int{}
	for range 10 {
		got[firstPick(b, m, Request{Affinity: "dep_gone"})]++
	}
	if got["dep_0"] != 5 || got["dep_1"] != 5 {
		t.Fatalf("unknown affinity changed round-robin: %v", got)
	}
}

// TestAffinityPriorityKeepsTiers: priority honours affinity only within
// the best tier available.
func TestAffinityPriorityKeepsTiers(t *testing.T) {
	b := New(Options{})
	m := model(1, 1, 1)
	m.Strategy = llm.StrategyPriority
	m.Deployments[2].Priority = 1
	if got := firstPick(b, m, Request{Affinity: "dep_2"}); got == "dep_2" {
		t.Fatal("affinity to a backup tier overrode the primary tier")
	}
	for range 6 {
		if got := firstPick(b, m, Request{Affinity: "dep_1"}); got != "dep_1" {
			t.Fatalf("first pick %s; want dep_1 (affinity within the primary tier)", got)
		}
	}
}

// TestAffinityCostCountsDiscount: the cost strategy takes the affinity
// deployment when its cache discount makes it the cheapest, not when the
// others stay cheaper even so.
func TestAffinityCostCountsDiscount(t *testing.T) {
	b := New(Options{})
	m := model(1, 1)
	m.Strategy = llm.StrategyCost
	// dep_0: $1 in; dep_1: $1.2 in, $0.12 cached.
	m.Deployments[0].InputPerMTok, m.Deployments[0].OutputPerMTok = 1, 4
	m.Deployments[1].InputPerMTok, m.Deployments[1].OutputPerMTok = 1.2, 4
	m.Deployments[1].CacheReadPerMTok = 0.12
	// 10 000 prompt tokens, 9 000 cached: dep_1 costs 1000×1.2 + 9000×0.12
	// = 2280 + output, dep_0 10 000 + output.
	req := Request{PromptTokens: 10_000, MaxTokens: 100, Affinity: "dep_1", CachedTokens: 9_000}
	if got := firstPick(b, m, req); got != "dep_1" {
		t.Fatalf("first pick %s; want dep_1 (cheaper with its cache discount)", got)
	}
	// Only 500 cached: dep_1 costs 9500×1.2 + 500×0.12 = 11 460 > 10 000.
	req.CachedTokens = 500
	if got := firstPick(b, m, req); got != "dep_0" {
		t.Fatalf("first pick %s; want dep_0 (cheaper even against the discount)", got)
	}
	// No cache price: equal prices tie, and affinity wins the tie.
	m.Deployments[1].InputPerMTok, m.Deployments[1].CacheReadPerMTok = 1, 0
	for range 10 {
		if got := firstPick(b, m, req); got != "dep_1" {
			t.Fatalf("first pick %s; want dep_1 (affinity wins a cost tie)", got)
		}
	}
}

// TestAffinityAutoWithinTolerance: auto takes the affinity deployment at
// equal cost when it is within the latency tolerance, not when it is far
// slower than the fastest.
func TestAffinityAutoWithinTolerance(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now})
	m := model(1, 1)
	report := func(i int, ms int64) {
		b.Start(&m.Deployments[i])(Outcome{Latency: msDur(ms), TTFT: msDur(ms)})
	}
	report(0, 100)
	report(1, 110)
	for range 10 {
		if got := firstPick(b, m, Request{Affinity: "dep_1", CachedTokens: 2000}); got != "dep_1" {
			t.Fatalf("first pick %s; want dep_1 (within tolerance, affinity wins the tie)", got)
		}
	}
	for range 20 {
		report(1, 5000)
	}
	if got := firstPick(b, m, Request{Affinity: "dep_1", CachedTokens: 2000}); got != "dep_0" {
		t.Fatalf("first pick %s; want dep_0 (the affinity deployment is far slower)", got)
	}
}

func msDur(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
