package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluice-ai/sluice/llm"
)

// Options tune an Authenticator's JWKS caches; a zero field takes its
// default.
type Options struct {
	// CacheTTL is how long a fetched key set is used before it is
	// refreshed. Default 10m.
	CacheTTL time.Duration
	// MinRefresh is the least time between two fetch attempts of one
	// issuer (refreshes on an unknown kid, retries of a down IdP).
	// Default 10s.
	MinRefresh time.Duration
	// MaxStale is how long a key set keeps serving after it was fetched
	// when refreshing it fails. Default 24h.
	MaxStale time.Duration
	// FetchTimeout bounds one discovery or JWKS fetch. Default 5s.
	FetchTimeout time.Duration
	// MaxJWKSBytes bounds a discovery or JWKS document. Default 64 KiB.
	MaxJWKSBytes int64
	// Clock is the time tokens and caches are judged at. Default time.Now.
	Clock func() time.Time
	// Transport, when set, replaces the guarded HTTP transports (tests
	// only: it bypasses the https/loopback dial rule, not the URL rule).
	Transport http.RoundTripper
	// Logger reports failed refreshes. Default: discard.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.CacheTTL <= 0 {
		o.CacheTTL = 10 * time.Minute
	}
	if o.MinRefresh <= 0 {
		o.MinRefresh = 10 * time.Second
	}
	if o.MaxStale <= 0 {
		o.MaxStale = 24 * time.Hour
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 5 * time.Second
	}
	if o.MaxJWKSBytes <= 0 {
		o.MaxJWKSBytes = 64 << 10
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// Authenticator turns credentials into principals: Sluice keys through
// the snapshot, JWTs through the configured issuers. It is built per
// configuration State by NewAuthenticator and is safe for concurrent use;
// a nil *Authenticator accepts Sluice keys only.
type Authenticator struct {
	byIss map[string]*issuer // by the exact "iss" value
	o     *Options
}

// issuer is one configured issuer compiled for validation.
type issuer struct {
	cfg    *llm.Issuer
	parser *jwt.Parser
	keys   *keyCache
	secret []byte // HS256 key; nil when HS256 is off
	// admin validates admin API tokens (cfg.Admin's audiences); nil when
	// the issuer is not an admin issuer.
	admin *jwt.Parser
	// verified caches proxy tokens that passed every check.
	verified verifiedCache
}

// NewAuthenticator compiles issuers (a snapshot's, by name) for
// validation. The key cache of an issuer whose fetch settings did not
// change is taken over from prev (nil on the first build), so a reload
// neither refetches every JWKS nor forgets the last good key set. Issuers
// that cannot be compiled are skipped and reported.
func NewAuthenticator(prev *Authenticator, issuers map[string]*llm.Issuer, o Options) (*Authenticator, []error) {
	o = o.withDefaults()
	a := &Authenticator{byIss: make(map[string]*issuer, len(issuers)), o: &o}
	if prev != nil {
		// Options are fixed for the process: keep the one the caches use.
		a.o = prev.o
	}
	f := (*fetcher)(nil)
	var errs []error
	for _, cfg := range issuers {
		if _, dup := a.byIss[cfg.Issuer]; dup {
			errs = append(errs, fmt.Errorf("issuer %s: another issuer has the same iss %q; skipped", cfg.Name, cfg.Issuer))
			continue
		}
		var kc *keyCache
		if prev != nil {
			if p := prev.byIss[cfg.Issuer]; p != nil && p.keys.sameSource(cfg) {
				kc = p.keys
			}
		}
		if kc == nil {
			if f == nil {
				f = newFetcher(a.o)
			}
			kc = newKeyCache(cfg, f, a.o)
		}
		a.byIss[cfg.Issuer] = compileIssuer(cfg, kc, a.o)
	}
	return a, errs
}

func compileIssuer(cfg *llm.Issuer, kc *keyCache, o *Options) *issuer {
	is := &issuer{cfg: cfg, keys: kc}
	algs := make([]string, 0, len(cfg.Algorithms))
	for _, alg := range cfg.Algorithms {
		switch {
		case alg == "HS256" && cfg.HS256Secret != "":
			is.secret = []byte(cfg.HS256Secret)
			algs = append(algs, alg)
		case algFamily(alg) != famNone:
			algs = append(algs, alg)
		}
	}
	leeway := cfg.Leeway
	if leeway < 0 || leeway > llm.MaxJWTLeeway {
		leeway = llm.DefaultJWTLeeway
	}
	if len(algs) == 0 {
		algs = []string{"-"} // nothing verifies; never nil, which would allow any method
	}
	aud := cfg.Audiences
	if len(aud) == 0 {
		aud = []string{"\x00"} // matches no token: an issuer without audiences accepts nothing
	}
	is.parser = jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(aud...),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // an iat in the future (beyond the leeway) is refused
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(o.Clock),
	)
	if cfg.Admin != nil && len(cfg.Admin.Audiences) > 0 {
		is.admin = jwt.NewParser(
			jwt.WithValidMethods(algs),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Admin.Audiences...),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(leeway),
			jwt.WithTimeFunc(o.Clock),
		)
	}
	return is
}

