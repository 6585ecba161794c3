package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// AdminKeyInput creates or replaces an admin key.
type AdminKeyInput struct {
	Name string `json:"name"`
	// Role is "admin" (everything) or "viewer" (read-only).
	Role      string     `json:"role"`
	ExpiresAt *time.Time `json:"expires_at"`
	Disabled  bool       `json:"disabled"`
}

// AsPatch turns a full replacement (PUT) into a patch that sets every field.
func (in AdminKeyInput) AsPatch() AdminKeyPatch {
	d := in.Disabled
	return AdminKeyPatch{Name: &in.Name, Role: &in.Role, ExpiresAt: OptionalTime{Set: true, Time: in.ExpiresAt}, Disabled: &d}
}

// AdminKeyPatch changes the fields that are set. ExpiresAt: absent keeps,
// null clears, a time sets.
type AdminKeyPatch struct {
	Name      *string      `json:"name"`
	Role      *string      `json:"role"`
	ExpiresAt OptionalTime `json:"expires_at"`
	Disabled  *bool        `json:"disabled"`
}

// AdminKey is the admin view of an admin key: never the secret or its hash.
type AdminKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	Role      string     `json:"role"`
	ExpiresAt *time.Time `json:"expires_at"`
	Disabled  bool       `json:"disabled"`
	CreatedAt time.Time  `json:"created_at"`
	// CreatedBy names who created the key: an admin key id, "bootstrap",
	// or a token's subject.
	CreatedBy string     `json:"created_by"`
	RevokedAt *time.Time `json:"revoked_at"`
	// Revision is the configuration version that last changed the key.
	Revision int64 `json:"revision"`
}

func validateAdminKey(in AdminKeyInput) error {
	if err := validText("name", in.Name, maxNameLen, false); err != nil {
		return err
	}
	if !llm.ValidRole(in.Role) {
		return invalid("role", "must be %q or %q", llm.RoleAdmin, llm.RoleViewer)
	}
	if t := in.ExpiresAt; t != nil && (t.UTC().Year() < 1 || t.UTC().Year() > 9999) {
		return invalid("expires_at", "must be between the years 1 and 9999 (UTC)")
	}
	return nil
}

type adminKeyRow struct {
	AdminKey
	Hash string
}

const adminKeyCols = `id, name, prefix, hash, role, expires_at, disabled, created_at, created_by, revoked_at, revision`

func scanAdminKey(sc rowScanner) (*adminKeyRow, error) {
	var k adminKeyRow
	var exp, created, revoked dbTime
	if err := sc.Scan(&k.ID, &k.Name, &k.Prefix, &k.Hash, &k.Role, &exp, &k.Disabled, &created, &k.CreatedBy, &revoked, &k.Revision); err != nil {
		return nil, err
	}
	k.ExpiresAt, k.CreatedAt, k.RevokedAt = exp.ptr(), created.T, revoked.ptr()
	return &k, nil
}

func getAdminKey(ctx context.Context, q queryer, id string) (*adminKeyRow, error) {
	k, err := scanAdminKey(q.QueryRowContext(ctx, `SELECT `+adminKeyCols+` FROM admin_keys WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("admin key %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get admin key: %w", err)
	}
	return k, nil
}

// CreateAdminKey creates an admin key and returns its view and the secret
// ("sk-sluice-admin-…", see llm.ParseKey). Only the secret's SHA-256 is
// stored; the secret cannot be shown again. createdBy is recorded as is.
func (s *Store) CreateAdminKey(ctx context.Context, in AdminKeyInput, createdBy string) (AdminKey, string, error) {
	if err := validateAdminKey(in); err != nil {
		return AdminKey{}, "", err
	}
	secret, err := newSecret(llm.AdminKeyPrefix)
	if err != nil {
		return AdminKey{}, "", err
	}
	k := AdminKey{ID: newID("adk_"), Name: in.Name, Prefix: secret[:llm.AdminKeyDisplayLen], Role: in.Role,
		ExpiresAt: utcPtr(in.ExpiresAt), Disabled: in.Disabled, CreatedAt: now(), CreatedBy: createdBy}
	err = s.configTx(ctx, func(tx *sql.Tx, rev int64) error {
		k.Revision = rev
		_, err := tx.ExecContext(ctx, `INSERT INTO admin_keys (`+adminKeyCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`,
			k.ID, k.Name, k.Prefix, llm.HashKey(secret), k.Role, s.tvp(k.ExpiresAt), k.Disabled, s.tv(k.CreatedAt), k.CreatedBy, nil, k.Revision)
		if err != nil {
			return fmt.Errorf("store: insert admin key: %w", err)
		}
		return nil
	})
	if err != nil {
		return AdminKey{}, "", err
	}
	return k, secret, nil
}

