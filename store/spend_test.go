package store

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// TestSpendSince sums spend per scope from usage records, including the
// record exactly at since and excluding the one a millisecond before.
func TestSpendSince(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		since := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		rec := func(id string, at time.Time, key, owner, model, dep string, prompt, completion int, cost int64) llm.Record {
			return llm.Record{ID: id, Time: at, KeyID: key, Owner: owner, Model: model, Deployment: dep, Status: llm.StatusOK,
				HTTPStatus: 200, CostMicros: cost, Usage: llm.Usage{PromptTokens: prompt, CompletionTokens: completion}}
		}
		recs := []llm.Record{
			rec("r1", since, "key_a", "team-a", "m1", "dep_1", 10, 5, 100),
			rec("r2", since.Add(time.Hour), "key_a", "team-a", "m1", "dep_2", 20, 0, 200),
			rec("r3", since.Add(48*time.Hour), "key_b", "team-a", "m2", "dep_3", 1, 1, 7),
			rec("r4", since.Add(-time.Millisecond), "key_a", "team-a", "m1", "dep_1", 1000, 1000, 100000),
			rec("r5", since.Add(time.Minute), "key_c", "", "m1", "", 3, 3, 30),
			rec("r6", since.Add(time.Minute), "key_c", "team-b", "m1", "dep_1", 0, 0, 0),
		}
		if n, err := s.InsertUsage(ctx, recs); err != nil || n != len(recs) {
			t.Fatalf("insert %d %v", n, err)
		}
		for _, c := range []struct {
			scope, id      string
			micros, tokens int64
		}{
			{SpendKey, "key_a", 300, 35},
			{SpendKey, "key_b", 7, 2},
			{SpendKey, "key_nope", 0, 0},
			{SpendOwner, "team-a", 307, 37},
			{SpendOwner, "team-b", 0, 0},
			{SpendOwner, "", 0, 0}, // no owner is not an owner
			{SpendModel, "m1", 330, 41},
			{SpendModel, "m2", 7, 2},
			{SpendDeployment, "dep_1", 100, 15},
			{SpendDeployment, "dep_2", 200, 20},
			{SpendDeployment, "", 0, 0},
			{SpendKey, strings.Repeat("k", 10000), 0, 0},
		} {
			micros, tokens, err := s.SpendSince(ctx, c.scope, c.id, since)
			if err != nil || micros != c.micros || tokens != c.tokens {
				t.Errorf("SpendSince(%s, %.20s) = %d, %d, %v; want %d, %d", c.scope, c.id, micros, tokens, err, c.micros, c.tokens)
			}
		}
		// The boundary: one millisecond earlier takes in r4.
		if micros, tokens, err := s.SpendSince(ctx, SpendKey, "key_a", since.Add(-time.Millisecond)); err != nil || micros != 100300 || tokens != 2035 {
			t.Errorf("from 1ms before: %d, %d, %v", micros, tokens, err)
		}
		if micros, _, err := s.SpendSince(ctx, SpendModel, "m2", since.Add(48*time.Hour+time.Millisecond)); err != nil || micros != 0 {
			t.Errorf("after the last record: %d, %v", micros, err)
		}
		for _, scope := range []string{"", "principal", "provider", "key_id", "owner; DROP TABLE usage_records"} {
			if _, _, err := s.SpendSince(ctx, scope, "x", since); !isField(err, "scope") {
				t.Errorf("scope %q: %v", scope, err)
			}
		}
	})
}

