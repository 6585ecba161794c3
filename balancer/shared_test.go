package balancer

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// recorder collects the transitions a balancer publishes.
type recorder struct {
	mu sync.Mutex
	ts []Transition
}

func (r *recorder) add(t Transition) {
	r.mu.Lock()
	r.ts = append(r.ts, t)
	r.mu.Unlock()
}

func (r *recorder) take() []Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ts
	r.ts = nil
	return out
}

// sharedPair is two balancers with clocks of their own, as two replicas.
func sharedPair(t *testing.T, m *llm.Model) (a, b *Balancer, ca, cb *clock, ra *recorder) {
	t.Helper()
	ca, cb, ra = newClock(), newClock(), &recorder{}
	a = New(Options{Now: ca.now, Replica: "A", OnTransition: ra.add})
	b = New(Options{Now: cb.now, Replica: "B"})
	var ts []Target
	for _, d := range m.Deployments {
		ts = append(ts, Target{ID: d.ID, ProviderRevision: 1, Model: m.Name})
	}
	a.Retain(ts)
	b.Retain(ts)
	return
}

func rateLimited(after time.Duration) *llm.Error {
	e := upstream(http.StatusTooManyRequests)
	e.RetryAfter = after
	return e
}

// TestTransitionsPublishedAndApplied: a 429 on replica A cools the
// deployment on B until the same wall-clock time; A's success afterwards
// ends it on B too.
func TestTransitionsPublishedAndApplied(t *testing.T) {
	m := model(1, 1)
	a, b, ca, cb, ra := sharedPair(t, m)
	// B's clock started at the same wall time but its monotonic base
	// differs: conversions go through wall time.
	cb.add(3 * time.Second)
	fail(a, &m.Deployments[0], rateLimited(20*time.Second))
	ts := ra.take()
	if len(ts) != 1 {
		t.Fatalf("published %v, want one transition", ts)
	}
	tr := ts[0]
	wantUntil := ca.now().Add(20 * time.Second)
	if tr.State != "cooling" || tr.Deployment != "dep_0" || tr.Origin != "A" || !tr.Until.Equal(wantUntil) {
		t.Fatalf("transition = %+v, want cooling dep_0 from A until %v", tr, wantUntil)
	}
	if !b.Apply(tr) {
		t.Fatal("Apply changed nothing")
	}
	st := b.Status("dep_0")
	if st.State != "cooling" || st.Cooldown != 20*time.Second-3*time.Second {
		t.Fatalf("B: %+v, want cooling for 17s (same wall end)", st)
	}
	if got := order(b, m); got[0] != "dep_1" {
		t.Fatalf("B picks %v, want the healthy dep_1 first", got)
	}
	// Seen again (the poll): nothing changes.
	if b.Apply(tr) {
		t.Error("the same transition applied twice changed something")
	}
	// A recovers: its first success publishes healthy, which ends B's
	// remote cooldown early.
	ca.add(21 * time.Second)
	a.Start(&m.Deployments[0])(Outcome{Latency: time.Millisecond})
	ts = ra.take()
	if len(ts) != 1 || ts[0].State != "healthy" {
		t.Fatalf("published %v, want healthy", ts)
	}
	if !b.Apply(ts[0]) || b.Status("dep_0").State != "healthy" {
		t.Fatalf("B after healthy: %+v", b.Status("dep_0"))
	}
}

// TestApplyIgnoresEchoes: a replica's own transitions coming back are
// ignored, as are unknown deployments and unreadable states.
func TestApplyIgnoresEchoes(t *testing.T) {
	m := model(1)
	a, _, ca, _, _ := sharedPair(t, m)
	until := ca.now().Add(time.Minute)
	for _, tr := range []Transition{
		{Deployment: "dep_0", State: "ejected", Until: until, Origin: "A"},
		{Deployment: "dep_nope", State: "ejected", Until: until, Origin: "B"},
		{Deployment: "", State: "ejected", Until: until, Origin: "B"},
		{Deployment: "dep_0", State: "exploded", Until: until, Origin: "B"},
		{Deployment: "dep_0", State: "cooling", Until: ca.now().Add(-time.Second), Origin: "B"},
		{Deployment: "dep_0", State: "cooling", Origin: "B"},
		{Deployment: "dep_0", State: "healthy", Origin: "B"},
	} {
		if a.Apply(tr) {
			t.Errorf("Apply(%+v) changed something", tr)
		}
	}
	if st := a.Status("dep_0"); st.State != "healthy" {
		t.Fatalf("state %+v", st)
	}
}

