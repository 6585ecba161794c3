// Package storetest is the contract suite every quota.Store passes: the
// memory store and the Redis store (unsplit and split) run the same tests
// and must give the same numbers to the unit.
package storetest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/quota"
)

// NewStore returns a fresh, empty store reading time from clock; a nil
// clock means the store's own time (time.Now, or the Redis server's TIME).
type NewStore func(t *testing.T, clock func() time.Time) quota.Store

// Clock is a settable clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// base is a Tuesday, mid-month, mid-day.
var base = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// Run runs the contract suite on the stores newStore makes.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		f    func(*testing.T, NewStore)
	}{
		{"BurstRPM", testBurstRPM},
		{"BurstRPMRealClock", testBurstRPMRealClock},
		{"BurstTPM", testBurstTPM},
		{"BurstTPMRealClock", testBurstTPMRealClock},
		{"BurstBudget", testBurstBudget},
		{"ParallelConcurrent", testParallelConcurrent},
		{"Refill", testRefill},
		{"TPMTrueUp", testTPMTrueUp},
		{"ChargeOverCapacity", testChargeOverCapacity},
		{"Parallel", testParallel},
		{"BudgetSeedAdmit", testBudgetSeedAdmit},
		{"SeedIgnored", testSeedIgnored},
		{"BudgetUSDAndTokens", testBudgetUSDAndTokens},
		{"SettleSpend", testSettleSpend},
		{"Rollover", testRollover},
		{"PeriodArithmetic", testPeriodArithmetic},
		{"PeriodChange", testPeriodChange},
		{"Lifetime", testLifetime},
		{"Atomicity", testAtomicity},
		{"RefusalLeavesNoBucket", testRefusalLeavesNoBucket},
		{"Peek", testPeek},
		{"SeveralSubjects", testSeveralSubjects},
		{"OddSubjects", testOddSubjects},
		{"OddCharges", testOddCharges},
		{"HugeValues", testHugeValues},
		{"OddLimits", testOddLimits},
		{"SubjectTwice", testSubjectTwice},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.f(t, newStore)
		})
	}
}

// Helpers -------------------------------------------------------------

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

var ids atomic.Int64

// subj is a subject with a unique id.
func subj(scope quota.Scope, l llm.Limits) quota.Subject {
	return quota.Subject{Scope: scope, ID: fmt.Sprintf("s%d-%d", ids.Add(1), rand.Int64()), Limits: l}
}

func rid() string { return fmt.Sprintf("req-%d-%d", ids.Add(1), rand.Int64()) }

func admit(t *testing.T, s quota.Store, c quota.Charge, subjects ...quota.Subject) quota.Decision {
	t.Helper()
	return admitReq(t, s, &quota.AdmitRequest{ID: rid(), Subjects: subjects, Charge: c})
}

func admitReq(t *testing.T, s quota.Store, r *quota.AdmitRequest) quota.Decision {
	t.Helper()
	d, err := s.Admit(ctx(t), r)
	if err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if len(d.States) != len(r.Subjects) {
		t.Fatalf("Admit: %d states for %d subjects", len(d.States), len(r.Subjects))
	}
	if d.Allowed && (d.Denied != -1 || d.Limit != "" || len(d.NeedSeed) > 0) {
		t.Fatalf("Admit: allowed with %+v", d)
	}
	if len(d.NeedSeed) != len(d.PeriodStarts) {
		t.Fatalf("Admit: NeedSeed %v with PeriodStarts %v", d.NeedSeed, d.PeriodStarts)
	}
	return d
}

func settle(t *testing.T, s quota.Store, st *quota.Settlement) {
	t.Helper()
	if err := s.Settle(ctx(t), st); err != nil {
		t.Fatalf("Settle: %v", err)
	}
}

func seed(t *testing.T, s quota.Store, seeds ...quota.Seed) {
	t.Helper()
	if err := s.Seed(ctx(t), seeds); err != nil {
		t.Fatalf("Seed: %v", err)
	}
}

func peek(t *testing.T, s quota.Store, subjects ...quota.Subject) []quota.State {
	t.Helper()
	st, err := s.Peek(ctx(t), subjects)
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	if len(st) != len(subjects) {
		t.Fatalf("Peek: %d states for %d subjects", len(st), len(subjects))
	}
	return st
}

func peek1(t *testing.T, s quota.Store, sub quota.Subject) quota.State {
	t.Helper()
	return peek(t, s, sub)[0]
}

func wantAllowed(t *testing.T, d quota.Decision) {
	t.Helper()
	if !d.Allowed {
		t.Fatalf("refused: denied %d limit %q retry %v need %v", d.Denied, d.Limit, d.RetryAfter, d.NeedSeed)
	}
}

