package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

const secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"

func newTestOpenAI(t *testing.T, h http.HandlerFunc, timeouts llm.Timeouts) Provider {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return build(t, &llm.Provider{Name: "up", Type: llm.ProviderOpenAICompatible, BaseURL: srv.URL + "/v1/", APIKey: secret,
		Headers: map[string]string{"x-extra": "1"}, Timeouts: timeouts})
}

// build validates and builds p as the registry does.
func build(t *testing.T, p *llm.Provider) Provider {
	t.Helper()
	cp := *p
	if err := (Options{}).Validate(&cp); err != nil {
		t.Fatal(err)
	}
	prov, err := NewOpenAI(&cp, NewClient(cp.Timeouts, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	return prov
}

func do(p Provider) (*llm.Error, error) {
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Body: []byte(`{}`)})
	if err == nil {
		resp.Body.Close()
		return nil, errors.New("no error")
	}
	var e *llm.Error
	if !errors.As(err, &e) {
		return nil, fmt.Errorf("not an *llm.Error: %v", err)
	}
	return e, nil
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

// The openai family's organization and project options become headers.
func TestOpenAIOptionsHeaders(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	p := build(t, &llm.Provider{Name: "o", Type: llm.ProviderOpenAI, BaseURL: srv.URL, Options: []byte(`{"organization":"org-1","project":"proj_2"}`)})
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Body: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Get("OpenAI-Organization") != "org-1" || got.Get("OpenAI-Project") != "proj_2" || got.Get("Authorization") != "" {
		t.Fatalf("headers %v", got)
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
		{"overloaded with retry-after", 503, `{"error":{"message":"overloaded"}}`, http.Header{"Retry-After": {"3"}}, 503, "upstream_error", "", 3 * time.Second},
		{"context length", 400, `{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`, nil, 400, "invalid_request_error", "context_length_exceeded", 0},
		{"detail shape", 422, `{"detail":"bad input"}`, nil, 422, "invalid_request_error", "", 0},
		{"html", 503, `<html>down</html>`, nil, 503, "upstream_error", "", 0},
		{"proxy auth", 407, `{}`, nil, 502, "upstream_error", "upstream_auth_failed", 0},
		{"redirect", 302, `moved`, http.Header{"Location": {"https://elsewhere.example/"}}, 502, "upstream_error", "invalid_upstream_response", 0},
		{"not modified", 304, ``, nil, 502, "upstream_error", "invalid_upstream_response", 0},
		{"status 600", 600, `{"error":{"message":"x","type":"y"}}`, nil, 502, "upstream_error", "invalid_upstream_response", 0},
		{"status 999", 999, `{}`, nil, 502, "upstream_error", "invalid_upstream_response", 0},
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
			e, err := do(p)
			if err != nil {
				t.Fatal(err)
			}
			if e.Status != tt.wantStatus || e.UpstreamStatus != tt.status || e.Type != tt.wantType || e.Code != tt.wantCode || e.RetryAfter != tt.retryAfter {
				t.Fatalf("got %+v", e)
			}
			if strings.Contains(e.Message, "abcdefgh") || strings.Contains(e.Error(), secret) {
				t.Fatalf("secret in message %q", e.Message)
			}
		})
	}
}

