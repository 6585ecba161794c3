package quota_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/quota"
	"github.com/sluice-ai/sluice/quota/storetest"
)

// TestRedisMatchesMemory drives the memory store and the Redis store
// (unsplit and split) with the same random operations on the same clock
// and wants the same answers, to the unit: the Lua arithmetic is the Go
// arithmetic.
func TestRedisMatchesMemory(t *testing.T) {
	c := testRedis(t)
	for _, split := range []bool{false, true} {
		for seed := range uint64(4) {
			t.Run(fmt.Sprintf("split=%v/seed=%d", split, seed), func(t *testing.T) {
				t.Parallel()
				r := rand.New(rand.NewPCG(seed, 99))
				clock := storetest.NewClock(time.Date(2026, 2, 27, 23, 0, 0, 0, time.UTC))
				stores := []quota.Store{
					quota.KeepBudgets(quota.NewMemory(clock.Now)),
					quota.NewRedis(c, quota.RedisOptions{Prefix: testPrefix(t, c), Split: split, Clock: clock.Now}),
				}
				differential(t, r, clock, stores, !split)
			})
		}
	}
}

func randLimits(r *rand.Rand) llm.Limits {
	pick := func(vals ...int64) int64 { return vals[r.IntN(len(vals))] }
	l := llm.Limits{
		RPM:         pick(0, 1, 3, 7, 60, 1000, llm.MaxRateLimit),
		TPM:         pick(0, 1, 100, 999, 10_000, llm.MaxRateLimit),
		MaxParallel: pick(0, 1, 2, 5),
	}
	if r.IntN(2) == 0 {
		periods := []llm.Period{llm.PeriodDay, llm.PeriodWeek, llm.PeriodMonth, llm.PeriodLifetime}
		l.Budget = &llm.Budget{
			USD:    []float64{0, 0.001, 1, 1000, llm.MaxBudgetUSD}[r.IntN(5)],
			Tokens: pick(0, 50, 5000, llm.MaxBudgetToken),
			Period: periods[r.IntN(len(periods))],
		}
	}
	return l
}

// With changeLimits, subjects' limits change between steps. Split mode
// does not: its undo of a refused admission gives back what was taken
// but restarts the clock of a full bucket, which only shows when its
// limit is raised at once.
func differential(t *testing.T, r *rand.Rand, clock *storetest.Clock, stores []quota.Store, changeLimits bool) {
	ctx := context.Background()
	subs := make([]quota.Subject, 5)
	for i := range subs {
		subs[i] = quota.Subject{Scope: quota.ScopeKey, ID: fmt.Sprint("d", i), Limits: randLimits(r)}
	}
	type held struct {
		id   string
		subs []quota.Subject
		c    quota.Charge
	}
	var admitted []held
	amount := func(vals ...int64) int64 { return vals[r.IntN(len(vals))] }
	for step := range 600 {
		switch k := r.IntN(20); {
		case k < 3:
			clock.Advance([]time.Duration{time.Microsecond, 7 * time.Millisecond, 900 * time.Millisecond, 13 * time.Second, time.Minute, 17 * time.Minute, 9 * time.Hour}[r.IntN(7)])
		case k == 3:
			if !changeLimits {
				continue
			}
			i := r.IntN(len(subs))
			subs[i].Limits = randLimits(r)
		case k < 12:
			n := 1 + r.IntN(3)
			req := &quota.AdmitRequest{ID: fmt.Sprint("a", step), TTL: []time.Duration{0, time.Second, time.Minute}[r.IntN(3)]}
			for range n {
				req.Subjects = append(req.Subjects, subs[r.IntN(len(subs))])
			}
			req.Charge = quota.Charge{Requests: amount(0, 1, 1, 2), Tokens: amount(0, 1, 10, 100, 999, 5000, 1<<40), CostMicros: amount(0, 1, 1000, 1_000_000), Parallel: r.IntN(2) == 0}
			var ds []quota.Decision
			for _, s := range stores {
				d, err := s.Admit(ctx, req)
				if err != nil {
					t.Fatalf("step %d: Admit: %v", step, err)
				}
				ds = append(ds, d)
			}
			if !reflect.DeepEqual(ds[0], ds[1]) {
				t.Fatalf("step %d: Admit %+v\nmemory: %+v\nredis:  %+v", step, req, ds[0], ds[1])
			}
			if ds[0].Allowed {
				admitted = append(admitted, held{req.ID, req.Subjects, req.Charge})
			}
			for k, i := range ds[0].NeedSeed {
				if r.IntN(4) > 0 {
					sd := []quota.Seed{{Subject: req.Subjects[i], Start: ds[0].PeriodStarts[k], SpentMicros: amount(0, 5, 999_999), SpentTokens: amount(0, 5, 4999)}}
					for _, s := range stores {
						if err := s.Seed(ctx, sd); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		case k < 17:
			st := &quota.Settlement{ID: fmt.Sprint("ghost", step), Subjects: []quota.Subject{subs[r.IntN(len(subs))]}, Reserved: quota.Charge{Tokens: amount(0, 100)}}
			if len(admitted) > 0 && r.IntN(5) > 0 {
				i := r.IntN(len(admitted))
				h := admitted[i]
				admitted = append(admitted[:i], admitted[i+1:]...)
				st = &quota.Settlement{ID: h.id, Subjects: h.subs, Reserved: h.c}
			}
			st.Actual = quota.Charge{Tokens: amount(0, 1, 50, 500, 1<<50), CostMicros: amount(0, 7, 5000, 1<<60)}
			for _, s := range stores {
				if err := s.Settle(ctx, st); err != nil {
					t.Fatalf("step %d: Settle: %v", step, err)
				}
			}
		default:
			var ps [][]quota.State
			for _, s := range stores {
				p, err := s.Peek(ctx, subs)
				if err != nil {
					t.Fatal(err)
				}
				ps = append(ps, p)
			}
			if !reflect.DeepEqual(ps[0], ps[1]) {
				t.Fatalf("step %d: Peek\nmemory: %+v\nredis:  %+v", step, ps[0], ps[1])
			}
		}
	}
}
