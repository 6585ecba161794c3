package quota

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// AffinityRedis is the prompt-cache affinity store every replica shares
// (the router's AffinityStore on Redis): a key per prompt prefix holding
// the deployment id, with the TTL as the key's expiry. A lookup is one
// pipelined round trip of GETs, waited for at most a short timeout; a
// write is a SET PX sent in the background, at most MaxPending at a time
// (more are dropped). Every failure is a miss: affinity is an optimisation, and a
// slow or dead Redis must cost a request at most the lookup timeout.
type AffinityRedis struct {
	c       redis.UniversalClient
	prefix  string
	timeout time.Duration
	pending chan struct{} // writes in flight
	lookups chan struct{} // lookups in flight
	// written remembers, for a quarter of their TTL, the keys this
	// replica wrote, so that a hot prefix is not written again on every
	// request: its TTL is refreshed at least every quarter.
	written *AffinityMemory
	log     *slog.Logger
	now     func() time.Time
	// skipUntil (unix ns) is set by a failed lookup: until then lookups
	// are misses without a call, so a Redis that times out costs each
	// request its timeout at most once a second, not every time.
	skipUntil atomic.Int64
}

// affinityBackoff is how long lookups skip Redis after one failed.
const affinityBackoff = time.Second

// AffinityRedisOptions configure an AffinityRedis. Zero values take the
// defaults.
type AffinityRedisOptions struct {
	// Prefix starts every key; default "sluice:aff:".
	Prefix string
	// Timeout bounds a lookup; default 25ms.
	Timeout time.Duration
	// MaxPending bounds the writes in flight, and the lookups; default
	// 256 each.
	MaxPending int
	// Logger receives write failures at debug level. Nil discards.
	Logger *slog.Logger
	// Now is injectable for tests (the lookup backoff's clock).
	Now func() time.Time
}

// NewAffinityRedis returns the affinity store on c.
func NewAffinityRedis(c redis.UniversalClient, o AffinityRedisOptions) *AffinityRedis {
	if o.Prefix == "" {
		o.Prefix = "sluice:aff:"
	}
	if o.Timeout <= 0 {
		o.Timeout = 25 * time.Millisecond
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 256
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &AffinityRedis{c: c, prefix: o.Prefix, timeout: o.Timeout, pending: make(chan struct{}, o.MaxPending),
		lookups: make(chan struct{}, o.MaxPending),
		written: NewAffinityMemory(AffinityMemoryOptions{MaxEntries: 10_000, Now: o.Now}), log: o.Logger, now: o.Now}
}

// Lookup returns the deployment of the first of keys Redis holds. The
// GETs are pipelined, not an MGET, so that keys in different Cluster
// slots work. The call runs in its own goroutine and Lookup waits for it
// at most Timeout: the client's own I/O timeouts (a second or more) do not
// heed a context deadline, and a Redis that accepts connections but never
// answers must cost a request Timeout, not them. At most MaxPending
// lookups run at once; beyond that, and during the backoff after a
// failure, a lookup is a miss without a call.
func (s *AffinityRedis) Lookup(ctx context.Context, keys []string) (string, bool) {
	if len(keys) == 0 || s.now().UnixNano() < s.skipUntil.Load() {
		return "", false
	}
	select {
	case s.lookups <- struct{}{}:
	default:
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	type answer struct {
		dep string
		ok  bool
	}
	ch := make(chan answer, 1)
	go func() {
		defer func() { <-s.lookups }()
		defer cancel()
		dep, ok := s.get(ctx, keys)
		ch <- answer{dep, ok}
	}()
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case a := <-ch:
		return a.dep, a.ok
	case <-t.C:
		s.failed(context.DeadlineExceeded)
		return "", false
	}
}

// get is Lookup's call.
func (s *AffinityRedis) get(ctx context.Context, keys []string) (string, bool) {
	if len(keys) == 1 {
		v, err := s.c.Get(ctx, s.prefix+keys[0]).Result()
		s.failed(err)
		s.seen(keys[0], v, err)
		return v, err == nil && v != ""
	}
	cmds := make([]*redis.StringCmd, len(keys))
	_, _ = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, s.prefix+k)
		}
		return nil
	})
	for i, c := range cmds {
		v, err := c.Result()
		s.seen(keys[i], v, err)
		if err == nil && v != "" {
			return v, true
		}
		s.failed(err)
	}
	return "", false
}

// seen drops this replica's mark of having written key when Redis holds
// something else (another replica moved the prefix, or it expired), so
// that the next Remember writes it.
func (s *AffinityRedis) seen(key, v string, err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		if v == "" {
			s.written.forget(key)
		} else {
			s.written.forgetUnless(key, v)
		}
	}
}

// failed starts the backoff after a lookup error other than a missing
// key or the caller leaving.
func (s *AffinityRedis) failed(err error) {
	if err != nil && !errors.Is(err, redis.Nil) && !errors.Is(err, context.Canceled) {
		s.skipUntil.Store(s.now().Add(affinityBackoff).UnixNano())
	}
}

// Remember sets key to dep for ttl in the background; when MaxPending
// writes are already in flight it drops this one. A key this replica set
// to dep less than ttl/4 ago is not written again (so a prefix's expiry
// is between ¾ ttl and ttl after its last use, not exactly ttl).
func (s *AffinityRedis) Remember(key, dep string, ttl time.Duration) {
	if d, ok := s.written.Lookup(context.Background(), []string{key}); ok && d == dep {
		return
	}
	select {
	case s.pending <- struct{}{}:
	default:
		return
	}
	s.written.Remember(key, dep, ttl/4)
	go func() {
		defer func() { <-s.pending }()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.c.Set(ctx, s.prefix+key, dep, ttl).Err(); err != nil {
			s.written.forget(key) // written again next time
			s.log.Debug("prompt-cache affinity: redis write failed", "err", err)
		}
	}()
}

// Flush waits until the writes in flight are done or ctx ends (for tests
// and shutdown).
func (s *AffinityRedis) Flush(ctx context.Context) error {
	for i := 0; i < cap(s.pending); i++ {
		select {
		case s.pending <- struct{}{}:
		case <-ctx.Done():
			for ; i > 0; i-- {
				<-s.pending
			}
			return ctx.Err()
		}
	}
	for i := 0; i < cap(s.pending); i++ {
		<-s.pending
	}
	return nil
}