func wantRefused(t *testing.T, d quota.Decision, denied int, lim quota.Limit, retry time.Duration) {
	t.Helper()
	if d.Allowed || d.Denied != denied || d.Limit != lim || d.RetryAfter != retry || len(d.NeedSeed) > 0 {
		t.Fatalf("got allowed=%v denied=%d limit=%q retry=%v need=%v; want refused by %d %q retry %v",
			d.Allowed, d.Denied, d.Limit, d.RetryAfter, d.NeedSeed, denied, lim, retry)
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func eqTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func budget(usd float64, tokens int64, p llm.Period) *llm.Budget {
	return &llm.Budget{USD: usd, Tokens: tokens, Period: p}
}

// seeded makes sub's budget present with the given spend.
func seeded(t *testing.T, s quota.Store, clock *Clock, sub quota.Subject, micros, tokens int64) {
	t.Helper()
	start, _ := llm.PeriodBounds(sub.Limits.Budget.BudgetPeriod(), clock.Now())
	seed(t, s, quota.Seed{Subject: sub, Start: start, SpentMicros: micros, SpentTokens: tokens})
	if b := peek1(t, s, sub).Budget; b.Missing || b.SpentMicros != micros || b.SpentTokens != tokens {
		t.Fatalf("after Seed: %+v", b)
	}
}

// burst runs n concurrent admissions of c and counts the allowed.
func burst(t *testing.T, s quota.Store, n int, c quota.Charge, sub quota.Subject, check func(quota.Decision)) int {
	t.Helper()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			d, err := s.Admit(context.Background(), &quota.AdmitRequest{ID: rid(), Subjects: []quota.Subject{sub}, Charge: c})
			if err != nil {
				errs <- err
				return
			}
			if d.Allowed {
				allowed.Add(1)
			} else if check != nil {
				check(d)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Admit: %v", err)
	}
	return int(allowed.Load())
}

// Buckets ---------------------------------------------------------------

func testBurstRPM(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	sub := subj(quota.ScopeKey, llm.Limits{RPM: 100})
	var bad atomic.Value
	got := burst(t, s, 500, quota.Charge{Requests: 1}, sub, func(d quota.Decision) {
		if d.Denied != 0 || d.Limit != quota.LimitRPM || d.RetryAfter != 600*time.Millisecond {
			bad.Store(fmt.Sprintf("refusal %+v", d))
		}
	})
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	eq(t, "admitted", got, 100)
	st := peek1(t, s, sub)
	eq(t, "remaining", st.RPM.Remaining, 0)
	eq(t, "reset", st.RPM.Reset, time.Minute)
	eq(t, "limit", st.RPM.Limit, 100)
}

func testBurstRPMRealClock(t *testing.T, newStore NewStore) {
	s := newStore(t, nil)
	sub := subj(quota.ScopeKey, llm.Limits{RPM: 100})
	start := time.Now()
	got := burst(t, s, 500, quota.Charge{Requests: 1}, sub, nil)
	refill := int(time.Since(start)*100/time.Minute) + 1
	if got < 100 || got > 100+refill {
		t.Fatalf("admitted %d of 500 at rpm 100; want 100..%d", got, 100+refill)
	}
}

func testBurstTPM(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	sub := subj(quota.ScopeModel, llm.Limits{TPM: 10_000})
	got := burst(t, s, 500, quota.Charge{Requests: 1, Tokens: 500}, sub, nil)
	eq(t, "admitted", got, 20)
	eq(t, "remaining", peek1(t, s, sub).TPM.Remaining, 0)
}

func testBurstTPMRealClock(t *testing.T, newStore NewStore) {
	s := newStore(t, nil)
	sub := subj(quota.ScopeModel, llm.Limits{TPM: 10_000})
	start := time.Now()
	got := burst(t, s, 500, quota.Charge{Requests: 1, Tokens: 500}, sub, nil)
	refill := int(time.Since(start)*10_000/time.Minute/500) + 1
	if got < 20 || got > 20+refill {
		t.Fatalf("admitted %d of 500 at tpm 10000 and 500 tokens each; want 20..%d", got, 20+refill)
	}
}

// testBurstBudget: concurrent admissions never spend past a budget.
func testBurstBudget(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	sub := subj(quota.ScopeOwner, llm.Limits{Budget: budget(0.00005, 1_000_000, llm.PeriodDay)})
	seeded(t, s, clock, sub, 10, 0)
	eq(t, "admitted", burst(t, s, 300, quota.Charge{Requests: 1, CostMicros: 1, Tokens: 1}, sub, nil), 40)
	bs := peek1(t, s, sub).Budget
	eq(t, "reserved", bs.ReservedMicros, 40)
	eq(t, "reserved tokens", bs.ReservedTokens, 40)
}

// testParallelConcurrent: admissions and settlements racing never hold
// more slots than the limit, and leak none.
func testParallelConcurrent(t *testing.T, newStore NewStore) {
	s := newStore(t, nil)
	sub := subj(quota.ScopeDeployment, llm.Limits{MaxParallel: 5})
	var inFlight, most, admitted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for range 25 {
				id := rid()
				c := quota.Charge{Requests: 1, Parallel: true}
				d, err := s.Admit(context.Background(), &quota.AdmitRequest{ID: id, Subjects: []quota.Subject{sub}, Charge: c})
				if err != nil {
					errs <- err
					return
				}
				if !d.Allowed {
					continue
				}
				admitted.Add(1)
				n := inFlight.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				inFlight.Add(-1)
				if err := s.Settle(context.Background(), &quota.Settlement{ID: id, Subjects: []quota.Subject{sub}, Reserved: c}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if most.Load() > 5 || admitted.Load() < 5 {
		t.Fatalf("%d admitted, at most %d at once; limit 5", admitted.Load(), most.Load())
	}
	eq(t, "slots at the end", peek1(t, s, sub).Parallel.InUse, 0)
}

func testRefill(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	sub := subj(quota.ScopeKey, llm.Limits{RPM: 60})
	for i := range 60 {
		if d := admit(t, s, quota.Charge{Requests: 1}, sub); !d.Allowed {
			t.Fatalf("request %d refused", i)
		}
	}
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1}, sub), 0, quota.LimitRPM, time.Second)
	clock.Advance(999 * time.Millisecond)
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1}, sub), 0, quota.LimitRPM, time.Millisecond)
	clock.Advance(time.Millisecond)
	d := admit(t, s, quota.Charge{Requests: 1}, sub)
	wantAllowed(t, d)
	eq(t, "remaining", d.States[0].RPM.Remaining, 0)
	eq(t, "reset", d.States[0].RPM.Reset, time.Minute)
	eqTime(t, "now", d.Now, clock.Now())
	clock.Advance(30*time.Second + 500*time.Millisecond)
	st := peek1(t, s, sub)
	eq(t, "remaining after 30.5s", st.RPM.Remaining, 30)
	eq(t, "reset after 30.5s", st.RPM.Reset, 29500*time.Millisecond)
	clock.Advance(10 * time.Minute)
	st = peek1(t, s, sub)
	eq(t, "remaining after 10m", st.RPM.Remaining, 60)
	eq(t, "reset after 10m", st.RPM.Reset, 0)
}

