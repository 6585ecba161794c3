package balancer

import (
	"math"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// TestHeadroomEmptySkips: a deployment whose account is empty is passed
// over like a cooling one while another is available, and comes back
// when its bucket has refilled.
func TestHeadroomEmptySkips(t *testing.T) {
	for _, st := range []llm.Strategy{llm.StrategyAuto, llm.StrategyWeighted, llm.StrategyCost, llm.StrategyLatency, llm.StrategyLeastBusy, llm.StrategyPriority} {
		c := newClock()
		b := New(Options{Now: c.now})
		m := model(1, 1)
		m.Strategy = st
		b.Retain([]Target{{ID: "dep_0", Model: "m"}, {ID: "dep_1", Model: "m"}})
		b.SetHeadroom("dep_0", Headroom{Frac: 0, Refill: time.Minute, Empty: 2 * time.Second})
		for range 20 {
			if got := order(b, m); got[0] != "dep_1" || len(got) != 2 {
				t.Fatalf("%s: order %v, want dep_1 first and dep_0 as a last resort", st, got)
			}
		}
		if s := b.Status("dep_0"); s.State != "healthy" {
			t.Errorf("%s: an empty account is not a health state: %+v", st, s)
		}
		c.add(2 * time.Second)
		seen := false
		for range 50 {
			if order(b, m)[0] == "dep_0" {
				seen = true
			}
		}
		if !seen && st != llm.StrategyPriority {
			t.Errorf("%s: dep_0 never picked after its bucket refilled", st)
		}
	}
}

// TestHeadroomWeighsCost: with equal prices, the cost-aware strategies
// prefer the deployment with more headroom once the other has less than
// half left; the penalty fades as the bucket refills.
func TestHeadroomWeighsCost(t *testing.T) {
	for _, st := range []llm.Strategy{llm.StrategyAuto, llm.StrategyCost} {
		c := newClock()
		b := New(Options{Now: c.now})
		m := model(1, 1)
		m.Strategy = st
		for i := range m.Deployments {
			m.Deployments[i].InputPerMTok, m.Deployments[i].OutputPerMTok = 1, 1
		}
		b.Retain([]Target{{ID: "dep_0", Model: "m"}, {ID: "dep_1", Model: "m"}})
		for i := range m.Deployments {
			b.Start(&m.Deployments[i])(Outcome{TTFT: 10 * time.Millisecond})
		}
		b.SetHeadroom("dep_0", Headroom{Frac: 0.1, Refill: 10 * time.Second})
		b.SetHeadroom("dep_1", Headroom{Frac: 0.8, Refill: 10 * time.Second})
		for range 20 {
			if got := order(b, m)[0]; got != "dep_1" {
				t.Fatalf("%s: picked %s, want dep_1 (more headroom)", st, got)
			}
		}
		// Twice the price still wins over an account nearly used up.
		m.Deployments[1].InputPerMTok, m.Deployments[1].OutputPerMTok = 2, 2
		m.Deployments[0].InputPerMTok, m.Deployments[0].OutputPerMTok = 1.5, 1.5
		if got := order(b, m)[0]; got != "dep_1" {
			t.Fatalf("%s: picked %s, want dep_1", st, got)
		}
		// Refilled: price decides again.
		c.add(10 * time.Second)
		if got := order(b, m)[0]; got != "dep_0" {
			t.Fatalf("%s: after the refill picked %s, want the cheaper dep_0", st, got)
		}
	}
}

// TestHeadroomClamps: garbage headroom neither panics nor sets absurd
// times.
func TestHeadroomClamps(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now})
	b.Retain([]Target{{ID: "dep_0", Model: "m"}})
	h := b.get("dep_0")
	b.SetHeadroom("dep_0", Headroom{Frac: math.NaN(), Refill: -1, Empty: 1000 * time.Hour})
	now := b.now()
	if f := h.headroom(now); f != 1 {
		t.Errorf("NaN fraction became %v, want 1", f)
	}
	if u := h.roomUntil(now); time.Duration(u-now) != b.opts.MaxRetryAfterCooldown {
		t.Errorf("empty for %v, want capped at %v", time.Duration(u-now), b.opts.MaxRetryAfterCooldown)
	}
	b.SetHeadroom("dep_0", Headroom{Frac: -3})
	if f := h.headroom(b.now()); f != 0 {
		t.Errorf("negative fraction became %v", f)
	}
	c.add(500 * time.Millisecond)
	if f := h.headroom(b.now()); math.Abs(f-0.5) > 1e-9 {
		t.Errorf("half a default refill later: %v, want 0.5", f)
	}
	b.SetHeadroom("dep_unknown", Headroom{Frac: 0, Empty: time.Minute}) // ignored
	if _, ok := b.health.Load("dep_unknown"); ok {
		t.Error("SetHeadroom created state for an unknown deployment")
	}
}

// TestHeadroomAutoWithoutPrices: with no prices (all costs equal) auto
// still moves off a deployment nearly out of headroom: its latency score
// counts the penalty too.
func TestHeadroomAutoWithoutPrices(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now})
	m := model(1, 1)
	b.Retain([]Target{{ID: "dep_0", Model: "m"}, {ID: "dep_1", Model: "m"}})
	for i := range m.Deployments {
		b.Start(&m.Deployments[i])(Outcome{TTFT: 10 * time.Millisecond})
	}
	b.SetHeadroom("dep_0", Headroom{Frac: 0.1, Refill: time.Minute})
	for range 50 {
		if got := order(b, m)[0]; got != "dep_1" {
			t.Fatalf("picked %s, want dep_1", got)
		}
	}
}
