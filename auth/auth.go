package auth

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// MaxCredentialBytes bounds the credential header accepted before any work
// is done on it.
const MaxCredentialBytes = 8 << 10

// Principal is who a request acts for: a Sluice key or the subject of a
// token from a configured issuer. ID, Kind and Owner are recorded on every
// usage row (llm.Record.PrincipalID, PrincipalKind, Owner).
type Principal struct {
	// ID identifies the principal within its kind: the key id for a key;
	// for a JWT the issuer's name, ":" and the subject claim (so two
	// issuers' subjects never collide).
	ID string
	// Kind is llm.PrincipalKey or llm.PrincipalJWT.
	Kind string
	// Owner is the team or user the usage is accounted to ("" when none):
	// a key's owner, or a token's team claim. The owner's limits
	// (llm.Snapshot.Owners) apply to it.
	Owner string
	// Models is the allow-list: nil allows every model; a non-nil list,
	// even empty, allows only its members.
	Models []string
	// Limits are the principal's own limits: the key's, or the issuer's
	// per-subject limits for a JWT.
	Limits llm.Limits
	// Issuer is the issuer of a JWT principal's token (nil for a key).
	Issuer *llm.Issuer
	// Name is the key's name, or a JWT's subject claim. KeyID, KeyPrefix
	// and Key describe a key principal ("" and nil for a JWT).
	KeyID     string
	KeyPrefix string
	Name      string
	Key       *llm.Key
}

// Allows reports whether p may use model.
func (p *Principal) Allows(model string) bool {
	if p.Key != nil {
		return p.Key.Allows(model)
	}
	if p.Models == nil {
		return true
	}
	for _, m := range p.Models {
		if m == model {
			return true
		}
	}
	return false
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal WithPrincipal put in ctx, nil when
// none.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Credential returns the client's secret from Authorization: Bearer or
// x-api-key (Anthropic style), exactly as sent; "" when neither is
// present. An Authorization header of another scheme carries no credential. ok is false when the request
// carries more than one credential — two Authorization headers, two
// x-api-key headers, or both headers with different values — since which
// one the client meant is unclear; such a request must be refused. The
// proxy and the admin API both read credentials through it.
func Credential(h http.Header) (secret string, ok bool) {
	az, keys := h.Values("Authorization"), h.Values("X-Api-Key")
	if len(az) > 1 || len(keys) > 1 {
		return "", false
	}
	bearer, isBearer := "", len(az) == 1 && len(az[0]) > 7 && strings.EqualFold(az[0][:7], "bearer ")
	if isBearer {
		bearer = az[0][7:]
	}
	switch {
	case len(keys) == 0:
		return bearer, true
	case !isBearer || bearer == keys[0]:
		return keys[0], true
	}
	return "", false
}

// AuthenticateHeader authenticates the Sluice key a request's headers carry
// (see Credential; surrounding spaces are ignored). A request with more
// than one credential is refused like a wrong key.
func AuthenticateHeader(snap *llm.Snapshot, h http.Header, now time.Time) (*Principal, *llm.Error) {
	secret, ok := Credential(h)
	if !ok {
		return nil, ErrAmbiguous()
	}
	return Authenticate(snap, strings.TrimSpace(secret), now)
}

// ErrAmbiguous is the 401 for a request that carries more than one
// credential.
func ErrAmbiguous() *llm.Error {
	return llm.Errorf(llm.KindAuth, "more than one credential: send one Authorization: Bearer or x-api-key header")
}

// Authenticate checks a Sluice key against snap. Every failure is the same
// 401 so callers cannot tell a revoked key from an unknown one; the message
// never echoes the credential.
func Authenticate(snap *llm.Snapshot, secret string, now time.Time) (*Principal, *llm.Error) {
	if secret == "" {
		return nil, llm.Errorf(llm.KindAuth, "missing API key: send Authorization: Bearer <key> or x-api-key")
	}
	if len(secret) > MaxCredentialBytes || !strings.HasPrefix(secret, "sk-") {
		return nil, invalid()
	}
	// A Sluice-shaped key with a bad checksum, length or alphabet was never
	// issued, and an admin key is no gateway key: refused without a lookup.
	if f := llm.ParseKey(secret); f == llm.KeyMalformed || f == llm.KeyAdmin {
		return nil, invalid()
	}
	var buf [64]byte
	k, ok := snap.Keys[string(llm.AppendKeyHash(buf[:0], secret))] // no allocation for the lookup
	if !ok || k.Disabled || k.Expired(now) {
		return nil, invalid()
	}
	return &Principal{ID: k.ID, Kind: llm.PrincipalKey, Owner: k.Owner, Limits: k.Limits,
		KeyID: k.ID, KeyPrefix: k.Prefix, Name: k.Name, Key: k}, nil
}

func invalid() *llm.Error {
	return llm.Errorf(llm.KindAuth, "invalid, expired or revoked API key")
}
