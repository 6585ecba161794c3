// Package jsonspan finds the extent of JSON values in bytes without decoding
// them: the shared core of the gateway's linear, allocation-free scanners
// (the router's request checks and splices, the token estimator's walker).
// Every function is linear in the bytes it looks at, never recurses and never
// panics on invalid input: it returns len(b) for what it cannot close. It
// imports the standard library only; the providers issue grows wire/ into
// one codec package per wire family.
package jsonspan

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
// b[i]=='"', or len(b) when it is not closed.
func StringEnd(b []byte, i int) int {
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
