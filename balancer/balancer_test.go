package balancer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

func model(weights ...int) *llm.Model {
	m := &llm.Model{Name: "m"}
	for i, w := range weights {
		m.Deployments = append(m.Deployments, llm.Deployment{ID: fmt.Sprintf("dep_%d", i), Provider: fmt.Sprintf("p%d", i), Model: "x", Weight: w})
	}
	return m
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1000, 0)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// upstream returns the error an attempt gets when the upstream answers
// status (the client-facing Status is deliberately unrelated).
func upstream(status int) *llm.Error {
	e := llm.Errorf(llm.KindUpstream, "upstream said %d", status)
	e.UpstreamStatus = status
	return e
}

func fail(b *Balancer, d *llm.Deployment, e *llm.Error) { b.Start(d)(Outcome{Err: e}) }

// order drains a fresh plan.
func order(b *Balancer, m *llm.Model) []string {
	var out []string
	p := b.Plan(m)
	for d := p.Next(); d != nil; d = p.Next() {
		out = append(out, d.ID)
	}
	return out
}

// TestTiesFollowWeights: equal candidates share the picks by weight.
func TestTiesFollowWeights(t *testing.T) {
	ws := []int{1, 3, 1, 6} // total 11
	src := rand.New(rand.NewPCG(1, 2))
	const n = 200_000
	var counts [4]int
	for range n {
		tt := ties{best: -1}
		tt.reset(0, ws[0])
		for i := 1; i < len(ws); i++ {
			tt.offer(src.IntN, i, ws[i])
		}
		counts[tt.best]++
	}
	for i, w := range ws {
		got, want := float64(counts[i])/n, float64(w)/11
		if math.Abs(got-want) > 0.01 {
			t.Errorf("candidate %d picked %.3f of the time, want %.3f ± 0.01", i, got, want)
		}
	}
}

func TestPlanFirstPickFollowsWeights(t *testing.T) {
	src := rand.New(rand.NewPCG(3, 4))
	b := New(Options{Rand: src.IntN})
	m := model(1, 3)
	const n = 40_000
	first := 0
	for range n {
		if b.Plan(m).Next().ID == "dep_1" {
			first++
		}
	}
	if got := float64(first) / n; math.Abs(got-0.75) > 0.01 {
		t.Fatalf("the weight-3 deployment came first %.3f of the time, want 0.75 ± 0.01", got)
	}
}

func TestPlanReturnsEachDeploymentOnce(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now})
	m := model(1, 0, 5, 2, 1, 1, 1, 1, 1, 1, 1) // more than the stack buffer holds
	// Mixed health: one ejected, one cooling, one credential-dead.
	for range 3 {
		fail(b, &m.Deployments[1], upstream(500))
	}
	fail(b, &m.Deployments[2], upstream(429))
	fail(b, &m.Deployments[3], upstream(401))
	for range 50 {
		got := order(b, m)
		seen := map[string]bool{}
		for _, id := range got {
			if seen[id] {
				t.Fatalf("%s returned twice: %v", id, got)
			}
			seen[id] = true
		}
		if len(got) != len(m.Deployments) {
			t.Fatalf("plan returned %d of %d", len(got), len(m.Deployments))
		}
		// Available first, then cooling (back in 5s), ejected (30s), dead.
		if tail := got[len(got)-3:]; tail[0] != "dep_2" || tail[1] != "dep_1" || tail[2] != "dep_3" {
			t.Fatalf("last resorts %v, want [dep_2 dep_1 dep_3]", tail)
		}
	}
	if p := b.Plan(&llm.Model{}); p.Next() != nil {
		t.Fatal("a model without deployments yields one")
	}
	if p := b.Plan(nil); p.Next() != nil {
		t.Fatal("a nil model yields a deployment")
	}
}

func TestNextSeesFreshState(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now, Rand: func(int) int { return 0 }})
	m := model(1, 1, 1)
	// Round-robin: the order does not depend on latency samples or on
	// which deployment is still to be explored.
	m.Strategy = llm.StrategyWeighted
	p := b.Plan(m)
	if d := p.Next(); d.ID != "dep_0" {
		t.Fatalf("first pick %s", d.ID)
	}
	// dep_1 fails (in other requests) between two picks of this one.
	for range 3 {
		fail(b, &m.Deployments[1], upstream(503))
	}
	if d := p.Next(); d.ID != "dep_2" {
		t.Fatalf("second pick %s: the deployment ejected since the first pick must wait", d.ID)
	}
	if d := p.Next(); d.ID != "dep_1" {
		t.Fatalf("third pick %s, want the ejected one as a last resort", d.ID)
	}
	if d := p.Next(); d != nil {
		t.Fatalf("fourth pick %s, want nil", d.ID)
	}
	// And the other way: a deployment re-admitted between picks is
	// available to the next pick of a plan made while it was out.
	p = b.Plan(m)
	_ = p.Next() // dep_2 (round-robin)
	c.add(31 * time.Second)
	if d := p.Next(); d.ID != "dep_1" {
		t.Fatalf("after the ejection ended, pick %s, want dep_1 (next by round-robin)", d.ID)
	}
}