// GetAdminKey returns the admin key with the given id, revoked or not.
func (s *Store) GetAdminKey(ctx context.Context, id string) (AdminKey, error) {
	k, err := getAdminKey(ctx, s.rdb, id)
	if err != nil {
		return AdminKey{}, err
	}
	return k.AdminKey, nil
}

// ListAdminKeys returns one page of admin keys (revoked included) ordered
// by creation, and the total count.
func (s *Store) ListAdminKeys(ctx context.Context, p Page) ([]AdminKey, int, error) {
	return listPage(ctx, s, p, "admin_keys", adminKeyCols, "created_at, id", "admin keys", scanAdminKey, func(r *adminKeyRow) AdminKey { return r.AdminKey })
}

// UpdateAdminKey applies patch to the admin key with the given id. A
// revoked key cannot be changed (ErrConflict).
func (s *Store) UpdateAdminKey(ctx context.Context, id string, patch AdminKeyPatch) (AdminKey, error) {
	var out AdminKey
	err := s.configTx(ctx, func(tx *sql.Tx, rev int64) error {
		k, err := getAdminKey(ctx, tx, id)
		if err != nil {
			return err
		}
		if k.RevokedAt != nil {
			return conflict("admin key %s is revoked", k.ID)
		}
		in := AdminKeyInput{Name: k.Name, Role: k.Role, ExpiresAt: k.ExpiresAt, Disabled: k.Disabled}
		if patch.Name != nil {
			in.Name = *patch.Name
		}
		if patch.Role != nil {
			in.Role = *patch.Role
		}
		if patch.ExpiresAt.Set {
			in.ExpiresAt = utcPtr(patch.ExpiresAt.Time)
		}
		if patch.Disabled != nil {
			in.Disabled = *patch.Disabled
		}
		if err := validateAdminKey(in); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE admin_keys SET name=$2, role=$3, expires_at=$4, disabled=$5, revision=$6 WHERE id=$1`,
			k.ID, in.Name, in.Role, s.tvp(in.ExpiresAt), in.Disabled, rev); err != nil {
			return fmt.Errorf("store: update admin key: %w", err)
		}
		k.Name, k.Role, k.ExpiresAt, k.Disabled, k.Revision = in.Name, in.Role, in.ExpiresAt, in.Disabled, rev
		out = k.AdminKey
		return nil
	})
	return out, err
}

// RevokeAdminKey marks the admin key revoked and disabled; it disappears
// from the snapshot but GetAdminKey still shows it. Revoking twice keeps
// the first time.
func (s *Store) RevokeAdminKey(ctx context.Context, id string) (AdminKey, error) {
	var out AdminKey
	err := s.configTx(ctx, func(tx *sql.Tx, rev int64) error {
		k, err := getAdminKey(ctx, tx, id)
		if err != nil {
			return err
		}
		if k.RevokedAt == nil {
			t := now()
			k.RevokedAt = &t
		}
		k.Disabled, k.Revision = true, rev
		if _, err := tx.ExecContext(ctx, `UPDATE admin_keys SET disabled=$2, revoked_at=$3, revision=$4 WHERE id=$1`,
			k.ID, true, s.tv(*k.RevokedAt), rev); err != nil {
			return fmt.Errorf("store: revoke admin key: %w", err)
		}
		out = k.AdminKey
		return nil
	})
	return out, err
}

// loadAdminKeys adds the admin keys that are not revoked to snap.
func loadAdminKeys(ctx context.Context, tx *sql.Tx, snap *llm.Snapshot) error {
	rows, err := tx.QueryContext(ctx, `SELECT `+adminKeyCols+` FROM admin_keys WHERE revoked_at IS NULL`)
	if err != nil {
		return fmt.Errorf("store: snapshot admin keys: %w", err)
	}
	for rows.Next() {
		k, err := scanAdminKey(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("store: snapshot admin keys: %w", err)
		}
		snap.AdminKeys[k.Hash] = &llm.AdminKey{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Hash: k.Hash, Role: k.Role,
			ExpiresAt: k.ExpiresAt, Disabled: k.Disabled, Revision: k.Revision}
	}
	if err := closeRows(rows); err != nil {
		return fmt.Errorf("store: snapshot admin keys: %w", err)
	}
	return nil
}
