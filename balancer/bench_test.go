package balancer

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// BenchmarkPlanAttempt is one request's balancer work: a plan, one pick,
// one attempt started and reported.
func BenchmarkPlanAttempt(b *testing.B) {
	bl := New(Options{})
	m := model(1, 2, 3, 4)
	var ts []Target
	for _, d := range m.Deployments {
		ts = append(ts, Target{ID: d.ID})
	}
	bl.Retain(ts)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d := bl.Plan(m).Next()
			bl.Start(d)(Outcome{Latency: time.Millisecond})
		}
	})
}

// BenchmarkPick is one request's pick: a plan and its first Next, per
// strategy, for models of 2, 10 and 100 deployments, all healthy with
// latency averages, in-flight counts and prices set.
func BenchmarkPick(b *testing.B) {
	for _, st := range []llm.Strategy{llm.StrategyAuto, llm.StrategyWeighted, llm.StrategyLeastBusy, llm.StrategyLatency, llm.StrategyCost, llm.StrategyPriority} {
		for _, n := range []int{2, 10, 100} {
			b.Run(fmt.Sprintf("%s/%d", st, n), func(b *testing.B) {
				src := rand.New(rand.NewPCG(1, 2))
				bl := New(Options{Rand: src.IntN})
				m := &llm.Model{ID: "mdl_bench", Name: "bench", Strategy: st}
				var ts []Target
				for i := range n {
					d := llm.Deployment{ID: fmt.Sprintf("dep_%d", i), Provider: "p", Model: "x", Weight: 1 + i%3, Priority: i % 2}
					d.InputPerMTok, d.OutputPerMTok = float64(1+i%7), float64(2+i%5)
					m.Deployments = append(m.Deployments, d)
					ts = append(ts, Target{ID: d.ID, Model: m.ID})
				}
				bl.Retain(ts)
				for i := range m.Deployments {
					bl.Start(&m.Deployments[i])(Outcome{TTFT: time.Duration(50+i%13) * time.Millisecond, Latency: time.Second})
					if i%4 == 0 {
						bl.Start(&m.Deployments[i]) // stays in flight
					}
				}
				req := Request{PromptTokens: 800, MaxTokens: 400}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if bl.PlanFor(m, req).Next() == nil {
						b.Fatal("no pick")
					}
				}
			})
		}
	}
}
