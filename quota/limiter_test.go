package quota

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// flakyStore wraps a Memory store and fails every call while down is set.
type flakyStore struct {
	*Memory
	down  atomic.Bool
	calls atomic.Int32
}

var errDown = errors.New("connection refused")

func (f *flakyStore) Admit(ctx context.Context, r *AdmitRequest) (Decision, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return Decision{}, errDown
	}
	return f.Memory.Admit(ctx, r)
}

func (f *flakyStore) Settle(ctx context.Context, s *Settlement) error {
	f.calls.Add(1)
	if f.down.Load() {
		return errDown
	}
	return f.Memory.Settle(ctx, s)
}

func (f *flakyStore) Seed(ctx context.Context, s []Seed) error {
	if f.down.Load() {
		return errDown
	}
	return f.Memory.Seed(ctx, s)
}

// spendFunc is a SpendSource.
type spendFunc func(scope, id string, since time.Time) (int64, int64, error)

func (f spendFunc) SpendSince(_ context.Context, scope, id string, since time.Time) (int64, int64, error) {
	return f(scope, id, since)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)} }

func key(id string, l llm.Limits) *llm.Key { return &llm.Key{ID: id, Name: id, Limits: l} }

func model(inPrice, outPrice float64) *llm.Model {
	return &llm.Model{Name: "m", Deployments: []llm.Deployment{
		{ID: "d1", Prices: llm.Prices{InputPerMTok: inPrice, OutputPerMTok: outPrice}},
		{ID: "d2", Prices: llm.Prices{InputPerMTok: inPrice / 2, OutputPerMTok: outPrice / 2}},
	}}
}

func newTestLimiter(t *testing.T, o Options) *Limiter {
	t.Helper()
	l := NewLimiter(o)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.Close(ctx)
	})
	return l
}

func TestNoLimitsNoReservation(t *testing.T) {
	l := newTestLimiter(t, Options{})
	called := false
	res, e := l.Admit(context.Background(), &Request{ID: "r1", Key: key("k", llm.Limits{}), Model: model(1, 2),
		PromptTokens: func() int { called = true; return 5 }})
	if res != nil || e != nil || called {
		t.Fatalf("res %v e %v prompt counted %v", res, e, called)
	}
}

func TestRPMRefusalNamesLimitAndSetsHeaders(t *testing.T) {
	c := newClock()
	l := newTestLimiter(t, Options{Now: c.now, Store: NewMemory(c.now)})
	k := key("key_1", llm.Limits{RPM: 2})
	counted := 0
	req := func(id string) *Request {
		return &Request{ID: id, Key: k, PromptTokens: func() int { counted++; return 10 }}
	}
	for i := range 2 {
		res, e := l.Admit(context.Background(), req("r"+string(rune('a'+i))))
		if e != nil || res == nil {
			t.Fatalf("admit %d: %v", i, e)
		}
		h := http.Header{}
		res.Headers(h)
		if h.Get("X-Ratelimit-Limit-Requests") != "2" || h.Get("X-Ratelimit-Remaining-Requests") != string(rune('1'-i)) ||
			h.Get("X-Ratelimit-Reset-Requests") == "" || h.Get("X-Ratelimit-Limit-Tokens") != "" {
			t.Fatalf("admit %d headers %v", i, h)
		}
		res.Settle(llm.Usage{PromptTokens: 3}, 0)
	}
	res, e := l.Admit(context.Background(), req("rz"))
	if e == nil || e.Status != 429 || e.Type != "rate_limit_error" || !strings.Contains(e.Message, `key "key_1"`) ||
		!strings.Contains(e.Message, "rpm") || e.RetryAfter <= 0 || e.RetryAfter > 30*time.Second || e.NoRetry {
		t.Fatalf("refusal %+v", e)
	}
	h := http.Header{}
	res.Headers(h)
	if h.Get("X-Ratelimit-Remaining-Requests") != "0" {
		t.Fatalf("refusal headers %v", h)
	}
	if counted != 0 {
		t.Fatalf("prompt counted %d times for an rpm-only key", counted)
	}
	c.add(30 * time.Second) // one request refills
	if _, e := l.Admit(context.Background(), req("ry")); e != nil {
		t.Fatalf("after refill: %v", e)
	}
}

