package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/providers"
)

const testEncKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// pgBaseURL returns the test PostgreSQL URL, or skips (or fails when
// SLUICE_REQUIRE_SERVICES=1) if it is unreachable.
func pgBaseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("SLUICE_TEST_DATABASE_URL")
	if u == "" {
		u = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	db, err := sql.Open("pgx", u)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err != nil {
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("PostgreSQL unreachable: %v", err)
		}
		t.Skipf("PostgreSQL unreachable: %v", err)
	}
	return u
}

// PGTestURL creates a fresh schema on the test PostgreSQL server and returns
// a URL whose search_path points at it; the schema is dropped at cleanup.
func pgTestURL(t testing.TB) string {
	t.Helper()
	base := pgBaseURL(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "sluice_test_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		db.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

type dialectEnv struct {
	name string
	// open returns a new migrated Store on the same database each call.
	open func(t testing.TB) *Store
}

// dialects returns the SQLite env and, when reachable, the PostgreSQL env.
func forEachDialect(t *testing.T, fn func(t *testing.T, env dialectEnv)) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		fn(t, dialectEnv{name: DialectSQLite, open: func(t testing.TB) *Store {
			return openTest(t, Options{DataDir: dir, EncryptionKey: testEncKey})
		}})
	})
	t.Run("postgres", func(t *testing.T) {
		u := pgTestURL(t)
		fn(t, dialectEnv{name: DialectPostgres, open: func(t testing.TB) *Store {
			return openTest(t, Options{URL: u, DataDir: t.TempDir(), EncryptionKey: testEncKey})
		}})
	})
}

// openTest opens and migrates a store; without a ValidateProvider hook it
// gets the one server injects (the provider families' validator).
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	ctx := context.Background()
	if opts.ValidateProvider == nil {
		opts.ValidateProvider = providers.Options{}.Validate
	}
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }
