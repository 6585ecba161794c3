package quota_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/quota"
	"github.com/sluice-ai/sluice/quota/storetest"
)

// testCluster is a 3-master Redis Cluster of the test's own, on loopback.
type testCluster struct {
	addrs []string // the masters, host:port
	c     *redis.ClusterClient
}

// clusterMasters is how many masters startCluster makes.
const clusterMasters = 3

// needService skips t, or fails it with SLUICE_REQUIRE_SERVICES=1.
func needService(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// freeClusterPort returns a loopback port that is free, and whose
// cluster bus port (port+10000) is free too.
func freeClusterPort(t testing.TB, taken map[int]bool) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p+10000 > 65535 || taken[p] || taken[p+10000] {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		bus.Close()
		taken[p], taken[p+10000] = true, true
		return p
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

// startCluster starts a 3-master Redis Cluster (redis-server ×3, then
// redis-cli --cluster create), waits until every node says
// cluster_state:ok, and kills it at the end of t. It skips (fails with
// SLUICE_REQUIRE_SERVICES=1) when redis-server or redis-cli is missing.
func startCluster(t *testing.T) *testCluster {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		needService(t, "redis-server not found: %v", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		needService(t, "redis-cli not found: %v", err)
	}
	dir := t.TempDir()
	taken := map[int]bool{}
	tc := &testCluster{}
	var logs []string
	// tail is the end of the nodes' logs, for a failure message.
	tail := func() string {
		var b strings.Builder
		for _, f := range logs {
			data, _ := os.ReadFile(f)
			if len(data) > 2000 {
				data = data[len(data)-2000:]
			}
			fmt.Fprintf(&b, "\n--- %s:\n%s", filepath.Base(f), data)
		}
		return b.String()
	}
	for range clusterMasters {
		addr, logFile := startNode(t, server, dir, taken)
		logs = append(logs, logFile)
		tc.addrs = append(tc.addrs, addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"--cluster", "create"}, tc.addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s%s", err, out, tail())
	}
	// Every node sees the whole cluster.
	for _, a := range tc.addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		err := waitFor(20*time.Second, func(ctx context.Context) error {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(clusterMasters)) {
				return fmt.Errorf("not ready: %q", info)
			}
			return nil
		})
		c.Close()
		if err != nil {
			t.Fatalf("cluster node %s: %v%s", a, err, tail())
		}
	}
	tc.c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: tc.addrs})
	t.Cleanup(func() { tc.c.Close() })
	return tc
}

// errExited is a cluster node that exited before answering.
var errExited = errors.New("redis-server exited")

// startNode starts one cluster node on a free port, killed at the end of
// t, and waits until it answers (INFO, with its own process id). A node that exits first (its port
// was taken between the check and its bind) is started again on another
// port, twice at most.
func startNode(t *testing.T, server, dir string, taken map[int]bool) (addr, logFile string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		ps := strconv.Itoa(freeClusterPort(t, taken))
		addr, logFile = "127.0.0.1:"+ps, filepath.Join(dir, "redis-"+ps+".log")
		cmd := exec.Command(server, "--port", ps, "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes-"+ps+".conf"),
			"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", logFile, "--daemonize", "no")
		if err := cmd.Start(); err != nil {
			t.Fatalf("redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		err := waitFor(10*time.Second, func(ctx context.Context) error {
			select {
			case <-exited:
				return errExited
			default:
			}
			// The answer must be this process's, not another server's
			// that holds the port.
			info, err := c.Info(ctx, "server").Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "process_id:"+strconv.Itoa(cmd.Process.Pid)+"\r\n") {
				return fmt.Errorf("%s is another server", addr)
			}
			return nil
		})
		c.Close()
		if err == nil {
			return addr, logFile
		}
		if !errors.Is(err, errExited) || attempt == 2 {
			data, _ := os.ReadFile(logFile)
			t.Fatalf("cluster node %s does not answer: %v\n%s", addr, err, data)
		}
	}
}

