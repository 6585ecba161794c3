package quota

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// SpendSource sums recorded usage, to rebuild budget counters that are
// missing from the store. *store.Store is one.
type SpendSource interface {
	// SpendSince returns the cost in micro-USD and the prompt+completion
	// tokens of the usage records of one subject (scope "key", "owner",
	// "model" or "deployment") since the given time.
	SpendSince(ctx context.Context, scope, id string, since time.Time) (micros, tokens int64, err error)
}

// Options configure a Limiter.
type Options struct {
	// Store keeps the counters. Nil means an in-process Memory store.
	Store Store
	// Shared is true when Store is shared with other replicas over the
	// network (Redis): then its failures are met by each limit's fail
	// mode, rate limits falling back to a local store at limit ÷ replicas.
	Shared bool
	// Spend rebuilds missing budget counters. Nil treats a missing budget
	// as unspent (tests only).
	Spend SpendSource
	// Timeout bounds each store call on the request path. Default 250ms: generous for a loaded replica in a burst (a refused connection fails at once, and the breaker spares the rest), since every timeout is a fail-mode decision.
	Timeout time.Duration
	// SeedTimeout bounds rebuilding a budget from the usage records.
	// Default 5s.
	SeedTimeout time.Duration
	// TTL bounds an unsettled reservation. Default 15 minutes.
	TTL time.Duration
	// DefaultOutputTokens is the completion reserved for a request that
	// sets no max_tokens. Default 4096.
	DefaultOutputTokens int
	// Metrics may be nil.
	Metrics *Metrics
	// Logger may be nil.
	Logger *slog.Logger
	// Now is the local clock (breaker, local fallback). Default time.Now.
	Now func() time.Time
	// OnHeadroom, when set, is called after every admission on a
	// deployment's own limits that the shared counters decided (not the
	// local fallback), with the deployment's headroom (what its provider
	// account has left); the server hands it to the balancer. It must not
	// block.
	OnHeadroom func(id string, h Headroom)
}

// Limiter admits requests against every limit that applies to them: the
// key's, its owner's, the model's (and, per attempt, the deployment's), in
// one store call, and settles them when they end. It implements the
// router's admission phase (server adapts the two).
type Limiter struct {
	o        Options
	local    *Memory // fail-open fallback of a shared store
	replicas atomic.Int64
	br       breaker
	seeds    flight
	rooms    rooms
	settles  *settleFIFO
	wg       sync.WaitGroup
	closed   chan struct{}
	once     sync.Once
}

