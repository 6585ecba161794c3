package llm

import (
	"hash/crc32"
	"math/big"
	"strings"
)

// Sluice key format. A key is a type prefix, a body of KeyBodyLen base62
// characters (192 random bits) and, since the checksum was introduced, a
// KeyChecksumLen base62 checksum: the CRC-32 (IEEE) of prefix and body,
// as GitHub's tokens carry. The checksum lets the gateway, and secret
// scanners, reject a mistyped or made-up key without a lookup. Keys issued
// before the checksum (a body and nothing more) stay valid: ParseKey
// reports them as KeyLegacy and they are looked up as before.
const (
	// KeyPrefix starts every Sluice (gateway) key.
	KeyPrefix = "sk-sluice-"
	// AdminKeyPrefix starts every admin key stored in the database. Its
	// "-" after "admin" cannot occur in a gateway key's body, so the two
	// kinds never parse as each other.
	AdminKeyPrefix = "sk-sluice-admin-"
	// KeyRandomBytes is the random part's size: 192 bits.
	KeyRandomBytes = 24
	// KeyBodyLen is the base62 length of KeyRandomBytes (62^33 > 2^192).
	KeyBodyLen = 33
	// KeyChecksumLen is the base62 length of a CRC-32 (62^6 > 2^32).
	KeyChecksumLen = 6
	// KeyDisplayLen is how much of a key is stored and shown for
	// recognition: its prefix and a few characters of the body.
	KeyDisplayLen = 12
	// AdminKeyDisplayLen is KeyDisplayLen for admin keys, whose type
	// prefix is longer: the prefix and 6 characters of the body.
	AdminKeyDisplayLen = len(AdminKeyPrefix) + 6
)

// KeyFormat is what ParseKey makes of a credential.
type KeyFormat int

// Key formats.
const (
	// KeyForeign is not in Sluice's format at all (no Sluice prefix). The
	// proxy still looks it up; an admin key comparison treats it as the
	// bootstrap key candidate.
	KeyForeign KeyFormat = iota
	// KeyMalformed has a Sluice prefix but a wrong length, a character
	// outside base62 or a checksum that does not match: no such key was
	// ever issued, so it is refused without a lookup.
	KeyMalformed
	// KeyLegacy is a gateway key issued before the checksum.
	KeyLegacy
	// KeyGateway is a checksummed gateway key.
	KeyGateway
	// KeyAdmin is a checksummed admin key.
	KeyAdmin
)

// ParseKey classifies secret by its shape alone, without any lookup. It
// never allocates.
func ParseKey(secret string) KeyFormat {
	if body, ok := strings.CutPrefix(secret, AdminKeyPrefix); ok {
		if len(body) == KeyBodyLen+KeyChecksumLen && base62(body) && checksumOK(AdminKeyPrefix, body) {
			return KeyAdmin
		}
		return KeyMalformed
	}
	body, ok := strings.CutPrefix(secret, KeyPrefix)
	if !ok {
		return KeyForeign
	}
	switch {
	case !base62(body):
		return KeyMalformed
	case len(body) == KeyBodyLen:
		return KeyLegacy
	case len(body) == KeyBodyLen+KeyChecksumLen && checksumOK(KeyPrefix, body):
		return KeyGateway
	}
	return KeyMalformed
}

// FormatKey builds a checksummed key of the given type prefix (KeyPrefix
// or AdminKeyPrefix) from KeyRandomBytes of randomness.
func FormatKey(prefix string, random [KeyRandomBytes]byte) string {
	body := new(big.Int).SetBytes(random[:]).Text(62)
	if len(body) < KeyBodyLen {
		body = strings.Repeat("0", KeyBodyLen-len(body)) + body
	}
	return prefix + body + keyChecksum(prefix, body)
}

// keyChecksum is the base62 CRC-32 of prefix+body, KeyChecksumLen long.
func keyChecksum(prefix, body string) string {
	var out [KeyChecksumLen]byte
	c := crc(prefix, body)
	for i := KeyChecksumLen - 1; i >= 0; i-- {
		out[i] = base62Digits[c%62]
		c /= 62
	}
	return string(out[:])
}

// crc is the CRC-32 (IEEE) of prefix+body, computed over the strings in
// place (crc32.Update would need them as a []byte, an allocation).
func crc(prefix, body string) uint32 {
	c := ^uint32(0)
	for _, s := range [2]string{prefix, body} {
		for i := 0; i < len(s); i++ {
			c = crc32.IEEETable[byte(c)^s[i]] ^ (c >> 8)
		}
	}
	return ^c
}

// checksumOK reports whether body's last KeyChecksumLen characters are the
// checksum of prefix and the rest of body.
func checksumOK(prefix, body string) bool {
	n := len(body) - KeyChecksumLen
	c := crc(prefix, body[:n])
	for i := len(body) - 1; i >= n; i-- {
		if body[i] != base62Digits[c%62] {
			return false
		}
		c /= 62
	}
	return c == 0
}

// base62Digits are big.Int's digits for base 62.
const base62Digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func base62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
