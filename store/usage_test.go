package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

func usageFixture(base time.Time) []llm.Record {
	rec := func(id string, off time.Duration, key, model, prov string, status int, st string, cost float64) llm.Record {
		return llm.Record{ID: id, Time: base.Add(off), KeyID: key, KeyPrefix: "sk-sluice-Ab", Endpoint: llm.EndpointChat,
			Model: model, Provider: prov, Deployment: prov + "/" + model,
			CostMicros: int64(cost*1e6 + 0.5), Latency: 150 * time.Millisecond, TTFT: 20 * time.Millisecond, HTTPStatus: status, Status: st, Stream: true, Usage: llm.Usage{PromptTokens: 10, CompletionTokens: 5, CacheReadTokens: 1}}
	}
	return []llm.Record{
		rec("r1", 5*time.Minute, "k1", "fast", "a", 200, llm.StatusOK, 0.5),
		rec("r2", 10*time.Minute, "k1", "fast", "b", 200, llm.StatusOK, 0.25),
		rec("r3", 70*time.Minute, "k2", "slow", "a", 502, llm.StatusError, 0),
		rec("r4", 25*time.Hour, "k2", "fast", "a", 200, llm.StatusClientCancelled, 0.125),
	}
}

func TestUsage(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		recs := usageFixture(base)
		if n, err := s.InsertUsage(ctx, recs); err != nil || n != 4 {
			t.Fatalf("inserted %d, %v", n, err)
		}
		// Retrying the batch, or part of it, adds nothing, and says so.
		if n, err := s.InsertUsage(ctx, recs); err != nil || n != 0 {
			t.Fatalf("replay inserted %d, %v", n, err)
		}
		if n, err := s.InsertUsage(ctx, append(recs[:1:1], recs[0])); err != nil || n != 0 {
			t.Fatalf("replay inserted %d, %v", n, err)
		}
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM usage_records`).Scan(&n); err != nil || n != 4 {
			t.Fatalf("rows = %d, %v", n, err)
		}
		q := UsageQuery{From: base, To: base.Add(48 * time.Hour)}
		type row struct {
			group      string
			req, errs  int64
			cost       float64
			promptToks int64
		}
		tests := []struct {
			groupBy string
			key     string
			model   string
			want    []row
		}{
			{GroupByHour, "", "", []row{
				{"2026-03-01T00:00:00Z", 2, 0, 0.75, 20},
				{"2026-03-01T01:00:00Z", 1, 1, 0, 10},
				{"2026-03-02T01:00:00Z", 1, 1, 0.125, 10},
			}},
			{GroupByDay, "", "", []row{
				{"2026-03-01T00:00:00Z", 3, 1, 0.75, 30},
				{"2026-03-02T00:00:00Z", 1, 1, 0.125, 10},
			}},
			{GroupByKey, "", "", []row{{"k1", 2, 0, 0.75, 20}, {"k2", 2, 2, 0.125, 20}}},
			{GroupByModel, "", "", []row{{"fast", 3, 1, 0.875, 30}, {"slow", 1, 1, 0, 10}}},
			{GroupByProvider, "", "", []row{{"a", 3, 2, 0.625, 30}, {"b", 1, 0, 0.25, 10}}},
			{GroupByModel, "k2", "", []row{{"fast", 1, 1, 0.125, 10}, {"slow", 1, 1, 0, 10}}},
			{GroupByKey, "", "fast", []row{{"k1", 2, 0, 0.75, 20}, {"k2", 1, 1, 0.125, 10}}},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%s/%s", tt.groupBy, tt.key, tt.model), func(t *testing.T) {
				q := q
				q.GroupBy, q.KeyID, q.Model = tt.groupBy, tt.key, tt.model
				got, err := s.QueryUsage(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("got %+v", got)
				}
				for i, w := range tt.want {
					g := got[i]
					if g.Group != w.group || g.Requests != w.req || g.Errors != w.errs || g.Cost != w.cost || g.PromptTokens != w.promptToks ||
						g.CompletionTokens != g.Requests*5 || g.CachedTokens != g.Requests {
						t.Fatalf("row %d = %+v, want %+v", i, g, w)
					}
				}
			})
		}
		// From is inclusive, To exclusive.
		got, err := s.QueryUsage(ctx, UsageQuery{From: base.Add(5 * time.Minute), To: base.Add(70 * time.Minute), GroupBy: GroupByDay})
		if err != nil || len(got) != 1 || got[0].Requests != 2 {
			t.Fatalf("bounds: %+v %v", got, err)
		}
		_, err = s.QueryUsage(ctx, UsageQuery{GroupBy: "week"})
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "group_by" {
			t.Fatalf("bad group_by: %v", err)
		}
		if got, err := s.QueryUsage(ctx, UsageQuery{GroupBy: GroupByDay}); err != nil || len(got) != 0 {
			t.Fatalf("default window: %+v %v", got, err)
		}
	})
}

func TestInsertUsageLargeBatch(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		recs := benchRecords(0, 1200)
		start := time.Now()
		if n, err := s.InsertUsage(ctx, recs); err != nil || n != 1200 {
			t.Fatalf("inserted %d, %v", n, err)
		}
		t.Logf("1200 rows in %v", time.Since(start))
		// A replay overlapping new records counts only the new rows.
		if n, err := s.InsertUsage(ctx, append(recs, benchRecords(1200, 3)...)); err != nil || n != 3 {
			t.Fatalf("replay inserted %d, %v", n, err)
		}
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM usage_records`).Scan(&n); err != nil || n != 1203 {
			t.Fatalf("rows = %d, %v", n, err)
		}
	})
}

func benchRecords(start, n int) []llm.Record {
	recs := make([]llm.Record, n)
	now := time.Now()
	for i := range recs {
		recs[i] = llm.Record{ID: fmt.Sprintf("req-%d", start+i), Time: now, KeyID: "key_1", KeyPrefix: "sk-sluice-Ab",
			Endpoint: llm.EndpointChat, Model: "fast", Provider: "a", Deployment: "a/m",
			CostMicros: 1000, Latency: time.Second, HTTPStatus: 200, Status: llm.StatusOK, Usage: llm.Usage{PromptTokens: 100, CompletionTokens: 50}}
	}
	return recs
}

func BenchmarkInsertUsage(b *testing.B) {
	s := openTest(b, Options{DataDir: b.TempDir(), EncryptionKey: testEncKey})
	ctx := context.Background()
	const batch = 1000
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.InsertUsage(ctx, benchRecords(i*batch, batch)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
}
