package quota

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// TestDeploymentHeadroomFromAdmissions: every admission on a deployment's
// own limits tells the balancer what its account has left; an empty
// bucket is empty until one request is back, a refusal until its
// Retry-After; the admin view estimates the refill.
func TestDeploymentHeadroomFromAdmissions(t *testing.T) {
	c := newClock()
	var mu sync.Mutex
	seen := map[string]Headroom{}
	l := newTestLimiter(t, Options{Now: c.now, Store: NewMemory(c.now), OnHeadroom: func(id string, h Headroom) {
		mu.Lock()
		seen[id] = h
		mu.Unlock()
	}})
	d := &llm.Deployment{ID: "dep_a", Limits: llm.Limits{RPM: 4, MaxParallel: 10}}
	last := func() Headroom { mu.Lock(); defer mu.Unlock(); return seen["dep_a"] }
	ctx := context.Background()
	if _, ok := l.DeploymentHeadroom("dep_a"); ok {
		t.Fatal("headroom known before any admission")
	}
	for i := range 4 {
		res, e := l.AdmitDeployment(ctx, &Request{ID: "r" + string(rune('a'+i))}, d)
		if e != nil {
			t.Fatalf("admission %d refused: %v", i, e)
		}
		defer res.Settle(llm.Usage{}, 0)
		if i == 1 {
			if h := last(); h.Frac != 0.5 || h.Empty != 0 {
				t.Fatalf("after 2 of 4: %+v", h)
			}
		}
	}
	h := last()
	if h.Frac != 0 || h.Empty != 15*time.Second {
		t.Fatalf("after 4 of 4: %+v, want empty for 15s (one request back at 4 rpm)", h)
	}
	v, ok := l.DeploymentHeadroom("dep_a")
	if !ok || v.Requests == nil || v.Requests.Remaining != 0 || v.Requests.Limit != 4 || v.ExhaustedUntil == nil ||
		v.Slots == nil || v.Slots.Free != 6 || v.Tokens != nil {
		t.Fatalf("view %+v", v)
	}
	_, e := l.AdmitDeployment(ctx, &Request{ID: "r5"}, d)
	if e == nil {
		t.Fatal("fifth admission passed")
	}
	if h := last(); h.Empty != e.RetryAfter || h.Empty <= 0 {
		t.Fatalf("refused: %+v, want empty for the Retry-After %v", h, e.RetryAfter)
	}
	// Half a minute later half the bucket is back.
	c.add(30 * time.Second)
	v, _ = l.DeploymentHeadroom("dep_a")
	if v.Requests.Remaining != 2 || v.ExhaustedUntil != nil {
		t.Fatalf("30s later: %+v", v.Requests)
	}
	l.RetainHeadroom([]string{"dep_b"})
	if _, ok := l.DeploymentHeadroom("dep_a"); ok {
		t.Fatal("headroom of a deleted deployment kept")
	}
}

// TestHeadroomNotFromLocalFallback: admissions the local fallback made
// while the shared store was down say nothing of the account.
func TestHeadroomNotFromLocalFallback(t *testing.T) {
	c := newClock()
	f := &flakyStore{Memory: NewMemory(c.now)}
	f.down.Store(true)
	called := false
	l := newTestLimiter(t, Options{Now: c.now, Store: f, Shared: true, OnHeadroom: func(string, Headroom) { called = true }})
	d := &llm.Deployment{ID: "dep_a", Limits: llm.Limits{RPM: 4}}
	res, e := l.AdmitDeployment(context.Background(), &Request{ID: "r1"}, d)
	if e != nil {
		t.Fatal(e)
	}
	res.Settle(llm.Usage{}, 0)
	if _, ok := l.DeploymentHeadroom("dep_a"); ok || called {
		t.Fatal("headroom learned from the local fallback")
	}
}

// TestPeekDeployments: a replica that never admitted on a deployment
// learns its headroom from the shared counters another one used.
func TestPeekDeployments(t *testing.T) {
	c := newClock()
	store := NewMemory(c.now)
	a := newTestLimiter(t, Options{Now: c.now, Store: store})
	var got Headroom
	b := newTestLimiter(t, Options{Now: c.now, Store: store, OnHeadroom: func(_ string, h Headroom) { got = h }})
	d := &llm.Deployment{ID: "dep_a", Limits: llm.Limits{RPM: 2, TPM: 100_000}}
	free := &llm.Deployment{ID: "dep_free"}
	for _, id := range []string{"r1", "r2"} {
		res, e := a.AdmitDeployment(context.Background(), &Request{ID: id}, d)
		if e != nil {
			t.Fatal(e)
		}
		res.Settle(llm.Usage{}, 0)
	}
	if err := b.PeekDeployments(context.Background(), []*llm.Deployment{free, d}); err != nil {
		t.Fatal(err)
	}
	v, ok := b.DeploymentHeadroom("dep_a")
	if !ok || v.Requests.Remaining != 0 || v.Tokens == nil || v.Tokens.Limit != 100_000 || v.ExhaustedUntil == nil {
		t.Fatalf("peeked %+v", v)
	}
	if got.Frac != 0 || got.Empty != 30*time.Second {
		t.Fatalf("balancer told %+v", got)
	}
	if _, ok := b.DeploymentHeadroom("dep_free"); ok {
		t.Fatal("headroom for a deployment without limits")
	}
}
