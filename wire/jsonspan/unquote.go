package jsonspan

import (
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Word-at-a-time constants: the byte 0x01 and the byte 0x80 in every lane.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// PlainPrefix returns the length of the longest prefix of s, the body of a
// JSON string literal without its quotes, that decodes to itself: it stops
// at the first backslash, double quote, control character (< 0x20) or byte
// that does not start a valid UTF-8 sequence. Runs of printable ASCII are
// checked eight bytes at a time.
func PlainPrefix(s []byte) int {
	i := 0
	for i < len(s) {
		for len(s)-i >= 8 {
			x := binary.LittleEndian.Uint64(s[i:])
			// A lane is flagged when its byte is >= 0x80, < 0x20, '"' or
			// '\\'. Borrows can only cross from a lane that is flagged
			// itself, so the answer is exact as a whole.
			m := x & lanes80
			m |= (x - lanes01*0x20) &^ x & lanes80
			q := x ^ (lanes01 * '"')
			m |= (q - lanes01) &^ q & lanes80
			bs := x ^ (lanes01 * '\\')
			m |= (bs - lanes01) &^ bs & lanes80
			if m != 0 {
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return i
}

// AppendUnquoted appends the text of s, the body of a JSON string literal
// without its quotes, to dst, decoded as encoding/json decodes it: every
// escape of RFC 8259 including UTF-16 surrogate pairs; an unpaired
// surrogate and each byte of invalid UTF-8 become U+FFFD. ok is false, with
// dst holding a prefix of the text, for an invalid or truncated escape, a
// raw double quote or a raw control character (< 0x20). It is linear in
// len(s) and allocates only by growing dst.
func AppendUnquoted(dst, s []byte) ([]byte, bool) {
	i := 0
	for {
		n := PlainPrefix(s[i:])
		dst = append(dst, s[i:i+n]...)
		if i += n; i >= len(s) {
			return dst, true
		}
		c := s[i]
		if c != '\\' {
			if c < utf8.RuneSelf {
				return dst, false // '"' or a control character
			}
			dst = append(dst, "\uFFFD"...) // a byte of invalid UTF-8
			i++
			continue
		}
		if i+1 >= len(s) {
			return dst, false
		}
		switch s[i+1] {
		case '"', '\\', '/':
			dst = append(dst, s[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				return dst, false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// Paired only with a \u escape that directly follows;
				// otherwise U+FFFD, and what follows is decoded on its own.
				if len(s)-i >= 6 && s[i] == '\\' && s[i+1] == 'u' {
					if r2, ok := hex4(s, i+2); ok {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							dst = utf8.AppendRune(dst, d)
							i += 6
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, false
		}
		i += 2
	}
}

// Unquote returns the text of s, the body of a JSON string literal without
// its quotes, as AppendUnquoted decodes it, with one allocation when the
// text is not plain (escapes only shrink; invalid UTF-8, which grows, may
// cost another).
func Unquote(s []byte) (string, bool) {
	n := PlainPrefix(s)
	if n == len(s) {
		return string(s), true
	}
	b, ok := AppendUnquoted(append(make([]byte, 0, len(s)), s[:n]...), s[n:])
	if !ok {
		return "", false
	}
	// b is not reachable from anywhere else, and never written again.
	return unsafe.String(unsafe.SliceData(b), len(b)), true
}

// hex4 decodes the four hex digits at s[i:].
func hex4(s []byte, i int) (rune, bool) {
	if len(s)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
