package admin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
	"github.com/sluice-ai/sluice/store"
)

func TestNewRejectsShortKey(t *testing.T) {
	s := openStore(t, store.DialectSQLite)
	for _, k := range []string{"", "short", strings.Repeat("a", 31)} {
		if _, err := New(Options{Store: s, AdminKey: k}); err == nil {
			t.Fatalf("admin key of %d chars accepted", len(k))
		}
	}
	if _, err := New(Options{AdminKey: testAdminKey}); err == nil {
		t.Fatal("nil store accepted")
	}
	if _, err := New(Options{Store: s, AdminKey: strings.Repeat("a", 32)}); err != nil {
		t.Fatal(err)
	}
}

const unauthorizedBody = `{"error":{"message":"invalid admin key","type":"authentication_error","param":null,"code":"invalid_admin_key"}}`

// uiStub stands in for the dashboard's file server.
var uiStub = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ui:" + r.URL.Path)) })

// TestAuthMatrix walks every registered route: all but the health probes
// and the dashboard's static files must answer 401 to anything but the
// exact admin key, and the public set is exactly those four routes.
func TestAuthMatrix(t *testing.T) {
	h := newHarness(t, store.DialectSQLite, func(o *Options) {
		o.UI = uiStub
		o.Health = func(context.Context) any { return []string{} }
		o.Pprof = true
	})
	upper := strings.ToUpper(testAdminKey)
	bad := []map[string]string{
		{},
		{"Authorization": "Bearer wrong-key-wrong-key-wrong-key-wrong"},
		{"X-API-KEY": "wrong"},
		{"Authorization": "Bearer " + testAdminKey + " "},
		{"Authorization": "Bearer  " + testAdminKey},
		{"Authorization": "Bearer " + testAdminKey + "\t"},
		{"X-API-KEY": testAdminKey + " "},
		{"X-API-KEY": " " + testAdminKey},
		{"Authorization": "Bearer " + upper},
		{"X-API-KEY": upper},
		{"Authorization": testAdminKey},
		{"Authorization": "Basic " + testAdminKey},
		{"Authorization": "Bearer"},
		{"X-API-KEY": testAdminKey[:len(testAdminKey)-1]},
		{"X-API-KEY": "wrong", "Authorization": "Bearer " + testAdminKey},
		{"X-API-KEY": testAdminKey, "Authorization": "Bearer wrong"},
		// T12: JWTs (an expired one, one for another audience) are never
		// admin credentials.
		{"Authorization": "Bearer " + jwtShaped(`{"iss":"https://idp","aud":"sluice","exp":1}`)},
		{"Authorization": "Bearer " + jwtShaped(`{"iss":"https://idp","aud":"other","exp":4102444800}`)},
	}
	good := []map[string]string{
		{"Authorization": "Bearer " + testAdminKey},
		{"Authorization": "bearer " + testAdminKey},
		{"X-API-KEY": testAdminKey},
		{"x-api-key": testAdminKey},
		{"X-API-KEY": testAdminKey, "Authorization": "Bearer " + testAdminKey},
	}
	routes := h.engine.Routes()
	if len(routes) < 20 {
		t.Fatalf("only %d routes", len(routes))
	}
	type probe struct {
		method, path string
		public       bool
	}
	paths := []probe{
		{"GET", "/admin/nope", false}, {"GET", "/admin/providers/", false}, {"POST", "/admin", false}, {"GET", "/nope", false},
		{"POST", "/healthz", false}, {"GET", "/admin//providers", false}, {"OPTIONS", "/admin/keys", false},
		{"POST", "/ui", false}, {"POST", "/ui/app.js", false}, {"DELETE", "/ui/", false}, {"HEAD", "/ui/", false},
		{"GET", "/uix", false}, {"GET", "/admin/ui", false}, {"GET", "/admin/health/", false},
		{"GET", "/ui/", true}, {"GET", "/ui/app.js", true}, {"GET", "/ui/a/b/../c", true},
	}
	wantPublic := map[string]bool{"GET /healthz": true, "GET /readyz": true, "HEAD /healthz": true, "HEAD /readyz": true, "GET /ui": true, "GET /ui/*filepath": true}
	gotPublic := map[string]bool{}
	for _, r := range routes {
		p := strings.ReplaceAll(r.Path, ":id", "x")
		p = strings.ReplaceAll(p, "*filepath", "x/app.js")
		// Which routes answer without any key is measured, not assumed.
		if w := h.doHeaders(r.Method, p, "", nil); w.Code != http.StatusUnauthorized {
			gotPublic[r.Method+" "+r.Path] = true
		}
		paths = append(paths, probe{r.Method, p, wantPublic[r.Method+" "+r.Path]})
	}
	if !maps.Equal(gotPublic, wantPublic) {
		t.Fatalf("public routes = %v, want %v", slices.Sorted(maps.Keys(gotPublic)), slices.Sorted(maps.Keys(wantPublic)))
	}
	for _, p := range paths {
		for _, hdr := range bad {
			w := h.doHeaders(p.method, p.path, "", hdr)
			if p.public {
				if w.Code != http.StatusOK {
					t.Fatalf("%s %s public route = %d", p.method, p.path, w.Code)
				}
				continue
			}
			if w.Code != http.StatusUnauthorized || w.Body.String() != unauthorizedBody {
				t.Fatalf("%s %s with %q = %d %s, want 401", p.method, p.path, hdr, w.Code, w.Body)
			}
		}
		for _, hdr := range good {
			w := h.doHeaders(p.method, p.path, "", hdr)
			if w.Code == http.StatusUnauthorized || w.Code >= 500 {
				t.Fatalf("%s %s with the right key = %d %s", p.method, p.path, w.Code, w.Body)
			}
		}
	}
	w := h.do("GET", "/admin/nope", "")
	h.expectError(w, http.StatusNotFound, "")
	w = h.do("GET", "/metrics", "")
	if w.Code != 200 || w.Body.String() != "sluice_up 1\n" {
		t.Fatalf("metrics = %d %s", w.Code, w.Body)
	}
}

