package providers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

const secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"

func newTestOpenAI(t *testing.T, h http.HandlerFunc, timeouts llm.Timeouts) Provider {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	p, err := NewOpenAI(&llm.Provider{Name: "up", Type: llm.ProviderOpenAICompatible, BaseURL: srv.URL + "/v1/", APIKey: secret, Headers: map[string]string{"x-extra": "1"}}, NewClient(timeouts))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenAIForwards(t *testing.T) {
	var got *http.Request
	var body []byte
	p := newTestOpenAI(t, func(w http.ResponseWriter, r *http.Request) {
		got, body = r, must(io.ReadAll(r.Body))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}, llm.Timeouts{})
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Body: []byte(`{"model":"x"}`), RequestID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.URL.Path != "/v1/chat/completions" || got.Header.Get("Authorization") != "Bearer "+secret ||
		got.Header.Get("X-Extra") != "1" || got.Header.Get("X-Request-Id") != "r1" || string(body) != `{"model":"x"}` {
		t.Fatalf("forwarded %s %v %s", got.URL.Path, got.Header, body)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Error bodies follow OpenAI's documented error object.
func TestOpenAIErrorMapping(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		header     http.Header
		wantStatus int
		wantType   string
		wantCode   string
		retryAfter time.Duration
	}{
		{"rate limit", 429, `{"error":{"message":"Rate limit reached for gpt-4o-mini","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, http.Header{"Retry-After": {"7"}}, 429, "requests", "rate_limit_exceeded", 7 * time.Second},
		{"retry-after-ms", 429, `{"error":{"message":"slow down","type":"rate_limit_error"}}`, http.Header{"Retry-After-Ms": {"1500"}}, 429, "rate_limit_error", "", 1500 * time.Millisecond},
		{"bad key echoed", 401, `{"error":{"message":"Incorrect API key provided: sk-proj-abcdefgh*****6789. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, nil, 502, "upstream_error", "upstream_auth_failed", 0},
		{"server error", 500, `{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`, nil, 500, "server_error", "", 0},
		{"context length", 400, `{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`, nil, 400, "invalid_request_error", "context_length_exceeded", 0},
		{"detail shape", 422, `{"detail":"bad input"}`, nil, 422, "invalid_request_error", "", 0},
		{"html", 503, `<html>down</html>`, nil, 503, "upstream_error", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestOpenAI(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}, llm.Timeouts{})
			_, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Body: []byte(`{}`)})
			var e *llm.Error
			if !errors.As(err, &e) {
				t.Fatalf("err %v", err)
			}
			if e.Status != tt.wantStatus || e.Type != tt.wantType || e.Code != tt.wantCode || e.RetryAfter != tt.retryAfter {
				t.Fatalf("got %+v", e)
			}
			if strings.Contains(e.Message, "abcdefgh") || strings.Contains(e.Error(), secret) {
				t.Fatalf("secret in message %q", e.Message)
			}
		})
	}
}

func TestOpenAITimeoutsAndUnreachable(t *testing.T) {
	p := newTestOpenAI(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}, llm.Timeouts{FirstByte: 100 * time.Millisecond})
	_, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Body: []byte(`{}`)})
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindTimeout || e.Status != 504 {
		t.Fatalf("first-byte timeout: %v", err)
	}

	dead, _ := NewOpenAI(&llm.Provider{Name: "dead", Type: llm.ProviderOpenAICompatible, BaseURL: "http://127.0.0.1:1/v1"}, NewClient(llm.Timeouts{}))
	_, err = dead.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Body: []byte(`{}`)})
	if !errors.As(err, &e) || e.Kind != llm.KindUnreachable || e.Status != 502 {
		t.Fatalf("unreachable: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.Do(ctx, &Call{Endpoint: llm.EndpointChat, Body: []byte(`{}`)})
	if !errors.As(err, &e) || e.Kind != llm.KindCanceled {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestNewOpenAIValidates(t *testing.T) {
	bad := []*llm.Provider{
		{Name: "a", Type: llm.ProviderOpenAICompatible},
		{Name: "b", Type: llm.ProviderOpenAI, BaseURL: "ftp://x"},
		{Name: "c", Type: llm.ProviderOpenAI, Headers: map[string]string{"X-A": "a\r\nInjected: 1"}},
	}
	for _, p := range bad {
		if _, err := NewOpenAI(p, NewClient(llm.Timeouts{})); err == nil {
			t.Errorf("provider %s accepted", p.Name)
		}
	}
	if _, err := NewOpenAI(&llm.Provider{Name: "d", Type: llm.ProviderOpenAI}, NewClient(llm.Timeouts{})); err != nil {
		t.Errorf("openai without base_url: %v", err)
	}
}

func TestRegistryReusesUnchangedProviders(t *testing.T) {
	now := time.Now()
	snap := llm.EmptySnapshot()
	snap.Providers["a"] = &llm.Provider{ID: "prov_a", Name: "a", Type: llm.ProviderOpenAI, Revision: 5}
	snap.Providers["b"] = &llm.Provider{Name: "b", Type: "nope"}
	snap.Providers["u"] = &llm.Provider{ID: "prov_u", Name: "u", Type: llm.ProviderOpenAI, UpdatedAt: now} // no revision yet
	snap.Providers["z"] = &llm.Provider{ID: "prov_z", Name: "z", Type: llm.ProviderOpenAI}                 // nothing to compare
	r1, errs := NewRegistry(nil, snap)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "openai-compatible") {
		t.Fatalf("errs %v", errs)
	}
	r2, _ := NewRegistry(r1, snap)
	for _, k := range []string{"prov_a", "prov_u"} {
		if r1.byID[k] != r2.byID[k] {
			t.Fatalf("unchanged provider %s was rebuilt", k)
		}
	}
	if r1.byID["prov_z"] == r2.byID["prov_z"] {
		t.Fatal("a provider without revision or UpdatedAt was reused: a change could not be seen")
	}
	// A new revision (a new key, say) is a new provider, a renamed one too.
	snap.Providers["a"] = &llm.Provider{ID: "prov_a", Name: "a", Type: llm.ProviderOpenAI, Revision: 6}
	snap.Providers["u"] = &llm.Provider{ID: "prov_u", Name: "u", Type: llm.ProviderOpenAI, UpdatedAt: now.Add(time.Millisecond)}
	r3, _ := NewRegistry(r2, snap)
	if r3.byID["prov_a"] == r2.byID["prov_a"] || r3.byID["prov_u"] == r2.byID["prov_u"] {
		t.Fatal("changed provider kept its old build")
	}
	delete(snap.Providers, "a")
	snap.Providers["renamed"] = &llm.Provider{ID: "prov_a", Name: "renamed", Type: llm.ProviderOpenAI, Revision: 6}
	r4, _ := NewRegistry(r3, snap)
	if _, ok := r4.Get("renamed"); !ok || r4.byID["prov_a"] == r3.byID["prov_a"] {
		t.Fatal("a renamed provider must be rebuilt under its new name")
	}
	if _, ok := r4.Get("a"); ok {
		t.Fatal("the old name still resolves")
	}
}

func TestRedact(t *testing.T) {
	got := Redact("key sk-proj-abcdefgh***6789 and "+secret, secret)
	if strings.Contains(got, "abcdefgh") || strings.Contains(got, secret) {
		t.Fatalf("Redact = %q", got)
	}
}
