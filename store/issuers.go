package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// Bounds on an issuer's lists.
const (
	maxAudiences     = 32
	maxAudienceLen   = 512
	maxIssuerURLLen  = 2048
	maxClaimNameLen  = 256
	minHS256Secret   = 32 // bytes: RFC 7518 §3.2, a key as long as the hash
	maxHS256Secret   = 4096
	defaultAlgorithm = "RS256"
)

// Leeway is a duration in an issuer's JSON: a Go duration string ("30s")
// or a number of seconds.
type Leeway time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (l *Leeway) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return invalid("leeway", "must be a duration such as \"30s\" or a number of seconds")
		}
		*l = Leeway(d)
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return invalid("leeway", "must be a duration such as \"30s\" or a number of seconds")
	}
	if n < 0 || n > llm.MaxJWTLeeway.Seconds() {
		return invalid("leeway", "must be between 0 and %s", llm.MaxJWTLeeway)
	}
	*l = Leeway(time.Duration(n * float64(time.Second)))
	return nil
}

// MarshalJSON implements json.Marshaler: a duration string.
func (l Leeway) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(l).String()) }

// IssuerInput creates an issuer (POST /admin/issuers) or replaces one
// (PUT, see AsPatch).
type IssuerInput struct {
	Name string `json:"name"`
	// Issuer is the exact "iss" of the tokens.
	Issuer string `json:"issuer"`
	// JWKSURI is where the keys are; "" means OIDC discovery.
	JWKSURI    string   `json:"jwks_uri"`
	Audiences  []string `json:"audiences"`
	Algorithms []string `json:"algorithms"`
	// Leeway is nil for the default (30s).
	Leeway            *Leeway          `json:"leeway"`
	AllowInsecureHTTP bool             `json:"allow_insecure_http"`
	Models            []string         `json:"models"`
	Claims            llm.ClaimMapping `json:"claims"`
	Limits            llm.Limits       `json:"limits"`
	// HS256Secret is write-only: a value sets it; nil, "" or a value
	// containing "****" keeps the stored one (on create: none).
	HS256Secret *string `json:"hs256_secret"`
	// Admin, when set, also accepts the issuer's tokens on the admin API
	// (llm.IssuerAdmin); nil: proxy tokens only.
	Admin *llm.IssuerAdmin `json:"admin"`
}

// AsPatch turns a full replacement (PUT) into a patch that sets every
// field but the write-only secret, which follows patch rules.
func (in IssuerInput) AsPatch() IssuerPatch {
	p := IssuerPatch{Name: &in.Name, Issuer: &in.Issuer, JWKSURI: &in.JWKSURI, Audiences: &in.Audiences,
		Algorithms: &in.Algorithms, Leeway: Optional[*Leeway]{Set: true, Value: in.Leeway},
		AllowInsecureHTTP: &in.AllowInsecureHTTP, Models: &in.Models, Claims: &in.Claims, Limits: &in.Limits,
		Admin: Optional[*llm.IssuerAdmin]{Set: true, Value: in.Admin}}
	if in.HS256Secret != nil {
		p.HS256Secret = Optional[*string]{Set: true, Value: in.HS256Secret}
	}
	return p
}

// IssuerPatch changes the fields that are set. HS256Secret: absent, "" or
// a value containing "****" keeps the stored secret, null removes it, a
// value replaces it.
type IssuerPatch struct {
	Name              *string           `json:"name"`
	Issuer            *string           `json:"issuer"`
	JWKSURI           *string           `json:"jwks_uri"`
	Audiences         *[]string         `json:"audiences"`
	Algorithms        *[]string         `json:"algorithms"`
	Leeway            Optional[*Leeway] `json:"leeway"`
	AllowInsecureHTTP *bool             `json:"allow_insecure_http"`
	Models            *[]string         `json:"models"`
	Claims            *llm.ClaimMapping `json:"claims"`
	Limits            *llm.Limits       `json:"limits"`
	HS256Secret       Optional[*string] `json:"hs256_secret"`
	// Admin: absent keeps, null clears, an object replaces.
	Admin Optional[*llm.IssuerAdmin] `json:"admin"`
}

