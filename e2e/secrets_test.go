package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
)

// leak returns a description of the first place secret (or any 8-byte
// substring of it) occurs in haystack, or "".
func leak(haystack, secret string) string {
	if i := strings.Index(haystack, secret); i >= 0 {
		return "whole secret at offset " + strconv.Itoa(i) + ": …" + excerpt(haystack, i) + "…"
	}
	for k := 0; k+8 <= len(secret); k++ {
		if i := strings.Index(haystack, secret[k:k+8]); i >= 0 {
			return "substring " + strconv.Itoa(k) + " at offset " + strconv.Itoa(i) + ": …" + excerpt(haystack, i) + "…"
		}
	}
	return ""
}

// excerpt returns the text around i with the secret area masked, so the
// failure message itself does not print the secret.
func excerpt(s string, i int) string {
	lo, hi := max(0, i-60), min(len(s), i+60)
	out := []byte(s[lo:hi])
	for k := max(0, i-lo); k < min(len(out), i-lo+48); k++ {
		out[k] = '#'
	}
	return strings.ReplaceAll(string(out), "\n", " ")
}

// TestSecretCanary checks that provider credentials, Sluice keys and the
// admin key never leak into responses, metrics or logs (test 11).
func TestSecretCanary(t *testing.T) {
	t.Parallel()
	canary := "sk-canary-" + randHex(t, 16)
	good := startMock(t, "--api-key", canary)
	echo := startMock(t)
	g := startGateway(t, gwOptions{Env: []string{"SLUICE_LOG_LEVEL=debug"}})

	g.addProvider(t, provider{Name: "good", BaseURL: good.URL + "/v1", APIKey: canary})
	g.addModel(t, "good", "good")
	for _, status := range []string{"401", "403", "400", "429", "500"} {
		name := "echo" + status
		g.addProvider(t, provider{Name: name, BaseURL: echo.URL + "/v1", APIKey: canary,
			Headers: map[string]string{"X-Mock-Echo-Key": "true", "X-Mock-Status": status}})
		g.addModel(t, name, name)
	}
	// A credential passed as a provider header instead of api_key.
	g.addProvider(t, provider{Name: "hdr", BaseURL: good.URL + "/v1", Headers: map[string]string{"api-key": canary, "X-Mock-Echo-Key": "true"}})
	g.addModel(t, "hdr", "hdr")
	key := g.addKey(t, "canary", nil)

	var rb bodyRecorder
	c := g.client(key.Key, rb.middleware())
	ctx := testCtx(t, 60*time.Second)

	// Successful traffic proves the canary is really sent upstream.
	if _, err := c.Chat.Completions.New(ctx, chatParams("good", "hello")); err != nil {
		t.Fatalf("chat via good provider: %v", err)
	}
	if auth := good.stats(t).LastHeaders["Authorization"]; auth != "Bearer "+canary {
		t.Fatalf("upstream did not receive the provider key")
	}
	p := chatParams("good", "hello stream")
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	s := c.Chat.Completions.NewStreaming(ctx, p)
	for s.Next() {
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream via good provider: %v", err)
	}
	s.Close()
	if _, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "good", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}}); err != nil {
		t.Fatalf("embeddings via good provider: %v", err)
	}
	// The header-credential provider: mock answers 401 (no Authorization),
	// echoing nothing secret in the key, but it saw api-key.
	_, _ = c.Chat.Completions.New(ctx, chatParams("hdr", "hello"))

	// Upstream errors that echo the Authorization header back.
	for _, status := range []string{"401", "403", "400", "429", "500"} {
		_, err := c.Chat.Completions.New(ctx, chatParams("echo"+status, "hello"))
		if err == nil {
			t.Errorf("echo%s: want an error", status)
		}
		s := c.Chat.Completions.NewStreaming(ctx, chatParams("echo"+status, "hello"))
		for s.Next() {
		}
		if s.Err() == nil {
			t.Errorf("echo%s stream: want an error", status)
		}
		s.Close()
		_, _ = c.Completions.New(ctx, openai.CompletionNewParams{Model: openai.CompletionNewParamsModel("echo" + status), Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("x")}})
	}
	if st := echo.stats(t); !strings.Contains(st.LastHeaders["Authorization"], canary) {
		t.Fatalf("echo mock did not receive the canary key")
	}
	// Failed client auth with a near-miss of the real key.
	_, _ = g.client(key.Key+"x", rb.middleware()).Chat.Completions.New(ctx, chatParams("good", "x"))
	_, _ = g.client(key.Key[:len(key.Key)-1], rb.middleware()).Models.List(ctx)

	// Admin reads and writes of the providers.
	adminStart := len(g.adminBodies)
	g.adminOK(t, http.MethodGet, "/admin/providers", nil, nil)
	g.adminOK(t, http.MethodGet, "/admin/providers?page=1&page_size=2", nil, nil)
	for _, name := range []string{"good", "echo401", "hdr"} {
		g.adminOK(t, http.MethodGet, "/admin/providers/"+name, nil, nil)
	}
	var patched struct {
		Headers  map[string]string `json:"headers"`
		Timeouts timeouts          `json:"timeouts"`
	}
	g.adminOK(t, http.MethodPatch, "/admin/providers/good", map[string]any{"timeouts": map[string]string{"idle": "5s"}}, &patched)
	g.adminOK(t, http.MethodPatch, "/admin/providers/hdr", map[string]any{"headers": map[string]string{"api-key": "****", "X-Mock-Echo-Key": "true"}}, nil)
	g.adminOK(t, http.MethodGet, "/admin/models", nil, nil)
	g.adminOK(t, http.MethodGet, "/admin/keys", nil, nil)
	g.adminOK(t, http.MethodGet, "/admin/keys/"+key.ID, nil, nil)
	_, _ = g.adminDo(t, http.MethodGet, "/admin/health", nil)
	// An admin key (viewer) reads every admin GET, as does the bootstrap key.
	var viewer adminKeyCreated
	g.adminOK(t, http.MethodPost, "/admin/admin-keys", map[string]string{"name": "canary-viewer", "role": "viewer"}, &viewer)
	afterAdminKey := len(g.adminBodies)
	for _, path := range []string{"/admin/providers", "/admin/providers/good", "/admin/providers/hdr", "/admin/providers/echo401",
		"/admin/models", "/admin/models/good", "/admin/keys", "/admin/keys/" + key.ID, "/admin/owners", "/admin/whoami",
		"/admin/usage", "/admin/usage?group_by=key", "/admin/usage/summary", "/admin/requests", "/admin/requests?status=error",
		"/admin/health", "/admin/admin-keys", "/admin/admin-keys/" + viewer.ID, "/metrics"} {
		for _, cred := range []string{viewer.Key, g.AdminKey} {
			code, body := call(t, http.MethodGet, g.Admin+path, cred, nil)
			if code >= 500 || code == 401 {
				t.Errorf("GET %s: %d %s", path, code, body)
			}
			g.mu.Lock()
			g.adminBodies = append(g.adminBodies, body)
			g.mu.Unlock()
		}
	}
	// T15: an SQL injection corpus as the credential, on both listeners.
	for _, inj := range []string{"' OR 1=1 --", "sk-' OR '1'='1", "sk-sluice-' OR 1=1 --", "sk-sluice-admin-'; DROP TABLE api_keys; --",
		`" OR ""="`, "1; SELECT pg_sleep(5)", "admin'--", "' UNION SELECT hash FROM admin_keys --"} {
		if code, body := call(t, http.MethodGet, g.Proxy+"/v1/models", inj, nil); code != 401 {
			t.Errorf("proxy with an injection: %d %s", code, body)
		}
		if code, body := call(t, http.MethodGet, g.Admin+"/admin/providers", inj, nil); code != 401 {
			t.Errorf("admin with an injection: %d %s", code, body)
		}
	}
	// The key kept after the patches still works upstream.
	if _, err := c.Chat.Completions.New(ctx, chatParams("good", "after patch")); err != nil {
		t.Errorf("chat after PATCH: %v", err)
	}
	_, _ = c.Chat.Completions.New(ctx, chatParams("hdr", "after patch"))
	if h := good.stats(t).LastHeaders["Api-Key"]; h != canary {
		t.Errorf("hdr provider: upstream api-key header lost after PATCH with a masked value")
	}
	metrics := g.metrics(t)

	g.stop(20 * time.Second) // flush the access log and usage
	g.mu.Lock()
	adminAll := strings.Join(g.adminBodies, "\n")
	adminAfterCreate := strings.Join(g.adminBodies[adminStart:], "\n")
	adminAfterAdminKey := strings.Join(g.adminBodies[afterAdminKey:], "\n")
	g.mu.Unlock()
	proxyAll := rb.all()
	logs := g.logs()
	dump := sqliteDump(t, g.DataDir)
	if !strings.Contains(dump, "usage_records") || !strings.Contains(dump, "admin_keys") {
		t.Fatalf("the database dump lacks usage rows or admin keys")
	}
	if l := strings.ToLower(logs); strings.Contains(l, "sql error") || strings.Contains(l, "syntax error") || strings.Contains(l, "sqlstate") {
		t.Errorf("an SQL error in the logs")
	}

	places := []struct{ name, text string }{
		{"admin responses", adminAll},
		{"proxy responses", proxyAll},
		{"/metrics", metrics},
		{"sluice stdout/stderr and access log", logs},
		{"the database (every table)", dump},
	}
	for _, p := range places {
		if p.text == "" {
			t.Errorf("%s: nothing captured", p.name)
			continue
		}
		if where := leak(p.text, canary); where != "" {
			t.Errorf("provider key canary leaked into %s: %s", p.name, where)
		}
		if strings.Contains(p.text, g.AdminKey) {
			t.Errorf("admin key leaked into %s", p.name)
		}
	}
	for _, p := range []struct{ name, text string }{
		{"admin responses after key creation", adminAfterCreate},
		{"/metrics", metrics},
		{"sluice stdout/stderr and access log", logs},
		{"proxy responses", proxyAll},
		{"the database (every table)", dump},
	} {
		// The display prefix (12 characters) may be shown; the rest not.
		if where := leak(p.text, key.Key[12:]); where != "" {
			t.Errorf("Sluice key secret leaked into %s: %s", p.name, where)
		}
		if where := leak(p.text, viewer.Key[len(viewer.Prefix):]); p.name != "admin responses after key creation" && where != "" {
			t.Errorf("admin key secret leaked into %s: %s", p.name, where)
		}
	}
	if where := leak(adminAfterAdminKey, viewer.Key[len(viewer.Prefix):]); where != "" {
		t.Errorf("admin key secret leaked into admin responses after its creation: %s", where)
	}
}