func testTPMTrueUp(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	sub := subj(quota.ScopeKey, llm.Limits{RPM: 10, TPM: 1000})
	set := func(res, act int64) {
		t.Helper()
		settle(t, s, &quota.Settlement{ID: rid(), Subjects: []quota.Subject{sub}, Reserved: quota.Charge{Requests: 1, Tokens: res}, Actual: quota.Charge{Tokens: act}})
	}
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 600}, sub))
	eq(t, "remaining", peek1(t, s, sub).TPM.Remaining, 400)
	set(600, 100) // refund
	st := peek1(t, s, sub)
	eq(t, "remaining after refund", st.TPM.Remaining, 900)
	eq(t, "rpm not refunded", st.RPM.Remaining, 9)
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 900}, sub))
	set(900, 1900) // debt of 1000
	st = peek1(t, s, sub)
	eq(t, "remaining in debt", st.TPM.Remaining, -1000)
	eq(t, "reset in debt", st.TPM.Reset, 2*time.Minute)
	// 1 token needs 1001 tokens of refill: 60.06s.
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 1}, sub), 0, quota.LimitTPM, 60060*time.Millisecond)
	set(0, 1<<40) // debt is at most one window
	eq(t, "remaining at most debt", peek1(t, s, sub).TPM.Remaining, -1000)
	clock.Advance(time.Minute)
	eq(t, "remaining after 1m", peek1(t, s, sub).TPM.Remaining, 0)
	clock.Advance(time.Minute)
	eq(t, "remaining after 2m", peek1(t, s, sub).TPM.Remaining, 1000)
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 10}, sub))
	set(1<<40, 0) // a refund never overfills
	eq(t, "remaining after big refund", peek1(t, s, sub).TPM.Remaining, 1000)
	// A refund to a bucket partly refilled: -500 + 30s×1000/60s + 200.
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 1000}, sub))
	set(0, 500)
	clock.Advance(30 * time.Second)
	set(200, 0)
	eq(t, "remaining after partial refill", peek1(t, s, sub).TPM.Remaining, 200)
}

func testChargeOverCapacity(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	sub := subj(quota.ScopeKey, llm.Limits{RPM: 1, TPM: 100})
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 101}, sub), 0, quota.LimitTPM, 0)
	wantRefused(t, admit(t, s, quota.Charge{Requests: 2, Tokens: 1}, sub), 0, quota.LimitRPM, 0)
	st := peek1(t, s, sub)
	eq(t, "rpm remaining", st.RPM.Remaining, 1)
	eq(t, "tpm remaining", st.TPM.Remaining, 100)
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 100}, sub))

	b := subj(quota.ScopeOwner, llm.Limits{Budget: budget(1, 1000, llm.PeriodDay)})
	seeded(t, s, clock, b, 0, 0)
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 1001}, b), 0, quota.LimitBudgetTokens, 0)
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, CostMicros: 1_000_001}, b), 0, quota.LimitBudgetUSD, 0)
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 1000, CostMicros: 1_000_000}, b))
}

func testParallel(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	sub := subj(quota.ScopeKey, llm.Limits{MaxParallel: 2})
	par := quota.Charge{Requests: 1, Parallel: true}
	one := func(id string, ttl time.Duration) quota.Decision {
		t.Helper()
		return admitReq(t, s, &quota.AdmitRequest{ID: id, Subjects: []quota.Subject{sub}, Charge: par, TTL: ttl})
	}
	end := func(id string) {
		t.Helper()
		settle(t, s, &quota.Settlement{ID: id, Subjects: []quota.Subject{sub}, Reserved: par})
	}
	wantAllowed(t, one("a", 0))
	d := one("b", 0)
	wantAllowed(t, d)
	eq(t, "in use", d.States[0].Parallel.InUse, 2)
	eq(t, "limit", d.States[0].Parallel.Limit, 2)
	wantRefused(t, one("c", 0), 0, quota.LimitParallel, 0)
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1}, sub)) // no slot asked
	end("a")
	eq(t, "in use after settle", peek1(t, s, sub).Parallel.InUse, 1)
	end("a") // twice: nothing more
	eq(t, "in use after settling twice", peek1(t, s, sub).Parallel.InUse, 1)
	wantAllowed(t, one("c", 10*time.Second))
	wantRefused(t, one("d", 0), 0, quota.LimitParallel, 0)
	clock.Advance(10*time.Second - time.Microsecond)
	eq(t, "in use before expiry", peek1(t, s, sub).Parallel.InUse, 2)
	clock.Advance(time.Microsecond)
	eq(t, "in use after expiry", peek1(t, s, sub).Parallel.InUse, 1)
	wantAllowed(t, one("d", 0))
	end("c") // expired: releases nothing more
	eq(t, "in use after settling expired", peek1(t, s, sub).Parallel.InUse, 2)
	// The default TTL is 15 minutes.
	clock.Advance(15*time.Minute - 10*time.Second - time.Microsecond)
	eq(t, "in use before default ttl", peek1(t, s, sub).Parallel.InUse, 2)
	clock.Advance(10 * time.Second)
	eq(t, "in use after default ttl", peek1(t, s, sub).Parallel.InUse, 1)
	clock.Advance(15 * time.Minute)
	eq(t, "in use at the end", peek1(t, s, sub).Parallel.InUse, 0)
}

// Budgets -------------------------------------------------------------

func testBudgetSeedAdmit(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	rate := subj(quota.ScopeKey, llm.Limits{RPM: 10})
	b := subj(quota.ScopeOwner, llm.Limits{RPM: 5, Budget: budget(10, 0, "")})
	start, end := llm.PeriodBounds(llm.PeriodMonth, base)

	d := admit(t, s, quota.Charge{Requests: 1, CostMicros: 1_000_000}, rate, b)
	if d.Allowed || d.Denied != -1 || d.Limit != "" || len(d.NeedSeed) != 1 || d.NeedSeed[0] != 1 || !d.PeriodStarts[0].Equal(start) {
		t.Fatalf("want NeedSeed [1] at %v, got %+v", start, d)
	}
	eq(t, "rate remaining", d.States[0].RPM.Remaining, 10)
	eq(t, "budget rpm remaining", d.States[1].RPM.Remaining, 5)
	if bs := d.States[1].Budget; !bs.Missing || bs.Period != llm.PeriodMonth || !bs.Start.Equal(start) || !bs.End.Equal(end) || bs.LimitMicros != 10_000_000 {
		t.Fatalf("budget state %+v", bs)
	}
	eq(t, "peek missing", peek1(t, s, b).Budget.Missing, true)
	eq(t, "rate untouched", peek1(t, s, rate).RPM.Remaining, 10)

	seed(t, s, quota.Seed{Subject: b, Start: start, SpentMicros: 9_500_000})
	first := &quota.AdmitRequest{ID: rid(), Subjects: []quota.Subject{rate, b}, Charge: quota.Charge{Requests: 1, CostMicros: 400_000}, TTL: 2 * time.Hour}
	d = admitReq(t, s, first)
	wantAllowed(t, d)
	bs := d.States[1].Budget
	eq(t, "spent", bs.SpentMicros, 9_500_000)
	eq(t, "reserved", bs.ReservedMicros, 400_000)
	eq(t, "missing", bs.Missing, false)
	clock.Advance(time.Hour)
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, CostMicros: 200_000}, rate, b), 1, quota.LimitBudgetUSD, end.Sub(clock.Now()))
	settle(t, s, &quota.Settlement{ID: first.ID, Subjects: first.Subjects, Reserved: first.Charge, Actual: quota.Charge{CostMicros: 300_000}})
	bs = peek1(t, s, b).Budget
	eq(t, "spent after settle", bs.SpentMicros, 9_800_000)
	eq(t, "reserved after settle", bs.ReservedMicros, 0)
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1, CostMicros: 200_000}, b)) // exactly the limit
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, CostMicros: 1}, b), 0, quota.LimitBudgetUSD, end.Sub(clock.Now()))
}

