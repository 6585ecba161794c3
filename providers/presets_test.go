package providers

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
)

func TestPresetTable(t *testing.T) {
	names := PresetNames()
	want := "deepseek fireworks groq lmstudio mistral ollama openrouter qwen together vllm xai"
	if strings.Join(names, " ") != want {
		t.Fatalf("presets %v", names)
	}
	for name, p := range presets() {
		cp := llm.Provider{Name: name, Type: llm.ProviderOpenAICompatible, Options: json.RawMessage(`{"preset":"` + name + `"}`)}
		if err := (Options{}).Validate(&cp); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cp.BaseURL != p.baseURL || strings.HasSuffix(p.baseURL, "/") {
			t.Fatalf("%s: base_url %s, want %s", name, cp.BaseURL, p.baseURL)
		}
		if u, err := url.Parse(p.baseURL); err != nil || !strings.HasSuffix(u.Path, "/v1") {
			t.Fatalf("%s: base_url %s does not end in /v1", name, p.baseURL)
		}
		if p.reasoningField != "" && p.reasoningField != "reasoning" && p.reasoningField != "reasoning_content" {
			t.Fatalf("%s: reasoning field %q", name, p.reasoningField)
		}
	}
}

func TestValidatePresetOptions(t *testing.T) {
	v := func(opts, base string) (llm.Provider, error) {
		p := llm.Provider{Name: "p", Type: llm.ProviderOpenAICompatible, BaseURL: base, Options: json.RawMessage(opts)}
		err := (Options{}).Validate(&p)
		return p, err
	}
	// An explicit base_url wins over the preset's.
	if p, err := v(`{"preset":"vllm"}`, "http://gpu-box:9000/v1/"); err != nil || p.BaseURL != "http://gpu-box:9000/v1" {
		t.Fatalf("%v %s", err, p.BaseURL)
	}
	if p, err := v(`{"preset":"mistral","quirks":{"stream_options":true}}`, ""); err != nil ||
		string(p.Options) != `{"preset":"mistral","quirks":{"stream_options":true}}` {
		t.Fatalf("%v %s", err, p.Options)
	}
	for _, c := range []struct{ opts, base, field string }{
		{`{"preset":"nope"}`, "http://x/v1", "options.preset"},
		{`{"preset":"DeepSeek"}`, "http://x/v1", "options.preset"},
		{`{"preset":"deepseek","quirks":{"temperature":false}}`, "", "options"},
		{`{"preset":"deepseek","quirks":{"stream_options":"no"}}`, "", "options"},
		{`{"quirks":{}}`, "", "base_url"},
		{`{}`, "", "base_url"},
	} {
		_, err := v(c.opts, c.base)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%s: %v, want an error on %s", c.opts, err, c.field)
		}
	}
}

