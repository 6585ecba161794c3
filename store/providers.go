package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// DefaultOpenAIBaseURL is used for providers of type "openai" without base_url.
const DefaultOpenAIBaseURL = "https://api.openai.com/v1"

// TimeoutsInput holds a provider's timeouts as Go durations ("5s"); "" means
// the default (see llm.Timeouts). Each must be between 0 and 1h.
type TimeoutsInput struct {
	Connect   string `json:"connect"`
	FirstByte string `json:"first_byte"`
	Idle      string `json:"idle"`
}

// ProviderInput creates a provider, or replaces one (see AsPatch).
type ProviderInput struct {
	Name    string           `json:"name"`
	Type    llm.ProviderType `json:"type"`
	BaseURL string           `json:"base_url"`
	// APIKey is write-only. Nil or "" means none (on create) or keep the
	// stored one (on update).
	APIKey   *string           `json:"api_key"`
	Headers  map[string]string `json:"headers"`
	Timeouts TimeoutsInput     `json:"timeouts"`
}

// AsPatch turns a full replacement (PUT) into a patch that sets every field.
// The API key follows patch rules: nil, "" or a masked placeholder keep the
// stored key.
func (in ProviderInput) AsPatch() ProviderPatch {
	h := in.Headers
	if h == nil {
		h = map[string]string{}
	}
	t := in.Timeouts
	return ProviderPatch{
		Name: &in.Name, Type: &in.Type, BaseURL: &in.BaseURL, APIKey: in.APIKey, Headers: &h,
		Timeouts: &TimeoutsPatch{Connect: &t.Connect, FirstByte: &t.FirstByte, Idle: &t.Idle},
	}
}

// TimeoutsPatch changes the timeouts that are non-nil.
type TimeoutsPatch struct {
	Connect   *string `json:"connect"`
	FirstByte *string `json:"first_byte"`
	Idle      *string `json:"idle"`
}

// ProviderPatch changes the fields that are non-nil.
//
// APIKey: nil, "" or any value containing "****" (the masked placeholder a
// client may echo back) keeps the stored key; anything else replaces it.
// Headers replaces the whole header set; a header value containing "****"
// keeps that header's stored value (credential-like header values are shown
// masked).
type ProviderPatch struct {
	Name     *string            `json:"name"`
	Type     *llm.ProviderType  `json:"type"`
	BaseURL  *string            `json:"base_url"`
	APIKey   *string            `json:"api_key"`
	Headers  *map[string]string `json:"headers"`
	Timeouts *TimeoutsPatch     `json:"timeouts"`
}

// Provider is the admin view of a provider. It never holds the API key.
type Provider struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Type      llm.ProviderType  `json:"type"`
	BaseURL   string            `json:"base_url"`
	APIKeySet bool              `json:"api_key_set"`
	Headers   map[string]string `json:"headers"`
	Timeouts  TimeoutsInput     `json:"timeouts"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// providerRow is a provider as stored.
type providerRow struct {
	ID, Name, BaseURL string
	Type              llm.ProviderType
	APIKeyEnc         sql.NullString
	Headers           map[string]string
	Timeouts          llm.Timeouts
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

func (r *providerRow) view() Provider {
	h := make(map[string]string, len(r.Headers))
	for k, v := range r.Headers {
		if sensitiveHeader(k) {
			v = maskPlaceholder
		}
		h[k] = v
	}
	return Provider{
		ID: r.ID, Name: r.Name, Type: r.Type, BaseURL: r.BaseURL,
		APIKeySet: r.APIKeyEnc.Valid && r.APIKeyEnc.String != "",
		Headers:   h,
		Timeouts: TimeoutsInput{
			Connect:   formatTimeout(r.Timeouts.Connect),
			FirstByte: formatTimeout(r.Timeouts.FirstByte),
			Idle:      formatTimeout(r.Timeouts.Idle),
		},
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

// validateProvider checks in (name, type, base_url, headers, timeouts) and
// fills r with the normalised values.
func validateProvider(in ProviderInput, r *providerRow) error {
	if !providerNameRE.MatchString(in.Name) {
		return invalid("name", "must match ^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$")
	}
	switch in.Type {
	case llm.ProviderOpenAI:
		if in.BaseURL == "" {
			in.BaseURL = DefaultOpenAIBaseURL
		}
	case llm.ProviderOpenAICompatible:
		if in.BaseURL == "" {
			return invalid("base_url", "is required for type %q", in.Type)
		}
	default:
		return invalid("type", "must be %q or %q", llm.ProviderOpenAI, llm.ProviderOpenAICompatible)
	}
	base, err := validateBaseURL(in.BaseURL)
	if err != nil {
		return err
	}
	if len(in.Headers) > maxHeaders {
		return invalid("headers", "at most %d headers", maxHeaders)
	}
	headers := make(map[string]string, len(in.Headers))
	for k, v := range in.Headers {
		if !validHeaderName(k) {
			return invalid("headers", "invalid header name")
		}
		if !validHeaderValue(v) || len(v) > maxHeaderValue {
			return invalid("headers."+k, "value must not contain CR, LF, NUL or control characters and must be at most 8 KiB")
		}
		headers[http.CanonicalHeaderKey(k)] = v
	}
	var t llm.Timeouts
	if t.Connect, err = parseTimeout("timeouts.connect", in.Timeouts.Connect); err != nil {
		return err
	}
	if t.FirstByte, err = parseTimeout("timeouts.first_byte", in.Timeouts.FirstByte); err != nil {
		return err
	}
	if t.Idle, err = parseTimeout("timeouts.idle", in.Timeouts.Idle); err != nil {
		return err
	}
	r.Name, r.Type, r.BaseURL, r.Headers, r.Timeouts = in.Name, in.Type, base, headers, t
	return nil
}

// keepsKey reports whether an api_key value means "keep the stored key".
func keepsKey(k *string) bool {
	return k == nil || *k == "" || strings.Contains(*k, maskPlaceholder)
}

func validateAPIKey(k string) error {
	if len(k) > maxAPIKeyLen || !validHeaderValue(k) {
		return invalid("api_key", "must be at most 8 KiB without control characters")
	}
	return nil
}

const providerCols = `id, name, type, base_url, api_key_enc, headers, connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms, created_at, updated_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanProvider(sc rowScanner) (*providerRow, error) {
	var r providerRow
	var headers string
	var c, f, i int64
	var created, updated dbTime
	if err := sc.Scan(&r.ID, &r.Name, &r.Type, &r.BaseURL, &r.APIKeyEnc, &headers, &c, &f, &i, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(headers), &r.Headers); err != nil {
		return nil, fmt.Errorf("store: provider %s: bad headers: %w", r.ID, err)
	}
	r.Timeouts = llm.Timeouts{Connect: time.Duration(c) * time.Millisecond, FirstByte: time.Duration(f) * time.Millisecond, Idle: time.Duration(i) * time.Millisecond}
	r.CreatedAt, r.UpdatedAt = created.T, updated.T
	return &r, nil
}

