package quota_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ai/sluice/quota"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestAffinityMemoryTTL: an entry is found until its TTL, not after; the
// first key of a lookup that has one wins; Remember refreshes the TTL.
func TestAffinityMemoryTTL(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	s := quota.NewAffinityMemory(quota.AffinityMemoryOptions{Now: c.now})
	ctx := context.Background()
	if _, ok := s.Lookup(ctx, []string{"a"}); ok {
		t.Fatal("empty store hit")
	}
	s.Remember("a", "dep_a", time.Minute)
	s.Remember("b", "dep_b", time.Minute)
	if d, ok := s.Lookup(ctx, []string{"x", "b", "a"}); !ok || d != "dep_b" {
		t.Fatalf("lookup = %q, %v; want dep_b (first key that has one)", d, ok)
	}
	c.add(59 * time.Second)
	s.Remember("b", "dep_c", time.Minute) // refreshed and moved
	c.add(time.Second)
	if _, ok := s.Lookup(ctx, []string{"a"}); ok {
		t.Fatal("entry found at its TTL")
	}
	if d, ok := s.Lookup(ctx, []string{"a", "b"}); !ok || d != "dep_c" {
		t.Fatalf("refreshed lookup = %q, %v; want dep_c", d, ok)
	}
	if n := s.Len(); n != 1 {
		t.Fatalf("Len = %d after the expired entry was looked up; want 1", n)
	}
}

// TestAffinityMemoryBounded: a flood of unique prefixes never holds more
// than MaxEntries; the least recently used go first.
func TestAffinityMemoryBounded(t *testing.T) {
	s := quota.NewAffinityMemory(quota.AffinityMemoryOptions{MaxEntries: 100})
	ctx := context.Background()
	s.Remember("keep", "dep_k", time.Hour)
	for i := range 10_000 {
		if i%50 == 0 {
			s.Lookup(ctx, []string{"keep"}) // recently used: survives
		}
		s.Remember(fmt.Sprint(i), "dep", time.Hour)
		if n := s.Len(); n > 100 {
			t.Fatalf("Len = %d > MaxEntries after %d keys", n, i+1)
		}
	}
	if d, ok := s.Lookup(ctx, []string{"keep"}); !ok || d != "dep_k" {
		t.Fatalf("recently used key evicted: %q, %v", d, ok)
	}
	if _, ok := s.Lookup(ctx, []string{"0"}); ok {
		t.Fatal("least recently used key kept")
	}
}

// TestAffinityMemoryConcurrent is for -race.
func TestAffinityMemoryConcurrent(t *testing.T) {
	s := quota.NewAffinityMemory(quota.AffinityMemoryOptions{MaxEntries: 64})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				k := fmt.Sprint((g*7 + i) % 200)
				s.Remember(k, "d", time.Minute)
				s.Lookup(context.Background(), []string{k, "z"})
			}
		}()
	}
	wg.Wait()
}

