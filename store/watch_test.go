package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-ai/sluice/llm"
)

// watchAcross starts Watch on one Store and writes through another Store on
// the same database; the watcher must see the new version within limit.
func watchAcross(t *testing.T, env dialectEnv, poll, limit time.Duration) {
	ctx := context.Background()
	writer := env.open(t)
	watcher := env.open(t)

	wctx, cancel := context.WithCancel(ctx)
	got := make(chan int64, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		watcher.Watch(wctx, poll, func(v int64) { got <- v })
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()
	select {
	case v := <-got:
		if v != 0 {
			t.Fatalf("initial version %d", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no initial onChange")
	}
	if _, err := writer.CreateProvider(ctx, ProviderInput{Name: "w", Type: llm.ProviderOpenAI}); err != nil {
		t.Fatal(err)
	}
	want, _ := writer.Version(ctx)
	start := time.Now()
	select {
	case v := <-got:
		if v != want {
			t.Fatalf("onChange(%d), want %d", v, want)
		}
		t.Logf("change seen after %v", time.Since(start))
	case <-time.After(limit):
		t.Fatalf("no onChange within %v", limit)
	}
}

func TestWatchPostgresNotify(t *testing.T) {
	u := pgTestURL(t)
	env := dialectEnv{name: DialectPostgres, open: func(t testing.TB) *Store {
		return openTest(t, Options{URL: u, DataDir: t.TempDir(), EncryptionKey: testEncKey})
	}}
	// A one-minute poll proves the notification, not the poll, delivered it.
	watchAcross(t, env, time.Minute, time.Second)
}

func TestWatchSQLitePoll(t *testing.T) {
	dir := t.TempDir()
	env := dialectEnv{name: DialectSQLite, open: func(t testing.TB) *Store {
		return openTest(t, Options{DataDir: dir, EncryptionKey: testEncKey})
	}}
	watchAcross(t, env, 50*time.Millisecond, time.Second)
}

func TestWatchNoLeak(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		s := env.open(t)
		_, _ = s.Version(context.Background()) // warm the pool
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			s.Watch(ctx, 10*time.Millisecond, func(int64) {})
			close(done)
		}()
		time.Sleep(200 * time.Millisecond)
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Watch did not return after cancel")
		}
	})
}