// TestApplyCaps: a remote end far in the future is capped by the
// balancer's own limits, and only ever extends the local cooldown.
func TestApplyCaps(t *testing.T) {
	m := model(1, 1)
	a, _, ca, _, _ := sharedPair(t, m)
	far := ca.now().Add(1000 * time.Hour)
	a.Apply(Transition{Deployment: "dep_0", State: "cooling", Until: far, Origin: "B"})
	a.Apply(Transition{Deployment: "dep_1", State: "ejected", Until: far, Origin: "B"})
	if c := a.Status("dep_0").Cooldown; c != a.opts.MaxRetryAfterCooldown {
		t.Errorf("cooling capped at %v, want %v", c, a.opts.MaxRetryAfterCooldown)
	}
	if c := a.Status("dep_1").Cooldown; c != a.opts.MaxEjection {
		t.Errorf("ejection capped at %v, want %v", c, a.opts.MaxEjection)
	}
	// A shorter remote cooldown does not shorten the local one.
	if a.Apply(Transition{Deployment: "dep_0", State: "cooling", Until: ca.now().Add(time.Second), Origin: "B"}) {
		t.Error("a shorter remote cooldown changed the local one")
	}
}

// TestApplyLocalStateSurvivesRemoteHealthy: a remote healthy ends only
// what came from another replica, never what this replica's own
// attempts found.
func TestApplyLocalStateSurvivesRemoteHealthy(t *testing.T) {
	m := model(1, 1)
	a, _, _, _, _ := sharedPair(t, m)
	for range 3 {
		fail(a, &m.Deployments[0], upstream(http.StatusBadGateway))
	}
	if a.Status("dep_0").State != "ejected" {
		t.Fatal("not ejected")
	}
	if a.Apply(Transition{Deployment: "dep_0", State: "healthy", ProviderRevision: 1, Origin: "B"}) {
		t.Error("a remote healthy ended a local ejection")
	}
	fail(a, &m.Deployments[1], upstream(http.StatusUnauthorized))
	if a.Apply(Transition{Deployment: "dep_1", State: "healthy", ProviderRevision: 1, Origin: "B"}) || a.Status("dep_1").State != "credential_dead" {
		t.Error("a remote healthy revived a credential this replica found dead")
	}
}

// TestApplyCredentialRevision: a dead credential is shared only under
// the provider revision this replica uses.
func TestApplyCredentialRevision(t *testing.T) {
	m := model(1)
	a, b, _, _, ra := sharedPair(t, m)
	fail(a, &m.Deployments[0], upstream(http.StatusForbidden))
	ts := ra.take()
	if len(ts) != 1 || ts[0].State != "credential_dead" || ts[0].ProviderRevision != 1 {
		t.Fatalf("published %v", ts)
	}
	stale := ts[0]
	stale.ProviderRevision = 0
	if b.Apply(stale) {
		t.Error("a dead credential under another revision applied")
	}
	if !b.Apply(ts[0]) || b.Status("dep_0").State != "credential_dead" {
		t.Fatalf("B: %+v", b.Status("dep_0"))
	}
	// B's configuration moves on: the credential gets its chance again,
	// and the old transition, seen again, does not kill it.
	b.Retain([]Target{{ID: "dep_0", ProviderRevision: 2, Model: m.Name}})
	if b.Apply(ts[0]) || b.Status("dep_0").State != "healthy" {
		t.Fatalf("B after the revision changed: %+v", b.Status("dep_0"))
	}
	// A healthy under the same revision revives a remote dead credential.
	b2 := New(Options{Replica: "C"})
	b2.Retain([]Target{{ID: "dep_0", ProviderRevision: 1, Model: m.Name}})
	b2.Apply(ts[0])
	if !b2.Apply(Transition{Deployment: "dep_0", State: "healthy", ProviderRevision: 1, Origin: "A"}) || b2.Status("dep_0").State != "healthy" {
		t.Fatalf("C: %+v", b2.Status("dep_0"))
	}
}

// TestApplyDoesNotPublish: applied transitions are not published again
// (no loop between replicas), and an attempt started before a remote
// cooldown does not end it by succeeding.
func TestApplyDoesNotPublish(t *testing.T) {
	m := model(1, 1)
	a, _, ca, _, ra := sharedPair(t, m)
	done := a.Start(&m.Deployments[0])
	a.Apply(Transition{Deployment: "dep_0", State: "ejected", Until: ca.now().Add(time.Minute), Origin: "B"})
	done(Outcome{Latency: time.Millisecond})
	if ts := ra.take(); len(ts) != 0 {
		t.Fatalf("published %v", ts)
	}
	if a.Status("dep_0").State != "ejected" {
		t.Fatalf("a stale success ended a remote ejection: %+v", a.Status("dep_0"))
	}
}

// TestOnTransitionOutsideLocks: the hook may call back into the balancer.
func TestOnTransitionOutsideLocks(t *testing.T) {
	m := model(1)
	var b *Balancer
	var got Status
	b = New(Options{OnTransition: func(Transition) { got = b.Status("dep_0") }})
	b.Retain([]Target{{ID: "dep_0", Model: m.Name}})
	fail(b, &m.Deployments[0], rateLimited(time.Second))
	if got.State != "cooling" {
		t.Fatalf("status from the hook: %+v", got)
	}
}