func testSeedIgnored(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	b := subj(quota.ScopeKey, llm.Limits{Budget: budget(0, 1000, llm.PeriodWeek)})
	start, _ := llm.PeriodBounds(llm.PeriodWeek, base)
	eq(t, "week start", start, time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC))
	// A seed for another period start is ignored.
	seed(t, s, quota.Seed{Subject: b, Start: start.AddDate(0, 0, -7), SpentTokens: 5})
	seed(t, s, quota.Seed{Subject: b, Start: start.Add(time.Microsecond), SpentTokens: 5})
	eq(t, "missing after stale seeds", peek1(t, s, b).Budget.Missing, true)
	// A seed of a subject without budget does nothing.
	seed(t, s, quota.Seed{Subject: subj(quota.ScopeKey, llm.Limits{RPM: 1}), Start: start})
	seeded(t, s, clock, b, 0, 100)
	// Present: a later seed is ignored.
	seed(t, s, quota.Seed{Subject: b, Start: start, SpentTokens: 900})
	eq(t, "spent after second seed", peek1(t, s, b).Budget.SpentTokens, 100)
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 900}, b))
	// Several seeds in one call, one ignored.
	b2 := subj(quota.ScopeModel, llm.Limits{Budget: budget(5, 0, llm.PeriodDay)})
	b3 := subj(quota.ScopeModel, llm.Limits{Budget: budget(5, 0, llm.PeriodMonth)})
	d2, _ := llm.PeriodBounds(llm.PeriodDay, base)
	seed(t, s, quota.Seed{Subject: b2, Start: d2, SpentMicros: 7}, quota.Seed{Subject: b3, Start: d2, SpentMicros: 8})
	st := peek(t, s, b2, b3)
	eq(t, "b2 spent", st[0].Budget.SpentMicros, 7)
	eq(t, "b3 missing", st[1].Budget.Missing, true)
	seed(t, s) // none
}

func testBudgetUSDAndTokens(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	b := subj(quota.ScopeKey, llm.Limits{Budget: budget(1, 1000, llm.PeriodDay)})
	seeded(t, s, clock, b, 0, 0)
	first := &quota.AdmitRequest{ID: rid(), Subjects: []quota.Subject{b}, Charge: quota.Charge{Requests: 1, Tokens: 600, CostMicros: 100_000}, TTL: time.Minute}
	wantAllowed(t, admitReq(t, s, first))
	_, end := llm.PeriodBounds(llm.PeriodDay, base)
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 401, CostMicros: 1}, b), 0, quota.LimitBudgetTokens, end.Sub(base))
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 100, CostMicros: 900_001}, b), 0, quota.LimitBudgetUSD, end.Sub(base))
	d := admit(t, s, quota.Charge{Requests: 1, Tokens: 400, CostMicros: 900_000}, b)
	wantAllowed(t, d)
	bs := d.States[0].Budget
	if bs.ReservedTokens != 1000 || bs.ReservedMicros != 1_000_000 || bs.SpentTokens != 0 || bs.LimitTokens != 1000 || bs.LimitMicros != 1_000_000 {
		t.Fatalf("budget %+v", bs)
	}
	// The first reservation expires: its hold goes, nothing is spent.
	clock.Advance(time.Minute)
	bs = peek1(t, s, b).Budget
	eq(t, "reserved tokens after expiry", bs.ReservedTokens, 400)
	eq(t, "spent tokens after expiry", bs.SpentTokens, 0)
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 600, CostMicros: 100_000}, b))
	// Settling the expired one adds its spend.
	settle(t, s, &quota.Settlement{ID: first.ID, Subjects: first.Subjects, Reserved: first.Charge, Actual: quota.Charge{Tokens: 50, CostMicros: 5}})
	bs = peek1(t, s, b).Budget
	eq(t, "spent tokens", bs.SpentTokens, 50)
	eq(t, "spent micros", bs.SpentMicros, 5)
	eq(t, "reserved tokens", bs.ReservedTokens, 1000)
	// usd first: 5 spent + 1 000 000 reserved.
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1}, b), 0, quota.LimitBudgetUSD, end.Sub(clock.Now()))
}

