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
	"sync"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

const azureKey = "0123456789abcdef0123456789abcdef"
const azureToken = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra-token-payload.signature"

// azureUpstream records what an Azure test upstream received.
type azureUpstream struct {
	mu      sync.Mutex
	reqs    []*http.Request
	bodies  [][]byte
	status  int
	payload []byte
}

func (u *azureUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.reqs, u.bodies = append(u.reqs, r), append(u.bodies, b)
	status, payload := u.status, u.payload
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	if payload == nil {
		payload = []byte(`{"ok":true}`)
	}
	w.Write(payload)
}

func (u *azureUpstream) last() (*http.Request, []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.reqs[len(u.reqs)-1], u.bodies[len(u.bodies)-1]
}

// newTestAzure validates and builds an azure provider in front of u; base
// is appended to the server URL.
func newTestAzure(t *testing.T, u *azureUpstream, base string, p llm.Provider) Provider {
	t.Helper()
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	p.Name, p.Type, p.BaseURL = "az", llm.ProviderAzure, srv.URL+base
	if err := (Options{}).Validate(&p); err != nil {
		t.Fatal(err)
	}
	prov, err := NewAzure(&p, NewClient(p.Timeouts, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	return prov
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAzureURLs(t *testing.T) {
	cases := []struct {
		name     string
		base     string
		options  string
		call     Call
		wantURI  string // RequestURI as the upstream saw it
		wantBody string // "" = the call's body
	}{
		{name: "chat", base: "", call: Call{Endpoint: llm.EndpointChat, Model: "gpt-4o-prod", Body: []byte(`{"model":"gpt-4o-prod","messages":[]}`)},
			wantURI: "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"},
		{name: "completions", base: "/", call: Call{Endpoint: llm.EndpointCompletions, Model: "instruct", Body: []byte(`{"model":"instruct","prompt":"x"}`)},
			wantURI: "/openai/deployments/instruct/completions?api-version=2024-10-21"},
		{name: "embeddings with trailing /openai", base: "/openai/", call: Call{Endpoint: llm.EndpointEmbeddings, Model: "ada", Body: []byte(`{"input":"x"}`)},
			wantURI: "/openai/deployments/ada/embeddings?api-version=2024-10-21"},
		{name: "api_version option", options: `{"api_version":"2025-04-01-preview"}`, call: Call{Endpoint: llm.EndpointChat, Model: "d", Body: []byte(`{}`)},
			wantURI: "/openai/deployments/d/chat/completions?api-version=2025-04-01-preview"},
		{name: "model from the body", call: Call{Endpoint: llm.EndpointChat, Body: []byte(` { "messages":[{"model":"inner"}], "model" : "from-body" }`)},
			wantURI: "/openai/deployments/from-body/chat/completions?api-version=2024-10-21"},
		{name: "escaped model in the body", call: Call{Endpoint: llm.EndpointChat, Body: []byte(`{"model":"a\/b\u0020c"}`)},
			wantURI: "/openai/deployments/a%2Fb%20c/chat/completions?api-version=2024-10-21"},
		{name: "odd deployment names are path-escaped", call: Call{Endpoint: llm.EndpointChat, Model: "my dep/../x?y#z%é", Body: []byte(`{}`)},
			wantURI: "/openai/deployments/my%20dep%2F..%2Fx%3Fy%23z%25%C3%A9/chat/completions?api-version=2024-10-21"},
		{name: "path prefix (API Management)", base: "/apim/aoai", call: Call{Endpoint: llm.EndpointChat, Model: "d", Body: []byte(`{}`)},
			wantURI: "/apim/aoai/openai/deployments/d/chat/completions?api-version=2024-10-21"},
		{name: "responses", call: Call{Endpoint: llm.EndpointResponses, Model: "d", Body: []byte(`{"model":"d","input":"hi"}`)},
			wantURI: "/openai/v1/responses"},
		{name: "v1 chat", options: `{"use_v1":true}`, call: Call{Endpoint: llm.EndpointChat, Model: "d", Body: []byte(`{"model":"d"}`)},
			wantURI: "/openai/v1/chat/completions"},
		{name: "v1 embeddings", options: `{"use_v1":true}`, call: Call{Endpoint: llm.EndpointEmbeddings, Model: "d", Body: []byte(`{"model":"d"}`)},
			wantURI: "/openai/v1/embeddings"},
		{name: "v1 without any model", options: `{"use_v1":true}`, call: Call{Endpoint: llm.EndpointChat, Body: []byte(`{}`)},
			wantURI: "/openai/v1/chat/completions"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := &azureUpstream{}
			p := newTestAzure(t, u, c.base, llm.Provider{APIKey: azureKey, Options: json.RawMessage(c.options)})
			resp, err := p.Do(context.Background(), &c.call)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			r, body := u.last()
			if r.RequestURI != c.wantURI {
				t.Errorf("URI %s, want %s", r.RequestURI, c.wantURI)
			}
			if string(body) != string(c.call.Body) {
				t.Errorf("body %s, want %s", body, c.call.Body)
			}
		})
	}
}

// A call without a usable deployment fails before any upstream contact.
func TestAzureNeedsDeployment(t *testing.T) {
	for _, call := range []Call{
		{Endpoint: llm.EndpointChat, Body: []byte(`{"messages":[]}`)},
		{Endpoint: llm.EndpointChat, Body: []byte(`{"model":42}`)},
		{Endpoint: llm.EndpointChat, Body: []byte(`{"model":"`)},
		{Endpoint: llm.EndpointChat, Model: "..", Body: []byte(`{}`)},
		{Endpoint: llm.EndpointChat, Model: ".", Body: []byte(`{}`)},
		{Endpoint: llm.EndpointChat, Model: strings.Repeat("d", 300), Body: []byte(`{}`)},
		{Endpoint: llm.EndpointMessages, Model: "d", Body: []byte(`{}`)},
	} {
		u := &azureUpstream{}
		p := newTestAzure(t, u, "", llm.Provider{APIKey: azureKey})
		_, err := p.Do(context.Background(), &call)
		var e *llm.Error
		if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.UpstreamStatus != 0 {
			t.Errorf("%s %q: %v", call.Body, call.Model, err)
		}
		if len(u.reqs) != 0 {
			t.Errorf("%s: upstream contacted", call.Body)
		}
	}
}

func TestAzureAuthHeaders(t *testing.T) {
	u := &azureUpstream{}
	p := newTestAzure(t, u, "", llm.Provider{APIKey: azureKey, Headers: map[string]string{"x-ms-useragent": "sluice"}})
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Model: "d", Body: []byte(`{}`), RequestID: "r1", Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r, _ := u.last()
	if r.Header.Get("Api-Key") != azureKey || r.Header.Get("Authorization") != "" || r.Header.Get("X-Ms-Useragent") != "sluice" ||
		r.Header.Get("X-Request-Id") != "r1" || r.Header.Get("Accept") != "text/event-stream" {
		t.Fatalf("headers %v", r.Header)
	}

	// An Entra ID token replaces the api-key.
	u = &azureUpstream{}
	p = newTestAzure(t, u, "", llm.Provider{APIKey: azureKey, Secrets: map[string]string{AzureADTokenSecret: azureToken}})
	resp, err = p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Model: "d", Body: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r, _ = u.last()
	if r.Header.Get("Authorization") != "Bearer "+azureToken || r.Header.Get("Api-Key") != "" {
		t.Fatalf("headers %v", r.Header)
	}
}

func TestAzureFixturesPassThrough(t *testing.T) {
	for _, c := range []struct {
		endpoint llm.Endpoint
		file     string
	}{{llm.EndpointChat, "azure/chat_completion.json"}, {llm.EndpointEmbeddings, "azure/embeddings.json"}} {
		u := &azureUpstream{payload: fixture(t, c.file)}
		p := newTestAzure(t, u, "", llm.Provider{APIKey: azureKey})
		resp, err := p.Do(context.Background(), &Call{Endpoint: c.endpoint, Model: "d", Body: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != string(u.payload) || resp.Status != http.StatusOK {
			t.Fatalf("%s: relayed %d %s", c.file, resp.Status, got)
		}
	}
}

func TestAzureErrors(t *testing.T) {
	cases := []struct {
		name                    string
		status                  int
		body                    []byte
		wantStatus              int
		wantCode, wantType      string
		wantParam, wantInMesage string
	}{
		{"content filter", 400, fixture(t, "azure/content_filter_error.json"), 400, "content_filter", "invalid_request_error", "prompt", "Content management policy"},
		{"deployment not found", 404, fixture(t, "azure/deployment_not_found.json"), 404, "DeploymentNotFound", "invalid_request_error", "", "deployment for this resource does not exist"},
		{"wrong key", 401, fixture(t, "azure/access_denied.json"), 502, "upstream_auth_failed", "upstream_error", "", "rejected the gateway's provider credentials"},
		{"throttled", 429, []byte(`{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds."}}`),
			429, "429", "rate_limit_error", "", "Please retry after 6 seconds"},
		{"key echoed", 400, []byte(`{"error":{"code":"BadRequest","message":"bad api-key ` + azureKey + ` and token ` + azureToken + `","param":"` + azureKey + `"}}`),
			400, "BadRequest", "invalid_request_error", "", "bad api-key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := &azureUpstream{status: c.status, payload: c.body}
			p := newTestAzure(t, u, "", llm.Provider{APIKey: azureKey, Secrets: map[string]string{AzureADTokenSecret: azureToken}})
			_, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Model: "d", Body: []byte(`{}`)})
			var e *llm.Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *llm.Error: %v", err)
			}
			if e.Status != c.wantStatus || e.UpstreamStatus != c.status || e.Code != c.wantCode || e.Type != c.wantType ||
				(c.wantParam != "" && e.Param != c.wantParam) || !strings.Contains(e.Message, c.wantInMesage) || e.Provider != "az" {
				t.Fatalf("%+v", e)
			}
			all := e.Message + e.Param + e.Code + e.Type + e.Error()
			for _, s := range []string{azureKey, azureToken, azureKey[:12], azureToken[:20]} {
				if strings.Contains(all, s) {
					t.Fatalf("credential echoed: %s", all)
				}
			}
		})
	}
}

