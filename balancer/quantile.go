package balancer

import (
	"math/bits"
	"sync"
	"time"
)

// A deployment's time to first token has a long tail (a first token can
// take ten times its median), which an average hides. quantiles estimates
// its quantiles from a histogram of log-spaced buckets, four per doubling
// (each bucket spans at most 25%), from 1µs to beyond 15 minutes: 120
// counters, no allocation per sample, one short critical section per
// sample and per query. Old samples fade: once the counts add up to
// quantileHalfLife, every count is halved, so the estimate follows the
// last few hundred attempts (a deployment that got slower is seen as
// slower within about as many requests). A mean plus two standard
// deviations (an EWMA of both) would be cheaper still but assumes a
// symmetric distribution: on a tail-heavy one it lands far from the p95.
type quantiles struct {
	mu    sync.Mutex
	c     [quantileBuckets]float64
	total float64 // sum of c
	n     int64   // samples ever observed (not decayed)
}

const (
	// quantileBuckets covers up to 2^31µs (about 36 minutes); longer
	// samples count in the last bucket.
	quantileBuckets = 120
	// quantileHalfLife is the decayed count at which all counts halve.
	quantileHalfLife = 512
	// MinQuantileSamples is how many samples a deployment needs before
	// TTFTQuantile answers.
	MinQuantileSamples = 20
)

// bucketOf is the bucket of d: durations under 4µs each have their own,
// then four buckets per power of two.
func bucketOf(d time.Duration) int {
	v := uint64(max(d, 0) / time.Microsecond)
	if v < 4 {
		return int(v)
	}
	e := bits.Len64(v) - 1 // v in [2^e, 2^(e+1)), e >= 2
	m := int(v>>(e-2)) & 3
	return min(4*(e-1)+m, quantileBuckets-1)
}

// bucketUpper is the exclusive upper bound of bucket i.
func bucketUpper(i int) time.Duration {
	if i < 4 {
		return time.Duration(i+1) * time.Microsecond
	}
	e, m := i/4+1, i%4
	return time.Duration(uint64(5+m)<<(e-2)) * time.Microsecond
}

// observe counts one sample.
func (q *quantiles) observe(d time.Duration) {
	i := bucketOf(d)
	q.mu.Lock()
	q.c[i]++
	q.total++
	q.n++
	if q.total >= quantileHalfLife {
		q.total = 0
		for j := range q.c {
			q.c[j] /= 2
			q.total += q.c[j]
		}
	}
	q.mu.Unlock()
}

// quantile returns the upper bound of the bucket holding the p-quantile
// (so an overestimate by at most a quarter); ok is false with fewer than
// MinQuantileSamples samples observed.
func (q *quantiles) quantile(p float64) (time.Duration, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n < MinQuantileSamples || q.total <= 0 {
		return 0, false
	}
	p = min(max(p, 0), 1)
	want, sum := p*q.total, 0.0
	for i, c := range q.c {
		sum += c
		if sum >= want && c > 0 {
			return bucketUpper(i), true
		}
	}
	return bucketUpper(quantileBuckets - 1), true
}

// TTFTQuantile estimates the p-quantile (0.95 for the p95) of deployment
// id's time to first token on streams, over its recent successful
// attempts (and the waits of attempts abandoned before their first token,
// see Outcome.Abandoned). ok is false until the deployment has at least
// MinQuantileSamples samples.
func (b *Balancer) TTFTQuantile(id string, p float64) (d time.Duration, ok bool) {
	return b.firstByteQuantile(id, p, true)
}

// AnswerQuantile is TTFTQuantile for non-streamed answers, whose first
// byte comes with the last: the quantile of their latency.
func (b *Balancer) AnswerQuantile(id string, p float64) (d time.Duration, ok bool) {
	return b.firstByteQuantile(id, p, false)
}

func (b *Balancer) firstByteQuantile(id string, p float64, stream bool) (time.Duration, bool) {
	v, found := b.health.Load(id)
	if !found {
		return 0, false
	}
	return v.(*health).quantiles(stream).quantile(p)
}
