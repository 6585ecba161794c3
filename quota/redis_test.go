package quota_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/quota"
	"github.com/sluice-ai/sluice/quota/storetest"
)

// testRedis returns a client of SLUICE_TEST_REDIS_URL (default the local
// Redis), closed at the end of t; it skips when Redis does not answer, and
// fails instead with SLUICE_REQUIRE_SERVICES=1.
func testRedis(t testing.TB) *redis.Client {
	t.Helper()
	raw := os.Getenv("SLUICE_TEST_REDIS_URL")
	if raw == "" {
		raw = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatal("SLUICE_TEST_REDIS_URL does not parse")
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("Redis unreachable: %v", err)
		}
		t.Skipf("Redis unreachable: %v", err)
	}
	return c
}

// testPrefix is a random key prefix whose keys are deleted at the end of t.
func testPrefix(t testing.TB, c *redis.Client) string {
	p := fmt.Sprintf("sluicetest:%016x:", rand.Uint64())
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, p+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return p
}

func redisStores(c *redis.Client, split bool) storetest.NewStore {
	return func(t *testing.T, clock func() time.Time) quota.Store {
		return quota.NewRedis(c, quota.RedisOptions{Prefix: testPrefix(t, c), Split: split, Clock: clock})
	}
}

func TestRedisContract(t *testing.T) {
	storetest.Run(t, redisStores(testRedis(t), false))
}

func TestRedisSplitContract(t *testing.T) {
	storetest.Run(t, redisStores(testRedis(t), true))
}

// counter counts the round trips a client makes (a pipeline is one), and
// apart those made under a context marked by markAdmit.
type counter struct{ n, admits atomic.Int64 }

type admitMark struct{}

func markAdmit(ctx context.Context) context.Context { return context.WithValue(ctx, admitMark{}, true) }

func (c *counter) add(ctx context.Context) {
	c.n.Add(1)
	if ctx.Value(admitMark{}) != nil {
		c.admits.Add(1)
	}
}

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(ctx)
		return next(ctx, cmd)
	}
}
func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.add(ctx)
		return next(ctx, cmds)
	}
}

func base() time.Time { return time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC) }

