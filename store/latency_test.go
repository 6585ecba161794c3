package store

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// refPercentile is the documented definition, computed on sorted values.
func refPercentile(sorted []float64, p float64) float64 {
	h := p * float64(len(sorted)-1)
	lo, hi := math.Floor(h), math.Ceil(h)
	a, b := sorted[int(lo)], sorted[int(hi)]
	return a + float64((b-a)*(h-lo))
}

func TestLatencySummary(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		// Latencies 1..100 ms for key k1 in shuffled order. Even ones are
		// streamed with TTFT = latency/2 (so TTFT 1..50); 3, 6, 9… of the
		// odd ones are streamed with no first token (ttft 0) and 5, 15, 25…
		// are not streamed but carry a ttft anyway: neither counts for TTFT.
		var recs []llm.Record
		for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(100) {
			v := i + 1
			r := llm.Record{ID: "lat-" + string(rune('A'+i/26)) + string(rune('a'+i%26)), Time: base.Add(time.Duration(i) * time.Second),
				KeyID: "k1", Model: "m", Latency: time.Duration(v) * time.Millisecond, HTTPStatus: 200, Status: llm.StatusOK}
			switch {
			case v%2 == 0:
				r.Stream, r.TTFT = true, time.Duration(v)*time.Millisecond/2
			case v%3 == 0:
				r.Stream = true
			case v%10 == 5:
				r.TTFT = time.Millisecond
			}
			recs = append(recs, r)
		}
		// Noise the filters must exclude: another key, another model, and
		// records outside the time range.
		recs = append(recs,
			llm.Record{ID: "other-key", Time: base, KeyID: "k2", Model: "m", Latency: 9 * time.Second, Stream: true, TTFT: 9 * time.Second},
			llm.Record{ID: "other-model", Time: base, KeyID: "k1", Model: "x", Latency: 7 * time.Second, Stream: true, TTFT: 7 * time.Second},
			llm.Record{ID: "before", Time: base.Add(-time.Second), KeyID: "k1", Model: "m", Latency: 5 * time.Second},
			llm.Record{ID: "at-to", Time: base.Add(time.Hour), KeyID: "k1", Model: "m", Latency: 5 * time.Second},
		)
		if _, err := s.InsertUsage(ctx, recs); err != nil {
			t.Fatal(err)
		}
		window := UsageQuery{From: base, To: base.Add(time.Hour), KeyID: "k1", Model: "m"}
		got, err := s.LatencySummary(ctx, window)
		if err != nil {
			t.Fatal(err)
		}
		var lat, ttft []float64
		for v := 1; v <= 100; v++ {
			lat = append(lat, float64(v))
			if v%2 == 0 {
				ttft = append(ttft, float64(v)/2)
			}
		}
		check := func(name string, got *float64, exact, human float64) {
			t.Helper()
			if got == nil {
				t.Fatalf("%s = nil, want %v", name, human)
			}
			// Bit-for-bit the reference definition on both dialects, and
			// the textbook value up to float rounding.
			if *got != exact || math.Abs(*got-human) > 1e-9 {
				t.Fatalf("%s = %v (%x), want %v (%x) ≈ %v", name, *got, math.Float64bits(*got), exact, math.Float64bits(exact), human)
			}
		}
		if got.Requests != 100 || got.TTFTRequests != 50 {
			t.Fatalf("counts = %+v", got)
		}
		check("latency p50", got.LatencyP50MS, refPercentile(lat, 0.5), 50.5)
		check("latency p95", got.LatencyP95MS, refPercentile(lat, 0.95), 95.05)
		check("latency p99", got.LatencyP99MS, refPercentile(lat, 0.99), 99.01)
		check("ttft p50", got.TTFTP50MS, refPercentile(ttft, 0.5), 25.5)
		check("ttft p95", got.TTFTP95MS, refPercentile(ttft, 0.95), 47.55)

		// Without the model filter the 7 s record joins: n = 101, so
		// p50 is the 51st value exactly and p99 interpolates towards 7000.
		got, err = s.LatencySummary(ctx, UsageQuery{From: base, To: base.Add(time.Hour), KeyID: "k1"})
		if err != nil {
			t.Fatal(err)
		}
		lat101 := append(slices.Clone(lat), 7000)
		ttft51 := append(slices.Clone(ttft), 7000)
		if got.Requests != 101 || got.TTFTRequests != 51 {
			t.Fatalf("counts = %+v", got)
		}
		check("k1 latency p50", got.LatencyP50MS, refPercentile(lat101, 0.5), 51)
		check("k1 latency p95", got.LatencyP95MS, refPercentile(lat101, 0.95), 96)
		check("k1 latency p99", got.LatencyP99MS, refPercentile(lat101, 0.99), 100)
		check("k1 ttft p50", got.TTFTP50MS, refPercentile(ttft51, 0.5), 26)
		check("k1 ttft p95", got.TTFTP95MS, refPercentile(ttft51, 0.95), 48.5)

		// Non-integer values: still the same bits as the reference.
		var odd []llm.Record
		var oddLat []float64
		for i := range 37 {
			d := time.Duration(1000+i*i*7919%104729) * time.Microsecond
			odd = append(odd, llm.Record{ID: "odd-" + time.Duration(i).String(), Time: base.Add(2 * time.Hour), KeyID: "k3",
				Latency: d, Stream: true, TTFT: d / 3})
			oddLat = append(oddLat, durMS(d))
		}
		if _, err := s.InsertUsage(ctx, odd); err != nil {
			t.Fatal(err)
		}
		slices.Sort(oddLat)
		got, err = s.LatencySummary(ctx, UsageQuery{From: base, To: base.Add(3 * time.Hour), KeyID: "k3"})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			got  *float64
			p    float64
		}{{"p50", got.LatencyP50MS, 0.5}, {"p95", got.LatencyP95MS, 0.95}, {"p99", got.LatencyP99MS, 0.99}} {
			want := refPercentile(oddLat, c.p)
			check("odd "+c.name, c.got, want, want)
		}

		// One record: every percentile is its value. TTFT is null when no
		// streamed record has one.
		got, err = s.LatencySummary(ctx, UsageQuery{From: base.Add(-time.Second), To: base, KeyID: "k1"})
		if err != nil {
			t.Fatal(err)
		}
		if got.Requests != 1 || got.TTFTRequests != 0 || got.TTFTP50MS != nil || got.TTFTP95MS != nil {
			t.Fatalf("one record: %+v", got)
		}
		check("one p50", got.LatencyP50MS, 5000, 5000)
		check("one p99", got.LatencyP99MS, 5000, 5000)

		// Nothing in range: zero counts and all nulls.
		got, err = s.LatencySummary(ctx, UsageQuery{From: base.Add(-48 * time.Hour), To: base.Add(-24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if got != (LatencySummary{}) {
			t.Fatalf("empty: %+v", got)
		}
		if _, err := s.LatencySummary(ctx, UsageQuery{From: base, To: base.Add(-time.Hour)}); err == nil {
			t.Fatal("from after to accepted")
		}
	})
}
