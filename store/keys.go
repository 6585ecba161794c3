package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// KeyPrefix starts every Sluice key secret (llm.KeyPrefix; see
// llm.ParseKey for the whole format).
const KeyPrefix = llm.KeyPrefix

// displayPrefixLen is how much of the secret is stored for display.
const displayPrefixLen = llm.KeyDisplayLen

// newSecret returns a fresh checksummed key of the given type prefix with
// 192 random bits (llm.FormatKey).
func newSecret(prefix string) (string, error) {
	var b [llm.KeyRandomBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return llm.FormatKey(prefix, b), nil
}

// OptionalTime is a JSON field that distinguishes "absent" (Set false) from
// null (Set true, Time nil) and a value.
type OptionalTime struct {
	Set  bool
	Time *time.Time
}

// UnmarshalJSON implements json.Unmarshaler.
func (o *OptionalTime) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Time = nil
		return nil
	}
	var t time.Time
	if err := json.Unmarshal(b, &t); err != nil {
		return err
	}
	o.Time = &t
	return nil
}

// MarshalJSON implements json.Marshaler.
func (o OptionalTime) MarshalJSON() ([]byte, error) {
	if o.Time == nil {
		return []byte("null"), nil
	}
	return json.Marshal(o.Time)
}

// KeyInput creates or replaces a Sluice key.
type KeyInput struct {
	Name string `json:"name"`
	// Models is the allow-list of public model names; empty allows all.
	Models    []string          `json:"models"`
	ExpiresAt *time.Time        `json:"expires_at"`
	Metadata  map[string]string `json:"metadata"`
	Disabled  bool              `json:"disabled"`
	// Owner is the team or user the key's usage is accounted to (optional;
	// recorded on every usage row, grouped by /admin/usage?group_by=owner).
	Owner string `json:"owner"`
	// Limits are the key's own quotas, at the top level of the object
	// (rpm, tpm, max_parallel, fail_mode, budget).
	llm.Limits
}

// AsPatch turns a full replacement (PUT) into a patch that sets every field.
func (in KeyInput) AsPatch() KeyPatch {
	m, md, d := in.Models, in.Metadata, in.Disabled
	if m == nil {
		m = []string{}
	}
	if md == nil {
		md = map[string]string{}
	}
	return KeyPatch{Name: &in.Name, Models: &m, ExpiresAt: OptionalTime{Set: true, Time: in.ExpiresAt}, Metadata: &md, Disabled: &d, Owner: &in.Owner,
		LimitsPatch: limitsPatch(in.Limits)}
}

// KeyPatch changes the fields that are set. ExpiresAt: absent keeps, null
// clears, a time sets. The limits (see LimitsPatch): absent keeps, null or
// 0 clears, a value sets; budget is replaced whole.
type KeyPatch struct {
	Name      *string            `json:"name"`
	Models    *[]string          `json:"models"`
	ExpiresAt OptionalTime       `json:"expires_at"`
	Metadata  *map[string]string `json:"metadata"`
	Disabled  *bool              `json:"disabled"`
	Owner     *string            `json:"owner"`
	LimitsPatch
}

// Key is the admin view of a Sluice key: never the secret or its hash.
type Key struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Prefix    string            `json:"prefix"`
	Models    []string          `json:"models"`
	ExpiresAt *time.Time        `json:"expires_at"`
	Metadata  map[string]string `json:"metadata"`
	Disabled  bool              `json:"disabled"`
	Owner     string            `json:"owner"`
	// Limits are shown at the top level; a limit that is not set is absent.
	llm.Limits
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	// Revision is the configuration version that last changed the key.
	Revision int64 `json:"revision"`
}

