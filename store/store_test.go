package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
)

func mustProvider(t *testing.T, s *Store, name, key string) Provider {
	t.Helper()
	in := ProviderInput{Name: name, Type: llm.ProviderOpenAICompatible, BaseURL: "http://127.0.0.1:8000/v1"}
	if key != "" {
		in.APIKey = &key
	}
	p, err := s.CreateProvider(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateProvider(%s): %v", name, err)
	}
	return p
}

func wantValidation(t *testing.T, err error, field string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want ValidationError on %s", err, field)
	}
	if field != "" && !strings.HasPrefix(ve.Field, field) {
		t.Fatalf("field = %q, want %q (%v)", ve.Field, field, err)
	}
}

func TestMigrateIdempotent(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		s := env.open(t)
		if s.Dialect() != env.name {
			t.Fatalf("Dialect = %q", s.Dialect())
		}
		for i := 0; i < 2; i++ {
			if err := s.Migrate(context.Background()); err != nil {
				t.Fatalf("Migrate again: %v", err)
			}
		}
		if err := s.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		v, err := s.Version(context.Background())
		if err != nil || v != 0 {
			t.Fatalf("Version = %d, %v", v, err)
		}
	})
}

func TestProviderCRUD(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		key := "sk-upstream-one"
		p, err := s.CreateProvider(ctx, ProviderInput{
			Name: "openai", Type: llm.ProviderOpenAI, APIKey: &key,
			Headers:  map[string]string{"x-org": "acme", "X-Api-Key": "hdr-secret"},
			Timeouts: TimeoutsInput{Connect: "5s", Idle: "90s"},
		})
		if err != nil {
			t.Fatalf("CreateProvider: %v", err)
		}
		if p.ID == "" || p.BaseURL != providers.DefaultOpenAIBaseURL || !p.APIKeySet || p.Timeouts.Connect != "5s" || p.Timeouts.Idle != "1m30s" || p.Timeouts.FirstByte != "" {
			t.Fatalf("created = %+v", p)
		}
		if p.Headers["X-Org"] != "acme" || p.Headers["X-Api-Key"] != "****" {
			t.Fatalf("headers = %v (credential-like header must be masked)", p.Headers)
		}
		for _, id := range []string{p.ID, "openai"} {
			g, err := s.GetProvider(ctx, id)
			if err != nil || g.ID != p.ID {
				t.Fatalf("GetProvider(%s) = %+v, %v", id, g, err)
			}
		}
		if _, err := s.GetProvider(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
		if _, err := s.CreateProvider(ctx, ProviderInput{Name: "openai", Type: llm.ProviderOpenAI}); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate: %v", err)
		}
		mustProvider(t, s, "local", "")
		list, total, err := s.ListProviders(ctx, Page{})
		if err != nil || total != 2 || len(list) != 2 || list[0].Name != "openai" || list[1].APIKeySet {
			t.Fatalf("list = %+v, %d, %v", list, total, err)
		}
		list, total, _ = s.ListProviders(ctx, Page{Page: 2, PageSize: 1})
		if total != 2 || len(list) != 1 || list[0].Name != "local" {
			t.Fatalf("page 2 = %+v", list)
		}

		// PATCH without api_key, with "" and with the mask keeps the key.
		for _, k := range []*string{nil, ptr(""), ptr("sk-****")} {
			if _, err := s.UpdateProvider(ctx, "openai", ProviderPatch{BaseURL: ptr("https://example.com/v1/"),
				Headers: &map[string]string{"X-Api-Key": "****", "x-new": "1"}, APIKey: k}); err != nil {
				t.Fatalf("UpdateProvider: %v", err)
			}
			snap, err := s.LoadSnapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sp := snap.Providers["openai"]
			if sp.APIKey != key || sp.BaseURL != "https://example.com/v1" || sp.Headers["X-Api-Key"] != "hdr-secret" || sp.Headers["X-New"] != "1" {
				t.Fatalf("snapshot provider = %+v", sp)
			}
			if _, ok := sp.Headers["X-Org"]; ok {
				t.Fatal("headers must be replaced as a whole")
			}
			if sp.Timeouts.Connect != 5*time.Second {
				t.Fatalf("timeouts = %+v", sp.Timeouts)
			}
		}
		if _, err := s.UpdateProvider(ctx, p.ID, ProviderPatch{APIKey: ptr("sk-upstream-two"), Timeouts: &TimeoutsPatch{FirstByte: ptr("2m")}}); err != nil {
			t.Fatal(err)
		}
		snap, _ := s.LoadSnapshot(ctx)
		if snap.Providers["openai"].APIKey != "sk-upstream-two" || snap.Providers["openai"].Timeouts.FirstByte != 2*time.Minute {
			t.Fatalf("new key not applied: %+v", snap.Providers["openai"].Timeouts)
		}
		if _, err := s.UpdateProvider(ctx, "openai", ProviderPatch{Name: ptr("local")}); !errors.Is(err, ErrConflict) {
			t.Fatalf("rename onto existing: %v", err)
		}
		if _, err := s.UpdateProvider(ctx, "openai", ProviderPatch{BaseURL: ptr("ftp://x")}); err == nil {
			t.Fatal("bad base_url accepted")
		}
		if _, err := s.UpdateProvider(ctx, "ghost", ProviderPatch{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("update missing: %v", err)
		}

		// Delete is refused while a model uses the provider; rename cascades.
		if _, err := s.CreateModel(ctx, ModelInput{Name: "gpt-4o", Deployments: []llm.Deployment{{Provider: "openai", Model: "gpt-4o"}}}); err != nil {
			t.Fatal(err)
		}
		err = s.DeleteProvider(ctx, "openai")
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "gpt-4o") {
			t.Fatalf("delete in use: %v", err)
		}
		if _, err := s.UpdateProvider(ctx, "openai", ProviderPatch{Name: ptr("oai")}); err != nil {
			t.Fatal(err)
		}
		m, _ := s.GetModel(ctx, "gpt-4o")
		if m.Deployments[0].Provider != "oai" {
			t.Fatalf("rename did not cascade: %+v", m.Deployments)
		}
		if err := s.DeleteModel(ctx, "gpt-4o"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteProvider(ctx, "oai"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteProvider(ctx, "oai"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
	})
}

func TestProviderValidation(t *testing.T) {
	s := openTest(t, Options{DataDir: t.TempDir(), EncryptionKey: testEncKey})
	ok := ProviderInput{Name: "p", Type: llm.ProviderOpenAICompatible, BaseURL: "http://localhost:1/v1"}
	tests := []struct {
		name  string
		edit  func(*ProviderInput)
		field string
	}{
		{"empty name", func(in *ProviderInput) { in.Name = "" }, "name"},
		{"bad name", func(in *ProviderInput) { in.Name = "a b" }, "name"},
		{"leading dot", func(in *ProviderInput) { in.Name = ".a" }, "name"},
		{"long name", func(in *ProviderInput) { in.Name = strings.Repeat("a", 65) }, "name"},
		{"type", func(in *ProviderInput) { in.Type = "mystery" }, "type"},
		{"compatible needs url", func(in *ProviderInput) { in.BaseURL = "" }, "base_url"},
		{"relative url", func(in *ProviderInput) { in.BaseURL = "/v1" }, "base_url"},
		{"scheme", func(in *ProviderInput) { in.BaseURL = "file:///etc/passwd" }, "base_url"},
		{"userinfo", func(in *ProviderInput) { in.BaseURL = "http://u:p@h/v1" }, "base_url"},
		{"header CRLF", func(in *ProviderInput) { in.Headers = map[string]string{"x": "a\r\nb: c"} }, "headers"},
		{"header NUL", func(in *ProviderInput) { in.Headers = map[string]string{"x": "a\x00"} }, "headers"},
		{"header LF", func(in *ProviderInput) { in.Headers = map[string]string{"x": "a\nb"} }, "headers"},
		{"header name", func(in *ProviderInput) { in.Headers = map[string]string{"bad name": "v"} }, "headers"},
		{"header name colon", func(in *ProviderInput) { in.Headers = map[string]string{"a:b": "v"} }, "headers"},
		{"timeout parse", func(in *ProviderInput) { in.Timeouts.Connect = "5" }, "timeouts.connect"},
		{"timeout negative", func(in *ProviderInput) { in.Timeouts.FirstByte = "-1s" }, "timeouts.first_byte"},
		{"timeout too big", func(in *ProviderInput) { in.Timeouts.Idle = "61m" }, "timeouts.idle"},
		{"masked key", func(in *ProviderInput) { in.APIKey = ptr("sk-****abcd") }, "api_key"},
		{"key CRLF", func(in *ProviderInput) { in.APIKey = ptr("sk-a\r\n") }, "api_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok
			tt.edit(&in)
			_, err := s.CreateProvider(context.Background(), in)
			wantValidation(t, err, tt.field)
		})
	}
	if _, err := s.CreateProvider(context.Background(), ok); err != nil {
		t.Fatalf("valid input rejected: %v", err)
	}
}

