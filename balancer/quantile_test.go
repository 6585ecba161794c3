package balancer

import (
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// TestQuantileBuckets: buckets are ordered, contiguous, and a sample lies
// below its bucket's upper bound, at most a quarter under it.
func TestQuantileBuckets(t *testing.T) {
	prev := time.Duration(0)
	for i := range quantileBuckets {
		up := bucketUpper(i)
		if up <= prev {
			t.Fatalf("bucket %d: upper %v after %v", i, up, prev)
		}
		prev = up
	}
	for _, d := range []time.Duration{0, time.Microsecond, 3 * time.Microsecond, 7 * time.Microsecond, time.Millisecond,
		37 * time.Millisecond, 999 * time.Millisecond, 3 * time.Second, time.Minute, 30 * time.Minute} {
		i := bucketOf(d)
		up := bucketUpper(i)
		if d >= up || (i > 0 && d < bucketUpper(i-1)) {
			t.Fatalf("%v in bucket %d [%v, %v)", d, i, bucketUpper(i-1), up)
		}
		if d > 10*time.Microsecond && float64(up) > 1.25*float64(d)+float64(time.Microsecond) {
			t.Fatalf("%v: bound %v too loose", d, up)
		}
	}
	if i := bucketOf(100 * time.Hour); i != quantileBuckets-1 {
		t.Fatalf("a huge sample in bucket %d", i)
	}
	if i := bucketOf(-time.Second); i != 0 {
		t.Fatalf("a negative sample in bucket %d", i)
	}
}

// TestQuantileTail: with 10% of samples ten times slower, the median is
// the fast one and the p95 the slow one (which a mean hides).
func TestQuantileTail(t *testing.T) {
	var q quantiles
	if _, ok := q.quantile(0.95); ok {
		t.Fatal("a quantile without samples")
	}
	for i := range 200 {
		d := 100 * time.Millisecond
		if i%10 == 0 {
			d = time.Second
		}
		q.observe(d)
	}
	p50, _ := q.quantile(0.5)
	p95, ok := q.quantile(0.95)
	if !ok || p50 < 100*time.Millisecond || p50 > 125*time.Millisecond || p95 < time.Second || p95 > 1250*time.Millisecond {
		t.Fatalf("p50 %v p95 %v", p50, p95)
	}
}

// TestQuantileDecays: after the deployment got faster, the estimate
// follows within a few hundred samples.
func TestQuantileDecays(t *testing.T) {
	var q quantiles
	for range 1000 {
		q.observe(time.Second)
	}
	for range 3 * quantileHalfLife {
		q.observe(10 * time.Millisecond)
	}
	if p95, _ := q.quantile(0.95); p95 > 20*time.Millisecond {
		t.Fatalf("p95 %v still remembers the slow past", p95)
	}
}

// TestTTFTQuantile: successes feed the estimate, failures and
// cancellations do not, abandoned waits do; streams and non-streamed
// answers apart; too few samples answer nothing.
func TestTTFTQuantile(t *testing.T) {
	b := New(Options{})
	d := &llm.Deployment{ID: "d"}
	if _, ok := b.TTFTQuantile("d", 0.95); ok {
		t.Fatal("a quantile for an unknown deployment")
	}
	for range MinQuantileSamples - 1 {
		b.Start(d)(Outcome{TTFT: 10 * time.Millisecond, Latency: time.Second})
	}
	b.Start(d)(Outcome{Err: llm.Errorf(llm.KindUpstream, "x"), Latency: time.Hour})
	b.Start(d)(Outcome{Err: llm.Errorf(llm.KindCanceled, "x"), Latency: time.Hour})
	b.Start(d)(Outcome{Latency: 3 * time.Second}) // non-streamed: its latency, apart
	if _, ok := b.TTFTQuantile("d", 0.95); ok {
		t.Fatal("a quantile from too few samples")
	}
	b.Start(d)(Outcome{TTFT: 10 * time.Millisecond, Latency: 2 * time.Second})
	p95, ok := b.TTFTQuantile("d", 0.95)
	if !ok || p95 < 10*time.Millisecond || p95 > 13*time.Millisecond {
		t.Fatalf("p95 %v %v", p95, ok)
	}
	for range 5 {
		b.Start(d)(Outcome{Err: llm.Errorf(llm.KindCanceled, "abandoned"), Abandoned: time.Second, Stream: true})
	}
	if p95, _ := b.TTFTQuantile("d", 0.95); p95 < time.Second {
		t.Fatalf("abandoned waits not counted: p95 %v", p95)
	}
	for range MinQuantileSamples - 2 {
		b.Start(d)(Outcome{Latency: 3 * time.Second})
	}
	b.Start(d)(Outcome{Err: llm.Errorf(llm.KindCanceled, "abandoned"), Abandoned: 4 * time.Second})
	if p50, ok := b.AnswerQuantile("d", 0.5); !ok || p50 < 3*time.Second || p50 > 4*time.Second {
		t.Fatalf("non-streamed p50 %v %v", p50, ok)
	}
	if st := b.Status("d"); st.Failures != 1 || st.InFlight != 0 {
		t.Fatalf("status %+v", st)
	}
}

func BenchmarkQuantileObserve(b *testing.B) {
	var q quantiles
	for i := range b.N {
		q.observe(time.Duration(i%1000) * time.Millisecond)
	}
}
