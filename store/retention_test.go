package store

import (
	"context"
	"testing"
	"time"
)

func TestPruneUsage(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		old := benchRecords(0, pruneChunk+7) // more than one chunk
		for i := range old {
			old[i].Time = time.Now().Add(-48 * time.Hour)
		}
		if _, err := s.InsertUsage(ctx, old); err != nil {
			t.Fatal(err)
		}
		if _, err := s.InsertUsage(ctx, benchRecords(100000, 3)); err != nil {
			t.Fatal(err)
		}
		n, err := s.PruneUsage(ctx, time.Now().Add(-24*time.Hour))
		if err != nil || n != int64(len(old)) {
			t.Fatalf("pruned %d, %v; want %d", n, err, len(old))
		}
		var left int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM usage_records`).Scan(&left); err != nil || left != 3 {
			t.Fatalf("left %d, %v", left, err)
		}
	})
}
