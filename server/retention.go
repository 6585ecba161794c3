package server

import (
	"context"
	"time"
)

// pruneLoop deletes usage older than the retention period once a minute
// after start, then hourly. Every replica may run it: deletes are idempotent.
func (s *Server) pruneLoop(ctx context.Context) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.store.PruneUsage(ctx, time.Now().Add(-s.cfg.UsageRetention))
		if err != nil {
			s.log.Warn("usage retention: prune failed", "err", err)
		} else if n > 0 {
			s.log.Info("usage retention: pruned old usage records", "records", n, "retention", s.cfg.UsageRetention.String())
		}
		t.Reset(time.Hour)
	}
}
