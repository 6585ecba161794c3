package balancer

import (
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

func model(weights ...int) *llm.Model {
	m := &llm.Model{Name: "m"}
	for i, w := range weights {
		m.Deployments = append(m.Deployments, llm.Deployment{ID: "dep_" + string(rune('a'+i)), Provider: string(rune('a' + i)), Model: "x", Weight: w})
	}
	return m
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestPlanWeighted(t *testing.T) {
	m := model(1, 3)
	counts := [2]int{}
	n := 0
	b := New(Options{Rand: func(total int) int {
		if total != 4 { // the second draw, among what is left
			return 0
		}
		n++
		return n % total
	}})
	for range 400 {
		counts[b.Plan(m)[0]]++
	}
	if counts[0] != 100 || counts[1] != 300 {
		t.Fatalf("first picks %v, want [100 300] for weights 1:3", counts)
	}
}

func TestPlanCoversEveryDeploymentOnce(t *testing.T) {
	b := New(Options{})
	m := model(1, 0, 5, 2)
	for range 50 {
		seen := map[int]bool{}
		for _, i := range b.Plan(m) {
			if seen[i] {
				t.Fatalf("deployment %d planned twice", i)
			}
			seen[i] = true
		}
		if len(seen) != 4 {
			t.Fatalf("plan covers %d of 4", len(seen))
		}
	}
}

func TestCooldownAfterFailures(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	b := New(Options{Now: c.now, Rand: func(int) int { return 0 }, MaxFails: 2, Cooldown: 10 * time.Second})
	m := model(1, 1)
	a := m.Deployments[0].ID
	for range 2 {
		b.Start(a)(Outcome{Failed: true})
	}
	if p := b.Plan(m); p[0] != 1 || p[1] != 0 {
		t.Fatalf("plan %v: the failing deployment must go last", p)
	}
	if st := b.Status(a); st.Healthy || st.Failures != 2 {
		t.Fatalf("status %+v", st)
	}
	c.t = c.t.Add(11 * time.Second)
	if p := b.Plan(m); p[0] != 0 {
		t.Fatalf("plan %v: cooldown should have ended", p)
	}
}

func TestRetryAfterCooldownAndSuccessReset(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	b := New(Options{Now: c.now, Rand: func(int) int { return 0 }, MaxFails: 3})
	m := model(1, 1)
	a := m.Deployments[0].ID
	b.Start(a)(Outcome{Failed: true, RetryAfter: 5 * time.Second})
	if b.Status(a).Healthy {
		t.Fatal("a 429 with Retry-After must cool the deployment down")
	}
	c.t = c.t.Add(6 * time.Second)
	b.Start(a)(Outcome{Failed: true})
	b.Start(a)(Outcome{})
	b.Start(a)(Outcome{Failed: true})
	if !b.Status(a).Healthy {
		t.Fatal("a success must reset the consecutive failure count")
	}
	if st := b.Status(a); st.InFlight != 0 || st.Successes != 1 {
		t.Fatalf("status %+v", st)
	}
}
