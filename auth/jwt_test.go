package auth

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluice-ai/sluice/llm"
)

func TestJWTValidEachAlgorithm(t *testing.T) {
	idp, clk := newIdP(t), newClock()
	a := newTestAuth(t, clk, idp.issuer())
	for _, c := range []struct {
		name string
		m    jwt.SigningMethod
		key  any
		kid  string
	}{
		{"RS256", jwt.SigningMethodRS256, rsaKey1, "rsa1"},
		{"PS256", jwt.SigningMethodPS256, rsaKey1, "rsa1"},
		{"ES256", jwt.SigningMethodES256, ecKey, "ec1"},
		{"EdDSA", jwt.SigningMethodEdDSA, edKey, "ed1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, e := a.AuthenticateToken(context.Background(), sign(t, c.m, c.key, c.kid, idp.claims(clk.Now())))
			if e != nil {
				t.Fatalf("refused: %v", e)
			}
			if p.ID != "corp:alice" || p.Kind != llm.PrincipalJWT || p.Owner != "team-a" || p.Models != nil || p.Issuer == nil {
				t.Fatalf("principal %+v", p)
			}
		})
	}
	if n := idp.fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1 (cached)", n)
	}
	if n := idp.disc.Load(); n != 1 {
		t.Fatalf("%d discovery fetches, want 1", n)
	}
}

func TestJWTThroughHeaderAndContext(t *testing.T) {
	idp, clk := newIdP(t), newClock()
	a := newTestAuth(t, clk, idp.issuer())
	h := http.Header{"Authorization": {"Bearer " + sign(t, jwt.SigningMethodES256, ecKey, "ec1", idp.claims(clk.Now()))}}
	p, e := a.AuthenticateHeader(context.Background(), llm.EmptySnapshot(), h, clk.Now())
	if e != nil || p.Kind != llm.PrincipalJWT {
		t.Fatalf("%v %+v", e, p)
	}
	ctx := WithPrincipal(context.Background(), p)
	if PrincipalFrom(ctx) != p || PrincipalFrom(context.Background()) != nil {
		t.Fatal("context accessors")
	}
	// A Sluice key still takes the key path: unknown key, key message.
	_, e = a.AuthenticateHeader(context.Background(), llm.EmptySnapshot(), http.Header{"Authorization": {"Bearer sk-a.b.c"}}, clk.Now())
	if e == nil || !strings.Contains(e.Message, "API key") {
		t.Fatalf("sk- credential: %v", e)
	}
}