// TestAffinityRedis: what one replica remembers another finds, with the
// TTL as the key's expiry; the first key that has one wins.
func TestAffinityRedis(t *testing.T) {
	c := testRedis(t)
	o := quota.AffinityRedisOptions{Timeout: time.Second}
	o.Prefix = testPrefix(t, c)
	a, b := quota.NewAffinityRedis(c, o), quota.NewAffinityRedis(c, o)
	ctx := testContext(t)
	if _, ok := b.Lookup(ctx, []string{"k1", "k2"}); ok {
		t.Fatal("empty store hit")
	}
	a.Remember("k2", "dep_2", time.Minute)
	a.Remember("k1", "dep_1", 300*time.Millisecond)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if d, ok := b.Lookup(ctx, []string{"k1", "k2"}); !ok || d != "dep_1" {
		t.Fatalf("lookup = %q, %v; want dep_1", d, ok)
	}
	if d, ok := b.Lookup(ctx, []string{"k2"}); !ok || d != "dep_2" {
		t.Fatalf("single-key lookup = %q, %v; want dep_2", d, ok)
	}
	ttl, err := c.PTTL(ctx, o.Prefix+"k1").Result()
	if err != nil || ttl <= 0 || ttl > 300*time.Millisecond {
		t.Fatalf("PTTL of k1 = %v, %v; want (0, 300ms]", ttl, err)
	}
	// Expiry is Redis's: poll until k1 is gone, then k2 answers.
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, ok := b.Lookup(ctx, []string{"k1", "k2"})
		if ok && d == "dep_2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("k1 never expired: lookup = %q, %v", d, ok)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAffinityRedisDownIsAMiss: a dead Redis makes lookups misses within
// the timeout and writes vanish; nothing errors or blocks.
func TestAffinityRedisDownIsAMiss(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 50 * time.Millisecond})
	defer c.Close()
	s := quota.NewAffinityRedis(c, quota.AffinityRedisOptions{Timeout: 50 * time.Millisecond, MaxPending: 2})
	ctx := testContext(t)
	for range 10 {
		s.Remember("k", "dep", time.Minute) // beyond MaxPending: dropped, never blocks
	}
	if d, ok := s.Lookup(ctx, []string{"k", "j"}); ok {
		t.Fatalf("dead Redis hit: %q", d)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestAffinityRedisBlackholeBacksOff: a Redis that accepts connections and
// never answers costs one lookup its timeout; the lookups of the next
// second are misses that send nothing; after it, one is tried again.
func TestAffinityRedisBlackholeBacksOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var received atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					received.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	c := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	clock := &fakeClock{t: time.Unix(1000, 0)}
	s := quota.NewAffinityRedis(c, quota.AffinityRedisOptions{Timeout: 50 * time.Millisecond, Now: clock.now})
	ctx := testContext(t)
	t0 := time.Now()
	if _, ok := s.Lookup(ctx, []string{"k1", "k2"}); ok {
		t.Fatal("blackhole hit")
	}
	t.Log("first lookup", time.Since(t0))
	// Wait until the first lookup's bytes arrived, then check that the
	// backed-off lookups send none.
	deadline := time.Now().Add(5 * time.Second)
	for received.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	sent := received.Load()
	if sent == 0 {
		t.Fatal("the first lookup sent nothing")
	}
	for range 5 {
		if _, ok := s.Lookup(ctx, []string{"k1"}); ok {
			t.Fatal("blackhole hit")
		}
	}
	time.Sleep(50 * time.Millisecond) // let any stray bytes arrive (none expected)
	if n := received.Load(); n != sent {
		t.Fatalf("lookups during the backoff sent %d bytes", n-sent)
	}
	clock.add(time.Second)
	t0 = time.Now()
	s.Lookup(ctx, []string{"k1"})
	t.Log("lookup after backoff", time.Since(t0))
	deadline = time.Now().Add(5 * time.Second)
	for received.Load() == sent && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if received.Load() == sent {
		t.Fatal("no lookup was tried after the backoff")
	}
}

// TestAffinityRedisWritesOncePerQuarterTTL: a hot prefix remembered on
// every request is written once per quarter of its TTL, and again at once
// when it moves to another deployment.
func TestAffinityRedisWritesOncePerQuarterTTL(t *testing.T) {
	c := testRedis(t)
	cnt := &counter{}
	c.AddHook(cnt)
	clock := &fakeClock{t: time.Unix(1000, 0)}
	o := quota.AffinityRedisOptions{Timeout: time.Second, Now: clock.now}
	o.Prefix = testPrefix(t, c)
	s := quota.NewAffinityRedis(c, o)
	ctx := testContext(t)
	writes := func() int64 {
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		return cnt.n.Load()
	}
	for range 10 {
		s.Remember("hot", "dep_a", time.Minute)
	}
	if n := writes(); n != 1 {
		t.Fatalf("10 remembers within a quarter TTL: %d writes; want 1", n)
	}
	s.Remember("hot", "dep_b", time.Minute)
	if n := writes(); n != 2 {
		t.Fatalf("moved to another deployment: %d writes; want 2", n)
	}
	clock.add(15 * time.Second)
	s.Remember("hot", "dep_b", time.Minute)
	if n := writes(); n != 3 {
		t.Fatalf("after a quarter TTL: %d writes; want 3", n)
	}
	if d, ok := s.Lookup(ctx, []string{"hot"}); !ok || d != "dep_b" {
		t.Fatalf("lookup = %q, %v; want dep_b", d, ok)
	}
}

// TestAffinityRedisRewritesWhatAnotherReplicaMoved: a replica that wrote
// a key and then finds another deployment there (another replica moved
// it) writes it again when it serves the prefix on its first deployment.
func TestAffinityRedisRewritesWhatAnotherReplicaMoved(t *testing.T) {
	c := testRedis(t)
	clock := &fakeClock{t: time.Unix(1000, 0)}
	o := quota.AffinityRedisOptions{Timeout: time.Second, Now: clock.now}
	o.Prefix = testPrefix(t, c)
	a, b := quota.NewAffinityRedis(c, o), quota.NewAffinityRedis(c, o)
	ctx := testContext(t)
	a.Remember("k", "dep_a", time.Minute)
	_ = a.Flush(ctx)
	b.Remember("k", "dep_b", time.Minute)
	_ = b.Flush(ctx)
	if d, _ := a.Lookup(ctx, []string{"k"}); d != "dep_b" {
		t.Fatalf("a's lookup = %q; want dep_b", d)
	}
	a.Remember("k", "dep_a", time.Minute) // dep_b was unavailable: served by dep_a
	_ = a.Flush(ctx)
	if d, _ := b.Lookup(ctx, []string{"k"}); d != "dep_a" {
		t.Fatalf("b's lookup = %q; want dep_a (a wrote it again)", d)
	}
}