// Issuer is the admin view of an issuer. The HS256 secret is never shown:
// only whether one is set.
type Issuer struct {
	ID                string           `json:"id"`
	Name              string           `json:"name"`
	Issuer            string           `json:"issuer"`
	JWKSURI           string           `json:"jwks_uri"`
	Audiences         []string         `json:"audiences"`
	Algorithms        []string         `json:"algorithms"`
	Leeway            Leeway           `json:"leeway"`
	AllowInsecureHTTP bool             `json:"allow_insecure_http"`
	Models            []string         `json:"models"`
	Claims            llm.ClaimMapping `json:"claims"`
	Limits            llm.Limits       `json:"limits"`
	HS256SecretSet    bool             `json:"hs256_secret_set"`
	// Admin is null for an issuer whose tokens only reach the proxy.
	Admin     *llm.IssuerAdmin `json:"admin"`
	Revision  int64            `json:"revision"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
}

// issuerRow is an issuer as stored: the view plus the sealed secret.
type issuerRow struct {
	Issuer
	secretEnc sql.NullString
}

const issuerCols = `id, name, issuer, jwks_uri, audiences, algorithms, leeway_ms, allow_insecure_http, models, claims, limits, secret_enc, created_at, updated_at, revision, admin`

func scanIssuer(sc rowScanner) (*issuerRow, error) {
	var r issuerRow
	var aud, algs, models, claims, limits, admin string
	var leeway int64
	var created, updated dbTime
	if err := sc.Scan(&r.ID, &r.Name, &r.Issuer.Issuer, &r.JWKSURI, &aud, &algs, &leeway, &r.AllowInsecureHTTP,
		&models, &claims, &limits, &r.secretEnc, &created, &updated, &r.Revision, &admin); err != nil {
		return nil, err
	}
	if admin != "" {
		if err := json.Unmarshal([]byte(admin), &r.Admin); err != nil {
			return nil, fmt.Errorf("store: issuer %s: admin: %w", r.ID, err)
		}
	}
	if err := errors.Join(json.Unmarshal([]byte(aud), &r.Audiences), json.Unmarshal([]byte(algs), &r.Algorithms),
		json.Unmarshal([]byte(models), &r.Models), json.Unmarshal([]byte(claims), &r.Claims)); err != nil {
		return nil, fmt.Errorf("store: issuer %s: %w", r.ID, err)
	}
	var err error
	if r.Limits, err = parseLimits("issuer", r.ID, limits); err != nil {
		return nil, err
	}
	r.Leeway = Leeway(time.Duration(leeway) * time.Millisecond)
	r.HS256SecretSet = r.secretEnc.Valid && r.secretEnc.String != ""
	r.CreatedAt, r.UpdatedAt = created.T, updated.T
	return &r, nil
}

func (s *Store) writeIssuerArgs(r *issuerRow) []any {
	return []any{r.ID, r.Name, r.Issuer.Issuer, r.JWKSURI, jsonText(r.Audiences), jsonText(r.Algorithms),
		time.Duration(r.Leeway).Milliseconds(), r.AllowInsecureHTTP, jsonText(r.Models), jsonText(r.Claims),
		limitsText(r.Limits), r.secretEnc, s.tv(r.CreatedAt), s.tv(r.UpdatedAt), r.Revision, issuerAdminText(r.Admin)}
}

// issuerAdminText is the admin column: "" for none, else the JSON object.
func issuerAdminText(a *llm.IssuerAdmin) string {
	if a == nil {
		return ""
	}
	return jsonText(a)
}

func getIssuer(ctx context.Context, q queryer, idOrName string) (*issuerRow, error) {
	if len(idOrName) > maxNameLen {
		return nil, fmt.Errorf("issuer %w", ErrNotFound)
	}
	r, err := scanIssuer(q.QueryRowContext(ctx, `SELECT `+issuerCols+` FROM issuers
		WHERE id = $1 OR name = $1 ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END LIMIT 1`, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("issuer %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get issuer: %w", err)
	}
	return r, nil
}

// apply changes r by p, sealing a new secret.
func (s *Store) applyIssuerPatch(r *issuerRow, p IssuerPatch) error {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&r.Name, p.Name)
	set(&r.Issuer.Issuer, p.Issuer)
	set(&r.JWKSURI, p.JWKSURI)
	if p.Audiences != nil {
		r.Audiences = *p.Audiences
	}
	if p.Algorithms != nil {
		r.Algorithms = *p.Algorithms
	}
	if p.Leeway.Set {
		r.Leeway = Leeway(llm.DefaultJWTLeeway)
		if p.Leeway.Value != nil {
			r.Leeway = *p.Leeway.Value
		}
	}
	if p.AllowInsecureHTTP != nil {
		r.AllowInsecureHTTP = *p.AllowInsecureHTTP
	}
	if p.Models != nil {
		r.Models = *p.Models
	}
	if p.Claims != nil {
		r.Claims = *p.Claims
	}
	if p.Limits != nil {
		r.Limits = normLimits(*p.Limits)
	}
	if p.Admin.Set {
		r.Admin = p.Admin.Value
	}
	if p.HS256Secret.Set {
		v := p.HS256Secret.Value
		switch {
		case v == nil:
			r.secretEnc = sql.NullString{}
		case *v == "" || strings.Contains(*v, maskPlaceholder):
			// keep
		default:
			if len(*v) < minHS256Secret || len(*v) > maxHS256Secret {
				return invalid("hs256_secret", "must be %d to %d bytes", minHS256Secret, maxHS256Secret)
			}
			enc, err := s.seal(*v, issuerSecretAAD(r.ID))
			if err != nil {
				return err
			}
			r.secretEnc = sql.NullString{String: enc, Valid: true}
		}
	}
	r.HS256SecretSet = r.secretEnc.Valid && r.secretEnc.String != ""
	if r.Audiences == nil {
		r.Audiences = []string{}
	}
	if r.Models == nil {
		r.Models = []string{}
	}
	if len(r.Algorithms) == 0 {
		r.Algorithms = []string{defaultAlgorithm}
	}
	return validIssuer(&r.Issuer)
}

// issuerSecretAAD binds a sealed HS256 secret to its issuer.
func issuerSecretAAD(id string) string { return "issuer:" + id + ":hs256" }

// validIssuer checks an issuer as the authenticator will trust it.
func validIssuer(r *Issuer) error {
	if !providerNameRE.MatchString(r.Name) {
		return invalid("name", "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if len(r.Issuer) > maxIssuerURLLen {
		return invalid("issuer", "must be at most %d bytes", maxIssuerURLLen)
	}
	if why := llm.CheckIssuerURL(r.Issuer, r.AllowInsecureHTTP); why != "" {
		return invalid("issuer", "%s", why)
	}
	if u, _ := url.Parse(r.Issuer); r.AllowInsecureHTTP && !llm.LoopbackHost(u.Hostname()) {
		return invalid("allow_insecure_http", "is only allowed for loopback issuers")
	}
	if r.JWKSURI != "" {
		if len(r.JWKSURI) > maxIssuerURLLen {
			return invalid("jwks_uri", "must be at most %d bytes", maxIssuerURLLen)
		}
		if why := llm.CheckIssuerURL(r.JWKSURI, r.AllowInsecureHTTP); why != "" {
			return invalid("jwks_uri", "%s", why)
		}
	}
	if len(r.Audiences) == 0 || len(r.Audiences) > maxAudiences {
		return invalid("audiences", "must list 1 to %d audiences (tokens must be meant for this gateway)", maxAudiences)
	}
	for _, a := range r.Audiences {
		if err := validText("audiences", a, maxAudienceLen, true); err != nil {
			return err
		}
	}
	hs := false
	for _, alg := range r.Algorithms {
		if !contains(llm.JWTAlgorithms, alg) {
			return invalid("algorithms", "%q is not one of %s", alg, strings.Join(llm.JWTAlgorithms, ", "))
		}
		hs = hs || alg == "HS256"
	}
	if hs != r.HS256SecretSet {
		if hs {
			return invalid("algorithms", "HS256 needs hs256_secret")
		}
		return invalid("hs256_secret", "is only used with HS256 in algorithms")
	}
	if r.Leeway < 0 || time.Duration(r.Leeway) > llm.MaxJWTLeeway {
		return invalid("leeway", "must be between 0 and %s", llm.MaxJWTLeeway)
	}
	if len(r.Models) > maxKeyModels {
		return invalid("models", "must list at most %d models", maxKeyModels)
	}
	for _, m := range r.Models {
		if err := validText("models", m, maxNameLen, false); err != nil {
			return err
		}
	}
	for field, c := range map[string]string{"claims.subject": r.Claims.Subject, "claims.team": r.Claims.Team, "claims.models": r.Claims.Models} {
		if c != "" {
			if err := validText(field, c, maxClaimNameLen, true); err != nil {
				return err
			}
		}
	}
	if err := validIssuerAdmin(r); err != nil {
		return err
	}
	return validLimits("limits", &r.Limits)
}

// validIssuerAdmin checks an issuer's admin settings: admin audiences apart
// from the proxy audiences (a gateway token must never open the admin
// API), a role claim, and at least one value granting a role.
func validIssuerAdmin(r *Issuer) error {
	a := r.Admin
	if a == nil {
		return nil
	}
	if len(a.Audiences) == 0 || len(a.Audiences) > maxAudiences {
		return invalid("admin.audiences", "must list 1 to %d audiences, apart from the proxy audiences", maxAudiences)
	}
	for _, aud := range a.Audiences {
		if err := validText("admin.audiences", aud, maxAudienceLen, true); err != nil {
			return err
		}
		if contains(r.Audiences, aud) {
			return invalid("admin.audiences", "%q is also a proxy audience: admin tokens need audiences of their own", aud)
		}
	}
	if err := validText("admin.role_claim", a.RoleClaim, maxClaimNameLen, true); err != nil {
		return err
	}
	if len(a.Admin)+len(a.Viewer) == 0 || len(a.Admin)+len(a.Viewer) > maxAudiences {
		return invalid("admin", "must list 1 to %d role claim values in admin and viewer", maxAudiences)
	}
	for field, vs := range map[string][]string{"admin.admin": a.Admin, "admin.viewer": a.Viewer} {
		for _, v := range vs {
			if err := validText(field, v, maxClaimNameLen, true); err != nil {
				return err
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// CreateIssuer validates and stores a new issuer.
func (s *Store) CreateIssuer(ctx context.Context, in IssuerInput) (Issuer, error) {
	r := &issuerRow{Issuer: Issuer{ID: newID("iss_"), Leeway: Leeway(llm.DefaultJWTLeeway)}}
	p := in.AsPatch()
	if in.HS256Secret != nil && strings.Contains(*in.HS256Secret, maskPlaceholder) {
		return Issuer{}, invalid("hs256_secret", "looks like a masked placeholder; send the real secret")
	}
	if err := s.applyIssuerPatch(r, p); err != nil {
		return Issuer{}, err
	}
	r.CreatedAt = now()
	r.UpdatedAt = r.CreatedAt
	err := s.configTx(ctx, func(tx *sql.Tx, rev int64) error {
		r.Revision = rev
		if err := issuerUnique(ctx, tx, &r.Issuer); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO issuers (`+issuerCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)`,
			s.writeIssuerArgs(r)...)
		if isUniqueViolation(err) {
			return conflict("an issuer with this name or issuer URL already exists")
		}
		if err != nil {
			return fmt.Errorf("store: insert issuer: %w", err)
		}
		return nil
	})
	if err != nil {
		return Issuer{}, err
	}
	return r.Issuer, nil
}

// issuerUnique refuses a name or issuer URL another issuer has.
func issuerUnique(ctx context.Context, tx *sql.Tx, r *Issuer) error {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM issuers WHERE (name = $1 OR issuer = $2) AND id <> $3`,
		r.Name, r.Issuer, r.ID).Scan(&n)
	if err != nil {
		return fmt.Errorf("store: check issuer: %w", err)
	}
	if n > 0 {
		return conflict("an issuer with this name or issuer URL already exists")
	}
	return nil
}

