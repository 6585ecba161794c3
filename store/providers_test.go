package store

import (
	"context"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/migrations"
)

// secretFamily is a stand-in family that takes the secrets "access_key"
// and "secret_key" and an option "region", as Bedrock will.
func secretFamily(p *llm.Provider) error {
	for name := range p.Secrets {
		if name != "access_key" && name != "secret_key" {
			return &fieldErr{"secrets." + name, "unknown secret"}
		}
	}
	var o struct {
		Region string `json:"region"`
	}
	if err := json.Unmarshal(p.Options, &o); err != nil || o.Region == "" {
		return &fieldErr{"options.region", "is required"}
	}
	if p.BaseURL == "" {
		p.BaseURL = "https://bedrock.example/" + o.Region
	}
	return nil
}

type fieldErr struct{ f, m string }

func (e *fieldErr) Error() string     { return e.f + ": " + e.m }
func (e *fieldErr) FieldName() string { return e.f }

// Secrets are encrypted at rest, bound to their provider and name,
// write-only (views list names only), kept by a PATCH that does not name
// them, removed by null, and validated by the family through the hook.
func TestProviderSecrets(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		s.validateHook = secretFamily
		ak, sk := "AKIA-canary-"+newID(""), "wJalr/canary+"+newID("")
		p, err := s.CreateProvider(ctx, ProviderInput{Name: "bedrock", Type: "bedrock", Options: json.RawMessage(` {"region": "eu-west-1"} `),
			Secrets: map[string]*string{"access_key": &ak, "secret_key": &sk}})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(p.SecretsSet, ",") != "access_key,secret_key" || string(p.Options) != `{"region":"eu-west-1"}` || p.BaseURL != "https://bedrock.example/eu-west-1" {
			t.Fatalf("created %+v", p)
		}
		snap, err := s.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sp := snap.Providers["bedrock"]; sp.Secrets["access_key"] != ak || sp.Secrets["secret_key"] != sk || string(sp.Options) != `{"region":"eu-west-1"}` {
			t.Fatalf("snapshot %+v", sp)
		}
		// PATCH without secrets, with "" and with the mask keeps them.
		for _, sec := range []map[string]*string{nil, {"secret_key": ptr("")}, {"secret_key": ptr("****")}} {
			if _, err := s.UpdateProvider(ctx, "bedrock", ProviderPatch{Secrets: sec, Options: ptr(json.RawMessage(`{"region":"us-east-1"}`))}); err != nil {
				t.Fatal(err)
			}
			snap, _ = s.LoadSnapshot(ctx)
			if snap.Providers["bedrock"].Secrets["secret_key"] != sk {
				t.Fatalf("secret lost by %v", sec)
			}
		}
		// Views and rows never hold a value.
		g, _ := s.GetProvider(ctx, "bedrock")
		l, _, _ := s.ListProviders(ctx, Page{})
		for _, v := range []any{p, g, l} {
			b, _ := json.Marshal(v)
			if strings.Contains(string(b), "canary") || !strings.Contains(string(b), `"secrets_set":["access_key","secret_key"]`) {
				t.Fatalf("view %s", b)
			}
		}
		var enc string
		if err := s.db.QueryRowContext(ctx, `SELECT secrets_enc FROM providers WHERE name = 'bedrock'`).Scan(&enc); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(enc, "canary") || !strings.Contains(enc, `"access_key"`) {
			t.Fatalf("stored secrets %s", enc)
		}
		// Null removes one; the family sees the remaining set.
		u, err := s.UpdateProvider(ctx, "bedrock", ProviderPatch{Secrets: map[string]*string{"access_key": nil}})
		if err != nil || strings.Join(u.SecretsSet, ",") != "secret_key" {
			t.Fatalf("remove: %+v %v", u.SecretsSet, err)
		}
		// The family's refusals are 400s naming the field.
		_, err = s.UpdateProvider(ctx, "bedrock", ProviderPatch{Secrets: map[string]*string{"session": ptr("x")}})
		wantValidation(t, err, "secrets.session")
		_, err = s.UpdateProvider(ctx, "bedrock", ProviderPatch{Options: ptr(json.RawMessage(`{}`))})
		wantValidation(t, err, "options.region")
		for _, bad := range []map[string]*string{{"Bad-Name": ptr("x")}, {"k": ptr("a\r\nb")}} {
			_, err = s.UpdateProvider(ctx, "bedrock", ProviderPatch{Secrets: bad})
			wantValidation(t, err, "secrets")
		}
		_, err = s.CreateProvider(ctx, ProviderInput{Name: "b2", Type: "bedrock", Options: json.RawMessage(`{"region":"x"}`), Secrets: map[string]*string{"access_key": ptr("****")}})
		wantValidation(t, err, "secrets.access_key")
		// A sealed secret is bound to its name: moved to another name it
		// does not decrypt.
		moved := strings.Replace(enc, `"secret_key"`, `"other_key"`, 1)
		if _, err := s.db.ExecContext(ctx, `UPDATE providers SET secrets_enc = $1 WHERE name = 'bedrock'`, moved); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LoadSnapshot(ctx); err == nil || strings.Contains(err.Error(), "canary") {
			t.Fatalf("moved ciphertext: %v", err)
		}
	})
}