// HasIssuers reports whether a accepts JWTs at all.
func (a *Authenticator) HasIssuers() bool { return a != nil && len(a.byIss) > 0 }

// AuthenticateHeader authenticates the credential a request's headers
// carry (see Credential; surrounding spaces are ignored). A credential
// header longer than MaxCredentialBytes is refused before anything parses
// it. A credential shaped as a JWT (three base64url segments, not
// starting "sk-") is validated against the issuers; anything else is
// looked up as a Sluice key in snap. A request with more than one
// credential is refused.
func (a *Authenticator) AuthenticateHeader(ctx context.Context, snap *llm.Snapshot, h http.Header, now time.Time) (*Principal, *llm.Error) {
	for _, name := range [...]string{"Authorization", "X-Api-Key"} {
		for _, v := range h[name] {
			if len(v) > MaxCredentialBytes+len("Bearer ") {
				return nil, invalid()
			}
		}
	}
	secret, ok := Credential(h)
	if !ok {
		return nil, ErrAmbiguous()
	}
	secret = strings.TrimSpace(secret)
	if a.HasIssuers() && !strings.HasPrefix(secret, "sk-") && tokenShaped(secret) {
		return a.AuthenticateToken(ctx, secret)
	}
	return Authenticate(snap, secret, now)
}

// tokenShaped reports whether s is three non-empty base64url segments
// joined by dots: the compact form of a signed JWT.
func tokenShaped(s string) bool {
	if len(s) > MaxCredentialBytes {
		return false
	}
	dots, run := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if run == 0 {
				return false
			}
			dots, run = dots+1, 0
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			run++
		default:
			return false
		}
	}
	return dots == 2 && run > 0
}

// Token errors. They never say which check failed beyond expiry, and an
// expired token is reported as expired only once its signature verified:
// a forged token is "invalid" whatever its exp says.
func invalidToken() *llm.Error { return llm.Errorf(llm.KindAuth, "invalid bearer token") }
func expiredToken() *llm.Error { return llm.Errorf(llm.KindAuth, "expired bearer token") }

// AuthenticateToken validates a compact JWT: the issuer is chosen by the
// token's "iss" among the configured ones; the signature must verify with
// the issuer's HS256 secret or the JWKS key of the token's kid whose type
// fits the token's alg (jku, x5u and jwk headers are never read); iss,
// aud and exp are required, exp, nbf and iat are checked with the
// issuer's leeway. Only a token that passes everything (err == nil && Valid)
// becomes a principal.
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string) (*Principal, *llm.Error) {
	if len(token) > MaxCredentialBytes || !tokenShaped(token) {
		return nil, invalidToken()
	}
	iss, ok := peekIssuer(token)
	if !ok || a == nil {
		return nil, invalidToken()
	}
	is := a.byIss[iss]
	if is == nil {
		return nil, invalidToken()
	}
	sum := sha256.Sum256([]byte(token))
	if p, ok := is.verified.get(sum, a.o.Clock(), is.keys, a.o.CacheTTL); ok {
		return p, nil
	}
	claims := jwt.MapClaims{}
	t, err := is.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) { return is.key(ctx, t) })
	if err != nil || t == nil || !t.Valid {
		// v5 verifies the signature before the claims: an expiry error
		// means the signature was good.
		if err != nil && errors.Is(err, jwt.ErrTokenInvalidClaims) && errors.Is(err, jwt.ErrTokenExpired) &&
			!errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return nil, expiredToken()
		}
		return nil, invalidToken()
	}
	p, ok := is.principal(claims)
	if !ok {
		return nil, invalidToken()
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		v := verified{p: *p, exp: exp.Time}
		if t.Method.Alg() != "HS256" {
			v.set = is.keys.cur.Load()
		}
		if v.set != nil || t.Method.Alg() == "HS256" {
			is.verified.put(sum, v)
		}
	}
	return p, nil
}

