package quota_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sluice-ai/sluice/quota"
)

// syncReplica is one replica's HealthSync and what it applied.
type syncReplica struct {
	s      *quota.HealthSync
	got    chan quota.HealthEvent
	cancel context.CancelFunc
	done   chan struct{}
}

// newSyncReplica makes a HealthSync on its own Redis client (as another
// process would have) polling ids every poll, running until t ends.
func newSyncReplica(t *testing.T, prefix, origin string, poll time.Duration, ids ...string) *syncReplica {
	t.Helper()
	c := testRedis(t)
	r := &syncReplica{got: make(chan quota.HealthEvent, 64), done: make(chan struct{})}
	r.s = quota.NewHealthSync(c, quota.HealthSyncOptions{Prefix: prefix, Origin: origin, PollEvery: poll,
		IDs: func() []string { return ids },
		Apply: func(ev quota.HealthEvent) bool {
			select {
			case r.got <- ev:
			default: // the poll repeats itself; the test reads the first ones
			}
			return true
		}})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.s.Run(ctx); close(r.done) }()
	t.Cleanup(r.stop)
	return r
}

func (r *syncReplica) stop() {
	r.cancel()
	<-r.done
}

// next waits for the next applied event.
func (r *syncReplica) next(t *testing.T) quota.HealthEvent {
	t.Helper()
	select {
	case ev := <-r.got:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event applied within 10s")
	}
	return quota.HealthEvent{}
}

// none checks that nothing was applied in the meantime.
func (r *syncReplica) none(t *testing.T) {
	t.Helper()
	select {
	case ev := <-r.got:
		t.Fatalf("applied %+v, want nothing", ev)
	default:
	}
}