// NewLimiter returns a Limiter; call Close when done with it.
func NewLimiter(o Options) *Limiter {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Store == nil {
		o.Store, o.Shared = NewMemory(o.Now), false
	}
	if o.Timeout <= 0 {
		o.Timeout = 250 * time.Millisecond
	}
	if o.SeedTimeout <= 0 {
		o.SeedTimeout = 5 * time.Second
	}
	if o.TTL <= 0 {
		o.TTL = 15 * time.Minute
	}
	if o.DefaultOutputTokens <= 0 {
		o.DefaultOutputTokens = 4096
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	l := &Limiter{o: o, local: NewMemory(o.Now), settles: newSettleFIFO(settleQueue, settleWorkers), closed: make(chan struct{})}
	l.replicas.Store(1)
	l.br.now = o.Now
	for range settleWorkers {
		l.wg.Add(1)
		go l.settleLoop()
	}
	return l
}

// Settlement queue: settles run off the request path, a few at a time,
// and are retried while the store is unreachable (a queue this long
// covers minutes of an outage at thousands of requests per second).
const (
	settleQueue   = 1 << 16
	settleWorkers = 4
)

// SetReplicas tells the limiter how many replicas share the store, for
// the local fallback's share of each rate limit.
func (l *Limiter) SetReplicas(n int) {
	if n < 1 {
		n = 1
	}
	l.replicas.Store(int64(n))
	l.o.Metrics.replicas.Set(float64(n))
}

// Close stops the settle workers after draining what is queued, waiting
// at most until ctx ends.
func (l *Limiter) Close(ctx context.Context) {
	l.once.Do(func() { close(l.closed) })
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Request is what admission knows about one request.
type Request struct {
	// ID names the reservation: the gateway's request id.
	ID string
	// Key, Owner and Model are the configuration the request resolved to;
	// each may be nil. Their limits apply.
	Key   *llm.Key
	Owner *llm.Owner
	Model *llm.Model
	// Subject, when its Limits are set, is a JWT principal's own subject
	// (ScopeSubject): each principal of an issuer has its own counters.
	Subject Subject
	// PromptTokens estimates the prompt; it is called only when a token
	// or money limit applies, at most once.
	PromptTokens func() int
	// MaxTokens is the client's output bound (0: none) and Choices its n
	// (0: 1).
	MaxTokens, Choices int
	// Embedding requests produce no completion.
	Embedding bool
}

// subjects lists the subjects of r that have limits.
func (r *Request) subjects() []Subject {
	var s []Subject
	if r.Key != nil && !r.Key.Limits.IsZero() {
		s = append(s, Subject{Scope: ScopeKey, ID: r.Key.ID, Limits: r.Key.Limits})
	}
	if !r.Subject.Limits.IsZero() {
		s = append(s, r.Subject)
	}
	if r.Owner != nil && !r.Owner.Limits.IsZero() {
		s = append(s, Subject{Scope: ScopeOwner, ID: r.Owner.Name, Limits: r.Owner.Limits})
	}
	if r.Model != nil && !r.Model.Limits.IsZero() {
		s = append(s, Subject{Scope: ScopeModel, ID: r.Model.Name, Limits: r.Model.Limits})
	}
	return s
}

// needs reports whether any subject counts tokens, and whether any
// counts money.
func needs(subs []Subject) (tokens, money bool) {
	for i := range subs {
		l := &subs[i].Limits
		if l.TPM > 0 || (l.Budget.Active() && l.Budget.Tokens > 0) {
			tokens = true
		}
		if l.Budget.Active() && l.Budget.USDMicros() > 0 {
			tokens, money = true, true
		}
	}
	return tokens, money
}

// charge computes what r reserves.
func (l *Limiter) charge(r *Request, subs []Subject) Charge {
	c := Charge{Requests: 1}
	for i := range subs {
		if subs[i].Limits.MaxParallel > 0 {
			c.Parallel = true
		}
	}
	tokens, money := needs(subs)
	if !tokens {
		return c
	}
	prompt := 0
	if r.PromptTokens != nil {
		prompt = max(r.PromptTokens(), 0)
	}
	out := 0
	if !r.Embedding {
		out = r.MaxTokens
		if out <= 0 {
			out = l.o.DefaultOutputTokens
		}
	}
	c.Tokens = int64(prompt) + mulCap(int64(out), int64(max(r.Choices, 1)), maxReserveTokens)
	if money && r.Model != nil {
		c.CostMicros = worstCost(r.Model, prompt, out)
	}
	return c
}

// maxReserveTokens bounds a reservation's output tokens whatever max_tokens
// and n the client sends.
const maxReserveTokens = 1 << 40

// mulCap is a×b for non-negative a and b, capped at limit.
func mulCap(a, b, limit int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > limit/b {
		return limit
	}
	return min(a*b, limit)
}

// worstCost is the most prompt input and out output tokens can cost on
// any of m's deployments.
func worstCost(m *llm.Model, prompt, out int) int64 {
	var worst int64
	for i := range m.Deployments {
		p := m.Deployments[i].Prices
		in := max(p.InputPerMTok, p.CacheWritePerMTok)
		o := max(p.OutputPerMTok, p.ReasoningPerMTok)
		worst = max(worst, llm.Prices{InputPerMTok: in, OutputPerMTok: o}.Cost(llm.Usage{PromptTokens: prompt, CompletionTokens: out}))
	}
	return worst
}

// Reservation is an admitted request's hold on its limits. Settle it
// exactly once.
type Reservation struct {
	l        *Limiter
	id       string
	subjects []Subject
	charge   Charge
	states   []State
	local    bool // admitted by the local fallback: the shared store took nothing
	settled  atomic.Bool
	// denied and retry are the refusing limit and its Retry-After, for a
	// refusal.
	denied Limit
	retry  time.Duration
}

// Admit checks r against its limits. It returns the reservation (nil when
// no limit applies) or the error to answer with: 429 naming the limit, or
// 503 when the store cannot decide and a limit fails closed. A refusal may
// come with a Reservation too, whose Headers describe the limits; it must
// not be settled.
func (l *Limiter) Admit(ctx context.Context, r *Request) (*Reservation, *llm.Error) {
	return l.admit(ctx, r, r.subjects())
}

// AdmitDeployment admits one attempt of r on deployment d against d's own
// limits; nil when d has none.
func (l *Limiter) AdmitDeployment(ctx context.Context, r *Request, d *llm.Deployment) (*Reservation, *llm.Error) {
	if d.Limits.IsZero() {
		return nil, nil
	}
	res, e := l.admit(ctx, r, []Subject{{Scope: ScopeDeployment, ID: d.ID, Limits: d.Limits}})
	if res != nil && !res.local && len(res.states) == 1 {
		h := l.rooms.observe(d, res.states[0], res.denied, res.retry, l.o.Now())
		if f := l.o.OnHeadroom; f != nil {
			f(d.ID, h)
		}
	}
	return res, e
}

func (l *Limiter) admit(ctx context.Context, r *Request, subs []Subject) (*Reservation, *llm.Error) {
	if len(subs) == 0 {
		return nil, nil
	}
	c := l.charge(r, subs)
	if e := tooBig(subs, c); e != nil {
		l.o.Metrics.decisions.WithLabelValues("refused").Inc()
		return nil, e
	}
	ar := &AdmitRequest{ID: r.ID, Subjects: subs, Charge: c, TTL: l.o.TTL}
	start := time.Now()
	d, err := l.admitShared(ctx, ar)
	l.o.Metrics.check.Observe(time.Since(start).Seconds())
	if err != nil {
		return l.failMode(ar, err)
	}
	res := &Reservation{l: l, id: r.ID, subjects: subs, charge: c, states: d.States}
	if !d.Allowed {
		l.o.Metrics.decisions.WithLabelValues("refused").Inc()
		res.denied, res.retry = d.Limit, d.RetryAfter
		return res, refusal(subs, d, c)
	}
	l.o.Metrics.decisions.WithLabelValues("admitted").Inc()
	return res, nil
}

// admitShared runs the admission on the store, seeding missing budgets
// from the usage records first when it asks for it.
func (l *Limiter) admitShared(ctx context.Context, ar *AdmitRequest) (Decision, error) {
	for round := 0; ; round++ {
		d, err := l.call(ctx, func(ctx context.Context) (Decision, error) { return l.o.Store.Admit(ctx, ar) })
		if err != nil || len(d.NeedSeed) == 0 {
			return d, err
		}
		if round == 2 {
			return d, fmt.Errorf("%w: budget counters still missing after seeding", ErrUnavailable)
		}
		if err := l.seed(ctx, ar.Subjects, d); err != nil {
			return d, err
		}
	}
}

// call runs one store call under the breaker and the timeout.
func (l *Limiter) call(ctx context.Context, f func(context.Context) (Decision, error)) (Decision, error) {
	if !l.o.Shared {
		return f(ctx)
	}
	if !l.br.allow() {
		return Decision{}, errBreakerOpen
	}
	cctx, cancel := context.WithTimeout(ctx, l.o.Timeout)
	d, err := f(cctx)
	cancel()
	switch {
	case err == nil:
		l.br.success()
	case ctx.Err() != nil:
		// The caller left: that says nothing of the store, but a probe
		// it was making must let the next one through.
		l.br.release()
	default:
		l.br.failure()
	}
	return d, err
}

var errBreakerOpen = fmt.Errorf("%w: circuit open after recent failures", ErrUnavailable)

// seed rebuilds the budgets d asks for from the usage records, once per
// subject and period however many requests wait for it.
func (l *Limiter) seed(ctx context.Context, subs []Subject, d Decision) error {
	if len(d.PeriodStarts) != len(d.NeedSeed) {
		return fmt.Errorf("%w: malformed seed request", ErrUnavailable)
	}
	seeds := make([]Seed, 0, len(d.NeedSeed))
	for i, idx := range d.NeedSeed {
		if idx < 0 || idx >= len(subs) {
			return fmt.Errorf("%w: malformed seed request", ErrUnavailable)
		}
		s, start := subs[idx], d.PeriodStarts[i]
		sd, err := l.seeds.do(s.Tag()+"@"+strconv.FormatInt(start.Unix(), 10), func() (Seed, error) {
			sd := Seed{Subject: s, Start: start}
			if l.o.Spend == nil {
				return sd, nil
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.o.SeedTimeout)
			defer cancel()
			var err error
			sd.SpentMicros, sd.SpentTokens, err = l.o.Spend.SpendSince(sctx, string(s.Scope), s.ID, start)
			if err != nil {
				return sd, fmt.Errorf("%w: rebuilding the %s %s budget from usage records: %v", ErrUnavailable, s.Scope, s.ID, err)
			}
			l.o.Metrics.rebuilds.Inc()
			l.o.Logger.Info("quota budget rebuilt from usage records", "scope", s.Scope, "id", s.ID,
				"since", start, "spent_usd", float64(sd.SpentMicros)/1e6, "spent_tokens", sd.SpentTokens)
			return sd, nil
		})
		if err != nil {
			return err
		}
		seeds = append(seeds, sd)
	}
	_, err := l.call(ctx, func(ctx context.Context) (Decision, error) { return Decision{}, l.o.Store.Seed(ctx, seeds) })
	return err
}

// failMode decides without the shared store: rate limits that fail open
// are checked on the local store at their share of the limit, budgets
// that fail open are not checked; any limit that fails closed refuses
// with 503.
func (l *Limiter) failMode(ar *AdmitRequest, cause error) (*Reservation, *llm.Error) {
	if !errors.Is(cause, errBreakerOpen) {
		l.o.Logger.Warn("quota store unavailable; applying fail modes", "err", cause)
	}
	n := l.replicas.Load()
	local := make([]Subject, 0, len(ar.Subjects))
	for _, s := range ar.Subjects {
		lim := s.Limits
		rate := lim.RPM > 0 || lim.TPM > 0 || lim.MaxParallel > 0
		if rate && lim.RateFailMode() == llm.FailClosed {
			return nil, l.refuseClosed(s, "rate limits", cause)
		}
		if lim.Budget.Active() {
			if lim.BudgetFailMode() == llm.FailClosed {
				return nil, l.refuseClosed(s, "budget", cause)
			}
			l.o.Metrics.failOpen.WithLabelValues("budget").Inc()
		}
		if rate {
			l.o.Metrics.failOpen.WithLabelValues("rate").Inc()
			share := llm.Limits{RPM: shareOf(lim.RPM, n), TPM: shareOf(lim.TPM, n), MaxParallel: shareOf(lim.MaxParallel, n)}
			local = append(local, Subject{Scope: s.Scope, ID: s.ID, Limits: share})
		}
	}
	c := ar.Charge
	d, _ := l.local.Admit(context.Background(), &AdmitRequest{ID: ar.ID, Subjects: local, Charge: c, TTL: ar.TTL})
	res := &Reservation{l: l, id: ar.ID, subjects: ar.Subjects, charge: c, local: true, states: d.States}
	if len(local) > 0 && !d.Allowed {
		l.o.Metrics.decisions.WithLabelValues("refused").Inc()
		res.subjects = local
		return res, refusal(local, d, c)
	}
	l.o.Metrics.decisions.WithLabelValues("admitted_fail_open").Inc()
	res.states = nil // the local counters are not the limits the client has
	return res, nil
}

func (l *Limiter) refuseClosed(s Subject, what string, cause error) *llm.Error {
	l.o.Metrics.failClosed.Inc()
	e := llm.Errorf(llm.KindUnavailable, "the quota store is unavailable and the %s of %s %q fail closed; retry shortly", what, s.Scope, s.ID)
	e.Code, e.RetryAfter, e.Err = "quota_unavailable", time.Second, cause
	return e
}

// shareOf is one replica's share of limit, at least 1.
func shareOf(limit, replicas int64) int64 {
	if limit <= 0 {
		return 0
	}
	return max(1, (limit+replicas-1)/replicas)
}

// tooBig refuses a request that no amount of waiting would admit: more
// tokens than a TPM bucket holds or than a whole budget.
func tooBig(subs []Subject, c Charge) *llm.Error {
	for _, s := range subs {
		lim := &s.Limits
		if lim.TPM > 0 && c.Tokens > lim.TPM {
			e := llm.Errorf(llm.KindRateLimited, "request too large for the tpm limit of %s %q: it needs up to %d tokens (prompt + max_tokens), the limit is %d per minute; lower max_tokens", s.Scope, s.ID, c.Tokens, lim.TPM)
			e.Code, e.NoRetry = "rate_limit_exceeded", true
			return e
		}
	}
	return nil
}

// refusal is the 429 for a refused admission.
func refusal(subs []Subject, d Decision, c Charge) *llm.Error {
	if d.Denied < 0 || d.Denied >= len(subs) {
		e := llm.Errorf(llm.KindRateLimited, "rate limit reached")
		e.RetryAfter = time.Second
		return e
	}
	s := &subs[d.Denied]
	who := fmt.Sprintf("%s %q", s.Scope, s.ID)
	var e *llm.Error
	switch d.Limit {
	case LimitRPM:
		e = llm.Errorf(llm.KindRateLimited, "rate limit reached for %s: %d requests per minute (rpm)", who, s.Limits.RPM)
	case LimitTPM:
		e = llm.Errorf(llm.KindRateLimited, "rate limit reached for %s: %d tokens per minute (tpm); this request reserves %d", who, s.Limits.TPM, c.Tokens)
	case LimitParallel:
		e = llm.Errorf(llm.KindRateLimited, "concurrency limit reached for %s: %d requests in flight (max_parallel)", who, s.Limits.MaxParallel)
		if d.RetryAfter <= 0 {
			d.RetryAfter = time.Second
		}
	case LimitBudgetUSD, LimitBudgetTokens:
		b := s.Limits.Budget
		var st State
		if d.Denied < len(d.States) {
			st = d.States[d.Denied]
		}
		var what string
		if d.Limit == LimitBudgetUSD {
			what = fmt.Sprintf("$%s per %s (spent $%s, reserved $%s, this request may cost up to $%s)", usd(b.USDMicros()), b.BudgetPeriod(),
				usd(st.Budget.SpentMicros), usd(st.Budget.ReservedMicros), usd(c.CostMicros))
		} else {
			what = fmt.Sprintf("%d tokens per %s (used %d, reserved %d, this request may use up to %d)", b.Tokens, b.BudgetPeriod(),
				st.Budget.SpentTokens, st.Budget.ReservedTokens, c.Tokens)
		}
		if b.BudgetPeriod() == llm.PeriodLifetime {
			e = llm.Errorf(llm.KindRateLimited, "budget exhausted for %s: %s", who, what)
		} else {
			_, end := llm.PeriodBounds(b.BudgetPeriod(), d.Now)
			e = llm.Errorf(llm.KindRateLimited, "budget exhausted for %s: %s; it resets at %s", who, what, end.Format(time.RFC3339))
		}
		e.Type, e.Code, e.NoRetry = "insufficient_quota", "insufficient_quota", true
	default:
		e = llm.Errorf(llm.KindRateLimited, "rate limit reached for %s", who)
	}
	if d.RetryAfter > 0 {
		e.RetryAfter = d.RetryAfter
	}
	return e
}

// usd renders micro-USD as dollars with up to six decimals.
func usd(micros int64) string {
	s := strconv.FormatFloat(float64(micros)/1e6, 'f', 6, 64)
	for s[len(s)-1] == '0' && s[len(s)-3] != '.' {
		s = s[:len(s)-1]
	}
	return s
}

// Settle trues the reservation up to what the request used, off the
// request path. Later calls do nothing.
func (r *Reservation) Settle(u llm.Usage, costMicros int64) {
	if r == nil || !r.settled.CompareAndSwap(false, true) {
		return
	}
	actual := Charge{Tokens: int64(max(u.PromptTokens, 0)) + int64(max(u.CompletionTokens, 0)), CostMicros: max(costMicros, 0)}
	s := &Settlement{ID: r.id, Subjects: r.subjects, Reserved: r.charge, Actual: actual}
	if r.local {
		// The local fallback holds the slots; the shared store took
		// nothing but must learn the spend once it is back.
		_ = r.l.local.Settle(context.Background(), s)
		s = &Settlement{ID: r.id, Subjects: r.subjects, Reserved: Charge{Tokens: actual.Tokens}, Actual: actual}
		if !needsSharedSettle(r.subjects) {
			return
		}
	} else if !settleChanges(r.subjects, r.charge, actual) {
		return // rpm only (never refunded): the store has nothing to do
	}
	r.l.enqueue(s)
}

// settleChanges reports whether settling changes any counter: a
// concurrency slot or a budget to release, or tokens to true up.
func settleChanges(subs []Subject, reserved, actual Charge) bool {
	for i := range subs {
		l := &subs[i].Limits
		if l.MaxParallel > 0 || l.Budget.Active() || (l.TPM > 0 && reserved.Tokens != actual.Tokens) {
			return true
		}
	}
	return false
}

// needsSharedSettle reports whether a locally admitted request's use
// matters to the shared store: only budgets keep it beyond the minute.
func needsSharedSettle(subs []Subject) bool {
	for i := range subs {
		if subs[i].Limits.Budget.Active() {
			return true
		}
	}
	return false
}

func (l *Limiter) enqueue(s *Settlement) {
	if !l.o.Shared && l.settleNow(s) {
		// An in-process store settles in a map under its lock: cheaper
		// than waking a settle worker for it (a cross-thread wake-up per
		// request). One that fails is queued and retried as a shared
		// store's would be.
		return
	}
	if l.settles.push(s) {
		l.o.Metrics.backlog.Inc()
	} else {
		// The queue is full (a long outage under heavy load): settle here
		// rather than lose the spend.
		l.o.Metrics.settleOverflow.Inc()
		if !l.settleNow(s) {
			l.o.Metrics.settleLost.Inc()
		}
	}
}

// settleLoop applies queued settlements, retrying each until the store
// takes it or the limiter closes.
func (l *Limiter) settleLoop() {
	defer l.wg.Done()
	for {
		if s := l.settles.pop(); s != nil {
			l.o.Metrics.backlog.Dec()
			l.settleRetrying(s)
			continue
		}
		select {
		case <-l.settles.wake:
		case <-l.closed:
			for s := l.settles.pop(); s != nil; s = l.settles.pop() {
				l.o.Metrics.backlog.Dec()
				l.settleNow(s)
			}
			return
		}
	}
}

func (l *Limiter) settleRetrying(s *Settlement) {
	backoff := 50 * time.Millisecond
	for {
		if l.settleNow(s) {
			return
		}
		select {
		case <-l.closed:
			l.o.Metrics.settleLost.Inc()
			l.o.Logger.Warn("quota settlement not applied at shutdown", "request_id", s.ID)
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

// settleNow applies s once; false when the store could not take it.
func (l *Limiter) settleNow(s *Settlement) bool {
	_, err := l.call(context.Background(), func(ctx context.Context) (Decision, error) { return Decision{}, l.o.Store.Settle(ctx, s) })
	if err != nil {
		l.o.Metrics.settleErrors.Inc()
		return false
	}
	return true
}

// Headers sets OpenAI's rate-limit headers from the tightest request and
// token limits that applied: x-ratelimit-{limit,remaining,reset}-requests
// and -tokens. Nothing is set for a kind no limit applied to.
func (r *Reservation) Headers(h http.Header) {
	if r == nil {
		return
	}
	var rpm, tpm *Window
	for i := range r.states {
		st := &r.states[i]
		if st.RPM.Limit > 0 && (rpm == nil || st.RPM.Remaining < rpm.Remaining) {
			rpm = &st.RPM
		}
		if st.TPM.Limit > 0 && (tpm == nil || st.TPM.Remaining < tpm.Remaining) {
			tpm = &st.TPM
		}
	}
	set := func(kind string, w *Window) {
		if w == nil {
			return
		}
		h["X-Ratelimit-Limit-"+kind] = []string{strconv.FormatInt(w.Limit, 10)}
		h["X-Ratelimit-Remaining-"+kind] = []string{strconv.FormatInt(max(w.Remaining, 0), 10)}
		h["X-Ratelimit-Reset-"+kind] = []string{resetString(w.Reset)}
	}
	set("Requests", rpm)
	set("Tokens", tpm)
}

// resetString renders a reset delay as OpenAI does ("1s", "6m0s",
// "120ms"): Go's duration syntax at millisecond precision.
func resetString(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d.Round(time.Millisecond).String()
}

// breaker keeps a dead store from costing every request its timeout: after
// three failures in a row it opens for a second, then lets one call
// through to probe.
type breaker struct {
	mu       sync.Mutex
	now      func() time.Time
	fails    int
	openTill time.Time
	probing  bool
}

const (
	breakerFailures = 3
	breakerOpenFor  = time.Second
)

func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fails < breakerFailures {
		return true
	}
	if b.now().Before(b.openTill) || b.probing {
		return false
	}
	b.probing = true
	return true
}

func (b *breaker) failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fails++
	b.probing = false
	if b.fails >= breakerFailures {
		b.openTill = b.now().Add(breakerOpenFor)
	}
}

// release ends a probe without judging the store.
func (b *breaker) release() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

func (b *breaker) success() {
	b.mu.Lock()
	b.fails, b.probing = 0, false
	b.mu.Unlock()
}

// flight runs one seed per key at a time; callers for the same key share
// its result.
type flight struct {
	mu sync.Mutex
	m  map[string]*flightCall
}

type flightCall struct {
	done chan struct{}
	v    Seed
	err  error
}

func (f *flight) do(key string, fn func() (Seed, error)) (Seed, error) {
	f.mu.Lock()
	if f.m == nil {
		f.m = map[string]*flightCall{}
	}
	if c, ok := f.m[key]; ok {
		f.mu.Unlock()
		<-c.done
		return c.v, c.err
	}
	c := &flightCall{done: make(chan struct{})}
	f.m[key] = c
	f.mu.Unlock()
	c.v, c.err = fn()
	f.mu.Lock()
	delete(f.m, key)
	f.mu.Unlock()
	close(c.done)
	return c.v, c.err
}
