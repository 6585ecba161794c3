package quota

import (
	"unicode"
	"unicode/utf8"
)

// Hand-written pre-tokenizers for o200k_base and cl100k_base. Each is the
// tiktoken pattern (o200kPattern, cl100kPattern) unrolled into code that
// makes the same choices the backtracking regexp engine makes — the first
// alternative that matches, each quantifier as greedy as the rest of its
// alternative allows — but in one forward scan: no pre-token is scanned
// more than a few times, so splitting is linear in the text. The text
// must be valid UTF-8 (count replaces each invalid byte by U+FFFD first,
// as tiktoken-go's conversion to runes does).

// Rune classes, as bits.
const (
	clsUpper   = 1 << iota // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] (o200k)
	clsLower               // [\p{Ll}\p{Lm}\p{Lo}\p{M}] (o200k)
	clsLetter              // \p{L}
	clsNumber              // \p{N}
	clsSpace               // \s: unicode.IsSpace, as regexp2 defines it
	clsNewline             // \r or \n
)

// runeClasses holds the class bits of every rune of the Basic Multilingual
// Plane; rarer runes are classified on the fly.
type runeClasses [1 << 16]uint8

func newRuneClasses() *runeClasses {
	t := new(runeClasses)
	for r := range t {
		t[r] = classify(rune(r))
	}
	return t
}

func classify(r rune) uint8 {
	var c uint8
	lu, lt, ll := unicode.Is(unicode.Lu, r), unicode.Is(unicode.Lt, r), unicode.Is(unicode.Ll, r)
	lm, lo, m := unicode.Is(unicode.Lm, r), unicode.Is(unicode.Lo, r), unicode.Is(unicode.M, r)
	if lu || lt || lm || lo || m {
		c |= clsUpper
	}
	if ll || lm || lo || m {
		c |= clsLower
	}
	if unicode.IsLetter(r) {
		c |= clsLetter
	}
	if unicode.Is(unicode.N, r) {
		c |= clsNumber
	}
	if unicode.IsSpace(r) {
		c |= clsSpace
	}
	if r == '\r' || r == '\n' {
		c |= clsNewline
	}
	return c
}

// at returns the classes and width of the rune at s[i] (i < len(s)).
func (t *runeClasses) at(s string, i int) (uint8, int) {
	if b := s[i]; b < utf8.RuneSelf {
		return t[b], 1
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	if r < 1<<16 {
		return t[r], w
	}
	return classify(r), w
}

// Derived classes.
func isPrefix(c uint8) bool { return c&(clsNewline|clsLetter|clsNumber) == 0 } // [^\r\n\p{L}\p{N}]
func isPunct(c uint8) bool  { return c&(clsSpace|clsLetter|clsNumber) == 0 }   // [^\s\p{L}\p{N}]

// lowerASCII folds an ASCII capital to lower case. (No other rune folds to
// one of the contraction letters under unicode.ToLower, which is what the
// regexp engine's (?i) compares.)
func lowerASCII(b byte) byte {
	if b >= 'A' && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// contraction returns the end of (?i:'s|'t|'re|'ve|'m|'ll|'d) at s[i], or
// i when there is none.
func contraction(s string, i int) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return i
	}
	switch lowerASCII(s[i+1]) {
	case 's', 't', 'm', 'd':
		return i + 2
	case 'r', 'v':
		if i+2 < len(s) && lowerASCII(s[i+2]) == 'e' {
			return i + 3
		}
	case 'l':
		if i+2 < len(s) && lowerASCII(s[i+2]) == 'l' {
			return i + 3
		}
	}
	return i
}

// nextO200k returns the end of the pre-token that starts at s[p]
// (p < len(s)), or -1 when no alternative matches there (which the
// pattern never allows, but the caller copes).
func (t *runeClasses) nextO200k(s string, p int) int {
	c0, w0 := t.at(s, p)
	prefixed := isPrefix(c0) && p+w0 < len(s)
	// [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|…)?
	if prefixed {
		if e := t.upperThenLower(s, p+w0); e >= 0 {
			return e
		}
	}
	if e := t.upperThenLower(s, p); e >= 0 {
		return e
	}
	// [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|…)?
	if prefixed {
		if e := t.upperRun(s, p+w0); e >= 0 {
			return e
		}
	}
	if e := t.upperRun(s, p); e >= 0 {
		return e
	}
	if c0&clsNumber != 0 {
		return t.numbers(s, p+w0)
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n/]*'
	if e := t.punct(s, p, c0, true); e >= 0 {
		return e
	}
	if c0&clsSpace != 0 {
		return t.spaces(s, p)
	}
	return -1
}