func TestAPIKeyNeverReadable(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		canary := "sk-canary-" + newID("")
		p := mustProvider(t, s, "canary", canary)
		views := []any{p}
		g, _ := s.GetProvider(ctx, "canary")
		l, _, _ := s.ListProviders(ctx, Page{})
		u, err := s.UpdateProvider(ctx, "canary", ProviderPatch{BaseURL: ptr("http://127.0.0.1:9/v1")})
		if err != nil {
			t.Fatal(err)
		}
		views = append(views, g, l, u)
		for _, v := range views {
			b, _ := json.Marshal(v)
			if strings.Contains(string(b), canary) || strings.Contains(string(b), canary[10:18]) {
				t.Fatalf("canary in view %s", b)
			}
			if !strings.Contains(string(b), `"api_key_set":true`) {
				t.Fatalf("api_key_set missing: %s", b)
			}
		}
		var enc string
		if err := s.db.QueryRowContext(ctx, `SELECT api_key_enc FROM providers WHERE name = 'canary'`).Scan(&enc); err != nil {
			t.Fatal(err)
		}
		if enc == "" || strings.Contains(enc, canary) || strings.Contains(enc, canary[10:18]) {
			t.Fatalf("stored api key is not ciphertext: %q", enc)
		}
		// Ciphertext is bound to the row: copying it to another provider fails to decrypt.
		other := mustProvider(t, s, "other", "")
		if _, err := s.db.ExecContext(ctx, `UPDATE providers SET api_key_enc = $1 WHERE id = $2`, enc, other.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LoadSnapshot(ctx); err == nil || strings.Contains(err.Error(), canary) {
			t.Fatalf("swapped ciphertext: %v", err)
		}
	})
}

func TestModelsCRUD(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		mustProvider(t, s, "a", "k")
		mustProvider(t, s, "b", "")
		deps := []llm.Deployment{
			{Provider: "a", Model: "m1", Weight: 3, Prices: llm.Prices{InputPerMTok: 0.15, OutputPerMTok: 0.6}},
			{Provider: "b", Model: "m1-local"},
		}
		m, err := s.CreateModel(ctx, ModelInput{Name: "fast", Deployments: deps})
		if err != nil {
			t.Fatal(err)
		}
		if m.ID == "" || len(m.Deployments) != 2 || m.Deployments[0].InputPerMTok != 0.15 {
			t.Fatalf("model = %+v", m)
		}
		if _, err := s.CreateModel(ctx, ModelInput{Name: "fast", Deployments: deps}); !errors.Is(err, ErrConflict) {
			t.Fatalf("dup: %v", err)
		}
		bad := []struct {
			name  string
			in    ModelInput
			field string
		}{
			{"empty name", ModelInput{Deployments: deps}, "name"},
			{"space", ModelInput{Name: "a b", Deployments: deps}, "name"},
			{"control", ModelInput{Name: "a\x01", Deployments: deps}, "name"},
			{"long", ModelInput{Name: strings.Repeat("x", 129), Deployments: deps}, "name"},
			{"no deployments", ModelInput{Name: "x"}, "deployments"},
			{"unknown provider", ModelInput{Name: "x", Deployments: []llm.Deployment{{Provider: "zz", Model: "m"}}}, "deployments[0].provider"},
			{"empty model", ModelInput{Name: "x", Deployments: []llm.Deployment{{Provider: "a"}}}, "deployments[0].model"},
			{"weight", ModelInput{Name: "x", Deployments: []llm.Deployment{{Provider: "a", Model: "m", Weight: -1}}}, "deployments[0].weight"},
			{"price", ModelInput{Name: "x", Deployments: []llm.Deployment{{Provider: "a", Model: "m", Prices: llm.Prices{OutputPerMTok: -0.1}}}}, "deployments[0].output_price"},
		}
		for _, tt := range bad {
			_, err := s.CreateModel(ctx, tt.in)
			wantValidation(t, err, tt.field)
		}
		got, err := s.GetModel(ctx, m.ID)
		if err != nil || got.Name != "fast" {
			t.Fatalf("get = %+v, %v", got, err)
		}
		up, err := s.UpdateModel(ctx, "fast", ModelPatch{Deployments: &[]llm.Deployment{{Provider: "b", Model: "only"}}})
		if err != nil || len(up.Deployments) != 1 || up.Deployments[0].Model != "only" || up.Name != "fast" {
			t.Fatalf("update = %+v, %v", up, err)
		}
		if _, err := s.UpdateModel(ctx, "fast", ModelPatch{Deployments: &[]llm.Deployment{}}); err == nil {
			t.Fatal("empty deployments accepted")
		}
		up, err = s.UpdateModel(ctx, m.ID, ModelInput{Name: "renamed", Deployments: deps}.AsPatch())
		if err != nil || up.Name != "renamed" || len(up.Deployments) != 2 {
			t.Fatalf("put = %+v, %v", up, err)
		}
		list, total, err := s.ListModels(ctx, Page{PageSize: 10})
		if err != nil || total != 1 || list[0].Name != "renamed" {
			t.Fatalf("list = %+v %d %v", list, total, err)
		}
		if err := s.DeleteModel(ctx, "renamed"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetModel(ctx, "renamed"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})
}

