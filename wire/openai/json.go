package openai

import (
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

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
// string, using scratch for escaped strings. Invalid UTF-8 and lone
// surrogates become U+FFFD, as encoding/json does. ok is false when s is
// not a well-formed string literal.
func unquote(s []byte, scratch *[]byte) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	s = s[1 : len(s)-1]
	plain := true
	for _, c := range s {
		if c == '\\' || c == '"' || c < 0x20 {
			plain = false
			break
		}
	}
	if plain {
		if utf8.Valid(s) {
			return string(s), true
		}
	}
	b := (*scratch)[:0]
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return "", false
			}
			switch s[i+1] {
			case '"', '\\', '/':
				b = append(b, s[i+1])
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := hex4(s, i+2)
				if !ok {
					return "", false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if r2, ok := hex4(s, i+2); ok && i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							i += 6
							b = utf8.AppendRune(b, d)
							continue
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				return "", false
			}
			i += 2
		case c == '"' || c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	*scratch = b
	return string(b), true
}

// hex4 reads four hex digits at s[i:].
func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
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