func testSettleSpend(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	b := subj(quota.ScopeKey, llm.Limits{TPM: 1000, Budget: budget(10, 0, llm.PeriodMonth)})
	ghost := &quota.Settlement{ID: "ghost", Subjects: []quota.Subject{b}, Reserved: quota.Charge{Tokens: 100}, Actual: quota.Charge{Tokens: 300, CostMicros: 42}}
	// Unseeded: Settle trues up TPM but creates no budget.
	settle(t, s, ghost)
	st := peek1(t, s, b)
	eq(t, "missing after settle", st.Budget.Missing, true)
	eq(t, "tpm after settle", st.TPM.Remaining, 800)
	d := admit(t, s, quota.Charge{Requests: 1}, b)
	if d.Allowed || len(d.NeedSeed) != 1 {
		t.Fatalf("want NeedSeed, got %+v", d)
	}
	seeded(t, s, clock, b, 1000, 0)
	// An unknown id still adds spend.
	settle(t, s, ghost)
	st = peek1(t, s, b)
	eq(t, "spent", st.Budget.SpentMicros, 1042)
	eq(t, "tokens spent", st.Budget.SpentTokens, 300)
	eq(t, "tpm", st.TPM.Remaining, 600)
	// Huge actual spend saturates; nothing breaks.
	settle(t, s, &quota.Settlement{ID: "x", Subjects: []quota.Subject{b}, Actual: quota.Charge{Tokens: math.MaxInt64, CostMicros: math.MaxInt64}})
	st = peek1(t, s, b)
	if st.Budget.SpentMicros < 10_000_000 || st.Budget.SpentMicros > 1<<53 {
		t.Fatalf("spent after huge settle: %d", st.Budget.SpentMicros)
	}
	eq(t, "tpm after huge", st.TPM.Remaining, -1000)
	_, end := llm.PeriodBounds(llm.PeriodMonth, base)
	wantRefused(t, admit(t, s, quota.Charge{Requests: 0, Tokens: 0, CostMicros: 1}, b), 0, quota.LimitTPM, 60*time.Second)
	clock.Advance(2 * time.Minute)
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, CostMicros: 1}, b), 0, quota.LimitBudgetUSD, end.Sub(clock.Now()))
	// Settlement with no subjects.
	settle(t, s, &quota.Settlement{ID: "none"})
}

type rollCase struct {
	name   string
	period llm.Period
	at     time.Time // in a period; its end is the next period's start
}

func testRollover(t *testing.T, newStore NewStore) {
	cases := []rollCase{
		{"day", llm.PeriodDay, base},
		{"week from Sunday", llm.PeriodWeek, time.Date(2026, 3, 15, 23, 0, 0, 0, time.UTC)},
		{"week from Monday", llm.PeriodWeek, time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)},
		{"month", llm.PeriodMonth, time.Date(2026, 2, 28, 23, 59, 59, 0, time.UTC)},
		{"year end", llm.PeriodMonth, time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)},
		{"leap February", llm.PeriodMonth, time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC)},
		{"week across the year", llm.PeriodWeek, time.Date(2026, 12, 30, 0, 0, 0, 0, time.UTC)},
		{"day at 2100-02-28", llm.PeriodDay, time.Date(2100, 2, 28, 1, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := NewClock(tc.at)
			s := newStore(t, clock.Now)
			b := subj(quota.ScopeOwner, llm.Limits{Budget: budget(10, 1000, tc.period)})
			start, end := llm.PeriodBounds(tc.period, tc.at)
			seeded(t, s, clock, b, 5_000_000, 500)
			clock.Set(end.Add(-time.Hour))
			held := &quota.AdmitRequest{ID: rid(), Subjects: []quota.Subject{b}, Charge: quota.Charge{Requests: 1, Tokens: 100, CostMicros: 1_000_000}, TTL: MaxTTLForTest}
			wantAllowed(t, admitReq(t, s, held))
			clock.Set(end.Add(-time.Microsecond))
			bs := peek1(t, s, b).Budget
			if bs.Missing || bs.SpentMicros != 5_000_000 || bs.SpentTokens != 500 || !bs.Start.Equal(start) {
				t.Fatalf("just before the end: %+v", bs)
			}
			wantRefused(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 401}, b), 0, quota.LimitBudgetTokens, time.Microsecond)
			clock.Set(end)
			bs = peek1(t, s, b).Budget
			_, next := llm.PeriodBounds(tc.period, end)
			if bs.Missing || bs.SpentMicros != 0 || bs.SpentTokens != 0 || bs.ReservedTokens != 100 || !bs.Start.Equal(end) || !bs.End.Equal(next) {
				t.Fatalf("at the end: %+v", bs)
			}
			d := admit(t, s, quota.Charge{Requests: 1, Tokens: 900}, b)
			wantAllowed(t, d)
			eq(t, "reserved", d.States[0].Budget.ReservedTokens, 1000)
			settle(t, s, &quota.Settlement{ID: held.ID, Subjects: held.Subjects, Reserved: held.Charge, Actual: quota.Charge{Tokens: 10, CostMicros: 10}})
			bs = peek1(t, s, b).Budget
			if bs.SpentTokens != 10 || bs.SpentMicros != 10 || bs.ReservedTokens != 900 {
				t.Fatalf("after settling across the end: %+v", bs)
			}
			// A seed for the old period is now ignored (the counters exist).
			seed(t, s, quota.Seed{Subject: b, Start: start, SpentTokens: 999})
			eq(t, "spent after old seed", peek1(t, s, b).Budget.SpentTokens, 10)
		})
	}
}

// MaxTTLForTest keeps a reservation alive across the rollover tests.
const MaxTTLForTest = 24 * time.Hour

// testPeriodArithmetic checks that the store's idea of a period's start is
// llm.PeriodBounds' at many instants: a seed is accepted only for the
// current start, and a Peek just before the end still sees it.
func testPeriodArithmetic(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	r := rand.New(rand.NewPCG(1, 2))
	var at []time.Time
	for _, y := range []int{1970, 1999, 2000, 2024, 2026, 2100, 2200} {
		at = append(at, time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(y, 2, 28, 23, 59, 59, 999999000, time.UTC),
			time.Date(y, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(y, 12, 31, 23, 59, 59, 0, time.UTC))
	}
	for range 40 {
		at = append(at, time.UnixMicro(r.Int64N(time.Date(2250, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())).UTC())
	}
	for _, when := range at {
		for _, p := range []llm.Period{llm.PeriodDay, llm.PeriodWeek, llm.PeriodMonth} {
			clock.Set(when)
			b := subj(quota.ScopeKey, llm.Limits{Budget: budget(0, 100, p)})
			start, end := llm.PeriodBounds(p, when)
			seed(t, s, quota.Seed{Subject: b, Start: start, SpentTokens: 7})
			clock.Set(end.Add(-time.Microsecond))
			if bs := peek1(t, s, b).Budget; bs.Missing || bs.SpentTokens != 7 {
				t.Fatalf("%s at %v: seed at %v not taken or not kept to the end: %+v", p, when, start, bs)
			}
			clock.Set(end)
			if bs := peek1(t, s, b).Budget; bs.Missing || bs.SpentTokens != 0 {
				t.Fatalf("%s at %v: no rollover at %v: %+v", p, when, end, bs)
			}
		}
	}
}

// testPeriodChange: a budget whose period changes is rebuilt from the
// usage records, not carried over.
func testPeriodChange(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	b := subj(quota.ScopeKey, llm.Limits{Budget: budget(0, 100, llm.PeriodMonth)})
	seeded(t, s, clock, b, 0, 50)
	b.Limits.Budget = budget(0, 100, llm.PeriodDay)
	eq(t, "missing after period change", peek1(t, s, b).Budget.Missing, true)
	d := admit(t, s, quota.Charge{Requests: 1}, b)
	if len(d.NeedSeed) != 1 {
		t.Fatalf("want NeedSeed after a period change, got %+v", d)
	}
	seeded(t, s, clock, b, 0, 20)
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 80}, b))
}

