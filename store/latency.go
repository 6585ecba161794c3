package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// LatencySummary holds latency percentiles over a set of usage records.
// Percentiles use linear interpolation between the closest ranks, the
// definition of PostgreSQL's percentile_cont: for n sorted values v[0..n-1]
// and fraction p, h = p·(n−1) and the result is
// v[⌊h⌋] + (v[⌈h⌉] − v[⌊h⌋])·(h − ⌊h⌋). Both dialects compute exactly this.
// A percentile is nil when no record qualifies.
type LatencySummary struct {
	// Requests counts the matching records.
	Requests     int64    `json:"requests"`
	LatencyP50MS *float64 `json:"latency_p50_ms"`
	LatencyP95MS *float64 `json:"latency_p95_ms"`
	LatencyP99MS *float64 `json:"latency_p99_ms"`
	// TTFTRequests counts the streamed records with a time to first token
	// (ttft_ms > 0); the TTFT percentiles are over those.
	TTFTRequests int64    `json:"ttft_requests"`
	TTFTP50MS    *float64 `json:"ttft_p50_ms"`
	TTFTP95MS    *float64 `json:"ttft_p95_ms"`
}

// The percentile fractions LatencySummary reports.
var (
	latencyFractions = [3]float64{0.5, 0.95, 0.99}
	ttftFractions    = [2]float64{0.5, 0.95}
)

// LatencySummary returns latency percentiles over the usage records in
// q's time range matching q.KeyID, q.Model and q.Owner (q.GroupBy is ignored):
// end-to-end latency over all matching records, time to first token over
// the streamed ones that have one.
func (s *Store) LatencySummary(ctx context.Context, q UsageQuery) (LatencySummary, error) {
	_, _, f, err := s.timeFilter(q.From, q.To)
	if err != nil {
		return LatencySummary{}, err
	}
	f.eq("key_id", q.KeyID)
	f.eq("model", q.Model)
	f.eq("owner", q.Owner)
	var out LatencySummary
	err = s.readTx(ctx, func(tx *sql.Tx) error {
		if s.dialect == DialectPostgres {
			return s.latencyPostgres(ctx, tx, f, &out)
		}
		return s.latencySQLite(ctx, tx, f, &out)
	})
	if err != nil {
		return LatencySummary{}, fmt.Errorf("store: latency summary: %w", err)
	}
	return out, nil
}

// ttftCond selects the records that have a time to first token.
func (s *Store) ttftCond() string {
	if s.dialect == DialectPostgres {
		return "stream AND ttft_ms > 0"
	}
	return "stream <> 0 AND ttft_ms > 0"
}

// latencyPostgres computes the summary in one query with percentile_cont.
func (s *Store) latencyPostgres(ctx context.Context, tx *sql.Tx, f *usageFilter, out *LatencySummary) error {
	where := f.sql()
	args := f.args
	frac := func(p float64) string {
		args = append(args, p)
		return "$" + strconv.Itoa(len(args)) + "::float8"
	}
	cols := []string{"COUNT(*)"}
	for _, p := range latencyFractions {
		cols = append(cols, "percentile_cont("+frac(p)+") WITHIN GROUP (ORDER BY latency_ms)")
	}
	filter := " FILTER (WHERE " + s.ttftCond() + ")"
	cols = append(cols, "COUNT(*)"+filter)
	for _, p := range ttftFractions {
		cols = append(cols, "percentile_cont("+frac(p)+") WITHIN GROUP (ORDER BY ttft_ms)"+filter)
	}
	var l50, l95, l99, t50, t95 sql.NullFloat64
	err := tx.QueryRowContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM usage_records WHERE `+where, args...).
		Scan(&out.Requests, &l50, &l95, &l99, &out.TTFTRequests, &t50, &t95)
	if err != nil {
		return err
	}
	out.LatencyP50MS, out.LatencyP95MS, out.LatencyP99MS = nullable(l50), nullable(l95), nullable(l99)
	out.TTFTP50MS, out.TTFTP95MS = nullable(t50), nullable(t95)
	return nil
}

func nullable(v sql.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	return &v.Float64
}

// latencySQLite counts the records, then for each column numbers the
// sorted values with ROW_NUMBER() and fetches only the ranks the
// percentiles need, so the sort stays inside SQLite and at most two values
// per percentile reach Go.
func (s *Store) latencySQLite(ctx context.Context, tx *sql.Tx, f *usageFilter, out *LatencySummary) error {
	where := f.sql()
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN `+s.ttftCond()+` THEN 1 ELSE 0 END), 0)
		FROM usage_records WHERE `+where, f.args...).Scan(&out.Requests, &out.TTFTRequests)
	if err != nil {
		return err
	}
	lat, err := sqlitePercentiles(ctx, tx, "latency_ms", where, f.args, out.Requests, latencyFractions[:])
	if err != nil {
		return err
	}
	out.LatencyP50MS, out.LatencyP95MS, out.LatencyP99MS = lat[0], lat[1], lat[2]
	ttft, err := sqlitePercentiles(ctx, tx, "ttft_ms", where+" AND "+s.ttftCond(), f.args, out.TTFTRequests, ttftFractions[:])
	if err != nil {
		return err
	}
	out.TTFTP50MS, out.TTFTP95MS = ttft[0], ttft[1]
	return nil
}

// sqlitePercentiles returns the interpolated percentiles fracs of col over
// the n records matching where (all nil when n is 0). col is a constant
// column name.
func sqlitePercentiles(ctx context.Context, tx *sql.Tx, col, where string, args []any, n int64, fracs []float64) ([]*float64, error) {
	res := make([]*float64, len(fracs))
	if n <= 0 {
		return res, nil
	}
	// The 0-based ranks each percentile reads.
	want := map[int64]bool{}
	for _, p := range fracs {
		lo, hi := ranks(p, n)
		want[lo], want[hi] = true, true
	}
	args = append([]any(nil), args...)
	var in []string
	for r := range want {
		args = append(args, r)
		in = append(in, "$"+strconv.Itoa(len(args)))
	}
	rows, err := tx.QueryContext(ctx, `SELECT i, v FROM (SELECT `+col+` AS v, ROW_NUMBER() OVER (ORDER BY `+col+`) - 1 AS i
		FROM usage_records WHERE `+where+`) WHERE i IN (`+strings.Join(in, ", ")+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	vals := make(map[int64]float64, len(want))
	for rows.Next() {
		var i int64
		var v float64
		if err := rows.Scan(&i, &v); err != nil {
			return nil, err
		}
		vals[i] = v
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for k, p := range fracs {
		lo, hi := ranks(p, n)
		a, okA := vals[lo]
		b, okB := vals[hi]
		if !okA || !okB {
			return nil, fmt.Errorf("rank %d or %d of %d missing", lo, hi, n)
		}
		v := lerp(a, b, p*float64(n-1)-float64(lo))
		res[k] = &v
	}
	return res, nil
}

// ranks returns the 0-based ranks ⌊p·(n−1)⌋ and ⌈p·(n−1)⌉.
func ranks(p float64, n int64) (lo, hi int64) {
	h := p * float64(n-1)
	return int64(math.Floor(h)), int64(math.Ceil(h))
}

// lerp is PostgreSQL's float8_lerp, a + (b − a)·t; the conversion keeps
// the compiler from fusing the multiply-add, so results match PostgreSQL
// bit for bit.
func lerp(a, b, t float64) float64 { return a + float64((b-a)*t) }
