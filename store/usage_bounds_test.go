package store

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// TestUsageSumsCannotOverflow is the store side of issue 5, item 5: a row
// with completion_tokens = 2⁶³−1 made /admin/usage fail with "integer
// overflow" (SQLite) or "bigint out of range" (PostgreSQL). Rows are now
// bounded when stored, and sums saturate instead of failing even over rows
// that bypassed the bounds (stored by an older version).
func TestUsageSumsCannotOverflow(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		hostile := llm.Usage{PromptTokens: -1000000, CompletionTokens: math.MaxInt64, CacheReadTokens: math.MaxInt,
			CacheWriteTokens: -1, ReasoningTokens: math.MaxInt}
		const n = 300
		recs := make([]llm.Record, n)
		for i := range recs {
			recs[i] = llm.Record{ID: newID("req_"), Time: base.Add(time.Duration(i) * time.Second), KeyID: "k", Model: "m",
				Provider: "p", Status: llm.StatusOK, HTTPStatus: 200, Usage: hostile, CostMicros: math.MaxInt64}
		}
		if k, err := s.InsertUsage(ctx, recs); err != nil || k != n {
			t.Fatalf("insert: %d, %v", k, err)
		}
		// Each row is stored at the per-row maximum and marked clamped.
		rows, total, err := s.ListRequests(ctx, RequestQuery{From: base, To: base.Add(time.Hour), Page: Page{PageSize: 1}})
		if err != nil || total != n {
			t.Fatalf("list: %d, %v", total, err)
		}
		r := rows[0]
		if r.PromptTokens != 0 || r.CompletionTokens != llm.MaxTokensPerRequest || r.CachedTokens != 0 || r.CacheWriteTokens != 0 ||
			r.ReasoningTokens != llm.MaxTokensPerRequest || r.CostMicros != llm.MaxCostMicrosPerRecord || !r.Clamped {
			t.Fatalf("stored row: %+v", r)
		}
		// Their sums are exact.
		q := UsageQuery{From: base, To: base.Add(time.Hour), GroupBy: GroupByModel}
		got, err := s.QueryUsage(ctx, q)
		if err != nil || len(got) != 1 {
			t.Fatalf("query: %+v, %v", got, err)
		}
		if g := got[0]; g.Requests != n || g.CompletionTokens != n*llm.MaxTokensPerRequest || g.ReasoningTokens != n*llm.MaxTokensPerRequest ||
			g.CostMicros != n*llm.MaxCostMicrosPerRecord || g.Clamped != n || g.PromptTokens != 0 {
			t.Fatalf("sums: %+v", g)
		}

		// Rows beyond the bounds (as an older version stored them) make
		// the sums saturate, never fail.
		for i := range 3 {
			_, err := s.db.ExecContext(ctx, `INSERT INTO usage_records (request_id, ts, model, prompt_tokens, completion_tokens, cost_micros, status)
				VALUES ($1, $2, 'legacy', $3, $4, $5, 'ok')`, newID("req_"), s.tv(base.Add(time.Duration(i)*time.Minute)),
				int64(math.MinInt64), int64(math.MaxInt64), int64(math.MaxInt64))
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, by := range []string{GroupByModel, GroupByDay, GroupByHour, GroupByKey, GroupByProvider} {
			q.GroupBy = by
			got, err := s.QueryUsage(ctx, q)
			if err != nil {
				t.Fatalf("group_by=%s over legacy rows: %v", by, err)
			}
			var legacy *UsageRow
			for i := range got {
				if got[i].Group == "legacy" {
					legacy = &got[i]
				}
			}
			if by == GroupByModel && (legacy == nil || legacy.CompletionTokens != math.MaxInt64 || legacy.CostMicros != math.MaxInt64 ||
				legacy.PromptTokens != math.MinInt64) {
				t.Fatalf("legacy sums: %+v", legacy)
			}
		}
		if _, _, err := s.ListRequests(ctx, RequestQuery{From: base, To: base.Add(time.Hour)}); err != nil {
			t.Fatalf("list over legacy rows: %v", err)
		}
		if _, err := s.LatencySummary(ctx, UsageQuery{From: base, To: base.Add(time.Hour)}); err != nil {
			t.Fatalf("summary over legacy rows: %v", err)
		}
	})
}

// TestInsertUsageHostileText checks that text an upstream or client can
// influence (error type, ids, names) cannot fail a batch: PostgreSQL
// refuses NUL and invalid UTF-8, and one such row failed the whole batch,
// dropping every other tenant's records with it. Text is now made valid
// and bounded before insert.
func TestInsertUsageHostileText(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		good := llm.Record{ID: "good", Time: base, KeyID: "k", Model: "m", Status: llm.StatusOK, HTTPStatus: 200}
		bad := llm.Record{ID: "bad", Time: base, KeyID: "k", Model: "m\xff", Status: llm.StatusError, HTTPStatus: 502,
			ErrorType: "upstream\x00error" + strings.Repeat("x", 10000), ClientRequestID: "c\x00", Owner: "\xc0\x80"}
		if n, err := s.InsertUsage(ctx, []llm.Record{good, bad}); err != nil || n != 2 {
			t.Fatalf("insert: %d, %v", n, err)
		}
		rows, _, err := s.ListRequests(ctx, RequestQuery{From: base, To: base.Add(time.Hour), Status: llm.StatusError})
		if err != nil || len(rows) != 1 {
			t.Fatalf("list: %+v, %v", rows, err)
		}
		r := rows[0]
		if !strings.HasPrefix(r.ErrorType, "upstream\uFFFDerrorxxx") || len(r.ErrorType) > maxUsageText ||
			r.ClientRequestID != "c\uFFFD" || r.Model != "m\uFFFD" || r.Owner != "\uFFFD" {
			t.Fatalf("stored text: %.80q %q %q %q", r.ErrorType, r.ClientRequestID, r.Model, r.Owner)
		}
	})
}
