package router

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/quota"
	"github.com/sluice-ai/sluice/state"
)

type recs struct {
	mu      sync.Mutex
	list    []llm.Record
	handler http.Handler // the proxy under test, for direct calls
}

func (r *recs) Record(x llm.Record) { r.mu.Lock(); r.list = append(r.list, x); r.mu.Unlock() }
func (r *recs) last() llm.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.list[len(r.list)-1]
}

const testKey = "sk-test-key"

// testEstimator is shared by the test proxies: loading its encoding takes
// seconds under -race, once per estimator.
var testEstimator = quota.NewEstimator()

// newTestProxy returns a proxy whose model "m" is served by the given
// upstreams in order (weights make the first one preferred).
func newTestProxy(t testing.TB, idle time.Duration, upstreams ...string) (*httptest.Server, *recs) {
	t.Helper()
	return newTestProxyWith(t, nil, idle, upstreams...)
}

// newTestProxyWith is newTestProxy with a hook to change the options.
func newTestProxyWith(t testing.TB, tweak func(*Options), idle time.Duration, upstreams ...string) (*httptest.Server, *recs) {
	t.Helper()
	return newTestProxyOf(t, llm.ProviderOpenAICompatible, tweak, idle, upstreams...)
}

// newTestProxyOf is newTestProxyWith with providers of type typ.
func newTestProxyOf(t testing.TB, typ llm.ProviderType, tweak func(*Options), idle time.Duration, upstreams ...string) (*httptest.Server, *recs) {
	t.Helper()
	snap := llm.EmptySnapshot()
	m := &llm.Model{Name: "m"}
	for i, u := range upstreams {
		name := fmt.Sprintf("p%d", i)
		snap.Providers[name] = &llm.Provider{Name: name, Type: typ, BaseURL: u, APIKey: "sk-upstream-secret-123456", Timeouts: llm.Timeouts{Idle: idle, FirstByte: 2 * time.Second}}
		m.Deployments = append(m.Deployments, llm.Deployment{ID: "dep_" + name, Provider: name, Model: "up-" + name, Weight: 1000 - i*999, Prices: llm.Prices{InputPerMTok: 1, OutputPerMTok: 2}})
	}
	snap.Models["m"] = m
	snap.Keys[llm.HashKey(testKey)] = &llm.Key{ID: "k1", Prefix: "sk-test"}
	b := balancer.New(balancer.Options{Rand: func(int) int { return 0 }})
	st, retire, errs := state.Build(nil, snap, state.Options{Balancer: b})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	retire()
	r := &recs{}
	o := Options{State: func() *state.State { return st }, Balancer: b, Usage: r, Estimator: testEstimator, MaxBodyBytes: 1 << 16}
	if tweak != nil {
		tweak(&o)
	}
	h := New(o)
	r.handler = h
	srv := httptest.NewServer(h)
	// Runs after srv.Close, which waits for every request: each attempt
	// must have reported its end to the balancer.
	t.Cleanup(func() {
		for _, d := range m.Deployments {
			if n := o.Balancer.Status(d.ID).InFlight; n != 0 {
				t.Errorf("deployment %s: %d attempts still in flight after every request ended", d.ID, n)
			}
		}
	})
	t.Cleanup(srv.Close)
	return srv, r
}

func post(t *testing.T, url, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func sseUpstream(events []string, thenClose bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range events {
			fmt.Fprintf(w, "data: %s\n\n", e)
			w.(http.Flusher).Flush()
		}
		if thenClose {
			panic(http.ErrAbortHandler)
		}
	}
}

func TestStreamDropsUsageChunkUnlessAsked(t *testing.T) {
	up := httptest.NewServer(sseUpstream([]string{
		`{"id":"1","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}`,
		`{"id":"1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}`,
		`[DONE]`,
	}, false))
	defer up.Close()
	srv, r := newTestProxy(t, time.Second, up.URL)
	for _, asked := range []bool{false, true} {
		body := `{"model":"m","stream":true}`
		if asked {
			body = `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`
		}
		resp := post(t, srv.URL, body)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
			t.Fatalf("status %d body %q", resp.StatusCode, b)
		}
		if got := strings.Contains(string(b), `"prompt_tokens":3`); got != asked {
			t.Fatalf("asked=%v but usage chunk forwarded=%v: %s", asked, got, b)
		}
		rec := r.last()
		if rec.PromptTokens != 3 || rec.CompletionTokens != 1 || rec.Estimated || rec.CostMicros == 0 {
			t.Fatalf("record %+v", rec)
		}
	}
}

