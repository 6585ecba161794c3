package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
)

// oidcIssuer is a local OIDC issuer on 127.0.0.1: discovery and a JWKS
// whose keys can be rotated.
type oidcIssuer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys map[string]any // kid -> private key (*rsa.PrivateKey, *ecdsa.PrivateKey)
}

func startOIDC(t testing.TB) *oidcIssuer {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	o := &oidcIssuer{keys: map[string]any{"r1": rk}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": o.srv.URL, "jwks_uri": o.srv.URL + "/keys"})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) {
		o.mu.Lock()
		defer o.mu.Unlock()
		var keys []map[string]string
		enc := base64.RawURLEncoding.EncodeToString
		for kid, k := range o.keys {
			switch k := k.(type) {
			case *rsa.PrivateKey:
				keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
					"n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())})
			case *ecdsa.PrivateKey:
				raw, _ := k.PublicKey.Bytes()
				keys = append(keys, map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": enc(raw[1:33]), "y": enc(raw[33:])})
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	return o
}

// rotate publishes a new ES256 key under kid.
func (o *oidcIssuer) rotate(t testing.TB, kid string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	o.keys[kid] = k
	o.mu.Unlock()
}

// token mints a token for sub signed with the key kid; edit changes the
// claims first. It signs by hand (RS256, ES256): golang-jwt is the auth
// package's alone.
func (o *oidcIssuer) token(t testing.TB, kid, sub string, edit func(map[string]any)) string {
	t.Helper()
	now := time.Now()
	c := map[string]any{"iss": o.srv.URL, "sub": sub, "aud": []string{"sluice"}, "team": "team-jwt",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	if edit != nil {
		edit(c)
	}
	o.mu.Lock()
	key := o.keys[kid]
	o.mu.Unlock()
	alg := "RS256"
	if _, ec := key.(*ecdsa.PrivateKey); ec {
		alg = "ES256"
	}
	enc := base64.RawURLEncoding.EncodeToString
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT", "kid": kid})
	p, _ := json.Marshal(c)
	signing := enc(h) + "." + enc(p)
	sum := sha256.Sum256([]byte(signing))
	var sig []byte
	var err error
	switch k := key.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	case *ecdsa.PrivateKey:
		var r, s *big.Int
		if r, s, err = ecdsa.Sign(rand.Reader, k, sum[:]); err == nil {
			sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc(sig)
}

// TestJWTEndToEnd: an OIDC issuer registered through /admin/issuers; its
// tokens work through the official OpenAI SDK, usage rows carry the JWT
// principal, the issuer's rpm applies to each subject on its own, bad
// tokens get 401 in the client's dialect, and a rotated key is picked up.
func TestJWTEndToEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gwOptions{})
	g := f.gw
	ctx := testCtx(t, 2*time.Minute)
	idp := startOIDC(t)

	// allow_insecure_http is refused for a non-loopback issuer.
	code, body := g.adminDo(t, http.MethodPost, "/admin/issuers", map[string]any{"name": "bad", "issuer": "http://idp.example.com",
		"audiences": []string{"sluice"}, "allow_insecure_http": true})
	if code != http.StatusBadRequest {
		t.Fatalf("insecure non-loopback issuer: %d %s", code, body)
	}
	var created struct {
		ID             string `json:"id"`
		HS256SecretSet bool   `json:"hs256_secret_set"`
	}
	g.adminOK(t, http.MethodPost, "/admin/issuers", map[string]any{
		"name": "corp", "issuer": idp.srv.URL, "audiences": []string{"sluice"}, "algorithms": []string{"RS256", "ES256"},
		"leeway": "30s", "allow_insecure_http": true, "models": []string{"gpt-4o-mini"},
		"claims": map[string]string{"team": "team"}, "limits": map[string]any{"rpm": 2},
	}, &created)
	if created.ID == "" || created.HS256SecretSet {
		t.Fatalf("created %+v", created)
	}

	alice := idp.token(t, "r1", "alice", nil)
	g.waitKeyUsable(t, alice)
	for i := range 2 {
		if _, err := g.client(alice).Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "hi")); err != nil {
			t.Fatalf("alice request %d: %v", i, describe(err))
		}
	}
	// The issuer's rpm is per subject: alice is out, bob is not.
	_, err := g.client(alice).Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "hi"))
	if e := wantAPIError(t, err, http.StatusTooManyRequests, "rate_limit_exceeded"); !strings.Contains(e.Message, "subject") {
		t.Fatalf("refusal: %s", e.Message)
	}
	if _, err := g.client(idp.token(t, "r1", "bob", nil)).Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "hi")); err != nil {
		t.Fatalf("bob: %v", describe(err))
	}

	// Bad tokens: 401 with a generic message, in each dialect.
	expired := idp.token(t, "r1", "alice", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
	_, err = g.client(expired).Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "hi"))
	if e := wantAPIError(t, err, http.StatusUnauthorized, ""); e.Message != "expired bearer token" {
		t.Fatalf("expired: %q", e.Message)
	}
	wrongAud := idp.token(t, "r1", "alice", func(c map[string]any) { c["aud"] = "other" })
	_, err = g.client(wrongAud).Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "hi"))
	if e := wantAPIError(t, err, http.StatusUnauthorized, ""); e.Message != "invalid bearer token" {
		t.Fatalf("wrong aud: %q", e.Message)
	}
	_, err = g.anthropicClient(wrongAud).Messages.New(ctx, messageParams("gpt-4o-mini", "hi"))
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized || !strings.Contains(ae.RawJSON(), `"authentication_error"`) {
		t.Fatalf("anthropic dialect: %v", err)
	}

	// Rotation: a token signed with a newly published key works once the
	// gateway may refresh (at most one JWKS fetch per 10s).
	idp.rotate(t, "e2")
	rotated := idp.token(t, "e2", "carol", nil)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := g.client(rotated).Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "hi"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotated key not accepted: %v", describe(err))
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Usage rows carry the JWT principal and its team.
	deadline = time.Now().Add(5 * time.Second)
	for {
		rows := jwtUsage(t, g)
		if rows["corp:alice/jwt/team-jwt"] >= 2 && rows["corp:bob/jwt/team-jwt"] >= 1 && rows["corp:carol/jwt/team-jwt"] >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage rows: %v", rows)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The admin view never shows a secret and the model allow-list holds.
	code, body = g.adminDo(t, http.MethodGet, "/admin/issuers/corp", nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"hs256_secret_set":false`) {
		t.Fatalf("GET issuer: %d %s", code, body)
	}
	// A configured model outside the issuer's models is refused before
	// admission (alice is out of requests: the 403 comes first).
	g.addModel(t, "other", "mock")
	deadline = time.Now().Add(5 * time.Second)
	for {
		_, err = g.client(alice).Chat.Completions.New(ctx, chatParams("other", "hi"))
		var oe *openai.Error
		if errors.As(err, &oe) && oe.StatusCode == http.StatusForbidden {
			if !strings.Contains(oe.Message, "this token is not allowed") {
				t.Fatalf("403: %s", oe.Message)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("model outside the allow-list: %v", describe(err))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// HS256 with a configured secret (write-only: never in an admin
	// answer or the logs); no JWKS involved.
	secret := "sk-canary-" + randHex(t, 16)
	g.adminOK(t, http.MethodPost, "/admin/issuers", map[string]any{
		"name": "hs", "issuer": "http://127.0.0.1:1/hs", "audiences": []string{"sluice"}, "algorithms": []string{"HS256"},
		"allow_insecure_http": true, "hs256_secret": secret,
	}, nil)
	g.adminOK(t, http.MethodPatch, "/admin/issuers/hs", map[string]any{"hs256_secret": "****", "models": []string{"gpt-4o-mini"}}, nil)
	hs := hs256(map[string]any{"iss": "http://127.0.0.1:1/hs", "sub": "svc", "aud": "sluice", "exp": time.Now().Add(time.Minute).Unix()}, secret)
	g.waitKeyUsable(t, hs)
	if _, err := g.client(hs).Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "hi")); err != nil {
		t.Fatalf("HS256: %v", describe(err))
	}
	g.adminOK(t, http.MethodGet, "/admin/issuers", nil, nil)
	accessLog, _ := os.ReadFile(g.AccessLog)
	if !strings.Contains(string(accessLog), `"principal_kind":"jwt"`) {
		t.Fatalf("access log without the JWT principal: %.500s", accessLog)
	}
	for _, s := range append(g.adminBodies, g.logs(), string(accessLog)) {
		if strings.Contains(s, secret[:20]) || strings.Contains(s, alice) {
			t.Fatalf("a secret or token leaked: %.300s", s)
		}
	}
}

// hs256 signs claims with HMAC-SHA256.
func hs256(claims map[string]any, secret string) string {
	enc := base64.RawURLEncoding.EncodeToString
	p, _ := json.Marshal(claims)
	signing := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc(p)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signing))
	return signing + "." + enc(m.Sum(nil))
}

// jwtUsage counts successful usage rows by "principal_id/kind/owner".
func jwtUsage(t testing.TB, g *gateway) map[string]int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(g.DataDir, "sluice.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT principal_id, principal_kind, owner FROM usage_records WHERE http_status = 200`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id, kind, owner string
		if err := rows.Scan(&id, &kind, &owner); err != nil {
			t.Fatal(err)
		}
		out[id+"/"+kind+"/"+owner]++
	}
	return out
}
