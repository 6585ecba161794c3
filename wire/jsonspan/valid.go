package jsonspan

// Valid reports whether b is one valid JSON value (RFC 8259) with only
// whitespace around it: the same answer as encoding/json.Valid, in one
// pass without its per-byte state-function calls (several times faster on
// typical answers). Nesting is tracked in a bit stack, so depth costs no
// recursion; bytes at or above 0x80 are accepted inside strings as
// encoding/json accepts them.
func Valid(b []byte) bool {
	var stack []uint64 // bit set: in an object; clear: in an array
	var inline uint64  // the first 64 levels, without allocating
	depth := 0
	push := func(obj bool) {
		if depth < 64 {
			if obj {
				inline |= 1 << depth
			} else {
				inline &^= 1 << depth
			}
		} else {
			w, bit := (depth-64)/64, uint((depth-64)%64)
			for len(stack) <= w {
				stack = append(stack, 0)
			}
			if obj {
				stack[w] |= 1 << bit
			} else {
				stack[w] &^= 1 << bit
			}
		}
		depth++
	}
	inObject := func() bool {
		d := depth - 1
		if d < 64 {
			return inline&(1<<d) != 0
		}
		return stack[(d-64)/64]&(1<<uint((d-64)%64)) != 0
	}
	i := SkipWS(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '{':
			i = SkipWS(b, i+1)
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			push(true)
			if i = objectKey(b, i); i < 0 {
				return false
			}
			continue
		case c == '[':
			i = SkipWS(b, i+1)
			if i < len(b) && b[i] == ']' {
				i++
				break
			}
			push(false)
			continue
		case c == '"':
			if i = validString(b, i); i < 0 {
				return false
			}
		case c == '-' || (c >= '0' && c <= '9'):
			if i = validNumber(b, i); i < 0 {
				return false
			}
		case c == 't':
			if !lit(b, i, "true") {
				return false
			}
			i += 4
		case c == 'f':
			if !lit(b, i, "false") {
				return false
			}
			i += 5
		case c == 'n':
			if !lit(b, i, "null") {
				return false
			}
			i += 4
		default:
			return false
		}
		// A value ended at i: close containers, or go on to the next value.
		for {
			i = SkipWS(b, i)
			if depth == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			obj := inObject()
			switch b[i] {
			case ',':
				i = SkipWS(b, i+1)
				if obj {
					if i = objectKey(b, i); i < 0 {
						return false
					}
				}
			case '}', ']':
				if (b[i] == '}') != obj {
					return false
				}
				depth--
				i++
				continue
			default:
				return false
			}
			break
		}
	}
}

// objectKey checks `"key" :` at i and returns the index of the value.
func objectKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = validString(b, i); i < 0 {
		return -1
	}
	i = SkipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return SkipWS(b, i+1)
}

// validString checks the string at b[i]=='"' and returns the index past it.
func validString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return -1
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// validNumber checks the number at i and returns the index past it.
func validNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return -1
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return -1
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	return i
}

func lit(b []byte, i int, s string) bool {
	return len(b)-i >= len(s) && string(b[i:i+len(s)]) == s
}
