package llm

import (
	"fmt"
	"math"
	"time"
)

// FailMode says what a limit does when its shared store (Redis) cannot be
// reached: FailOpen admits (rate limits then hold per replica, at the limit
// divided by the number of replicas), FailClosed refuses with 503.
type FailMode string

// Fail modes. The zero value means the limit's default: open for rate
// limits, closed for budgets.
const (
	FailOpen   FailMode = "open"
	FailClosed FailMode = "closed"
)

// Period is a budget's accounting period, calendar-aligned in UTC.
type Period string

// Budget periods.
const (
	PeriodDay      Period = "day"      // from 00:00 UTC
	PeriodWeek     Period = "week"     // from Monday 00:00 UTC
	PeriodMonth    Period = "month"    // from the 1st, 00:00 UTC
	PeriodLifetime Period = "lifetime" // never resets
)

// Bounds of configurable limits: rate-limit arithmetic stays exact in
// integers (and in Lua's doubles) below them.
const (
	MaxRateLimit   = 100_000_000       // rpm, tpm
	MaxParallel    = 1_000_000         // max_parallel
	MaxBudgetUSD   = 1_000_000_000     // budget.usd
	MaxBudgetToken = 1_000_000_000_000 // budget.tokens
)

// Limits are the quotas of one subject: a key, an owner, a model (all its
// callers together) or a deployment (the provider account's limits). A zero
// field means no limit of that kind.
type Limits struct {
	// RPM is requests per minute: a token bucket that holds RPM requests
	// and refills at RPM per minute, so a burst of RPM requests passes at
	// once and then one every 60s/RPM.
	RPM int64 `json:"rpm,omitempty"`
	// TPM is tokens per minute, a bucket like RPM's. Each request reserves
	// its estimated prompt plus its max_tokens; the rest is given back
	// (or the excess taken) when it ends.
	TPM int64 `json:"tpm,omitempty"`
	// MaxParallel bounds the requests in flight at once.
	MaxParallel int64 `json:"max_parallel,omitempty"`
	// FailMode applies to RPM, TPM and MaxParallel; default open.
	FailMode FailMode `json:"fail_mode,omitempty"`
	// Budget bounds spend per period.
	Budget *Budget `json:"budget,omitempty"`
}

// Budget bounds what a subject may spend per period, in USD, in tokens
// (prompt plus completion) or both.
type Budget struct {
	// USD is the most the subject may spend per period, in US dollars;
	// 0 means no money limit. Costs are accounted in integer micro-USD
	// (see USDMicros).
	USD float64 `json:"usd,omitempty"`
	// Tokens is the most tokens the subject may use per period; 0 means
	// no token limit.
	Tokens int64 `json:"tokens,omitempty"`
	// Period is when the budget resets; default month.
	Period Period `json:"period,omitempty"`
	// FailMode applies to this budget; default closed.
	FailMode FailMode `json:"fail_mode,omitempty"`
}

// USDMicros is b.USD in micro-USD, 0 when no money limit is set.
func (b *Budget) USDMicros() int64 {
	if b == nil || !(b.USD > 0) {
		return 0
	}
	return int64(math.Round(min(b.USD, MaxBudgetUSD) * 1e6))
}

// IsZero reports whether l limits nothing.
func (l *Limits) IsZero() bool {
	return l == nil || (l.RPM == 0 && l.TPM == 0 && l.MaxParallel == 0 && !l.Budget.Active())
}

// Active reports whether b limits anything.
func (b *Budget) Active() bool { return b != nil && (b.USDMicros() > 0 || b.Tokens > 0) }

// RateFailMode is the fail mode of l's rate limits, defaulted.
func (l *Limits) RateFailMode() FailMode {
	if l != nil && l.FailMode == FailClosed {
		return FailClosed
	}
	return FailOpen
}

// BudgetFailMode is the fail mode of l's budget, defaulted.
func (l *Limits) BudgetFailMode() FailMode {
	if l != nil && l.Budget != nil && l.Budget.FailMode == FailOpen {
		return FailOpen
	}
	return FailClosed
}

// BudgetPeriod is the budget's period, defaulted to month.
func (b *Budget) BudgetPeriod() Period {
	if b == nil || b.Period == "" {
		return PeriodMonth
	}
	return b.Period
}

// Validate checks l's values; field prefixes the names in its message.
func (l *Limits) Validate(field string) error {
	if l == nil {
		return nil
	}
	if field != "" {
		field += "."
	}
	check := func(name string, v, hi int64) error {
		if v < 0 || v > hi {
			return fmt.Errorf("%s%s: must be between 0 and %d", field, name, hi)
		}
		return nil
	}
	if err := check("rpm", l.RPM, MaxRateLimit); err != nil {
		return err
	}
	if err := check("tpm", l.TPM, MaxRateLimit); err != nil {
		return err
	}
	if err := check("max_parallel", l.MaxParallel, MaxParallel); err != nil {
		return err
	}
	if err := validFailMode(field+"fail_mode", l.FailMode); err != nil {
		return err
	}
	if b := l.Budget; b != nil {
		if math.IsNaN(b.USD) || b.USD < 0 || b.USD > MaxBudgetUSD {
			return fmt.Errorf("%sbudget.usd: must be between 0 and %d", field, MaxBudgetUSD)
		}
		if err := check("budget.tokens", b.Tokens, MaxBudgetToken); err != nil {
			return err
		}
		switch b.Period {
		case "", PeriodDay, PeriodWeek, PeriodMonth, PeriodLifetime:
		default:
			return fmt.Errorf("%sbudget.period: must be day, week, month or lifetime", field)
		}
		if err := validFailMode(field+"budget.fail_mode", b.FailMode); err != nil {
			return err
		}
	}
	return nil
}

func validFailMode(field string, m FailMode) error {
	switch m {
	case "", FailOpen, FailClosed:
		return nil
	}
	return fmt.Errorf("%s: must be open or closed", field)
}

// PeriodBounds returns the start and end (exclusive) of the period that
// contains t, in UTC. A lifetime period starts at the Unix epoch and ends
// at the zero time (never).
func PeriodBounds(p Period, t time.Time) (start, end time.Time) {
	t = t.UTC()
	y, m, d := t.Date()
	switch p {
	case PeriodDay:
		start = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 1)
	case PeriodWeek:
		off := (int(t.Weekday()) + 6) % 7 // days since Monday
		start = time.Date(y, m, d-off, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 7)
	case PeriodLifetime:
		return time.Unix(0, 0).UTC(), time.Time{}
	default: // month
		start = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	}
}