// The stream_options fallback and its memory are the OpenAI provider's,
// inherited.
func TestAzureStreamOptionsFallback(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.URL.Path+" "+string(b))
		mu.Unlock()
		if strings.Contains(string(b), "stream_options") {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"code":"BadRequest","message":"Unrecognized request argument supplied: stream_options"}}`)
			return
		}
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer srv.Close()
	p := llm.Provider{Name: "az", Type: llm.ProviderAzure, BaseURL: srv.URL, APIKey: azureKey}
	if err := (Options{}).Validate(&p); err != nil {
		t.Fatal(err)
	}
	prov, _ := NewAzure(&p, NewClient(p.Timeouts, Options{}))
	call := func() {
		resp, err := prov.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Stream: true,
			Body:      []byte(`{"model":"d","stream":true,"stream_options":{"include_usage":true}}`),
			PlainBody: func() []byte { return []byte(`{"model":"d","stream":true}`) }})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	call()
	call()
	want := []string{
		`/openai/deployments/d/chat/completions {"model":"d","stream":true,"stream_options":{"include_usage":true}}`,
		`/openai/deployments/d/chat/completions {"model":"d","stream":true}`,
		`/openai/deployments/d/chat/completions {"model":"d","stream":true}`,
	}
	if strings.Join(bodies, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sent\n%s", strings.Join(bodies, "\n"))
	}
}

func TestValidateAzure(t *testing.T) {
	ok := func(p llm.Provider) llm.Provider {
		t.Helper()
		p.Type = llm.ProviderAzure
		if err := (Options{}).Validate(&p); err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		return p
	}
	bad := func(field string, p llm.Provider) {
		t.Helper()
		p.Type = llm.ProviderAzure
		err := (Options{}).Validate(&p)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != field {
			t.Fatalf("%+v: %v, want an error on %s", p, err, field)
		}
		if strings.Contains(err.Error(), azureKey) || strings.Contains(err.Error(), azureToken) {
			t.Fatalf("credential in %v", err)
		}
	}
	const base = "https://res.openai.azure.com"
	if p := ok(llm.Provider{BaseURL: base + "/openai/"}); p.BaseURL != base || string(p.Options) != `{}` {
		t.Fatalf("normalised to %s %s", p.BaseURL, p.Options)
	}
	ok(llm.Provider{BaseURL: base, Options: json.RawMessage(`{"api_version":"2024-10-21"}`)})
	ok(llm.Provider{BaseURL: base, Options: json.RawMessage(`{"api_version":"2025-04-01-preview"}`)})
	ok(llm.Provider{BaseURL: base, Options: json.RawMessage(`{"use_v1":true}`)})
	ok(llm.Provider{BaseURL: base, Secrets: map[string]string{AzureADTokenSecret: azureToken}})
	bad("base_url", llm.Provider{})
	bad("base_url", llm.Provider{BaseURL: base + "/openai/v1"})
	bad("base_url", llm.Provider{BaseURL: base + "/openai/deployments/gpt-4o"})
	bad("base_url", llm.Provider{BaseURL: base + "?api-version=2024-10-21"})
	for _, v := range []string{"2024-10-21-beta", "24-10-21", "2024-13-01", "2024-10-00", "2024-1-021", "latest", "2024-10-21 ", "v1", "preview"} {
		bad("options.api_version", llm.Provider{BaseURL: base, Options: json.RawMessage(`{"api_version":"` + v + `"}`)})
	}
	bad("options.api_version", llm.Provider{BaseURL: base, Options: json.RawMessage(`{"use_v1":true,"api_version":"2024-10-21"}`)})
	bad("options", llm.Provider{BaseURL: base, Options: json.RawMessage(`{"deployment":"x"}`)})
	bad("secrets.aws_secret", llm.Provider{BaseURL: base, Secrets: map[string]string{"aws_secret": "x"}})
	bad("secrets."+AzureADTokenSecret, llm.Provider{BaseURL: base, Secrets: map[string]string{AzureADTokenSecret: azureToken + "\n"}})
	bad("api_key", llm.Provider{BaseURL: base, APIKey: azureKey + "\r\nX: y"})
}

func TestBodyModel(t *testing.T) {
	for body, want := range map[string]string{
		`{"model":"a"}`:                    "a",
		`{"x":{"model":"no"},"model":"b"}`: "b",
		`{"model":"\u00e9\"q"}`:            "é\"q",
		`{"model":"a","model":"b"}`:        "a",
		`{"model":null}`:                   "",
		`{"model":"unterminated`:           "",
		`{"model":"`:                       "",
		`["model","a"]`:                    "",
		`{"model":"bad \x"}`:               "",
		``:                                 "",
	} {
		if got := bodyModel([]byte(body)); got != want {
			t.Errorf("bodyModel(%s) = %q, want %q", body, got, want)
		}
	}
}

