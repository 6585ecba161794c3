package anthropic

import (
	"math"
	"strconv"

	"github.com/sluice-ai/sluice/wire/jsonspan"
)

// Bounds on what a parser accepts from outside.
const (
	// MaxBlocks bounds the content blocks of one message or answer.
	MaxBlocks = 4096
	// MaxToolCalls bounds the tool calls of one message or answer.
	MaxToolCalls = 128
	// MaxBlockIndex bounds a stream's content block indexes.
	MaxBlockIndex = 1024
	// MaxMessages bounds the messages of one request (Anthropic's own limit).
	MaxMessages = 100_000
	// MaxTools bounds the tools of one request.
	MaxTools = 4096
	// MaxStopSequences bounds stop_sequences.
	MaxStopSequences = 1024
)

// appendString appends s as a JSON string literal (jsonspan.AppendString).
func appendString(b []byte, s string) []byte { return jsonspan.AppendString(b, s) }

// unquote returns the value of the JSON string b (quotes included), as
// encoding/json decodes it (jsonspan.Unquote). ok is false when b is not a
// JSON string.
func unquote(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	return jsonspan.Unquote(b[1 : len(b)-1])
}

// parseInt reads a JSON number as an int: fractions are truncated,
// magnitudes beyond ±2^53 saturate. ok is false when b is not a number.
func parseInt(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n, neg, i := 0, false, 0
	if b[0] == '-' {
		neg, i = true, 1
	}
	if i == len(b) {
		return 0, false
	}
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			break
		}
		if n < 1<<53 {
			n = n*10 + int(c-'0')
		}
	}
	if i < len(b) {
		// A fraction or an exponent: the slow path.
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil && !isRange(err) {
			return 0, false
		}
		switch {
		case math.IsNaN(f):
			return 0, false
		case f >= 1<<53:
			return 1 << 53, true
		case f <= -(1 << 53):
			return -(1 << 53), true
		}
		return int(f), true
	}
	n = min(n, 1<<53)
	if neg {
		n = -n
	}
	return n, true
}

func isRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// errStop ends a member walk early.
type stopWalk struct{}

func (stopWalk) Error() string { return "stop" }

// member returns the span of the top-level member name of the object b
// (name unescaped and plain), or ok false.
func member(b []byte, name string) (vs, ve int, ok bool) {
	_, _ = jsonspan.EachMember(b, func(key []byte, s, e int) error {
		if string(key) == name {
			vs, ve, ok = s, e, true
			return stopWalk{}
		}
		return nil
	})
	return vs, ve, ok
}

// isNull reports whether v is absent or the JSON null.
func isNull(v []byte) bool { return len(v) == 0 || string(v) == "null" }

// members iterates over the members of a JSON object without a closure
// (the hot paths use it; jsonspan.EachMember's callback escapes). Usage:
//
//	for it := newMembers(b); it.next(); { it.key, it.val }
//
// It stops at the first syntax error; ok then reports false.
type members struct {
	b        []byte
	i        int
	key, val []byte
	bad      bool
}

func newMembers(b []byte) members {
	i := jsonspan.SkipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return members{b: b, i: len(b), bad: true}
	}
	return members{b: b, i: jsonspan.SkipWS(b, i+1)}
}

func (m *members) next() bool {
	b, i := m.b, m.i
	if i >= len(b) || b[i] == '}' {
		if i >= len(b) {
			m.bad = true
		}
		m.i = len(b)
		return false
	}
	if b[i] != '"' {
		m.bad, m.i = true, len(b)
		return false
	}
	ke := jsonspan.StringEnd(b, i)
	if ke-1 <= i || b[ke-1] != '"' {
		m.bad, m.i = true, len(b)
		return false
	}
	m.key = b[i+1 : ke-1]
	i = jsonspan.SkipWS(b, ke)
	if i >= len(b) || b[i] != ':' {
		m.bad, m.i = true, len(b)
		return false
	}
	vs := jsonspan.SkipWS(b, i+1)
	if vs >= len(b) {
		m.bad, m.i = true, len(b)
		return false
	}
	ve := jsonspan.ValueEnd(b, vs)
	m.val = b[vs:ve]
	i = jsonspan.SkipWS(b, ve)
	switch {
	case i < len(b) && b[i] == ',':
		m.i = jsonspan.SkipWS(b, i+1)
		if m.i < len(b) && b[m.i] == '}' {
			m.bad = true // a trailing comma
		}
	case i < len(b) && b[i] == '}':
		m.i = i
	default:
		m.bad = true
		m.i = len(b)
	}
	return true
}

// ok reports whether the walk met no syntax error (so far).
func (m *members) ok() bool { return !m.bad }
