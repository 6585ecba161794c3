package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/sluice-ai/sluice/store"
)

// Migrate applies the database migrations of cfg's store and closes it:
// `sluice migrate`. It is idempotent.
func Migrate(ctx context.Context, cfg Config, log *slog.Logger) error {
	cfg.SetDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir, EncryptionKey: cfg.EncryptionKey, Logger: log})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