func FuzzBodyModel(f *testing.F) {
	for _, s := range []string{`{"model":"a"}`, `{"model":"\u00e9"}`, `{"model":"`, `{"model"`, `{"model":"\"}`, `{`, `"`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := bodyModel(b)
		if len(m) > len(b) {
			t.Fatalf("model %q longer than body", m)
		}
	})
}

func BenchmarkAzureURL(b *testing.B) {
	p := llm.Provider{Name: "az", Type: llm.ProviderAzure, BaseURL: "https://res.openai.azure.com", APIKey: azureKey}
	if err := (Options{}).Validate(&p); err != nil {
		b.Fatal(err)
	}
	prov, _ := NewAzure(&p, NewClient(p.Timeouts, Options{}))
	a := prov.(*Azure)
	body := []byte(`{"model":"gpt-4o-prod","messages":[{"role":"user","content":"hello"}],"stream":true}`)
	b.Run("call-model", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = a.url(&Call{Model: "gpt-4o-prod"}, "/chat/completions", body)
		}
	})
	b.Run("body-model", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = a.url(&Call{}, "/chat/completions", body)
		}
	})
}

// newServer serves h on a test server closed with t and returns its URL.
func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// Azure is a Redactor and reports its timeouts, as the OpenAI provider
// does (the router asks for both through optional interfaces).
var (
	_ Redactor                             = (*Azure)(nil)
	_ interface{ Timeouts() llm.Timeouts } = (*Azure)(nil)
)

