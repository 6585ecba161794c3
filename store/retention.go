package store

import (
	"context"
	"fmt"
	"time"
)

// pruneChunk bounds the rows one DELETE removes, so pruning a large backlog
// never holds SQLite's write lock (or a PostgreSQL transaction) for long.
const pruneChunk = 5000

// PruneUsage deletes usage records older than before, in chunks, and
// returns how many it deleted. It stops early, without error, when ctx ends.
func (s *Store) PruneUsage(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for ctx.Err() == nil {
		res, err := s.db.ExecContext(ctx,
			`DELETE FROM usage_records WHERE request_id IN (SELECT request_id FROM usage_records WHERE ts < $1 LIMIT $2)`,
			s.tv(before), pruneChunk)
		if err != nil {
			if ctx.Err() != nil {
				return total, nil
			}
			return total, fmt.Errorf("store: prune usage: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("store: prune usage: %w", err)
		}
		total += n
		if n < pruneChunk {
			break
		}
	}
	return total, nil
}