// waitFor polls f every 50 ms until it succeeds, says errExited, or d has
// passed; it returns f's last error.
func waitFor(d time.Duration, f func(ctx context.Context) error) error {
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := f(ctx)
		cancel()
		if err == nil || errors.Is(err, errExited) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// prefix is a random key prefix whose keys are deleted, on every master,
// at the end of t.
func (tc *testCluster) prefix(t testing.TB) string {
	p := fmt.Sprintf("sluicetest:%016x:", rand.Uint64())
	t.Cleanup(func() {
		ctx := context.Background()
		_ = tc.c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			iter := m.Scan(ctx, 0, p+"*", 1000).Iterator()
			for iter.Next(ctx) {
				m.Del(ctx, iter.Val())
			}
			return iter.Err()
		})
	})
	return p
}

// masters maps every slot to the address of the master that owns it, as
// CLUSTER SHARDS says.
func (tc *testCluster) masters(t testing.TB) func(slot int64) string {
	t.Helper()
	shards, err := tc.c.ClusterShards(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return func(slot int64) string {
		for _, sh := range shards {
			for _, r := range sh.Slots {
				if r.Start > slot || slot > r.End {
					continue
				}
				for _, n := range sh.Nodes {
					if n.Role == "master" {
						return net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))
					}
				}
			}
		}
		return ""
	}
}

