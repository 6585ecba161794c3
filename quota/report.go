package quota

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// View is a subject's limits with their current consumption, as the admin
// API shows them.
type View struct {
	RPM         *WindowView `json:"rpm,omitempty"`
	TPM         *WindowView `json:"tpm,omitempty"`
	MaxParallel *GaugeView  `json:"max_parallel,omitempty"`
	Budget      *BudgetView `json:"budget,omitempty"`
}

// WindowView is a rate limit's bucket now.
type WindowView struct {
	Limit     int64 `json:"limit"`
	Remaining int64 `json:"remaining"`
	// Reset is how long until the bucket is full again ("6m0s").
	Reset        string  `json:"reset"`
	ResetSeconds float64 `json:"reset_seconds"`
}

// GaugeView is the concurrency limit now.
type GaugeView struct {
	Limit int64 `json:"limit"`
	InUse int64 `json:"in_use"`
}

// BudgetView is a budget in its current period.
type BudgetView struct {
	Period      llm.Period `json:"period"`
	PeriodStart time.Time  `json:"period_start"`
	// PeriodEnd is absent for a lifetime budget.
	PeriodEnd      *time.Time `json:"period_end,omitempty"`
	LimitUSD       *float64   `json:"limit_usd,omitempty"`
	SpentUSD       float64    `json:"spent_usd"`
	ReservedUSD    float64    `json:"reserved_usd"`
	LimitTokens    *int64     `json:"limit_tokens,omitempty"`
	SpentTokens    int64      `json:"spent_tokens"`
	ReservedTokens int64      `json:"reserved_tokens"`
	// FromUsageRecords is true when the store held no counters for the
	// budget yet (nothing was admitted against it since the store
	// started) and the spend shown was summed from the usage records.
	FromUsageRecords bool `json:"from_usage_records,omitempty"`
}

// Report reads s's counters without taking anything; nil when s has no
// limits.
func (l *Limiter) Report(ctx context.Context, s Subject) (*View, error) {
	if s.Limits.IsZero() {
		return nil, nil
	}
	var sts []State
	_, err := l.call(ctx, func(ctx context.Context) (Decision, error) {
		var err error
		sts, err = l.o.Store.Peek(ctx, []Subject{s})
		return Decision{}, err
	})
	if err != nil {
		return nil, err
	}
	if len(sts) != 1 {
		return nil, fmt.Errorf("%w: peek answered %d states for 1 subject", ErrUnavailable, len(sts))
	}
	st := sts[0]
	lim := &s.Limits
	v := &View{}
	window := func(limit int64, w Window) *WindowView {
		if limit <= 0 {
			return nil
		}
		return &WindowView{Limit: limit, Remaining: max(w.Remaining, 0), Reset: resetString(w.Reset), ResetSeconds: w.Reset.Seconds()}
	}
	v.RPM, v.TPM = window(lim.RPM, st.RPM), window(lim.TPM, st.TPM)
	if lim.MaxParallel > 0 {
		v.MaxParallel = &GaugeView{Limit: lim.MaxParallel, InUse: st.Parallel.InUse}
	}
	if b := lim.Budget; b.Active() {
		bs := st.Budget
		bv := &BudgetView{Period: b.BudgetPeriod(), SpentUSD: float64(bs.SpentMicros) / 1e6, ReservedUSD: float64(bs.ReservedMicros) / 1e6,
			SpentTokens: bs.SpentTokens, ReservedTokens: bs.ReservedTokens}
		start, end := llm.PeriodBounds(b.BudgetPeriod(), l.o.Now())
		if !bs.Start.IsZero() {
			start, end = bs.Start, bs.End
		}
		bv.PeriodStart = start
		if !end.IsZero() {
			bv.PeriodEnd = &end
		}
		if m := b.USDMicros(); m > 0 {
			f := float64(m) / 1e6
			bv.LimitUSD = &f
		}
		if b.Tokens > 0 {
			t := b.Tokens
			bv.LimitTokens = &t
		}
		if bs.Missing && l.o.Spend != nil {
			sctx, cancel := context.WithTimeout(ctx, l.o.SeedTimeout)
			micros, tokens, err := l.o.Spend.SpendSince(sctx, string(s.Scope), s.ID, start)
			cancel()
			if err != nil {
				return nil, err
			}
			bv.SpentUSD, bv.SpentTokens, bv.FromUsageRecords = float64(micros)/1e6, tokens, true
		}
		v.Budget = bv
	}
	return v, nil
}