func TestBudgetRefusalIsInsufficientQuota(t *testing.T) {
	c := newClock()
	l := newTestLimiter(t, Options{Now: c.now, Store: NewMemory(c.now)})
	k := key("key_b", llm.Limits{Budget: &llm.Budget{USD: 1, Period: llm.PeriodDay}})
	m := model(1_000, 1_000) // $0.001 per token
	// 100 prompt + 400 output = 500 tokens = $0.50 worst case.
	r := &Request{ID: "a", Key: k, Model: m, PromptTokens: func() int { return 100 }, MaxTokens: 400}
	res, e := l.Admit(context.Background(), r)
	if e != nil {
		t.Fatal(e)
	}
	if res.charge.CostMicros != 500_000 || res.charge.Tokens != 500 {
		t.Fatalf("charge %+v", res.charge)
	}
	r2 := *r
	r2.ID = "b"
	if _, e := l.Admit(context.Background(), &r2); e != nil {
		t.Fatal(e)
	}
	r3 := *r
	r3.ID = "c"
	_, e = l.Admit(context.Background(), &r3)
	if e == nil || e.Status != 429 || e.Type != "insufficient_quota" || e.Code != "insufficient_quota" || !e.NoRetry ||
		!strings.Contains(e.Message, "$1.00 per day") || !strings.Contains(e.Message, "2026-11-30T00:00:00Z") {
		t.Fatalf("refusal %+v", e)
	}
	if e.RetryAfter != 12*time.Hour {
		t.Fatalf("retry after %s, want 12h (to the end of the day)", e.RetryAfter)
	}
	// Settling the first for less frees budget for the third.
	res.Settle(llm.Usage{PromptTokens: 100, CompletionTokens: 10}, 0)
	waitFor(t, func() bool {
		_, e := l.Admit(context.Background(), &r3)
		return e == nil
	})
}

