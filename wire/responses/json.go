package responses

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"

	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// errStop ends a member walk early.
var errStop = errors.New("stop")

// appendString appends s as a JSON string literal (jsonspan.AppendString).
func appendString(b []byte, s string) []byte { return jsonspan.AppendString(b, s) }

// appendNullable appends s as a JSON string, or null when s is empty.
func appendNullable(b []byte, s string) []byte { return jsonspan.AppendNullable(b, s) }

// appendInt appends n in decimal.
func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// count reads a token count: a JSON number (saturating at the int range,
// fractions cut) or null (0). ok is false for anything else.
func count(v []byte) (n int, ok bool) {
	if string(v) == "null" {
		return 0, true
	}
	if i, err := strconv.ParseInt(string(v), 10, 64); err == nil || isRange(err) {
		return clampInt(i), true
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil && !isRange(err) {
		return 0, false
	}
	switch {
	case f != f:
		return 0, false
	case f >= math.MaxInt64:
		return math.MaxInt, true
	case f <= math.MinInt64:
		return math.MinInt, true
	}
	return clampInt(int64(f)), true
}

func clampInt(i int64) int {
	if i > math.MaxInt {
		return math.MaxInt
	}
	if i < math.MinInt {
		return math.MinInt
	}
	return int(i)
}

func isRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// member returns the value of the first member named name in the JSON
// object b (nil when absent or b is not an object). Keys are compared
// raw (escaped), as OpenAI never escapes its member names.
func member(b []byte, name string) []byte {
	var v []byte
	_, _ = jsonspan.EachMember(b, func(k []byte, vs, ve int) error {
		if string(k) == name {
			v = b[vs:ve]
			return errStop
		}
		return nil
	})
	return v
}

// stringValue returns the contents of a JSON string value, unescaped
// when needed; ok is false when v is not a string.
func stringValue(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}