func TestInFlightReturnsToZero(t *testing.T) {
	b := New(Options{})
	m := model(1)
	d := &m.Deployments[0]
	done1, done2 := b.Start(d), b.Start(d)
	if got := b.Status(d.ID).InFlight; got != 2 {
		t.Fatalf("in flight %d, want 2", got)
	}
	done1(Outcome{})
	done1(Outcome{Err: upstream(500)}) // a second call must not count again
	done2(Outcome{Err: llm.Errorf(llm.KindCanceled, "gone")})
	st := b.Status(d.ID)
	if st.InFlight != 0 || st.Successes != 1 || st.Failures != 0 {
		t.Fatalf("status %+v, want 0 in flight, 1 success, 0 failures", st)
	}
}

func TestClassify(t *testing.T) {
	withStatus := func(e *llm.Error, s int) *llm.Error { e.Status = s; return e }
	tests := []struct {
		name string
		err  *llm.Error
		want Class
	}{
		{"success", nil, ClassOK},
		{"client cancel", llm.Errorf(llm.KindCanceled, "x"), ClassNeutral},
		{"unreachable", llm.Errorf(llm.KindUnreachable, "x"), ClassFailure},
		{"timeout", llm.Errorf(llm.KindTimeout, "x"), ClassFailure},
		{"timeout after a 200", func() *llm.Error { e := llm.Errorf(llm.KindTimeout, "x"); e.UpstreamStatus = 200; return e }(), ClassFailure},
		{"upstream 500", upstream(500), ClassFailure},
		{"upstream 503", upstream(503), ClassFailure},
		{"upstream 404: wrong upstream model", upstream(404), ClassFailure},
		{"upstream 408", upstream(408), ClassFailure},
		{"upstream 400: the client's request", upstream(400), ClassNeutral},
		{"upstream 422", upstream(422), ClassNeutral},
		{"upstream 413", upstream(413), ClassNeutral},
		{"upstream 429", upstream(429), ClassRateLimited},
		{"upstream 401", upstream(401), ClassCredential},
		{"upstream 403", upstream(403), ClassCredential},
		{"upstream 401 shown to the client as 502", withStatus(upstream(401), 502), ClassCredential},
		{"upstream 404 shown as 502", withStatus(upstream(404), 502), ClassFailure},
		{"upstream 400 shown as 502", withStatus(upstream(400), 502), ClassNeutral},
		{"truncated 200", upstream(200), ClassFailure},
		{"a 302", upstream(302), ClassFailure},
		{"a 101", upstream(101), ClassFailure},
		{"broken before a status", llm.Errorf(llm.KindUpstream, "x"), ClassFailure},
		{"gateway rate limit (no upstream status)", llm.Errorf(llm.KindRateLimited, "x"), ClassNeutral},
		{"gateway 400", llm.Errorf(llm.KindInvalidRequest, "x"), ClassNeutral},
		{"gateway internal", llm.Errorf(llm.KindInternal, "x"), ClassNeutral},
		{"no provider", llm.Errorf(llm.KindUnavailable, "x"), ClassNeutral},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Fatalf("Classify = %v, want %v", got, tt.want)
			}
			wantRetry := tt.want == ClassFailure || tt.want == ClassRateLimited || tt.want == ClassCredential
			if got := Retryable(tt.err); got != wantRetry {
				t.Fatalf("Retryable = %v, want %v", got, wantRetry)
			}
		})
	}
}

func TestEjectionBackoff(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now, MaxFails: 1}) // 1 is raised to 2: one error never ejects
	m := model(1)
	d := &m.Deployments[0]
	fail(b, d, upstream(500))
	if !b.Status(d.ID).Healthy {
		t.Fatal("one error ejected the deployment")
	}
	for i, want := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
		if i > 0 {
			fail(b, d, upstream(500))
		}
		fail(b, d, upstream(500))
		st := b.Status(d.ID)
		if st.State != "ejected" || st.CooldownUntil.Sub(c.now()) != want || st.Ejections != i+1 {
			t.Fatalf("ejection %d: %+v, want ejected for %v", i+1, st, want)
		}
		c.add(want)
		if !b.Status(d.ID).Healthy {
			t.Fatalf("ejection %d outlasted %v", i+1, want)
		}
	}
	b.Start(d)(Outcome{})
	fail(b, d, upstream(500))
	fail(b, d, upstream(500))
	if st := b.Status(d.ID); st.CooldownUntil.Sub(c.now()) != 30*time.Second {
		t.Fatalf("after a success the backoff must restart: %+v", st)
	}
}