func TestKeys(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
		k, secret, err := s.CreateKey(ctx, KeyInput{Name: "team a", Models: []string{"fast"}, ExpiresAt: &exp, Metadata: map[string]string{"team": "a"}})
		if err != nil {
			t.Fatal(err)
		}
		if llm.ParseKey(secret) != llm.KeyGateway || len(secret) != len("sk-sluice-")+33+6 {
			t.Fatalf("secret format %q", secret)
		}
		if k.Prefix != secret[:12] || k.ExpiresAt == nil || !k.ExpiresAt.Equal(exp) || k.RevokedAt != nil {
			t.Fatalf("key = %+v", k)
		}
		sum := sha256.Sum256([]byte(secret))
		hash := hex.EncodeToString(sum[:])
		var stored string
		if err := s.db.QueryRowContext(ctx, `SELECT hash FROM api_keys WHERE id = $1`, k.ID).Scan(&stored); err != nil || stored != hash {
			t.Fatalf("stored hash %q, %v", stored, err)
		}
		var n int
		_ = s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys WHERE hash = $1 OR prefix = $1 OR name = $1 OR metadata LIKE $2`, secret, "%"+secret[12:]+"%").Scan(&n)
		if n != 0 {
			t.Fatal("secret stored in clear")
		}
		b, _ := json.Marshal(k)
		if strings.Contains(string(b), hash) || strings.Contains(string(b), secret) || strings.Contains(string(b), `"hash"`) {
			t.Fatalf("view leaks: %s", b)
		}
		_, secret2, _ := s.CreateKey(ctx, KeyInput{Name: "b"})
		if secret2 == secret {
			t.Fatal("secrets repeat")
		}
		if _, _, err := s.CreateKey(ctx, KeyInput{}); err == nil {
			t.Fatal("empty name accepted")
		}
		if _, _, err := s.CreateKey(ctx, KeyInput{Name: "x", Models: []string{"a b"}}); err == nil {
			t.Fatal("bad model accepted")
		}

		snap, err := s.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sk := snap.Keys[hash]
		if sk == nil || sk.ID != k.ID || !sk.Allows("fast") || sk.Allows("other") || sk.Metadata["team"] != "a" || !sk.ExpiresAt.Equal(exp) {
			t.Fatalf("snapshot key = %+v", sk)
		}

		var patch KeyPatch
		if err := json.Unmarshal([]byte(`{"expires_at":null,"disabled":true,"models":[]}`), &patch); err != nil {
			t.Fatal(err)
		}
		u, err := s.UpdateKey(ctx, k.ID, patch)
		if err != nil || u.ExpiresAt != nil || !u.Disabled || len(u.Models) != 0 || u.Name != "team a" || u.Metadata["team"] != "a" {
			t.Fatalf("update = %+v, %v", u, err)
		}
		patch = KeyPatch{}
		if err := json.Unmarshal([]byte(`{"name":"renamed"}`), &patch); err != nil || patch.ExpiresAt.Set {
			t.Fatalf("absent expires_at must not be Set: %+v %v", patch, err)
		}
		u, _ = s.UpdateKey(ctx, k.ID, patch)
		if u.Name != "renamed" || !u.Disabled {
			t.Fatalf("partial update = %+v", u)
		}

		r, err := s.RevokeKey(ctx, k.ID)
		if err != nil || r.RevokedAt == nil || !r.Disabled {
			t.Fatalf("revoke = %+v, %v", r, err)
		}
		g, err := s.GetKey(ctx, k.ID)
		if err != nil || g.RevokedAt == nil || !g.RevokedAt.Equal(*r.RevokedAt) {
			t.Fatalf("get revoked = %+v, %v", g, err)
		}
		if _, err := s.UpdateKey(ctx, k.ID, KeyPatch{Disabled: ptr(false)}); !errors.Is(err, ErrConflict) {
			t.Fatalf("update revoked: %v", err)
		}
		snap, _ = s.LoadSnapshot(ctx)
		if _, ok := snap.Keys[hash]; ok || len(snap.Keys) != 1 {
			t.Fatalf("revoked key in snapshot: %d keys", len(snap.Keys))
		}
		list, total, err := s.ListKeys(ctx, Page{})
		if err != nil || total != 2 || len(list) != 2 {
			t.Fatalf("list = %d %d %v", len(list), total, err)
		}
		if _, err := s.RevokeKey(ctx, "key_missing"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoke missing: %v", err)
		}
	})
}

func TestSnapshotAndVersion(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		v0, _ := s.Version(ctx)
		mustProvider(t, s, "p1", "secret-1")
		mustProvider(t, s, "p2", "")
		if _, err := s.CreateModel(ctx, ModelInput{Name: "m", Deployments: []llm.Deployment{{Provider: "p1", Model: "x", Weight: 2}}}); err != nil {
			t.Fatal(err)
		}
		_, secret, _ := s.CreateKey(ctx, KeyInput{Name: "k"})
		v1, _ := s.Version(ctx)
		if v1 != v0+4 {
			t.Fatalf("version %d -> %d, want +4", v0, v1)
		}
		// Failed writes do not bump.
		_, _ = s.CreateProvider(ctx, ProviderInput{Name: "p1", Type: llm.ProviderOpenAI})
		_ = s.DeleteProvider(ctx, "p1")
		if v, _ := s.Version(ctx); v != v1 {
			t.Fatalf("failed writes bumped version to %d", v)
		}
		snap, err := s.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Version != v1 || len(snap.Providers) != 2 || len(snap.Models) != 1 || len(snap.Keys) != 1 {
			t.Fatalf("snapshot = %+v", snap)
		}
		p := snap.Providers["p1"]
		if p.APIKey != "secret-1" || p.Type != llm.ProviderOpenAICompatible || p.UpdatedAt.IsZero() || p.ID == "" {
			t.Fatalf("provider = %+v", p)
		}
		if snap.Providers["p2"].APIKey != "" {
			t.Fatal("p2 has a key")
		}
		if m := snap.Models["m"]; m == nil || m.Deployments[0].Weight != 2 || m.CreatedAt.IsZero() {
			t.Fatalf("model = %+v", m)
		}
		if k := snap.Keys[llm.HashKey(secret)]; k == nil || k.Name != "k" || k.Prefix != secret[:12] {
			t.Fatalf("key = %+v", k)
		}
	})
}

// Deployment ids are the server's: new deployments get fresh "dep_" ids,
// ids survive updates that keep the deployment (by id or by provider and
// upstream model) and provider renames, and a client cannot choose one.
func TestDeploymentIDsStable(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		mustProvider(t, s, "a", "k")
		mustProvider(t, s, "b", "")
		m, err := s.CreateModel(ctx, ModelInput{Name: "fast", Deployments: []llm.Deployment{
			{Provider: "a", Model: "m1"}, {Provider: "b", Model: "m2"}}})
		if err != nil {
			t.Fatal(err)
		}
		a, b := m.Deployments[0].ID, m.Deployments[1].ID
		if !strings.HasPrefix(a, "dep_") || !strings.HasPrefix(b, "dep_") || a == b {
			t.Fatalf("ids %q %q", a, b)
		}
		// A client-chosen id is refused on create and when foreign on update.
		_, err = s.CreateModel(ctx, ModelInput{Name: "x", Deployments: []llm.Deployment{{ID: a, Provider: "a", Model: "m1"}}})
		wantValidation(t, err, "deployments[0].id")
		other, err := s.CreateModel(ctx, ModelInput{Name: "other", Deployments: []llm.Deployment{{Provider: "a", Model: "m1"}}})
		if err != nil {
			t.Fatal(err)
		}
		if other.Deployments[0].ID == a {
			t.Fatal("two models share a deployment id")
		}
		_, err = s.UpdateModel(ctx, "fast", ModelPatch{Deployments: &[]llm.Deployment{{ID: other.Deployments[0].ID, Provider: "a", Model: "m1"}}})
		wantValidation(t, err, "deployments[0].id")
		_, err = s.UpdateModel(ctx, "fast", ModelPatch{Deployments: &[]llm.Deployment{{ID: a, Provider: "a", Model: "m1"}, {ID: a, Provider: "b", Model: "m2"}}})
		wantValidation(t, err, "deployments[1].id")
		// Kept by id (even with a new upstream model), inherited by target, or new.
		up, err := s.UpdateModel(ctx, "fast", ModelPatch{Deployments: &[]llm.Deployment{
			{Provider: "b", Model: "m2", Weight: 5}, {ID: a, Provider: "a", Model: "m1-new"}, {Provider: "a", Model: "m3"}}})
		if err != nil {
			t.Fatal(err)
		}
		if up.Deployments[0].ID != b || up.Deployments[1].ID != a || up.Deployments[2].ID == a || up.Deployments[2].ID == b {
			t.Fatalf("after update: %+v", up.Deployments)
		}
		// A provider rename keeps every id.
		if _, err := s.UpdateProvider(ctx, "b", ProviderPatch{Name: ptr("b2")}); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetModel(ctx, "fast")
		if err != nil {
			t.Fatal(err)
		}
		if got.Deployments[0].ID != b || got.Deployments[0].Provider != "b2" {
			t.Fatalf("after rename: %+v", got.Deployments)
		}
		snap, err := s.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Models["fast"].Deployments[0].ID != b {
			t.Fatalf("snapshot ids: %+v", snap.Models["fast"].Deployments)
		}
	})
}
