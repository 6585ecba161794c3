package usage

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-ai/sluice/llm"
)

// BenchmarkRecord: Record on the request path, one caller and many
// (b.RunParallel), with the writer running into a sink that discards.
// Callers that outrun the writer fill the queue and drop (dropped/op),
// which is cheaper than queueing: compare ns/op together with dropped/op.
func BenchmarkRecord(b *testing.B) {
	rec := llm.Record{ID: "req_0123456789abcdef", PrincipalID: "key_1", PrincipalKind: "key", Owner: "team-a",
		KeyID: "key_1", KeyPrefix: "sk-abc", Model: "gpt-4o-mini", Provider: "mock", Deployment: "dep_1",
		UpstreamModel: "gpt-4o-mini", Status: llm.StatusOK, Time: time.Now()}
	for _, parallel := range []bool{false, true} {
		name := "serial"
		if parallel {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			r := NewRecorder(discardSink{}, Options{})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { r.Run(ctx) })
			b.ReportAllocs()
			b.ResetTimer()
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						r.Record(rec)
					}
				})
			} else {
				for b.Loop() {
					r.Record(rec)
				}
			}
			b.StopTimer()
			cancel()
			wg.Wait()
			b.ReportMetric(testutil.ToFloat64(r.dropped.WithLabelValues("queue_full"))/float64(b.N), "dropped/op")
		})
	}
}

type discardSink struct{}

func (discardSink) InsertUsage(_ context.Context, recs []llm.Record) (int, error) {
	return len(recs), nil
}

// BenchmarkRecordQueued: the cost of queueing one record, the queue never
// full. The timer stops to empty the queue as the writer would: after
// every batch (steady: the writer keeps up, chunks are recycled) or after
// ten (burst: ten chunks are taken, eight of them allocated, since only
// two are kept spare).
func BenchmarkRecordQueued(b *testing.B) {
	rec := llm.Record{ID: "req_0123456789abcdef", PrincipalID: "key_1", PrincipalKind: "key", Owner: "team-a",
		KeyID: "key_1", KeyPrefix: "sk-abc", Model: "gpt-4o-mini", Provider: "mock", Deployment: "dep_1",
		UpstreamModel: "gpt-4o-mini", Status: llm.StatusOK, Time: time.Now()}
	for _, c := range []struct {
		name  string
		every int
	}{{"steady", 1000}, {"burst", 10000}} {
		b.Run(c.name, func(b *testing.B) {
			r := NewRecorder(discardSink{}, Options{QueueSize: 10000, BatchSize: 1000})
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				r.Record(rec)
				if n++; n == c.every {
					b.StopTimer()
					emptyForBench(r)
					n = 0
					b.StartTimer()
				}
			}
			if got := testutil.ToFloat64(r.dropped.WithLabelValues("queue_full")); got != 0 {
				b.Fatalf("%v dropped", got)
			}
		})
	}
}

// emptyForBench empties r's queue as its writer does.
func emptyForBench(r *Recorder) {
	for c := r.queue.pop(true); c != nil; c = r.queue.pop(true) {
		r.queue.recycle(c)
	}
}
