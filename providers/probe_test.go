package providers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// seen is what a probe's upstream received.
type seen struct {
	mu     sync.Mutex
	method string
	uri    string
	header http.Header
	body   string
}

func (s *seen) record(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.method, s.uri, s.header, s.body = r.Method, r.URL.RequestURI(), r.Header.Clone(), string(b)
}

// probeUpstream starts a server answering every request with status and
// body, recording it.
func probeUpstream(t *testing.T, status int, body string) (*seen, string) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

const (
	openAIPong    = `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"p"},"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`
	anthropicPong = `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"p"}],"stop_reason":"max_tokens","usage":{"input_tokens":1,"output_tokens":1}}`
	geminiPong    = `{"candidates":[{"content":{"role":"model","parts":[{"text":"p"}]},"finishReason":"MAX_TOKENS"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":1,"totalTokenCount":2}}`
	bedrockPong   = `{"output":{"message":{"role":"assistant","content":[{"text":"p"}]}},"stopReason":"max_tokens","usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2}}`
)

// TestProbeModelsPerFamily: a models probe GETs each family's model list
// with the provider's own credentials, and sends no body.
func TestProbeModelsPerFamily(t *testing.T) {
	for _, tc := range []struct {
		name       string
		p          func(base string) *llm.Provider
		uri        string
		authHeader string
		authValue  string
	}{
		{"openai", func(b string) *llm.Provider {
			return &llm.Provider{Name: "o", Type: llm.ProviderOpenAICompatible, BaseURL: b + "/v1", APIKey: secret}
		}, "/v1/models", "Authorization", "Bearer " + secret},
		{"azure", func(b string) *llm.Provider {
			return &llm.Provider{Name: "a", Type: llm.ProviderAzure, BaseURL: b, APIKey: azureKey}
		}, "/openai/models?api-version=" + DefaultAzureAPIVersion, "Api-Key", azureKey},
		{"azure-v1", func(b string) *llm.Provider {
			return &llm.Provider{Name: "a", Type: llm.ProviderAzure, BaseURL: b, APIKey: azureKey, Options: json.RawMessage(`{"use_v1":true}`)}
		}, "/openai/v1/models", "Api-Key", azureKey},
		{"anthropic", func(b string) *llm.Provider {
			return &llm.Provider{Name: "an", Type: llm.ProviderAnthropic, BaseURL: b, APIKey: anthropicKey}
		}, "/v1/models?limit=1", "X-Api-Key", anthropicKey},
		{"gemini", func(b string) *llm.Provider {
			return &llm.Provider{Name: "g", Type: llm.ProviderGemini, BaseURL: b, APIKey: geminiKey}
		}, "/v1beta/models?pageSize=1", "X-Goog-Api-Key", geminiKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, base := probeUpstream(t, 200, `{"data":[]}`)
			p := buildWith(t, tc.p(base), Options{})
			if err := Probe(context.Background(), p, llm.ProbeModels, ""); err != nil {
				t.Fatal(err)
			}
			if s.method != http.MethodGet || s.uri != tc.uri || s.body != "" || s.header.Get(tc.authHeader) != tc.authValue || s.header.Get("Content-Type") != "" {
				t.Fatalf("got %s %s body %q auth %q content-type %q", s.method, s.uri, s.body, s.header.Get(tc.authHeader), s.header.Get("Content-Type"))
			}
		})
	}
}

// TestProbeModelsUnsupported: Bedrock has no model list on its runtime
// endpoint: its models probe says so, and the loop uses completions.
func TestProbeModelsUnsupported(t *testing.T) {
	s, base := probeUpstream(t, 200, bedrockPong)
	b := newTestBedrock(t, nil, func(p *llm.Provider) { p.BaseURL = base })
	if err := Probe(context.Background(), b, llm.ProbeModels, ""); !errors.Is(err, ErrProbeUnsupported) {
		t.Fatalf("bedrock models probe: %v", err)
	}
	if err := Probe(context.Background(), b, llm.ProbeCompletion, bedrockModel); err != nil {
		t.Fatalf("bedrock completion probe: %v", err)
	}
	if s.method != http.MethodPost || !strings.HasSuffix(s.uri, "/converse") || !strings.Contains(s.body, `"maxTokens":1`) {
		t.Fatalf("bedrock completion probe sent %s %s %s", s.method, s.uri, s.body)
	}
}

