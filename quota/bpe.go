package quota

import (
	"math"
	"sync"
	"unicode/utf8"
)

// bpeEncoding counts tokens exactly as tiktoken encodes them (the count of
// EncodeOrdinary), without building the tokens: the hand-written
// pre-tokenizer splits the text, each piece is looked up whole, and only
// pieces that are not one token are merged — short ones on the stack, long
// ones with a heap in a pooled scratch buffer, so a piece of n bytes costs
// O(n log n), never tiktoken's O(n²).
type bpeEncoding struct {
	ranks   *rankTable // byte sequence → rank, from tiktoken-go-loader's files
	short   shortRanks // the ranks of sequences of up to 7 bytes, again
	classes *runeClasses
	cl100k  bool // cl100k_base's pre-tokenizer, else o200k_base's
	scratch sync.Pool
}

func newBPEEncoding(ranks *rankTable, classes *runeClasses, cl100k bool) *bpeEncoding {
	e := &bpeEncoding{ranks: ranks, classes: classes, cl100k: cl100k}
	e.short = newShortRanks(ranks)
	e.scratch.New = func() any { return new(mergeScratch) }
	return e
}

// count returns the number of tokens in s.
func (e *bpeEncoding) count(s string) int {
	if !utf8.ValidString(s) {
		s = replaceInvalid(s)
	}
	var sc *mergeScratch
	n := 0
	for p := 0; p < len(s); {
		var end int
		if e.cl100k {
			end = e.classes.nextCl100k(s, p)
		} else {
			end = e.classes.nextO200k(s, p)
		}
		if end <= p { // unmatched: the regexp engine skips a rune
			_, w := utf8.DecodeRuneInString(s[p:])
			p += w
			continue
		}
		piece := s[p:end]
		p = end
		if len(piece) == 1 {
			n++
			continue
		}
		if e.rank(piece) >= 0 {
			n++
			continue
		}
		if len(piece) <= smallPiece {
			n += e.mergeSmall(piece)
			continue
		}
		if sc == nil {
			sc = e.scratch.Get().(*mergeScratch)
		}
		n += e.mergeHeap(piece, sc)
	}
	if sc != nil {
		e.scratch.Put(sc)
	}
	return n
}

// replaceInvalid replaces each byte of s that is not part of valid UTF-8
// by U+FFFD, as converting a string to []rune does (and so tiktoken-go).
func replaceInvalid(s string) string {
	b := make([]byte, 0, len(s)+len(s)/2)
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+w]...)
		}
		i += w
	}
	return string(b)
}

// rank returns the rank of s, or -1 when s is not a token.
func (e *bpeEncoding) rank(s string) int32 {
	if len(s) <= shortMax {
		return e.short.rank(s)
	}
	return e.ranks.rank(s)
}

// shortMax is the longest sequence in shortRanks.
const shortMax = 7

// shortRanks is an open-addressing table (linear probing, half full) of
// the ranks of the byte sequences of up to shortMax bytes, keyed by the
// bytes packed in a word with the length in the top byte. Most lookups of a merge are of such
// pairs, and this is several times faster than the map.
type shortRanks struct {
	slots []shortSlot
	shift uint
}

// shortSlot is a key and its rank side by side: one cache line per probe.
type shortSlot struct {
	key  uint64 // 0: empty (a key has its length in its top byte)
	rank int32
}

func newShortRanks(ranks *rankTable) shortRanks {
	n := 0
	ranks.each(func(k string, _ int) {
		if len(k) <= shortMax {
			n++
		}
	})
	size, shift := 1, uint(64)
	for size < 2*n {
		size, shift = size*2, shift-1
	}
	t := shortRanks{slots: make([]shortSlot, size), shift: shift}
	ranks.each(func(k string, r int) {
		if len(k) > shortMax {
			return
		}
		key := packShort(k)
		i := t.slot(key)
		for t.slots[i].key != 0 {
			i = (i + 1) & (len(t.slots) - 1)
		}
		t.slots[i] = shortSlot{key, int32(r)}
	})
	return t
}

func packShort(s string) uint64 {
	k := uint64(len(s)) << 56
	for i := 0; i < len(s); i++ {
		k |= uint64(s[i]) << (8 * i)
	}
	return k
}

func (t *shortRanks) slot(key uint64) int { return int((key * 0x9e3779b97f4a7c15) >> t.shift) }

