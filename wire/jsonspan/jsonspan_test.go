package jsonspan

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestValueEnd(t *testing.T) {
	cases := []struct {
		in   string
		i    int
		want int
	}{
		{`"a\"b" ,`, 0, 6},
		{`{"a":[1,{"b":"}"}]} x`, 0, 19},
		{`[[[]]]`, 0, 6},
		{`123,`, 0, 3},
		{`true}`, 0, 4},
		{`null `, 0, 4},
		{`{"open":`, 0, 8},    // unclosed: len(b)
		{`"unclosed\`, 0, 10}, // an escape at the very end
	}
	for _, c := range cases {
		if got := ValueEnd([]byte(c.in), c.i); got != c.want {
			t.Errorf("ValueEnd(%q) = %d, want %d", c.in, got, c.want)
		}
	}
	if got := SkipWS([]byte(" \t\r\n x"), 0); got != 5 {
		t.Errorf("SkipWS = %d", got)
	}
	if got := SkipWS([]byte("  "), 0); got != 2 {
		t.Errorf("SkipWS all space = %d", got)
	}
}

// FuzzValueEnd: never panics, never runs past the input, agrees with
// encoding/json on the extent of valid values, and stays linear.
func FuzzValueEnd(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,"]",{}]`, `"x\\"`, `12e3`, strings.Repeat("[", 1000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		start := time.Now()
		i := SkipWS(b, 0)
		if i == len(b) {
			return
		}
		end := ValueEnd(b, i)
		if end < i || end > len(b) {
			t.Fatalf("ValueEnd out of range: %d for len %d", end, len(b))
		}
		if d := time.Since(start); d > time.Second+time.Duration(len(b))*time.Microsecond {
			t.Fatalf("%d bytes took %v", len(b), d)
		}
		if json.Valid(b) && b[i] != '"' && b[i] != '{' && b[i] != '[' {
			return // scalars end at a delimiter, which a whole document lacks
		}
		if json.Valid(b) && SkipWS(b, end) != len(b) {
			t.Fatalf("valid %q: value ends at %d", s, end)
		}
	})
}

// stringEndRef is the byte-by-byte string skip StringEnd replaced.
func stringEndRef(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// TestStringEndAgreesWithReference: the IndexByte skip agrees with a
// byte-by-byte one on escapes, runs of backslashes, unclosed strings and
// random strings over a small alphabet of quotes and backslashes.
func TestStringEndAgreesWithReference(t *testing.T) {
	cases := []string{`""`, `"a"`, `"a\"b"`, `"a\\"`, `"a\\\"b"`, `"\\\\"`, `"\\\\\"x"`, `"unclosed`, `"ends\`, `"é\u00e9\n"`}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte(`"\\ax`)
	for range 20000 {
		b := make([]byte, 1+r.IntN(12))
		b[0] = '"'
		for i := 1; i < len(b); i++ {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		b := []byte(s)
		if got, want := StringEnd(b, 0), stringEndRef(b, 0); got != want {
			t.Fatalf("StringEnd(%q) = %d; byte by byte %d", s, got, want)
		}
	}
}
