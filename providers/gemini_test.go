package providers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

const geminiKey = "AIzaSyA-test-key-0123456789abcdefghijkl"

func geminiFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "gemini", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buildWith validates and builds p with opts as the registry does.
func buildWith(t *testing.T, p *llm.Provider, opts Options) Provider {
	t.Helper()
	cp := *p
	if err := opts.Validate(&cp); err != nil {
		t.Fatal(err)
	}
	prov, err := families()[cp.Type].build(&cp, NewClient(cp.Timeouts, opts))
	if err != nil {
		t.Fatal(err)
	}
	return prov
}

func newTestGemini(t *testing.T, h http.HandlerFunc) Provider {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return buildWith(t, &llm.Provider{Name: "gem", Type: llm.ProviderGemini, BaseURL: srv.URL, APIKey: geminiKey}, Options{AllowPrivateImageURLs: true})
}

func userChat(model, text string) *llm.ChatRequest {
	return &llm.ChatRequest{Model: model, Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: text}}}}}
}

func asLLMError(t *testing.T, err error) *llm.Error {
	t.Helper()
	var e *llm.Error
	if !errors.As(err, &e) {
		t.Fatalf("not an *llm.Error: %v", err)
	}
	return e
}

func TestGeminiTranslatedChat(t *testing.T) {
	var body map[string]any
	p := newTestGemini(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1beta/models/gemini-2.5-flash:generateContent" || r.URL.RawQuery != "" {
			t.Errorf("path %s?%s", r.URL.Path, r.URL.RawQuery)
		}
		if r.Header.Get("X-Goog-Api-Key") != geminiKey || r.Header.Get("Authorization") != "" {
			t.Errorf("auth headers: %v", r.Header)
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(geminiFixture(t, "function_call.json"))
	})
	if p.Native(llm.DialectOpenAIChat) || p.Native(llm.DialectAnthropicMessages) {
		t.Error("gemini claims a native dialect")
	}
	chat := userChat("gemini-2.5-flash", "Control the light in the living room to 50% brightness and warm white color.")
	chat.Tools = []llm.Tool{{Name: "controlLight", Parameters: json.RawMessage(`{"type":"object","properties":{"brightness":{"type":"number"}},"additionalProperties":false}`)}}
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Dialect: llm.DialectOpenAIChat, Chat: chat})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out, err := resp.Decoder.Chat(raw)
	if err != nil {
		t.Fatal(err)
	}
	if tc := out.Choices[0].Message.ToolCalls; len(tc) != 1 || tc[0].Name != "controlLight" || out.Choices[0].FinishReason != llm.FinishToolCalls {
		t.Errorf("answer: %+v", out)
	}
	if out.Usage.PromptTokens != 31 || out.Usage.CompletionTokens != 7 {
		t.Errorf("usage: %+v", out.Usage)
	}
	if body["contents"] == nil || strings.Contains(toJSON(body), "additionalProperties") {
		t.Errorf("request body: %v", body)
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestGeminiStreamingToolCall(t *testing.T) {
	p := newTestGemini(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1beta/models/gemini-2.5-flash:streamGenerateContent" || r.URL.RawQuery != "alt=sse" {
			t.Errorf("path %s?%s", r.URL.Path, r.URL.RawQuery)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(geminiFixture(t, "stream_tool_call.sse"))
	})
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Chat: userChat("gemini-2.5-flash", "light"), Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := resp.Decoder.Stream(resp.Body)
	var kinds []llm.EventKind
	var name, args, finish string
	var usage llm.Usage
	for {
		ev, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, ev.Kind)
		switch ev.Kind {
		case llm.EventToolStart:
			name = ev.Name
		case llm.EventToolArgs:
			args += ev.Text
		case llm.EventFinish:
			finish = ev.FinishReason
		case llm.EventUsage:
			usage = ev.Usage
		}
	}
	if name != "controlLight" || !json.Valid([]byte(args)) || finish != llm.FinishToolCalls || usage.CompletionTokens != 19 || usage.ReasoningTokens != 12 {
		t.Errorf("stream: kinds %v name %q args %q finish %q usage %+v", kinds, name, args, finish, usage)
	}
}

