package llm

import (
	"crypto/rand"
	"hash/crc32"
	"strings"
	"testing"
)

func randomKey(t testing.TB, prefix string) string {
	t.Helper()
	var b [KeyRandomBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return FormatKey(prefix, b)
}

// TestKeyFormat checks the shapes ParseKey tells apart: issued keys of
// both kinds, keys issued before the checksum, and near misses.
func TestKeyFormat(t *testing.T) {
	gw, adm := randomKey(t, KeyPrefix), randomKey(t, AdminKeyPrefix)
	if len(gw) != len(KeyPrefix)+KeyBodyLen+KeyChecksumLen || len(adm) != len(AdminKeyPrefix)+KeyBodyLen+KeyChecksumLen {
		t.Fatalf("lengths %d %d", len(gw), len(adm))
	}
	legacy := KeyPrefix + gw[len(KeyPrefix):len(KeyPrefix)+KeyBodyLen]
	var zero, ones [KeyRandomBytes]byte
	for i := range ones {
		ones[i] = 0xff
	}
	tests := []struct {
		secret string
		want   KeyFormat
	}{
		{gw, KeyGateway},
		{adm, KeyAdmin},
		{FormatKey(KeyPrefix, zero), KeyGateway},
		{FormatKey(KeyPrefix, ones), KeyGateway},
		{FormatKey(AdminKeyPrefix, ones), KeyAdmin},
		{legacy, KeyLegacy},
		{"", KeyForeign},
		{"sk-test", KeyForeign},
		{"adm-0123456789abcdef0123456789abcdef", KeyForeign},
		{"SK-SLUICE-" + gw[len(KeyPrefix):], KeyForeign},
		{KeyPrefix, KeyMalformed},
		{AdminKeyPrefix, KeyMalformed},
		{gw[:len(gw)-1], KeyMalformed},
		{gw + "0", KeyMalformed},
		{adm[:len(adm)-1], KeyMalformed},
		{legacy + "!", KeyMalformed},
		{gw[:len(gw)-1] + " ", KeyMalformed},
		{KeyPrefix + "' OR 1=1 --", KeyMalformed},
		{AdminKeyPrefix + "' OR 1=1 --", KeyMalformed},
		// A gateway body in an admin key, and the other way round.
		{AdminKeyPrefix + gw[len(KeyPrefix):], KeyMalformed},
		{KeyPrefix + adm[len(AdminKeyPrefix):], KeyMalformed},
		// The checksum is the largest 6-digit base62 value: above 2^32.
		{gw[:len(gw)-KeyChecksumLen] + "ZZZZZZ", KeyMalformed},
	}
	for _, tt := range tests {
		if got := ParseKey(tt.secret); got != tt.want {
			t.Errorf("ParseKey(%q) = %d, want %d", tt.secret, got, tt.want)
		}
	}
	// Every single-character change of an issued key is caught (CRC-32
	// detects every error in one byte).
	for _, key := range []string{gw, adm} {
		pre := len(AdminKeyPrefix)
		if ParseKey(key) == KeyGateway {
			pre = len(KeyPrefix)
		}
		for i := pre; i < len(key); i++ {
			for _, c := range []byte(base62Digits) {
				if c == key[i] {
					continue
				}
				m := key[:i] + string(c) + key[i+1:]
				if f := ParseKey(m); f != KeyMalformed {
					t.Fatalf("changing position %d of an issued key gives %d, want malformed", i, f)
				}
			}
		}
	}
	// The hand-rolled CRC is the standard one.
	if crc("sk-", "abc") != crc32.ChecksumIEEE([]byte("sk-abc")) {
		t.Fatal("crc differs from hash/crc32")
	}
	if n := testing.AllocsPerRun(100, func() { ParseKey(gw); ParseKey(adm); ParseKey(legacy) }); n != 0 {
		t.Errorf("ParseKey allocates %v times", n)
	}
}

// FuzzAPIKeyFormat: ParseKey never panics; whatever it accepts as
// checksummed is exactly what FormatKey would issue for that body, so a key
// is accepted in one spelling only; and a key built from the input's bytes
// always parses as its kind.
func FuzzAPIKeyFormat(f *testing.F) {
	f.Add("sk-sluice-000000000000000000000000000000000Fh7Uft")
	f.Add("sk-sluice-admin-ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ000000")
	f.Add("sk-sluice-abc")
	f.Add("' OR 1=1 --")
	f.Fuzz(func(t *testing.T, s string) {
		got := ParseKey(s)
		switch got {
		case KeyGateway, KeyAdmin:
			prefix := KeyPrefix
			if got == KeyAdmin {
				prefix = AdminKeyPrefix
			}
			body := s[len(prefix) : len(s)-KeyChecksumLen]
			if s != prefix+body+keyChecksum(prefix, body) {
				t.Fatalf("accepted %q, whose checksum is not the one issued", s)
			}
		case KeyLegacy:
			if len(s) != len(KeyPrefix)+KeyBodyLen || !base62(s[len(KeyPrefix):]) {
				t.Fatalf("legacy %q", s)
			}
		case KeyForeign:
			if strings.HasPrefix(s, KeyPrefix) {
				t.Fatalf("%q has the Sluice prefix but is foreign", s)
			}
		}
		var b [KeyRandomBytes]byte
		copy(b[:], s)
		if k := FormatKey(KeyPrefix, b); ParseKey(k) != KeyGateway {
			t.Fatalf("issued %q does not parse", k)
		}
		if k := FormatKey(AdminKeyPrefix, b); ParseKey(k) != KeyAdmin {
			t.Fatalf("issued %q does not parse", k)
		}
	})
}