// rawUpstream serves each connection by writing resp after reading the
// request headers, then holding the connection until the test ends.
func rawUpstream(t *testing.T, resp func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				_, _ = c.Read(buf) // the request fits
				resp(c)
				<-done
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// Statuses the transport hands over although they are not final answers,
// or not HTTP statuses at all, are 502 upstream_error, never the client's
// fault (they were 500 invalid_request_error).
func TestOpenAIProtocolViolations(t *testing.T) {
	for _, tt := range []struct{ name, resp string }{
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: evil\r\n\r\n"},
		{"status 099", "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n"},
		{"status 000", "HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\n{}"},
		{"status 700", "HTTP/1.1 700 Seven\r\nContent-Length: 2\r\n\r\n{}"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := rawUpstream(t, func(c net.Conn) { io.WriteString(c, tt.resp) })
			p := build(t, &llm.Provider{Name: "raw", Type: llm.ProviderOpenAICompatible, BaseURL: u, Timeouts: llm.Timeouts{Idle: time.Second}})
			start := time.Now()
			e, err := do(p)
			if err != nil {
				t.Fatal(err)
			}
			if e.Status != 502 || e.Type != "upstream_error" || e.Kind == llm.KindInvalidRequest {
				t.Fatalf("got %+v", e)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
}

// Every field of an upstream error is redacted of the provider key and of
// every fragment of it: type, param and code reached clients, usage rows
// and the access log verbatim.
func TestUpstreamErrorRedactsEveryField(t *testing.T) {
	bodies := []string{
		`{"error":{"message":"bad","type":"` + secret + `","param":"x","code":"y"}}`,
		`{"error":{"message":"bad","type":"t","param":"key=` + secret + `","code":"y"}}`,
		`{"error":{"message":"bad","type":"t","param":null,"code":"` + secret[5:30] + `"}}`,
		`{"error":{"message":"key ` + secret + `","type":"t"}}`,
		`{"error":"key ` + secret + `"}`,
		`[{"error":{"message":"m","type":"` + secret + `"}}]`,
		`{"detail":[{"msg":"bad key ` + secret + `"}]}`,
	}
	for i, body := range bodies {
		p := newTestOpenAI(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			io.WriteString(w, body)
		}, llm.Timeouts{})
		e, err := do(p)
		if err != nil {
			t.Fatal(err)
		}
		all := strings.Join([]string{e.Message, e.Type, e.Param, e.Code, e.Error()}, "|")
		for j := 0; j+fragLen <= len(secret); j++ {
			if strings.Contains(all, secret[j:j+fragLen]) {
				t.Fatalf("body %d: fragment %q of the key in %q", i, secret[j:j+fragLen], all)
			}
		}
		if !strings.Contains(all, redacted) {
			t.Fatalf("body %d: nothing redacted in %q", i, all)
		}
	}
}

// A credential set as a provider header (Authorization, x-api-key…) is
// redacted like api_key, with and without its "Bearer " scheme.
func TestHeaderCredentialsRedacted(t *testing.T) {
	const tok = "hdr-token-0123456789abcdefghij"
	for _, hdr := range []map[string]string{
		{"Authorization": "Bearer " + tok},
		{"X-Api-Key": tok},
		{"api-key": tok},
	} {
		var echo string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			echo = r.Header.Get("Authorization") + r.Header.Get("X-Api-Key") + r.Header.Get("Api-Key")
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"error":{"message":"invalid credential %s","type":"%s","code":"%s"}}`, echo, tok, tok[:12])
		}))
		p := build(t, &llm.Provider{Name: "h", Type: llm.ProviderOpenAICompatible, BaseURL: srv.URL, Headers: hdr})
		e, err := do(p)
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if echo == "" {
			t.Fatal("header not sent")
		}
		all := e.Message + "|" + e.Type + "|" + e.Code
		for j := 0; j+fragLen <= len(tok); j++ {
			if strings.Contains(all, tok[j:j+fragLen]) {
				t.Fatalf("%v: token fragment in %q", hdr, all)
			}
		}
	}
}

// A transport error quoting what the upstream sent (a malformed status
// line echoing the key) is redacted, and errors.Is still sees the cause.
func TestTransportErrorRedacted(t *testing.T) {
	u := rawUpstream(t, func(c net.Conn) { io.WriteString(c, "Bearer "+secret+"\r\n\r\n") })
	p := build(t, &llm.Provider{Name: "odd", Type: llm.ProviderOpenAICompatible, BaseURL: u, APIKey: secret})
	e, err := do(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.Error(), secret[:fragLen]) || !strings.Contains(e.Error(), redacted) {
		t.Fatalf("error text %q", e.Error())
	}
	var re *redactedError
	if !errors.As(e.Err, &re) || re.Unwrap() == nil {
		t.Fatalf("cause lost: %#v", e.Err)
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

	dead := build(t, &llm.Provider{Name: "dead", Type: llm.ProviderOpenAICompatible, BaseURL: "http://127.0.0.1:1/v1"})
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

// A provider that rejects the injected stream_options costs one failed
// round trip, once: later streaming calls send PlainBody directly, also
// through a registry rebuilt from an unchanged configuration; a changed
// configuration learns again.
func TestStreamOptionsRejectionRemembered(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), "stream_options") {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"message":"Unrecognized request argument supplied: stream_options","type":"invalid_request_error"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer srv.Close()
	snap := llm.EmptySnapshot()
	snap.Providers["a"] = &llm.Provider{Name: "a", Type: llm.ProviderOpenAICompatible, BaseURL: srv.URL}
	call := &Call{Endpoint: llm.EndpointChat, Stream: true, Body: []byte(`{"stream":true,"stream_options":{"include_usage":true}}`), PlainBody: func() []byte { return []byte(`{"stream":true}`) }}
	stream := func(reg *Registry) int32 {
		t.Helper()
		calls.Store(0)
		p, _ := reg.Get("a")
		resp, err := p.Do(context.Background(), call)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return calls.Load()
	}
	r1, _ := NewRegistry(nil, snap, Options{})
	if n := stream(r1); n != 2 {
		t.Fatalf("first stream: %d upstream calls, want 2", n)
	}
	if n := stream(r1); n != 1 {
		t.Fatalf("second stream: %d upstream calls, want 1", n)
	}
	r2, _ := NewRegistry(r1, snap, Options{})
	if n := stream(r2); n != 1 {
		t.Fatalf("after an unchanged reload: %d upstream calls, want 1", n)
	}
	snap.Providers["a"] = &llm.Provider{Name: "a", Type: llm.ProviderOpenAICompatible, BaseURL: srv.URL + "/"}
	r3, _ := NewRegistry(r2, snap, Options{})
	if n := stream(r3); n != 2 {
		t.Fatalf("after a change: %d upstream calls, want 2", n)
	}
	// Without PlainBody (the client set stream_options itself) the
	// rejection is the client's answer.
	calls.Store(0)
	p, _ := r3.Get("a")
	_, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Stream: true, Body: call.Body})
	var e *llm.Error
	if !errors.As(err, &e) || e.Status != 400 || calls.Load() != 1 {
		t.Fatalf("without PlainBody: %v after %d calls", err, calls.Load())
	}
}

func TestRegistryReusesUnchangedProviders(t *testing.T) {
	now := time.Now()
	snap := llm.EmptySnapshot()
	snap.Providers["a"] = &llm.Provider{ID: "prov_a", Name: "a", Type: llm.ProviderOpenAI, Revision: 5}
	snap.Providers["b"] = &llm.Provider{Name: "b", Type: "nope"}
	snap.Providers["u"] = &llm.Provider{ID: "prov_u", Name: "u", Type: llm.ProviderOpenAI, UpdatedAt: now} // no revision yet
	snap.Providers["z"] = &llm.Provider{ID: "prov_z", Name: "z", Type: llm.ProviderOpenAI}                 // hand-built
	r1, errs := NewRegistry(nil, snap, Options{})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "openai-compatible") {
		t.Fatalf("errs %v", errs)
	}
	r2, _ := NewRegistry(r1, snap, Options{})
	for _, k := range []string{"prov_a", "prov_u", "prov_z"} {
		if r1.byID[k] != r2.byID[k] {
			t.Fatalf("unchanged provider %s was rebuilt", k)
		}
	}
	// A new revision, a change of any field (a new key, say) without one,
	// and a rename each make a new provider.
	snap.Providers["a"] = &llm.Provider{ID: "prov_a", Name: "a", Type: llm.ProviderOpenAI, Revision: 6}
	snap.Providers["u"] = &llm.Provider{ID: "prov_u", Name: "u", Type: llm.ProviderOpenAI, UpdatedAt: now.Add(time.Millisecond)}
	snap.Providers["z"] = &llm.Provider{ID: "prov_z", Name: "z", Type: llm.ProviderOpenAI, APIKey: "sk-new-key-000000"}
	r3, _ := NewRegistry(r2, snap, Options{})
	for _, k := range []string{"prov_a", "prov_u", "prov_z"} {
		if r3.byID[k] == r2.byID[k] || r3.byID[k].client == r2.byID[k].client {
			t.Fatalf("changed provider %s kept its old build", k)
		}
	}
	delete(snap.Providers, "a")
	snap.Providers["renamed"] = &llm.Provider{ID: "prov_a", Name: "renamed", Type: llm.ProviderOpenAI, Revision: 6}
	r4, _ := NewRegistry(r3, snap, Options{})
	if _, ok := r4.Get("renamed"); !ok || r4.byID["prov_a"] == r3.byID["prov_a"] {
		t.Fatal("a renamed provider must be rebuilt under its new name")
	}
	if _, ok := r4.Get("a"); ok {
		t.Fatal("the old name still resolves")
	}
	r5, _ := NewRegistry(r4, snap, Options{DenyPrivate: true})
	if r5.byID["prov_u"] == r4.byID["prov_u"] {
		t.Fatal("provider kept across a change of options")
	}
	// The snapshot's provider is not modified by validation.
	if snap.Providers["u"].BaseURL != "" {
		t.Fatal("snapshot mutated")
	}
	r5.Retire(r4)
}

// A client cannot make the provider drop stream_options for everyone: a
// rejection is remembered only when the plain body then succeeds.
func TestStreamOptionsRejectionNotClientTriggered(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, string(b))
		if strings.Contains(string(b), "stream_options_x") {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"message":"Unrecognized request argument supplied: stream_options_x","type":"invalid_request_error"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer srv.Close()
	p := build(t, &llm.Provider{Name: "a", Type: llm.ProviderOpenAICompatible, BaseURL: srv.URL})
	hostile := &Call{Endpoint: llm.EndpointChat, Stream: true, Body: []byte(`{"stream_options_x":1,"stream_options":{"include_usage":true}}`), PlainBody: func() []byte { return []byte(`{"stream_options_x":1}`) }}
	if _, err := p.Do(context.Background(), hostile); err == nil {
		t.Fatal("hostile request succeeded")
	}
	got = nil
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Stream: true, Body: []byte(`{"stream_options":{"include_usage":true}}`), PlainBody: func() []byte { return []byte(`{}`) }})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(got) != 1 || !strings.Contains(got[0], "include_usage") {
		t.Fatalf("a later request was sent %q", got)
	}
}

// A row stored before transport-owned headers were refused is still built,
// without those headers, and each is reported.
func TestRegistryDropsTransportHeaders(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	snap := llm.EmptySnapshot()
	snap.Providers["old"] = &llm.Provider{Name: "old", Type: llm.ProviderOpenAICompatible, BaseURL: srv.URL,
		Headers: map[string]string{"Host": "evil.example", "accept-encoding": "gzip", "X-Keep": " 1 "}}
	reg, errs := NewRegistry(nil, snap, Options{})
	if len(errs) != 2 {
		t.Fatalf("errs %v", errs)
	}
	p, ok := reg.Get("old")
	if !ok {
		t.Fatal("provider skipped")
	}
	resp, err := p.Do(context.Background(), &Call{Endpoint: llm.EndpointChat, Body: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Get("X-Keep") != "1" || got.Get("Accept-Encoding") == "gzip" {
		t.Fatalf("headers %v", got)
	}
	if len(snap.Providers["old"].Headers) != 3 {
		t.Fatal("snapshot mutated")
	}
}