// The families validate: base_url with a query string (which produced
// POST /v1?x=1/chat/completions), a fragment or credentials, and headers
// the transport owns, are refused at write with a 400 on the field.
func TestProviderFamilyValidation(t *testing.T) {
	s := openTest(t, Options{DataDir: t.TempDir(), EncryptionKey: testEncKey})
	ctx := context.Background()
	ok := ProviderInput{Name: "p", Type: llm.ProviderOpenAICompatible, BaseURL: "http://127.0.0.1:1/v1"}
	for _, u := range []string{"http://h/v1?x=1", "http://h/v1?", "http://h/v1#f", "http://u:p@h/v1", "gopher://h/"} {
		in := ok
		in.BaseURL = u
		_, err := s.CreateProvider(ctx, in)
		wantValidation(t, err, "base_url")
	}
	for _, h := range []string{"Host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "TE", "Trailer", "Keep-Alive", "Proxy-Authorization"} {
		in := ok
		in.Headers = map[string]string{h: "x"}
		_, err := s.CreateProvider(ctx, in)
		wantValidation(t, err, "headers")
	}
	in := ok
	in.Options = json.RawMessage(`{"organization":"o"}`)
	_, err := s.CreateProvider(ctx, in)
	wantValidation(t, err, "options")
	in = ProviderInput{Name: "o", Type: llm.ProviderOpenAI, Options: json.RawMessage(`{"organization":"org-1"}`)}
	p, err := s.CreateProvider(ctx, in)
	if err != nil || string(p.Options) != `{"organization":"org-1"}` {
		t.Fatalf("openai options: %+v %v", p, err)
	}
	// PATCH checks the merged result too.
	_, err = s.UpdateProvider(ctx, "o", ProviderPatch{BaseURL: ptr("https://api.example.com/v1?api-version=1")})
	wantValidation(t, err, "base_url")
	for _, raw := range []string{`[]`, `"x"`, `{`, `{"a":1} {}`, `{"a":"` + strings.Repeat("x", 17<<10) + `"}`} {
		_, err = s.UpdateProvider(ctx, "o", ProviderPatch{Options: ptr(json.RawMessage(raw))})
		wantValidation(t, err, "options")
	}
}

