package balancer

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// BenchmarkPickHeadroom is BenchmarkPick with every deployment's headroom
// known (a spread of fractions, one in ten empty), for the strategies
// that weigh it.
func BenchmarkPickHeadroom(b *testing.B) {
	for _, st := range []llm.Strategy{llm.StrategyAuto, llm.StrategyCost, llm.StrategyWeighted} {
		for _, n := range []int{2, 10, 100} {
			b.Run(fmt.Sprintf("%s/%d", st, n), func(b *testing.B) {
				src := rand.New(rand.NewPCG(1, 2))
				bl := New(Options{Rand: src.IntN})
				m := &llm.Model{ID: "mdl_bench", Name: "bench", Strategy: st}
				var ts []Target
				for i := range n {
					d := llm.Deployment{ID: fmt.Sprintf("dep_%d", i), Provider: "p", Model: "x", Weight: 1 + i%3}
					d.InputPerMTok, d.OutputPerMTok = float64(1+i%7), float64(2+i%5)
					m.Deployments = append(m.Deployments, d)
					ts = append(ts, Target{ID: d.ID, Model: m.ID})
				}
				bl.Retain(ts)
				for i := range m.Deployments {
					bl.Start(&m.Deployments[i])(Outcome{TTFT: time.Duration(50+i%13) * time.Millisecond, Latency: time.Second})
					hr := Headroom{Frac: float64(i%10) / 10, Refill: time.Hour}
					if i%10 == 9 && i > 0 {
						hr.Empty = time.Hour
					}
					bl.SetHeadroom(m.Deployments[i].ID, hr)
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