// TestProbeCompletionPerFamily: a completion probe asks the deployment's
// model for one token, not streamed, in the family's own format, and
// decodes the answer.
func TestProbeCompletionPerFamily(t *testing.T) {
	for _, tc := range []struct {
		name     string
		p        func(base string) *llm.Provider
		answer   string
		uri      string
		contains []string
	}{
		{"openai", func(b string) *llm.Provider {
			return &llm.Provider{Name: "o", Type: llm.ProviderOpenAICompatible, BaseURL: b + "/v1", APIKey: secret}
		}, openAIPong, "/v1/chat/completions", []string{`"model":"up-model"`, `"ping"`, `_tokens":1`}},
		{"azure", func(b string) *llm.Provider {
			return &llm.Provider{Name: "a", Type: llm.ProviderAzure, BaseURL: b, APIKey: azureKey}
		}, openAIPong, "/openai/deployments/up-model/chat/completions?api-version=" + DefaultAzureAPIVersion, []string{`"ping"`}},
		{"anthropic", func(b string) *llm.Provider {
			return &llm.Provider{Name: "an", Type: llm.ProviderAnthropic, BaseURL: b, APIKey: anthropicKey}
		}, anthropicPong, "/v1/messages", []string{`"model":"up-model"`, `"max_tokens":1`, `"ping"`}},
		{"gemini", func(b string) *llm.Provider {
			return &llm.Provider{Name: "g", Type: llm.ProviderGemini, BaseURL: b, APIKey: geminiKey}
		}, geminiPong, "/v1beta/models/up-model:generateContent", []string{`"maxOutputTokens":1`, `"ping"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, base := probeUpstream(t, 200, tc.answer)
			p := buildWith(t, tc.p(base), Options{})
			if err := Probe(context.Background(), p, llm.ProbeCompletion, "up-model"); err != nil {
				t.Fatal(err)
			}
			if s.method != http.MethodPost || s.uri != tc.uri || strings.Contains(s.body, `"stream":true`) {
				t.Fatalf("got %s %s %s", s.method, s.uri, s.body)
			}
			for _, c := range tc.contains {
				if !strings.Contains(s.body, c) {
					t.Errorf("body %s lacks %s", s.body, c)
				}
			}
			// An answer that does not decode fails the probe.
			_, bad := probeUpstream(t, 200, `{"nonsense":`)
			if err := Probe(context.Background(), buildWith(t, tc.p(bad), Options{}), llm.ProbeCompletion, "up-model"); err == nil {
				t.Fatal("an undecodable answer passed")
			}
		})
	}
}

// TestProbeErrorsRedacted: an upstream that fails and echoes the key
// fails the probe with the key redacted from every field.
func TestProbeErrorsRedacted(t *testing.T) {
	echo := `{"error":{"message":"bad key ` + secret + `","type":"` + secret + `","code":"x"}}`
	for _, kind := range []string{llm.ProbeModels, llm.ProbeCompletion} {
		for _, status := range []int{500, 400, 429} {
			_, base := probeUpstream(t, status, echo)
			p := buildWith(t, &llm.Provider{Name: "o", Type: llm.ProviderOpenAICompatible, BaseURL: base, APIKey: secret}, Options{})
			err := Probe(context.Background(), p, kind, "m")
			var le *llm.Error
			if !errors.As(err, &le) || le.UpstreamStatus != status {
				t.Fatalf("%s %d: %v", kind, status, err)
			}
			if strings.Contains(le.Error()+le.Type+le.Code+le.Param, secret[8:20]) {
				t.Fatalf("%s %d: secret in %+v", kind, status, le)
			}
		}
	}
	// A rejected credential is the gateway's, and says so without the upstream's text.
	_, base := probeUpstream(t, 401, echo)
	p := buildWith(t, &llm.Provider{Name: "o", Type: llm.ProviderOpenAICompatible, BaseURL: base, APIKey: secret}, Options{})
	var le *llm.Error
	if err := Probe(context.Background(), p, llm.ProbeModels, ""); !errors.As(err, &le) || le.Code != "upstream_auth_failed" || strings.Contains(le.Message, "bad key") {
		t.Fatalf("401: %v", err)
	}
}

// TestProbeHostileUpstreams: a huge answer is capped (a completion's fails,
// a model list's is cut and passes), a stalled body is bounded by the
// probe's context, and an unreachable upstream fails.
func TestProbeHostileUpstreams(t *testing.T) {
	huge := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"data":[`)
		chunk := strings.Repeat(`{"id":"model-xxxxxxxxxxxxxxxxxxxxxxxx"},`, 1000)
		for i := 0; i < 2000 && r.Context().Err() == nil; i++ { // ~80 MB unless cut
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(huge))
	defer srv.Close()
	p := buildWith(t, &llm.Provider{Name: "o", Type: llm.ProviderOpenAICompatible, BaseURL: srv.URL}, Options{})
	if err := Probe(context.Background(), p, llm.ProbeModels, ""); err != nil {
		t.Fatalf("huge model list: %v", err)
	}
	err := Probe(context.Background(), p, llm.ProbeCompletion, "m")
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("huge completion: %v", err)
	}

	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		_, _ = io.WriteString(w, `{"id":"c1","choices":[`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer stall.Close()
	p = buildWith(t, &llm.Provider{Name: "o", Type: llm.ProviderOpenAICompatible, BaseURL: stall.URL}, Options{})
	for _, kind := range []string{llm.ProbeModels, llm.ProbeCompletion} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := Probe(ctx, p, kind, "m")
		cancel()
		var le *llm.Error
		if kind == llm.ProbeCompletion && (!errors.As(err, &le) || le.Kind != llm.KindTimeout) {
			t.Fatalf("stalled %s: %v", kind, err)
		}
		if kind == llm.ProbeModels && err == nil {
			t.Fatal("stalled model list passed")
		}
	}

	// Headers that never come: the probe's context ends it.
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer silent.Close()
	p = buildWith(t, &llm.Provider{Name: "o", Type: llm.ProviderOpenAICompatible, BaseURL: silent.URL}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var le *llm.Error
	if err := Probe(ctx, p, llm.ProbeModels, ""); !errors.As(err, &le) || le.Kind != llm.KindTimeout {
		t.Fatalf("silent upstream: %v", err)
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close()
	p = buildWith(t, &llm.Provider{Name: "o", Type: llm.ProviderOpenAICompatible, BaseURL: url}, Options{})
	if err := Probe(context.Background(), p, llm.ProbeModels, ""); !errors.As(err, &le) || le.Kind != llm.KindUnreachable {
		t.Fatalf("unreachable: %v", err)
	}
	if err := Probe(context.Background(), p, "bogus", ""); err == nil {
		t.Fatal("unknown kind passed")
	}
	if err := Probe(context.Background(), p, llm.ProbeCompletion, ""); err == nil {
		t.Fatal("completion without a model passed")
	}
}

// TestProbeVertex: Vertex AI has no model list to probe; its completion
// probe goes to :generateContent with a fresh access token.
func TestProbeVertex(t *testing.T) {
	ts := newTokenServer(t)
	s := &seen{}
	v := newTestVertex(t, ts, func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, geminiPong)
	})
	if err := Probe(context.Background(), v, llm.ProbeModels, ""); !errors.Is(err, ErrProbeUnsupported) {
		t.Fatalf("vertex models probe: %v", err)
	}
	if err := Probe(context.Background(), v, llm.ProbeCompletion, "gemini-2.0-flash"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(s.uri, "/models/gemini-2.0-flash:generateContent") || !strings.HasPrefix(s.header.Get("Authorization"), "Bearer ") || !strings.Contains(s.body, `"maxOutputTokens":1`) {
		t.Fatalf("vertex probe sent %s %s auth %q", s.uri, s.body, s.header.Get("Authorization"))
	}
}
