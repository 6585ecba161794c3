package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// maxVerified bounds an issuer's cache of validated tokens. Reaching it
// empties the cache: entries are cheap to rebuild (one validation each),
// and a flood of distinct valid tokens cannot grow memory.
const maxVerified = 10_000

// verifiedCache remembers tokens that passed every check, keyed by the
// SHA-256 of the token, so a client sending the same token again skips
// the signature (60–100 µs of CPU). An entry serves only while:
//   - the token is before its exp (without the leeway: a token inside
//     its leeway is validated in full again),
//   - for a JWKS-signed token, the issuer's key set is the very one it was
//     verified with and is still fresh (a refresh — rotation, a removed
//     key — or a stale set sends the token through the full path).
//
// It belongs to one compiled issuer, so any change of the issuer's
// configuration (audiences, algorithms, claims, secret, limits) starts
// with an empty cache.
type verifiedCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]verified
}

// verified is one validated token.
type verified struct {
	p   Principal
	exp time.Time
	set *cachedSet // nil for an HS256 token
}

// get returns a copy of the principal of token if it is cached and still
// serves at now; sum is the token's SHA-256.
func (c *verifiedCache) get(sum [sha256.Size]byte, now time.Time, keys *keyCache, ttl time.Duration) (*Principal, bool) {
	c.mu.Lock()
	e, ok := c.m[sum]
	c.mu.Unlock()
	if !ok || !now.Before(e.exp) {
		return nil, false
	}
	if e.set != nil {
		if cur := keys.cur.Load(); cur != e.set || now.Sub(cur.fetched) >= ttl {
			return nil, false
		}
	}
	p := e.p // a copy: callers own their principal
	return &p, true
}

// put remembers a validated token.
func (c *verifiedCache) put(sum [sha256.Size]byte, v verified) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxVerified {
		c.m = make(map[[sha256.Size]byte]verified)
	}
	c.m[sum] = v
}

// clear empties the cache (benchmarks of the full path).
func (c *verifiedCache) clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// len is the number of cached tokens, for tests.
func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