// key is the issuer's keyfunc.
func (is *issuer) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == "HS256" {
		if is.secret == nil {
			return nil, errors.New("HS256 is not configured")
		}
		return is.secret, nil
	}
	kid, _ := t.Header["kid"].(string)
	if _, isString := t.Header["kid"].(string); !isString && t.Header["kid"] != nil {
		return nil, errors.New("kid is not a string")
	}
	if len(kid) > maxKidBytes {
		return nil, errors.New("kid too long")
	}
	k := is.keys.key(ctx, kid, alg)
	if k == nil {
		return nil, errors.New("no key fits the token")
	}
	return k.pub, nil
}

// peekIssuer reads the unverified "iss" of a token-shaped string, only to
// choose which issuer validates it.
func peekIssuer(token string) (string, bool) {
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	payload, err := base64.RawURLEncoding.DecodeString(token[first+1 : last])
	if err != nil {
		return "", false
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Iss == "" {
		return "", false
	}
	return c.Iss, true
}

// maxClaimBytes bounds a claim value the principal takes (subject, team,
// each model): they end up on usage rows and in quota subjects.
const maxClaimBytes = 128

// principal maps a validated token's claims onto a principal. A subject
// that is missing, not a string, too long or has control characters
// refuses the token; so does a malformed team claim.
func (is *issuer) principal(c jwt.MapClaims) (*Principal, bool) {
	cfg := is.cfg
	sub, ok := c[cfg.Claims.SubjectClaim()].(string)
	if !ok || !claimText(sub) {
		return nil, false
	}
	p := &Principal{ID: cfg.Name + ":" + sub, Kind: llm.PrincipalJWT, Limits: cfg.Limits, Issuer: cfg, Name: sub}
	if cfg.Claims.Team != "" {
		if v, present := c[cfg.Claims.Team]; present {
			team, ok := v.(string)
			if !ok || !claimText(team) {
				return nil, false
			}
			p.Owner = team
		}
	}
	p.Models = cfg.Models
	if len(p.Models) == 0 {
		p.Models = nil // every model
	}
	if cfg.Claims.Models != "" {
		if v, present := c[cfg.Claims.Models]; present {
			named, ok := claimList(v)
			if !ok {
				return nil, false
			}
			p.Models = narrow(p.Models, named)
		}
	}
	return p, true
}

// narrow returns the models of named that allowed (nil: any) allows,
// never nil: a present models claim allows only what it names.
func narrow(allowed, named []string) []string {
	out := make([]string, 0, len(named))
	for _, m := range named {
		if allowed == nil || contains(allowed, m) {
			out = append(out, m)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// claimList reads a claim holding names: a space-separated string (as
// OAuth's "scope") or an array of strings. At most 256 names.
func claimList(v any) ([]string, bool) {
	var out []string
	switch t := v.(type) {
	case string:
		out = strings.Fields(t)
	case []any:
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
	default:
		return nil, false
	}
	if len(out) > 256 {
		return nil, false
	}
	for _, s := range out {
		if !claimText(s) {
			return nil, false
		}
	}
	return out, true
}

// claimText accepts a non-empty UTF-8 claim value of at most
// maxClaimBytes without control characters.
func claimText(s string) bool {
	if s == "" || len(s) > maxClaimBytes || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