// ApplyIssuer creates the issuer in.Name, or replaces the one of that name
// (as PUT: the write-only secret follows patch rules); created reports
// which. The issuers file applies its entries with it.
func (s *Store) ApplyIssuer(ctx context.Context, in IssuerInput) (out Issuer, created bool, err error) {
	if _, err := s.GetIssuer(ctx, in.Name); errors.Is(err, ErrNotFound) {
		out, err = s.CreateIssuer(ctx, in)
		return out, err == nil, err
	} else if err != nil {
		return Issuer{}, false, err
	}
	out, err = s.UpdateIssuer(ctx, in.Name, in.AsPatch())
	return out, false, err
}

// GetIssuer returns the issuer with the given id or name.
func (s *Store) GetIssuer(ctx context.Context, idOrName string) (Issuer, error) {
	r, err := getIssuer(ctx, s.rdb, idOrName)
	if err != nil {
		return Issuer{}, err
	}
	return r.Issuer, nil
}

// ListIssuers returns one page of issuers ordered by name, and the total.
func (s *Store) ListIssuers(ctx context.Context, p Page) ([]Issuer, int, error) {
	return listPage(ctx, s, p, "issuers", issuerCols, "name", "issuers", scanIssuer, func(r *issuerRow) Issuer { return r.Issuer })
}

