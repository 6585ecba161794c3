package admin

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
	"github.com/sluice-ai/sluice/store"
)

// dumpTables returns every row of every table of db as text.
func dumpTables(t *testing.T, db *sql.DB, dialect string) string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if dialect == store.DialectPostgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) < 6 {
		t.Fatalf("only tables %v", tables)
	}
	var out strings.Builder
	for _, tbl := range tables {
		rows, err := db.Query(`SELECT * FROM "` + tbl + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out.WriteString(tbl)
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(&out, " %s=%v", cols[i], v)
			}
			out.WriteByte('\n')
		}
		rows.Close()
	}
	return out.String()
}

// TestDatabaseHoldsOnlyHashes (T15): after a provider with a canary
// credential, a gateway key and admin keys are created through the API, a
// dump of every table of the database (SQLite and PostgreSQL) holds none of
// the secrets nor any 8-byte part of one — keys only as their SHA-256 and
// display prefix, provider credentials only encrypted.
func TestDatabaseHoldsOnlyHashes(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		dir := t.TempDir()
		opts := store.Options{DataDir: dir, EncryptionKey: strings.Repeat("ab", 32), ValidateProvider: providers.Options{}.Validate}
		driver, dsn := "sqlite", "file:"+filepath.Join(dir, "sluice.db")+"?mode=ro"
		if dialect == store.DialectPostgres {
			opts.URL = pgTestURL(t)
			driver, dsn = "pgx", opts.URL
		}
		st, err := store.Open(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		h := &harness{t: t, store: st}
		h.engine, err = NewEngine(Options{Store: st, AdminKey: testAdminKey,
			Snapshot: func() *llm.Snapshot { s, _ := st.LoadSnapshot(context.Background()); return s }})
		if err != nil {
			t.Fatal(err)
		}
		canary := "sk-canary-" + randHex(16)
		hdrCanary := "sk-canary-" + randHex(16)
		h.expect(h.do("POST", "/admin/providers", fmt.Sprintf(`{"name":"up","type":"openai-compatible","base_url":"http://127.0.0.1:8000/v1","api_key":%q,"headers":{"api-key":%q}}`, canary, hdrCanary)), http.StatusCreated, nil)
		h.expect(h.do("POST", "/admin/providers", fmt.Sprintf(`{"name":"br","type":"bedrock","options":{"region":"us-east-1"},"secrets":{"access_key_id":"AKIA%s","secret_access_key":%q}}`, strings.ToUpper(randHex(8)), canary)), http.StatusCreated, nil)
		var gw createdKey
		h.expect(h.do("POST", "/admin/keys", `{"name":"gw"}`), http.StatusCreated, &gw)
		var adm createdAdmin
		h.expect(h.do("POST", "/admin/admin-keys", `{"name":"ops","role":"admin"}`), http.StatusCreated, &adm)
		var vw createdAdmin
		h.expect(h.doHeaders("POST", "/admin/admin-keys", `{"name":"ro","role":"viewer"}`, bearer(adm.Secret)), http.StatusCreated, &vw)

		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		dump := dumpTables(t, db, dialect)
		for _, want := range []string{llm.HashKey(gw.Secret), llm.HashKey(adm.Secret), llm.HashKey(vw.Secret), gw.Prefix, adm.Prefix} {
			if !strings.Contains(dump, want) {
				t.Fatalf("the dump lacks a key's hash or prefix")
			}
		}
		for name, secret := range map[string]string{
			"provider api_key": canary, "provider header": hdrCanary, "bootstrap key": testAdminKey,
			"gateway key": gw.Secret[llm.KeyDisplayLen:], "admin key": adm.Secret[llm.AdminKeyDisplayLen:], "viewer key": vw.Secret[llm.AdminKeyDisplayLen:],
		} {
			if where := leakAt(dump, secret); where != "" {
				t.Errorf("%s in the database dump: %s", name, where)
			}
		}
	})
}
