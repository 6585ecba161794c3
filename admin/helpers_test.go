package admin

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
	"github.com/sluice-ai/sluice/store"
)

const testAdminKey = "adm-0123456789abcdef0123456789abcdef"

type harness struct {
	t       *testing.T
	engine  *gin.Engine
	store   *store.Store
	changes atomic.Int64
	bodies  []string // every response body seen, for secret scans
}

func openStore(t *testing.T, dialect string) *store.Store {
	t.Helper()
	opts := store.Options{DataDir: t.TempDir(), EncryptionKey: strings.Repeat("ab", 32), ValidateProvider: providers.Options{}.Validate}
	if dialect == store.DialectPostgres {
		opts.URL = pgTestURL(t)
	}
	s, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func newHarness(t *testing.T, dialect string, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, store: openStore(t, dialect)}
	opts := Options{
		Store: h.store, AdminKey: testAdminKey,
		Metrics:  http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("sluice_up 1\n")) }),
		OnChange: func() { h.changes.Add(1) },
		// The database's admin keys, read afresh on every request.
		Snapshot: func() *llm.Snapshot {
			snap, err := h.store.LoadSnapshot(context.Background())
			if err != nil {
				t.Errorf("snapshot: %v", err)
				return nil
			}
			return snap
		},
	}
	if mod != nil {
		mod(&opts)
	}
	e, err := NewEngine(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.engine = e
	return h
}

// do sends a request with the admin key through the engine.
func (h *harness) do(method, path, body string) *httptest.ResponseRecorder {
	return h.doHeaders(method, path, body, map[string]string{"Authorization": "Bearer " + testAdminKey})
}

func (h *harness) doHeaders(method, path, body string, headers map[string]string) *httptest.ResponseRecorder {
	h.t.Helper()
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.engine.ServeHTTP(w, r)
	h.bodies = append(h.bodies, w.Body.String())
	return w
}

// expect checks the status and decodes the body into out (if non-nil).
func (h *harness) expect(w *httptest.ResponseRecorder, status int, out any) {
	h.t.Helper()
	if w.Code != status {
		h.t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
	}
	if out != nil {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			h.t.Fatalf("decode %s: %v", w.Body, err)
		}
	}
}

type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func (h *harness) expectError(w *httptest.ResponseRecorder, status int, param string) apiError {
	h.t.Helper()
	var e apiError
	h.expect(w, status, &e)
	if e.Error.Message == "" || e.Error.Type == "" {
		h.t.Fatalf("error shape: %s", w.Body)
	}
	if param != "" && (e.Error.Param == nil || !strings.HasPrefix(*e.Error.Param, param)) {
		h.t.Fatalf("param = %v, want %s: %s", e.Error.Param, param, w.Body)
	}
	return e
}

// forEachStore runs fn against SQLite and, when reachable, PostgreSQL.
func forEachStore(t *testing.T, fn func(t *testing.T, dialect string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, store.DialectSQLite) })
	t.Run("postgres", func(t *testing.T) { fn(t, store.DialectPostgres) })
}

func pgTestURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("SLUICE_TEST_DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	db, err := sql.Open("pgx", base)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if db != nil {
			db.Close()
		}
		if os.Getenv("SLUICE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("PostgreSQL unreachable: %v", err)
		}
		t.Skipf("PostgreSQL unreachable: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "sluice_admin_test_" + hex.EncodeToString(b)
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		db.Close()
	})
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