func validateKey(in KeyInput) error {
	if err := validText("name", in.Name, maxNameLen, false); err != nil {
		return err
	}
	if in.Owner != "" {
		if err := validText("owner", in.Owner, maxNameLen, false); err != nil {
			return err
		}
	}
	if err := validLimits("", &in.Limits); err != nil {
		return err
	}
	if len(in.Models) > maxKeyModels {
		return invalid("models", "at most %d models", maxKeyModels)
	}
	for i, m := range in.Models {
		if err := validText(fmt.Sprintf("models[%d]", i), m, maxNameLen, true); err != nil {
			return err
		}
	}
	if t := in.ExpiresAt; t != nil && (t.UTC().Year() < 1 || t.UTC().Year() > 9999) {
		// Past 9999 no JSON answer could carry the key any more.
		return invalid("expires_at", "must be between the years 1 and 9999 (UTC)")
	}
	if len(in.Metadata) > maxMetadata {
		return invalid("metadata", "at most %d entries", maxMetadata)
	}
	for k, v := range in.Metadata {
		if err := validText("metadata", k, maxNameLen, false); err != nil {
			return invalid("metadata", "keys must be 1-%d bytes without control characters", maxNameLen)
		}
		if len(v) > maxMetadataLen {
			return invalid("metadata."+k, "must be at most %d bytes", maxMetadataLen)
		}
	}
	return nil
}

// keyRow is a key as stored.
type keyRow struct {
	Key
	Hash string
}

const keyCols = `id, name, prefix, hash, models, expires_at, metadata, disabled, created_at, revoked_at, owner, revision, limits`

func scanKey(sc rowScanner) (*keyRow, error) {
	var k keyRow
	var models, md, limits string
	var exp, created, revoked dbTime
	if err := sc.Scan(&k.ID, &k.Name, &k.Prefix, &k.Hash, &models, &exp, &md, &k.Disabled, &created, &revoked, &k.Owner, &k.Revision, &limits); err != nil {
		return nil, err
	}
	var err error
	if k.Limits, err = parseLimits("key", k.ID, limits); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(models), &k.Models); err != nil {
		return nil, fmt.Errorf("store: key %s: bad models: %w", k.ID, err)
	}
	if err := json.Unmarshal([]byte(md), &k.Metadata); err != nil {
		return nil, fmt.Errorf("store: key %s: bad metadata: %w", k.ID, err)
	}
	if k.Models == nil {
		k.Models = []string{}
	}
	if k.Metadata == nil {
		k.Metadata = map[string]string{}
	}
	k.ExpiresAt, k.CreatedAt, k.RevokedAt = exp.ptr(), created.T, revoked.ptr()
	return &k, nil
}