func TestFailuresOutsideTheWindowDoNotEject(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now, FailWindow: 10 * time.Second})
	d := &model(1).Deployments[0]
	for range 5 {
		fail(b, d, upstream(502))
		fail(b, d, upstream(502))
		c.add(11 * time.Second)
	}
	if st := b.Status(d.ID); !st.Healthy || st.Failures != 10 {
		t.Fatalf("status %+v: two failures every 11s must not eject with a 10s window", st)
	}
}

func TestClientErrorsNeverEject(t *testing.T) {
	b := New(Options{})
	d := &model(1).Deployments[0]
	for range 20 {
		fail(b, d, upstream(400))
		fail(b, d, llm.Errorf(llm.KindCanceled, "gone"))
	}
	if st := b.Status(d.ID); !st.Healthy || st.Failures != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestConcurrentFailuresEjectOnce(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now})
	d := &model(1).Deployments[0]
	var dones []func(Outcome)
	for range 12 {
		dones = append(dones, b.Start(d))
	}
	for _, done := range dones { // a burst: all started before any failed
		done(Outcome{Err: upstream(500)})
	}
	if st := b.Status(d.ID); st.Ejections != 1 || st.CooldownUntil.Sub(c.now()) != 30*time.Second || st.Failures != 12 {
		t.Fatalf("status %+v: a burst of concurrent failures must eject once, for the base cooldown", st)
	}
}

func TestStaleSuccessDoesNotReadmit(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now})
	d := &model(1).Deployments[0]
	long := b.Start(d) // a long stream, started while healthy
	for range 3 {
		fail(b, d, upstream(500))
	}
	long(Outcome{Latency: time.Minute})
	if st := b.Status(d.ID); st.State != "ejected" {
		t.Fatalf("a success that began before the ejection re-admitted: %+v", st)
	}
	b.Start(d)(Outcome{}) // a last-resort attempt after the ejection
	if st := b.Status(d.ID); !st.Healthy || st.Ejections != 0 {
		t.Fatalf("a success after the ejection must re-admit: %+v", st)
	}
}

func TestRateLimitCooldown(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now, MaxRetryAfterCooldown: time.Minute})
	m := model(1, 1)
	d := &m.Deployments[0]
	e := upstream(429)
	e.RetryAfter = 7 * time.Second
	fail(b, d, e)
	st := b.Status(d.ID)
	if st.State != "cooling" || st.CooldownUntil.Sub(c.now()) != 7*time.Second {
		t.Fatalf("status %+v, want cooling for 7s", st)
	}
	c.add(7 * time.Second)
	e.RetryAfter = 2_300_283_668 * time.Second // a date in 2099
	fail(b, d, e)
	if st := b.Status(d.ID); st.CooldownUntil.Sub(c.now()) != time.Minute {
		t.Fatalf("status %+v, want the cap of 1m", st)
	}
	c.add(time.Minute)
	fail(b, d, upstream(429)) // no Retry-After
	if st := b.Status(d.ID); st.CooldownUntil.Sub(c.now()) != 5*time.Second {
		t.Fatalf("status %+v, want the default 5s", st)
	}
	c.add(5 * time.Second)
	for range 10 {
		fail(b, d, upstream(429))
	}
	if st := b.Status(d.ID); st.State != "cooling" || st.Ejections != 0 {
		t.Fatalf("429s count as cooling, never as an ejection: %+v", st)
	}
}