// TestJWTNegatives is RELIABILITY.md T14: every token here is refused as
// "invalid" (or "expired" only where the signature verified).
func TestJWTNegatives(t *testing.T) {
	idp, clk := newIdP(t), newClock()
	a := newTestAuth(t, clk, idp.issuer())
	now := clk.Now()
	with := func(k string, v any) jwt.MapClaims {
		c := idp.claims(now)
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	rs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", c) }
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&rsaKey1.PublicKey))})

	// A token whose header carries jku/x5u/jwk pointing at an attacker's
	// key, signed by that key.
	var attackerHit atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHit.Add(1)
		_, _ = w.Write(jwksOf(map[string]crypto.Signer{"rsa1": rsaKey2}))
	}))
	defer attacker.Close()
	hostile := func(h string, v any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, idp.claims(now))
		tok.Header["kid"] = "evil"
		tok.Header[h] = v
		s, err := tok.SignedString(rsaKey2)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	expiredBadSig := rs(with("exp", now.Add(-time.Hour).Unix()))
	expiredBadSig = expiredBadSig[:strings.LastIndexByte(expiredBadSig, '.')+1] + b64u([]byte(strings.Repeat("x", 256)))

	cases := []struct {
		name, token, want string
	}{
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa1", idp.claims(now)), "invalid"},
		{"HS256 with the RSA public key PEM", sign(t, jwt.SigningMethodHS256, pubPEM, "rsa1", idp.claims(now)), "invalid"},
		{"wrong aud", rs(with("aud", "someone-else")), "invalid"},
		{"missing aud", rs(with("aud", nil)), "invalid"},
		{"aud list without ours", rs(with("aud", []string{"a", "b"})), "invalid"},
		{"wrong iss (unknown)", rs(with("iss", "https://evil.example")), "invalid"},
		{"missing exp", rs(with("exp", nil)), "invalid"},
		{"expired beyond leeway", rs(with("exp", now.Add(-31*time.Second).Unix())), "expired"},
		{"expired with a bad signature", expiredBadSig, "invalid"},
		{"nbf in the future", rs(with("nbf", now.Add(time.Minute).Unix())), "invalid"},
		{"iat in the future", rs(with("iat", now.Add(time.Minute).Unix())), "invalid"},
		{"kid path traversal", sign(t, jwt.SigningMethodRS256, rsaKey1, "../../../etc/passwd", idp.claims(now)), "invalid"},
		{"kid SQL", sign(t, jwt.SigningMethodRS256, rsaKey1, "' OR 1=1 --", idp.claims(now)), "invalid"},
		{"kid of another family", sign(t, jwt.SigningMethodRS256, rsaKey1, "ec1", idp.claims(now)), "invalid"},
		{"signed by a key not in the JWKS", sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa1", idp.claims(now)), "invalid"},
		{"jku ignored", hostile("jku", attacker.URL), "invalid"},
		{"x5u ignored", hostile("x5u", attacker.URL), "invalid"},
		{"jwk ignored", hostile("jwk", jwkOf("evil", &rsaKey2.PublicKey)), "invalid"},
		{"subject not a string", rs(with("sub", 42)), "invalid"},
		{"subject missing", rs(with("sub", nil)), "invalid"},
		{"subject with control characters", rs(with("sub", "a\nb")), "invalid"},
		{"team not a string", rs(with("team", []string{"x"})), "invalid"},
		{"not a JWT", "a.b", "invalid"},
		{"garbage payload", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", "invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, e := a.AuthenticateToken(context.Background(), c.token)
			if e == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if e.Status != http.StatusUnauthorized || e.Message != c.want+" bearer token" {
				t.Fatalf("got %d %q, want 401 %q", e.Status, e.Message, c.want+" bearer token")
			}
		})
	}
	if attackerHit.Load() != 0 {
		t.Fatal("a jku/x5u URL from a token was fetched")
	}
	// Within the leeway, an expired token is still good.
	if _, e := a.AuthenticateToken(context.Background(), rs(with("exp", now.Add(-29*time.Second).Unix()))); e != nil {
		t.Fatalf("within leeway: %v", e)
	}
	// The hostile kids cost at most one refresh (the rate limit).
	if n := idp.fetches.Load(); n > 2 {
		t.Fatalf("%d JWKS fetches", n)
	}
}

// A token signed by issuer A's key but claiming issuer B is checked
// against B's keys only.
func TestJWTIssuerKeysDoNotMix(t *testing.T) {
	idpA, idpB, clk := newIdP(t), newIdP(t), newClock()
	idpB.setKeys(map[string]crypto.Signer{"rsa1": rsaKey2})
	a, b := idpA.issuer(), idpB.issuer()
	b.ID, b.Name = "iss_b", "other"
	auth := newTestAuth(t, clk, a, b)
	c := idpA.claims(clk.Now())
	c["iss"] = idpB.srv.URL
	if _, e := auth.AuthenticateToken(context.Background(), sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", c)); e == nil {
		t.Fatal("A's key accepted for B")
	}
	if p, e := auth.AuthenticateToken(context.Background(), sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa1", c)); e != nil || p.ID != "other:alice" {
		t.Fatalf("%v %+v", e, p)
	}
}

