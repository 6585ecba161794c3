package store

import (
	"context"
	"io/fs"
	"math"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/migrations"
)

// TestMigrationClampsStoredUsage checks that migration 00004 makes rows an
// older version stored with impossible usage (the hostile upstream of issue
// 5, item 5) bounded and marked clamped, and leaves sane rows alone.
func TestMigrationClampsStoredUsage(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		opts := Options{DataDir: t.TempDir(), EncryptionKey: testEncKey}
		if env.name == DialectPostgres {
			opts.URL = pgTestURL(t)
		}
		s, err := Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sub, err := fs.Sub(migrations.FS, s.dialect)
		if err != nil {
			t.Fatal(err)
		}
		gd := goose.DialectSQLite3
		if s.dialect == DialectPostgres {
			gd = goose.DialectPostgres
		}
		p, err := goose.NewProvider(gd, s.db, sub)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.UpTo(ctx, 2); err != nil {
			t.Fatal(err)
		}
		ins := func(id string, prompt, completion, cached, reasoning, cost int64) {
			t.Helper()
			_, err := s.db.ExecContext(ctx, `INSERT INTO usage_records (request_id, ts, model, prompt_tokens, completion_tokens,
				cached_tokens, reasoning_tokens, cost_micros, status) VALUES ($1, $2, 'm', $3, $4, $5, $6, $7, 'ok')`,
				id, s.tv(time.Now()), prompt, completion, cached, reasoning, cost)
			if err != nil {
				t.Fatal(err)
			}
		}
		ins("hostile", -1000000, math.MaxInt64, 99999999999, -3, math.MaxInt64)
		ins("parts", 10, 5, 20, 9, 100)
		ins("sane", 10, 5, 4, 2, 100)
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		rows, _, err := s.ListRequests(ctx, RequestQuery{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]RequestRow{}
		for _, r := range rows {
			got[r.RequestID] = r
		}
		if r := got["hostile"]; r.PromptTokens != 0 || r.CompletionTokens != llm.MaxTokensPerRequest || r.CachedTokens != 0 ||
			r.ReasoningTokens != 0 || r.CostMicros != llm.MaxCostMicrosPerRecord || !r.Clamped {
			t.Errorf("hostile row: %+v", r)
		}
		if r := got["parts"]; r.CachedTokens != 10 || r.ReasoningTokens != 5 || r.CostMicros != 100 || !r.Clamped {
			t.Errorf("parts row: %+v", r)
		}
		if r := got["sane"]; r.CachedTokens != 4 || r.ReasoningTokens != 2 || r.Clamped {
			t.Errorf("sane row: %+v", r)
		}
	})
}
