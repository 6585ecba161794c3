package auth

import (
	"context"
	"errors"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluice-ai/sluice/llm"
)

// AdminToken is the caller an admin API token names.
type AdminToken struct {
	// Issuer is the issuer's name.
	Issuer string
	// Subject is the token's subject claim (Claims.Subject, default sub).
	Subject string
	// Role is llm.RoleAdmin or llm.RoleViewer.
	Role string
}

// AuthenticateAdminToken validates a compact JWT for the admin API: as
// AuthenticateToken (signature, iss, exp, nbf, leeway, the same key
// caches), but only issuers with Admin set take part, "aud" must name one
// of Admin.Audiences, and the token's Admin.RoleClaim must grant a role.
// Every failure is the same error; none says which check failed.
func (a *Authenticator) AuthenticateAdminToken(ctx context.Context, token string) (*AdminToken, error) {
	fail := errors.New("invalid admin token")
	if a == nil || len(token) > MaxCredentialBytes || !tokenShaped(token) {
		return nil, fail
	}
	iss, ok := peekIssuer(token)
	if !ok {
		return nil, fail
	}
	is := a.byIss[iss]
	if is == nil || is.admin == nil || is.cfg.Admin == nil {
		return nil, fail
	}
	claims := jwt.MapClaims{}
	t, err := is.admin.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) { return is.key(ctx, t) })
	if err != nil || t == nil || !t.Valid {
		return nil, fail
	}
	sub, ok := claims[is.cfg.Claims.SubjectClaim()].(string)
	if !ok || !claimText(sub) {
		return nil, fail
	}
	values, ok := claimList(claims[is.cfg.Admin.RoleClaim])
	if !ok {
		return nil, fail
	}
	role := is.cfg.Admin.Role(values)
	if !llm.ValidRole(role) {
		return nil, fail
	}
	return &AdminToken{Issuer: is.cfg.Name, Subject: sub, Role: role}, nil
}