func TestJWTHS256OnlyWithSecret(t *testing.T) {
	idp, clk := newIdP(t), newClock()
	is := idp.issuer()
	secret := strings.Repeat("s", 32)
	is.Algorithms, is.HS256Secret = []string{"RS256", "HS256"}, secret
	a := newTestAuth(t, clk, is)
	if _, e := a.AuthenticateToken(context.Background(), sign(t, jwt.SigningMethodHS256, []byte(secret), "", idp.claims(clk.Now()))); e != nil {
		t.Fatalf("HS256 with the secret: %v", e)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&rsaKey1.PublicKey))})
	if _, e := a.AuthenticateToken(context.Background(), sign(t, jwt.SigningMethodHS256, pubPEM, "rsa1", idp.claims(clk.Now()))); e == nil {
		t.Fatal("HS256 signed with the PEM accepted")
	}
	// HS256 listed without a secret verifies nothing.
	is2 := idp.issuer()
	is2.Algorithms = []string{"HS256"}
	a2 := newTestAuth(t, clk, is2)
	if _, e := a2.AuthenticateToken(context.Background(), sign(t, jwt.SigningMethodHS256, []byte(""), "", idp.claims(clk.Now()))); e == nil {
		t.Fatal("HS256 without a secret accepted")
	}
}

func TestJWTAllowedModels(t *testing.T) {
	idp, clk := newIdP(t), newClock()
	is := idp.issuer()
	is.Models = []string{"m1", "m2"}
	a := newTestAuth(t, clk, is)
	tok := func(scope any) *Principal {
		c := idp.claims(clk.Now())
		if scope != nil {
			c["scope"] = scope
		}
		p, e := a.AuthenticateToken(context.Background(), sign(t, jwt.SigningMethodES256, ecKey, "ec1", c))
		if e != nil {
			t.Fatal(e)
		}
		return p
	}
	for _, c := range []struct {
		scope any
		allow map[string]bool
	}{
		{nil, map[string]bool{"m1": true, "m2": true, "m3": false}},                  // no claim: the issuer's list
		{"openid m2 m3", map[string]bool{"m1": false, "m2": true, "m3": false}},      // narrowed, never widened
		{[]any{"m1"}, map[string]bool{"m1": true, "m2": false}},                      // array form
		{"openid email", map[string]bool{"m1": false, "m2": false, "openid": false}}, // claim present, no model: nothing
	} {
		p := tok(c.scope)
		for m, want := range c.allow {
			if p.Allows(m) != want {
				t.Errorf("scope %v: Allows(%s) = %v", c.scope, m, !want)
			}
		}
	}
	// An issuer without models: the claim alone decides.
	is2 := idp.issuer()
	a2 := newTestAuth(t, clk, is2)
	c := idp.claims(clk.Now())
	c["scope"] = "m3"
	p, e := a2.AuthenticateToken(context.Background(), sign(t, jwt.SigningMethodES256, ecKey, "ec1", c))
	if e != nil || !p.Allows("m3") || p.Allows("m1") {
		t.Fatalf("%v %+v", e, p)
	}
}