// masterOf is the master that holds key, by CLUSTER KEYSLOT.
func (tc *testCluster) masterOf(t testing.TB, owner func(int64) string, key string) string {
	t.Helper()
	slot, err := tc.c.ClusterKeySlot(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	m := owner(slot)
	if m == "" {
		t.Fatalf("no master owns slot %d", slot)
	}
	return m
}

// spreadStore is a Store that records the hash keys of every admission
// of several subjects, to check afterwards that they spanned nodes.
type spreadStore struct {
	quota.Store
	prefix string
	mu     *sync.Mutex
	seen   *[][]string
}

func (s spreadStore) Admit(ctx context.Context, r *quota.AdmitRequest) (quota.Decision, error) {
	if len(r.Subjects) > 1 {
		keys := make([]string, len(r.Subjects))
		for i := range r.Subjects {
			keys[i] = s.prefix + r.Subjects[i].Tag()
		}
		s.mu.Lock()
		*s.seen = append(*s.seen, keys)
		s.mu.Unlock()
	}
	return s.Store.Admit(ctx, r)
}

// TestRedisCluster runs the Redis store on a real 3-master Redis Cluster
// (a *redis.ClusterClient, so split mode: one script per subject), one
// cluster for all its subtests.
func TestRedisCluster(t *testing.T) {
	tc := startCluster(t)
	t.Run("Contract", func(t *testing.T) { testClusterContract(t, tc) })
	t.Run("RefusalUndo", func(t *testing.T) { testClusterRefusalUndo(t, tc) })
	t.Run("ScriptFlushed", func(t *testing.T) { testClusterScriptFlushed(t, tc) })
	t.Run("Heartbeat", func(t *testing.T) { testClusterHeartbeat(t, tc) })
	t.Run("SlotMoved", func(t *testing.T) { testClusterSlotMoved(t, tc) })
	t.Run("SlotMigrating", func(t *testing.T) { testClusterSlotMigrating(t, tc) })
	t.Run("HealthSync", func(t *testing.T) { testClusterHealthSync(t, tc) })
}

// testClusterContract: the contract suite, and proof that its
// admissions of several subjects did span masters.
func testClusterContract(t *testing.T, tc *testCluster) {
	var mu sync.Mutex
	var seen [][]string
	t.Cleanup(func() { // after the suite's parallel subtests
		owner := tc.masters(t)
		spanning := 0
		for _, keys := range seen {
			ms := map[string]bool{}
			for _, k := range keys {
				ms[tc.masterOf(t, owner, k)] = true
			}
			if len(ms) > 1 {
				spanning++
			}
		}
		t.Logf("%d of %d admissions of several subjects spanned several masters", spanning, len(seen))
		if spanning == 0 {
			t.Errorf("no admission of several subjects spanned two masters (%d admissions)", len(seen))
		}
	})
	storetest.Run(t, func(t *testing.T, clock func() time.Time) quota.Store {
		p := tc.prefix(t)
		r := quota.NewRedis(tc.c, quota.RedisOptions{Prefix: p, Clock: clock})
		if !quota.IsSplit(r) {
			t.Fatal("the store on a cluster client does not split")
		}
		return spreadStore{Store: r, prefix: p, mu: &mu, seen: &seen}
	})
}

// spreadSubjects returns one subject per master (IDs searched until their
// hash keys land on distinct masters), with the given limits in order.
func spreadSubjects(t *testing.T, tc *testCluster, prefix string, limits ...llm.Limits) []quota.Subject {
	t.Helper()
	owner := tc.masters(t)
	used := map[string]bool{}
	var out []quota.Subject
	scopes := []quota.Scope{quota.ScopeKey, quota.ScopeOwner, quota.ScopeModel, quota.ScopeDeployment}
	for i := 0; len(out) < len(limits) && i < 1000; i++ {
		s := quota.Subject{Scope: scopes[len(out)%len(scopes)], ID: fmt.Sprintf("u%d-%d", i, rand.Int64()), Limits: limits[len(out)]}
		m := tc.masterOf(t, owner, prefix+s.Tag())
		if used[m] {
			continue
		}
		used[m] = true
		out = append(out, s)
	}
	if len(out) < len(limits) {
		t.Fatalf("found subjects on only %d distinct masters", len(out))
	}
	return out
}

// testClusterRefusalUndo: when one subject refuses (or needs a seed), the
// subjects on the other masters, whose scripts did take, are given
// everything back: buckets, slot, reservation and budget.
func testClusterRefusalUndo(t *testing.T, tc *testCluster) {
	ctx := context.Background()
	p := tc.prefix(t)
	clock := storetest.NewClock(base())
	s := quota.NewRedis(tc.c, quota.RedisOptions{Prefix: p, Clock: clock.Now})
	free := llm.Limits{RPM: 10, TPM: 1000, MaxParallel: 1, Budget: &llm.Budget{USD: 1, Tokens: 5000, Period: llm.PeriodDay}}
	start, _ := llm.PeriodBounds(llm.PeriodDay, base())
	c := quota.Charge{Requests: 1, Tokens: 100, CostMicros: 1000, Parallel: true}
	for denied := range clusterMasters {
		lims := []llm.Limits{free, free, free}
		lims[denied] = llm.Limits{RPM: 1}
		subs := spreadSubjects(t, tc, p, lims...)
		var seeds []quota.Seed
		for i := range subs {
			if i != denied {
				seeds = append(seeds, quota.Seed{Subject: subs[i], Start: start})
			}
		}
		if err := s.Seed(ctx, seeds); err != nil {
			t.Fatal(err)
		}
		// The refusing subject is used up.
		if d, err := s.Admit(ctx, &quota.AdmitRequest{ID: "x", Subjects: subs[denied : denied+1], Charge: quota.Charge{Requests: 1}}); err != nil || !d.Allowed {
			t.Fatalf("denied=%d: %+v %v", denied, d, err)
		}
		id := fmt.Sprintf("r%d", denied)
		d, err := s.Admit(ctx, &quota.AdmitRequest{ID: id, Subjects: subs, Charge: c, TTL: time.Hour})
		if err != nil || d.Allowed || d.Denied != denied || d.Limit != quota.LimitRPM {
			t.Fatalf("denied=%d: %+v %v", denied, d, err)
		}
		untouched(t, tc, s, p, id, subs, denied, d.States)
	}
	// A subject whose budget is missing: the others are given back too.
	lims := []llm.Limits{free, free, {Budget: &llm.Budget{Tokens: 10, Period: llm.PeriodDay}}}
	subs := spreadSubjects(t, tc, p, lims...)
	if err := s.Seed(ctx, []quota.Seed{{Subject: subs[0], Start: start}, {Subject: subs[1], Start: start}}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Admit(ctx, &quota.AdmitRequest{ID: "seed", Subjects: subs, Charge: c, TTL: time.Hour})
	if err != nil || d.Allowed || len(d.NeedSeed) != 1 || d.NeedSeed[0] != 2 {
		t.Fatalf("missing budget: %+v %v", d, err)
	}
	untouched(t, tc, s, p, "seed", subs, 2, d.States)
}

// untouched checks that every subject but skip is as fresh as before the
// refused admission id: in the decision, in Peek, in its master's keys,
// and by a full admission of it alone.
func untouched(t *testing.T, tc *testCluster, s *quota.Redis, prefix, id string, subs []quota.Subject, skip int, states []quota.State) {
	t.Helper()
	ctx := context.Background()
	peeked, err := s.Peek(ctx, subs)
	if err != nil {
		t.Fatal(err)
	}
	for i, sub := range subs {
		if i == skip {
			continue
		}
		for what, st := range map[string]quota.State{"decision": states[i], "peek": peeked[i]} {
			if st.RPM.Remaining != 10 || st.TPM.Remaining != 1000 || st.Parallel.InUse != 0 ||
				st.Budget.ReservedMicros != 0 || st.Budget.ReservedTokens != 0 || st.Budget.Missing {
				t.Fatalf("refused %s: subject %d was charged (%s): %+v", id, i, what, st)
			}
		}
		h := prefix + sub.Tag()
		if n, err := tc.c.ZCard(ctx, h+":r").Result(); err != nil || n != 0 {
			t.Fatalf("refused %s: subject %d holds %d reservations (%v)", id, i, n, err)
		}
		if ok, err := tc.c.HExists(ctx, h, "v:"+id).Result(); err != nil || ok {
			t.Fatalf("refused %s: subject %d keeps the reservation's record (%v)", id, i, err)
		}
		// Its one slot is free: an admission of it alone takes it.
		one := quota.Charge{Requests: 1, Tokens: 100, CostMicros: 1000, Parallel: true}
		d, err := s.Admit(ctx, &quota.AdmitRequest{ID: id + "-alone", Subjects: []quota.Subject{sub}, Charge: one, TTL: time.Hour})
		if err != nil || !d.Allowed || d.States[0].RPM.Remaining != 9 || d.States[0].Parallel.InUse != 1 {
			t.Fatalf("refused %s: subject %d alone afterwards: %+v %v", id, i, d, err)
		}
	}
}

// testClusterScriptFlushed: masters that lost the script (SCRIPT FLUSH on
// every one, as after restarts) still answer, whichever node each
// subject's script goes to.
func testClusterScriptFlushed(t *testing.T, tc *testCluster) {
	ctx := context.Background()
	p := tc.prefix(t)
	s := quota.NewRedis(tc.c, quota.RedisOptions{Prefix: p})
	lim := llm.Limits{RPM: 10}
	subs := spreadSubjects(t, tc, p, lim, lim, lim)
	for i := range 3 {
		err := tc.c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.ScriptFlush(ctx).Err() })
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.Admit(ctx, &quota.AdmitRequest{ID: "a", Subjects: subs, Charge: quota.Charge{Requests: 1}})
		if err != nil || !d.Allowed {
			t.Fatalf("admission %d after SCRIPT FLUSH: %+v %v", i, d, err)
		}
		for k, st := range d.States {
			if st.RPM.Remaining != int64(9-i) {
				t.Fatalf("admission %d: subject %d has %d left", i, k, st.RPM.Remaining)
			}
		}
		if err := tc.c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.ScriptFlush(ctx).Err() }); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Peek(ctx, subs); err != nil {
			t.Fatalf("Peek after SCRIPT FLUSH: %v", err)
		}
		if err := s.Settle(ctx, &quota.Settlement{ID: "a", Subjects: subs}); err != nil {
			t.Fatalf("Settle after SCRIPT FLUSH: %v", err)
		}
	}
}