func testLifetime(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	b := subj(quota.ScopeKey, llm.Limits{Budget: budget(0, 100, llm.PeriodLifetime)})
	d := admit(t, s, quota.Charge{Requests: 1, Tokens: 1}, b)
	if len(d.NeedSeed) != 1 || !d.PeriodStarts[0].Equal(time.Unix(0, 0)) {
		t.Fatalf("want NeedSeed at the epoch, got %+v", d)
	}
	seed(t, s, quota.Seed{Subject: b, Start: time.Unix(0, 0), SpentTokens: 90})
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 20}, b), 0, quota.LimitBudgetTokens, 0)
	clock.Advance(10 * 365 * 24 * time.Hour)
	bs := peek1(t, s, b).Budget
	if bs.Missing || bs.SpentTokens != 90 || !bs.End.IsZero() || !bs.Start.Equal(time.Unix(0, 0)) || bs.Period != llm.PeriodLifetime {
		t.Fatalf("lifetime after ten years: %+v", bs)
	}
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 10}, b))
}

// Several subjects ------------------------------------------------------

func testAtomicity(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	a := subj(quota.ScopeKey, llm.Limits{RPM: 10, TPM: 1000, MaxParallel: 5, Budget: budget(100, 1_000_000, llm.PeriodDay)})
	seeded(t, s, clock, a, 0, 0)
	c := quota.Charge{Requests: 1, Tokens: 100, CostMicros: 1000, Parallel: true}
	check := func(what string) {
		t.Helper()
		st := peek1(t, s, a)
		if st.RPM.Remaining != 10 || st.TPM.Remaining != 1000 || st.Parallel.InUse != 0 || st.Budget.ReservedMicros != 0 || st.Budget.ReservedTokens != 0 {
			t.Fatalf("%s: the first subject was charged: %+v", what, st)
		}
	}
	// Refused by the 2nd subject's RPM.
	b := subj(quota.ScopeModel, llm.Limits{RPM: 1})
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1}, b))
	d := admit(t, s, c, a, b)
	wantRefused(t, d, 1, quota.LimitRPM, time.Minute)
	eq(t, "state of a in refusal", d.States[0].RPM.Remaining, 10)
	check("rpm")
	// By the 3rd subject's concurrency.
	p := subj(quota.ScopeDeployment, llm.Limits{MaxParallel: 1})
	wantAllowed(t, admit(t, s, c, p))
	wantRefused(t, admit(t, s, c, a, subj(quota.ScopeOwner, llm.Limits{RPM: 5}), p), 2, quota.LimitParallel, 0)
	check("parallel")
	// By the 2nd subject's budget.
	bb := subj(quota.ScopeOwner, llm.Limits{Budget: budget(0, 50, llm.PeriodDay)})
	seeded(t, s, clock, bb, 0, 0)
	_, end := llm.PeriodBounds(llm.PeriodDay, base)
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 100, Parallel: true}, a, bb), 1, quota.LimitBudgetTokens, 0)
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 40}, bb))
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 20, Parallel: true}, a, bb), 1, quota.LimitBudgetTokens, end.Sub(base))
	st := peek1(t, s, a)
	eq(t, "rpm of a", st.RPM.Remaining, 10)
	eq(t, "tpm of a", st.TPM.Remaining, 1000)
	eq(t, "slots of a", st.Parallel.InUse, 0)
	// By the 2nd subject's missing budget.
	miss := subj(quota.ScopeOwner, llm.Limits{Budget: budget(1, 0, llm.PeriodDay)})
	d = admit(t, s, c, a, miss)
	if d.Allowed || len(d.NeedSeed) != 1 || d.NeedSeed[0] != 1 {
		t.Fatalf("want NeedSeed [1]: %+v", d)
	}
	check("need seed")
}

// testRefusalLeavesNoBucket: a refused admission leaves no trace on the
// subjects that would have admitted it: raising their limit afterwards
// finds them full at the new limit.
func testRefusalLeavesNoBucket(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	a := subj(quota.ScopeKey, llm.Limits{RPM: 10, TPM: 100})
	b := subj(quota.ScopeModel, llm.Limits{RPM: 1})
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1}, b))
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 5}, a, b), 1, quota.LimitRPM, time.Minute)
	clock.Advance(time.Millisecond)
	a.Limits.RPM, a.Limits.TPM = 1000, 100_000
	st := peek1(t, s, a)
	eq(t, "rpm remaining at the raised limit", st.RPM.Remaining, 1000)
	eq(t, "tpm remaining at the raised limit", st.TPM.Remaining, 100_000)
}

