package store

import (
	"bytes"
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
	APIKey  *string           `json:"api_key"`
	Headers map[string]string `json:"headers"`
	// Options are the family's settings (a JSON object), validated by the
	// family. They are not secret: admin views show them.
	Options json.RawMessage `json:"options"`
	// Secrets are the family's credentials beyond api_key, write-only like
	// it: a value sets or replaces that secret, null removes it, "" or a
	// value containing "****" keeps it; names not mentioned are kept.
	Secrets  map[string]*string `json:"secrets"`
	Timeouts TimeoutsInput      `json:"timeouts"`
	// Probe is the active health check; absent or {} is off.
	Probe *llm.Probe `json:"probe"`
}

// AsPatch turns a full replacement (PUT) into a patch that sets every field.
// The API key and secrets follow patch rules (they are write-only, so a
// client cannot send them back): nil, "" or a masked placeholder keep the
// stored values, and secrets not mentioned are kept.
func (in ProviderInput) AsPatch() ProviderPatch {
	h := in.Headers
	if h == nil {
		h = map[string]string{}
	}
	o := in.Options
	if o == nil {
		o = json.RawMessage(`{}`)
	}
	t := in.Timeouts
	return ProviderPatch{
		Name: &in.Name, Type: &in.Type, BaseURL: &in.BaseURL, APIKey: in.APIKey, Headers: &h, Options: &o, Secrets: in.Secrets,
		Timeouts: &TimeoutsPatch{Connect: &t.Connect, FirstByte: &t.FirstByte, Idle: &t.Idle},
		Probe:    Optional[*llm.Probe]{Set: true, Value: in.Probe},
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
// masked). Options replaces the whole options object. Secrets changes only
// the secrets it names: a value sets or replaces one, null removes it, "" or
// a value containing "****" keeps it.
type ProviderPatch struct {
	Name     *string            `json:"name"`
	Type     *llm.ProviderType  `json:"type"`
	BaseURL  *string            `json:"base_url"`
	APIKey   *string            `json:"api_key"`
	Headers  *map[string]string `json:"headers"`
	Options  *json.RawMessage   `json:"options"`
	Secrets  map[string]*string `json:"secrets"`
	Timeouts *TimeoutsPatch     `json:"timeouts"`
	// Probe replaces the whole probe object (null: off).
	Probe Optional[*llm.Probe] `json:"probe"`
}

// Provider is the admin view of a provider. It never holds the API key or
// a secret: only whether the key is set and the names of the secrets.
type Provider struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       llm.ProviderType  `json:"type"`
	BaseURL    string            `json:"base_url"`
	APIKeySet  bool              `json:"api_key_set"`
	Headers    map[string]string `json:"headers"`
	Options    json.RawMessage   `json:"options"`
	SecretsSet []string          `json:"secrets_set"`
	Timeouts   TimeoutsInput     `json:"timeouts"`
	// Probe is shown when set.
	Probe     *llm.Probe `json:"probe,omitempty"`
	Revision  int64      `json:"revision"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// providerRow is a provider as stored.
type providerRow struct {
	ID, Name, BaseURL string
	Type              llm.ProviderType
	APIKeyEnc         sql.NullString
	Headers           map[string]string
	Options           json.RawMessage
	SecretsEnc        map[string]string // name -> sealed value
	Timeouts          llm.Timeouts
	Probe             llm.Probe
	Revision          int64
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

func (r *providerRow) view() Provider {
	h := make(map[string]string, len(r.Headers))
	for k, v := range r.Headers {
		if llm.SensitiveHeader(k) {
			v = maskPlaceholder
		}
		h[k] = v
	}
	names := make([]string, 0, len(r.SecretsEnc))
	for k := range r.SecretsEnc {
		names = append(names, k)
	}
	sort.Strings(names)
	opts := r.Options
	if len(opts) == 0 {
		opts = json.RawMessage(`{}`)
	}
	return Provider{
		ID: r.ID, Name: r.Name, Type: r.Type, BaseURL: r.BaseURL,
		APIKeySet:  r.APIKeyEnc.Valid && r.APIKeyEnc.String != "",
		Headers:    h,
		Options:    opts,
		SecretsSet: names,
		Timeouts: TimeoutsInput{
			Connect:   formatTimeout(r.Timeouts.Connect),
			FirstByte: formatTimeout(r.Timeouts.FirstByte),
			Idle:      formatTimeout(r.Timeouts.Idle),
		},
		Probe:     probeView(r.Probe),
		Revision:  r.Revision,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

// providerCandidate is a provider write being validated: the stored row's
// new values, and the plaintext credentials it will have.
type providerCandidate struct {
	in      ProviderInput // name, type, base_url, headers, options, timeouts, probe
	apiKey  string
	secrets map[string]string
}

// validateProvider checks c and fills r with the normalised values: the
// storage-level checks (name, type syntax, options syntax and size,
// secrets, timeouts) here, then everything the family knows (base_url,
// headers, options, secrets) through Options.ValidateProvider.
func (s *Store) validateProvider(c providerCandidate, r *providerRow) error {
	in := c.in
	if !providerNameRE.MatchString(in.Name) {
		return invalid("name", "must match ^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$")
	}
	if !providerTypeRE.MatchString(string(in.Type)) {
		return invalid("type", "must be a provider type such as %q or %q", llm.ProviderOpenAI, llm.ProviderOpenAICompatible)
	}
	if len(in.Headers) > maxHeaders {
		return invalid("headers", "at most %d headers", maxHeaders)
	}
	opts, err := normaliseOptions(in.Options)
	if err != nil {
		return err
	}
	if len(c.secrets) > maxSecrets {
		return invalid("secrets", "at most %d secrets", maxSecrets)
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
	probe, err := validProbe(in.Probe)
	if err != nil {
		return err
	}
	p := &llm.Provider{ID: r.ID, Name: in.Name, Type: in.Type, BaseURL: in.BaseURL, APIKey: c.apiKey,
		Headers: in.Headers, Options: opts, Secrets: c.secrets, Timeouts: t}
	if p.Headers == nil {
		p.Headers = map[string]string{}
	}
	if s.validateHook != nil {
		if err := s.validateHook(p); err != nil {
			return familyError(err)
		}
		if p.Options, err = normaliseOptions(p.Options); err != nil {
			return err
		}
	}
	r.Name, r.Type, r.BaseURL, r.Options, r.Timeouts = p.Name, p.Type, p.BaseURL, p.Options, p.Timeouts
	// Credential-like header values are stored sealed (openHeaders).
	if r.Headers, err = s.sealHeaders(r.ID, p.Headers); err != nil {
		return err
	}
	r.Probe = probe
	return nil
}

// familyError turns an error of the validation hook into a ValidationError,
// keeping its field when it names one (FieldName() string).
func familyError(err error) error {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve
	}
	var f interface{ FieldName() string }
	if errors.As(err, &f) {
		msg := strings.TrimPrefix(err.Error(), f.FieldName()+": ")
		return &ValidationError{Field: f.FieldName(), Message: msg}
	}
	return &ValidationError{Message: err.Error()}
}

// normaliseOptions checks that raw is empty, null or one JSON object of at
// most maxOptionsLen bytes, and returns it compacted ("{}" when empty).
func normaliseOptions(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage(`{}`), nil
	}
	if len(raw) > maxOptionsLen {
		return nil, invalid("options", "must be at most %d bytes", maxOptionsLen)
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return nil, invalid("options", "must be a JSON object")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, invalid("options", "must be a JSON object")
	}
	return b.Bytes(), nil
}

// keepsKey reports whether an api_key or secret value means "keep the
// stored one".
func keepsKey(k *string) bool {
	return k == nil || *k == "" || strings.Contains(*k, maskPlaceholder)
}

func validateAPIKey(k string) error {
	if len(k) > maxAPIKeyLen || !validHeaderValue(k) {
		return invalid("api_key", "must be at most 8 KiB without control characters")
	}
	return nil
}

// secretAAD binds a sealed secret to its provider and its name, apart from
// the API key (bound to the provider id alone).
func secretAAD(providerID, name string) string { return providerID + "\x00secret\x00" + name }

// applySecrets applies the secrets of a write to r (sealing new values)
// and returns every secret's plaintext after the write (stored ones are
// decrypted so the family can validate the whole set). On create, a
// masked placeholder is refused: there is nothing to keep.
func (s *Store) applySecrets(r *providerRow, changes map[string]*string, create bool) (map[string]string, error) {
	if r.SecretsEnc == nil {
		r.SecretsEnc = map[string]string{}
	}
	names := make([]string, 0, len(changes))
	for name := range changes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := changes[name]
		field := "secrets." + name
		if !secretNameRE.MatchString(name) {
			return nil, invalid("secrets", "secret names must match %s", secretNameRE)
		}
		switch {
		case v == nil:
			delete(r.SecretsEnc, name)
		case create && strings.Contains(*v, maskPlaceholder):
			return nil, invalid(field, "looks like a masked placeholder; send the real value")
		case keepsKey(v):
		default:
			if len(*v) > maxAPIKeyLen || !validHeaderValue(*v) {
				return nil, invalid(field, "must be at most 8 KiB without control characters")
			}
			enc, err := s.seal(*v, secretAAD(r.ID, name))
			if err != nil {
				return nil, err
			}
			r.SecretsEnc[name] = enc
		}
	}
	if len(r.SecretsEnc) > maxSecrets {
		return nil, invalid("secrets", "at most %d secrets", maxSecrets)
	}
	return s.openSecrets(r)
}

// openSecrets decrypts r's secrets.
func (s *Store) openSecrets(r *providerRow) (map[string]string, error) {
	if len(r.SecretsEnc) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(r.SecretsEnc))
	for name, enc := range r.SecretsEnc {
		v, err := s.open(enc, secretAAD(r.ID, name))
		if err != nil {
			return nil, fmt.Errorf("%w (provider %s, secret %s)", err, r.Name, name)
		}
		out[name] = v
	}
	return out, nil
}

const providerCols = `id, name, type, base_url, api_key_enc, headers, connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms, created_at, updated_at, options, secrets_enc, revision, probe`

type rowScanner interface{ Scan(dest ...any) error }

func scanProvider(sc rowScanner) (*providerRow, error) {
	var r providerRow
	var headers, options, secrets, probe string
	var c, f, i int64
	var created, updated dbTime
	if err := sc.Scan(&r.ID, &r.Name, &r.Type, &r.BaseURL, &r.APIKeyEnc, &headers, &c, &f, &i, &created, &updated, &options, &secrets, &r.Revision, &probe); err != nil {
		return nil, err
	}
	if probe != "" && probe != "{}" {
		if err := json.Unmarshal([]byte(probe), &r.Probe); err != nil {
			return nil, fmt.Errorf("store: provider %s: bad probe: %w", r.ID, err)
		}
	}
	if err := json.Unmarshal([]byte(headers), &r.Headers); err != nil {
		return nil, fmt.Errorf("store: provider %s: bad headers: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(secrets), &r.SecretsEnc); err != nil {
		return nil, fmt.Errorf("store: provider %s: bad secrets: %w", r.ID, err)
	}
	r.Options = json.RawMessage(options)
	r.Timeouts = llm.Timeouts{Connect: time.Duration(c) * time.Millisecond, FirstByte: time.Duration(f) * time.Millisecond, Idle: time.Duration(i) * time.Millisecond}
	r.CreatedAt, r.UpdatedAt = created.T, updated.T
	return &r, nil
}

func (s *Store) writeProviderArgs(r *providerRow) []any {
	h, _ := json.Marshal(r.Headers)
	sec := r.SecretsEnc
	if sec == nil {
		sec = map[string]string{}
	}
	se, _ := json.Marshal(sec)
	opts := r.Options
	if len(opts) == 0 {
		opts = json.RawMessage(`{}`)
	}
	return []any{r.ID, r.Name, string(r.Type), r.BaseURL, r.APIKeyEnc, string(h),
		r.Timeouts.Connect.Milliseconds(), r.Timeouts.FirstByte.Milliseconds(), r.Timeouts.Idle.Milliseconds(),
		s.tv(r.CreatedAt), s.tv(r.UpdatedAt), string(opts), string(se), r.Revision, probeText(r.Probe)}
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
	c := providerCandidate{in: in}
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
		c.apiKey = *in.APIKey
	}
	var err error
	if c.secrets, err = s.applySecrets(&r, in.Secrets, true); err != nil {
		return Provider{}, err
	}
	if err := s.validateProvider(c, &r); err != nil {
		return Provider{}, err
	}
	r.CreatedAt = now()
	r.UpdatedAt = r.CreatedAt
	err = s.configTx(ctx, func(tx *sql.Tx, rev int64) error {
		r.Revision = rev
		if taken, err := nameTaken(ctx, tx, "providers", r.Name, r.ID); err != nil {
			return err
		} else if taken {
			return conflict("a provider named %q already exists", r.Name)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO providers (`+providerCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)`,
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
	return listPage(ctx, s, p, "providers", providerCols, "created_at, id", "providers", scanProvider, (*providerRow).view)
}

// UpdateProvider applies patch to the provider with the given id or name.
// Renaming a provider also renames it in every model deployment.
func (s *Store) UpdateProvider(ctx context.Context, idOrName string, patch ProviderPatch) (Provider, error) {
	var out Provider
	err := s.configTx(ctx, func(tx *sql.Tx, rev int64) error {
		r, err := getProvider(ctx, tx, idOrName)
		if err != nil {
			return err
		}
		oldName := r.Name
		headers, err := s.openHeaders(r)
		if err != nil {
			return err
		}
		in := ProviderInput{Name: r.Name, Type: r.Type, BaseURL: r.BaseURL, Headers: headers, Options: r.Options, Timeouts: r.view().Timeouts,
			Probe: probeView(r.Probe)}
		if patch.Probe.Set {
			in.Probe = patch.Probe.Value
		}
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
					if old, ok := headers[http.CanonicalHeaderKey(k)]; ok {
						v = old
					}
				}
				h[k] = v
			}
			in.Headers = h
		}
		if patch.Options != nil {
			in.Options = *patch.Options
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
		c := providerCandidate{in: in}
		if !keepsKey(patch.APIKey) {
			if err := validateAPIKey(*patch.APIKey); err != nil {
				return err
			}
			enc, err := s.seal(*patch.APIKey, r.ID)
			if err != nil {
				return err
			}
			r.APIKeyEnc = sql.NullString{String: enc, Valid: true}
			c.apiKey = *patch.APIKey
		} else if r.APIKeyEnc.Valid && r.APIKeyEnc.String != "" {
			if c.apiKey, err = s.open(r.APIKeyEnc.String, r.ID); err != nil {
				return fmt.Errorf("%w (provider %s)", err, r.Name)
			}
		}
		if c.secrets, err = s.applySecrets(r, patch.Secrets, false); err != nil {
			return err
		}
		if err := s.validateProvider(c, r); err != nil {
			return err
		}
		if r.Name != oldName {
			if taken, err := nameTaken(ctx, tx, "providers", r.Name, r.ID); err != nil {
				return err
			} else if taken {
				return conflict("a provider named %q already exists", r.Name)
			}
		}
		r.UpdatedAt, r.Revision = now(), rev
		a := s.writeProviderArgs(r)
		_, err = tx.ExecContext(ctx, `UPDATE providers SET name=$2, type=$3, base_url=$4, api_key_enc=$5, headers=$6,
			connect_timeout_ms=$7, first_byte_timeout_ms=$8, idle_timeout_ms=$9, updated_at=$10, options=$11, secrets_enc=$12, revision=$13, probe=$14 WHERE id=$1`,
			a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[10], a[11], a[12], a[13], a[14])
		if isUniqueViolation(err) {
			return conflict("a provider named %q already exists", r.Name)
		}
		if err != nil {
			return fmt.Errorf("store: update provider: %w", err)
		}
		if r.Name != oldName {
			if err := s.renameProviderInModels(ctx, tx, rev, oldName, r.Name); err != nil {
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
	return s.configTx(ctx, func(tx *sql.Tx, _ int64) error {
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