// presetProvider builds an openai-compatible provider with options opts in
// front of an upstream recording what it gets.
func presetProvider(t *testing.T, opts string) (Provider, *azureUpstream) {
	t.Helper()
	u := &azureUpstream{}
	srv := newServer(t, u)
	p := llm.Provider{Name: "c", Type: llm.ProviderOpenAICompatible, BaseURL: srv + "/v1", Options: json.RawMessage(opts)}
	if err := (Options{}).Validate(&p); err != nil {
		t.Fatal(err)
	}
	prov, err := NewOpenAI(&p, NewClient(p.Timeouts, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	return prov, u
}

func TestPresetQuirksApplied(t *testing.T) {
	const injected = `{"model":"m","stream":true,"max_completion_tokens":5,"stream_options":{"include_usage":true}}`
	const plain = `{"model":"m","stream":true,"max_completion_tokens":5}`
	cases := []struct {
		opts, want string
	}{
		// mistral: no stream_options, max_tokens.
		{`{"preset":"mistral"}`, `{"model":"m","stream":true,"max_tokens":5}`},
		// deepseek: stream_options fine, max_tokens.
		{`{"preset":"deepseek"}`, `{"model":"m","stream":true,"max_tokens":5,"stream_options":{"include_usage":true}}`},
		// vllm: OpenAI's request as it is.
		{`{"preset":"vllm"}`, injected},
		// no preset: OpenAI's behaviour.
		{`{}`, injected},
		// explicit quirks override the preset's.
		{`{"preset":"mistral","quirks":{"stream_options":true,"max_completion_tokens":true}}`, injected},
		{`{"preset":"vllm","quirks":{"stream_options":false}}`, plain},
		{`{"quirks":{"max_completion_tokens":false}}`, `{"model":"m","stream":true,"max_tokens":5,"stream_options":{"include_usage":true}}`},
	}
	for _, c := range cases {
		p, u := presetProvider(t, c.opts)
		plainCalled := false
		resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Stream: true, Body: []byte(injected),
			PlainBody: func() []byte { plainCalled = true; return []byte(plain) }})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if _, body := u.last(); string(body) != c.want || len(u.reqs) != 1 {
			t.Errorf("%s: sent %d requests, last %s, want %s", c.opts, len(u.reqs), body, c.want)
		}
		if wantPlain := strings.Contains(c.opts, "mistral\"}") || strings.Contains(c.opts, `"stream_options":false`); plainCalled != wantPlain {
			t.Errorf("%s: PlainBody called %v", c.opts, plainCalled)
		}
	}
}

func TestPresetResponsesNative(t *testing.T) {
	for opts, want := range map[string]bool{
		`{"preset":"xai"}`:      true,
		`{"preset":"vllm"}`:     true,
		`{"preset":"deepseek"}`: false,
		`{"preset":"ollama"}`:   true,
		`{}`:                    false,
		`{"preset":"deepseek","quirks":{"responses":true}}`: true,
		`{"preset":"xai","quirks":{"responses":false}}`:     false,
	} {
		p, _ := presetProvider(t, opts)
		if got := p.Native(llm.DialectOpenAIResponses); got != want {
			t.Errorf("%s: Native(responses) = %v", opts, got)
		}
		if !p.Native(llm.DialectOpenAIChat) {
			t.Errorf("%s: not native chat", opts)
		}
	}
}