// UpdateIssuer applies patch to the issuer with the given id or name.
func (s *Store) UpdateIssuer(ctx context.Context, idOrName string, patch IssuerPatch) (Issuer, error) {
	var out Issuer
	err := s.configTx(ctx, func(tx *sql.Tx, rev int64) error {
		r, err := getIssuer(ctx, tx, idOrName)
		if err != nil {
			return err
		}
		if err := s.applyIssuerPatch(r, patch); err != nil {
			return err
		}
		r.UpdatedAt, r.Revision = now(), rev
		if err := issuerUnique(ctx, tx, &r.Issuer); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE issuers SET name=$2, issuer=$3, jwks_uri=$4, audiences=$5, algorithms=$6, leeway_ms=$7,
			allow_insecure_http=$8, models=$9, claims=$10, limits=$11, secret_enc=$12, created_at=$13, updated_at=$14, revision=$15, admin=$16 WHERE id=$1`,
			s.writeIssuerArgs(r)...)
		if isUniqueViolation(err) {
			return conflict("an issuer with this name or issuer URL already exists")
		}
		if err != nil {
			return fmt.Errorf("store: update issuer: %w", err)
		}
		out = r.Issuer
		return nil
	})
	return out, err
}

// DeleteIssuer deletes an issuer; its tokens stop working at the next
// reload.
func (s *Store) DeleteIssuer(ctx context.Context, idOrName string) error {
	return s.configTx(ctx, func(tx *sql.Tx, _ int64) error {
		r, err := getIssuer(ctx, tx, idOrName)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM issuers WHERE id = $1`, r.ID); err != nil {
			return fmt.Errorf("store: delete issuer: %w", err)
		}
		return nil
	})
}

