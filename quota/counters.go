package quota

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// The arithmetic both stores share. Redis runs the same rules in Lua
// (redis.lua), where every number is a double: every value below stays an
// integer under 2^53 so the two stores agree to the unit.
const (
	// unit is what one request or token is worth in a bucket ("scaled
	// units"); a bucket of limit L holds L×unit and refills L units per
	// microsecond, so it refills completely in unit microseconds (a minute).
	unit = 60_000_000
	// maxAmount caps every charge, spend and reservation (micro-USD or
	// tokens): above every configurable budget (llm.MaxBudgetUSD in micros
	// is 1e15), and three of them still add up below 2^53.
	maxAmount = 1 << 51
	// idleMicros is how long an idle subject without budget or
	// reservations is kept: after two minutes even a bucket in the deepest
	// debt (−capacity) is full again, the same as a missing one.
	idleMicros = 2 * unit
	// maxIDLen bounds a reservation id as stored; longer ids are hashed.
	maxIDLen = 128
)

// DefaultTTL is a reservation's lifetime when AdmitRequest.TTL is not set;
// MaxTTL caps it.
const (
	DefaultTTL = 15 * time.Minute
	MaxTTL     = 24 * time.Hour
)

// Limit codes, as the Lua script returns them.
const (
	codeNone = iota
	codeRPM
	codeTPM
	codeParallel
	codeUSD
	codeTokens
)

var limitOfCode = [...]Limit{"", LimitRPM, LimitTPM, LimitParallel, LimitBudgetUSD, LimitBudgetTokens}

// Period codes, as the Lua script takes them.
const (
	periodNone int64 = iota
	periodDay
	periodWeek
	periodMonth
	periodLifetime
)

// params are one subject's limits, bounded and in the stores' units.
type params struct {
	rpm, tpm, par int64
	usd, tok      int64 // micro-USD, tokens; 0: none
	code          int64 // period code; periodNone when no budget
	period        llm.Period

	// The period's bounds at bat (µs), once computed.
	start, end, bat int64
	bok             bool
}

// bounds are the start and end (µs; end -1: never) of p's period at now,
// computed once per now (llm.PeriodBounds is not free).
func (p *params) bounds(now int64) (start, end int64) {
	if !p.bok || p.bat != now {
		p.start, p.end = periodBounds(p.period, now)
		p.bat, p.bok = now, true
	}
	return p.start, p.end
}

func paramsOf(s *Subject) params {
	l := &s.Limits
	p := params{
		rpm: bound(l.RPM, llm.MaxRateLimit),
		tpm: bound(l.TPM, llm.MaxRateLimit),
		par: bound(l.MaxParallel, llm.MaxParallel),
	}
	if b := l.Budget; b.Active() {
		p.usd = bound(b.USDMicros(), llm.MaxBudgetUSD*1_000_000)
		p.tok = bound(b.Tokens, llm.MaxBudgetToken)
		p.period = b.BudgetPeriod()
		switch p.period {
		case llm.PeriodDay:
			p.code = periodDay
		case llm.PeriodWeek:
			p.code = periodWeek
		case llm.PeriodLifetime:
			p.code = periodLifetime
		default:
			p.code, p.period = periodMonth, llm.PeriodMonth
		}
		if p.usd == 0 && p.tok == 0 {
			p.code, p.period = periodNone, ""
		}
	}
	return p
}

// bound clamps v to [0, hi].
func bound(v, hi int64) int64 { return max(0, min(v, hi)) }

// charge is a Charge bounded.
type charge struct {
	req, tok, cost int64
	par            bool
}

func chargeOf(c *Charge) charge {
	return charge{req: bound(c.Requests, maxAmount), tok: bound(c.Tokens, maxAmount), cost: bound(c.CostMicros, maxAmount), par: c.Parallel}
}

// reservationID is id as the stores keep it: ids longer than maxIDLen are
// replaced by their hash, so a reservation's size is bounded.
func reservationID(id string) string {
	if len(id) <= maxIDLen {
		return id
	}
	h := sha256.Sum256([]byte(id))
	return "#" + hex.EncodeToString(h[:])
}

// ttlMicros is a reservation's TTL in microseconds, defaulted and capped.
func ttlMicros(d time.Duration) int64 {
	if d <= 0 {
		d = DefaultTTL
	}
	return min(d, MaxTTL).Microseconds()
}