func TestGeminiErrors(t *testing.T) {
	for _, tc := range []struct {
		status  int
		body    string
		want    int
		code    string
		retry   bool
		noEcho  bool
		message string
	}{
		{400, `{"error":{"code":400,"message":"Invalid JSON payload received.","status":"INVALID_ARGUMENT"}}`, 400, "INVALID_ARGUMENT", false, false, "Invalid JSON payload"},
		{400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}`, 502, "upstream_auth_failed", false, false, "credentials"},
		{403, `{"error":{"code":403,"message":"Method doesn't allow unregistered callers","status":"PERMISSION_DENIED"}}`, 502, "upstream_auth_failed", false, false, "credentials"},
		{429, `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`, 429, "RESOURCE_EXHAUSTED", true, false, "exhausted"},
		{503, `{"error":{"code":503,"message":"The model is overloaded. key=` + geminiKey + `","status":"UNAVAILABLE"}}`, 503, "UNAVAILABLE", true, true, "overloaded"},
		{500, string(geminiFixtureOrEmpty("error_internal.json")), 500, "INTERNAL_SERVER_ERROR", false, false, "internal server error"},
	} {
		p := newTestGemini(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(tc.status)
			_, _ = io.WriteString(w, tc.body)
		})
		_, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Chat: userChat("m", "hi")})
		e := asLLMError(t, err)
		if e.Status != tc.want || e.Code != tc.code || e.UpstreamStatus != tc.status || !strings.Contains(e.Message, tc.message) {
			t.Errorf("%d %s: got status %d code %q upstream %d message %q", tc.status, tc.code, e.Status, e.Code, e.UpstreamStatus, e.Message)
		}
		if tc.retry && e.RetryAfter != 7*time.Second {
			t.Errorf("%d: retry after %v", tc.status, e.RetryAfter)
		}
		if strings.Contains(e.Message, geminiKey[8:20]) {
			t.Errorf("%d: key echoed: %q", tc.status, e.Message)
		}
	}
}

func geminiFixtureOrEmpty(name string) []byte {
	b, _ := os.ReadFile(filepath.Join("testdata", "gemini", name))
	return b
}

func TestGeminiInBandErrorAndEmbeddings(t *testing.T) {
	p := newTestGemini(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, ":batchEmbedContents"):
			var req struct {
				Requests []struct {
					Model string `json:"model"`
				} `json:"requests"`
			}
			b, _ := io.ReadAll(r.Body)
			if json.Unmarshal(b, &req) != nil || len(req.Requests) != 2 || req.Requests[0].Model != "models/text-embedding-004" {
				t.Errorf("embed body %s", b)
			}
			_, _ = w.Write(geminiFixture(t, "embed.json"))
		default:
			_, _ = io.WriteString(w, `{"error":{"code":429,"message":"quota `+geminiKey+`","status":"RESOURCE_EXHAUSTED"}}`)
		}
	})
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointEmbeddings, Embed: &llm.EmbedRequest{Model: "text-embedding-004", Inputs: []string{"a", "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	emb, err := resp.Decoder.Embed(raw)
	if err != nil || len(emb.Vectors) != 2 || emb.Model != "text-embedding-004" || emb.UsageKnown {
		t.Errorf("embed: %+v %v", emb, err)
	}
	resp, err = p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Chat: userChat("m", "hi")})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	_, err = resp.Decoder.Chat(raw)
	e := asLLMError(t, err)
	if e.UpstreamStatus != 429 || e.Status != 429 || e.Provider != "gem" || strings.Contains(e.Message, geminiKey) {
		t.Errorf("in-band error: %+v", e)
	}
}

func TestGeminiRefusesRawLaneAndBadConfig(t *testing.T) {
	p := newTestGemini(t, func(w http.ResponseWriter, r *http.Request) { t.Error("upstream contacted") })
	_, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Body: []byte(`{}`)})
	if e := asLLMError(t, err); e.Status != 400 {
		t.Errorf("raw lane: %+v", e)
	}
	_, err = p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Chat: &llm.ChatRequest{Model: "m", N: 2, Messages: []llm.Message{{Role: llm.RoleTool, ToolCallID: "x"}}}})
	if e := asLLMError(t, err); e.Status != 400 {
		t.Errorf("orphan tool result: %+v", e)
	}
	for _, pr := range []*llm.Provider{
		{Name: "g", Type: llm.ProviderGemini},
		{Name: "g", Type: llm.ProviderGemini, APIKey: "k", Options: json.RawMessage(`{"api_version":"v2"}`)},
		{Name: "g", Type: llm.ProviderGemini, APIKey: "k", Secrets: map[string]string{"x": "y"}},
	} {
		if err := (Options{}).Validate(pr); err == nil {
			t.Errorf("accepted %+v", pr)
		}
	}
	ok := &llm.Provider{Name: "g", Type: llm.ProviderGemini, APIKey: "k"}
	if err := (Options{}).Validate(ok); err != nil || ok.BaseURL != DefaultGeminiBaseURL {
		t.Errorf("default: %v %q", err, ok.BaseURL)
	}
}

func TestGeminiFetchesImageURLs(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\nfake image bytes")
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(png)
	}))
	defer img.Close()
	var got string
	p := newTestGemini(t, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Contents []struct {
				Parts []struct {
					InlineData *struct {
						MimeType string `json:"mimeType"`
						Data     string `json:"data"`
					} `json:"inlineData"`
				} `json:"parts"`
			} `json:"contents"`
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &req)
		if d := req.Contents[0].Parts[1].InlineData; d != nil && d.MimeType == "image/png" {
			got = d.Data
		}
		_, _ = w.Write(geminiFixture(t, "text.json"))
	})
	chat := userChat("m", "what is this")
	chat.Messages[0].Content = append(chat.Messages[0].Content, llm.Part{Type: llm.PartImage, Image: &llm.Image{URL: img.URL + "/a.png"}})
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Chat: chat})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != base64.StdEncoding.EncodeToString(png) {
		t.Errorf("inline data %q", got)
	}
	if chat.Messages[0].Content[1].Image.Data != "" {
		t.Error("the shared request was modified")
	}
}

func TestGeminiStreamErrorEventRedacted(t *testing.T) {
	p := newTestGemini(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\r\n\r\n"+
			"data: {\"error\":{\"code\":503,\"message\":\"overloaded for key "+geminiKey+"\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n")
	})
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Chat: userChat("m", "hi"), Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := resp.Decoder.Stream(resp.Body)
	var last *llm.Event
	for {
		ev, err := s.Next()
		if err != nil {
			break
		}
		cp := *ev
		last = &cp
	}
	if last == nil || last.Kind != llm.EventError || last.Err.UpstreamStatus != 503 || last.Err.Provider != "gem" ||
		strings.Contains(last.Err.Message, geminiKey[10:18]) || !strings.Contains(last.Err.Message, "[redacted]") {
		t.Errorf("last event %+v (err %+v)", last, last.Err)
	}
}
