package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/auth"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/store"
)

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const previousAdminKey = "prev-0123456789abcdef0123456789abcdef"

type createdAdmin struct {
	store.AdminKey
	Secret string `json:"key"`
}

// roleHarness is a harness with a settable clock, a previous bootstrap key
// and logs captured as JSON.
type roleHarness struct {
	*harness
	logs  *syncBuffer
	clock *atomic.Int64 // unix nanoseconds
}

func newRoleHarness(t *testing.T, dialect string) *roleHarness {
	t.Helper()
	rh := &roleHarness{logs: &syncBuffer{}, clock: &atomic.Int64{}}
	rh.clock.Store(time.Now().UnixNano())
	rh.harness = newHarness(t, dialect, func(o *Options) {
		o.UI = uiStub
		o.Health = func(context.Context) any { return []string{} }
		o.Pprof = true
		o.PreviousAdminKeys = []string{previousAdminKey}
		o.Logger = slog.New(slog.NewJSONHandler(rh.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.Now = func() time.Time { return time.Unix(0, rh.clock.Load()) }
		// The issuers of the current configuration, compiled afresh (HS256
		// needs no fetch) on the harness's clock.
		o.Tokens = func() *auth.Authenticator {
			snap := o.Snapshot()
			if snap == nil {
				return nil
			}
			a, _ := auth.NewAuthenticator(nil, snap.Issuers, auth.Options{Clock: func() time.Time { return time.Unix(0, rh.clock.Load()) }})
			return a
		}
	})
	return rh
}

// adminKey creates an admin key with body, using the credential as.
func (rh *roleHarness) adminKey(as, body string) createdAdmin {
	rh.t.Helper()
	w := rh.doHeaders("POST", "/admin/admin-keys", body, map[string]string{"Authorization": "Bearer " + as})
	var k createdAdmin
	rh.expect(w, http.StatusCreated, &k)
	if w.Header().Get("Cache-Control") != "no-store" {
		rh.t.Fatalf("admin key creation without Cache-Control: no-store")
	}
	return k
}

func bearer(k string) map[string]string { return map[string]string{"Authorization": "Bearer " + k} }

// TestAdminKeyRoles: keys created through /admin/admin-keys authenticate
// with their role; a viewer reads but never writes nor sees admin keys; a
// disabled, expired or revoked key is refused; the previous bootstrap key
// works during a rotation; writes are audited with the principal's id and
// never a secret.
func TestAdminKeyRoles(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		rh := newRoleHarness(t, dialect)
		viewer := rh.adminKey(testAdminKey, `{"name":"grafana","role":"viewer"}`)
		adm := rh.adminKey(testAdminKey, `{"name":"ops","role":"admin"}`)
		if llm.ParseKey(viewer.Secret) != llm.KeyAdmin || viewer.CreatedBy != "bootstrap" || viewer.Prefix != viewer.Secret[:llm.AdminKeyDisplayLen] {
			t.Fatalf("viewer key %+v", viewer.AdminKey)
		}
		// An admin key can create admin keys; created_by names it.
		sub := rh.adminKey(adm.Secret, `{"name":"ci","role":"viewer"}`)
		if sub.CreatedBy != adm.ID {
			t.Fatalf("created_by = %q, want %q", sub.CreatedBy, adm.ID)
		}
		// Roles.
		var who Principal
		rh.expect(rh.doHeaders("GET", "/admin/whoami", "", bearer(viewer.Secret)), 200, &who)
		if who.Role != llm.RoleViewer || who.ID != viewer.ID || who.Kind != PrincipalAdminKey || who.Prefix != viewer.Prefix {
			t.Fatalf("whoami = %+v", who)
		}
		rh.expect(rh.doHeaders("GET", "/admin/whoami", "", bearer(previousAdminKey)), 200, &who)
		if who.Role != llm.RoleAdmin || who.ID != "bootstrap-previous" {
			t.Fatalf("whoami previous = %+v", who)
		}
		rh.expect(rh.doHeaders("GET", "/admin/providers", "", bearer(viewer.Secret)), 200, nil)
		for _, r := range []struct{ method, path, body string }{
			{"POST", "/admin/providers", `{"name":"p","type":"openai","api_key":"x"}`},
			{"POST", "/admin/keys", `{"name":"k"}`},
			{"POST", "/admin/admin-keys", `{"name":"esc","role":"admin"}`},
			{"PATCH", "/admin/admin-keys/" + viewer.ID, `{"role":"admin"}`},
			{"DELETE", "/admin/admin-keys/" + adm.ID, ""},
			{"GET", "/admin/admin-keys", ""},
			{"GET", "/admin/admin-keys/" + viewer.ID, ""},
			{"GET", "/debug/pprof/heap", ""},
		} {
			w := rh.doHeaders(r.method, r.path, r.body, bearer(viewer.Secret))
			if e := rh.expectError(w, http.StatusForbidden, ""); e.Error.Type != "permission_error" {
				t.Fatalf("%s %s as viewer: %s", r.method, r.path, w.Body)
			}
		}
		var p store.Provider
		rh.expect(rh.doHeaders("POST", "/admin/providers", `{"name":"p","type":"openai","api_key":"sk-upstream-secret-0123456789"}`, bearer(adm.Secret)), 201, &p)
		var list listResponse[store.AdminKey]
		rh.expect(rh.doHeaders("GET", "/admin/admin-keys", "", bearer(adm.Secret)), 200, &list)
		if list.Total != 3 {
			t.Fatalf("admin keys total %d", list.Total)
		}
		// A viewer promoted to admin may write at once.
		rh.expect(rh.do("PATCH", "/admin/admin-keys/"+sub.ID, `{"role":"admin"}`), 200, nil)
		rh.expect(rh.doHeaders("PATCH", "/admin/providers/p", `{"base_url":"https://example.com/v1"}`, bearer(sub.Secret)), 200, nil)
		rh.expectError(rh.do("POST", "/admin/admin-keys", `{"name":"x","role":"root"}`), 400, "role")
		rh.expectError(rh.do("POST", "/admin/admin-keys", `{"name":"x","role":"admin","hash":"00"}`), 400, "hash")

		// Disabled, expired, revoked: 401, the same body as a wrong key.
		rh.expect(rh.do("PATCH", "/admin/admin-keys/"+sub.ID, `{"disabled":true}`), 200, nil)
		refused := func(secret, why string) {
			t.Helper()
			w := rh.doHeaders("GET", "/admin/providers", "", bearer(secret))
			if w.Code != http.StatusUnauthorized || w.Body.String() != unauthorizedBody {
				t.Fatalf("%s admin key: %d %s", why, w.Code, w.Body)
			}
		}
		refused(sub.Secret, "disabled")
		exp := time.Unix(0, rh.clock.Load()).Add(time.Hour).UTC().Format(time.RFC3339)
		rh.expect(rh.do("PATCH", "/admin/admin-keys/"+viewer.ID, `{"expires_at":"`+exp+`"}`), 200, nil)
		rh.expect(rh.doHeaders("GET", "/admin/providers", "", bearer(viewer.Secret)), 200, nil)
		rh.clock.Add(int64(2 * time.Hour))
		refused(viewer.Secret, "expired")
		rh.expect(rh.do("DELETE", "/admin/admin-keys/"+adm.ID, ""), 200, nil)
		refused(adm.Secret, "revoked")

		// Audit: each write names its principal; nothing secret is logged.
		logs := rh.logs.String()
		var sawWrite, sawRefusal bool
		for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			if rec["msg"] == "admin: write" && rec["route"] == "/admin/providers" && rec["actor_id"] == adm.ID && rec["actor_prefix"] == adm.Prefix {
				sawWrite = true
			}
			if rec["msg"] == "admin: request refused for the role" && rec["actor_id"] == viewer.ID {
				sawRefusal = true
			}
		}
		if !sawWrite || !sawRefusal {
			t.Fatalf("audit lines missing (write %v, refusal %v):\n%s", sawWrite, sawRefusal, logs)
		}
		// An admin key's display prefix may be shown: the rest may not.
		secrets := []string{testAdminKey, previousAdminKey, "sk-upstream-secret-0123456789",
			viewer.Secret[llm.AdminKeyDisplayLen:], adm.Secret[llm.AdminKeyDisplayLen:], sub.Secret[llm.AdminKeyDisplayLen:]}
		for _, s := range secrets {
			if where := leakAt(logs, s); where != "" {
				t.Fatalf("a secret leaked into the logs: %s", where)
			}
		}
		// Responses after the creations never show an admin key again.
		for _, b := range rh.bodies {
			if strings.Contains(b, `"key":"`+llm.AdminKeyPrefix) {
				continue // a creation's answer
			}
			for _, s := range secrets {
				if where := leakAt(b, s); where != "" {
					t.Fatalf("an admin key leaked into a response: %s", where)
				}
			}
		}
	})
}