func getKey(ctx context.Context, q queryer, id string) (*keyRow, error) {
	k, err := scanKey(q.QueryRowContext(ctx, `SELECT `+keyCols+` FROM api_keys WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("key %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get key: %w", err)
	}
	return k, nil
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Millisecond)
	return &u
}

// CreateKey creates a Sluice key and returns its view and the secret. The
// secret is not stored (only its SHA-256) and cannot be shown again.
func (s *Store) CreateKey(ctx context.Context, in KeyInput) (Key, string, error) {
	if err := validateKey(in); err != nil {
		return Key{}, "", err
	}
	secret, err := newSecret(KeyPrefix)
	if err != nil {
		return Key{}, "", err
	}
	k := Key{
		ID: newID("key_"), Name: in.Name, Prefix: secret[:displayPrefixLen],
		Models: in.Models, ExpiresAt: utcPtr(in.ExpiresAt), Metadata: in.Metadata,
		Disabled: in.Disabled, Owner: in.Owner, Limits: normLimits(in.Limits), CreatedAt: now(),
	}
	if k.Models == nil {
		k.Models = []string{}
	}
	if k.Metadata == nil {
		k.Metadata = map[string]string{}
	}
	err = s.configTx(ctx, func(tx *sql.Tx, rev int64) error {
		k.Revision = rev
		_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (`+keyCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`,
			k.ID, k.Name, k.Prefix, llm.HashKey(secret), jsonText(k.Models), s.tvp(k.ExpiresAt), jsonText(k.Metadata),
			k.Disabled, s.tv(k.CreatedAt), nil, k.Owner, k.Revision, limitsText(k.Limits))
		if err != nil {
			return fmt.Errorf("store: insert key: %w", err)
		}
		return nil
	})
	if err != nil {
		return Key{}, "", err
	}
	return k, secret, nil
}

// GetKey returns the key with the given id, revoked or not.
func (s *Store) GetKey(ctx context.Context, id string) (Key, error) {
	k, err := getKey(ctx, s.rdb, id)
	if err != nil {
		return Key{}, err
	}
	return k.Key, nil
}

// ListKeys returns one page of keys (revoked included) ordered by creation, and the total count.
func (s *Store) ListKeys(ctx context.Context, p Page) ([]Key, int, error) {
	return listPage(ctx, s, p, "api_keys", keyCols, "created_at, id", "keys", scanKey, func(r *keyRow) Key { return r.Key })
}

// UpdateKey applies patch to the key with the given id. A revoked key
// cannot be changed (ErrConflict).
func (s *Store) UpdateKey(ctx context.Context, id string, patch KeyPatch) (Key, error) {
	var out Key
	err := s.configTx(ctx, func(tx *sql.Tx, rev int64) error {
		k, err := getKey(ctx, tx, id)
		if err != nil {
			return err
		}
		if k.RevokedAt != nil {
			return conflict("key %s is revoked", k.ID)
		}
		in := KeyInput{Name: k.Name, Models: k.Models, ExpiresAt: k.ExpiresAt, Metadata: k.Metadata, Disabled: k.Disabled, Owner: k.Owner}
		in.Limits = patch.LimitsPatch.apply(k.Limits)
		if patch.Name != nil {
			in.Name = *patch.Name
		}
		if patch.Models != nil {
			in.Models = *patch.Models
		}
		if patch.ExpiresAt.Set {
			in.ExpiresAt = utcPtr(patch.ExpiresAt.Time)
		}
		if patch.Metadata != nil {
			in.Metadata = *patch.Metadata
		}
		if patch.Disabled != nil {
			in.Disabled = *patch.Disabled
		}
		if patch.Owner != nil {
			in.Owner = *patch.Owner
		}
		if err := validateKey(in); err != nil {
			return err
		}
		if in.Models == nil {
			in.Models = []string{}
		}
		if in.Metadata == nil {
			in.Metadata = map[string]string{}
		}
		_, err = tx.ExecContext(ctx, `UPDATE api_keys SET name=$2, models=$3, expires_at=$4, metadata=$5, disabled=$6, owner=$7, revision=$8, limits=$9 WHERE id=$1`,
			k.ID, in.Name, jsonText(in.Models), s.tvp(in.ExpiresAt), jsonText(in.Metadata), in.Disabled, in.Owner, rev, limitsText(in.Limits))
		if err != nil {
			return fmt.Errorf("store: update key: %w", err)
		}
		k.Name, k.Models, k.ExpiresAt, k.Metadata, k.Disabled, k.Owner, k.Revision = in.Name, in.Models, in.ExpiresAt, in.Metadata, in.Disabled, in.Owner, rev
		k.Limits = in.Limits
		out = k.Key
		return nil
	})
	return out, err
}

// RevokeKey marks the key revoked and disabled; it disappears from the
// snapshot but GetKey still shows it. Revoking twice keeps the first time.
func (s *Store) RevokeKey(ctx context.Context, id string) (Key, error) {
	var out Key
	err := s.configTx(ctx, func(tx *sql.Tx, rev int64) error {
		k, err := getKey(ctx, tx, id)
		if err != nil {
			return err
		}
		if k.RevokedAt == nil {
			t := now()
			k.RevokedAt = &t
		}
		k.Disabled, k.Revision = true, rev
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET disabled=$2, revoked_at=$3, revision=$4 WHERE id=$1`,
			k.ID, true, s.tv(*k.RevokedAt), rev); err != nil {
			return fmt.Errorf("store: revoke key: %w", err)
		}
		out = k.Key
		return nil
	})
	return out, err
}
