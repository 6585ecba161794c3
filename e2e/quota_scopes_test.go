package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
)

// TestQuotaOwnerModelAndDialects: an owner's limit is shared by all its
// keys, a model's by all its callers; refusals name the subject, come in
// the client's dialect (OpenAI SDK on /v1/chat/completions, Anthropic SDK
// on /v1/messages) and GET /admin/owners/{name} shows the consumption. One
// process, SQLite, the in-process store.
func TestQuotaOwnerModelAndDialects(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gwOptions{})
	g := f.gw
	ctx := testCtx(t, time.Minute)

	g.adminOK(t, http.MethodPut, "/admin/owners/team-a", map[string]any{"rpm": 3}, nil)
	var k1, k2 createdKey
	g.adminOK(t, http.MethodPost, "/admin/keys", map[string]any{"name": "a1", "owner": "team-a"}, &k1)
	g.adminOK(t, http.MethodPost, "/admin/keys", map[string]any{"name": "a2", "owner": "team-a"}, &k2)
	g.waitKeyUsable(t, k1.Key)
	g.waitKeyUsable(t, k2.Key)
	for i, k := range []string{k1.Key, k2.Key, k1.Key} {
		if _, err := g.client(k).Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "hi")); err != nil {
			t.Fatalf("request %d: %v", i, describe(err))
		}
	}
	_, err := g.client(k2.Key).Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "hi"))
	e := wantAPIError(t, err, http.StatusTooManyRequests, "rate_limit_exceeded")
	if !strings.Contains(e.Message, `owner "team-a"`) || !strings.Contains(e.Message, "3 requests per minute") {
		t.Fatalf("owner refusal: %s", e.Message)
	}
	// The Anthropic SDK on /v1/messages gets Anthropic's shape.
	_, err = g.anthropicClient(k1.Key).Messages.New(ctx, messageParams("gpt-4o-mini", "hi"))
	ae := wantAnthropicError(t, err, http.StatusTooManyRequests)
	if raw := ae.RawJSON(); !strings.Contains(raw, `"type":"rate_limit_error"`) || !strings.Contains(raw, "team-a") ||
		ae.Response.Header.Get("Retry-After") == "" || ae.Response.Header.Get("X-Ratelimit-Limit-Requests") != "3" {
		t.Fatalf("anthropic refusal %s headers %v", raw, ae.Response.Header)
	}
	var view struct {
		Quota struct {
			RPM struct {
				Limit     int64 `json:"limit"`
				Remaining int64 `json:"remaining"`
			} `json:"rpm"`
		} `json:"quota"`
	}
	g.adminOK(t, http.MethodGet, "/admin/owners/team-a", nil, &view)
	if view.Quota.RPM.Limit != 3 || view.Quota.RPM.Remaining != 0 {
		t.Fatalf("GET /admin/owners/team-a quota: %+v", view.Quota)
	}

	// A model's limit holds across its callers; other models are free.
	g.adminOK(t, http.MethodPost, "/admin/models", map[string]any{"name": "small", "rpm": 2, "deployments": []deployment{
		{Provider: "mock", Model: "small", Weight: 1, InputPrice: 0.1, OutputPrice: 0.2}}}, nil)
	var k3 createdKey
	g.adminOK(t, http.MethodPost, "/admin/keys", map[string]any{"name": "free"}, &k3)
	g.waitKeyUsable(t, k3.Key)
	deadline := time.Now().Add(5 * time.Second)
	for { // the model reaches the snapshot
		_, err := g.client(k3.Key).Chat.Completions.New(ctx, chatParams("small", "hi"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("model not served: %v", describe(err))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := g.client(f.key.Key).Chat.Completions.New(ctx, chatParams("small", "hi")); err != nil {
		t.Fatal(describe(err))
	}
	_, err = g.client(k3.Key).Chat.Completions.New(ctx, chatParams("small", "hi"))
	e = wantAPIError(t, err, http.StatusTooManyRequests, "rate_limit_exceeded")
	if !strings.Contains(e.Message, `model "small"`) {
		t.Fatalf("model refusal: %s", e.Message)
	}
	if _, err := g.client(k3.Key).Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "hi")); err != nil {
		t.Fatalf("another model: %v", describe(err))
	}

	// A streamed request under a token limit is settled too: its
	// reservation comes back, so the bucket ends near full again.
	var k4 createdKey
	g.adminOK(t, http.MethodPost, "/admin/keys", map[string]any{"name": "tpm", "tpm": 100000}, &k4)
	g.waitKeyUsable(t, k4.Key)
	p := chatParams("gpt-4o-mini", "stream me")
	p.MaxTokens = openai.Int(5000)
	s := g.client(k4.Key).Chat.Completions.NewStreaming(ctx, p)
	for s.Next() {
	}
	if err := s.Err(); err != nil {
		t.Fatal(describe(err))
	}
	var kv struct {
		Quota struct {
			TPM struct {
				Remaining int64 `json:"remaining"`
			} `json:"tpm"`
		} `json:"quota"`
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		g.adminOK(t, http.MethodGet, "/admin/keys/"+k4.ID, nil, &kv)
		if kv.Quota.TPM.Remaining > 99_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tpm remaining %d after a settled stream, want > 99000 (5000 reserved, a few dozen used)", kv.Quota.TPM.Remaining)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