// store lists no provider types: without the hook any well-formed type
// is stored (the registry refuses unknown ones at load).
func TestProviderTypesAreTheFamiliesBusiness(t *testing.T) {
	s := openTest(t, Options{DataDir: t.TempDir(), EncryptionKey: testEncKey, ValidateProvider: func(*llm.Provider) error { return nil }})
	ctx := context.Background()
	if _, err := s.CreateProvider(ctx, ProviderInput{Name: "f", Type: "future-family", BaseURL: "https://x.example"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.CreateProvider(ctx, ProviderInput{Name: "g", Type: "Bad Type"})
	wantValidation(t, err, "type")
}

// Every configuration row carries the configuration version of the write
// that last changed it, and the snapshot carries the revisions.
func TestRevisions(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		version := func() int64 {
			v, err := s.Version(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		p := mustProvider(t, s, "p", "")
		if p.Revision == 0 || p.Revision != version() {
			t.Fatalf("provider revision %d, version %d", p.Revision, version())
		}
		m, err := s.CreateModel(ctx, ModelInput{Name: "m", Deployments: []llm.Deployment{{Provider: "p", Model: "x"}}})
		if err != nil || m.Revision != version() || m.Revision <= p.Revision {
			t.Fatalf("model revision %d (%v)", m.Revision, err)
		}
		k, _, err := s.CreateKey(ctx, KeyInput{Name: "k"})
		if err != nil || k.Revision != version() {
			t.Fatalf("key revision %d (%v)", k.Revision, err)
		}
		// A rename of the provider changes the models that use it.
		p2, err := s.UpdateProvider(ctx, "p", ProviderPatch{Name: ptr("p2")})
		if err != nil || p2.Revision != version() {
			t.Fatalf("updated provider revision %d (%v)", p2.Revision, err)
		}
		m2, _ := s.GetModel(ctx, "m")
		if m2.Revision != p2.Revision {
			t.Fatalf("renamed-into model revision %d, want %d", m2.Revision, p2.Revision)
		}
		k2, err := s.UpdateKey(ctx, k.ID, KeyPatch{Name: ptr("k2")})
		if err != nil || k2.Revision != version() {
			t.Fatalf("updated key revision %d (%v)", k2.Revision, err)
		}
		k3, err := s.RevokeKey(ctx, k.ID)
		if err != nil || k3.Revision != version() {
			t.Fatalf("revoked key revision %d (%v)", k3.Revision, err)
		}
		// A failed write changes no revision and no version.
		before := version()
		if _, err := s.UpdateProvider(ctx, "p2", ProviderPatch{BaseURL: ptr("ftp://x")}); err == nil {
			t.Fatal("bad write accepted")
		}
		if version() != before {
			t.Fatal("a failed write bumped the version")
		}
		k4, _, _ := s.CreateKey(ctx, KeyInput{Name: "live"})
		snap, err := s.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Providers["p2"].Revision != p2.Revision || snap.Models["m"].Revision != m2.Revision {
			t.Fatalf("snapshot revisions %d %d", snap.Providers["p2"].Revision, snap.Models["m"].Revision)
		}
		for _, sk := range snap.Keys {
			if sk.ID == k4.ID && sk.Revision != k4.Revision {
				t.Fatalf("snapshot key revision %d", sk.Revision)
			}
		}
	})
}

// Migration 00003 on a database that already holds configuration: every
// existing row gets the current config_version as its revision, providers
// get empty options and secrets, and the migration reverses cleanly.
func TestMigration00003(t *testing.T) {
	for _, dialect := range []string{DialectSQLite, DialectPostgres} {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			opts := Options{DataDir: t.TempDir(), EncryptionKey: testEncKey}
			gd := goose.DialectSQLite3
			if dialect == DialectPostgres {
				opts.URL, gd = pgTestURL(t), goose.DialectPostgres
			}
			s, err := Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			sub, _ := fs.Sub(migrations.FS, dialect)
			p, err := goose.NewProvider(gd, s.db, sub)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 2); err != nil {
				t.Fatal(err)
			}
			ts := s.tv(now())
			for _, q := range []string{
				`INSERT INTO providers (id, name, type, base_url, created_at, updated_at) VALUES ('prov_1', 'p', 'openai', 'https://x.example', $1, $1)`,
				`INSERT INTO models (id, name, created_at, updated_at) VALUES ('mdl_1', 'm', $1, $1)`,
				`INSERT INTO api_keys (id, name, prefix, hash, created_at) VALUES ('key_1', 'k', 'sk-sluice-ab', 'h1', $1)`,
			} {
				if _, err := s.db.ExecContext(ctx, q, ts); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if _, err := s.db.ExecContext(ctx, `UPDATE config_version SET version = 7`); err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 3); err != nil {
				t.Fatal(err)
			}
			var pr, mr, kr int64
			var options, secrets string
			if err := s.db.QueryRowContext(ctx, `SELECT revision, options, secrets_enc FROM providers`).Scan(&pr, &options, &secrets); err != nil {
				t.Fatal(err)
			}
			_ = s.db.QueryRowContext(ctx, `SELECT revision FROM models`).Scan(&mr)
			_ = s.db.QueryRowContext(ctx, `SELECT revision FROM api_keys`).Scan(&kr)
			if pr != 7 || mr != 7 || kr != 7 || options != "{}" || secrets != "{}" {
				t.Fatalf("after 00003: revisions %d %d %d, options %q, secrets %q", pr, mr, kr, options, secrets)
			}
			if _, err := p.DownTo(ctx, 2); err != nil {
				t.Fatalf("down: %v", err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("up again: %v", err)
			}
			snap, err := s.LoadSnapshot(ctx)
			if err != nil || snap.Providers["p"].Revision != 7 || snap.Models["m"].Revision != 7 {
				t.Fatalf("snapshot %+v %v", snap, err)
			}
		})
	}
}
