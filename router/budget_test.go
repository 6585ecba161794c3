package router

import (
	"testing"
	"time"
)

// TestRetryBudgetBounds simulates the budget alone at scale: during a
// full outage every request wants two retries; retries stay within
// ratio × requests plus the floor's share and the initial balance, and
// are not far below it.
func TestRetryBudgetBounds(t *testing.T) {
	for _, c := range []struct {
		rps, secs int
	}{{1000, 60}, {100, 60}, {5, 60}} {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		b := newRetryBudget(DefaultRetryRatio, DefaultRetryFloor, now)
		retries := 0
		step := time.Second / time.Duration(c.rps)
		for range c.rps * c.secs {
			b.deposit(now)
			for range 2 {
				if b.withdraw(now) {
					retries++
				}
			}
			now = now.Add(step)
		}
		reqs := float64(c.rps * c.secs)
		wantMax := DefaultRetryRatio*reqs + DefaultRetryFloor*float64(c.secs) + DefaultRetryFloor*retryWindow.Seconds()
		wantMin := min(2*reqs, DefaultRetryRatio*reqs+DefaultRetryFloor*float64(c.secs)) * 0.9
		if r := float64(retries); r > wantMax || r < wantMin {
			t.Errorf("%d rps for %d s: %d retries, want %.0f to %.0f", c.rps, c.secs, retries, wantMin, wantMax)
		}
	}
}

// TestRetryBudgetRecovers: after an outage drained it, the balance comes
// back with traffic and time, and a clock stepping back adds nothing.
func TestRetryBudgetRecovers(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newRetryBudget(DefaultRetryRatio, DefaultRetryFloor, now)
	for b.withdraw(now) {
	}
	if b.withdraw(now.Add(-time.Hour)) {
		t.Fatal("a clock stepping back refilled the budget")
	}
	if !b.withdraw(now.Add(1500 * time.Millisecond)) {
		t.Fatal("the floor did not refill the budget")
	}
	for range 5 {
		b.deposit(now.Add(1500 * time.Millisecond))
	}
	if !b.withdraw(now.Add(1500 * time.Millisecond)) {
		t.Fatal("five requests' deposits do not pay for a retry")
	}
	// Idle for long: full again, never beyond floor × window.
	later := now.Add(time.Hour)
	n := 0
	for b.withdraw(later) {
		n++
	}
	if want := int(DefaultRetryFloor * retryWindow.Seconds()); n < want-1 || n > want {
		t.Fatalf("after an idle hour %d retries, want about %d", n, want)
	}
}

// BenchmarkRetryBudget is the budget's cost per request: a deposit and a
// withdrawal, on one model from all goroutines.
func BenchmarkRetryBudget(b *testing.B) {
	var bs retryBudgets
	bs.ratio, bs.floor = DefaultRetryRatio, DefaultRetryFloor
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bu := bs.of("gpt-4o", now)
			bu.deposit(now)
			bu.withdraw(now)
		}
	})
}
