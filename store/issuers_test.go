package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

func TestIssuerValidation(t *testing.T) {
	s := openTest(t, Options{DataDir: t.TempDir(), EncryptionKey: testEncKey})
	ctx := context.Background()
	ok := func() IssuerInput {
		return IssuerInput{Name: "corp", Issuer: "https://idp.example.com", Audiences: []string{"sluice"}}
	}
	for _, c := range []struct {
		field string
		edit  func(*IssuerInput)
	}{
		{"name", func(in *IssuerInput) { in.Name = "bad name" }},
		{"issuer", func(in *IssuerInput) { in.Issuer = "http://idp.example.com" }},
		{"allow_insecure_http", func(in *IssuerInput) { in.AllowInsecureHTTP = true }},
		{"issuer", func(in *IssuerInput) { in.Issuer, in.AllowInsecureHTTP = "http://10.0.0.1", true }},
		{"issuer", func(in *IssuerInput) { in.Issuer = "file:///etc/passwd" }},
		{"issuer", func(in *IssuerInput) { in.Issuer = "https://u:p@idp.example.com" }},
		{"jwks_uri", func(in *IssuerInput) { in.JWKSURI = "http://idp.example.com/keys" }},
		{"audiences", func(in *IssuerInput) { in.Audiences = nil }},
		{"algorithms", func(in *IssuerInput) { in.Algorithms = []string{"none"} }},
		{"algorithms", func(in *IssuerInput) { in.Algorithms = []string{"HS256"} }},
		{"hs256_secret", func(in *IssuerInput) { in.HS256Secret = ptr(strings.Repeat("s", 32)) }},
		{"hs256_secret", func(in *IssuerInput) { in.Algorithms, in.HS256Secret = []string{"HS256"}, ptr("short") }},
		{"hs256_secret", func(in *IssuerInput) { in.Algorithms, in.HS256Secret = []string{"HS256"}, ptr("****abcd") }},
		{"leeway", func(in *IssuerInput) { in.Leeway = ptr(Leeway(time.Hour)) }},
		{"claims.team", func(in *IssuerInput) { in.Claims.Team = "a b" }},
		{"limits.rpm", func(in *IssuerInput) { in.Limits.RPM = -1 }},
	} {
		in := ok()
		c.edit(&in)
		_, err := s.CreateIssuer(ctx, in)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%+v: got %v, want a %s validation error", in, err, c.field)
		}
	}
	// Loopback with the flag is fine; so is https.
	in := ok()
	in.Issuer, in.AllowInsecureHTTP = "http://127.0.0.1:9999", true
	if _, err := s.CreateIssuer(ctx, in); err != nil {
		t.Fatal(err)
	}
	in = ok()
	in.Name = "other"
	in.Issuer = "http://127.0.0.1:9999"
	in.AllowInsecureHTTP = true
	if _, err := s.CreateIssuer(ctx, in); !errors.Is(err, ErrConflict) {
		t.Fatalf("same issuer URL twice: %v", err)
	}
}

func TestIssuerCRUDAndSecret(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		s := env.open(t)
		ctx := context.Background()
		secret := "hs-canary-" + strings.Repeat("z", 32)
		is, err := s.CreateIssuer(ctx, IssuerInput{Name: "corp", Issuer: "https://idp.example.com", Audiences: []string{"sluice"},
			Algorithms: []string{"RS256", "HS256"}, HS256Secret: &secret, Models: []string{"m1"},
			Claims: llm.ClaimMapping{Team: "org", Models: "scope"}, Limits: llm.Limits{RPM: 5}})
		if err != nil {
			t.Fatal(err)
		}
		view, _ := json.Marshal(is)
		if strings.Contains(string(view), "canary") || !is.HS256SecretSet || time.Duration(is.Leeway) != llm.DefaultJWTLeeway {
			t.Fatalf("view %s", view)
		}
		var enc string
		if err := s.rdb.QueryRowContext(ctx, `SELECT secret_enc FROM issuers WHERE id = $1`, is.ID).Scan(&enc); err != nil || strings.Contains(enc, "canary") {
			t.Fatalf("secret at rest: %q %v", enc, err)
		}
		snap, err := s.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := snap.Issuers["corp"]
		if got == nil || got.HS256Secret != secret || got.Limits.RPM != 5 || got.Claims.Team != "org" || got.Leeway != 30*time.Second {
			t.Fatalf("snapshot %+v", got)
		}
		// A PUT echoing the masked placeholder keeps the secret.
		upd, err := s.UpdateIssuer(ctx, "corp", IssuerInput{Name: "corp", Issuer: "https://idp.example.com", Audiences: []string{"sluice", "x"},
			Algorithms: []string{"RS256", "HS256"}, HS256Secret: ptr("****")}.AsPatch())
		if err != nil || !upd.HS256SecretSet || len(upd.Audiences) != 2 || len(upd.Models) != 0 {
			t.Fatalf("%+v %v", upd, err)
		}
		snap, _ = s.LoadSnapshot(ctx)
		if snap.Issuers["corp"].HS256Secret != secret {
			t.Fatal("placeholder replaced the secret")
		}
		// Removing the secret while HS256 stays listed is refused; both together work.
		var p IssuerPatch
		if err := json.Unmarshal([]byte(`{"hs256_secret":null}`), &p); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateIssuer(ctx, is.ID, p); err == nil {
			t.Fatal("HS256 without a secret accepted")
		}
		if err := json.Unmarshal([]byte(`{"hs256_secret":null,"algorithms":["ES256"],"leeway":5}`), &p); err != nil {
			t.Fatal(err)
		}
		upd, err = s.UpdateIssuer(ctx, is.ID, p)
		if err != nil || upd.HS256SecretSet || time.Duration(upd.Leeway) != 5*time.Second {
			t.Fatalf("%+v %v", upd, err)
		}
		list, total, err := s.ListIssuers(ctx, Page{})
		if err != nil || total != 1 || len(list) != 1 {
			t.Fatalf("%v %d %v", list, total, err)
		}
		if err := s.DeleteIssuer(ctx, "corp"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetIssuer(ctx, is.ID); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	})
}

func TestSpendSinceSubject(t *testing.T) {
	s := openTest(t, Options{DataDir: t.TempDir(), EncryptionKey: testEncKey})
	ctx := context.Background()
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	recs := []llm.Record{
		{ID: "j1", Time: at, PrincipalID: "corp:alice", PrincipalKind: llm.PrincipalJWT, Status: llm.StatusOK, HTTPStatus: 200, CostMicros: 10, Usage: llm.Usage{PromptTokens: 1}},
		{ID: "j2", Time: at, PrincipalID: "corp:alice", PrincipalKind: llm.PrincipalKey, Status: llm.StatusOK, HTTPStatus: 200, CostMicros: 100},
	}
	if _, err := s.InsertUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	m, tok, err := s.SpendSince(ctx, SpendSubject, "corp:alice", at)
	if err != nil || m != 10 || tok != 1 {
		t.Fatalf("%d %d %v", m, tok, err)
	}
}