// TestSpendSinceSaturates stores rows whose sums pass the int64 maximum
// (written directly: the store's own inserts bound every row) and expects
// the sums to saturate instead of failing or wrapping.
func TestSpendSinceSaturates(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		now := time.Now()
		for _, id := range []string{"a", "b", "c"} {
			if _, err := s.db.ExecContext(ctx, `INSERT INTO usage_records (request_id, ts, key_id, owner, model, deployment,
				prompt_tokens, completion_tokens, cost_micros) VALUES ($1, $2, 'key_x', 'o', 'm', 'd', $3, $3, $3)`,
				id, s.tv(now), int64(math.MaxInt64-1)); err != nil {
				t.Fatal(err)
			}
		}
		for _, scope := range []string{SpendKey, SpendOwner, SpendModel, SpendDeployment} {
			id := map[string]string{SpendKey: "key_x", SpendOwner: "o", SpendModel: "m", SpendDeployment: "d"}[scope]
			micros, tokens, err := s.SpendSince(ctx, scope, id, now.Add(-time.Hour))
			if err != nil || micros != math.MaxInt64 || tokens != math.MaxInt64 {
				t.Errorf("%s: %d, %d, %v", scope, micros, tokens, err)
			}
		}
		// One row: prompt + completion alone passes the maximum.
		if _, err := s.db.ExecContext(ctx, `INSERT INTO usage_records (request_id, ts, key_id, prompt_tokens, completion_tokens, cost_micros)
			VALUES ('one', $1, 'key_y', $2, $2, 5)`, s.tv(now), int64(math.MaxInt64/2+10)); err != nil {
			t.Fatal(err)
		}
		if micros, tokens, err := s.SpendSince(ctx, SpendKey, "key_y", now.Add(-time.Hour)); err != nil || micros != 5 || tokens != math.MaxInt64 {
			t.Errorf("one row: %d, %d, %v", micros, tokens, err)
		}
	})
}

// TestSpendSinceUsesIndexes checks that every scope's sum is planned on an
// index led by its column, never a scan of usage_records: on SQLite through
// EXPLAIN QUERY PLAN, on PostgreSQL through EXPLAIN with sequential scans
// priced out (the test table is tiny, so the planner would otherwise scan).
func TestSpendSinceUsesIndexes(t *testing.T) {
	want := map[string]string{
		SpendKey:        "usage_records_key_ts",
		SpendOwner:      "usage_records_owner_ts",
		SpendModel:      "usage_records_model_ts",
		SpendDeployment: "usage_records_deployment_ts",
	}
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		conn, err := s.rdb.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if s.dialect == DialectPostgres {
			if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
				t.Fatal(err)
			}
			defer conn.ExecContext(ctx, `RESET enable_seqscan`) //nolint:errcheck // best effort
		}
		for scope, index := range want {
			col, _ := spendColumn(scope)
			q := s.spendQuery(col)
			prefix := "EXPLAIN "
			if s.dialect == DialectSQLite {
				prefix = "EXPLAIN QUERY PLAN "
			}
			rows, err := conn.QueryContext(ctx, prefix+q, "x", s.tv(time.Now()))
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			var plan strings.Builder
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for _, v := range vals {
					switch v := v.(type) {
					case string:
						plan.WriteString(v)
					case []byte:
						plan.Write(v)
					}
				}
				plan.WriteByte('\n')
			}
			if err := closeRows(rows); err != nil {
				t.Fatal(err)
			}
			p := plan.String()
			if !strings.Contains(p, index) || strings.Contains(p, "Seq Scan") || strings.Contains(p, "SCAN usage_records\n") {
				t.Errorf("%s: plan does not use %s:\n%s", scope, index, p)
			}
		}
	})
}

// BenchmarkSpendSince sums one owner's month out of 200,000 usage rows, 1%
// of them its own: the cost of rebuilding a budget's counters.
func BenchmarkSpendSince(b *testing.B) {
	s := openTest(b, Options{DataDir: b.TempDir(), EncryptionKey: testEncKey})
	ctx := context.Background()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const rows, batch = 200_000, 1000
	for i := 0; i < rows; i += batch {
		recs := benchRecords(i, batch)
		for j := range recs {
			n := i + j
			recs[j].Time = start.Add(time.Duration(n) * 10 * time.Second)
			recs[j].KeyID = "key_" + string(rune('a'+n%26))
			if n%100 == 0 {
				recs[j].Owner = "team-a"
			} else {
				recs[j].Owner = "team-" + string(rune('b'+n%20))
			}
		}
		if _, err := s.InsertUsage(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	for _, scope := range []string{SpendOwner, SpendKey} {
		id := map[string]string{SpendOwner: "team-a", SpendKey: "key_a"}[scope]
		b.Run(scope, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := s.SpendSince(ctx, scope, id, start); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
