package jsonspan

import (
	"bytes"
	"encoding/binary"
	"math/bits"
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
// that does not start a valid UTF-8 sequence. It looks at eight bytes at a
// time while they are plain ASCII, and validates UTF-8 in line.
func PlainPrefix(s []byte) int {
	// The next escape is found with bytes.IndexByte (vector instructions),
	// then the run before it is checked eight bytes at a time.
	j := bytes.IndexByte(s, '\\')
	if j < 0 {
		j = len(s)
	}
	for i, n := 0, len(s); i < j; {
		if j-i >= 8 {
			m := special(binary.LittleEndian.Uint64(s[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else if n-i >= 8 {
			// The last 1 to 7 bytes of the run, in a word that reaches
			// past it: the lanes past j are masked off.
			m := special(binary.LittleEndian.Uint64(s[i:])) & (1<<(8*(j-i)) - 1)
			if m == 0 {
				return j
			}
			i += bits.TrailingZeros64(m) >> 3
		}
		// The byte the word flagged, or one of the last of s.
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' {
				return i
			}
			i++
			continue
		}
		// A valid UTF-8 sequence, as utf8.DecodeRune accepts them: no
		// overlong forms, surrogates or values above U+10FFFF. In line: a
		// call per rune would double the cost of non-Latin text.
		switch {
		case c < 0xC2:
			return i
		case c < 0xE0:
			if n-i < 2 || s[i+1]&0xC0 != 0x80 {
				return i
			}
			i += 2
		case c < 0xF0:
			if n-i < 3 {
				return i
			}
			c1 := s[i+1]
			if c1&0xC0 != 0x80 || s[i+2]&0xC0 != 0x80 || c == 0xE0 && c1 < 0xA0 || c == 0xED && c1 > 0x9F {
				return i
			}
			i += 3
		case c < 0xF5:
			if n-i < 4 {
				return i
			}
			c1 := s[i+1]
			if c1&0xC0 != 0x80 || s[i+2]&0xC0 != 0x80 || s[i+3]&0xC0 != 0x80 || c == 0xF0 && c1 < 0x90 || c == 0xF4 && c1 > 0x8F {
				return i
			}
			i += 4
		default:
			return i
		}
	}
	return j
}

// special flags (with 0x80) each byte lane of x that is >= 0x80, < 0x20
// or '"'; the lowest flagged lane is exact, as a borrow only leaves a lane
// that is flagged itself. x^0x02 moves '"' to 0x20 and keeps control
// characters below it, so one comparison serves both.
func special(x uint64) uint64 {
	y := x ^ (lanes01 * 0x02)
	return (x | (y-lanes01*0x21)&^y) & lanes80
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
		if c := s[i]; c != '\\' {
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

// UnquoteInto appends the text of v, a JSON string literal with its
// quotes, to *buf and returns it as a string backed by *buf, with no
// allocation once *buf has room: "" when v is not a valid string literal
// or is empty. The string is valid for as long as the bytes it was
// appended as are not written again: a caller that reuses *buf (a stream
// decoder truncating it between events) must be done with the strings by
// then. Strings returned before *buf grew keep the old array, which is
// never written again.
func UnquoteInto(buf *[]byte, v []byte) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return ""
	}
	start := len(*buf)
	t, ok := AppendUnquoted(*buf, v[1:len(v)-1])
	if !ok || len(t) == start {
		*buf = t[:start]
		return ""
	}
	*buf = t
	return unsafe.String(&t[start], len(t)-start)
}
