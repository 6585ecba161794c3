package server

import (
	"strings"
	"testing"
)

// TestFDAdvice: the descriptor limit becomes a request capacity, and a
// bound that does not fit under it is warned about; unset, the bound is
// derived from the limit.
func TestFDAdvice(t *testing.T) {
	for _, c := range []struct {
		limit   uint64
		max     int64
		streams int64
		warn    string
	}{
		{1 << 20, 10_000, (1<<20 - fdReserve) / 2, ""},
		{1 << 20, 0, (1<<20 - fdReserve) / 2, ""},
		{1024, 1000, 384, "needs about 2256 open files but the limit is 1024"},
		{1024, 384, 384, ""},
		{100, 10, 0, "too low to serve"},
	} {
		streams, warn := fdAdvice(c.limit, c.max)
		if streams != c.streams || (c.warn == "") != (warn == "") || !strings.Contains(warn, c.warn) {
			t.Errorf("fdAdvice(%d, %d) = %d, %q; want %d, %q", c.limit, c.max, streams, warn, c.streams, c.warn)
		}
	}
	if l, ok := openFileLimit(); ok && l == 0 {
		t.Fatal("a limit of 0 reported as known")
	}
	if effectiveMaxInFlight(7) != 7 {
		t.Fatal("a configured bound was not kept")
	}
	if l, ok := openFileLimit(); ok {
		want, _ := fdAdvice(l, 0)
		if got := effectiveMaxInFlight(0); got != max(want, 1) {
			t.Fatalf("derived bound %d, want %d (limit %d)", got, max(want, 1), l)
		}
	}
}
