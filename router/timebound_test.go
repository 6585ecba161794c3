package router

import (
	"io"

	"github.com/sluice-ai/sluice/wire/sse"
	"testing"
	"time"
)

// timeBound returns a func to defer that fails a fuzz input of n bytes
// which took too long: a superlinear path shows up as a slow input. The
// bound is generous (1 s per MiB, at least 1 s) so only a blow-up trips it.
func timeBound(t *testing.T, n int) func() {
	start := time.Now()
	return func() {
		limit := time.Second * time.Duration(1+n>>20)
		if d := time.Since(start); d > limit {
			t.Fatalf("input of %d bytes took %v (limit %v)", n, d, limit)
		}
	}
}

// sseEvent is one event a test read back from a stream.
type sseEvent struct{ data, name string }

// readEvents returns the data events of r (comments skipped).
func readEvents(r io.Reader) ([]sseEvent, error) {
	er := sse.NewReader(r)
	var out []sseEvent
	for {
		d, n, c, err := er.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if !c {
			out = append(out, sseEvent{string(d), string(n)})
		}
	}
}
