package providers

import (
	"bytes"
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
	"time"

	"github.com/sluice-ai/sluice/llm"
)

const anthropicKey = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789"

func anthropicFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/anthropic/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newTestAnthropic builds an anthropic provider for an httptest upstream
// running h; base is appended to the server's URL.
func newTestAnthropic(t *testing.T, h http.HandlerFunc, base, options string) *Anthropic {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	p := &llm.Provider{Name: "claude", Type: llm.ProviderAnthropic, BaseURL: srv.URL + base, APIKey: anthropicKey}
	if options != "" {
		p.Options = json.RawMessage(options)
	}
	if err := (Options{}).Validate(p); err != nil {
		t.Fatal(err)
	}
	prov, err := NewAnthropic(p, NewClient(p.Timeouts, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	return prov.(*Anthropic)
}

func TestAnthropicRawLane(t *testing.T) {
	req := anthropicFixture(t, "tooluse_request.json")
	resp := anthropicFixture(t, "tooluse_response.json")
	for _, base := range []string{"", "/", "/v1", "/v1/"} {
		var got *http.Request
		var body []byte
		a := newTestAnthropic(t, func(w http.ResponseWriter, r *http.Request) {
			got, body = r, must(io.ReadAll(r.Body))
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(resp)
		}, base, `{"beta":["prompt-caching-2024-07-31","output-128k-2025-02-19"]}`)
		if !a.Native(llm.DialectAnthropicMessages) || a.Native(llm.DialectOpenAIChat) {
			t.Fatal("Native")
		}
		r, err := a.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Dialect: llm.DialectAnthropicMessages, Body: req, RequestID: "req_1"})
		if err != nil {
			t.Fatal(err)
		}
		out := must(io.ReadAll(r.Body))
		r.Body.Close()
		if r.Decoder != nil || !bytes.Equal(out, resp) {
			t.Errorf("raw answer altered")
		}
		if got.URL.Path != "/v1/messages" || !bytes.Equal(body, req) {
			t.Errorf("base %q: path %s", base, got.URL.Path)
		}
		h := got.Header
		if h.Get("X-Api-Key") != anthropicKey || h.Get("Anthropic-Version") != DefaultAnthropicVersion ||
			h.Get("Anthropic-Beta") != "prompt-caching-2024-07-31,output-128k-2025-02-19" || h.Get("Content-Type") != "application/json" ||
			h.Get("Authorization") != "" || h.Get("X-Request-Id") != "req_1" {
			t.Errorf("headers %v", h)
		}
	}
}

func TestAnthropicOptions(t *testing.T) {
	for opts, ok := range map[string]bool{
		`{}`:                                  true,
		`{"anthropic_version":"2023-01-01"}`:  true,
		`{"anthropic_version":"a\nb"}`:        false,
		`{"beta":["a,b"]}`:                    false,
		`{"beta":[""]}`:                       false,
		`{"betas":["x"]}`:                     false,
		`{"beta":"x"}`:                        false,
		`{"beta":["files-api-2025-04-14"]}`:   true,
		`{"anthropic_version":"2023-06-01",}`: false,
	} {
		p := &llm.Provider{Name: "c", Type: llm.ProviderAnthropic, APIKey: "k", Options: json.RawMessage(opts)}
		err := (Options{}).Validate(p)
		if (err == nil) != ok {
			t.Errorf("%s: %v", opts, err)
		}
		if ok && p.BaseURL != DefaultAnthropicBaseURL {
			t.Errorf("base %s", p.BaseURL)
		}
	}
	p := &llm.Provider{Name: "c", Type: llm.ProviderAnthropic, Secrets: map[string]string{"x": "y"}}
	if err := (Options{}).Validate(p); err == nil {
		t.Error("secrets accepted")
	}
	a := newTestAnthropic(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Anthropic-Version") != "2099-01-01" {
			w.WriteHeader(400)
		}
	}, "", `{"anthropic_version":"2099-01-01"}`)
	r, err := a.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Body: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
}