func testPeek(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	sub := subj(quota.ScopeKey, llm.Limits{RPM: 10, TPM: 100, MaxParallel: 3})
	for range 3 {
		st := peek1(t, s, sub)
		if st.RPM != (quota.Window{Limit: 10, Remaining: 10}) || st.TPM != (quota.Window{Limit: 100, Remaining: 100}) || st.Parallel != (quota.Gauge{Limit: 3}) || st.Budget.Period != "" {
			t.Fatalf("fresh: %+v", st)
		}
	}
	for i := range 10 {
		wantAllowed(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 10, Parallel: i < 2}, sub))
		peek1(t, s, sub)
	}
	st := peek1(t, s, sub)
	if st.RPM.Remaining != 0 || st.TPM.Remaining != 0 || st.Parallel.InUse != 2 {
		t.Fatalf("after 10: %+v", st)
	}
	clock.Advance(6 * time.Second)
	for range 3 {
		st = peek1(t, s, sub)
		eq(t, "rpm after 6s", st.RPM.Remaining, 1)
		eq(t, "tpm after 6s", st.TPM.Remaining, 10)
	}
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 10}, sub))
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 10}, sub), 0, quota.LimitRPM, 6*time.Second)
	// A subject without limits, and no subjects.
	none := peek1(t, s, subj(quota.ScopeKey, llm.Limits{}))
	if none != (quota.State{}) {
		t.Fatalf("no limits: %+v", none)
	}
	if st, err := s.Peek(ctx(t), nil); err != nil || len(st) != 0 {
		t.Fatalf("Peek(nil) = %v, %v", st, err)
	}
	b := subj(quota.ScopeKey, llm.Limits{Budget: budget(3, 0, llm.PeriodDay)})
	bs := peek1(t, s, b).Budget
	start, end := llm.PeriodBounds(llm.PeriodDay, clock.Now())
	if !bs.Missing || bs.Period != llm.PeriodDay || !bs.Start.Equal(start) || !bs.End.Equal(end) || bs.LimitMicros != 3_000_000 {
		t.Fatalf("unseeded budget: %+v", bs)
	}
}

func testSeveralSubjects(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	subs := []quota.Subject{
		subj(quota.ScopeKey, llm.Limits{RPM: 3}),
		subj(quota.ScopeOwner, llm.Limits{RPM: 4, TPM: 1000}),
		subj(quota.ScopeModel, llm.Limits{TPM: 500, MaxParallel: 2}),
		subj(quota.ScopeDeployment, llm.Limits{RPM: 5, Budget: budget(1, 0, llm.PeriodWeek)}),
	}
	seeded(t, s, clock, subs[3], 10, 0)
	d := admit(t, s, quota.Charge{Requests: 1, Tokens: 100, CostMicros: 20, Parallel: true}, subs...)
	wantAllowed(t, d)
	eq(t, "0 rpm", d.States[0].RPM.Remaining, 2)
	eq(t, "1 rpm", d.States[1].RPM.Remaining, 3)
	eq(t, "1 tpm", d.States[1].TPM.Remaining, 900)
	eq(t, "2 tpm", d.States[2].TPM.Remaining, 400)
	eq(t, "2 slots", d.States[2].Parallel.InUse, 1)
	eq(t, "3 rpm", d.States[3].RPM.Remaining, 4)
	eq(t, "3 reserved", d.States[3].Budget.ReservedMicros, 20)
	eq(t, "3 spent", d.States[3].Budget.SpentMicros, 10)
	eqTime(t, "now", d.Now, base)
	got := peek(t, s, subs...)
	for i := range got {
		if got[i] != d.States[i] {
			t.Fatalf("peek %d: %+v, admission said %+v", i, got[i], d.States[i])
		}
	}
	// Admit with no subjects admits.
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1}))
}

// Abuse ------------------------------------------------------------------

func testOddSubjects(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	odd := []string{"", "{", "}", "{a}{b}", "}{", "a:b:{c}", "ключ🙂", "\x00\xff", strings.Repeat("x", 1024), "sluice:q:{key:0}"}
	var subs []quota.Subject
	for _, id := range odd {
		subs = append(subs, quota.Subject{Scope: quota.ScopeOwner, ID: id + fmt.Sprint(rand.Int64()), Limits: llm.Limits{RPM: 1, MaxParallel: 1}})
	}
	for i, sub := range subs {
		wantAllowed(t, admit(t, s, quota.Charge{Requests: 1}, sub))
		wantRefused(t, admit(t, s, quota.Charge{Requests: 1}, sub), 0, quota.LimitRPM, time.Minute)
		if i > 0 {
			eq(t, "previous subject", peek1(t, s, subs[i-1]).RPM.Remaining, 0)
		}
	}
	// Odd reservation ids, a 1 KiB one included.
	clock.Advance(time.Hour)
	for _, id := range []string{"", "|", "a|1|2|3", strings.Repeat("é", 600), "v:x", "{x}"} {
		sub := subs[0]
		r := &quota.AdmitRequest{ID: id, Subjects: []quota.Subject{sub}, Charge: quota.Charge{Parallel: true}}
		wantAllowed(t, admitReq(t, s, r))
		wantRefused(t, admitReq(t, s, &quota.AdmitRequest{ID: id + "2", Subjects: []quota.Subject{sub}, Charge: quota.Charge{Parallel: true}}), 0, quota.LimitParallel, 0)
		settle(t, s, &quota.Settlement{ID: id, Subjects: r.Subjects, Reserved: r.Charge})
		eq(t, "slots after settle of "+id, peek1(t, s, sub).Parallel.InUse, 0)
	}
}

func testOddCharges(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	sub := subj(quota.ScopeKey, llm.Limits{RPM: 10, TPM: 100, MaxParallel: 1, Budget: budget(1, 100, llm.PeriodDay)})
	seeded(t, s, clock, sub, 0, 0)
	d := admit(t, s, quota.Charge{Requests: -5, Tokens: -100, CostMicros: -1}, sub)
	wantAllowed(t, d)
	st := d.States[0]
	if st.RPM.Remaining != 10 || st.TPM.Remaining != 100 || st.Budget.ReservedMicros != 0 || st.Budget.ReservedTokens != 0 {
		t.Fatalf("negative charge took something: %+v", st)
	}
	wantAllowed(t, admit(t, s, quota.Charge{}, sub))
	settle(t, s, &quota.Settlement{ID: "neg", Subjects: []quota.Subject{sub}, Reserved: quota.Charge{Tokens: -50}, Actual: quota.Charge{Tokens: -100, CostMicros: -100}})
	st = peek1(t, s, sub)
	if st.TPM.Remaining != 100 || st.Budget.SpentMicros != 0 || st.Budget.SpentTokens != 0 {
		t.Fatalf("negative settlement changed something: %+v", st)
	}
	// Odd TTLs: negative means the default; huge is capped.
	r := &quota.AdmitRequest{ID: "ttl", Subjects: []quota.Subject{sub}, Charge: quota.Charge{Parallel: true}, TTL: -time.Hour}
	wantAllowed(t, admitReq(t, s, r))
	clock.Advance(15*time.Minute - time.Microsecond)
	eq(t, "slot before default ttl", peek1(t, s, sub).Parallel.InUse, 1)
	clock.Advance(time.Microsecond)
	eq(t, "slot after default ttl", peek1(t, s, sub).Parallel.InUse, 0)
	r = &quota.AdmitRequest{ID: "ttl2", Subjects: []quota.Subject{sub}, Charge: quota.Charge{Parallel: true}, TTL: time.Duration(math.MaxInt64)}
	wantAllowed(t, admitReq(t, s, r))
	clock.Advance(quota.MaxTTL)
	eq(t, "slot after max ttl", peek1(t, s, sub).Parallel.InUse, 0)
}

