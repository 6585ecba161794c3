package router

import (
	"errors"
	"math"
	"strconv"
)

// tokenCount is a token count as an upstream reports it. Any JSON number is
// accepted (integers beyond int64, fractions, exponents) and saturated to
// the int range, so an absurd figure reaches llm.Usage.Sanitize, which
// clamps it and marks the record, instead of failing the whole usage object
// and silently turning it into an estimate. null is 0; anything else (a
// string, an object) is an error, so the usage object is unusable and the
// tokens are estimated (and marked so) rather than recorded as 0.
type tokenCount int

// errNotCount is a token count that is not a JSON number.
var errNotCount = errors.New("token count is not a number")

// UnmarshalJSON implements json.Unmarshaler.
func (t *tokenCount) UnmarshalJSON(b []byte) error {
	*t = 0
	if string(b) == "null" {
		return nil
	}
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil || isRange(err) {
		*t = tokenCount(n) // ParseInt saturates on range errors
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil && !isRange(err) {
		return errNotCount
	}
	switch {
	case f != f: // NaN cannot come from JSON, but stay total
	case f >= math.MaxInt64:
		*t = math.MaxInt64
	case f <= math.MinInt64:
		*t = math.MinInt64
	default:
		*t = tokenCount(f)
	}
	return nil
}

func isRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}