// T14: Bearer plus 1 MiB of dots is refused with little allocation.
func TestJWTHeaderOfDots(t *testing.T) {
	idp, clk := newIdP(t), newClock()
	a := newTestAuth(t, clk, idp.issuer())
	h := http.Header{"Authorization": {"Bearer " + strings.Repeat(".", 1<<20)}}
	snap := llm.EmptySnapshot()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 20
	for range n {
		if _, e := a.AuthenticateHeader(context.Background(), snap, h, clk.Now()); e == nil || e.Status != 401 {
			t.Fatalf("%v", e)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 64<<10 {
		t.Fatalf("%d bytes allocated per request", per)
	}
	// Just under the cap, dots are still not a token and cost nothing.
	h = http.Header{"Authorization": {"Bearer " + strings.Repeat(".", MaxCredentialBytes)}}
	if _, e := a.AuthenticateHeader(context.Background(), snap, h, clk.Now()); e == nil {
		t.Fatal("dots accepted")
	}
	if idp.fetches.Load() != 0 {
		t.Fatal("dots made the gateway fetch keys")
	}
}

// T14: a 10 MiB JWKS document is refused without reading it all.
func TestJWTOversizedJWKS(t *testing.T) {
	idp, clk := newIdP(t), newClock()
	big := make([]byte, 10<<20)
	copy(big, `{"keys":[`)
	for i := 9; i < len(big); i++ {
		big[i] = ' '
	}
	idp.jwks = big
	a := newTestAuth(t, clk, idp.issuer())
	_, e := a.AuthenticateToken(context.Background(), sign(t, jwt.SigningMethodES256, ecKey, "ec1", idp.claims(clk.Now())))
	if e == nil {
		t.Fatal("accepted with an oversized JWKS")
	}
	is := a.byIss[idp.srv.URL]
	if is.keys.fails.Load() != 1 || is.keys.cur.Load() != nil {
		t.Fatal("oversized JWKS not refused")
	}
}

// T14: 1,000 tokens with random kids trigger at most one JWKS fetch per
// refresh interval.
func TestJWTRandomKidsRateLimited(t *testing.T) {
	idp, clk := newIdP(t), newClock()
	a := newTestAuth(t, clk, idp.issuer())
	ctx := context.Background()
	if _, e := a.AuthenticateToken(ctx, sign(t, jwt.SigningMethodES256, ecKey, "ec1", idp.claims(clk.Now()))); e != nil {
		t.Fatal(e)
	}
	base := idp.fetches.Load()
	var wg sync.WaitGroup
	var accepted atomic.Int64
	toks := make([]string, 1000)
	for i := range toks {
		var b [8]byte
		_, _ = rand.Read(b[:])
		toks[i] = sign(t, jwt.SigningMethodES256, ecKey, hex.EncodeToString(b[:]), idp.claims(clk.Now()))
	}
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, e := a.AuthenticateToken(ctx, toks[i]); e == nil {
				accepted.Add(1)
			}
			if i == 500 {
				clk.Add(5 * time.Second) // still within one interval
			}
		}()
	}
	wg.Wait()
	if accepted.Load() != 0 {
		t.Fatal("a token with an unknown kid was accepted")
	}
	if n := idp.fetches.Load() - base; n > 1 {
		t.Fatalf("%d JWKS fetches for 1,000 random kids within 10s, want ≤ 1", n)
	}
}

// Rotation: a token with a new kid refreshes the set (once the interval
// allows) and validates; the IdP going down leaves the cached keys working
// until MaxStale.
func TestJWTRotationAndIdPDown(t *testing.T) {
	idp, clk := newIdP(t), newClock()
	a := newTestAuth(t, clk, idp.issuer())
	ctx := context.Background()
	if _, e := a.AuthenticateToken(ctx, sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", idp.claims(clk.Now()))); e != nil {
		t.Fatal(e)
	}
	idp.setKeys(map[string]crypto.Signer{"rsa1": rsaKey1, "rsa2": rsaKey2})
	clk.Add(11 * time.Second)
	if _, e := a.AuthenticateToken(ctx, sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa2", idp.claims(clk.Now()))); e != nil {
		t.Fatalf("rotated key: %v", e)
	}
	idp.down.Store(true)
	clk.Add(time.Hour) // past the TTL: a refresh is tried and fails
	for range 3 {
		if _, e := a.AuthenticateToken(ctx, sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa2", idp.claims(clk.Now()))); e != nil {
			t.Fatalf("IdP down, cached key: %v", e)
		}
	}
	if f := a.byIss[idp.srv.URL].keys.fails.Load(); f != 1 {
		t.Fatalf("%d failed refreshes, want 1 (rate-limited)", f)
	}
	clk.Add(25 * time.Hour) // past MaxStale
	if _, e := a.AuthenticateToken(ctx, sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa2", idp.claims(clk.Now()))); e == nil {
		t.Fatal("a key set older than MaxStale still served")
	}
	idp.down.Store(false)
	clk.Add(11 * time.Second)
	if _, e := a.AuthenticateToken(ctx, sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa2", idp.claims(clk.Now()))); e != nil {
		t.Fatalf("IdP back: %v", e)
	}
}

