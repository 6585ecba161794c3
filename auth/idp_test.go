package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluice-ai/sluice/llm"
)

// testIdP is a local OIDC issuer: discovery, a JWKS it can rotate, and
// switches to go down or serve hostile documents.
type testIdP struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    map[string]crypto.Signer // kid -> private key, published
	jwks    []byte                   // when set, served instead of the keys
	down    atomic.Bool
	fetches atomic.Int64 // JWKS requests
	disc    atomic.Int64 // discovery requests
}

// Test keys are generated once per process: RSA generation is slow.
var (
	keyOnce sync.Once
	rsaKey1 *rsa.PrivateKey
	rsaKey2 *rsa.PrivateKey
	ecKey   *ecdsa.PrivateKey
	ec384   *ecdsa.PrivateKey
	edKey   ed25519.PrivateKey
)

func testKeys() {
	keyOnce.Do(func() {
		rsaKey1, _ = rsa.GenerateKey(rand.Reader, 2048)
		rsaKey2, _ = rsa.GenerateKey(rand.Reader, 2048)
		ecKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ec384, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		_, edKey, _ = ed25519.GenerateKey(rand.Reader)
	})
}

func newIdP(t testing.TB) *testIdP {
	testKeys()
	p := &testIdP{keys: map[string]crypto.Signer{"rsa1": rsaKey1, "ec1": ecKey, "ed1": edKey}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.disc.Add(1)
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		p.mu.Lock()
		doc := p.jwks
		if doc == nil {
			doc = jwksOf(p.keys)
		}
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// setKeys replaces the published keys (a rotation).
func (p *testIdP) setKeys(keys map[string]crypto.Signer) {
	p.mu.Lock()
	p.keys = keys
	p.mu.Unlock()
}

func (p *testIdP) issuer() *llm.Issuer {
	return &llm.Issuer{ID: "iss_test", Name: "corp", Issuer: p.srv.URL, Audiences: []string{"sluice"},
		Algorithms: []string{"RS256", "PS256", "ES256", "EdDSA"}, Leeway: 30 * time.Second, AllowInsecureHTTP: true,
		Claims: llm.ClaimMapping{Team: "team", Models: "scope"}}
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwksOf renders public keys as a JWKS document.
func jwksOf(keys map[string]crypto.Signer) []byte {
	var out []map[string]string
	for kid, k := range keys {
		out = append(out, jwkOf(kid, k.Public()))
	}
	b, _ := json.Marshal(map[string]any{"keys": out})
	return b
}

func jwkOf(kid string, pub crypto.PublicKey) map[string]string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		raw, _ := k.Bytes()
		return map[string]string{"kty": "EC", "kid": kid, "crv": k.Curve.Params().Name, "x": b64u(raw[1 : 1+size]), "y": b64u(raw[1+size:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64u(k)}
	}
	panic("unknown key")
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)} }
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// claims are standard valid claims for p at now.
func (p *testIdP) claims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{"iss": p.srv.URL, "sub": "alice", "aud": "sluice", "team": "team-a",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

// sign signs claims with method and key, naming kid (none when "").
func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newTestAuth builds an Authenticator for iss with clk.
func newTestAuth(t testing.TB, clk *clock, iss ...*llm.Issuer) *Authenticator {
	t.Helper()
	m := map[string]*llm.Issuer{}
	for _, is := range iss {
		m[is.Name] = is
	}
	a, errs := NewAuthenticator(nil, m, Options{Clock: clk.Now})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return a
}
