package server

import (
	"context"
	"errors"
	"sync"
	"time"
)

// readyTTL is how long a readiness answer is reused. /readyz is public on
// the proxy listener; without it every probe, from anyone, was a database
// and a Redis round trip.
const readyTTL = time.Second

// readiness runs one dependency check at a time and reuses its result for
// readyTTL, so any number of /readyz probes cost at most one check a
// second. The check runs detached from the caller's context (bounded by
// its own timeout), so one impatient prober cannot cache a failure.
type readiness struct {
	mu  sync.Mutex
	at  time.Time // when err was found; zero before the first check
	err error
}

// get returns the cached result or runs check for a fresh one.
func (r *readiness) get(check func(context.Context) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.at.IsZero() && time.Since(r.at) < readyTTL {
		return r.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.err, r.at = check(ctx), time.Now()
	return r.err
}

// ready reports whether the store (and Redis, when configured) answer;
// /readyz on both listeners.
func (s *Server) ready(context.Context) error { return s.readiness.get(s.checkDeps) }

func (s *Server) checkDeps(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return errors.New("database unreachable")
	}
	if s.rdb != nil {
		if err := s.rdb.Ping(ctx).Err(); err != nil {
			return errors.New("redis unreachable")
		}
	}
	return nil
}