func TestStreamBrokenEndsWithErrorEvent(t *testing.T) {
	up := httptest.NewServer(sseUpstream([]string{`{"id":"1","choices":[{"index":0,"delta":{"content":"hello there"}}]}`}, true))
	defer up.Close()
	srv, r := newTestProxy(t, time.Second, up.URL)
	resp := post(t, srv.URL, `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	b, _ := io.ReadAll(resp.Body)
	s := string(b)
	if strings.Contains(s, "[DONE]") || !strings.Contains(s, `"code":"stream_broken"`) {
		t.Fatalf("body %q", s)
	}
	rec := r.last()
	if rec.Status != llm.StatusStreamBroken || !rec.Estimated || rec.CompletionTokens == 0 {
		t.Fatalf("record %+v", rec)
	}
}

func TestStreamStallHitsIdleTimeout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer up.Close()
	srv, _ := newTestProxy(t, 300*time.Millisecond, up.URL)
	testEstimator.Warm() // the broken stream's usage is estimated
	start := time.Now()
	resp := post(t, srv.URL, `{"model":"m","stream":true}`)
	b, _ := io.ReadAll(resp.Body)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stall not cut: %v", d)
	}
	if !strings.Contains(string(b), "stream_broken") {
		t.Fatalf("body %q", b)
	}
}

func TestFallbackBeforeFirstByte(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(503)
		fmt.Fprint(w, `{"error":{"message":"down","type":"server_error"}}`)
	}))
	defer bad.Close()
	var gotModel string
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotModel = string(member(b, "model"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"x","choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":5,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":1}}}`)
	}))
	defer good.Close()
	srv, r := newTestProxy(t, time.Second, bad.URL, good.URL)
	resp := post(t, srv.URL, `{"model":"m","messages":[]}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Sluice-Provider") != "p1" || gotModel != `"up-p1"` {
		t.Fatalf("status %d provider %q model %s", resp.StatusCode, resp.Header.Get("X-Sluice-Provider"), gotModel)
	}
	if rec := r.last(); rec.CacheReadTokens != 1 || rec.PromptTokens != 5 {
		t.Fatalf("record %+v", rec)
	}
}

func TestUpstreamErrorsMapped(t *testing.T) {
	tests := []struct {
		status     int
		header     string
		wantStatus int
		wantRetry  string
	}{
		{500, "", 500, ""},
		{429, "7", 429, "7"},
		{401, "", 502, ""},
		{400, "", 400, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.header != "" {
					w.Header().Set("Retry-After", tt.header)
				}
				w.WriteHeader(tt.status)
				fmt.Fprintf(w, `{"error":{"message":"bad key sk-upstream-secret-123456","type":"x"}}`)
			}))
			defer up.Close()
			srv, _ := newTestProxy(t, time.Second, up.URL)
			resp := post(t, srv.URL, `{"model":"m"}`)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Retry-After") != tt.wantRetry {
				t.Fatalf("status %d retry %q body %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
			}
			if strings.Contains(string(b), "secret") || strings.Contains(string(b), "upstream-") {
				t.Fatalf("provider key leaked: %s", b)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	srv, _ := newTestProxy(t, time.Second, "http://127.0.0.1:1")
	tests := []struct {
		name, body, key string
		want            int
	}{
		{"bad json", `{"model":`, testKey, 400},
		{"no model", `{}`, testKey, 400},
		{"unknown model", `{"model":"zzz"}`, testKey, 404},
		{"bad key", `{"model":"m"}`, "sk-nope", 401},
		{"too big", `{"model":"m","x":"` + strings.Repeat("a", 1<<16) + `"}`, testKey, 413},
		{"unreachable", `{"model":"m"}`, testKey, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+tt.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want || resp.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(string(b), `{"error":{"message":`) {
				t.Fatalf("status %d ct %q body %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
			}
		})
	}
}

func TestClientCancelCancelsUpstream(t *testing.T) {
	gone := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"%d\"}}]}\n\n", i); err != nil {
				break
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				close(gone)
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	defer up.Close()
	srv, _ := newTestProxy(t, time.Second, up.URL)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = bufio.NewReader(resp.Body).ReadString('\n')
	cancel()
	resp.Body.Close()
	select {
	case <-gone:
	case <-time.After(time.Second):
		t.Fatal("upstream not cancelled within 1s of the client leaving")
	}
}

func TestNonStreamBodyStallHitsIdleTimeout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100")
		fmt.Fprint(w, `{"id":`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer up.Close()
	srv, _ := newTestProxy(t, 300*time.Millisecond, up.URL)
	start := time.Now()
	resp := post(t, srv.URL, `{"model":"m"}`)
	if resp.StatusCode != 504 || time.Since(start) > 2*time.Second {
		t.Fatalf("status %d after %v", resp.StatusCode, time.Since(start))
	}
}

func TestAccessLogLine(t *testing.T) {
	for _, bodies := range []bool{false, true} {
		var buf safeBuffer
		al := NewAccessLog(&buf)
		rec := &llm.Record{ID: "r\"1", KeyPrefix: "sk-abc", Model: "m", HTTPStatus: 200, Status: llm.StatusOK, Usage: llm.Usage{PromptTokens: 3}}
		var body []byte
		if bodies {
			body = []byte("{\n  \"model\": \"m\"\n}")
		}
		al.write(rec, "/v1/chat/completions", time.Millisecond, body)
		if err := al.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		line := buf.String()
		var m map[string]any
		if strings.Count(line, "\n") != 1 || json.Unmarshal([]byte(line), &m) != nil {
			t.Fatalf("not one JSON line: %q", line)
		}
		if m["request_id"] != "r\"1" || m["prompt_tokens"] != float64(3) || (m["request_body"] != nil) != bodies {
			t.Fatalf("fields %v", m)
		}
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *safeBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestModelsAndCORS(t *testing.T) {
	srv, _ := newTestProxyWith(t, func(o *Options) { o.CORSOrigins = []string{"https://app.example"} }, time.Second, "http://127.0.0.1:1")
	get := func(path, origin string) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+testKey)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get("/v1/models/m", "https://app.example"); r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("model: %d %v", r.StatusCode, r.Header)
	}
	if r := get("/v1/models/org/unknown", "https://evil.example"); r.StatusCode != 404 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("slash model: %d %v", r.StatusCode, r.Header)
	}
	req, _ := http.NewRequest("OPTIONS", srv.URL+"/v1/chat/completions", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Headers") != "authorization, content-type" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestStreamOptionsRejectedUpstream: an OpenAI-compatible server that
// rejects the injected stream_options gets the client's request unchanged.
func TestStreamOptionsRejectedUpstream(t *testing.T) {
	var calls atomic.Int32
	up := rejectsStreamOptions(&calls)
	defer up.Close()
	srv, r := newTestProxy(t, time.Second, up.URL)
	resp := post(t, srv.URL, `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "[DONE]") || calls.Load() != 2 {
		t.Fatalf("status %d calls %d body %s", resp.StatusCode, calls.Load(), b)
	}
	if rec := r.last(); !rec.Estimated || rec.CompletionTokens == 0 {
		t.Fatalf("record %+v", rec)
	}
}

func TestNonJSONUpstreamBodyIs502(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html>gateway portal</html>")
	}))
	defer up.Close()
	srv, _ := newTestProxy(t, time.Second, up.URL)
	resp := post(t, srv.URL, `{"model":"m"}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 502 || !strings.Contains(string(b), "invalid_upstream_response") {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
}

// rejectsStreamOptions is an OpenAI-compatible upstream that answers 400 to
// any body mentioning stream_options, as some servers do, and streams a
// short answer otherwise; calls counts its requests.
func rejectsStreamOptions(calls *atomic.Int32) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), "stream_options") {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":{"message":"Unrecognized request argument supplied: stream_options","type":"invalid_request_error"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"hello world\"}}]}\n\ndata: [DONE]\n\n")
	}))
}