func testHugeValues(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	const top = llm.MaxRateLimit
	sub := subj(quota.ScopeKey, llm.Limits{RPM: top, TPM: top, MaxParallel: llm.MaxParallel, Budget: budget(llm.MaxBudgetUSD, llm.MaxBudgetToken, llm.PeriodMonth)})
	seeded(t, s, clock, sub, 1e15-1, 1e12-top)
	d := admit(t, s, quota.Charge{Requests: top, Tokens: top, CostMicros: 1, Parallel: true}, sub)
	wantAllowed(t, d)
	if st := d.States[0]; st.RPM.Remaining != 0 || st.TPM.Remaining != 0 || st.TPM.Reset != time.Minute || st.Budget.ReservedMicros != 1 || st.Budget.ReservedTokens != top {
		t.Fatalf("after the biggest charge: %+v", st)
	}
	settle(t, s, &quota.Settlement{ID: "h", Subjects: []quota.Subject{sub}, Reserved: quota.Charge{Tokens: 0}, Actual: quota.Charge{Tokens: math.MaxInt64}})
	st := peek1(t, s, sub)
	eq(t, "tpm in the deepest debt", st.TPM.Remaining, -top)
	eq(t, "tpm reset in the deepest debt", st.TPM.Reset, 2*time.Minute)
	// 1 token after -1e8: (1+1e8)×60e6/1e8 µs = 60.0000006s, rounded up to the µs.
	wantRefused(t, admit(t, s, quota.Charge{Tokens: 1}, sub), 0, quota.LimitTPM, 60000001*time.Microsecond)
	clock.Advance(time.Microsecond)
	st = peek1(t, s, sub)
	eq(t, "rpm after 1µs", st.RPM.Remaining, 1) // 1e8 units/µs = 1.67 requests
	eq(t, "rpm reset after 1µs", st.RPM.Reset, time.Minute-time.Microsecond)
	eq(t, "tpm after 1µs", st.TPM.Remaining, -top+1)
	clock.Advance(2 * time.Minute)
	st = peek1(t, s, sub)
	eq(t, "tpm after 2m", st.TPM.Remaining, top)
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, Tokens: math.MaxInt64, CostMicros: math.MaxInt64}, sub), 0, quota.LimitTPM, 0)
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 1, CostMicros: math.MaxInt64}, sub), 0, quota.LimitBudgetUSD, 0)
	_, end := llm.PeriodBounds(llm.PeriodMonth, clock.Now())
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1, Tokens: 1, CostMicros: 1}, sub), 0, quota.LimitBudgetUSD, end.Sub(clock.Now()))
}

func testOddLimits(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	// Above the bounds: held at the bounds. Negative: no limit.
	over := subj(quota.ScopeKey, llm.Limits{RPM: 1 << 60, TPM: math.MaxInt64, MaxParallel: math.MaxInt64})
	d := admit(t, s, quota.Charge{Requests: 1, Tokens: 1, Parallel: true}, over)
	wantAllowed(t, d)
	eq(t, "rpm limit held", d.States[0].RPM.Limit, llm.MaxRateLimit)
	eq(t, "rpm remaining", d.States[0].RPM.Remaining, llm.MaxRateLimit-1)
	neg := subj(quota.ScopeKey, llm.Limits{RPM: -1, TPM: -5, MaxParallel: -1, Budget: budget(-1, -1, "")})
	d = admit(t, s, quota.Charge{Requests: 1, Tokens: 1, Parallel: true}, neg)
	wantAllowed(t, d)
	if d.States[0] != (quota.State{}) {
		t.Fatalf("negative limits: %+v", d.States[0])
	}
	nan := subj(quota.ScopeKey, llm.Limits{Budget: budget(math.NaN(), 0, "")})
	wantAllowed(t, admit(t, s, quota.Charge{Requests: 1}, nan))
	inf := subj(quota.ScopeKey, llm.Limits{Budget: budget(math.Inf(1), math.MaxInt64, "bogus")})
	d = admit(t, s, quota.Charge{Requests: 1}, inf)
	if len(d.NeedSeed) != 1 {
		t.Fatalf("huge budget: want NeedSeed, got %+v", d)
	}
	if bs := d.States[0].Budget; bs.LimitMicros != llm.MaxBudgetUSD*1_000_000 || bs.LimitTokens != llm.MaxBudgetToken || bs.Period != llm.PeriodMonth {
		t.Fatalf("huge budget: %+v", bs)
	}
}

// testSubjectTwice: a subject listed twice is charged twice, atomically.
func testSubjectTwice(t *testing.T, newStore NewStore) {
	clock := NewClock(base)
	s := newStore(t, clock.Now)
	sub := subj(quota.ScopeKey, llm.Limits{RPM: 3, MaxParallel: 2})
	r := &quota.AdmitRequest{ID: rid(), Subjects: []quota.Subject{sub, sub}, Charge: quota.Charge{Requests: 1, Parallel: true}}
	d := admitReq(t, s, r)
	wantAllowed(t, d)
	eq(t, "rpm", d.States[1].RPM.Remaining, 1)
	eq(t, "slots", d.States[1].Parallel.InUse, 2)
	wantRefused(t, admit(t, s, quota.Charge{Requests: 1}, sub, sub), 1, quota.LimitRPM, 20*time.Second)
	eq(t, "rpm after refusal", peek1(t, s, sub).RPM.Remaining, 1)
	settle(t, s, &quota.Settlement{ID: r.ID, Subjects: r.Subjects, Reserved: r.Charge})
	eq(t, "slots after settle", peek1(t, s, sub).Parallel.InUse, 0)
}
