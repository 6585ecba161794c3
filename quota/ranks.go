package quota

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"unsafe"
)

// rankTable maps the byte sequences of an encoding (its tokens) to their
// ranks. It holds no pointers but its two slices: the garbage collector
// marks two objects and scans neither, where the map[string]int it
// replaces (o200k_base: 200,000 string keys, each its own allocation) had
// every key and bucket marked on every cycle — milliseconds of mark work a
// cycle, paid even when the gateway is idle. A lookup hashes the sequence
// once (hash/maphash, as a map does) and probes a half-empty table of
// 8-byte slots, whose 32-bit tag rules out almost every mismatch; the one
// candidate's length, rank and bytes sit side by side in the blob, so a
// hit costs two cache misses, as the map's did.
type rankTable struct {
	// blob holds the tokens in rank order, each as a header — its length
	// (1 byte), its rank (3 bytes, little endian) — and its bytes. It
	// starts with one unused byte, so no token is at offset 0.
	blob   []byte
	slots  []uint64 // linear probing: tag<<32 | offset of a token in blob; 0 is an empty slot
	shift  uint     // slot of hash h: h >> shift
	seed   maphash.Seed
	maxLen int // longest token
	n      int // tokens
}

const (
	// maxRank bounds the ranks parseRanks accepts: three bytes (o200k_base
	// has 199,998).
	maxRank = 1<<24 - 1
	// maxTokenLen bounds a token's length: one byte (o200k_base's longest
	// is 128).
	maxTokenLen = 255
	tokenHeader = 4
)

// parseRanks reads a .tiktoken file (lines of "<base64 bytes> <rank>",
// ranks increasing) into a rankTable: one forward pass over the file, then
// one over the tokens to index them.
func parseRanks(data []byte) (*rankTable, error) {
	t := &rankTable{
		blob: make([]byte, 1, len(data)+len(data)/4),
		seed: maphash.MakeSeed(),
	}
	last := -1
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 {
			continue
		}
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			return nil, fmt.Errorf("ranks: line %q: no rank", line[:min(len(line), 40)])
		}
		r, err := strconv.Atoi(string(line[sp+1:]))
		if err != nil || r <= last || r > maxRank {
			return nil, fmt.Errorf("ranks: bad or unordered rank %q", line[sp+1:min(len(line), sp+20)])
		}
		last = r
		at := len(t.blob)
		t.blob = append(t.blob, 0, byte(r), byte(r>>8), byte(r>>16))
		if t.blob, err = base64.StdEncoding.AppendDecode(t.blob, line[:sp]); err != nil {
			return nil, fmt.Errorf("ranks: rank %d: %w", r, err)
		}
		n := len(t.blob) - at - tokenHeader
		if n == 0 || n > maxTokenLen {
			return nil, fmt.Errorf("ranks: rank %d: a token of %d bytes", r, n)
		}
		if len(t.blob) > math.MaxUint32 {
			return nil, errors.New("ranks: file too large")
		}
		t.blob[at] = byte(n)
		t.maxLen = max(t.maxLen, n)
		t.n++
	}
	size, shift := 1, uint(64)
	for size < 2*t.n {
		size, shift = size*2, shift-1
	}
	t.slots, t.shift = make([]uint64, size), shift
	for at := 1; at < len(t.blob); {
		tok, r := t.at(at)
		if t.rank(tok) >= 0 {
			return nil, fmt.Errorf("ranks: rank %d: a token listed twice", r)
		}
		h := maphash.String(t.seed, tok)
		i := int(h >> t.shift)
		for t.slots[i] != 0 {
			i = (i + 1) & (len(t.slots) - 1)
		}
		t.slots[i] = uint64(uint32(h))<<32 | uint64(at)
		at += tokenHeader + len(tok)
	}
	return t, nil
}

// at returns the token whose header is at blob[at], without copying it
// (the blob is never written after parseRanks), and its rank.
func (t *rankTable) at(at int) (string, int) {
	h := t.blob[at : at+tokenHeader]
	b := t.blob[at+tokenHeader : at+tokenHeader+int(h[0])]
	return unsafe.String(unsafe.SliceData(b), len(b)), int(h[1]) | int(h[2])<<8 | int(h[3])<<16
}

// rank returns the rank of s, or -1 when s is not a token.
func (t *rankTable) rank(s string) int32 {
	if len(s) > t.maxLen || len(s) == 0 {
		return -1
	}
	h := maphash.String(t.seed, s)
	tag := uint32(h)
	for i := int(h >> t.shift); ; i = (i + 1) & (len(t.slots) - 1) {
		v := t.slots[i]
		if v == 0 {
			return -1
		}
		if uint32(v>>32) != tag {
			continue
		}
		if tok, r := t.at(int(uint32(v))); tok == s {
			return int32(r)
		}
	}
}

// each calls f with every token and its rank, in rank order.
func (t *rankTable) each(f func(tok string, rank int)) {
	for at := 1; at < len(t.blob); {
		tok, r := t.at(at)
		f(tok, r)
		at += tokenHeader + len(tok)
	}
}