// rank returns the rank of s (len(s) <= shortMax), or -1.
func (t *shortRanks) rank(s string) int32 {
	if len(t.slots) == 0 {
		return -1
	}
	key := packShort(s)
	for i := t.slot(key); ; i = (i + 1) & (len(t.slots) - 1) {
		switch t.slots[i].key {
		case key:
			return t.slots[i].rank
		case 0:
			return -1
		}
	}
}

// smallPiece is the longest piece merged by mergeSmall.
const smallPiece = 32

// mergeSmall is tiktoken's byte-pair merge, counting the parts: while some
// adjacent pair of parts is a token, merge the pair of lowest rank (the
// leftmost of equals).
func (e *bpeEncoding) mergeSmall(piece string) int {
	var start [smallPiece + 1]int32
	var rank [smallPiece + 1]int32 // rank of parts i and i+1 merged
	n := len(piece) + 1            // parts + 1 (start[n-1] = len(piece))
	for i := range n {
		start[i], rank[i] = int32(i), math.MaxInt32
	}
	pair := func(i int) int32 { // rank of parts i and i+1 merged
		if i+2 >= n {
			return math.MaxInt32
		}
		if r := e.rank(piece[start[i]:start[i+2]]); r >= 0 {
			return r
		}
		return math.MaxInt32
	}
	for i := 0; i < n-2; i++ {
		rank[i] = pair(i)
	}
	for n > 2 {
		best, at := int32(math.MaxInt32), -1
		for i := 0; i < n-1; i++ {
			if rank[i] < best {
				best, at = rank[i], i
			}
		}
		if at < 0 {
			break
		}
		copy(start[at+1:n-1], start[at+2:n])
		copy(rank[at+1:n-1], rank[at+2:n])
		n--
		rank[at] = pair(at)
		if at > 0 {
			rank[at-1] = pair(at - 1)
		}
	}
	return n - 1
}

// mergeScratch is the working memory of mergeHeap, reused across calls.
type mergeScratch struct {
	next, prev []int32  // the parts as a linked list of their start offsets
	rank       []int32  // rank of the part starting here merged with the next; -1 none
	heap       []uint64 // rank<<32 | start, a min-heap; stale entries skipped
}

// mergeHeap is mergeSmall for long pieces: the same merges in the same
// order (the pair of lowest rank, leftmost of equals, is the heap's
// minimum), found in O(log n) each. An entry is stale when its part was
// merged away or its rank changed; a part's pair only grows, so its rank
// never takes an old value again.
func (e *bpeEncoding) mergeHeap(piece string, sc *mergeScratch) int {
	n := len(piece)
	sc.next, sc.prev, sc.rank = grow(sc.next, n), grow(sc.prev, n), grow(sc.rank, n)
	next, prev, rank := sc.next, sc.prev, sc.rank
	h := sc.heap[:0]
	pair := func(i int32) int32 {
		j := next[i]
		if int(j) >= n {
			return -1
		}
		return e.rank(piece[i:next[j]])
	}
	for i := range n {
		next[i], prev[i] = int32(i+1), int32(i-1)
	}
	for i := range n {
		rank[i] = pair(int32(i))
		if rank[i] >= 0 {
			h = append(h, uint64(rank[i])<<32|uint64(i))
		}
	}
	heapInit(h)
	parts := n
	for len(h) > 0 {
		top := h[0]
		h = heapPop(h)
		i, r := int32(uint32(top)), int32(top>>32)
		if rank[i] != r {
			continue
		}
		j := next[i]
		next[i] = next[j]
		if int(next[j]) < n {
			prev[next[j]] = i
		}
		rank[j] = -1
		parts--
		if rank[i] = pair(i); rank[i] >= 0 {
			h = heapPush(h, uint64(rank[i])<<32|uint64(i))
		}
		if p := prev[i]; p >= 0 {
			if rank[p] = pair(p); rank[p] >= 0 {
				h = heapPush(h, uint64(rank[p])<<32|uint64(p))
			}
		}
	}
	sc.heap = h
	return parts
}

func grow(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

func heapInit(h []uint64) {
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
}

func heapPush(h []uint64, v uint64) []uint64 {
	h = append(h, v)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p] <= h[i] {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
	return h
}

func heapPop(h []uint64) []uint64 {
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	siftDown(h, 0)
	return h
}

func siftDown(h []uint64, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r] < h[l] {
			m = r
		}
		if h[i] <= h[m] {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