// waitSubscribers waits until n clients listen on the prefix's channel.
func waitSubscribers(t *testing.T, c *redis.Client, prefix string, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := c.PubSubNumSub(context.Background(), prefix+"events").Result()
		if err == nil && m[prefix+"events"] >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscribers: %v %v", m, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHealthSyncPubSub: a transition published on one replica reaches
// the other through pub/sub (the poll is off), with the same end.
func TestHealthSyncPubSub(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	a := newSyncReplica(t, prefix, "A", time.Hour)
	b := newSyncReplica(t, prefix, "B", time.Hour)
	waitSubscribers(t, c, prefix, 2)
	until := time.Now().Add(30 * time.Second)
	a.s.Publish(quota.HealthEvent{Deployment: "dep_1", State: "cooling", Until: until})
	ev := b.next(t)
	if ev.Deployment != "dep_1" || ev.State != "cooling" || ev.Origin != "A" {
		t.Fatalf("B applied %+v", ev)
	}
	if d := ev.Until.Sub(until); d < -time.Second || d > time.Second {
		t.Fatalf("until %v, want ≈ %v", ev.Until, until)
	}
	b.s.Publish(quota.HealthEvent{Deployment: "dep_1", State: "credential_dead", Revision: 7})
	if ev := a.next(t); ev.State != "credential_dead" || ev.Revision != 7 || ev.Origin != "B" {
		t.Fatalf("A applied %+v", ev)
	}
	// Neither applied its own echo.
	a.none(t)
	b.none(t)
}

// TestHealthSyncPollCatchesMissed: a replica that was not subscribed when
// the transition was published (a dropped message, or started later)
// learns it from the poll, with the time left the key holds.
func TestHealthSyncPollCatchesMissed(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	a := newSyncReplica(t, prefix, "A", 20*time.Millisecond, "dep_1", "dep_2")
	until := time.Now().Add(time.Minute)
	a.s.Publish(quota.HealthEvent{Deployment: "dep_2", State: "ejected", Until: until})
	// Wait for the key, then start B: the message is long gone.
	deadline := time.Now().Add(10 * time.Second)
	for c.Exists(context.Background(), keyOf(t, c, prefix)).Val() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("key never written")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b := newSyncReplica(t, prefix, "B", 20*time.Millisecond, "dep_1", "dep_2", "dep_3")
	ev := b.next(t)
	if ev.Deployment != "dep_2" || ev.State != "ejected" {
		t.Fatalf("B applied %+v", ev)
	}
	if d := ev.Until.Sub(until); d < -time.Second || d > time.Second {
		t.Fatalf("until %v, want ≈ %v", ev.Until, until)
	}
	// A's own poll sees its key and ignores it.
	time.Sleep(100 * time.Millisecond)
	a.none(t)
}

// keyOf finds the single health key under prefix.
func keyOf(t *testing.T, c *redis.Client, prefix string) string {
	t.Helper()
	keys, _ := c.Keys(context.Background(), prefix+"{d:*").Result()
	if len(keys) != 1 {
		return prefix + "{d:none}"
	}
	return keys[0]
}

// TestHealthSyncIgnoresGarbage: whatever sits in the keys or comes over
// the channel, only well-formed transitions of other replicas are
// applied, nothing panics and the sync keeps working.
func TestHealthSyncIgnoresGarbage(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	b := newSyncReplica(t, prefix, "B", 20*time.Millisecond, "dep_1", "dep_2")
	waitSubscribers(t, c, prefix, 1)
	ctx := context.Background()
	garbage := []string{
		``, `{`, `null`, `[]`, `"x"`, strings.Repeat("x", 5000),
		`{"d":"dep_1","s":"exploded","o":"Z"}`,
		`{"d":"dep_1","s":"cooling","ms":-5,"o":"Z"}`,
		`{"d":"dep_1","s":"cooling","ms":99999999999999,"o":"Z"}`,
		`{"d":"dep_1","s":"cooling","o":"Z"}`,
		`{"d":"","s":"ejected","ms":1000,"o":"Z"}`,
		`{"d":"dep_1","s":"ejected","ms":1000,"o":"B"}`,
		`{"d":"` + strings.Repeat("d", 300) + `","s":"ejected","ms":1000,"o":"Z"}`,
		`{"d":"dep_1","s":"ejected","ms":"soon","o":"Z"}`,
	}
	for _, g := range garbage {
		c.Publish(ctx, prefix+"events", g)
	}
	// Keys: garbage, a payload for another deployment than the key's,
	// and one without expiry.
	setKey := func(id, v string, ttl time.Duration) {
		k := quota.HealthKeyForTest(prefix, id)
		if err := c.Set(ctx, k, v, ttl).Err(); err != nil {
			t.Fatal(err)
		}
	}
	setKey("dep_1", `{"d":"dep_2","s":"ejected","ms":1000,"o":"Z"}`, time.Minute)
	setKey("dep_2", `{"d":"dep_2","s":"ejected","ms":1000,"o":"Z"}`, 0)
	time.Sleep(200 * time.Millisecond) // several polls
	b.none(t)
	// Still working: a good message gets through.
	c.Publish(ctx, prefix+"events", `{"d":"dep_1","s":"ejected","ms":1000,"o":"Z"}`)
	if ev := b.next(t); ev.Deployment != "dep_1" || ev.State != "ejected" || ev.Origin != "Z" {
		t.Fatalf("applied %+v", ev)
	}
}

// TestHealthSyncStopsCleanly: Run returns when its context ends, with
// every goroutine it started stopped, also when Redis is unreachable.
func TestHealthSyncStopsCleanly(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer dead.Close()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for i, cl := range []*redis.Client{c, dead} {
		s := quota.NewHealthSync(cl, quota.HealthSyncOptions{Prefix: prefix, Origin: "A", PollEvery: 10 * time.Millisecond,
			IDs: func() []string { return []string{"dep_1"} }})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { s.Run(ctx) })
		for range 3000 {
			s.Publish(quota.HealthEvent{Deployment: "dep_1", State: "ejected", Until: time.Now().Add(time.Minute)})
		}
		time.Sleep(100 * time.Millisecond)
		cancel()
		wg.Wait()
		if i == 1 && s.Dropped() == 0 {
			t.Error("a full queue dropped nothing")
		}
		s.Publish(quota.HealthEvent{Deployment: "dep_1", State: "healthy"}) // after Run: must not block
	}
}