func TestRedisRoundTrips(t *testing.T) {
	c := testRedis(t)
	cnt := &counter{}
	c.AddHook(cnt)
	ctx := context.Background()
	subs := []quota.Subject{
		{Scope: quota.ScopeKey, ID: "k", Limits: llm.Limits{RPM: 10, TPM: 1000, MaxParallel: 2}},
		{Scope: quota.ScopeOwner, ID: "o", Limits: llm.Limits{RPM: 10}},
		{Scope: quota.ScopeModel, ID: "m", Limits: llm.Limits{RPM: 1}},
	}
	for _, split := range []bool{false, true} {
		s := quota.NewRedis(c, quota.RedisOptions{Prefix: testPrefix(t, c), Split: split})
		req := &quota.AdmitRequest{ID: "a", Subjects: subs, Charge: quota.Charge{Requests: 1, Tokens: 10, Parallel: true}}
		if _, err := s.Admit(ctx, req); err != nil { // loads the script
			t.Fatal(err)
		}
		cnt.n.Store(0)
		d, err := s.Admit(ctx, req) // refused by the 3rd subject
		if err != nil {
			t.Fatal(err)
		}
		want := int64(1)
		if split {
			want = 2 // the pipeline, and the undo of the first two
		}
		if n := cnt.n.Load(); n != want || d.Allowed || d.Denied != 2 {
			t.Fatalf("split=%v: %d round trips (want %d), decision %+v", split, n, want, d)
		}
		cnt.n.Store(0)
		if err := s.Settle(ctx, &quota.Settlement{ID: "a", Subjects: subs, Reserved: req.Charge}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Peek(ctx, subs); err != nil {
			t.Fatal(err)
		}
		if n := cnt.n.Load(); n != 2 {
			t.Fatalf("split=%v: Settle and Peek took %d round trips", split, n)
		}
		st, _ := s.Peek(ctx, subs)
		if st[0].RPM.Remaining != 9 || st[0].TPM.Remaining != 1000 || st[0].Parallel.InUse != 0 || st[1].RPM.Remaining != 9 {
			t.Fatalf("split=%v: after the refusal and the settlement: %+v", split, st)
		}
	}
}

// TestRedisScriptFlushed: a Redis that lost its scripts (restart, SCRIPT
// FLUSH) still answers, in both modes.
func TestRedisScriptFlushed(t *testing.T) {
	c := testRedis(t)
	ctx := context.Background()
	subs := []quota.Subject{{Scope: quota.ScopeKey, ID: "k", Limits: llm.Limits{RPM: 10}}, {Scope: quota.ScopeOwner, ID: "o", Limits: llm.Limits{RPM: 10}}}
	for _, split := range []bool{false, true} {
		s := quota.NewRedis(c, quota.RedisOptions{Prefix: testPrefix(t, c), Split: split})
		for i := range 2 {
			if err := c.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			d, err := s.Admit(ctx, &quota.AdmitRequest{ID: "a", Subjects: subs, Charge: quota.Charge{Requests: 1}})
			if err != nil || !d.Allowed || d.States[1].RPM.Remaining != int64(9-i) {
				t.Fatalf("split=%v: %+v, %v", split, d, err)
			}
		}
	}
}

// TestRedisGarbage: keys someone else wrote garbage into give an error or
// a sane answer, never a panic.
func TestRedisGarbage(t *testing.T) {
	c := testRedis(t)
	ctx := context.Background()
	for _, split := range []bool{false, true} {
		prefix := testPrefix(t, c)
		clock := storetest.NewClock(base())
		s := quota.NewRedis(c, quota.RedisOptions{Prefix: prefix, Split: split, Clock: clock.Now})
		lim := llm.Limits{RPM: 10, TPM: 100, MaxParallel: 2, Budget: &llm.Budget{USD: 1, Tokens: 100, Period: llm.PeriodDay}}
		start, _ := llm.PeriodBounds(llm.PeriodDay, base())
		for _, v := range []string{"abc", "", "1e400", "-1e400", "nan", "inf", "-inf", "0x10", "1.5", "-5", "99999999999999999999999", " 7 ", "1|2|3"} {
			sub := quota.Subject{Scope: quota.ScopeKey, ID: "g" + v, Limits: lim}
			h := prefix + sub.Tag()
			fields := []string{"rl", "rt", "tl", "tt", "bk", "bp", "bu", "bt", "ru", "rk", "rp", "v:r1"}
			for _, f := range fields {
				args := []any{f, v}
				if err := c.HSet(ctx, h, args...).Err(); err != nil {
					t.Fatal(err)
				}
			}
			c.ZAdd(ctx, h+":r", redis.Z{Score: 1, Member: "r1"}, redis.Z{Score: 1e300, Member: "r2"})
			for range 2 {
				_ = s.Seed(ctx, []quota.Seed{{Subject: sub, Start: start}})
				d, err := s.Admit(ctx, &quota.AdmitRequest{ID: "r1", Subjects: []quota.Subject{sub, sub}, Charge: quota.Charge{Requests: 1, Tokens: 1, CostMicros: 1, Parallel: true}})
				if err == nil && len(d.States) != 2 {
					t.Fatalf("%q: %+v", v, d)
				}
				if err := s.Settle(ctx, &quota.Settlement{ID: "r1", Subjects: []quota.Subject{sub}, Reserved: quota.Charge{Tokens: 1}, Actual: quota.Charge{Tokens: 5}}); err != nil {
					t.Logf("%q: Settle: %v", v, err)
				}
				st, err := s.Peek(ctx, []quota.Subject{sub})
				if err != nil {
					t.Fatalf("%q: Peek: %v", v, err)
				}
				if w := st[0].TPM; w.Remaining < -100 || w.Remaining > 100 || w.Reset > 2*time.Minute || st[0].Parallel.InUse < 0 {
					t.Fatalf("%q: insane state %+v", v, st[0])
				}
			}
		}
		// A key of the wrong type is an error wrapping ErrUnavailable.
		sub := quota.Subject{Scope: quota.ScopeKey, ID: "wrongtype", Limits: lim}
		c.Set(ctx, prefix+sub.Tag(), "x", time.Minute)
		_, err := s.Admit(ctx, &quota.AdmitRequest{ID: "r", Subjects: []quota.Subject{sub}, Charge: quota.Charge{Requests: 1}})
		if !errors.Is(err, quota.ErrUnavailable) {
			t.Fatalf("wrong type: %v", err)
		}
		if _, err := s.Peek(ctx, []quota.Subject{sub}); !errors.Is(err, quota.ErrUnavailable) {
			t.Fatalf("wrong type: Peek: %v", err)
		}
		if err := s.Settle(ctx, &quota.Settlement{ID: "r", Subjects: []quota.Subject{sub}}); !errors.Is(err, quota.ErrUnavailable) {
			t.Fatalf("wrong type: Settle: %v", err)
		}
	}
}

// TestRedisUnavailable: a Redis that cannot be reached is ErrUnavailable,
// and the error does not carry the password.
func TestRedisUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, Password: "hunter2secret", MaxRetries: -1, DialTimeout: time.Second, DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	defer c.Close()
	for _, split := range []bool{false, true} {
		s := quota.NewRedis(c, quota.RedisOptions{Split: split})
		subs := []quota.Subject{{Scope: quota.ScopeKey, ID: "k", Limits: llm.Limits{RPM: 1}}, {Scope: quota.ScopeOwner, ID: "o", Limits: llm.Limits{RPM: 1}}}
		ctx := context.Background()
		_, err := s.Admit(ctx, &quota.AdmitRequest{ID: "a", Subjects: subs, Charge: quota.Charge{Requests: 1}})
		errs := []error{err, s.Settle(ctx, &quota.Settlement{ID: "a", Subjects: subs}), s.Seed(ctx, []quota.Seed{{Subject: quota.Subject{Limits: llm.Limits{Budget: &llm.Budget{USD: 1}}}}})}
		_, err = s.Peek(ctx, subs)
		errs = append(errs, err)
		_, err = s.Heartbeat(ctx, "r", time.Second)
		errs = append(errs, err)
		for i, err := range errs {
			if !errors.Is(err, quota.ErrUnavailable) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("split=%v call %d: %v", split, i, err)
			}
		}
	}
}

