package quota_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/quota"
	"github.com/sluice-ai/sluice/quota/storetest"
)

func TestMemoryContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock func() time.Time) quota.Store {
		return quota.NewMemory(clock)
	})
}

// TestMemoryDropsIdleSubjects: rate-only subjects idle for two minutes go;
// a budget of the current period and a live reservation stay.
func TestMemoryDropsIdleSubjects(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	m := quota.NewMemory(clock.Now)
	ctx := context.Background()
	for i := range 100 {
		sub := quota.Subject{Scope: quota.ScopeKey, ID: fmt.Sprint(i), Limits: llm.Limits{RPM: 10, TPM: 100}}
		if _, err := m.Admit(ctx, &quota.AdmitRequest{ID: "r", Subjects: []quota.Subject{sub}, Charge: quota.Charge{Requests: 1, Tokens: 100}}); err != nil {
			t.Fatal(err)
		}
	}
	b := quota.Subject{Scope: quota.ScopeOwner, ID: "b", Limits: llm.Limits{Budget: &llm.Budget{Tokens: 10, Period: llm.PeriodDay}}}
	start, _ := llm.PeriodBounds(llm.PeriodDay, clock.Now())
	if err := m.Seed(ctx, []quota.Seed{{Subject: b, Start: start}}); err != nil {
		t.Fatal(err)
	}
	p := quota.Subject{Scope: quota.ScopeModel, ID: "p", Limits: llm.Limits{MaxParallel: 1}}
	if d, err := m.Admit(ctx, &quota.AdmitRequest{ID: "held", Subjects: []quota.Subject{p}, Charge: quota.Charge{Parallel: true}}); err != nil || !d.Allowed {
		t.Fatal(d, err)
	}
	if n := m.Len(); n != 102 {
		t.Fatalf("Len = %d, want 102", n)
	}
	clock.Advance(3 * time.Minute)
	if _, err := m.Admit(ctx, &quota.AdmitRequest{ID: "x", Subjects: []quota.Subject{{Scope: quota.ScopeKey, ID: "new", Limits: llm.Limits{RPM: 1}}}, Charge: quota.Charge{Requests: 1}}); err != nil {
		t.Fatal(err)
	}
	if n := m.Len(); n != 3 {
		t.Fatalf("Len after idle = %d, want 3 (budget, reservation, new)", n)
	}
	// Past the day and the reservation's TTL, those go too.
	clock.Advance(24 * time.Hour)
	if err := m.Settle(ctx, &quota.Settlement{ID: "y"}); err != nil {
		t.Fatal(err)
	}
	if n := m.Len(); n != 0 {
		t.Fatalf("Len a day later = %d, want 0", n)
	}
}

func TestMemoryCanceled(t *testing.T) {
	m := quota.NewMemory(nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Admit(ctx, &quota.AdmitRequest{}); err == nil {
		t.Fatal("Admit with a canceled context succeeded")
	}
}