// testClusterHeartbeat: replicas count each other on a cluster, by the
// given clock and by the servers' time.
func testClusterHeartbeat(t *testing.T, tc *testCluster) {
	ctx := context.Background()
	clock := storetest.NewClock(base())
	s := quota.NewRedis(tc.c, quota.RedisOptions{Prefix: tc.prefix(t), Clock: clock.Now})
	beat := func(s *quota.Redis, id string, want int) {
		t.Helper()
		n, err := s.Heartbeat(ctx, id, 10*time.Second)
		if err != nil || n != want {
			t.Fatalf("Heartbeat(%s) = %d, %v; want %d", id, n, err, want)
		}
	}
	beat(s, "a", 1)
	beat(s, "b", 2)
	beat(s, "a", 2)
	clock.Advance(10 * time.Second)
	beat(s, "c", 1) // a and b expired
	// Server time; a second store (another prefix, maybe another master)
	// counts apart.
	s1 := quota.NewRedis(tc.c, quota.RedisOptions{Prefix: tc.prefix(t)})
	s2 := quota.NewRedis(tc.c, quota.RedisOptions{Prefix: tc.prefix(t)})
	beat(s1, "x", 1)
	beat(s1, "y", 2)
	beat(s2, "x", 1)
	if err := tc.c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.ScriptFlush(ctx).Err() }); err != nil {
		t.Fatal(err)
	}
	beat(s1, "x", 2)
}

