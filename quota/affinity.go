package quota

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// AffinityMemory is the in-process store of prompt-cache affinity (the
// router's AffinityStore): which deployment last served a prompt prefix,
// by the prefix's key. It holds at most MaxEntries keys, evicting the
// least recently used, so a flood of unique prefixes cannot grow it; an
// entry past its TTL is a miss. It is safe for concurrent use.
type AffinityMemory struct {
	mu  sync.Mutex
	max int
	now func() time.Time
	lru list.List // of *affinityEntry, most recently used first
	m   map[string]*list.Element
}

type affinityEntry struct {
	key, dep string
	until    time.Time
}

// AffinityMemoryOptions configure an AffinityMemory. Zero values take the
// defaults.
type AffinityMemoryOptions struct {
	// MaxEntries bounds the keys held. Default 100 000 (about 20 MB).
	MaxEntries int
	// Now is injectable for tests.
	Now func() time.Time
}

// NewAffinityMemory returns an empty AffinityMemory.
func NewAffinityMemory(o AffinityMemoryOptions) *AffinityMemory {
	if o.MaxEntries <= 0 {
		o.MaxEntries = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &AffinityMemory{max: o.MaxEntries, now: o.Now, m: make(map[string]*list.Element)}
}

// Lookup returns the deployment of the first of keys that has a live entry.
func (s *AffinityMemory) Lookup(_ context.Context, keys []string) (string, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		el, ok := s.m[k]
		if !ok {
			continue
		}
		e := el.Value.(*affinityEntry)
		if !now.Before(e.until) {
			s.lru.Remove(el)
			delete(s.m, k)
			continue
		}
		s.lru.MoveToFront(el)
		return e.dep, true
	}
	return "", false
}

// Remember records dep for key until ttl from now.
func (s *AffinityMemory) Remember(key, dep string, ttl time.Duration) {
	until := s.now().Add(ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.m[key]; ok {
		e := el.Value.(*affinityEntry)
		e.dep, e.until = dep, until
		s.lru.MoveToFront(el)
		return
	}
	for s.lru.Len() >= s.max {
		old := s.lru.Back()
		delete(s.m, old.Value.(*affinityEntry).key)
		s.lru.Remove(old)
	}
	s.m[key] = s.lru.PushFront(&affinityEntry{key: key, dep: dep, until: until})
}

// forget drops key.
func (s *AffinityMemory) forget(key string) { s.forgetUnless(key, "") }

// forgetUnless drops key unless it holds dep ("" drops it whatever it
// holds).
func (s *AffinityMemory) forgetUnless(key, dep string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.m[key]; ok && (dep == "" || el.Value.(*affinityEntry).dep != dep) {
		s.lru.Remove(el)
		delete(s.m, key)
	}
}

// Len is the number of keys held (expired ones included until evicted).
func (s *AffinityMemory) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}
