package auth

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// keyCache holds one issuer's signing keys. A set is fresh for TTL after
// it was fetched; past that the next token refreshes it. A token whose kid
// the set does not know triggers a refresh too. Refreshes are
// single-flight (concurrent callers wait for the one fetch) and
// rate-limited: at most one fetch attempt per MinRefresh, whatever the
// outcome, so a flood of tokens with random kids, or an IdP that is down,
// costs the IdP one request per interval. When a refresh fails the last
// good set keeps serving for up to MaxStale after it was fetched.
//
// The cache belongs to the Authenticator of one State and is handed on to
// the next one while the issuer's fetch settings (id, issuer, jwks_uri,
// allow_insecure_http) stay the same.
type keyCache struct {
	iss   *llm.Issuer // only the fetch settings are read
	f     *fetcher
	o     *Options
	cur   atomic.Pointer[cachedSet]
	mu    sync.Mutex
	last  time.Time     // start of the last fetch attempt
	fly   chan struct{} // closed when the fetch in flight ends; nil when none
	jwks  string        // the jwks_uri in use (configured or discovered)
	fails atomic.Int64  // fetches that failed, for tests and logs
	count atomic.Int64  // fetch attempts
}

type cachedSet struct {
	keys    *keySet
	fetched time.Time
}

func newKeyCache(iss *llm.Issuer, f *fetcher, o *Options) *keyCache {
	return &keyCache{iss: iss, f: f, o: o, jwks: iss.JWKSURI}
}

// sameSource reports whether c fetches what iss would: then c can serve iss.
func (c *keyCache) sameSource(iss *llm.Issuer) bool {
	return c.iss.ID == iss.ID && c.iss.Issuer == iss.Issuer && c.iss.JWKSURI == iss.JWKSURI &&
		c.iss.AllowInsecureHTTP == iss.AllowInsecureHTTP
}

// key returns the key that verifies a token with kid and alg, nil when
// there is none (after a refresh, when one is allowed).
func (c *keyCache) key(ctx context.Context, kid, alg string) *verifyKey {
	now := c.o.Clock()
	s := c.cur.Load()
	switch {
	case s == nil:
		c.refresh(ctx, true)
	case now.Sub(s.fetched) >= c.o.CacheTTL:
		// Stale: one caller refreshes; the others go on with the old set
		// (within MaxStale) rather than queue behind the IdP.
		c.refresh(ctx, false)
	case kid != "" && !s.keys.has(kid):
		// Perhaps the IdP rotated its keys.
		c.refresh(ctx, true)
	}
	s = c.cur.Load()
	if s == nil || c.o.Clock().Sub(s.fetched) >= c.o.MaxStale {
		return nil
	}
	return s.keys.find(kid, alg)
}

// refresh fetches the key set unless an attempt started less than
// MinRefresh ago. A caller that finds a fetch in flight waits for it when
// wait is set (or until ctx ends) and returns at once otherwise.
func (c *keyCache) refresh(ctx context.Context, wait bool) {
	c.mu.Lock()
	if fly := c.fly; fly != nil {
		c.mu.Unlock()
		if wait {
			select {
			case <-fly:
			case <-ctx.Done():
			}
		}
		return
	}
	now := c.o.Clock()
	if !c.last.IsZero() && now.Sub(c.last) < c.o.MinRefresh {
		c.mu.Unlock()
		return
	}
	c.last = now
	fly := make(chan struct{})
	c.fly = fly
	jwks := c.jwks
	c.mu.Unlock()

	// The fetch serves every waiter: it must not end with the request
	// that happened to start it.
	fctx := context.WithoutCancel(ctx)
	keys, uri, err := c.fetch(fctx, jwks)
	c.count.Add(1)
	c.mu.Lock()
	if err != nil {
		c.fails.Add(1)
		if c.iss.JWKSURI == "" {
			c.jwks = "" // discover again next time
		}
	} else {
		c.jwks = uri
		c.cur.Store(&cachedSet{keys: keys, fetched: c.o.Clock()})
	}
	c.fly = nil
	c.mu.Unlock()
	close(fly)
	if err != nil {
		c.o.Logger.Warn("JWKS refresh failed; keeping the last good key set", "issuer", c.iss.Name, "err", err.Error())
	}
}

func (c *keyCache) fetch(ctx context.Context, uri string) (*keySet, string, error) {
	if uri == "" {
		var err error
		if uri, err = c.f.discover(ctx, c.iss); err != nil {
			return nil, "", err
		}
	}
	b, err := c.f.get(ctx, uri, c.iss.AllowInsecureHTTP)
	if err != nil {
		return nil, "", err
	}
	keys, err := parseJWKS(b)
	if err != nil {
		return nil, "", err
	}
	return keys, uri, nil
}
