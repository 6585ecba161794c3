package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis deployment kinds a REDIS_URL can name.
const (
	redisSingle   = "single"
	redisCluster  = "cluster"
	redisSentinel = "sentinel"
)

// redisConfig is a parsed REDIS_URL: exactly one of the option sets is
// set, as kind says.
type redisConfig struct {
	kind     string
	single   *redis.Options
	cluster  *redis.ClusterOptions
	sentinel *redis.FailoverOptions
}

// parseRedisURL reads REDIS_URL. The accepted forms (docs/DESIGN.md and
// README list them):
//
//	redis://[user:pass@]host:port[/db]           one node (rediss:// for TLS)
//	redis://[user:pass@]h1:p1,h2:p2,…            Redis Cluster: the seed nodes
//	redis://…host:port?addr=h2:p2&addr=h3:p3     the same, go-redis's ParseClusterURL form
//	redis://host:port?cluster=true               Redis Cluster behind one endpoint
//	redis://[user:pass@]s1:p1,s2:p2[/db]?master_name=NAME[&password=…]
//	                                             Sentinel: the sentinels, the master's
//	                                             name; userinfo authenticates to the
//	                                             sentinels, password= to the master
//
// Query parameters are go-redis's (dial_timeout, pool_size, …); unknown
// ones are refused. Errors never repeat the URL, which may hold a password.
func parseRedisURL(raw string) (*redisConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL; say only what is wrong with it.
		return nil, errors.New("REDIS_URL is not a valid URL")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, errors.New("REDIS_URL must start with redis:// or rediss://")
	}
	if u.Host == "" {
		return nil, errors.New("REDIS_URL has no host")
	}
	q := u.Query()
	hosts := strings.Split(u.Host, ",")
	for _, h := range hosts {
		if h == "" {
			return nil, errors.New("REDIS_URL has an empty address in its host list")
		}
	}
	// go-redis reads one host and the rest from addr= parameters.
	u.Host = hosts[0]
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	clusterMode := false
	if v, ok := q["cluster"]; ok {
		if len(v) != 1 || (v[0] != "true" && v[0] != "false") {
			return nil, errors.New("REDIS_URL: cluster must be true or false")
		}
		clusterMode = v[0] == "true"
		q.Del("cluster")
	}
	u.RawQuery = q.Encode()
	cfg := &redisConfig{}
	switch {
	case q.Get("master_name") != "":
		if clusterMode {
			return nil, errors.New("REDIS_URL: master_name (Sentinel) and cluster=true exclude each other")
		}
		cfg.kind = redisSentinel
		cfg.sentinel, err = redis.ParseFailoverURL(u.String())
	case clusterMode || q.Has("addr"):
		if u.Path != "" && u.Path != "/" && u.Path != "/0" {
			return nil, errors.New("REDIS_URL: Redis Cluster has only database 0")
		}
		u.Path = ""
		cfg.kind = redisCluster
		cfg.cluster, err = redis.ParseClusterURL(u.String())
	default:
		cfg.kind = redisSingle
		cfg.single, err = redis.ParseURL(u.String())
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, errors.New("REDIS_URL is not a valid URL")
		}
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	return cfg, nil
}

// Default Redis timeouts, unless the URL sets its own: a Redis that stops
// answering must not hold a request or a reload.
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = time.Second
)

func orDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// client builds the one Redis client for the deployment cfg names.
func (cfg *redisConfig) client() redis.UniversalClient {
	switch cfg.kind {
	case redisCluster:
		o := cfg.cluster
		orDefault(&o.DialTimeout, redisDialTimeout)
		orDefault(&o.ReadTimeout, redisIOTimeout)
		orDefault(&o.WriteTimeout, redisIOTimeout)
		return redis.NewClusterClient(o)
	case redisSentinel:
		o := cfg.sentinel
		orDefault(&o.DialTimeout, redisDialTimeout)
		orDefault(&o.ReadTimeout, redisIOTimeout)
		orDefault(&o.WriteTimeout, redisIOTimeout)
		return redis.NewFailoverClient(o)
	default:
		o := cfg.single
		orDefault(&o.DialTimeout, redisDialTimeout)
		orDefault(&o.ReadTimeout, redisIOTimeout)
		orDefault(&o.WriteTimeout, redisIOTimeout)
		return redis.NewClient(o)
	}
}

// addrs lists the addresses cfg connects to (nodes, seeds or sentinels),
// for logs: they carry no credentials.
func (cfg *redisConfig) addrs() []string {
	switch cfg.kind {
	case redisCluster:
		return cfg.cluster.Addrs
	case redisSentinel:
		return cfg.sentinel.SentinelAddrs
	default:
		return []string{cfg.single.Addr}
	}
}

// openRedis parses REDIS_URL and builds its client. A Redis that does not
// answer yet is not fatal: it is logged, /readyz reports it, and go-redis
// keeps reconnecting.
func openRedis(ctx context.Context, raw string, log *slog.Logger) (redis.UniversalClient, error) {
	cfg, err := parseRedisURL(raw)
	if err != nil {
		return nil, err
	}
	rdb := cfg.client()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		log.Warn("redis unreachable at start; will keep trying", "kind", cfg.kind, "addrs", cfg.addrs())
	}
	return rdb, nil
}