// loadIssuers adds every issuer to snap, its HS256 secret opened.
func (s *Store) loadIssuers(ctx context.Context, q queryer, snap *llm.Snapshot) error {
	rows, err := q.QueryContext(ctx, `SELECT `+issuerCols+` FROM issuers`)
	if err != nil {
		return fmt.Errorf("store: snapshot issuers: %w", err)
	}
	for rows.Next() {
		r, err := scanIssuer(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("store: snapshot issuers: %w", err)
		}
		is := &llm.Issuer{ID: r.ID, Name: r.Name, Issuer: r.Issuer.Issuer, JWKSURI: r.JWKSURI, Audiences: r.Audiences,
			Algorithms: r.Algorithms, Leeway: time.Duration(r.Leeway), AllowInsecureHTTP: r.AllowInsecureHTTP,
			Models: r.Models, Claims: r.Claims, Limits: r.Limits, Revision: r.Revision, Admin: r.Admin}
		if r.HS256SecretSet {
			if is.HS256Secret, err = s.open(r.secretEnc.String, issuerSecretAAD(r.ID)); err != nil {
				rows.Close()
				return fmt.Errorf("%w (issuer %s)", err, r.Name)
			}
		}
		snap.Issuers[is.Name] = is
	}
	if err := closeRows(rows); err != nil {
		return fmt.Errorf("store: snapshot issuers: %w", err)
	}
	return nil
}