// A reload keeps the key cache of an unchanged issuer and drops it when
// the fetch settings change.
func TestJWTCacheSurvivesReload(t *testing.T) {
	idp, clk := newIdP(t), newClock()
	is := idp.issuer()
	a := newTestAuth(t, clk, is)
	ctx := context.Background()
	tok := sign(t, jwt.SigningMethodES256, ecKey, "ec1", idp.claims(clk.Now()))
	if _, e := a.AuthenticateToken(ctx, tok); e != nil {
		t.Fatal(e)
	}
	is2 := *is
	is2.Models, is2.Revision = []string{"m1"}, 7
	b, _ := NewAuthenticator(a, map[string]*llm.Issuer{"corp": &is2}, Options{})
	if _, e := b.AuthenticateToken(ctx, tok); e != nil {
		t.Fatal(e)
	}
	if n := idp.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches across a reload, want 1", n)
	}
	is3 := is2
	is3.JWKSURI = idp.srv.URL + "/jwks"
	c, _ := NewAuthenticator(b, map[string]*llm.Issuer{"corp": &is3}, Options{})
	if _, e := c.AuthenticateToken(ctx, tok); e != nil {
		t.Fatal(e)
	}
	if n := idp.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after jwks_uri changed, want 2", n)
	}
}

// Plain HTTP is refused for a non-loopback issuer even if the config
// slipped past validation, and https is required without the flag.
func TestJWTFetchRules(t *testing.T) {
	idp, clk := newIdP(t), newClock()
	is := idp.issuer()
	is.AllowInsecureHTTP = false
	a := newTestAuth(t, clk, is)
	if _, e := a.AuthenticateToken(context.Background(), sign(t, jwt.SigningMethodES256, ecKey, "ec1", idp.claims(clk.Now()))); e == nil {
		t.Fatal("plain-http issuer used without allow_insecure_http")
	}
	if idp.disc.Load()+idp.fetches.Load() != 0 {
		t.Fatal("fetched over plain http")
	}
	if err := loopbackOnly("tcp", "10.0.0.1:80", nil); err == nil {
		t.Fatal("dialer allowed a non-loopback address")
	}
	if err := loopbackOnly("tcp", "127.0.0.1:80", nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		u        string
		insecure bool
		ok       bool
	}{
		{"https://idp.example", false, true},
		{"http://idp.example", true, false},
		{"http://127.0.0.1:8080", true, true},
		{"http://[::1]:8080", true, true},
		{"http://127.0.0.1:8080", false, false},
		{"https://user:pw@idp.example", false, false},
		{"file:///etc/passwd", true, false},
		{"idp.example", false, false},
	} {
		if ok := llm.CheckIssuerURL(c.u, c.insecure) == ""; ok != c.ok {
			t.Errorf("CheckIssuerURL(%q, %v) = %v", c.u, c.insecure, ok)
		}
	}
}

// T15: an SQL-injection corpus in Authorization is a plain 401.
func TestCredentialInjectionCorpus(t *testing.T) {
	idp, clk := newIdP(t), newClock()
	a := newTestAuth(t, clk, idp.issuer())
	corpus := []string{
		"' OR '1'='1", "' OR 1=1 --", "\"; DROP TABLE api_keys; --", "sk-' UNION SELECT hash FROM api_keys --",
		"sk-gw-1' OR '1'='1", "admin'--", "1; SELECT pg_sleep(10)", "sk-%27%20OR%201%3D1", "' OR ''='",
		"eyJhbGciOiJub25lIn0.eyJpc3MiOiInIE9SIDE9MSJ9.", "a.b.c' OR 1=1", "sk-\x00", strings.Repeat("'", 8000),
	}
	for _, c := range corpus {
		for _, h := range []http.Header{{"Authorization": {"Bearer " + c}}, {"X-Api-Key": {c}}} {
			if p, e := a.AuthenticateHeader(context.Background(), llm.EmptySnapshot(), h, clk.Now()); e == nil || e.Status != 401 {
				t.Fatalf("%q: %v %+v", c, e, p)
			}
		}
	}
}