func TestCredentialDeadUntilProviderRevisionChanges(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now, Rand: func(int) int { return 0 }})
	m := model(1, 1)
	d := &m.Deployments[0]
	b.Retain([]Target{{ID: "dep_0", ProviderRevision: 10}, {ID: "dep_1", ProviderRevision: 11}})
	fail(b, d, upstream(403))
	if st := b.Status(d.ID); st.State != "credential_dead" || st.Healthy {
		t.Fatalf("status %+v", st)
	}
	c.add(24 * time.Hour)
	b.Retain([]Target{{ID: "dep_0", ProviderRevision: 10}, {ID: "dep_1", ProviderRevision: 11}})
	if got := order(b, m); got[0] != "dep_1" {
		t.Fatalf("order %v: a dead credential stays dead with time and unchanged config", got)
	}
	// An attempt under the old credential that fails after the operator
	// fixed it must not kill the new one.
	stale := b.Start(d)
	b.Retain([]Target{{ID: "dep_0", ProviderRevision: 12}, {ID: "dep_1", ProviderRevision: 11}})
	if !b.Status(d.ID).Healthy {
		t.Fatal("a new provider revision must revive the credential")
	}
	stale(Outcome{Err: upstream(401)})
	if st := b.Status(d.ID); !st.Healthy {
		t.Fatalf("a 401 from the old revision killed the new one: %+v", st)
	}
	fail(b, d, upstream(401))
	if b.Status(d.ID).Healthy {
		t.Fatal("a 401 under the current revision must kill it")
	}
}

func TestRetainPrunes(t *testing.T) {
	b := New(Options{})
	m := model(1, 1, 1)
	var dones []func(Outcome)
	for i := range m.Deployments {
		dones = append(dones, b.Start(&m.Deployments[i]))
	}
	fail(b, &m.Deployments[0], upstream(500))
	b.Retain([]Target{{ID: "dep_0"}})
	for _, done := range dones {
		done(Outcome{Err: upstream(500)}) // attempts on deleted deployments end after the prune
	}
	n := 0
	b.health.Range(func(k, _ any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d states kept, want 1", n)
	}
	if st := b.Status("dep_0"); st.Failures != 2 || st.InFlight != 0 {
		t.Fatalf("kept state lost its counts: %+v", st)
	}
	if st := b.Status("dep_1"); st.Failures != 0 || !st.Healthy {
		t.Fatalf("pruned deployment still has state: %+v", st)
	}
	b.Status("dep_9") // reading must not create state
	// A request that still sees the old configuration starts an attempt on
	// a deleted deployment after the prune.
	late := b.Start(&m.Deployments[2])
	if p := b.Plan(m); p.Next() == nil {
		t.Fatal("a plan over deleted deployments must still hand them out")
	}
	late(Outcome{})
	n = 0
	b.health.Range(func(k, _ any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("state recreated after the prune: %d kept", n)
	}
}

func TestLatencyEWMA(t *testing.T) {
	b := New(Options{})
	d := &model(1).Deployments[0]
	b.Start(d)(Outcome{Latency: 100 * time.Millisecond, TTFT: 10 * time.Millisecond})
	if st := b.Status(d.ID); st.LatencyMS != 100 || st.TTFTMS != 10 {
		t.Fatalf("first sample: %+v", st)
	}
	b.Start(d)(Outcome{Latency: 200 * time.Millisecond}) // no first byte measured
	b.Start(d)(Outcome{Err: upstream(500), Latency: time.Hour})
	if st := b.Status(d.ID); math.Abs(st.LatencyMS-120) > 1e-9 || st.TTFTMS != 10 {
		t.Fatalf("status %+v, want latency 120ms (0.2 weight), TTFT unchanged, failures not averaged", st)
	}
}

// TestConcurrentUse runs picks, attempts, reports and Retain at once (run
// with -race): nothing is handed out twice, and in-flight returns to 0.
func TestConcurrentUse(t *testing.T) {
	b := New(Options{Cooldown: time.Millisecond, MaxEjection: 5 * time.Millisecond})
	m := model(1, 2, 3, 4)
	errs := []*llm.Error{nil, upstream(500), upstream(429), upstream(401), upstream(400), llm.Errorf(llm.KindTimeout, "x")}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				p := b.Plan(m)
				seen := map[string]bool{}
				for d := p.Next(); d != nil; d = p.Next() {
					if seen[d.ID] {
						t.Errorf("%s handed out twice", d.ID)
						return
					}
					seen[d.ID] = true
					done := b.Start(d)
					done(Outcome{Err: errs[(g+i+len(seen))%len(errs)], Latency: time.Millisecond})
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			b.Retain([]Target{{ID: "dep_0", ProviderRevision: int64(i)}, {ID: "dep_1"}, {ID: "dep_2"}, {ID: "dep_3", ProviderRevision: int64(i % 3)}})
			_ = b.Status("dep_0")
		}
	})
	wg.Wait()
	for _, d := range m.Deployments {
		if st := b.Status(d.ID); st.InFlight != 0 {
			t.Errorf("%s: %d in flight after every attempt ended", d.ID, st.InFlight)
		}
	}
}