func TestAnthropicTranslatedLane(t *testing.T) {
	var sent []byte
	var stream atomic.Bool
	a := newTestAnthropic(t, func(w http.ResponseWriter, r *http.Request) {
		sent = must(io.ReadAll(r.Body))
		if stream.Load() {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write(anthropicFixture(t, "stream_text_tooluse.sse"))
			return
		}
		_, _ = w.Write(anthropicFixture(t, "tooluse_response.json"))
	}, "", "")
	chat := &llm.ChatRequest{Model: "claude-3-7-sonnet-latest", MaxTokens: 512,
		System:   []llm.Part{{Type: llm.PartText, Text: "be brief"}},
		Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "What's the weather in San Francisco? Use fahrenheit."}}}},
		Tools:    []llm.Tool{{Name: "get_weather", Description: "Get weather", Parameters: json.RawMessage(`{"type":"object"}`)}}}
	resp, err := a.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Dialect: llm.DialectOpenAIChat, Chat: chat})
	if err != nil {
		t.Fatal(err)
	}
	body := must(io.ReadAll(resp.Body))
	resp.Body.Close()
	want := `{"model":"claude-3-7-sonnet-latest","max_tokens":512,"system":"be brief","messages":[{"role":"user","content":"What's the weather in San Francisco? Use fahrenheit."}],"tools":[{"name":"get_weather","description":"Get weather","input_schema":{"type":"object"}}]}`
	if string(sent) != want {
		t.Errorf("sent\n%s\nwant\n%s", sent, want)
	}
	cr, err := resp.Decoder.Chat(body)
	if err != nil {
		t.Fatal(err)
	}
	if cr.Choices[0].FinishReason != llm.FinishToolCalls || cr.Choices[0].Message.ToolCalls[0].Name != "get_weather" || cr.Usage.PromptTokens != 402 {
		t.Errorf("%+v", cr)
	}

	stream.Store(true)
	resp, err = a.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Dialect: llm.DialectOpenAIChat, Chat: chat, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if !bytes.HasSuffix(sent, []byte(`,"stream":true}`)) {
		t.Errorf("stream not asked: %s", sent)
	}
	s := resp.Decoder.Stream(resp.Body)
	// An event's text is valid until the next call: copied as it comes
	// (text += ev.Text would keep the decoder's buffer itself).
	var text, args strings.Builder
	var u llm.Usage
	for {
		ev, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case llm.EventText:
			text.WriteString(ev.Text)
		case llm.EventToolArgs:
			args.WriteString(ev.Text)
		case llm.EventUsage:
			u = ev.Usage
		}
	}
	if !strings.HasPrefix(text.String(), "I'll get") || args.String() != `{"city": "San Francisco", "units": "fahrenheit"}` || u.PromptTokens != 397 || u.CompletionTokens != 89 {
		t.Errorf("%q %q %+v", text.String(), args.String(), u)
	}
}

func TestAnthropicTranslatedRefusesBeforeContact(t *testing.T) {
	var calls atomic.Int32
	a := newTestAnthropic(t, func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }, "", "")
	for _, call := range []*Call{
		{Endpoint: llm.EndpointChat, Chat: &llm.ChatRequest{Model: "m", N: 3, Messages: []llm.Message{{Role: llm.RoleUser}}}},
		{Endpoint: llm.EndpointChat, Chat: &llm.ChatRequest{Model: "m", ResponseFormat: &llm.ResponseFormat{Type: "json_object"}}},
		{Endpoint: llm.EndpointEmbeddings, Embed: &llm.EmbedRequest{Model: "m", Inputs: []string{"x"}}},
		{Endpoint: llm.EndpointChat, Body: []byte(`{}`)},
	} {
		_, err := a.Do(context.Background(), call)
		var e *llm.Error
		if !errors.As(err, &e) || e.Status != 400 {
			t.Errorf("%+v: %v", call, err)
		}
	}
	if calls.Load() != 0 {
		t.Errorf("%d upstream calls", calls.Load())
	}
}

func TestAnthropicOverloaded(t *testing.T) {
	a := newTestAnthropic(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(529)
		_, _ = io.WriteString(w, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
	}, "", "")
	_, err := a.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Body: []byte(`{}`)})
	var e *llm.Error
	if !errors.As(err, &e) || e.Status != 503 || e.UpstreamStatus != 529 || e.Type != "overloaded_error" ||
		e.Message != "Overloaded" || e.RetryAfter != 7*time.Second || e.Provider != "claude" {
		t.Errorf("%+v", err)
	}
}

func TestAnthropicRedactsEchoedKey(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		_, _ = io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"bad key `+r.Header.Get("X-Api-Key")+` and `+r.Header.Get("X-Api-Key")[:14]+`"}}`)
	}
	a := newTestAnthropic(t, echo, "", "")
	_, err := a.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Body: []byte(`{}`)})
	var e *llm.Error
	if !errors.As(err, &e) || e.UpstreamStatus != 400 || strings.Contains(e.Message, anthropicKey[:10]) || !strings.Contains(e.Message, "[redacted]") {
		t.Errorf("%+v", err)
	}
	// Mid-stream, in an error event of the translated lane.
	a = newTestAnthropic(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3}}}\n\n"+
			"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"key "+r.Header.Get("X-Api-Key")+" overloaded\"}}\n\n")
	}, "", "")
	resp, err := a.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Stream: true, Chat: &llm.ChatRequest{Model: "m",
		Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "x"}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := resp.Decoder.Stream(resp.Body)
	var got *llm.Error
	for {
		ev, err := s.Next()
		if err != nil {
			break
		}
		if ev.Kind == llm.EventError {
			got = ev.Err
		}
	}
	if got == nil || strings.Contains(got.Message, anthropicKey[:10]) || got.UpstreamStatus != 529 || got.Status != 503 || got.Provider != "claude" {
		t.Errorf("%+v", got)
	}
	if r := a.Redact(nil, []byte("x "+anthropicKey)); bytes.Contains(r, []byte(anthropicKey[:10])) {
		t.Errorf("Redact %s", r)
	}
}

func TestAnthropicCountTokens(t *testing.T) {
	a := newTestAnthropic(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/messages/count_tokens" || r.Header.Get("X-Api-Key") != anthropicKey {
			w.WriteHeader(404)
			return
		}
		_, _ = io.WriteString(w, `{"input_tokens":14}`)
	}, "/v1", "")
	r, err := a.CountTokens(context.Background(), []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if b := must(io.ReadAll(r.Body)); string(b) != `{"input_tokens":14}` {
		t.Errorf("%s", b)
	}
	if a.Timeouts().Idle != llm.DefaultIdleTimeout {
		t.Error("timeouts")
	}
}