func TestParseJWKSRejects(t *testing.T) {
	testKeys()
	small := func() string {
		k := jwkOf("k", &rsaKey1.PublicKey)
		k["n"] = b64u(rsaKey1.N.Bytes()[:64]) // 512 bits
		b, _ := json.Marshal(map[string]any{"keys": []any{k}})
		return string(b)
	}
	for name, doc := range map[string]string{
		"not json":       "nope",
		"no keys":        `{"keys":[]}`,
		"weak RSA":       small(),
		"private only":   `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`,
		"enc key":        `{"keys":[{"kty":"OKP","crv":"Ed25519","use":"enc","x":"` + b64u(edKey.Public().(ed25519.PublicKey)) + `"}]}`,
		"off-curve EC":   `{"keys":[{"kty":"EC","crv":"P-256","x":"` + b64u(make([]byte, 32)) + `","y":"` + b64u(make([]byte, 32)) + `"}]}`,
		"alg mismatch":   `{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"RS256","x":"` + b64u(make([]byte, 32)) + `"}]}`,
		"too many keys":  `{"keys":[` + strings.TrimSuffix(strings.Repeat(`{"kty":"x"},`, maxJWKSKeys+1), ",") + `]}`,
		"duplicate kids": string(jwksDup()),
	} {
		if _, err := parseJWKS([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func jwksDup() []byte {
	k := jwkOf("same", &rsaKey1.PublicKey)
	b, _ := json.Marshal(map[string]any{"keys": []any{k, k}})
	return b
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// FuzzAuthenticateToken: no input panics or is accepted (the fuzzer
// cannot forge a signature).
func FuzzAuthenticateToken(f *testing.F) {
	idp, clk := newIdP(f), newClock()
	a := newTestAuth(f, clk, idp.issuer())
	idp.down.Store(true) // keep the fuzzer off the network after the seed
	f.Add(sign(f, jwt.SigningMethodES256, ecKey, "ec1", jwt.MapClaims{"iss": "x"}))
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")
	f.Add("a.b.c")
	f.Add(strings.Repeat(".", 100))
	f.Add("Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"../x"}`)) + ".e30.AA")
	f.Fuzz(func(t *testing.T, s string) {
		if p, e := a.AuthenticateToken(context.Background(), s); e == nil {
			t.Fatalf("accepted %q: %+v", s, p)
		}
		h := http.Header{"Authorization": {"Bearer " + s}}
		if p, e := a.AuthenticateHeader(context.Background(), llm.EmptySnapshot(), h, clk.Now()); e == nil {
			t.Fatalf("accepted %q: %+v", s, p)
		}
	})
}

// FuzzParseJWKS: key documents never panic, and whatever parses is
// internally consistent.
func FuzzParseJWKS(f *testing.F) {
	testKeys()
	f.Add(jwksOf(map[string]crypto.Signer{"a": rsaKey1, "b": ecKey, "c": edKey, "d": ec384}))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		s, err := parseJWKS(doc)
		if err != nil {
			return
		}
		for _, k := range s.all {
			if k.fam == famNone || k.pub == nil {
				t.Fatalf("unusable key kept: %+v", k)
			}
		}
	})
}

// benchToken measures one validation of a token whose issuer's key set
// is cached: in full (the validated-token cache emptied before each call)
// unless repeat is set, when the same token is served from that cache.
func benchToken(b *testing.B, m jwt.SigningMethod, key any, kid string, repeat bool) {
	idp, clk := newIdP(b), newClock()
	a := newTestAuth(b, clk, idp.issuer())
	tok := sign(b, m, key, kid, idp.claims(clk.Now()))
	ctx := context.Background()
	if _, e := a.AuthenticateToken(ctx, tok); e != nil { // warm the key cache
		b.Fatal(e)
	}
	is := a.byIss[idp.srv.URL]
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if !repeat {
			is.verified.clear()
		}
		if _, e := a.AuthenticateToken(ctx, tok); e != nil {
			b.Fatal(e)
		}
	}
}

func BenchmarkJWTRS256(b *testing.B) {
	testKeys()
	benchToken(b, jwt.SigningMethodRS256, rsaKey1, "rsa1", false)
}
func BenchmarkJWTES256(b *testing.B) {
	testKeys()
	benchToken(b, jwt.SigningMethodES256, ecKey, "ec1", false)
}

// BenchmarkJWTRepeated is a client sending the same token again: served
// from the validated-token cache.
func BenchmarkJWTRepeated(b *testing.B) {
	testKeys()
	benchToken(b, jwt.SigningMethodES256, ecKey, "ec1", true)
}

// TestJWTVerifiedCache: a token validated once is served from the cache
// (no second signature check) until its exp, never past it; a refreshed
// key set (rotation) or a stale one sends it through the full path again;
// the cache is bounded; callers get their own copy of the principal.
func TestJWTVerifiedCache(t *testing.T) {
	idp, clk := newIdP(t), newClock()
	a := newTestAuth(t, clk, idp.issuer())
	ctx := context.Background()
	is := a.byIss[idp.srv.URL]
	c := idp.claims(clk.Now())
	c["exp"] = clk.Now().Add(2 * time.Minute).Unix()
	tok := sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", c)
	p1, e := a.AuthenticateToken(ctx, tok)
	if e != nil || is.verified.len() != 1 {
		t.Fatalf("first: %v, %d cached", e, is.verified.len())
	}
	p1.Owner = "mutated by a caller"
	p2, e := a.AuthenticateToken(ctx, tok)
	if e != nil || p2.ID != "corp:alice" || p2.Owner != "team-a" {
		t.Fatalf("cached: %+v %v", p2, e)
	}
	// Served from the cache: the entry is what answers (a forged entry for
	// the same token would be returned as is).
	sum := sha256.Sum256([]byte(tok))
	is.verified.mu.Lock()
	v := is.verified.m[sum]
	v.p.Name = "from-cache"
	is.verified.m[sum] = v
	is.verified.mu.Unlock()
	if p, _ := a.AuthenticateToken(ctx, tok); p == nil || p.Name != "from-cache" {
		t.Fatal("the second validation did not come from the cache")
	}
	// A refresh of the key set (here: the IdP rotated, a new kid asked
	// for it) makes the entry stale: full validation again.
	idp.setKeys(map[string]crypto.Signer{"rsa1": rsaKey1, "rsa2": rsaKey2})
	clk.Add(11 * time.Second)
	if _, e := a.AuthenticateToken(ctx, sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa2", idp.claims(clk.Now()))); e != nil {
		t.Fatal(e)
	}
	if p, e := a.AuthenticateToken(ctx, tok); e != nil || p.Name == "from-cache" {
		t.Fatalf("served from a cache entry of the previous key set: %+v %v", p, e)
	}
	// Past exp (within the leeway the full path decides; beyond it the
	// token is refused, not served from the cache).
	clk.Add(3 * time.Minute)
	if _, e := a.AuthenticateToken(ctx, tok); e == nil {
		t.Fatal("an expired token was accepted")
	}
	// Bounded.
	for i := range maxVerified + 5 {
		var s [sha256.Size]byte
		s[0], s[1], s[2] = byte(i), byte(i>>8), byte(i>>16)
		is.verified.put(s, verified{exp: clk.Now().Add(time.Hour)})
	}
	if n := is.verified.len(); n > maxVerified {
		t.Fatalf("%d cached tokens, bound %d", n, maxVerified)
	}
}
