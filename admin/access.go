package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sluice-ai/sluice/auth"
	"github.com/sluice-ai/sluice/llm"
)

// Principal kinds: who an admin request acts for.
const (
	// PrincipalBootstrap is the key from the environment
	// (Options.AdminKey, or one of Options.PreviousAdminKeys).
	PrincipalBootstrap = "bootstrap"
	// PrincipalAdminKey is an admin key stored in the database.
	PrincipalAdminKey = "admin_key"
	// PrincipalJWT is a token of an issuer with admin settings
	// (llm.IssuerAdmin).
	PrincipalJWT = "jwt"
)

// Principal is the authenticated caller of an admin route. It never holds
// the credential itself.
type Principal struct {
	// Kind is PrincipalBootstrap, PrincipalAdminKey or PrincipalJWT.
	Kind string `json:"kind"`
	// ID is the admin key's id, "bootstrap" for Options.AdminKey,
	// "bootstrap-previous" for one of Options.PreviousAdminKeys, or the
	// issuer's name, ":" and the subject for a token.
	ID string `json:"id"`
	// Name is the admin key's name or the token's subject ("" for the
	// bootstrap key).
	Name string `json:"name"`
	// Prefix is the admin key's display prefix ("" for the bootstrap key).
	Prefix string `json:"prefix"`
	// Role is llm.RoleAdmin or llm.RoleViewer.
	Role string `json:"role"`
}

// Actor names the principal in audit records and in created_by: the key id.
func (p *Principal) Actor() string { return p.ID }

type principalKey struct{}

// PrincipalFrom returns the admin principal of a request's context, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// authenticate resolves a presented credential to a principal, or nil. An
// admin-shaped key ("sk-sluice-admin-…" with a valid checksum) is looked
// up by hash in the snapshot; anything else is compared with every
// bootstrap key's hash in constant time (all are compared, whichever
// matches). A gateway key never authenticates here unless an operator
// chose one as the bootstrap key. A malformed Sluice-shaped key reaches no
// lookup. Last, a JWT-shaped credential is validated against the issuers
// with admin settings (auth.AuthenticateAdminToken).
func (a *api) authenticate(ctx context.Context, presented string) *Principal {
	if presented == "" || len(presented) > auth.MaxCredentialBytes {
		return nil
	}
	if llm.ParseKey(presented) == llm.KeyAdmin && a.opts.Snapshot != nil {
		var buf [64]byte
		if snap := a.opts.Snapshot(); snap != nil {
			if k, ok := snap.AdminKeys[string(llm.AppendKeyHash(buf[:0], presented))]; ok {
				if !k.Usable(a.now()) || !llm.ValidRole(k.Role) {
					return nil
				}
				return &Principal{Kind: PrincipalAdminKey, ID: k.ID, Name: k.Name, Prefix: k.Prefix, Role: k.Role}
			}
		}
	}
	sum := sha256.Sum256([]byte(presented))
	match := -1
	for i := range a.bootstrap {
		if subtle.ConstantTimeCompare(sum[:], a.bootstrap[i][:]) == 1 && match < 0 {
			match = i
		}
	}
	switch {
	case match == 0:
		return &Principal{Kind: PrincipalBootstrap, ID: "bootstrap", Role: llm.RoleAdmin}
	case match > 0:
		return &Principal{Kind: PrincipalBootstrap, ID: "bootstrap-previous", Role: llm.RoleAdmin}
	}
	if a.opts.Tokens != nil && strings.Count(presented, ".") == 2 && !strings.HasPrefix(presented, "sk-") {
		if tok, err := a.opts.Tokens().AuthenticateAdminToken(ctx, presented); err == nil {
			return &Principal{Kind: PrincipalJWT, ID: tok.Issuer + ":" + tok.Subject, Name: tok.Subject, Role: tok.Role}
		}
	}
	return nil
}

// viewerMay reports whether a viewer may call the route: reads only, and
// neither the admin keys (who may administer Sluice is an admin's
// business) nor the profiler (costly, and it shows the process's insides).
func viewerMay(method, route string) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	return !strings.HasPrefix(route, "/admin/admin-keys") && !strings.HasPrefix(route, "/debug/")
}

// auth requires an admin credential in X-API-KEY or Authorization: Bearer
// (one of them, or both with the same value), compared exactly (no
// trimming, case-sensitive), then the principal's role: a viewer may only
// read (viewerMay), anything else is 403. Every write, and every refusal,
// is logged with the principal's id and prefix — never a credential.
func (a *api) auth(c *gin.Context) {
	if publicRoute(c) {
		c.Next()
		return
	}
	route := c.FullPath()
	// More than one credential (auth.Credential's ok) is refused like a
	// wrong key: every failure is the same 401.
	presented, ok := auth.Credential(c.Request.Header)
	var p *Principal
	if ok {
		p = a.authenticate(c.Request.Context(), presented)
	}
	if p == nil {
		a.log.Warn("admin: unauthenticated request refused", "method", c.Request.Method, "route", route, "remote", c.Request.RemoteAddr)
		a.error(c, http.StatusUnauthorized, "invalid admin key", "authentication_error", "", "invalid_admin_key")
		c.Abort()
		return
	}
	if p.Role != llm.RoleAdmin && !viewerMay(c.Request.Method, route) {
		a.log.Warn("admin: request refused for the role", "method", c.Request.Method, "route", route,
			"actor_kind", p.Kind, "actor_id", p.ID, "actor_prefix", p.Prefix, "role", p.Role)
		a.error(c, http.StatusForbidden, "this admin credential's role ("+p.Role+") may not do this", "permission_error", "", "insufficient_role")
		c.Abort()
		return
	}
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), principalKey{}, p))
	c.Next()
	if m := c.Request.Method; m != http.MethodGet && m != http.MethodHead {
		id := c.Param("id")
		if len(id) > 128 {
			id = id[:128]
		}
		a.log.Info("admin: write", "method", m, "route", route, "id", id, "status", c.Writer.Status(),
			"actor_kind", p.Kind, "actor_id", p.ID, "actor_prefix", p.Prefix, "role", p.Role)
	}
}

// whoami answers GET /admin/whoami: the caller's principal, so a client
// (the dashboard) can tell its role.
func (a *api) whoami(c *gin.Context) {
	a.json(c, http.StatusOK, PrincipalFrom(c.Request.Context()))
}