// TestRedisExpiry: idle rate-only subjects vanish after two minutes;
// budgets are kept past their period's end; lifetime budgets forever;
// reservations keep their subject.
func TestRedisExpiry(t *testing.T) {
	c := testRedis(t)
	ctx := context.Background()
	prefix := testPrefix(t, c)
	clock := storetest.NewClock(base())
	s := quota.NewRedis(c, quota.RedisOptions{Prefix: prefix, Clock: clock.Now})
	ttl := func(sub quota.Subject, suffix string) time.Duration {
		d, err := c.PTTL(ctx, prefix+sub.Tag()+suffix).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	rate := quota.Subject{Scope: quota.ScopeKey, ID: "rate", Limits: llm.Limits{RPM: 5}}
	day := quota.Subject{Scope: quota.ScopeKey, ID: "day", Limits: llm.Limits{Budget: &llm.Budget{Tokens: 5, Period: llm.PeriodDay}}}
	life := quota.Subject{Scope: quota.ScopeKey, ID: "life", Limits: llm.Limits{Budget: &llm.Budget{Tokens: 5, Period: llm.PeriodLifetime}}}
	par := quota.Subject{Scope: quota.ScopeKey, ID: "par", Limits: llm.Limits{MaxParallel: 5}}
	start, end := llm.PeriodBounds(llm.PeriodDay, base())
	if err := s.Seed(ctx, []quota.Seed{{Subject: day, Start: start}, {Subject: life, Start: time.Unix(0, 0)}}); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []quota.Subject{rate, day, life} {
		if d, err := s.Admit(ctx, &quota.AdmitRequest{ID: "a", Subjects: []quota.Subject{sub}, Charge: quota.Charge{Requests: 1, Tokens: 1}}); err != nil || !d.Allowed {
			t.Fatal(d, err)
		}
	}
	if d, err := s.Admit(ctx, &quota.AdmitRequest{ID: "a", Subjects: []quota.Subject{par}, Charge: quota.Charge{Parallel: true}, TTL: time.Hour}); err != nil || !d.Allowed {
		t.Fatal(d, err)
	}
	if d := ttl(rate, ""); d <= 0 || d > 2*time.Minute {
		t.Fatalf("rate-only subject expires in %v", d)
	}
	if d := ttl(day, ""); d < end.Sub(base()) {
		t.Fatalf("day budget expires in %v, before the day ends", d)
	}
	if d := ttl(life, ""); d != -1 {
		t.Fatalf("lifetime budget expires in %v", d)
	}
	if d, dz := ttl(par, ""), ttl(par, ":r"); d < time.Hour-time.Second || dz < time.Hour-time.Second {
		t.Fatalf("subject with a reservation expires in %v / %v", d, dz)
	}
}

func TestRedisHeartbeat(t *testing.T) {
	c := testRedis(t)
	ctx := context.Background()
	prefix := testPrefix(t, c)
	clock := storetest.NewClock(base())
	s := quota.NewRedis(c, quota.RedisOptions{Prefix: prefix, Clock: clock.Now})
	beat := func(id string, want int) {
		t.Helper()
		n, err := s.Heartbeat(ctx, id, 10*time.Second)
		if err != nil || n != want {
			t.Fatalf("Heartbeat(%s) = %d, %v; want %d", id, n, err, want)
		}
	}
	beat("a", 1)
	beat("b", 2)
	beat("a", 2)
	clock.Advance(10 * time.Second)
	beat("c", 1) // a and b expired
	// Server time.
	s = quota.NewRedis(c, quota.RedisOptions{Prefix: testPrefix(t, c)})
	if n, err := s.Heartbeat(ctx, "x", time.Second); err != nil || n != 1 {
		t.Fatalf("Heartbeat with server time = %d, %v", n, err)
	}
}

// TestRedisCanceled: a canceled context is ErrUnavailable and still
// context.Canceled.
func TestRedisCanceled(t *testing.T) {
	c := testRedis(t)
	s := quota.NewRedis(c, quota.RedisOptions{Prefix: testPrefix(t, c)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Admit(ctx, &quota.AdmitRequest{ID: "a", Subjects: []quota.Subject{{Scope: quota.ScopeKey, ID: "k", Limits: llm.Limits{RPM: 1}}}})
	if !errors.Is(err, quota.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Admit with a canceled context: %v", err)
	}
}

// TestRedisClusterSplits: a Cluster client always runs one script per
// subject (the subjects live in different slots).
func TestRedisClusterSplits(t *testing.T) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cc.Close()
	if !quota.IsSplit(quota.NewRedis(cc, quota.RedisOptions{})) {
		t.Fatal("a cluster client does not split")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if quota.IsSplit(quota.NewRedis(c, quota.RedisOptions{})) {
		t.Fatal("a single-node client splits")
	}
}
