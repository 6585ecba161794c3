package main

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// TestTTFTTail: --ttft-tail p:d parses and validates; a request drawn in
// the tail waits d more before its headers, the others do not.
func TestTTFTTail(t *testing.T) {
	for _, bad := range []string{"x", "0.5", "2:1s", "-0.1:1s", "0.5:-1s", "0.5:soon", "NaN:1s"} {
		if _, err := parseFlags([]string{"--ttft-tail", bad}, io.Discard); err == nil {
			t.Fatalf("--ttft-tail %s: no error", bad)
		}
	}
	c, err := parseFlags([]string{"--ttft-tail", "0.05:2s"}, io.Discard)
	if err != nil || c.TailP != 0.05 || c.TailDelay != 2*time.Second {
		t.Fatalf("parsed %+v %v", c, err)
	}
	for _, draw := range []float64{0.01, 0.5} {
		c.rand = func() float64 { return draw }
		b, err := resolve(&c, http.Header{hdrLatency: {"10ms"}})
		want := 10 * time.Millisecond
		if draw < c.TailP {
			want += 2 * time.Second
		}
		if err != nil || b.latency != want {
			t.Fatalf("draw %v: latency %v, want %v (%v)", draw, b.latency, want, err)
		}
	}
}