func TestBudgetRebuiltOnceFromUsageRecords(t *testing.T) {
	c := newClock()
	var calls atomic.Int32
	gate := make(chan struct{})
	spend := spendFunc(func(scope, id string, since time.Time) (int64, int64, error) {
		calls.Add(1)
		<-gate
		if scope != "key" || id != "key_s" || !since.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("SpendSince(%s, %s, %s)", scope, id, since)
		}
		return 900_000, 0, nil // $0.90 already spent this month
	})
	l := newTestLimiter(t, Options{Now: c.now, Store: NewMemory(c.now), Spend: spend})
	k := key("key_s", llm.Limits{Budget: &llm.Budget{USD: 1}})
	m := model(1_000, 1_000)
	var wg sync.WaitGroup
	var admitted atomic.Int32
	for i := range 8 {
		wg.Go(func() {
			_, e := l.Admit(context.Background(), &Request{ID: "r" + string(rune('a'+i)), Key: k, Model: m,
				PromptTokens: func() int { return 10 }, MaxTokens: 10})
			if e == nil {
				admitted.Add(1)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	// $0.10 left, $0.02 per request: 5 admitted.
	if calls.Load() != 1 || admitted.Load() != 5 {
		t.Fatalf("SpendSince called %d times, %d admitted; want 1 and 5", calls.Load(), admitted.Load())
	}
}

func TestRebuildFailureFailsClosed(t *testing.T) {
	spend := spendFunc(func(string, string, time.Time) (int64, int64, error) { return 0, 0, errors.New("db down") })
	l := newTestLimiter(t, Options{Spend: spend})
	_, e := l.Admit(context.Background(), &Request{ID: "x", Key: key("k", llm.Limits{Budget: &llm.Budget{Tokens: 100}}), MaxTokens: 1})
	if e == nil || e.Status != 503 || e.Code != "quota_unavailable" {
		t.Fatalf("%+v", e)
	}
}

func TestFailModes(t *testing.T) {
	c := newClock()
	fs := &flakyStore{Memory: NewMemory(c.now)}
	l := newTestLimiter(t, Options{Now: c.now, Store: fs, Shared: true})
	l.SetReplicas(2)
	ctx := context.Background()
	// A budget that fails open, used once while the store is up (so its
	// counters exist there).
	bo := key("k_bo", llm.Limits{Budget: &llm.Budget{Tokens: 1000, FailMode: llm.FailOpen}})
	first, e := l.Admit(ctx, &Request{ID: "b0", Key: bo, MaxTokens: 1})
	if e != nil {
		t.Fatal(e)
	}
	first.Settle(llm.Usage{}, 0)
	waitFor(t, func() bool { return l.settles.len() == 0 })
	fs.down.Store(true)

	// Rate limits fail open at limit ÷ replicas.
	k := key("k_open", llm.Limits{RPM: 10})
	admitted := 0
	for i := range 8 {
		if res, e := l.Admit(ctx, &Request{ID: "o" + string(rune('a'+i)), Key: k}); e == nil {
			admitted++
			res.Settle(llm.Usage{}, 0)
		}
	}
	if admitted != 5 {
		t.Fatalf("fail-open admitted %d, want 5 (10 rpm ÷ 2 replicas)", admitted)
	}
	// A rate limit that fails closed refuses with 503.
	_, e = l.Admit(ctx, &Request{ID: "c1", Key: key("k_closed", llm.Limits{RPM: 10, FailMode: llm.FailClosed})})
	if e == nil || e.Status != 503 || e.Code != "quota_unavailable" || e.RetryAfter != time.Second {
		t.Fatalf("closed: %+v", e)
	}
	// Budgets fail closed by default, open when asked.
	_, e = l.Admit(ctx, &Request{ID: "b1", Key: key("k_b", llm.Limits{Budget: &llm.Budget{Tokens: 1000}}), MaxTokens: 1})
	if e == nil || e.Status != 503 {
		t.Fatalf("budget default: %+v", e)
	}
	res, e := l.Admit(ctx, &Request{ID: "b2", Key: bo, MaxTokens: 1})
	if e != nil {
		t.Fatalf("budget open: %+v", e)
	}
	// Its spend reaches the shared store once it is back.
	res.Settle(llm.Usage{PromptTokens: 7, CompletionTokens: 3}, 0)
	fs.down.Store(false)
	c.add(2 * time.Second) // the breaker lets a probe through
	waitFor(t, func() bool {
		st, err := fs.Memory.Peek(ctx, []Subject{{Scope: ScopeKey, ID: "k_bo", Limits: llm.Limits{Budget: &llm.Budget{Tokens: 1000}}}})
		return err == nil && !st[0].Budget.Missing && st[0].Budget.SpentTokens == 10
	})
}

func TestBreakerSparesADeadStore(t *testing.T) {
	c := newClock()
	fs := &flakyStore{Memory: NewMemory(c.now)}
	fs.down.Store(true)
	l := newTestLimiter(t, Options{Now: c.now, Store: fs, Shared: true})
	k := key("k", llm.Limits{RPM: 1000})
	for i := range 20 {
		l.Admit(context.Background(), &Request{ID: "r" + string(rune('a'+i)), Key: k})
	}
	if n := fs.calls.Load(); n != breakerFailures {
		t.Fatalf("store called %d times while down, want %d (then the breaker opens)", n, breakerFailures)
	}
	c.add(breakerOpenFor + time.Millisecond)
	fs.down.Store(false)
	res, e := l.Admit(context.Background(), &Request{ID: "probe", Key: k})
	if e != nil || res.local {
		t.Fatalf("probe after the open period: %v local=%v", e, res != nil && res.local)
	}
}

func TestSettleRetriedUntilStoreReturns(t *testing.T) {
	c := newClock()
	fs := &flakyStore{Memory: NewMemory(c.now)}
	l := newTestLimiter(t, Options{Now: c.now, Store: fs, Shared: true})
	k := key("k_p", llm.Limits{MaxParallel: 1})
	res, e := l.Admit(context.Background(), &Request{ID: "p1", Key: k})
	if e != nil {
		t.Fatal(e)
	}
	fs.down.Store(true)
	res.Settle(llm.Usage{}, 0)
	res.Settle(llm.Usage{}, 0) // twice: the second does nothing
	time.Sleep(100 * time.Millisecond)
	st, _ := fs.Memory.Peek(context.Background(), []Subject{{Scope: ScopeKey, ID: "k_p", Limits: k.Limits}})
	if st[0].Parallel.InUse != 1 {
		t.Fatalf("in use %d while the store is down, want 1", st[0].Parallel.InUse)
	}
	fs.down.Store(false)
	c.add(2 * time.Second)
	waitFor(t, func() bool {
		st, _ := fs.Memory.Peek(context.Background(), []Subject{{Scope: ScopeKey, ID: "k_p", Limits: k.Limits}})
		return st[0].Parallel.InUse == 0
	})
}

func TestTooBigForTPM(t *testing.T) {
	l := newTestLimiter(t, Options{})
	_, e := l.Admit(context.Background(), &Request{ID: "x", Key: key("k", llm.Limits{TPM: 1000}), PromptTokens: func() int { return 10 }, MaxTokens: 5000})
	if e == nil || e.Status != 429 || !e.NoRetry || !strings.Contains(e.Message, "lower max_tokens") {
		t.Fatalf("%+v", e)
	}
}

func TestChargeCountsChoicesAndDefaults(t *testing.T) {
	l := newTestLimiter(t, Options{DefaultOutputTokens: 100})
	subs := []Subject{{Limits: llm.Limits{TPM: 1 << 20}}}
	if c := l.charge(&Request{PromptTokens: func() int { return 5 }}, subs); c.Tokens != 105 {
		t.Fatalf("default output: %+v", c)
	}
	if c := l.charge(&Request{PromptTokens: func() int { return 5 }, MaxTokens: 10, Choices: 3}, subs); c.Tokens != 35 {
		t.Fatalf("n=3: %+v", c)
	}
	if c := l.charge(&Request{PromptTokens: func() int { return 5 }, MaxTokens: 10, Embedding: true}, subs); c.Tokens != 5 {
		t.Fatalf("embedding: %+v", c)
	}
	if c := l.charge(&Request{PromptTokens: func() int { return -5 }, MaxTokens: 1 << 62, Choices: 1 << 30}, subs); c.Tokens != 1<<40 {
		t.Fatalf("hostile sizes: %+v", c)
	}
}

func TestHeadersPickTightest(t *testing.T) {
	r := &Reservation{states: []State{
		{RPM: Window{Limit: 100, Remaining: 50, Reset: 30 * time.Second}, TPM: Window{Limit: 1000, Remaining: -5, Reset: 90 * time.Second}},
		{RPM: Window{Limit: 10, Remaining: 3, Reset: 1500 * time.Millisecond}},
	}}
	h := http.Header{}
	r.Headers(h)
	want := map[string]string{"X-Ratelimit-Limit-Requests": "10", "X-Ratelimit-Remaining-Requests": "3", "X-Ratelimit-Reset-Requests": "1.5s",
		"X-Ratelimit-Limit-Tokens": "1000", "X-Ratelimit-Remaining-Tokens": "0", "X-Ratelimit-Reset-Tokens": "1m30s"}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	var nilRes *Reservation
	nilRes.Headers(h) // no panic
	nilRes.Settle(llm.Usage{}, 0)
}

func TestDeploymentAdmission(t *testing.T) {
	l := newTestLimiter(t, Options{})
	d := &llm.Deployment{ID: "dep_1", Limits: llm.Limits{RPM: 1}}
	r := &Request{ID: "x"}
	if _, e := l.AdmitDeployment(context.Background(), r, d); e != nil {
		t.Fatal(e)
	}
	_, e := l.AdmitDeployment(context.Background(), &Request{ID: "y"}, d)
	if e == nil || !strings.Contains(e.Message, `deployment "dep_1"`) {
		t.Fatalf("%+v", e)
	}
	if res, e := l.AdmitDeployment(context.Background(), r, &llm.Deployment{ID: "free"}); res != nil || e != nil {
		t.Fatal("a deployment without limits needs no admission")
	}
}

func TestUSDRendering(t *testing.T) {
	for micros, want := range map[int64]string{0: "0.00", 1_000_000: "1.00", 1_500_000: "1.50", 123: "0.000123", 990_000: "0.99"} {
		if got := usd(micros); got != want {
			t.Errorf("usd(%d) = %s, want %s", micros, got, want)
		}
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRPMOnlySettlesNothing: a request limited only by rpm (which is never
// refunded) costs the store one call, not two.
func TestRPMOnlySettlesNothing(t *testing.T) {
	c := newClock()
	fs := &flakyStore{Memory: NewMemory(c.now)}
	l := newTestLimiter(t, Options{Now: c.now, Store: fs, Shared: true})
	res, e := l.Admit(context.Background(), &Request{ID: "a", Key: key("k", llm.Limits{RPM: 5})})
	if e != nil {
		t.Fatal(e)
	}
	res.Settle(llm.Usage{PromptTokens: 3}, 0)
	time.Sleep(50 * time.Millisecond)
	if n := fs.calls.Load(); n != 1 {
		t.Fatalf("store calls %d, want 1 (the admission)", n)
	}
	// With tpm, the true-up is a call.
	res, _ = l.Admit(context.Background(), &Request{ID: "b", Key: key("k2", llm.Limits{RPM: 5, TPM: 1000}), PromptTokens: func() int { return 3 }, MaxTokens: 10})
	res.Settle(llm.Usage{PromptTokens: 3, CompletionTokens: 2}, 0)
	waitFor(t, func() bool { return fs.calls.Load() == 3 })
}

// TestCanceledCallerNeitherHealsNorFailsTheBreaker: a call whose client
// left is not a success (it used to reset the failure count) and does not
// hold the half-open probe forever.
func TestCanceledCallerNeitherHealsNorFailsTheBreaker(t *testing.T) {
	c := newClock()
	fs := &flakyStore{Memory: NewMemory(c.now)}
	fs.down.Store(true)
	l := newTestLimiter(t, Options{Now: c.now, Store: fs, Shared: true})
	k := key("k", llm.Limits{RPM: 1000})
	l.Admit(context.Background(), &Request{ID: "a", Key: k})
	l.Admit(context.Background(), &Request{ID: "b", Key: k})
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	l.Admit(gone, &Request{ID: "c", Key: k})
	l.Admit(context.Background(), &Request{ID: "d", Key: k})
	l.Admit(context.Background(), &Request{ID: "d2", Key: k}) // the breaker is open: not sent
	if n := fs.calls.Load(); n != breakerFailures+1 {
		t.Fatalf("store called %d times, want %d: the canceled call must not reset the failures", n, breakerFailures+1)
	}
	// Open now. After the open period a canceled probe frees the probe slot.
	c.add(breakerOpenFor + time.Millisecond)
	l.Admit(gone, &Request{ID: "e", Key: k})
	fs.down.Store(false)
	if res, e := l.Admit(context.Background(), &Request{ID: "f", Key: k}); e != nil || res.local {
		t.Fatalf("after a canceled probe the next call must probe the store: %v", e)
	}
}
