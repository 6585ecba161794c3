package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadinessReused: concurrent and repeated /readyz probes within
// readyTTL cost one dependency check (before, each probe of the public
// endpoint was a database and Redis round trip), and a later probe checks
// again.
func TestReadinessReused(t *testing.T) {
	var r readiness
	var calls atomic.Int32
	fail := atomic.Bool{}
	check := func(ctx context.Context) error {
		calls.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the check has no deadline")
		}
		if fail.Load() {
			return errors.New("down")
		}
		return nil
	}
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if err := r.get(check); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d checks for 100 probes", n)
	}
	fail.Store(true)
	r.at = time.Now().Add(-readyTTL) // the cached answer has expired
	if err := r.get(check); err == nil || calls.Load() != 2 {
		t.Fatalf("expired answer reused: %v, %d checks", err, calls.Load())
	}
}
