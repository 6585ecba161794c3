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

// CreateAdminKey migrates the database and creates an admin key with the
// given name and role, recorded as created by "cli", and returns it with
// its secret. Running replicas see it at their next reload (within the
// version poll). It is the break-glass path when no admin credential is at
// hand ("sluice create-admin-key").
func CreateAdminKey(ctx context.Context, cfg Config, log *slog.Logger, name, role string) (store.AdminKey, string, error) {
	cfg.SetDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := store.Open(ctx, store.Options{URL: cfg.DatabaseURL, DataDir: cfg.DataDir, EncryptionKey: cfg.EncryptionKey, Logger: log})
	if err != nil {
		return store.AdminKey{}, "", fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return store.AdminKey{}, "", fmt.Errorf("migrate: %w", err)
	}
	return st.CreateAdminKey(ctx, store.AdminKeyInput{Name: name, Role: role}, "cli")
}