// leakAt reports where secret, or any 8-byte substring of it, occurs in
// haystack ("" when nowhere), without printing the secret.
func leakAt(haystack, secret string) string {
	for k := 0; k+8 <= len(secret); k++ {
		if i := strings.Index(haystack, secret[k:k+8]); i >= 0 {
			return "the substring at " + strconv.Itoa(k) + " found at offset " + strconv.Itoa(i)
		}
	}
	return ""
}

// TestBootstrapDisabled: with DisableBootstrap the environment's keys are
// refused (and not required); database admin keys still work.
func TestBootstrapDisabled(t *testing.T) {
	st := openStore(t, store.DialectSQLite)
	_, secret, err := st.CreateAdminKey(context.Background(), store.AdminKeyInput{Name: "ops", Role: llm.RoleAdmin}, "cli")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", testAdminKey} {
		h := newHarness(t, store.DialectSQLite, func(o *Options) {
			o.Store, o.AdminKey, o.DisableBootstrap, o.PreviousAdminKeys = st, key, true, []string{previousAdminKey}
			o.Snapshot = func() *llm.Snapshot { s, _ := st.LoadSnapshot(context.Background()); return s }
		})
		for _, k := range []string{testAdminKey, previousAdminKey} {
			if w := h.doHeaders("GET", "/admin/providers", "", bearer(k)); w.Code != 401 {
				t.Fatalf("bootstrap key with the bootstrap disabled: %d", w.Code)
			}
		}
		h.expect(h.doHeaders("GET", "/admin/providers", "", bearer(secret)), 200, nil)
	}
}