// The translated lane is the OpenAI provider's, through Azure's URLs:
// neutral requests in, Azure's documented answers decoded.
func TestAzureTranslated(t *testing.T) {
	u := &azureUpstream{payload: fixture(t, "azure/chat_completion.json")}
	p := newTestAzure(t, u, "", llm.Provider{APIKey: azureKey})
	chat := neutralChat(false)
	chat.Model = "gpt-4o-prod"
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Dialect: llm.DialectAnthropicMessages, Model: "gpt-4o-prod", Chat: chat})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r, _ := u.last()
	if r.RequestURI != "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21" || r.Header.Get("Api-Key") != azureKey {
		t.Fatalf("sent to %s with %v", r.RequestURI, r.Header)
	}
	out, err := resp.Decoder.Chat(body)
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != "chatcmpl-7R1nGnsXO8n4oi9UPz2f3UHdgAYMn" || len(out.Choices) != 1 || out.Choices[0].FinishReason != llm.FinishStop ||
		!out.UsageKnown || out.Usage.PromptTokens != 33 || out.Usage.CompletionTokens != 557 {
		t.Fatalf("decoded %+v", out)
	}

	// Embeddings, the deployment taken from the encoded body when the
	// call does not name it.
	u = &azureUpstream{payload: fixture(t, "azure/embeddings.json")}
	p = newTestAzure(t, u, "", llm.Provider{APIKey: azureKey})
	resp, err = p.Do(context.Background(), &Call{Endpoint: llm.EndpointEmbeddings, Embed: &llm.EmbedRequest{Model: "ada-002", Inputs: []string{"this is a test"}}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if r, _ := u.last(); r.RequestURI != "/openai/deployments/ada-002/embeddings?api-version=2024-10-21" {
		t.Fatalf("sent to %s", r.RequestURI)
	}
	emb, err := resp.Decoder.Embed(body)
	if err != nil || len(emb.Vectors) != 1 || len(emb.Vectors[0]) != 8 || emb.Usage.PromptTokens != 4 {
		t.Fatalf("%+v %v", emb, err)
	}

	// An Azure error on the translated lane is mapped as on the raw one.
	u = &azureUpstream{status: 400, payload: fixture(t, "azure/content_filter_error.json")}
	p = newTestAzure(t, u, "", llm.Provider{APIKey: azureKey})
	_, err = p.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Model: "d", Chat: neutralChat(true), Stream: true})
	var e *llm.Error
	if !errors.As(err, &e) || e.Status != 400 || e.Code != "content_filter" || len(u.reqs) != 1 {
		t.Fatalf("%v after %d requests", err, len(u.reqs))
	}
}

