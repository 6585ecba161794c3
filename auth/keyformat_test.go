package auth

import (
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// TestMalformedKeyNoLookup (T15): a Sluice-shaped key with a bad checksum,
// and an admin key, are refused before any lookup. The snapshot holds each
// of them as a valid key, so a lookup would have let them in; keys issued
// with and before the checksum still work.
func TestMalformedKeyNoLookup(t *testing.T) {
	var r [llm.KeyRandomBytes]byte
	r[3] = 7
	good := llm.FormatKey(llm.KeyPrefix, r)
	adm := llm.FormatKey(llm.AdminKeyPrefix, r)
	legacy := good[:len(llm.KeyPrefix)+llm.KeyBodyLen]
	flip := []byte(good)
	flip[len(flip)-1] ^= 1 // a typo in the checksum
	typo := []byte(good)
	typo[len(llm.KeyPrefix)+2] = 'Z' // a typo in the body
	snap := llm.EmptySnapshot()
	for i, s := range []string{good, legacy, string(flip), string(typo), adm, llm.KeyPrefix + "' OR 1=1 --"} {
		h := llm.HashKey(s)
		snap.Keys[h] = &llm.Key{ID: string(rune('a' + i)), Hash: h}
	}
	now := time.Now()
	for _, s := range []string{good, legacy} {
		if _, err := Authenticate(snap, s, now); err != nil {
			t.Errorf("issued key %.14s… refused: %v", s, err)
		}
	}
	for _, s := range []string{string(flip), string(typo), adm, llm.KeyPrefix + "' OR 1=1 --"} {
		if p, err := Authenticate(snap, s, now); err == nil {
			t.Errorf("malformed key %.16s… accepted as %s", s, p.ID)
		}
	}
}
