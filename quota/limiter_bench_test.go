package quota_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/quota"
)

// BenchmarkLimiterAdmit is the request path's quota cost: one Admit of a
// request whose key has rpm, tpm, max_parallel and a USD budget (the
// settlement runs off the request path and is not timed), on the memory
// store and on Redis, and the cost for a key without limits.
func BenchmarkLimiterAdmit(b *testing.B) {
	limits := llm.Limits{RPM: llm.MaxRateLimit, TPM: llm.MaxRateLimit, MaxParallel: llm.MaxParallel,
		Budget: &llm.Budget{USD: llm.MaxBudgetUSD}}
	m := &llm.Model{Name: "m", Deployments: []llm.Deployment{{ID: "d", Prices: llm.Prices{InputPerMTok: 0.15, OutputPerMTok: 0.6}}}}
	stores := []struct {
		name   string
		store  func(b *testing.B) quota.Store
		shared bool
	}{
		{"memory", func(*testing.B) quota.Store { return quota.NewMemory(nil) }, false},
		{"redis", func(b *testing.B) quota.Store {
			c := testRedis(b)
			return quota.NewRedis(c, quota.RedisOptions{Prefix: testPrefix(b, c)})
		}, true},
	}
	for _, st := range stores {
		for _, withLimits := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/limits=%v", st.name, withLimits), func(b *testing.B) {
				l := quota.NewLimiter(quota.Options{Store: st.store(b), Shared: st.shared, Timeout: time.Second})
				defer func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					l.Close(ctx)
				}()
				k := &llm.Key{ID: "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
				if withLimits {
					k.Limits = limits
				}
				n := 0
				b.ReportAllocs()
				for b.Loop() {
					n++
					r := &quota.Request{ID: "r" + strconv.Itoa(n), Key: k, Model: m, PromptTokens: func() int { return 200 }, MaxTokens: 32}
					res, e := l.Admit(context.Background(), r)
					if e != nil {
						b.Fatal(e)
					}
					res.Settle(llm.Usage{PromptTokens: 200, CompletionTokens: 10}, 36)
				}
			})
		}
	}
}