// periodBounds are the start and end (µs since the epoch) of p's period at
// now; end is -1 for a lifetime budget.
func periodBounds(p llm.Period, now int64) (start, end int64) {
	s, e := llm.PeriodBounds(p, time.UnixMicro(now))
	if e.IsZero() {
		return s.UnixMicro(), -1
	}
	return s.UnixMicro(), e.UnixMicro()
}

// floorDiv is ⌊a/b⌋ for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// ceilDiv is ⌈a/b⌉ for a ≥ 0, b > 0.
func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// bucket is a token bucket's stored state: level in scaled units at last
// (µs); ok false when it was never used (full).
type bucket struct {
	level, last int64
	ok          bool
}

// at is the bucket's level at now for limit lim > 0: refilled lim units per
// elapsed microsecond, at most the capacity; never below −capacity.
func (b *bucket) at(now, lim int64) int64 {
	c := lim * unit
	if !b.ok {
		return c
	}
	l := max(-c, min(b.level, c))
	e := now - b.last
	if e <= 0 {
		return l
	}
	if e >= 2*unit {
		return c
	}
	return min(c, l+e*lim)
}

// take tries to take n (requests or tokens) from the bucket at now; it
// returns whether it did, and when it did not, the wait in µs until it
// could (0 when n exceeds the capacity: never).
func (b *bucket) take(now, lim, n int64) (ok bool, retry int64) {
	if n > lim {
		return false, 0
	}
	l, cost := b.at(now, lim), n*unit
	if l < cost {
		return false, ceilDiv(cost-l, lim)
	}
	*b = bucket{level: l - cost, last: now, ok: true}
	return true, 0
}

// add puts d (requests or tokens; negative takes) back into the bucket,
// the result clamped to [−capacity, capacity].
func (b *bucket) add(now, lim, d int64) {
	c := lim * unit
	d = max(-2*lim, min(d, 2*lim))
	l := max(-c, min(b.at(now, lim)+d*unit, c))
	*b = bucket{level: l, last: now, ok: true}
}

// window is the bucket's Window at now.
func (b *bucket) window(now, lim int64) (remaining, reset int64) {
	if lim <= 0 {
		return 0, 0
	}
	l := b.at(now, lim)
	return floorDiv(l, unit), ceilDiv(lim*unit-l, lim)
}

// rawState is one subject's counters as both stores report them.
type rawState struct {
	rpmRem, rpmReset, tpmRem, tpmReset int64
	inUse                              int64
	spentMicros, reservedMicros        int64
	spentTokens, reservedTokens        int64
	missing                            bool
}

const rawStateLen = 10

// state is r as a State of a subject with limits p at now.
func (r *rawState) state(p *params, now time.Time) State {
	s := State{
		RPM:      Window{Limit: p.rpm, Remaining: r.rpmRem, Reset: micros(r.rpmReset)},
		TPM:      Window{Limit: p.tpm, Remaining: r.tpmRem, Reset: micros(r.tpmReset)},
		Parallel: Gauge{Limit: p.par, InUse: r.inUse},
	}
	if p.code != periodNone {
		start, end := p.bounds(now.UnixMicro())
		s.Budget = BudgetState{
			Period: p.period, Start: time.UnixMicro(start).UTC(),
			LimitMicros: p.usd, SpentMicros: r.spentMicros, ReservedMicros: r.reservedMicros,
			LimitTokens: p.tok, SpentTokens: r.spentTokens, ReservedTokens: r.reservedTokens,
			Missing: r.missing,
		}
		if end >= 0 {
			s.Budget.End = time.UnixMicro(end).UTC()
		}
	}
	return s
}

// micros is n µs as a Duration, bounded so that garbage cannot overflow.
func micros(n int64) time.Duration {
	const most = int64(1<<62) / int64(time.Microsecond)
	return time.Duration(max(0, min(n, most))) * time.Microsecond
}

// needSeed fills d's NeedSeed and PeriodStarts from the indexes in need.
func (d *Decision) needSeed(ps []params, need []int) {
	d.NeedSeed = need
	d.PeriodStarts = make([]time.Time, len(need))
	for k, i := range need {
		start, _ := ps[i].bounds(d.Now.UnixMicro())
		d.PeriodStarts[k] = time.UnixMicro(start).UTC()
	}
}