// Azure's documented streams, with its content-filter annotations (a
// first chunk with no choices, chunks with offsets and no delta, one after
// the finish), pass through the raw lane untouched and decode on the
// translated lane: the text, and the finish reason the filter gave.
func TestAzureStreams(t *testing.T) {
	for _, c := range []struct {
		file, text, finish string
	}{
		{"azure/stream_async_filter.sse", "Color is a", llm.FinishStop},
		{"azure/stream_blocked.sse", "Hey Jude, better", llm.FinishContentFilter},
	} {
		u := &azureUpstream{payload: fixture(t, c.file)}
		p := newTestAzure(t, u, "", llm.Provider{APIKey: azureKey})
		resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Model: "d", Stream: true, Body: []byte(`{"stream":true}`)})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(raw) != string(u.payload) || resp.Decoder != nil {
			t.Fatalf("%s: raw lane changed the stream", c.file)
		}

		resp, err = p.Do(context.Background(), &Call{Endpoint: llm.EndpointMessages, Model: "d", Stream: true, Chat: neutralChat(true)})
		if err != nil {
			t.Fatal(err)
		}
		s := resp.Decoder.Stream(resp.Body)
		var text strings.Builder
		finish := ""
		for {
			ev, err := s.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v after %q", c.file, err, text.String())
			}
			switch ev.Kind {
			case llm.EventText:
				text.WriteString(ev.Text)
			case llm.EventFinish:
				finish = ev.FinishReason
			case llm.EventError:
				t.Fatalf("%s: error event %v", c.file, ev.Err)
			}
		}
		s.Close()
		resp.Body.Close()
		if text.String() != c.text || finish != c.finish {
			t.Fatalf("%s: text %q finish %q", c.file, text.String(), finish)
		}
	}
}

// An upstream echoing the credentials it was sent in a 2xx answer never
// passes them on (the router applies RedactWhole to every body and event).
func TestAzureRedactsEchoedCredentials(t *testing.T) {
	u := &azureUpstream{}
	p := newTestAzure(t, u, "", llm.Provider{APIKey: azureKey, Secrets: map[string]string{AzureADTokenSecret: azureToken}}).(*Azure)
	body := []byte(`{"choices":[{"message":{"content":"key ` + azureKey + ` token ` + azureToken + ` and sk-proj- fragments"}}]}`)
	out := string(p.RedactWhole(nil, body))
	if strings.Contains(out, azureKey) || strings.Contains(out, azureToken) || !strings.Contains(out, "sk-proj- fragments") {
		t.Fatalf("redacted %s", out)
	}
	clean := []byte(`{"choices":[{"message":{"content":"nothing secret"}}]}`)
	if got := p.RedactWhole(nil, clean); &got[0] != &clean[0] {
		t.Fatalf("a clean body was copied")
	}
}
