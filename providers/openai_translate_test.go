package providers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/openai/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// translatedUpstream answers chat and embeddings requests with the golden
// OpenAI payloads and records what it was sent.
type translatedUpstream struct {
	path  atomic.Value
	body  atomic.Value
	calls atomic.Int32
}

func (u *translatedUpstream) handler(t *testing.T, stream, answer []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		u.path.Store(r.URL.Path)
		u.body.Store(b)
		if r.Header.Get("Authorization") != "Bearer "+secret {
			w.WriteHeader(401)
			return
		}
		var req struct {
			Stream bool `json:"stream"`
		}
		if err := json.Unmarshal(b, &req); err != nil {
			w.WriteHeader(400)
			return
		}
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write(stream)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	}
}

func neutralChat(stream bool) *llm.ChatRequest {
	return &llm.ChatRequest{Model: "gpt-4o", System: []llm.Part{{Type: llm.PartText, Text: "be brief"}},
		Messages:  []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "weather in Boston?"}}}},
		Tools:     []llm.Tool{{Name: "get_current_weather", Parameters: json.RawMessage(`{"type":"object"}`)}},
		MaxTokens: 100, TopK: new(int), Stream: stream}
}

// Neutral request in, neutral answer out, through an OpenAI wire upstream.
func TestOpenAITranslatedChat(t *testing.T) {
	var u translatedUpstream
	p := newTestOpenAI(t, u.handler(t, golden(t, "stream_tool_call.sse"), golden(t, "chat_functions.response.json")), llm.Timeouts{})
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Dialect: llm.DialectAnthropicMessages, Chat: neutralChat(false), RequestID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Decoder == nil {
		t.Fatal("no decoder on the translated lane")
	}
	sent := string(u.body.Load().([]byte))
	if u.path.Load() != "/v1/chat/completions" || sent != `{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"weather in Boston?"}],`+
		`"tools":[{"type":"function","function":{"name":"get_current_weather","parameters":{"type":"object"}}}],"max_completion_tokens":100}` {
		t.Fatalf("sent %s %s", u.path.Load(), sent)
	}
	r, err := resp.Decoder.Chat(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Choices) != 1 || r.Choices[0].Message.ToolCalls[0].Name != "get_current_weather" || r.Choices[0].FinishReason != llm.FinishToolCalls ||
		r.Usage.PromptTokens != 82 || !r.UsageKnown {
		t.Fatalf("%+v", r)
	}

	resp, err = p.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Chat: neutralChat(true), Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if !strings.Contains(string(u.body.Load().([]byte)), `"stream":true,"stream_options":{"include_usage":true}`) {
		t.Fatalf("sent %s", u.body.Load())
	}
	s := resp.Decoder.Stream(resp.Body)
	var text, args strings.Builder
	var kinds []llm.EventKind
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
		case llm.EventText:
			text.WriteString(ev.Text)
		case llm.EventToolArgs:
			args.WriteString(ev.Text)
		}
	}
	if !strings.HasPrefix(text.String(), "Let's take a journey") || args.String() != `{"location":"Santorini, Greece"}` ||
		kinds[0] != llm.EventStart || kinds[len(kinds)-1] != llm.EventUsage {
		t.Fatalf("%q %q %v", text.String(), args.String(), kinds)
	}
}

// An error the upstream reports inside a 2xx (an error event mid-stream, an
// error member) reaches the router attributed and redacted of the key.
func TestOpenAITranslatedErrorsRedacted(t *testing.T) {
	stream := []byte(`data: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}]}` + "\n\n" +
		`data: {"error":{"message":"invalid key ` + secret + `","type":"server_error","code":503}}` + "\n\n")
	answer := []byte(`{"error":{"message":"bad key ` + secret + `","code":429}}`)
	var u translatedUpstream
	p := newTestOpenAI(t, u.handler(t, stream, answer), llm.Timeouts{})
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Chat: neutralChat(true), Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := resp.Decoder.Stream(resp.Body)
	var got *llm.Error
	for {
		ev, err := s.Next()
		if err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
		if ev.Kind == llm.EventError {
			got = ev.Err
		}
	}
	if got == nil || strings.Contains(got.Message, secret) || got.Provider != "up" || got.UpstreamStatus != 503 || got.Status != 503 {
		t.Fatalf("%+v", got)
	}
	resp2, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Chat: neutralChat(false)})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	_, err = resp2.Decoder.Chat(body)
	var e *llm.Error
	if !errors.As(err, &e) || strings.Contains(e.Error(), secret) || e.UpstreamStatus != 429 || e.Provider != "up" {
		t.Fatalf("%+v", err)
	}
	// A stream cut before the answer finished is an error, not a success.
	var cut translatedUpstream
	p = newTestOpenAI(t, cut.handler(t, []byte(`data: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}]}`+"\n\n"), nil), llm.Timeouts{})
	resp3, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Chat: neutralChat(true), Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer resp3.Body.Close()
	s = resp3.Decoder.Stream(resp3.Body)
	for {
		_, err := s.Next()
		if err == io.EOF {
			t.Fatal("a cut stream ended cleanly")
		}
		if err != nil {
			break
		}
	}
}