func TestRenameMaxCompletionTokens(t *testing.T) {
	for in, want := range map[string]string{
		`{"max_completion_tokens":5}`:                               `{"max_tokens":5}`,
		`{ "model" : "m" , "max_completion_tokens" : 5 , "n":1 }`:   `{ "model" : "m" , "max_tokens" : 5 , "n":1 }`,
		`{"max_tokens":7,"max_completion_tokens":5}`:                `{"max_tokens":7}`,
		`{"max_completion_tokens":5,"max_tokens":7}`:                `{"max_tokens":7}`,
		`{"a":1, "max_completion_tokens":5 ,"max_tokens":7}`:        `{"a":1, "max_tokens":7}`,
		`{"a":1,"max_tokens":7 , "max_completion_tokens":5 }`:       `{"a":1,"max_tokens":7 }`,
		`{"messages":[{"max_completion_tokens":5}]}`:                `{"messages":[{"max_completion_tokens":5}]}`,
		`{"metadata":{"max_completion_tokens":"x"},"max_tokens":1}`: `{"metadata":{"max_completion_tokens":"x"},"max_tokens":1}`,
		`{"max_completion_tokens":5,"max_completion_tokens":6}`:     `{"max_tokens":5,"max_completion_tokens":6}`,
		`not json`:                   `not json`,
		`{"max_completion_tokens":5`: `{"max_completion_tokens":5`,
		`{"x":"\"max_completion_tokens\":1","max_completion_tokens":2}`:  `{"x":"\"max_completion_tokens\":1","max_tokens":2}`,
		`{"max_completion_tokens"` + "\n:\t" + `{"nested":[1,2]},"z":0}`: `{"max_tokens"` + "\n:\t" + `{"nested":[1,2]},"z":0}`,
	} {
		got := string(renameMaxCompletionTokens([]byte(in)))
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
	}
	// Nothing to do: the same slice comes back, nothing allocated.
	b := []byte(`{"model":"m","max_tokens":3,"messages":[]}`)
	if n := testing.AllocsPerRun(100, func() { _ = renameMaxCompletionTokens(b) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func FuzzRenameMaxCompletionTokens(f *testing.F) {
	for _, s := range []string{`{"max_completion_tokens":5}`, `{"max_tokens":7,"max_completion_tokens":5}`,
		`{"max_completion_tokens":5 , "max_tokens":7}`, `{"a":{"max_completion_tokens":1}}`, `{"max_completion_tokens"`, `{`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out := renameMaxCompletionTokens(b)
		if len(out) > len(b) {
			t.Fatalf("grew: %q -> %q", b, out)
		}
		if string(out) == string(b) {
			return
		}
		// A rewrite keeps an object an object, and leaves no
		// max_completion_tokens at the top level when it renamed the first.
		if _, err := jsonspan.EachMember(out, func(key []byte, vs, ve int) error { return nil }); err != nil {
			t.Fatalf("%q -> %q is no longer an object", b, out)
		}
	})
}

func BenchmarkRenameMaxCompletionTokens(b *testing.B) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("hello ", 200) + `"}],"max_completion_tokens":5,"stream":true}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_ = renameMaxCompletionTokens(body)
	}
}

// Without stream_options support none is sent on either lane, even one
// the client wrote itself.
func TestPresetNoStreamOptionsBothLanes(t *testing.T) {
	p, u := presetProvider(t, `{"preset":"mistral"}`)
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Stream: true,
		Body: []byte(`{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}`)})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, body := u.last(); string(body) != `{"model":"m","stream":true,"messages":[]}` {
		t.Fatalf("raw lane sent %s", body)
	}
	chat := &llm.ChatRequest{Model: "mistral-large", Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}}},
		MaxTokens: 9, Stream: true}
	resp, err = p.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Chat: chat, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, body := u.last(); strings.Contains(string(body), "stream_options") || strings.Contains(string(body), "max_completion_tokens") ||
		!strings.Contains(string(body), `"max_tokens":9`) || len(u.reqs) != 2 {
		t.Fatalf("translated lane sent %s (%d requests)", body, len(u.reqs))
	}
}

func TestRemoveMember(t *testing.T) {
	for in, want := range map[string]string{
		`{"stream_options":{"include_usage":true}}`:       `{}`,
		`{"a":1,"stream_options":{"include_usage":true}}`: `{"a":1}`,
		`{"stream_options":{"include_usage":true},"a":1}`: `{"a":1}`,
		`{"a":1, "stream_options" : null , "b":2}`:        `{"a":1, "b":2}`,
		`{"a":{"stream_options":1}}`:                      `{"a":{"stream_options":1}}`,
		`{"a":"\"stream_options\":1"}`:                    `{"a":"\"stream_options\":1"}`,
		`[{"stream_options":1}]`:                          `[{"stream_options":1}]`,
		`{"stream_options":1,"stream_options":2}`:         `{"stream_options":2}`,
	} {
		if got := string(removeMember([]byte(in), "stream_options")); got != want {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
	}
}

func FuzzQuirksApply(f *testing.F) {
	for _, s := range []string{`{"stream_options":{"include_usage":true},"max_completion_tokens":5}`,
		`{"max_tokens":7,"stream_options":null,"max_completion_tokens":5}`, `{"stream_options"`, `{ }`, `x`} {
		f.Add([]byte(s))
	}
	q := quirks{noStreamOptions: true, renameMaxCompletionTokens: true}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := append([]byte(nil), b...)
		out := q.apply(b)
		if string(b) != string(in) {
			t.Fatalf("input modified")
		}
		if len(out) > len(b) {
			t.Fatalf("grew: %q -> %q", b, out)
		}
		if string(out) != string(b) {
			if _, err := jsonspan.EachMember(out, func([]byte, int, int) error { return nil }); err != nil {
				t.Fatalf("%q -> %q is no longer an object", b, out)
			}
		}
	})
}
