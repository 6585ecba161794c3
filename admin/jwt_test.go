package admin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/auth"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/store"
)

const (
	testIssuerURL = "https://idp.example.com"
	testHSSecret  = "hs256-secret-0123456789abcdef0123456789abcdef"
)

// hs256 signs claims as a compact HS256 JWT with secret.
func hs256(t *testing.T, secret string, header, claims map[string]any) string {
	t.Helper()
	if header == nil {
		header = map[string]any{"alg": "HS256", "typ": "JWT"}
	}
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// adminIssuer registers an HS256 issuer whose tokens reach the proxy with
// audience "sluice" and the admin API with audience "sluice-admin", the
// role read from "groups".
func (rh *roleHarness) adminIssuer() {
	rh.t.Helper()
	rh.expect(rh.do("POST", "/admin/issuers", `{"name":"idp","issuer":"`+testIssuerURL+`","audiences":["sluice"],"algorithms":["HS256"],"hs256_secret":"`+testHSSecret+`",
		"admin":{"audiences":["sluice-admin"],"role_claim":"groups","admin":["sluice-ops"],"viewer":["sluice-read","auditors"]}}`), http.StatusCreated, nil)
}

// token returns an HS256 token of the test issuer at the harness's clock,
// with claims over the defaults (sub, iss, aud sluice-admin, exp in 5m).
func (rh *roleHarness) token(over map[string]any) string {
	now := time.Unix(0, rh.clock.Load())
	c := map[string]any{"iss": testIssuerURL, "sub": "alice", "aud": "sluice-admin", "exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix()}
	for k, v := range over {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return hs256(rh.t, testHSSecret, nil, c)
}

// TestAdminJWT: an issuer with admin settings lets tokens with its admin
// audience in, with the role their groups claim grants; a token for the
// proxy audience, an expired, forged, unsigned or role-less token is the
// same 401; an admin token is refused by the proxy; admin audiences that
// are also proxy audiences are refused at write.
func TestAdminJWT(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		rh := newRoleHarness(t, dialect)
		rh.adminIssuer()
		var who Principal
		rh.expect(rh.doHeaders("GET", "/admin/whoami", "", bearer(rh.token(map[string]any{"groups": []string{"x", "sluice-ops"}}))), 200, &who)
		if who.Kind != PrincipalJWT || who.Role != llm.RoleAdmin || who.ID != "idp:alice" {
			t.Fatalf("whoami = %+v", who)
		}
		ops := rh.token(map[string]any{"groups": "sluice-ops"})
		var k createdAdmin
		rh.expect(rh.doHeaders("POST", "/admin/admin-keys", `{"name":"by-token","role":"viewer"}`, bearer(ops)), 201, &k)
		if k.CreatedBy != "idp:alice" {
			t.Fatalf("created_by %q", k.CreatedBy)
		}
		viewer := rh.token(map[string]any{"groups": []string{"auditors"}, "sub": "bob"})
		rh.expect(rh.doHeaders("GET", "/admin/providers", "", bearer(viewer)), 200, nil)
		rh.expectError(rh.doHeaders("POST", "/admin/keys", `{"name":"x"}`, bearer(viewer)), 403, "")

		now := time.Unix(0, rh.clock.Load())
		bad := map[string]string{
			"proxy audience":   rh.token(map[string]any{"groups": "sluice-ops", "aud": "sluice"}),
			"both audiences":   "", // filled below: accepted, a token may name both
			"no audience":      rh.token(map[string]any{"groups": "sluice-ops", "aud": nil}),
			"expired":          rh.token(map[string]any{"groups": "sluice-ops", "exp": now.Add(-time.Hour).Unix()}),
			"no exp":           rh.token(map[string]any{"groups": "sluice-ops", "exp": nil}),
			"not yet valid":    rh.token(map[string]any{"groups": "sluice-ops", "nbf": now.Add(time.Hour).Unix()}),
			"wrong issuer":     rh.token(map[string]any{"groups": "sluice-ops", "iss": "https://evil.example.com"}),
			"no role claim":    rh.token(nil),
			"unknown role":     rh.token(map[string]any{"groups": []string{"sluice-opsx", "admin"}}),
			"role claim typed": rh.token(map[string]any{"groups": 1}),
			"no subject":       rh.token(map[string]any{"groups": "sluice-ops", "sub": nil}),
			"wrong secret":     hs256(t, testHSSecret+"x", nil, map[string]any{"iss": testIssuerURL, "sub": "a", "aud": "sluice-admin", "exp": now.Add(time.Minute).Unix(), "groups": "sluice-ops"}),
			"alg none":         hs256(t, testHSSecret, map[string]any{"alg": "none"}, map[string]any{"iss": testIssuerURL, "sub": "a", "aud": "sluice-admin", "exp": now.Add(time.Minute).Unix(), "groups": "sluice-ops"}),
		}
		delete(bad, "both audiences")
		for name, tok := range bad {
			if w := rh.doHeaders("GET", "/admin/providers", "", bearer(tok)); w.Code != 401 || w.Body.String() != unauthorizedBody {
				t.Errorf("%s: %d %s", name, w.Code, w.Body)
			}
		}
		both := rh.token(map[string]any{"groups": "sluice-ops", "aud": []string{"sluice", "sluice-admin"}})
		rh.expect(rh.doHeaders("GET", "/admin/providers", "", bearer(both)), 200, nil)

		// The proxy takes its own audience only.
		snap, err := rh.store.LoadSnapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		a, errs := auth.NewAuthenticator(nil, snap.Issuers, auth.Options{Clock: func() time.Time { return time.Unix(0, rh.clock.Load()) }})
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if _, aerr := a.AuthenticateHeader(context.Background(), snap, http.Header{"Authorization": {"Bearer " + ops}}, now); aerr == nil {
			t.Fatal("the proxy accepted an admin token")
		}
		proxyTok := rh.token(map[string]any{"aud": "sluice"})
		if _, aerr := a.AuthenticateHeader(context.Background(), snap, http.Header{"Authorization": {"Bearer " + proxyTok}}, now); aerr != nil {
			t.Fatalf("the proxy refused its own token: %v", aerr)
		}

		// Admin audiences must be the admin API's own; null removes admin access.
		rh.expectError(rh.do("PATCH", "/admin/issuers/idp", `{"admin":{"audiences":["sluice"],"role_claim":"groups","admin":["x"]}}`), 400, "admin.audiences")
		rh.expectError(rh.do("PATCH", "/admin/issuers/idp", `{"admin":{"audiences":["a"],"role_claim":"","admin":["x"]}}`), 400, "admin.role_claim")
		rh.expectError(rh.do("PATCH", "/admin/issuers/idp", `{"admin":{"audiences":["a"],"role_claim":"g"}}`), 400, "admin")
		var is store.Issuer
		rh.expect(rh.do("GET", "/admin/issuers/idp", ""), 200, &is)
		if is.Admin == nil || is.Admin.RoleClaim != "groups" {
			t.Fatalf("issuer view %+v", is.Admin)
		}
		rh.expect(rh.do("PATCH", "/admin/issuers/idp", `{"admin":null}`), 200, nil)
		if w := rh.doHeaders("GET", "/admin/providers", "", bearer(ops)); w.Code != 401 {
			t.Fatalf("admin token after admin access was removed: %d", w.Code)
		}
	})
}