func TestOpenAITranslatedEmbeddings(t *testing.T) {
	var u translatedUpstream
	p := newTestOpenAI(t, u.handler(t, nil, golden(t, "embeddings.response.json")), llm.Timeouts{})
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointEmbeddings, Embed: &llm.EmbedRequest{Model: "e", Inputs: []string{"a", "b"}, Dimensions: 3}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if u.path.Load() != "/v1/embeddings" || string(u.body.Load().([]byte)) != `{"model":"e","input":["a","b"],"dimensions":3,"encoding_format":"float"}` {
		t.Fatalf("sent %s %s", u.path.Load(), u.body.Load())
	}
	r, err := resp.Decoder.Embed(body)
	if err != nil || len(r.Vectors) != 1 || r.Usage.PromptTokens != 8 {
		t.Fatalf("%+v %v", r, err)
	}
}

// A server that rejects stream_options is asked again without it, and
// from then on never sent it; a request the codec refuses never leaves.
func TestOpenAITranslatedStreamOptions(t *testing.T) {
	var calls atomic.Int32
	p := newTestOpenAI(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), "stream_options") {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"message":"Unrecognized request argument supplied: stream_options","type":"invalid_request_error"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: [DONE]\n\n")
	}, llm.Timeouts{})
	for i, want := range []int32{2, 1} {
		calls.Store(0)
		resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Chat: neutralChat(true), Stream: true})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if n := calls.Load(); n != want {
			t.Fatalf("stream %d: %d upstream calls, want %d", i, n, want)
		}
	}
	bad := neutralChat(false)
	bad.Tools[0].Parameters = json.RawMessage(`{`)
	calls.Store(0)
	_, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Chat: bad})
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindInvalidRequest || calls.Load() != 0 {
		t.Fatalf("%v, %d calls", err, calls.Load())
	}
}

// max_completion_tokens (OpenAI's name) goes to OpenAI and to servers
// that take it; a preset that knows max_tokens only gets max_tokens, and
// one without stream_options never gets them.
func TestOpenAITranslatedQuirks(t *testing.T) {
	var u translatedUpstream
	srv := httptest.NewServer(u.handler(t, []byte("data: [DONE]\n\n"), golden(t, "chat_default.response.json")))
	defer srv.Close()
	for _, c := range []struct {
		p          llm.Provider
		max        string
		streamOpts bool
	}{
		{llm.Provider{Name: "oa", Type: llm.ProviderOpenAI, BaseURL: srv.URL, APIKey: secret}, `"max_completion_tokens":100`, true},
		{llm.Provider{Name: "vllm", Type: llm.ProviderOpenAICompatible, BaseURL: srv.URL, APIKey: secret, Options: json.RawMessage(`{"preset":"vllm"}`)}, `"max_completion_tokens":100`, true},
		{llm.Provider{Name: "ds", Type: llm.ProviderOpenAICompatible, BaseURL: srv.URL, APIKey: secret, Options: json.RawMessage(`{"preset":"deepseek"}`)}, `"max_tokens":100`, true},
		{llm.Provider{Name: "mi", Type: llm.ProviderOpenAICompatible, BaseURL: srv.URL, APIKey: secret, Options: json.RawMessage(`{"preset":"mistral"}`)}, `"max_tokens":100`, false},
	} {
		p := build(t, &c.p)
		for _, stream := range []bool{false, true} {
			resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Chat: neutralChat(stream), Stream: stream})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			b := string(u.body.Load().([]byte))
			if !strings.Contains(b, c.max) || strings.Count(b, "max_") != 1 || (stream && strings.Contains(b, "stream_options") != c.streamOpts) {
				t.Fatalf("%s (stream %v) sent %s", c.p.Name, stream, b)
			}
		}
	}
}