// TestUIMount checks that /ui reaches Options.UI with the full path and no
// key, and that without a UI there are no public /ui routes.
func TestUIMount(t *testing.T) {
	h := newHarness(t, store.DialectSQLite, func(o *Options) { o.UI = uiStub })
	for _, p := range []string{"/ui", "/ui/", "/ui/app.js", "/ui/deep/link"} {
		w := h.doHeaders("GET", p, "", nil)
		if w.Code != http.StatusOK || w.Body.String() != "ui:"+p {
			t.Fatalf("GET %s = %d %s", p, w.Code, w.Body)
		}
	}
	h = newHarness(t, store.DialectSQLite, nil)
	for _, p := range []string{"/ui", "/ui/"} {
		if w := h.doHeaders("GET", p, "", nil); w.Code != http.StatusUnauthorized {
			t.Fatalf("GET %s without UI = %d, want 401", p, w.Code)
		}
		h.expectError(h.do("GET", p, ""), http.StatusNotFound, "")
	}
}

// TestHealthAPI checks GET /admin/health: behind auth, {"items": …} of
// Options.Health, and absent when Health is nil.
func TestHealthAPI(t *testing.T) {
	type item struct {
		Deployment string `json:"deployment"`
		Healthy    bool   `json:"healthy"`
	}
	var gotCtx bool
	h := newHarness(t, store.DialectSQLite, func(o *Options) {
		o.Health = func(ctx context.Context) any {
			gotCtx = ctx != nil
			return []item{{"up/a", true}, {"up/b", false}}
		}
	})
	if w := h.doHeaders("GET", "/admin/health", "", nil); w.Code != http.StatusUnauthorized || w.Body.String() != unauthorizedBody {
		t.Fatalf("no key = %d %s", w.Code, w.Body)
	}
	var body struct {
		Items []item `json:"items"`
	}
	h.expect(h.do("GET", "/admin/health", ""), http.StatusOK, &body)
	if !gotCtx || len(body.Items) != 2 || body.Items[0] != (item{"up/a", true}) || body.Items[1] != (item{"up/b", false}) {
		t.Fatalf("health = %+v", body)
	}
	h = newHarness(t, store.DialectSQLite, nil)
	h.expectError(h.do("GET", "/admin/health", ""), http.StatusNotFound, "")
}

func TestProvidersAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, nil)
		canary := "sk-canary-" + randHex(16)

		var p store.Provider
		h.expect(h.do("POST", "/admin/providers", fmt.Sprintf(`{"name":"up","type":"openai-compatible","base_url":"http://127.0.0.1:8000/v1","api_key":%q,"headers":{"x-org":"acme"},"timeouts":{"connect":"3s","first_byte":"","idle":"1m"}}`, canary)), http.StatusCreated, &p)
		if p.ID == "" || !p.APIKeySet || p.Timeouts.Connect != "3s" || p.Headers["X-Org"] != "acme" {
			t.Fatalf("created %+v", p)
		}
		var got store.Provider
		h.expect(h.do("GET", "/admin/providers/"+p.ID, ""), 200, &got)
		h.expect(h.do("GET", "/admin/providers/up", ""), 200, &got)
		var list struct {
			Items    []store.Provider `json:"items"`
			Total    int              `json:"total"`
			Page     int              `json:"page"`
			PageSize int              `json:"page_size"`
		}
		h.expect(h.do("GET", "/admin/providers?page=1&page_size=10", ""), 200, &list)
		if list.Total != 1 || len(list.Items) != 1 || list.Page != 1 || list.PageSize != 10 {
			t.Fatalf("list %+v", list)
		}
		h.expect(h.do("GET", "/admin/providers?page_size=100000", ""), 200, &list)
		if list.PageSize != store.MaxPageSize {
			t.Fatalf("page_size not capped: %d", list.PageSize)
		}
		h.expectError(h.do("GET", "/admin/providers?page=x", ""), 400, "page")

		// PATCH without api_key, with "" and with the mask keeps the key.
		for _, body := range []string{`{"base_url":"http://127.0.0.1:8001/v1"}`, `{"api_key":""}`, `{"api_key":"sk-****"}`} {
			h.expect(h.do("PATCH", "/admin/providers/up", body), 200, &got)
			snap, err := h.store.LoadSnapshot(context.Background())
			if err != nil || snap.Providers["up"].APIKey != canary {
				t.Fatalf("api key lost after PATCH %s: %v", body, err)
			}
		}
		if got.BaseURL != "http://127.0.0.1:8001/v1" || !got.APIKeySet {
			t.Fatalf("patched %+v", got)
		}
		// PUT replaces everything but keeps the key when none is sent.
		got = store.Provider{}
		h.expect(h.do("PUT", "/admin/providers/up", `{"name":"up","type":"openai"}`), 200, &got)
		if got.BaseURL != providers.DefaultOpenAIBaseURL || len(got.Headers) != 0 || got.Timeouts.Connect != "" || !got.APIKeySet {
			t.Fatalf("put %+v", got)
		}

		// Error paths, some echoing the canary back in the request.
		h.expectError(h.do("POST", "/admin/providers", `{"name":"up","type":"openai"}`), 409, "")
		h.expectError(h.do("POST", "/admin/providers", fmt.Sprintf(`{"name":"bad name","type":"openai","api_key":%q}`, canary)), 400, "name")
		h.expectError(h.do("POST", "/admin/providers", fmt.Sprintf(`{"name":"x","type":"openai","api_key":%q,"extra":1}`, canary)), 400, "extra")
		h.expectError(h.do("POST", "/admin/providers", fmt.Sprintf(`{"name":"x","type":"openai","api_key":%q}{}`, canary)), 400, "")
		h.expectError(h.do("POST", "/admin/providers", fmt.Sprintf(`{"name":"x","type":"openai","api_key":%q`, canary)), 400, "")
		h.expectError(h.do("POST", "/admin/providers", `{"name":"x","type":"openai","api_key":42}`), 400, "api_key")
		h.expectError(h.do("POST", "/admin/providers", `{"name":"x","type":"openai-compatible","base_url":"http://h","headers":{"x":"a\r\nb"}}`), 400, "headers")
		h.expectError(h.do("POST", "/admin/providers", ""), 400, "")
		h.expectError(h.do("PATCH", "/admin/providers/up", fmt.Sprintf(`{"api_key":%q,"timeouts":{"idle":"2h"}}`, canary)), 400, "timeouts.idle")
		h.expectError(h.do("GET", "/admin/providers/missing", ""), 404, "")
		h.expectError(h.do("PATCH", "/admin/providers/missing", `{}`), 404, "")
		big := `{"name":"` + strings.Repeat("a", 1<<20) + `"}`
		h.expectError(h.do("POST", "/admin/providers", big), 413, "")
		h.expect(h.do("DELETE", "/admin/providers/up", ""), 204, nil)
		h.expectError(h.do("DELETE", "/admin/providers/up", ""), 404, "")

		for _, b := range h.bodies {
			if strings.Contains(b, canary) {
				t.Fatalf("canary in response: %s", b)
			}
			for i := 0; i+8 <= len(canary[10:]); i++ {
				if strings.Contains(b, canary[10+i:10+i+8]) {
					t.Fatalf("canary fragment in response: %s", b)
				}
			}
		}
	})
}

func TestModelsAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, nil)
		h.expect(h.do("POST", "/admin/providers", `{"name":"a","type":"openai"}`), 201, nil)
		var m store.Model
		h.expect(h.do("POST", "/admin/models", `{"name":"fast","deployments":[{"provider":"a","model":"gpt-4o-mini","weight":2,"input_price_per_mtok":0.15,"output_price_per_mtok":0.6}]}`), 201, &m)
		if m.ID == "" || m.Deployments[0].InputPerMTok != 0.15 {
			t.Fatalf("model %+v", m)
		}
		w := h.do("GET", "/admin/models/fast", "")
		if !strings.Contains(w.Body.String(), `"input_price_per_mtok":0.15`) {
			t.Fatalf("prices not decimal: %s", w.Body)
		}
		h.expectError(h.do("POST", "/admin/models", `{"name":"x","deployments":[{"provider":"nope","model":"m"}]}`), 400, "deployments[0].provider")
		h.expectError(h.do("POST", "/admin/models", `{"name":"x","deployments":[]}`), 400, "deployments")
		h.expectError(h.do("POST", "/admin/models", `{"name":"fast","deployments":[{"provider":"a","model":"m"}]}`), 409, "")
		h.expectError(h.do("DELETE", "/admin/providers/a", ""), 409, "")
		h.expect(h.do("PATCH", "/admin/models/"+m.ID, `{"deployments":[{"provider":"a","model":"other"}]}`), 200, &m)
		if len(m.Deployments) != 1 || m.Deployments[0].Model != "other" || m.Name != "fast" {
			t.Fatalf("patched %+v", m)
		}
		h.expect(h.do("PUT", "/admin/models/fast", `{"name":"quick","deployments":[{"provider":"a","model":"m"}]}`), 200, &m)
		if m.Name != "quick" {
			t.Fatalf("put %+v", m)
		}
		var list struct {
			Items []store.Model `json:"items"`
			Total int           `json:"total"`
		}
		h.expect(h.do("GET", "/admin/models", ""), 200, &list)
		if list.Total != 1 || list.Items[0].Name != "quick" {
			t.Fatalf("list %+v", list)
		}
		h.expect(h.do("DELETE", "/admin/models/quick", ""), 204, nil)
		h.expect(h.do("DELETE", "/admin/providers/a", ""), 204, nil)
		if n := h.changes.Load(); n != 6 {
			t.Fatalf("OnChange called %d times, want 6", n)
		}
	})
}

func TestKeysAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, nil)
		var created struct {
			store.Key
			Secret string `json:"key"`
		}
		w := h.do("POST", "/admin/keys", `{"name":"ci","models":["fast"],"expires_at":"2030-01-02T03:04:05Z","metadata":{"team":"x"}}`)
		h.expect(w, 201, &created)
		if !strings.HasPrefix(created.Secret, "sk-sluice-") || created.Prefix != created.Secret[:12] || created.ExpiresAt == nil {
			t.Fatalf("created %+v", created)
		}
		if strings.Contains(w.Body.String(), llm.HashKey(created.Secret)) || strings.Contains(w.Body.String(), `"hash"`) {
			t.Fatalf("hash rendered: %s", w.Body)
		}
		for _, path := range []string{"/admin/keys/" + created.ID, "/admin/keys"} {
			w := h.do("GET", path, "")
			if w.Code != 200 || strings.Contains(w.Body.String(), created.Secret) || strings.Contains(w.Body.String(), llm.HashKey(created.Secret)) ||
				strings.Contains(w.Body.String(), `"key":`) {
				t.Fatalf("GET %s leaks: %s", path, w.Body)
			}
		}
		var k store.Key
		h.expect(h.do("PATCH", "/admin/keys/"+created.ID, `{"disabled":true,"expires_at":null}`), 200, &k)
		if !k.Disabled || k.ExpiresAt != nil || k.Name != "ci" || len(k.Models) != 1 {
			t.Fatalf("patched %+v", k)
		}
		k = store.Key{}
		h.expect(h.do("PUT", "/admin/keys/"+created.ID, `{"name":"ci2"}`), 200, &k)
		if k.Name != "ci2" || k.Disabled || len(k.Models) != 0 || len(k.Metadata) != 0 {
			t.Fatalf("put %+v", k)
		}
		h.expectError(h.do("POST", "/admin/keys", `{"name":""}`), 400, "name")
		h.expectError(h.do("POST", "/admin/keys", `{"name":"x","expires_at":"tomorrow"}`), 400, "")
		h.expect(h.do("DELETE", "/admin/keys/"+created.ID, ""), 200, &k)
		if k.RevokedAt == nil || !k.Disabled {
			t.Fatalf("revoked %+v", k)
		}
		h.expect(h.do("GET", "/admin/keys/"+created.ID, ""), 200, &k)
		if k.RevokedAt == nil {
			t.Fatal("revocation not shown")
		}
		h.expectError(h.do("PATCH", "/admin/keys/"+created.ID, `{"disabled":false}`), 409, "")
		h.expectError(h.do("DELETE", "/admin/keys/nope", ""), 404, "")
		snap, err := h.store.LoadSnapshot(context.Background())
		if err != nil || len(snap.Keys) != 0 {
			t.Fatalf("revoked key in snapshot: %v", err)
		}
	})
}

