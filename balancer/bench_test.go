package balancer

import (
	"testing"
	"time"
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
