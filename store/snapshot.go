package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/sluice-ai/sluice/llm"
)

// LoadSnapshot reads the whole configuration in one read transaction and
// builds a fresh llm.Snapshot: providers by name (API keys and secrets
// decrypted), models by name, keys and admin keys by hash (without revoked
// keys) and the owners that have limits by name, each with its revision and
// limits, and the JWT issuers by name (HS256 secrets opened). It is the only
// method that returns provider credentials and issuer secrets.
func (s *Store) LoadSnapshot(ctx context.Context) (*llm.Snapshot, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.dialect == DialectPostgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.rdb.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("store: snapshot: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only

	snap := llm.EmptySnapshot()
	if err := tx.QueryRowContext(ctx, `SELECT version FROM config_version WHERE id = 1`).Scan(&snap.Version); err != nil {
		return nil, fmt.Errorf("store: snapshot version: %w", err)
	}

	rows, err := tx.QueryContext(ctx, `SELECT `+providerCols+` FROM providers`)
	if err != nil {
		return nil, fmt.Errorf("store: snapshot providers: %w", err)
	}
	for rows.Next() {
		r, err := scanProvider(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: snapshot providers: %w", err)
		}
		p := &llm.Provider{ID: r.ID, Name: r.Name, Type: r.Type, BaseURL: r.BaseURL,
			Options: r.Options, Timeouts: r.Timeouts, Probe: r.Probe, Revision: r.Revision, UpdatedAt: r.UpdatedAt}
		if r.APIKeyEnc.Valid && r.APIKeyEnc.String != "" {
			if p.APIKey, err = s.open(r.APIKeyEnc.String, r.ID); err != nil {
				rows.Close()
				return nil, fmt.Errorf("%w (provider %s)", err, r.Name)
			}
		}
		if p.Headers, err = s.openHeaders(r); err != nil {
			rows.Close()
			return nil, err
		}
		if p.Secrets, err = s.openSecrets(r); err != nil {
			rows.Close()
			return nil, err
		}
		snap.Providers[p.Name] = p
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: snapshot providers: %w", err)
	}

	models, err := loadModelRows(ctx, tx)
	if err != nil {
		return nil, err
	}
	for _, m := range models {
		snap.Models[m.Name] = &llm.Model{ID: m.ID, Name: m.Name, Deployments: m.Deployments, Limits: m.Limits,
			Strategy: m.Strategy, StrategyOptions: m.StrategyOptions, Routing: m.Routing, CreatedAt: m.CreatedAt, Revision: m.Revision}
	}

	rows, err = tx.QueryContext(ctx, `SELECT `+keyCols+` FROM api_keys WHERE revoked_at IS NULL`)
	if err != nil {
		return nil, fmt.Errorf("store: snapshot keys: %w", err)
	}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: snapshot keys: %w", err)
		}
		snap.Keys[k.Hash] = &llm.Key{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Hash: k.Hash,
			Models: k.Models, ExpiresAt: k.ExpiresAt, Disabled: k.Disabled, Metadata: k.Metadata, Owner: k.Owner, Limits: k.Limits, Revision: k.Revision}
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("store: snapshot keys: %w", err)
	}
	if err := s.loadIssuers(ctx, tx, snap); err != nil {
		return nil, err
	}
	if err := loadOwners(ctx, tx, snap); err != nil {
		return nil, err
	}
	if err := loadAdminKeys(ctx, tx, snap); err != nil {
		return nil, err
	}
	return snap, nil
}

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}
