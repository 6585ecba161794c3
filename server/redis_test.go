package server

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParseRedisURL: REDIS_URL names a single node, a Cluster or a
// Sentinel deployment (before, only a single node could be configured,
// although DESIGN promised Cluster). Errors never repeat the password.
func TestParseRedisURL(t *testing.T) {
	ok := []struct {
		url, kind string
		addrs     []string
		check     func(*redisConfig) bool
	}{
		{"redis://127.0.0.1:6379/0", redisSingle, []string{"127.0.0.1:6379"}, func(c *redisConfig) bool { return c.single.DB == 0 && c.single.TLSConfig == nil }},
		{"redis://:pw@r.example:6380/3", redisSingle, []string{"r.example:6380"}, func(c *redisConfig) bool { return c.single.DB == 3 && c.single.Password == "pw" }},
		{"rediss://u:pw@r.example", redisSingle, []string{"r.example:6379"}, func(c *redisConfig) bool { return c.single.TLSConfig != nil && c.single.Username == "u" }},
		{"redis://r:1?dial_timeout=5s", redisSingle, []string{"r:1"}, func(c *redisConfig) bool {
			c.client().Close() // applies the defaults
			return c.single.DialTimeout == 5*time.Second && c.single.ReadTimeout == redisIOTimeout
		}},
		{"redis://:pw@n1:7000,n2:7001,n3:7002", redisCluster, []string{"n1:7000", "n2:7001", "n3:7002"}, func(c *redisConfig) bool { return c.cluster.Password == "pw" }},
		{"rediss://n1:7000,n2:7001/0", redisCluster, []string{"n1:7000", "n2:7001"}, func(c *redisConfig) bool { return c.cluster.TLSConfig != nil }},
		{"redis://n1:7000?addr=n2:7001&addr=n3:7002", redisCluster, []string{"n1:7000", "n2:7001", "n3:7002"}, nil},
		{"redis://cfg.example:6379?cluster=true", redisCluster, []string{"cfg.example:6379"}, nil},
		{"redis://cfg.example:6379?cluster=false", redisSingle, []string{"cfg.example:6379"}, nil},
		{"redis://s1:26379,s2:26379/2?master_name=mymaster&password=mpw", redisSentinel, []string{"s1:26379", "s2:26379"}, func(c *redisConfig) bool {
			return c.sentinel.MasterName == "mymaster" && c.sentinel.DB == 2 && c.sentinel.Password == "mpw"
		}},
		{"redis://su:spw@s1:26379?master_name=m", redisSentinel, []string{"s1:26379"}, func(c *redisConfig) bool {
			return c.sentinel.SentinelPassword == "spw" && c.sentinel.SentinelUsername == "su"
		}},
	}
	for _, tt := range ok {
		c, err := parseRedisURL(tt.url)
		if err != nil {
			t.Errorf("%s: %v", tt.url, err)
			continue
		}
		if c.kind != tt.kind || !slices.Equal(c.addrs(), tt.addrs) || (tt.check != nil && !tt.check(c)) {
			t.Errorf("%s: kind %s addrs %v", tt.url, c.kind, c.addrs())
		}
		rdb := c.client()
		rdb.Close()
	}
	bad := []string{
		"", "127.0.0.1:6379", "http://r:6379", "redis://", "redis://:secretpw@r:6379/x",
		"redis://:secretpw@a:1,,b:2", "redis://:secretpw@r:1?bogus=1", "redis://:secretpw@a:1,b:2/3",
		"redis://:secretpw@r:1?cluster=yes", "redis://:secretpw@r:1?cluster=true&master_name=m",
		"redis://:secretpw@r:1/0/1", "redis://:secret%zzpw@r:1",
	}
	for _, raw := range bad {
		_, err := parseRedisURL(raw)
		if err == nil {
			t.Errorf("%q accepted", raw)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: error repeats the password: %v", raw, err)
		}
	}
}

// redisTestURL returns SLUICE_TEST_REDIS_URL (default the local Redis), or
// skips when it does not answer (fails with SLUICE_REQUIRE_SERVICES=1).
func redisTestURL(t *testing.T) string {
	t.Helper()
	raw := os.Getenv("SLUICE_TEST_REDIS_URL")
	if raw == "" {
		raw = "redis://127.0.0.1:6379/0"
	}
	if _, err := url.Parse(raw); err != nil {
		t.Fatal("SLUICE_TEST_REDIS_URL is not a URL")
	}
	c, err := parseRedisURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	rdb := c.client()
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("Redis unreachable: %v", err)
		}
		t.Skipf("Redis unreachable: %v", err)
	}
	return raw
}

// TestRedisSingleNode drives a real Redis through the UniversalClient the
// server builds: PING, and a configuration change fanned out over pub/sub.
func TestRedisSingleNode(t *testing.T) {
	raw := redisTestURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb, err := openRedis(ctx, raw, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	f := newFanout(rdb, slog.New(slog.DiscardHandler))
	got := make(chan struct{}, 1)
	subCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.subscribe(subCtx, func() { got <- struct{}{} }) }()
	defer func() { stop(); <-done }()
	// Publish until the subscription is in place.
	for {
		f.publish(ctx, 42)
		select {
		case <-got:
			return
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("no change message received")
		}
	}
}

// TestServeWithRedis: a server with REDIS_URL is ready while Redis answers.
func TestServeWithRedis(t *testing.T) {
	raw := redisTestURL(t)
	r := serveTest(t, Config{AdminKey: bodyTestAdminKey, DataDir: t.TempDir(), AccessLog: "off", RedisURL: raw, ShutdownTimeout: 5 * time.Second})
	if r.srv.rdb == nil {
		t.Fatal("no Redis client")
	}
	if code, b := call(t, "GET", r.admin+"/readyz", "", nil); code != 200 {
		t.Fatalf("readyz %d %s", code, b)
	}
}
