package quota

import (
	"hash/maphash"
	"sync"
)

// countCache remembers the token counts of long strings — system prompts
// and the earlier turns of a conversation, which come back in every
// request of the conversation. An entry is keyed by a 64-bit hash of the
// string under a seed chosen at random per cache (clients cannot aim
// collisions at it) and by the string's length; nothing of the string is
// kept. It holds at most cacheShards×cacheSlots entries. Each key has two
// possible slots; when both are taken, the one with fewer recent hits is
// replaced and the other ages (a two-bit count per entry, raised by a hit,
// lowered when the entry survives an eviction). It is sharded by hash, one mutex per shard held
// for a few loads and stores, so concurrent requests rarely wait.
type countCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

const (
	cacheShards = 64
	cacheSlots  = 128 // per shard: 8192 entries, 192 KiB
	// cacheMinBytes: shorter strings are counted again, which is about as
	// fast as hashing and looking them up.
	cacheMinBytes = 256
)

type cacheShard struct {
	mu    sync.Mutex
	slots [cacheSlots]cacheEntry
}

type cacheEntry struct {
	hash   uint64
	size   uint32 // length of the string; 0: empty slot
	tokens uint32
	hits   uint8 // recent hits, at most maxHits
}

const maxHits = 3

func newCountCache() *countCache { return &countCache{seed: maphash.MakeSeed()} }

// key hashes b for the encoding numbered enc (counts differ by encoding).
func (c *countCache) key(b []byte, enc uint64) uint64 {
	return maphash.Bytes(c.seed, b) ^ enc*0x9e3779b97f4a7c15
}

// place returns h's shard and its two slots there, always two different
// ones (a key whose two were one would lose its place to any key landing
// on it, however often it is used).
func (c *countCache) place(h uint64) (*cacheShard, int, int) {
	i := int(h % cacheSlots)
	return &c.shards[h>>58], i, (i + 1 + int((h>>7)%(cacheSlots-1))) % cacheSlots
}

// get returns the count stored for hash h and length size.
func (c *countCache) get(h uint64, size int) (int, bool) {
	s, i, j := c.place(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range [2]int{i, j} {
		if e := &s.slots[k]; e.hash == h && int(e.size) == size {
			e.hits = min(e.hits+1, maxHits)
			return int(e.tokens), true
		}
	}
	return 0, false
}

// put stores tokens for hash h and length size, in an empty slot of its
// two, else in the one with fewer recent hits (the first of equals), and
// ages the other.
func (c *countCache) put(h uint64, size, tokens int) {
	if size <= 0 || size > 1<<31 || tokens < 0 || tokens > 1<<31 {
		return
	}
	s, i, j := c.place(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	a, b := &s.slots[i], &s.slots[j]
	var v *cacheEntry
	switch {
	case a.size == 0 || a.hash == h && int(a.size) == size:
		v = a
	case b.size == 0 || b.hash == h && int(b.size) == size:
		v = b
	case a.hits <= b.hits:
		v = a
		b.hits -= min(b.hits, 1)
	default:
		v = b
		a.hits--
	}
	*v = cacheEntry{hash: h, size: uint32(size), tokens: uint32(tokens)}
}
