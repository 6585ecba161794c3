// Package jsonspan finds the extent of JSON values in bytes without decoding
// them: the shared core of the gateway's linear, allocation-free scanners
// (the router's request checks and splices, the token estimator's walker).
// Every function is linear in the bytes it looks at, never recurses and never
// panics on invalid input: it returns len(b) for what it cannot close. It
// imports the standard library only; the providers issue grows wire/ into
// one codec package per wire family.
package jsonspan

import (
	"bytes"
	"errors"
)

// ErrSyntax is EachMember's answer for bytes that are not a JSON object.
var ErrSyntax = errors.New("jsonspan: not a JSON object")

// SkipWS returns the index of the first byte at or after i that is not JSON
// whitespace, or len(b).
func SkipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// StringEnd returns the index just past the JSON string starting at
// b[i]=='"', or len(b) when it is not closed. Quotes are found with
// bytes.IndexByte (prompts are mostly long strings); a quote ends the
// string when an even number of backslashes precede it. Each byte is
// looked at at most twice: a run of backslashes counted back from a quote
// ends at the previous quote.
func StringEnd(b []byte, i int) int {
	for j := i + 1; ; {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return len(b)
		}
		k := j + q
		n := 0
		for p := k - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return k + 1
		}
		j = k + 1
	}
}

// ValueEnd returns the index just past the JSON value starting at b[i]
// (i < len(b)). Nesting is tracked with a counter, not recursion; a scalar
// ends at the next delimiter or whitespace.
func ValueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return StringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = StringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	default:
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
		}
		return len(b)
	}
}

// EachMember calls fn for each member of the JSON object in b, with the raw
// key (without quotes, still escaped) and the value's span [vs, ve). It
// returns the index of the object's closing brace, ErrSyntax when b is not
// a well-formed object at its top level (values are only spanned, not
// validated), or the first error fn returns, which stops the walk.
func EachMember(b []byte, fn func(key []byte, vs, ve int) error) (int, error) {
	i := SkipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, ErrSyntax
	}
	i = SkipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i, nil
	}
	for i < len(b) {
		if b[i] != '"' {
			return 0, ErrSyntax
		}
		ke := StringEnd(b, i)
		if ke-1 <= i || b[ke-1] != '"' {
			return 0, ErrSyntax
		}
		key := b[i+1 : ke-1]
		i = SkipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return 0, ErrSyntax
		}
		vs := SkipWS(b, i+1)
		if vs >= len(b) {
			return 0, ErrSyntax
		}
		ve := ValueEnd(b, vs)
		if err := fn(key, vs, ve); err != nil {
			return 0, err
		}
		i = SkipWS(b, ve)
		if i >= len(b) {
			break
		}
		if b[i] == '}' {
			return i, nil
		}
		if b[i] != ',' {
			return 0, ErrSyntax
		}
		i = SkipWS(b, i+1)
	}
	return 0, ErrSyntax
}