func TestUsageAPI(t *testing.T) {
	h := newHarness(t, store.DialectSQLite, nil)
	now := time.Now().UTC()
	recs := []llm.Record{
		{ID: "a", Time: now.Add(-time.Hour), KeyID: "k1", Model: "fast", Provider: "p", Usage: llm.Usage{PromptTokens: 10, CompletionTokens: 2}, CostMicros: 500000, HTTPStatus: 200, Status: llm.StatusOK},
		{ID: "b", Time: now.Add(-time.Hour), KeyID: "k2", Model: "fast", Provider: "p", Usage: llm.Usage{PromptTokens: 5}, HTTPStatus: 500, Status: llm.StatusError},
		{ID: "c", Time: now.Add(-48 * time.Hour), KeyID: "k1", Model: "old", Provider: "p", Usage: llm.Usage{PromptTokens: 7}, HTTPStatus: 200, Status: llm.StatusOK},
	}
	if _, err := h.store.InsertUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Items   []store.UsageRow `json:"items"`
		GroupBy string           `json:"group_by"`
	}
	h.expect(h.do("GET", "/admin/usage?group_by=key", ""), 200, &out)
	if out.GroupBy != "key" || len(out.Items) != 2 || out.Items[0].Group != "k1" || out.Items[0].Cost != 0.5 || out.Items[1].Errors != 1 {
		t.Fatalf("by key: %+v", out)
	}
	h.expect(h.do("GET", "/admin/usage", ""), 200, &out)
	if out.GroupBy != "day" {
		t.Fatalf("default group_by %q", out.GroupBy)
	}
	var total int64
	for _, r := range out.Items {
		total += r.Requests
	}
	if total != 2 {
		t.Fatalf("default window has %d requests, want 2: %+v", total, out.Items)
	}
	from := fmt.Sprint(now.Add(-72 * time.Hour).Unix())
	h.expect(h.do("GET", "/admin/usage?group_by=model&from="+from+"&key=k1", ""), 200, &out)
	if len(out.Items) != 2 || out.Items[0].Group != "fast" || out.Items[1].Group != "old" {
		t.Fatalf("by model for k1: %+v", out.Items)
	}
	h.expect(h.do("GET", "/admin/usage?group_by=hour&model=fast&to="+now.Format(time.RFC3339), ""), 200, &out)
	if len(out.Items) != 1 || out.Items[0].Requests != 2 || !strings.HasSuffix(out.Items[0].Group, ":00:00Z") {
		t.Fatalf("by hour: %+v", out.Items)
	}
	h.expectError(h.do("GET", "/admin/usage?group_by=week", ""), 400, "group_by")
	h.expectError(h.do("GET", "/admin/usage?from=yesterday", ""), 400, "from")
}

func TestReadyz(t *testing.T) {
	h := newHarness(t, store.DialectSQLite, nil)
	w := h.doHeaders("GET", "/readyz", "", nil)
	if w.Code != 200 || w.Body.String() != `{"status":"ready"}` {
		t.Fatalf("readyz = %d %s", w.Code, w.Body)
	}
	if w := h.doHeaders("GET", "/healthz", "", nil); w.Body.String() != `{"status":"ok"}` {
		t.Fatalf("healthz = %s", w.Body)
	}
	h = newHarness(t, store.DialectSQLite, func(o *Options) {
		o.Ready = func(context.Context) error {
			return errors.New("store unreachable: dial postgres://sluice:hunter2@db:5432/x?password=hunter3 failed")
		}
	})
	w = h.doHeaders("GET", "/readyz", "", nil)
	if w.Code != 503 || !strings.Contains(w.Body.String(), `"status":"unavailable"`) || !strings.Contains(w.Body.String(), "store unreachable") ||
		strings.Contains(w.Body.String(), "hunter") {
		t.Fatalf("readyz = %d %s", w.Code, w.Body)
	}
}

func TestRecoveryRendersJSON(t *testing.T) {
	h := newHarness(t, store.DialectSQLite, func(o *Options) {
		o.Metrics = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom secret") })
	})
	w := h.do("GET", "/metrics", "")
	if w.Code != 500 || strings.Contains(w.Body.String(), "boom") || !strings.Contains(w.Body.String(), `"internal_error"`) {
		t.Fatalf("panic = %d %s", w.Code, w.Body)
	}
}

// jwtShaped is a compact JWT with claims (RS256 header, junk signature).
func jwtShaped(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","kid":"k"}`)) + "." + enc([]byte(claims)) + "." + enc([]byte("signature"))
}