func TestStatusStates(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now})
	d := &model(1).Deployments[0]
	if st := b.Status(d.ID); st.State != "healthy" || !st.Healthy {
		t.Fatalf("%+v", st)
	}
	fail(b, d, upstream(http.StatusTooManyRequests))
	fail(b, d, upstream(500))
	fail(b, d, upstream(500))
	fail(b, d, upstream(500))
	if st := b.Status(d.ID); st.State != "ejected" || st.CooldownUntil.Sub(c.now()) != 30*time.Second {
		t.Fatalf("failures while cooling eject: %+v", st)
	}
}

// Weights are only checked for >= 0 when saved: huge ones must not overflow
// the total (rand.IntN panics on a negative bound, failing every request
// for the model).
func TestHugeWeightsDoNotOverflow(t *testing.T) {
	b := New(Options{})
	m := model(math.MaxInt, math.MaxInt, 1)
	for range 100 {
		if got := order(b, m); len(got) != 3 {
			t.Fatalf("order %v", got)
		}
	}
	src := rand.New(rand.NewPCG(5, 6))
	b = New(Options{Rand: src.IntN})
	m = model(MaxWeight, MaxWeight*3) // beyond the cap: equal shares
	n := 0
	for range 10_000 {
		if b.Plan(m).Next().ID == "dep_0" {
			n++
		}
	}
	if math.Abs(float64(n)/10_000-0.5) > 0.03 {
		t.Fatalf("weights past MaxWeight picked %d of 10000 times, want them capped to equal shares", n)
	}
}

// The balancer's clock is relative to its start: a clock reading before
// it (a test clock set back) must not make fresh deployments look taken out.
func TestClockBeforeStart(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now})
	c.add(-time.Hour)
	m := model(1)
	if st := b.Status("dep_0"); !st.Healthy {
		t.Fatalf("%+v", st)
	}
	b.Start(&m.Deployments[0])(Outcome{})
	if st := b.Status("dep_0"); !st.Healthy || st.Successes != 1 {
		t.Fatalf("%+v", st)
	}
}

// TestHealthInvariants drives random outcomes, clock moves and reloads
// through the state machine and checks what must always hold.
func TestHealthInvariants(t *testing.T) {
	c := newClock()
	o := Options{Now: c.now, Cooldown: 2 * time.Second, MaxEjection: 20 * time.Second, MaxRetryAfterCooldown: 30 * time.Second}
	b := New(o)
	m := model(1, 2, 3)
	src := rand.New(rand.NewPCG(7, 8))
	errs := []*llm.Error{nil, upstream(500), upstream(404), upstream(429), upstream(401), upstream(400), llm.Errorf(llm.KindTimeout, "x"), llm.Errorf(llm.KindCanceled, "x")}
	var pending []func(Outcome)
	for step := range 20_000 {
		d := &m.Deployments[src.IntN(len(m.Deployments))]
		switch src.IntN(6) {
		case 0:
			pending = append(pending, b.Start(d))
		case 1:
			if len(pending) > 0 {
				i := src.IntN(len(pending))
				e := errs[src.IntN(len(errs))]
				if e != nil && e.UpstreamStatus == 429 {
					e = upstream(429)
					e.RetryAfter = time.Duration(src.Int64N(int64(time.Hour)))
				}
				pending[i](Outcome{Err: e})
				pending = append(pending[:i], pending[i+1:]...)
			}
		case 2:
			c.add(time.Duration(src.Int64N(int64(3 * time.Second))))
		case 3:
			b.Start(d)(Outcome{}) // a fresh success re-admits
			if st := b.Status(d.ID); !st.Healthy {
				t.Fatalf("step %d: a success started now left %s %+v", step, d.ID, st)
			}
		case 4:
			b.Retain([]Target{{ID: "dep_0", ProviderRevision: int64(step / 1000)}, {ID: "dep_1"}, {ID: "dep_2"}})
		case 5:
			if got := order(b, m); len(got) != 3 {
				t.Fatalf("step %d: plan %v", step, got)
			}
		}
		for _, d := range m.Deployments {
			st := b.Status(d.ID)
			if !st.CooldownUntil.IsZero() && st.CooldownUntil.Sub(c.now()) > 30*time.Second {
				t.Fatalf("step %d: %s out for %v, beyond every cap", step, d.ID, st.CooldownUntil.Sub(c.now()))
			}
			if st.InFlight < 0 {
				t.Fatalf("step %d: %s in flight %d", step, d.ID, st.InFlight)
			}
		}
	}
	for _, done := range pending {
		done(Outcome{})
	}
	for _, d := range m.Deployments {
		if n := b.Status(d.ID).InFlight; n != 0 {
			t.Fatalf("%s: %d in flight", d.ID, n)
		}
	}
}