// moveSlot moves slot, and its keys, from master from to master to, the
// way redis-cli --cluster reshard does (IMPORTING, MIGRATING, MIGRATE),
// and returns the last step, which gives the slot to the new master
// (SETSLOT NODE on every master): until it runs, the old master answers
// ASK for the moved keys.
func (tc *testCluster) moveSlot(t *testing.T, slot int64, from, to string) (finish func()) {
	t.Helper()
	ctx := context.Background()
	node := func(addr string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { c.Close() })
		return c
	}
	src, dst := node(from), node(to)
	srcID, err := src.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	dstID, err := dst.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	s := strconv.FormatInt(slot, 10)
	must := func(c *redis.Client, args ...any) {
		t.Helper()
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	must(dst, "CLUSTER", "SETSLOT", s, "IMPORTING", srcID)
	must(src, "CLUSTER", "SETSLOT", s, "MIGRATING", dstID)
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, int(slot), 100).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			break
		}
		host, port, _ := net.SplitHostPort(to)
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		must(src, args...)
	}
	return func() {
		t.Helper()
		for _, a := range tc.addrs {
			must(node(a), "CLUSTER", "SETSLOT", s, "NODE", dstID)
		}
	}
}

// movedHook counts the MOVED answers the nodes give, and the ASKING
// commands the client sends them after an ASK answer (the ASK answer
// itself does not reach a node's hooks).
type movedHook struct{ n, ask atomic.Int64 }

func (h *movedHook) count(cmds ...redis.Cmder) {
	for _, c := range cmds {
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "MOVED") {
			h.n.Add(1)
		}
		if c.Name() == "asking" {
			h.ask.Add(1)
		}
	}
}

func (h *movedHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *movedHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.count(cmd)
		return err
	}
}
func (h *movedHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.count(cmds...)
		return err
	}
}