// testClusterHealthSync: on a Cluster, transitions of deployments whose
// keys live on different masters reach another replica by pub/sub, and a
// replica started later reads them all with one poll (pipelined per
// node, not a cross-slot MGET).
func testClusterHealthSync(t *testing.T, tc *testCluster) {
	prefix := tc.prefix(t)
	owner := tc.masters(t)
	var ids []string
	masters := map[string]bool{}
	for i := range 12 {
		id := fmt.Sprintf("dep_%d", i)
		ids = append(ids, id)
		masters[tc.masterOf(t, owner, quota.HealthKeyForTest(prefix, id))] = true
	}
	if len(masters) < 2 {
		t.Fatalf("the keys of 12 deployments all live on one master")
	}
	run := func(origin string, poll time.Duration) *syncReplica {
		r := &syncReplica{got: make(chan quota.HealthEvent, 256), done: make(chan struct{})}
		r.s = quota.NewHealthSync(tc.c, quota.HealthSyncOptions{Prefix: prefix, Origin: origin, PollEvery: poll,
			IDs: func() []string { return ids },
			Apply: func(ev quota.HealthEvent) bool {
				select {
				case r.got <- ev:
				default:
				}
				return true
			}})
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		go func() { r.s.Run(ctx); close(r.done) }()
		t.Cleanup(r.stop)
		return r
	}
	a := run("A", time.Hour)
	b := run("B", time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := tc.c.PubSubNumSub(context.Background(), prefix+"events").Result()
		if err == nil && m[prefix+"events"] >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscribers: %v %v", m, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, id := range ids {
		a.s.Publish(quota.HealthEvent{Deployment: id, State: "ejected", Until: time.Now().Add(time.Minute)})
	}
	got := map[string]bool{}
	for len(got) < len(ids) {
		got[b.next(t).Deployment] = true
	}
	c := run("C", 20*time.Millisecond)
	got = map[string]bool{}
	for len(got) < len(ids) {
		ev := c.next(t)
		if ev.State != "ejected" || ev.Origin != "A" {
			t.Fatalf("C applied %+v", ev)
		}
		got[ev.Deployment] = true
	}
}

// TestHealthSyncHealthyKeyIsTombstone: a replica that missed the message
// ending an ejection does not apply the ejection from the key (the
// healthy key replaced it), nor the healthy key itself.
func TestHealthSyncHealthyKeyIsTombstone(t *testing.T) {
	c := testRedis(t)
	prefix := testPrefix(t, c)
	a := newSyncReplica(t, prefix, "A", time.Hour)
	a.s.Publish(quota.HealthEvent{Deployment: "dep_1", State: "ejected", Until: time.Now().Add(time.Minute)})
	a.s.Publish(quota.HealthEvent{Deployment: "dep_1", State: "healthy"})
	k := quota.HealthKeyForTest(prefix, "dep_1")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.Get(context.Background(), k).Val(), `"healthy"`) {
		if time.Now().After(deadline) {
			t.Fatal("healthy key never written")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b := newSyncReplica(t, prefix, "B", 10*time.Millisecond, "dep_1")
	if err := b.s.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.none(t)
}

// startRedisAt runs a redis-server of the test's own on addr and returns
// a function that kills it.
func startRedisAt(t *testing.T, addr string) (kill func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		needService(t, "redis-server not found: %v", err)
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	var once sync.Once
	kill = func() { once.Do(func() { _ = cmd.Process.Kill(); <-exited }) }
	t.Cleanup(kill)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	if err := waitFor(10*time.Second, func(ctx context.Context) error { return c.Ping(ctx).Err() }); err != nil {
		t.Fatalf("private redis-server on %s: %v", addr, err)
	}
	return kill
}

// TestHealthSyncSurvivesRedisRestart: after Redis goes away and comes
// back (empty), the subscriptions are renewed by themselves: a transition
// published then reaches the other replica by pub/sub (the poll is off).
func TestHealthSyncSurvivesRedisRestart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	kill := startRedisAt(t, addr)
	client := func() *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second})
		t.Cleanup(func() { c.Close() })
		return c
	}
	mk := func(origin string) *syncReplica {
		r := &syncReplica{got: make(chan quota.HealthEvent, 64), done: make(chan struct{})}
		r.s = quota.NewHealthSync(client(), quota.HealthSyncOptions{Origin: origin, PollEvery: time.Hour,
			Apply: func(ev quota.HealthEvent) bool {
				select {
				case r.got <- ev:
				default:
				}
				return true
			}})
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		go func() { r.s.Run(ctx); close(r.done) }()
		t.Cleanup(r.stop)
		return r
	}
	a, b := mk("A"), mk("B")
	probe := client()
	waitSubscribers(t, probe, "sluice:h:", 2)
	kill()
	startRedisAt(t, addr)
	waitSubscribers(t, probe, "sluice:h:", 2)
	a.s.Publish(quota.HealthEvent{Deployment: "dep_9", State: "cooling", Until: time.Now().Add(time.Minute)})
	if ev := b.next(t); ev.Deployment != "dep_9" || ev.State != "cooling" {
		t.Fatalf("B applied %+v", ev)
	}
}