func (s *Store) writeProviderArgs(r *providerRow) []any {
	h, _ := json.Marshal(r.Headers)
	return []any{r.ID, r.Name, string(r.Type), r.BaseURL, r.APIKeyEnc, string(h),
		r.Timeouts.Connect.Milliseconds(), r.Timeouts.FirstByte.Milliseconds(), r.Timeouts.Idle.Milliseconds(),
		s.tv(r.CreatedAt), s.tv(r.UpdatedAt)}
}

// queryer is *sql.DB or *sql.Tx.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func getProvider(ctx context.Context, q queryer, idOrName string) (*providerRow, error) {
	r, err := scanProvider(q.QueryRowContext(ctx, `SELECT `+providerCols+` FROM providers
		WHERE id = $1 OR name = $1 ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1`, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("provider %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get provider: %w", err)
	}
	return r, nil
}

func nameTaken(ctx context.Context, tx *sql.Tx, table, name, exceptID string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE name = $1 AND id <> $2`, name, exceptID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: check name: %w", err)
	}
	return n > 0, nil
}

// CreateProvider validates and stores a new provider.
func (s *Store) CreateProvider(ctx context.Context, in ProviderInput) (Provider, error) {
	r := providerRow{ID: newID("prov_")}
	if err := validateProvider(in, &r); err != nil {
		return Provider{}, err
	}
	if in.APIKey != nil && *in.APIKey != "" {
		if strings.Contains(*in.APIKey, maskPlaceholder) {
			return Provider{}, invalid("api_key", "looks like a masked placeholder; send the real key")
		}
		if err := validateAPIKey(*in.APIKey); err != nil {
			return Provider{}, err
		}
		enc, err := s.seal(*in.APIKey, r.ID)
		if err != nil {
			return Provider{}, err
		}
		r.APIKeyEnc = sql.NullString{String: enc, Valid: true}
	}
	r.CreatedAt = now()
	r.UpdatedAt = r.CreatedAt
	err := s.configTx(ctx, func(tx *sql.Tx) error {
		if taken, err := nameTaken(ctx, tx, "providers", r.Name, r.ID); err != nil {
			return err
		} else if taken {
			return conflict("a provider named %q already exists", r.Name)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO providers (`+providerCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`,
			s.writeProviderArgs(&r)...)
		if isUniqueViolation(err) {
			return conflict("a provider named %q already exists", r.Name)
		}
		if err != nil {
			return fmt.Errorf("store: insert provider: %w", err)
		}
		return nil
	})
	if err != nil {
		return Provider{}, err
	}
	return r.view(), nil
}

// GetProvider returns the provider with the given id or name.
func (s *Store) GetProvider(ctx context.Context, idOrName string) (Provider, error) {
	r, err := getProvider(ctx, s.rdb, idOrName)
	if err != nil {
		return Provider{}, err
	}
	return r.view(), nil
}

// ListProviders returns one page of providers ordered by creation, and the total count.
func (s *Store) ListProviders(ctx context.Context, p Page) ([]Provider, int, error) {
	p = p.Normalize()
	total, err := s.count(ctx, "providers")
	if err != nil {
		return nil, 0, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+providerCols+` FROM providers ORDER BY created_at, id LIMIT $1 OFFSET $2`,
		p.PageSize, p.offset())
	if err != nil {
		return nil, 0, fmt.Errorf("store: list providers: %w", err)
	}
	defer rows.Close()
	out := []Provider{}
	for rows.Next() {
		r, err := scanProvider(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("store: list providers: %w", err)
		}
		out = append(out, r.view())
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: list providers: %w", err)
	}
	return out, total, nil
}

// UpdateProvider applies patch to the provider with the given id or name.
// Renaming a provider also renames it in every model deployment.
func (s *Store) UpdateProvider(ctx context.Context, idOrName string, patch ProviderPatch) (Provider, error) {
	var out Provider
	err := s.configTx(ctx, func(tx *sql.Tx) error {
		r, err := getProvider(ctx, tx, idOrName)
		if err != nil {
			return err
		}
		oldName := r.Name
		in := ProviderInput{Name: r.Name, Type: r.Type, BaseURL: r.BaseURL, Headers: r.Headers, Timeouts: r.view().Timeouts}
		if patch.Name != nil {
			in.Name = *patch.Name
		}
		if patch.Type != nil {
			in.Type = *patch.Type
		}
		if patch.BaseURL != nil {
			in.BaseURL = *patch.BaseURL
		}
		if patch.Headers != nil {
			h := make(map[string]string, len(*patch.Headers))
			for k, v := range *patch.Headers {
				if strings.Contains(v, maskPlaceholder) {
					if old, ok := r.Headers[http.CanonicalHeaderKey(k)]; ok {
						v = old
					}
				}
				h[k] = v
			}
			in.Headers = h
		}
		if t := patch.Timeouts; t != nil {
			if t.Connect != nil {
				in.Timeouts.Connect = *t.Connect
			}
			if t.FirstByte != nil {
				in.Timeouts.FirstByte = *t.FirstByte
			}
			if t.Idle != nil {
				in.Timeouts.Idle = *t.Idle
			}
		}
		if err := validateProvider(in, r); err != nil {
			return err
		}
		if !keepsKey(patch.APIKey) {
			if err := validateAPIKey(*patch.APIKey); err != nil {
				return err
			}
			enc, err := s.seal(*patch.APIKey, r.ID)
			if err != nil {
				return err
			}
			r.APIKeyEnc = sql.NullString{String: enc, Valid: true}
		}
		if r.Name != oldName {
			if taken, err := nameTaken(ctx, tx, "providers", r.Name, r.ID); err != nil {
				return err
			} else if taken {
				return conflict("a provider named %q already exists", r.Name)
			}
		}
		r.UpdatedAt = now()
		args := s.writeProviderArgs(r)
		_, err = tx.ExecContext(ctx, `UPDATE providers SET name=$2, type=$3, base_url=$4, api_key_enc=$5, headers=$6,
			connect_timeout_ms=$7, first_byte_timeout_ms=$8, idle_timeout_ms=$9, updated_at=$10 WHERE id=$1`,
			args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8], args[10])
		if isUniqueViolation(err) {
			return conflict("a provider named %q already exists", r.Name)
		}
		if err != nil {
			return fmt.Errorf("store: update provider: %w", err)
		}
		if r.Name != oldName {
			if err := s.renameProviderInModels(ctx, tx, oldName, r.Name); err != nil {
				return err
			}
		}
		out = r.view()
		return nil
	})
	return out, err
}

// DeleteProvider deletes the provider with the given id or name. It refuses
// with ErrConflict while a model deployment references the provider.
func (s *Store) DeleteProvider(ctx context.Context, idOrName string) error {
	return s.configTx(ctx, func(tx *sql.Tx) error {
		r, err := getProvider(ctx, tx, idOrName)
		if err != nil {
			return err
		}
		models, err := loadModelRows(ctx, tx)
		if err != nil {
			return err
		}
		var users []string
		for _, m := range models {
			for _, d := range m.Deployments {
				if d.Provider == r.Name {
					users = append(users, m.Name)
					break
				}
			}
		}
		if len(users) > 0 {
			sort.Strings(users)
			return conflict("provider %q is used by models: %s", r.Name, strings.Join(users, ", "))
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM providers WHERE id = $1`, r.ID); err != nil {
			return fmt.Errorf("store: delete provider: %w", err)
		}
		return nil
	})
}
