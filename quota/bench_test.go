package quota_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/quota"
)

var benchSeq atomic.Int64

// benchSubjects are n fresh subjects with every kind of limit, the budget of the
// first seeded, limits high enough that nothing refuses.
func benchSubjects(b *testing.B, s quota.Store, n int) []quota.Subject {
	scopes := []quota.Scope{quota.ScopeKey, quota.ScopeOwner, quota.ScopeModel}
	subs := make([]quota.Subject, n)
	for i := range subs {
		subs[i] = quota.Subject{Scope: scopes[i%3], ID: fmt.Sprint("bench", i, "-", benchSeq.Add(1)), Limits: llm.Limits{RPM: llm.MaxRateLimit, TPM: llm.MaxRateLimit, MaxParallel: llm.MaxParallel}}
	}
	subs[0].Limits.Budget = &llm.Budget{USD: llm.MaxBudgetUSD, Period: llm.PeriodMonth}
	d, err := s.Admit(context.Background(), &quota.AdmitRequest{ID: "probe", Subjects: subs})
	if err != nil {
		b.Fatal(err)
	}
	if len(d.NeedSeed) > 0 {
		if err := s.Seed(context.Background(), []quota.Seed{{Subject: subs[0], Start: d.PeriodStarts[0]}}); err != nil {
			b.Fatal(err)
		}
	}
	return subs
}

// benchAdmitSettle measures one admission and its settlement (a request's
// whole quota cost), serially and in parallel.
func benchAdmitSettle(b *testing.B, s quota.Store, cnt *counter) {
	for _, n := range []int{1, 3} {
		for _, par := range []bool{false, true} {
			name := "subjects=" + strconv.Itoa(n)
			if par {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				subs := benchSubjects(b, s, n)
				var seq atomic.Int64
				one := func(ctx context.Context) {
					id := "r" + strconv.FormatInt(seq.Add(1), 10)
					// One token, so that the limits (10^8 a minute) never
					// refuse however long the benchmark runs.
					c := quota.Charge{Requests: 1, Tokens: 1, CostMicros: 10, Parallel: true}
					d, err := s.Admit(markAdmit(ctx), &quota.AdmitRequest{ID: id, Subjects: subs, Charge: c})
					if err != nil || !d.Allowed {
						b.Fatal(d, err)
					}
					if err := s.Settle(ctx, &quota.Settlement{ID: id, Subjects: subs, Reserved: c, Actual: quota.Charge{Tokens: 1, CostMicros: 8}}); err != nil {
						b.Fatal(err)
					}
				}
				if cnt != nil {
					cnt.n.Store(0)
					cnt.admits.Store(0)
				}
				b.ReportAllocs()
				b.ResetTimer()
				if par {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							one(context.Background())
						}
					})
				} else {
					for b.Loop() {
						one(context.Background())
					}
				}
				b.StopTimer()
				if cnt != nil {
					// One round trip per Admit, one per Settle.
					b.ReportMetric(float64(cnt.admits.Load())/float64(b.N), "rt/admit")
					b.ReportMetric(float64(cnt.n.Load()-cnt.admits.Load())/float64(b.N), "rt/settle")
				}
			})
		}
	}
}

func BenchmarkMemoryAdmitSettle(b *testing.B) {
	benchAdmitSettle(b, quota.NewMemory(nil), nil)
}

func BenchmarkRedisAdmitSettle(b *testing.B) {
	c := testRedis(b)
	cnt := &counter{}
	c.AddHook(cnt)
	for _, split := range []bool{false, true} {
		b.Run(fmt.Sprint("split=", split), func(b *testing.B) {
			benchAdmitSettle(b, quota.NewRedis(c, quota.RedisOptions{Prefix: testPrefix(b, c), Split: split}), cnt)
		})
	}
}

// BenchmarkRedisPing is the round trip the Redis figures stand on.
func BenchmarkRedisPing(b *testing.B) {
	c := testRedis(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
}