// testClusterSlotMoved: after a subject's slot moves to another master,
// a client with the old slot map is redirected (MOVED), for a single
// script and inside the pipeline of several, and the subject's counters
// (buckets, slots held) moved with it.
func testClusterSlotMoved(t *testing.T, tc *testCluster) {
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: tc.addrs})
	defer cc.Close()
	moved := &movedHook{}
	cc.OnNewNode(func(n *redis.Client) { n.AddHook(moved) })
	p := tc.prefix(t)
	s := quota.NewRedis(cc, quota.RedisOptions{Prefix: p})
	lim := llm.Limits{RPM: 10, MaxParallel: 5}
	c := quota.Charge{Requests: 1, Parallel: true}
	for _, n := range []int{1, 3} { // the single-script path, the pipeline
		subs := spreadSubjects(t, tc, p, lim, lim, lim)[:n]
		admit := func(id string) {
			t.Helper()
			d, err := s.Admit(ctx, &quota.AdmitRequest{ID: id, Subjects: subs, Charge: c, TTL: time.Hour})
			if err != nil || !d.Allowed {
				t.Fatalf("%d subjects, %s: %+v %v", n, id, d, err)
			}
		}
		admit("before") // cc learns the slot map
		owner := tc.masters(t)
		key := p + subs[0].Tag()
		from := tc.masterOf(t, owner, key)
		to := ""
		for _, a := range tc.addrs {
			if a != from {
				to = a
				break
			}
		}
		slot, err := tc.c.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		tc.moveSlot(t, slot, from, to)()
		if got := tc.masterOf(t, tc.masters(t), key); got != to {
			t.Fatalf("slot %d is on %s after the move to %s", slot, got, to)
		}
		before := moved.n.Load()
		admit("after")
		if moved.n.Load() == before {
			t.Fatalf("%d subjects: no MOVED answer: the test did not exercise the redirection", n)
		}
		st, err := s.Peek(ctx, subs)
		if err != nil {
			t.Fatal(err)
		}
		for i := range st {
			if st[i].RPM.Remaining != 8 || st[i].Parallel.InUse != 2 {
				t.Fatalf("%d subjects: subject %d after the move: %+v", n, i, st[i])
			}
		}
		if err := s.Settle(ctx, &quota.Settlement{ID: "after", Subjects: subs}); err != nil {
			t.Fatal(err)
		}
		if st, err := s.Peek(ctx, subs[:1]); err != nil || st[0].Parallel.InUse != 1 {
			t.Fatalf("%d subjects: after Settle: %+v %v", n, st, err)
		}
	}
}

// testClusterSlotMigrating: while a subject's slot is migrating (its keys
// moved, the slot not yet handed over), the old master answers ASK and
// the new one, which may not have the script, runs it; then the hand-over
// (MOVED). For a single script and inside the pipeline of several.
func testClusterSlotMigrating(t *testing.T, tc *testCluster) {
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: tc.addrs})
	defer cc.Close()
	hook := &movedHook{}
	cc.OnNewNode(func(n *redis.Client) { n.AddHook(hook) })
	p := tc.prefix(t)
	s := quota.NewRedis(cc, quota.RedisOptions{Prefix: p})
	lim := llm.Limits{RPM: 10, MaxParallel: 5}
	c := quota.Charge{Requests: 1, Parallel: true}
	for _, n := range []int{1, 3} {
		subs := spreadSubjects(t, tc, p, lim, lim, lim)[:n]
		admit := func(id string, left, inUse int64) {
			t.Helper()
			d, err := s.Admit(ctx, &quota.AdmitRequest{ID: id, Subjects: subs, Charge: c, TTL: time.Hour})
			if err != nil || !d.Allowed {
				t.Fatalf("%d subjects, %s: %+v %v", n, id, d, err)
			}
			st, err := s.Peek(ctx, subs)
			if err != nil {
				t.Fatalf("%d subjects, %s: Peek: %v", n, id, err)
			}
			for i := range st {
				if st[i].RPM.Remaining != left || st[i].Parallel.InUse != inUse {
					t.Fatalf("%d subjects, %s: subject %d: %+v", n, id, i, st[i])
				}
			}
		}
		admit("before", 9, 1)
		key := p + subs[0].Tag()
		from := tc.masterOf(t, tc.masters(t), key)
		var to string
		for _, a := range tc.addrs {
			if a != from {
				to = a
				break
			}
		}
		slot, err := tc.c.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		finish := tc.moveSlot(t, slot, from, to)
		dst := redis.NewClient(&redis.Options{Addr: to})
		err = dst.ScriptFlush(ctx).Err()
		dst.Close()
		if err != nil {
			t.Fatal(err)
		}
		ask := hook.ask.Load()
		admit("during", 8, 2)
		if hook.ask.Load() == ask {
			t.Fatalf("%d subjects: no ASKING: the test did not exercise the migration", n)
		}
		if err := s.Settle(ctx, &quota.Settlement{ID: "during", Subjects: subs}); err != nil {
			t.Fatal(err)
		}
		finish()
		moved := hook.n.Load()
		admit("after", 7, 2)
		if hook.n.Load() == moved {
			t.Fatalf("%d subjects: no MOVED answer after the hand-over", n)
		}
	}
}
