package admin

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/store"
)

// sqlInjection is a corpus of SQL injection attempts sent as credentials.
var sqlInjection = []string{
	"' OR 1=1 --", `" OR ""="`, "' OR '1'='1", "1; DROP TABLE admin_keys; --", "'; SELECT pg_sleep(5); --",
	"admin'--", "' UNION SELECT hash FROM api_keys --", `\'; DELETE FROM providers; --`, "%27%20OR%201%3D1",
	"sk-sluice-' OR 1=1 --", "sk-sluice-admin-' OR '1'='1' --", "sk-' OR 1=1 --",
	"sk-sluice-admin-" + strings.Repeat("'", 39), "\x00' OR 1=1", "1' AND SLEEP(5)#",
}

// TestAdminAuthMatrixT12 walks every route of the engine (T12) with every
// kind of wrong credential — none, wrong, whitespace and case variants of
// the bootstrap and of a database admin key, a trailing newline, a bad
// checksum, a gateway key, a disabled, expired or revoked admin key, an
// SQL injection corpus, an expired JWT, a JWT for another audience — and expects the same 401 on every route but the
// public ones. A viewer key gets 403 on every write route, on the admin
// keys and on the profiler, and is let through elsewhere; an admin key
// and a previous bootstrap key are let through everywhere. TestAuthMatrix
// fails when a route is registered outside the auth middleware.
func TestAdminAuthMatrixT12(t *testing.T) {
	rh := newRoleHarness(t, store.DialectSQLite)
	viewer := rh.adminKey(testAdminKey, `{"name":"viewer","role":"viewer"}`)
	adm := rh.adminKey(testAdminKey, `{"name":"admin","role":"admin"}`)
	disabled := rh.adminKey(testAdminKey, `{"name":"off","role":"admin","disabled":true}`)
	exp := time.Unix(0, rh.clock.Load()).Add(time.Minute).UTC().Format(time.RFC3339)
	expired := rh.adminKey(testAdminKey, `{"name":"old","role":"admin","expires_at":"`+exp+`"}`)
	revoked := rh.adminKey(testAdminKey, `{"name":"gone","role":"admin"}`)
	rh.expect(rh.do("DELETE", "/admin/admin-keys/"+revoked.ID, ""), 200, nil)
	_, gateway, err := rh.store.CreateKey(context.Background(), store.KeyInput{Name: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	rh.adminIssuer()
	rh.clock.Add(int64(time.Hour))
	now := time.Unix(0, rh.clock.Load())

	badChecksum := []byte(adm.Secret)
	badChecksum[len(badChecksum)-1] ^= 1
	swapped := []byte(adm.Secret)
	for i := len(llm.AdminKeyPrefix); i < len(swapped); i++ {
		if c := swapped[i]; 'a' <= c && c <= 'z' {
			swapped[i] = c - 32
		} else if 'A' <= c && c <= 'Z' {
			swapped[i] = c + 32
		}
	}
	creds := []string{
		"", "wrong-key-wrong-key-wrong-key-wrong",
		" " + testAdminKey, testAdminKey + " ", testAdminKey + "\n", strings.ToUpper(testAdminKey), testAdminKey[1:],
		" " + adm.Secret, adm.Secret + "\n", adm.Secret + " ", strings.ToUpper(adm.Secret), string(swapped), string(badChecksum),
		adm.Secret[:len(adm.Secret)-1], gateway, disabled.Secret, expired.Secret, revoked.Secret,
		previousAdminKey + "\n", strings.Repeat("a", 9<<10),
		// Tokens of the admin issuer: expired, for the proxy's audience,
		// without a role, and a good one with a changed signature.
		rh.token(map[string]any{"groups": "sluice-ops", "exp": now.Add(-time.Minute).Unix()}),
		rh.token(map[string]any{"groups": "sluice-ops", "aud": "sluice"}),
		rh.token(map[string]any{"groups": "nobody"}),
		rh.token(map[string]any{"groups": "sluice-ops"}) + "x",
	}
	creds = append(creds, sqlInjection...)
	routes := rh.engine.Routes()
	if len(routes) < 25 {
		t.Fatalf("only %d routes", len(routes))
	}
	public := map[string]bool{"GET /healthz": true, "GET /readyz": true, "HEAD /healthz": true, "HEAD /readyz": true, "GET /ui": true, "GET /ui/*filepath": true}
	checked := 0
	for _, r := range routes {
		if public[r.Method+" "+r.Path] {
			continue
		}
		p := strings.ReplaceAll(r.Path, ":id", "x")
		p = strings.ReplaceAll(p, "*name", "nope")
		for _, c := range creds {
			for _, hdr := range []map[string]string{{"Authorization": "Bearer " + c}, {"X-API-KEY": c}} {
				w := rh.doHeaders(r.Method, p, "", hdr)
				if w.Code != http.StatusUnauthorized || w.Body.String() != unauthorizedBody {
					t.Fatalf("%s %s with a bad credential (%d bytes) = %d %s, want 401", r.Method, r.Path, len(c), w.Code, w.Body)
				}
				checked++
			}
		}
		viewerMayRoute := (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
			!strings.HasPrefix(r.Path, "/admin/admin-keys") && !strings.HasPrefix(r.Path, "/debug/")
		w := rh.doHeaders(r.Method, p, "", bearer(viewer.Secret))
		switch {
		case !viewerMayRoute && w.Code != http.StatusForbidden:
			t.Fatalf("%s %s as viewer = %d %s, want 403", r.Method, r.Path, w.Code, w.Body)
		case viewerMayRoute && (w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden || w.Code >= 500):
			t.Fatalf("%s %s as viewer = %d %s", r.Method, r.Path, w.Code, w.Body)
		}
		if w := rh.doHeaders(r.Method, p, "", bearer(rh.token(map[string]any{"groups": "auditors"}))); w.Code != rh.doHeaders(r.Method, p, "", bearer(viewer.Secret)).Code {
			t.Fatalf("%s %s: a viewer token and a viewer key differ (%d)", r.Method, r.Path, w.Code)
		}
		for _, k := range []string{adm.Secret, previousAdminKey, testAdminKey, rh.token(map[string]any{"groups": "sluice-ops"})} {
			if w := rh.doHeaders(r.Method, p, "", bearer(k)); w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden || w.Code >= 500 {
				t.Fatalf("%s %s as admin = %d %s", r.Method, r.Path, w.Code, w.Body)
			}
		}
	}
	t.Logf("%d refusals checked over %d routes", checked, len(routes))
	if logs := rh.logs.String(); strings.Contains(strings.ToLower(logs), "sql") || strings.Contains(logs, "syntax") {
		t.Fatalf("SQL in the logs:\n%s", logs)
	}
}
