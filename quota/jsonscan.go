package quota

import (
	"bytes"
	"encoding/json"
)

// A minimal JSON walker for PromptTokens: it finds the spans of values
// without building them, so that a body of millions of tiny messages costs
// one pass and no allocation per element. It never panics on invalid
// input; it reports false instead (or walks what it can).

// skipWS returns the index of the first non-space byte at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting at b[i]=='"',
// or len(b) when it is not closed.
func stringEnd(b []byte, i int) int {
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

// valueEnd returns the index just past the value starting at b[i]. Nesting
// is tracked with a counter, not recursion.
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return len(b)
}

// eachMember calls fn with each member of the object b (its raw name,
// still escaped, and its value). It reports false when b is not an object.
func eachMember(b []byte, fn func(name, v []byte)) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	for i = skipWS(b, i+1); i < len(b) && b[i] == '"'; {
		ke := stringEnd(b, i)
		name := b[i+1 : max(ke-1, i+1)]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		vs := skipWS(b, i+1)
		if vs >= len(b) {
			return false
		}
		ve := valueEnd(b, vs)
		fn(name, b[vs:ve])
		i = skipWS(b, ve)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return true
}

// eachElement calls fn with each element of the array b.
func eachElement(b []byte, fn func(v []byte)) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return
	}
	for i = skipWS(b, i+1); i < len(b) && b[i] != ']'; {
		ve := valueEnd(b, i)
		if ve <= i {
			return
		}
		fn(b[i:ve])
		i = skipWS(b, ve)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
}

// nameIs reports whether the raw member name is want (escapes decoded).
func nameIs(raw []byte, want string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == want
	}
	var s string
	return json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s) == nil && s == want
}
