package openai

import (
	"math"
	"strconv"

	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// appendString appends s as a JSON string literal (jsonspan.AppendString).
func appendString(b []byte, s string) []byte { return jsonspan.AppendString(b, s) }

// appendNullable appends s as a JSON string, or null when s is empty.
func appendNullable(b []byte, s string) []byte { return jsonspan.AppendNullable(b, s) }

// appendFloat appends f as a JSON number; ok is false for NaN and
// infinities, which JSON cannot carry.
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, false
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64), true
}

// unquote decodes the JSON string literal s (quotes included) into a Go
// string, using scratch for escaped strings (jsonspan.AppendUnquoted).
// Invalid UTF-8 and lone surrogates become U+FFFD, as encoding/json does.
// ok is false when s is not a well-formed string literal.
func unquote(s []byte, scratch *[]byte) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	s = s[1 : len(s)-1]
	n := jsonspan.PlainPrefix(s)
	if n == len(s) {
		return string(s), true
	}
	b, ok := jsonspan.AppendUnquoted(append((*scratch)[:0], s[:n]...), s[n:])
	*scratch = b[:0]
	if !ok {
		return "", false
	}
	return string(b), true
}

// eachObject calls fn for each element of the JSON array b, which must
// be an object: fn gets the bytes from the element's opening brace to the
// end of b and returns the index of the element's closing brace in them
// (what jsonspan.EachMember returns), so an element is scanned once, by
// fn's own walk. It stops at the first error fn returns and reports
// jsonspan.ErrSyntax for what is not an array of objects.
func eachObject(b []byte, fn func(obj []byte) (int, error)) error {
	i := jsonspan.SkipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return jsonspan.ErrSyntax
	}
	i = jsonspan.SkipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for i < len(b) {
		if b[i] != '{' {
			return jsonspan.ErrSyntax
		}
		end, err := fn(b[i:])
		if err != nil {
			return err
		}
		i = jsonspan.SkipWS(b, i+end+1)
		if i >= len(b) {
			break
		}
		if b[i] == ']' {
			return nil
		}
		if b[i] != ',' {
			return jsonspan.ErrSyntax
		}
		i = jsonspan.SkipWS(b, i+1)
	}
	return jsonspan.ErrSyntax
}

// count reads a JSON number as a token count, saturated to the int range
// (fractions truncated), so an absurd figure reaches llm.Usage.Sanitize,
// which clamps it. null is 0. ok is false for anything else.
func count(v []byte) (int, bool) {
	if string(v) == "null" {
		return 0, true
	}
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return 0, false
	}
	if n, ok := digits(v); ok {
		return n, true
	}
	if n, err := strconv.ParseInt(string(v), 10, 64); err == nil || isRange(err) {
		return clampInt(n), true
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil && !isRange(err) {
		return 0, false
	}
	switch {
	case f != f:
		return 0, true
	case f >= math.MaxInt64:
		return math.MaxInt, true
	case f <= math.MinInt64:
		return math.MinInt, true
	}
	return clampInt(int64(f)), true
}

func clampInt(n int64) int {
	if n > math.MaxInt {
		return math.MaxInt
	}
	if n < math.MinInt {
		return math.MinInt
	}
	return int(n)
}

func isRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// index reads a JSON integer index in [0, limit); ok is false otherwise.
func index(v []byte, limit int) (int, bool) {
	n, ok := digits(v)
	if !ok || n >= limit {
		return 0, false
	}
	return n, true
}

// digits reads a plain decimal integer of at most 18 digits (no sign,
// fraction or exponent) without allocating.
func digits(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

func appendFloat32(b []byte, f float32) []byte {
	return strconv.AppendFloat(b, float64(f), 'g', -1, 32)
}