// upperThenLower matches [upper]*[lower]+(contraction)? at s[q]: the
// upper-class run is greedy, and gives back runes until a lower-class rune
// can start the lower run.
func (t *runeClasses) upperThenLower(s string, q int) int {
	i, lastLower := q, -1
	for i < len(s) {
		c, w := t.at(s, i)
		if c&clsUpper == 0 {
			break
		}
		if c&clsLower != 0 {
			lastLower = i
		}
		i += w
	}
	if i < len(s) {
		if c, _ := t.at(s, i); c&clsLower != 0 {
			lastLower = i
		}
	}
	if lastLower < 0 {
		return -1
	}
	i = lastLower
	for i < len(s) {
		c, w := t.at(s, i)
		if c&clsLower == 0 {
			break
		}
		i += w
	}
	return contraction(s, i)
}

// upperRun matches [upper]+[lower]*(contraction)? at s[q].
func (t *runeClasses) upperRun(s string, q int) int {
	i := q
	for i < len(s) {
		c, w := t.at(s, i)
		if c&clsUpper == 0 {
			break
		}
		i += w
	}
	if i == q {
		return -1
	}
	for i < len(s) {
		c, w := t.at(s, i)
		if c&clsLower == 0 {
			break
		}
		i += w
	}
	return contraction(s, i)
}

// numbers finishes \p{N}{1,3} whose first rune ends at i.
func (t *runeClasses) numbers(s string, i int) int {
	for k := 1; k < 3 && i < len(s); k++ {
		c, w := t.at(s, i)
		if c&clsNumber == 0 {
			break
		}
		i += w
	}
	return i
}

// punct matches ' ?[^\s\p{L}\p{N}]+' at s[p] followed by [\r\n]* (and
// slashes, for o200k), or returns -1.
func (t *runeClasses) punct(s string, p int, c0 uint8, slash bool) int {
	i := p
	if s[p] == ' ' && p+1 < len(s) {
		if c, _ := t.at(s, p+1); isPunct(c) {
			i = p + 1
		}
	}
	if i == p && !isPunct(c0) {
		return -1
	}
	for i < len(s) {
		c, w := t.at(s, i)
		if !isPunct(c) {
			break
		}
		i += w
	}
	for i < len(s) && (s[i] == '\r' || s[i] == '\n' || slash && s[i] == '/') {
		i++
	}
	return i
}

// spaces matches, at a whitespace rune s[p], the first of \s*[\r\n]+,
// \s+(?!\S) and \s+.
func (t *runeClasses) spaces(s string, p int) int {
	i, last, lastNewline := p, p, -1
	for i < len(s) {
		c, w := t.at(s, i)
		if c&clsSpace == 0 {
			break
		}
		if c&clsNewline != 0 {
			lastNewline = i
		}
		last = i
		i += w
	}
	switch {
	case lastNewline >= 0: // \s*[\r\n]+ backs off to the last newline
		return lastNewline + 1
	case i == len(s): // \s+(?!\S) at the end of the text
		return i
	case last > p: // \s+(?!\S) gives back the last space
		return last
	default: // \s+
		return i
	}
}

// nextCl100k is nextO200k for cl100k_base's pattern.
func (t *runeClasses) nextCl100k(s string, p int) int {
	// (?i:'s|'t|'re|'ve|'m|'ll|'d)
	if e := contraction(s, p); e > p {
		return e
	}
	c0, w0 := t.at(s, p)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	start := -1
	if isPrefix(c0) && p+w0 < len(s) {
		if c, _ := t.at(s, p+w0); c&clsLetter != 0 {
			start = p + w0
		}
	}
	if start < 0 && c0&clsLetter != 0 {
		start = p
	}
	if start >= 0 {
		i := start
		for i < len(s) {
			c, w := t.at(s, i)
			if c&clsLetter == 0 {
				break
			}
			i += w
		}
		return i
	}
	if c0&clsNumber != 0 {
		return t.numbers(s, p+w0)
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	if e := t.punct(s, p, c0, false); e >= 0 {
		return e
	}
	if c0&clsSpace != 0 {
		return t.spaces(s, p)
	}
	return -1
}
