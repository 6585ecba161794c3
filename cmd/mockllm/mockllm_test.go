package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func testConfig() config {
	return config{Chunks: 5, EmbeddingDims: 8}
}

func newTestServer(t *testing.T, cfg config) *httptest.Server {
	t.Helper()
	if err := cfg.validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	srv := httptest.NewServer(newMock(cfg).handler())
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request and returns the response; the body is closed at cleanup.
func do(t *testing.T, ctx context.Context, srv *httptest.Server, method, path, body string, hdr map[string]string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func post(t *testing.T, srv *httptest.Server, path, body string, hdr map[string]string) *http.Response {
	t.Helper()
	return do(t, context.Background(), srv, http.MethodPost, path, body, hdr)
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

func decode(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}

// readEvents reads SSE events ("data: …\n\n") and checks the framing. It
// returns the payloads read and the error that ended the body, if any.
func readEvents(t *testing.T, r io.Reader) ([]string, error) {
	t.Helper()
	br := bufio.NewReader(r)
	var out []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" {
				return out, nil
			}
			return out, err
		}
		if !strings.HasPrefix(line, "data: ") {
			t.Fatalf("event line %q does not start with \"data: \"", line)
		}
		blank, err := br.ReadString('\n')
		if err != nil {
			return out, err
		}
		if blank != "\n" {
			t.Fatalf("event %q not followed by a blank line (got %q)", line, blank)
		}
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(line, "data: "), "\n"))
	}
}

func getStats(t *testing.T, srv *httptest.Server) statsBody {
	t.Helper()
	resp := do(t, context.Background(), srv, http.MethodGet, "/_mock/stats", "", nil)
	var s statsBody
	decode(t, readAll(t, resp), &s)
	return s
}

// waitStats polls /_mock/stats until ok accepts it.
func waitStats(t *testing.T, srv *httptest.Server, what string, ok func(statsBody) bool) statsBody {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := getStats(t, srv)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never reached %s: %+v", what, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"say\nhello world"}]}`

func TestChatNonStream(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, "/v1/chat/completions", chatBody, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	if !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "req_") {
		t.Fatalf("x-request-id %q", resp.Header.Get("X-Request-Id"))
	}
	raw := readAll(t, resp)
	var c chatCompletion
	decode(t, raw, &c)
	if !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion" || c.Model != "gpt-4o-mini" || c.Created == 0 || c.SystemFingerprint == "" {
		t.Fatalf("envelope: %+v", c)
	}
	if len(c.Choices) != 1 {
		t.Fatalf("choices: %+v", c.Choices)
	}
	ch := c.Choices[0]
	if ch.Message.Role != "assistant" || ch.Message.Content != "Hello from the mock LLM! " || ch.FinishReason != "stop" || ch.Message.Refusal != nil {
		t.Fatalf("choice: %+v", ch)
	}
	if string(ch.Logprobs) != "null" {
		t.Fatalf("logprobs %s", ch.Logprobs)
	}
	u := c.Usage
	if u == nil || u.PromptTokens != 5 || u.CompletionTokens != 5 || u.TotalTokens != 10 ||
		u.PromptTokensDetails == nil || u.CompletionTokensDetails == nil {
		t.Fatalf("usage: %+v", u)
	}
	// The refusal field must be present and null, not absent.
	var generic map[string]any
	decode(t, raw, &generic)
	msg := generic["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	if v, ok := msg["refusal"]; !ok || v != nil {
		t.Fatalf("refusal: %v (present %v)", v, ok)
	}
}

func TestChatTokenOverrides(t *testing.T) {
	cfg := testConfig()
	cfg.PromptTokens = 100
	srv := newTestServer(t, cfg)
	tests := []struct {
		name                 string
		hdr                  map[string]string
		prompt, compl, words int
	}{
		{"flags", nil, 100, 5, 5},
		{"headers", map[string]string{"X-Mock-Prompt-Tokens": "7", "X-Mock-Completion-Tokens": "9", "X-Mock-Chunks": "3"}, 7, 9, 3},
		{"chunks set completion", map[string]string{"X-Mock-Chunks": "12"}, 100, 12, 12},
		{"zero chunks", map[string]string{"X-Mock-Chunks": "0"}, 100, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, srv, "/v1/chat/completions", chatBody, tt.hdr)
			var c chatCompletion
			decode(t, readAll(t, resp), &c)
			if c.Usage.PromptTokens != tt.prompt || c.Usage.CompletionTokens != tt.compl || c.Usage.TotalTokens != tt.prompt+tt.compl {
				t.Fatalf("usage %+v", c.Usage)
			}
			if got := countWords(c.Choices[0].Message.Content); got != tt.words {
				t.Fatalf("content %q has %d words, want %d", c.Choices[0].Message.Content, got, tt.words)
			}
		})
	}
}

func TestChatContentParts(t *testing.T) {
	srv := newTestServer(t, testConfig())
	body := `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"one two"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"three"}]},{"role":"assistant","content":null,"tool_calls":[]}]}`
	var c chatCompletion
	decode(t, readAll(t, post(t, srv, "/v1/chat/completions", body, nil)), &c)
	if c.Usage.PromptTokens != 3 {
		t.Fatalf("prompt tokens %d, want 3", c.Usage.PromptTokens)
	}
}

func TestChatStream(t *testing.T) {
	srv := newTestServer(t, testConfig())
	tests := []struct {
		name      string
		opts      string
		hdr       map[string]string
		wantUsage bool
	}{
		{"no stream_options", ``, nil, false},
		{"include_usage false", `,"stream_options":{"include_usage":false}`, nil, false},
		{"include_usage true", `,"stream_options":{"include_usage":true}`, nil, true},
		{"no-usage header wins", `,"stream_options":{"include_usage":true}`, map[string]string{"X-Mock-No-Usage": "true"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{"X-Mock-Chunks": "3"}
			for k, v := range tt.hdr {
				hdr[k] = v
			}
			body := `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"a b"}]` + tt.opts + `}`
			resp := post(t, srv, "/v1/chat/completions", body, hdr)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Fatalf("content type %q", ct)
			}
			events, err := readEvents(t, resp.Body)
			if err != nil {
				t.Fatalf("read stream: %v", err)
			}
			want := 1 + 3 + 1 + 1 // role, content, finish, [DONE]
			if tt.wantUsage {
				want++
			}
			if len(events) != want {
				t.Fatalf("%d events, want %d: %q", len(events), want, events)
			}
			if events[len(events)-1] != "[DONE]" {
				t.Fatalf("last event %q", events[len(events)-1])
			}
			var first chatChunk
			var text strings.Builder
			for i, ev := range events[:len(events)-1] {
				var c chatChunk
				decode(t, []byte(ev), &c)
				var generic map[string]any
				decode(t, []byte(ev), &generic)
				_, hasUsage := generic["usage"]
				if i == 0 {
					first = c
				}
				if c.ID != first.ID || c.Created != first.Created || c.Object != "chat.completion.chunk" || c.Model != "gpt-4o" {
					t.Fatalf("chunk %d envelope: %+v", i, c)
				}
				isUsageChunk := tt.wantUsage && i == len(events)-2
				switch {
				case isUsageChunk:
					if len(c.Choices) != 0 || generic["choices"] == nil || c.Usage == nil ||
						c.Usage.PromptTokens != 2 || c.Usage.CompletionTokens != 3 || c.Usage.TotalTokens != 5 {
						t.Fatalf("usage chunk: %s", ev)
					}
					continue
				case tt.wantUsage:
					if !hasUsage || generic["usage"] != nil {
						t.Fatalf("chunk %d should carry usage:null: %s", i, ev)
					}
				default:
					if hasUsage {
						t.Fatalf("chunk %d should not carry usage: %s", i, ev)
					}
				}
				if len(c.Choices) != 1 {
					t.Fatalf("chunk %d choices: %s", i, ev)
				}
				d := c.Choices[0]
				switch {
				case i == 0:
					if d.Delta.Role != "assistant" || d.Delta.Content == nil || *d.Delta.Content != "" || d.FinishReason != nil {
						t.Fatalf("role chunk: %s", ev)
					}
				case i <= 3:
					if d.Delta.Content == nil || d.FinishReason != nil {
						t.Fatalf("content chunk: %s", ev)
					}
					text.WriteString(*d.Delta.Content)
				default:
					if d.FinishReason == nil || *d.FinishReason != "stop" || d.Delta.Content != nil || d.Delta.Role != "" {
						t.Fatalf("finish chunk: %s", ev)
					}
				}
			}
			if text.String() != "Hello from the " {
				t.Fatalf("streamed text %q", text.String())
			}
		})
	}
}

func TestCompletion(t *testing.T) {
	srv := newTestServer(t, testConfig())
	t.Run("non-stream", func(t *testing.T) {
		resp := post(t, srv, "/v1/completions", `{"model":"gpt-3.5-turbo-instruct","prompt":["a b","c"]}`, nil)
		var c textCompletion
		decode(t, readAll(t, resp), &c)
		if c.Object != "text_completion" || !strings.HasPrefix(c.ID, "cmpl-") || len(c.Choices) != 1 ||
			c.Choices[0].Text != "Hello from the mock LLM! " || *c.Choices[0].FinishReason != "stop" ||
			c.Usage == nil || c.Usage.PromptTokens != 3 || c.Usage.CompletionTokens != 5 {
			t.Fatalf("completion: %+v", c)
		}
	})
	t.Run("stream with usage", func(t *testing.T) {
		resp := post(t, srv, "/v1/completions", `{"model":"m","prompt":[1,2,3,4],"stream":true,"stream_options":{"include_usage":true}}`,
			map[string]string{"X-Mock-Chunks": "2"})
		events, err := readEvents(t, resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 5 || events[4] != "[DONE]" {
			t.Fatalf("events %q", events)
		}
		var c0, fin, us textCompletion
		decode(t, []byte(events[0]), &c0)
		decode(t, []byte(events[2]), &fin)
		decode(t, []byte(events[3]), &us)
		if c0.Choices[0].Text != "Hello " || c0.Choices[0].FinishReason != nil || c0.Object != "text_completion" {
			t.Fatalf("first chunk %s", events[0])
		}
		if fin.Choices[0].FinishReason == nil || *fin.Choices[0].FinishReason != "stop" {
			t.Fatalf("finish chunk %s", events[2])
		}
		if len(us.Choices) != 0 || us.Usage == nil || us.Usage.PromptTokens != 4 || us.Usage.CompletionTokens != 2 {
			t.Fatalf("usage chunk %s", events[3])
		}
	})
}

func checkError(t *testing.T, resp *http.Response, status int, typ string) errorDetail {
	t.Helper()
	raw := readAll(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var generic map[string]map[string]any
	decode(t, raw, &generic)
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := generic["error"][k]; !ok {
			t.Fatalf("error body lacks %q: %s", k, raw)
		}
	}
	var e errorBody
	decode(t, raw, &e)
	if e.Error.Type != typ || e.Error.Message == "" {
		t.Fatalf("error %+v, want type %s", e.Error, typ)
	}
	return e.Error
}

func TestBadRequests(t *testing.T) {
	srv := newTestServer(t, testConfig())
	tests := []struct {
		name, path, body string
		hdr              map[string]string
		param            string
	}{
		{"invalid json", "/v1/chat/completions", `{"model":`, nil, ""},
		{"empty body", "/v1/chat/completions", ``, nil, ""},
		{"wrong type", "/v1/chat/completions", `{"model":1,"messages":[]}`, nil, ""},
		{"missing model", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, nil, "model"},
		{"missing messages", "/v1/chat/completions", `{"model":"m"}`, nil, "messages"},
		{"empty messages", "/v1/chat/completions", `{"model":"m","messages":[]}`, nil, "messages"},
		{"missing messages fixed tokens", "/v1/chat/completions", `{"model":"m"}`, map[string]string{"X-Mock-Prompt-Tokens": "3"}, "messages"},
		{"bad latency header", "/v1/chat/completions", chatBody, map[string]string{"X-Mock-Latency": "soon"}, ""},
		{"negative chunks header", "/v1/chat/completions", chatBody, map[string]string{"X-Mock-Chunks": "-1"}, ""},
		{"bad status header", "/v1/chat/completions", chatBody, map[string]string{"X-Mock-Status": "302"}, ""},
		{"bad bool header", "/v1/chat/completions", chatBody, map[string]string{"X-Mock-No-Usage": "maybe"}, ""},
		{"completion missing prompt", "/v1/completions", `{"model":"m"}`, nil, "prompt"},
		{"embeddings missing input", "/v1/embeddings", `{"model":"m"}`, nil, "input"},
		{"embeddings bad input", "/v1/embeddings", `{"model":"m","input":{"a":1}}`, nil, "input"},
		{"embeddings mixed input", "/v1/embeddings", `{"model":"m","input":["a",1]}`, nil, "input"},
		{"embeddings empty input", "/v1/embeddings", `{"model":"m","input":[]}`, nil, "input"},
		{"embeddings bad format", "/v1/embeddings", `{"model":"m","input":"a","encoding_format":"hex"}`, nil, "encoding_format"},
		{"embeddings bad dims", "/v1/embeddings", `{"model":"m","input":"a","dimensions":-3}`, nil, "dimensions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := checkError(t, post(t, srv, tt.path, tt.body, tt.hdr), http.StatusBadRequest, "invalid_request_error")
			if tt.param != "" && (e.Param == nil || *e.Param != tt.param) {
				t.Fatalf("param %v, want %q", e.Param, tt.param)
			}
		})
	}
}

func TestInjectedStatus(t *testing.T) {
	srv := newTestServer(t, testConfig())
	tests := []struct {
		status     int
		typ        string
		retryAfter string
	}{
		{500, "server_error", ""},
		{503, "server_error", "2"},
		{429, "rate_limit_error", "7"},
		{401, "authentication_error", ""},
		{400, "invalid_request_error", ""},
	}
	for _, path := range []string{"/v1/chat/completions", "/v1/completions", "/v1/embeddings"} {
		for _, tt := range tests {
			t.Run(path+"/"+http.StatusText(tt.status), func(t *testing.T) {
				hdr := map[string]string{"X-Mock-Status": itoa(tt.status)}
				if tt.retryAfter != "" {
					hdr["X-Mock-Retry-After"] = tt.retryAfter
				}
				resp := post(t, srv, path, `{"model":"m","stream":true}`, hdr)
				checkError(t, resp, tt.status, tt.typ)
				if got := resp.Header.Get("Retry-After"); got != tt.retryAfter {
					t.Fatalf("Retry-After %q, want %q", got, tt.retryAfter)
				}
			})
		}
	}
	t.Run("status 200 is normal", func(t *testing.T) {
		resp := post(t, srv, "/v1/chat/completions", chatBody, map[string]string{"X-Mock-Status": "200", "X-Mock-Retry-After": "3"})
		if resp.StatusCode != 200 || resp.Header.Get("Retry-After") != "3" {
			t.Fatalf("status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestAuth(t *testing.T) {
	cfg := testConfig()
	cfg.APIKey = "sk-mock-secret"
	srv := newTestServer(t, cfg)
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"missing", nil, 401},
		{"wrong", map[string]string{"Authorization": "Bearer sk-other"}, 401},
		{"no bearer", map[string]string{"Authorization": "sk-mock-secret"}, 401},
		{"right", map[string]string{"Authorization": "Bearer sk-mock-secret"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/v1/chat/completions", "/v1/embeddings"} {
				resp := post(t, srv, path, `{"model":"m","messages":[{"role":"user","content":"x"}],"input":"x"}`, tt.hdr)
				if tt.status == 401 {
					e := checkError(t, resp, 401, "authentication_error")
					if strings.Contains(e.Message, "sk-") {
						t.Fatalf("message leaks the key without X-Mock-Echo-Key: %q", e.Message)
					}
				} else if resp.StatusCode != tt.status {
					t.Fatalf("%s: status %d", path, resp.StatusCode)
				}
			}
			resp := do(t, context.Background(), srv, http.MethodGet, "/v1/models", "", tt.hdr)
			if resp.StatusCode != tt.status {
				t.Fatalf("models: status %d", resp.StatusCode)
			}
		})
	}
	t.Run("echo key", func(t *testing.T) {
		resp := post(t, srv, "/v1/chat/completions", chatBody,
			map[string]string{"Authorization": "Bearer sk-upstream-123", "X-Mock-Echo-Key": "true"})
		e := checkError(t, resp, 401, "authentication_error")
		if !strings.Contains(e.Message, "Bearer sk-upstream-123") {
			t.Fatalf("message does not echo the key: %q", e.Message)
		}
		resp = post(t, srv, "/v1/chat/completions", chatBody,
			map[string]string{"Authorization": "Bearer sk-mock-secret", "X-Mock-Echo-Key": "true", "X-Mock-Status": "500"})
		e = checkError(t, resp, 500, "server_error")
		if !strings.Contains(e.Message, "Bearer sk-mock-secret") {
			t.Fatalf("message does not echo the key: %q", e.Message)
		}
	})
	t.Run("healthz and stats need no key", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/_mock/stats"} {
			if resp := do(t, context.Background(), srv, http.MethodGet, p, "", nil); resp.StatusCode != 200 {
				t.Fatalf("%s: %d", p, resp.StatusCode)
			}
		}
	})
}

func TestEmbeddings(t *testing.T) {
	srv := newTestServer(t, testConfig())
	get := func(t *testing.T, body string) embeddingList {
		t.Helper()
		resp := post(t, srv, "/v1/embeddings", body, nil)
		raw := readAll(t, resp)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, raw)
		}
		var l embeddingList
		decode(t, raw, &l)
		if l.Object != "list" || l.Model != "text-embedding-3-small" {
			t.Fatalf("envelope: %s", raw)
		}
		for i, d := range l.Data {
			if d.Object != "embedding" || d.Index != i {
				t.Fatalf("item %d: %+v", i, d)
			}
		}
		return l
	}
	floats := func(t *testing.T, v any) []float64 {
		t.Helper()
		arr, ok := v.([]any)
		if !ok {
			t.Fatalf("embedding is %T, want an array", v)
		}
		out := make([]float64, len(arr))
		for i, x := range arr {
			out[i] = x.(float64)
		}
		return out
	}
	tests := []struct {
		name         string
		input        string
		items, usage int
	}{
		{"string", `"the quick fox"`, 1, 3},
		{"strings", `["a b","c"]`, 2, 3},
		{"tokens", `[1,2,3,4,5]`, 1, 5},
		{"token arrays", `[[1,2],[3,4,5]]`, 2, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := get(t, `{"model":"text-embedding-3-small","input":`+tt.input+`}`)
			if len(l.Data) != tt.items || l.Usage == nil || l.Usage.PromptTokens != tt.usage || l.Usage.TotalTokens != tt.usage {
				t.Fatalf("got %d items, usage %+v", len(l.Data), l.Usage)
			}
			for _, d := range l.Data {
				v := floats(t, d.Embedding)
				if len(v) != 8 {
					t.Fatalf("dims %d", len(v))
				}
				var sum float64
				for _, x := range v {
					sum += x * x
				}
				if math.Abs(sum-1) > 1e-4 {
					t.Fatalf("norm² %v, want 1", sum)
				}
			}
		})
	}
	t.Run("deterministic and distinct", func(t *testing.T) {
		a := get(t, `{"model":"text-embedding-3-small","input":["x","y","x"]}`)
		b := get(t, `{"model":"text-embedding-3-small","input":"x"}`)
		x1, y, x2, xb := floats(t, a.Data[0].Embedding), floats(t, a.Data[1].Embedding), floats(t, a.Data[2].Embedding), floats(t, b.Data[0].Embedding)
		for i := range x1 {
			if x1[i] != x2[i] || x1[i] != xb[i] {
				t.Fatalf("same input, different vectors: %v %v %v", x1, x2, xb)
			}
		}
		same := true
		for i := range x1 {
			same = same && x1[i] == y[i]
		}
		if same {
			t.Fatal("different inputs, same vector")
		}
	})
	t.Run("dimensions and base64", func(t *testing.T) {
		f := get(t, `{"model":"text-embedding-3-small","input":"hello","dimensions":16}`)
		b := get(t, `{"model":"text-embedding-3-small","input":"hello","dimensions":16,"encoding_format":"base64"}`)
		want := floats(t, f.Data[0].Embedding)
		if len(want) != 16 {
			t.Fatalf("dims %d", len(want))
		}
		s, ok := b.Data[0].Embedding.(string)
		if !ok {
			t.Fatalf("base64 embedding is %T", b.Data[0].Embedding)
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != 4*16 {
			t.Fatalf("decode base64 (%d bytes): %v", len(raw), err)
		}
		for i := range want {
			got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			if got != float32(want[i]) {
				t.Fatalf("component %d: base64 %v, float %v", i, got, want[i])
			}
		}
	})
	t.Run("no usage", func(t *testing.T) {
		resp := post(t, srv, "/v1/embeddings", `{"model":"m","input":"x"}`, map[string]string{"X-Mock-No-Usage": "true"})
		raw := readAll(t, resp)
		if bytes.Contains(raw, []byte(`"usage"`)) {
			t.Fatalf("usage sent: %s", raw)
		}
	})
}

func TestModelsAndMisc(t *testing.T) {
	srv := newTestServer(t, testConfig())
	ctx := context.Background()
	var l modelList
	decode(t, readAll(t, do(t, ctx, srv, http.MethodGet, "/v1/models", "", nil)), &l)
	ids := map[string]bool{}
	for _, m := range l.Data {
		if m.Object != "model" || m.Created == 0 || m.OwnedBy == "" {
			t.Fatalf("model %+v", m)
		}
		ids[m.ID] = true
	}
	for _, id := range []string{"gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "mock-model"} {
		if l.Object != "list" || !ids[id] {
			t.Fatalf("models %+v lack %s", l, id)
		}
	}
	var one modelObject
	decode(t, readAll(t, do(t, ctx, srv, http.MethodGet, "/v1/models/gpt-4o", "", nil)), &one)
	if one.ID != "gpt-4o" {
		t.Fatalf("model %+v", one)
	}
	checkError(t, do(t, ctx, srv, http.MethodGet, "/v1/models/nope", "", nil), 404, "invalid_request_error")
	checkError(t, do(t, ctx, srv, http.MethodPost, "/v1/nothing", "{}", nil), 404, "invalid_request_error")
	if b := readAll(t, do(t, ctx, srv, http.MethodGet, "/healthz", "", nil)); string(b) != "ok\n" {
		t.Fatalf("healthz %q", b)
	}
}

func TestDisconnectAfter(t *testing.T) {
	srv := newTestServer(t, testConfig())
	streamBody := `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`
	for _, n := range []int{0, 1, 3} {
		t.Run("stream "+itoa(n), func(t *testing.T) {
			resp := post(t, srv, "/v1/chat/completions", streamBody, map[string]string{"X-Mock-Disconnect-After": itoa(n)})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			events, err := readEvents(t, resp.Body)
			if err == nil {
				t.Fatalf("stream ended cleanly after %d events", len(events))
			}
			if len(events) != n {
				t.Fatalf("got %d events before the drop, want %d", len(events), n)
			}
		})
	}
	t.Run("non-stream before headers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(chatBody))
		req.Header.Set("X-Mock-Disconnect-After", "0")
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got a response (%d), want a transport error", resp.StatusCode)
		}
	})
	t.Run("non-stream before body", func(t *testing.T) {
		resp := post(t, srv, "/v1/chat/completions", chatBody, map[string]string{"X-Mock-Disconnect-After": "1"})
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("read body: %v, want unexpected EOF", err)
		}
	})
	waitStats(t, srv, "5 aborted", func(s statsBody) bool { return s.Aborted == 5 && s.InFlight == 0 })
}

func TestStallAndCancelCounting(t *testing.T) {
	srv := newTestServer(t, testConfig())
	streamBody := `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`
	t.Run("stream stall", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp := do(t, ctx, srv, http.MethodPost, "/v1/chat/completions", streamBody, map[string]string{"X-Mock-Stall-After": "2"})
		br := bufio.NewReader(resp.Body)
		for i := 0; i < 4; i++ { // two events, two lines each
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatalf("line %d: %v", i, err)
			}
		}
		got := make(chan error, 1)
		go func() { _, err := br.ReadByte(); got <- err }()
		select {
		case err := <-got:
			t.Fatalf("stream went on after the stall point: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		if s := getStats(t, srv); s.InFlight != 1 {
			t.Fatalf("in_flight %d, want 1", s.InFlight)
		}
		cancel()
		<-got
		waitStats(t, srv, "1 canceled", func(s statsBody) bool { return s.Canceled == 1 && s.InFlight == 0 })
	})
	t.Run("non-stream stall before headers", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(chatBody))
		req.Header.Set("X-Mock-Stall-After", "0")
		if resp, err := srv.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("got a response, want the client to time out")
		}
		waitStats(t, srv, "2 canceled", func(s statsBody) bool { return s.Canceled == 2 && s.InFlight == 0 })
	})
	t.Run("cancel during latency", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(chatBody))
		req.Header.Set("X-Mock-Latency", "1m")
		if resp, err := srv.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("got a response, want the client to time out")
		}
		waitStats(t, srv, "3 canceled", func(s statsBody) bool { return s.Canceled == 3 && s.InFlight == 0 })
	})
	t.Run("cancel mid-stream", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp := do(t, ctx, srv, http.MethodPost, "/v1/chat/completions", streamBody,
			map[string]string{"X-Mock-Chunk-Delay": "50ms", "X-Mock-Chunks": "100"})
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		cancel()
		s := waitStats(t, srv, "4 canceled", func(s statsBody) bool { return s.Canceled == 4 && s.InFlight == 0 })
		if s.Completed != 0 {
			t.Fatalf("completed %d, want 0", s.Completed)
		}
	})
}

func TestTimings(t *testing.T) {
	srv := newTestServer(t, testConfig())
	const latency, ttft, delay = 60 * time.Millisecond, 80 * time.Millisecond, 20 * time.Millisecond
	hdr := map[string]string{"X-Mock-Latency": latency.String(), "X-Mock-TTFT": ttft.String(),
		"X-Mock-Chunk-Delay": delay.String(), "X-Mock-Chunks": "3"}
	start := time.Now()
	resp := post(t, srv, "/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr)
	if d := time.Since(start); d < latency {
		t.Fatalf("headers after %v, want ≥ %v", d, latency)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < latency+ttft {
		t.Fatalf("first chunk after %v, want ≥ %v", d, latency+ttft)
	}
	if _, err := io.ReadAll(br); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < latency+ttft+3*delay {
		t.Fatalf("stream took %v, want ≥ %v", d, latency+ttft+3*delay)
	}
	start = time.Now()
	readAll(t, post(t, srv, "/v1/embeddings", `{"model":"m","input":"x"}`, map[string]string{"X-Mock-Latency": "50ms"}))
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("embeddings answered after %v", d)
	}
}

func TestStats(t *testing.T) {
	srv := newTestServer(t, testConfig())
	ctx := context.Background()
	readAll(t, post(t, srv, "/v1/chat/completions", chatBody, map[string]string{"Authorization": "Bearer sk-up"}))
	readAll(t, post(t, srv, "/v1/chat/completions", chatBody, map[string]string{"X-Mock-Status": "500"}))
	readAll(t, do(t, ctx, srv, http.MethodGet, "/healthz", "", nil))
	readAll(t, post(t, srv, "/v1/embeddings", `{"model":"m","input":"last"}`, map[string]string{"X-Trace": "abc"}))
	s := getStats(t, srv)
	if s.Requests != 3 || s.Completed != 3 || s.Canceled != 0 || s.InFlight != 0 {
		t.Fatalf("stats %+v", s)
	}
	if s.LastBody != `{"model":"m","input":"last"}` || s.LastHeaders["X-Trace"] != "abc" {
		t.Fatalf("last request: %q %v", s.LastBody, s.LastHeaders)
	}
	resp := do(t, ctx, srv, http.MethodPost, "/_mock/reset", "", nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("reset status %d", resp.StatusCode)
	}
	s = getStats(t, srv)
	if s.Requests != 0 || s.Completed != 0 || s.LastBody != "" || len(s.LastHeaders) != 0 {
		t.Fatalf("after reset %+v", s)
	}
}

func TestResolve(t *testing.T) {
	cfg := config{Latency: time.Second, Chunks: 4, CompletionTokens: 0, PromptTokens: 2}
	h := http.Header{}
	b, err := resolve(&cfg, h)
	if err != nil || b.latency != time.Second || b.chunks != 4 || b.completionTokens != 4 || b.promptTokens != 2 ||
		b.disconnectAfter != -1 || b.stallAfter != -1 || b.status != 0 {
		t.Fatalf("defaults: %+v %v", b, err)
	}
	h.Set("X-Mock-TTFT", "1.5s")
	h.Set("X-Mock-Chunks", "9")
	h.Set("X-Mock-Status", "503")
	h.Set("X-Mock-Stall-After", "0")
	h.Set("X-Mock-Echo-Key", "1")
	b, err = resolve(&cfg, h)
	if err != nil || b.ttft != 1500*time.Millisecond || b.chunks != 9 || b.completionTokens != 9 || b.status != 503 ||
		b.stallAfter != 0 || !b.echoKey {
		t.Fatalf("headers: %+v %v", b, err)
	}
	for _, bad := range [][2]string{
		{"X-Mock-Latency", "-1s"}, {"X-Mock-Chunks", "x"}, {"X-Mock-Chunks", "100001"},
		{"X-Mock-Status", "600"}, {"X-Mock-Status", "399"}, {"X-Mock-Disconnect-After", "-2"},
	} {
		h := http.Header{}
		h.Set(bad[0], bad[1])
		if _, err := resolve(&cfg, h); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Fatalf("%s: %s: err %v", bad[0], bad[1], err)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "gpt-4o", `q"uo\te`, "tab\tnl\ncr\r\x00\x1f", "héllo 世界", "\u2028\u2029", "bad\xffutf8", "<&>"} {
		enc := appendString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", s, enc, err)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if got != want {
			t.Fatalf("round trip of %q gave %q", s, got)
		}
	}
}

func TestCountWords(t *testing.T) {
	tests := []struct {
		json string
		want int
	}{
		{`""`, 0}, {`"one"`, 1}, {`"  two  words "`, 2}, {`"a\nb\tc"`, 3}, {`"\u00e9t\u00e9 x"`, 2}, {`"say \"hi\""`, 2},
	}
	for _, tt := range tests {
		if got := countJSONStringWords([]byte(tt.json)); got != tt.want {
			t.Fatalf("%s: %d words, want %d", tt.json, got, tt.want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--listen", "127.0.0.1:0", "--chunks", "2", "--api-key", "k"}, &stderr)
	}()
	re := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	for deadline := time.Now().Add(5 * time.Second); base == ""; {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no listen line in %q", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(chatBody))
	req.Header.Set("Authorization", "Bearer k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var c chatCompletion
	decode(t, readAll(t, resp), &c)
	resp.Body.Close()
	if c.Choices[0].Message.Content != "Hello from " {
		t.Fatalf("content %q", c.Choices[0].Message.Content)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not shut down")
	}
}

func TestParseFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--chunks", "-1"}, {"--embedding-dims", "0"}, {"--latency", "-1s"}, {"extra"}, {"--nope"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Fatalf("%v: no error", args)
		}
	}
	c, err := parseFlags(nil, io.Discard)
	if err != nil || c.Listen != "127.0.0.1:8000" || c.Chunks != 5 || c.EmbeddingDims != 8 {
		t.Fatalf("defaults %+v %v", c, err)
	}
}

// discardWriter is a minimal http.ResponseWriter for handler benchmarks.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// benchHandler serves body to the chat handler in a loop. The request is
// built once (only its body is rewound), so ns/op is the mock's own cost
// without net/http's parsing.
func benchHandler(b *testing.B, cfg config, body []byte) {
	h := newMock(cfg).handler()
	w := &discardWriter{h: http.Header{}}
	rd := bytes.NewReader(body)
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	req.Body = io.NopCloser(rd)
	req.ContentLength = int64(len(body))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkChat measures the non-stream chat path: "handler" calls the
// handler directly (the mock's own cost), "http" goes through a loopback
// HTTP/1.1 server and client.
func BenchmarkChat(b *testing.B) {
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write one sentence about the sea."}],"max_tokens":64}`)
	for _, fixed := range []bool{false, true} {
		name := "handler/count-words"
		cfg := testConfig()
		if fixed {
			name = "handler/fixed-tokens"
			cfg.PromptTokens = 20
		}
		b.Run(name, func(b *testing.B) { benchHandler(b, cfg, body) })
	}
	b.Run("handler/stream", func(b *testing.B) {
		benchHandler(b, testConfig(), []byte(`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`))
	})
	b.Run("http", func(b *testing.B) {
		srv := httptest.NewServer(newMock(testConfig()).handler())
		defer srv.Close()
		client := srv.Client()
		client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Post(srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	})
}

// TestForcedStatus: POST /_mock/status makes every model request fail until
// it is set back to 200; a request's own X-Mock-Status still wins.
func TestForcedStatus(t *testing.T) {
	srv := newTestServer(t, testConfig())
	ctx := context.Background()
	status := func(method, path, body string, hdr map[string]string) int {
		resp := do(t, ctx, srv, method, path, body, hdr)
		readAll(t, resp)
		return resp.StatusCode
	}
	if c := status(http.MethodPost, "/_mock/status?code=500", "", nil); c != http.StatusNoContent {
		t.Fatalf("set: %d", c)
	}
	if c := status(http.MethodPost, "/v1/chat/completions", chatBody, nil); c != 500 {
		t.Fatalf("chat while forced: %d", c)
	}
	if c := status(http.MethodGet, "/v1/models", "", nil); c != 500 {
		t.Fatalf("models while forced: %d", c)
	}
	if c := status(http.MethodPost, "/v1/chat/completions", chatBody, map[string]string{"X-Mock-Status": "429"}); c != 429 {
		t.Fatalf("own header while forced: %d", c)
	}
	for _, bad := range []string{"abc", "302", "600", ""} {
		if c := status(http.MethodPost, "/_mock/status?code="+bad, "", nil); c != http.StatusBadRequest {
			t.Fatalf("code=%s: %d", bad, c)
		}
	}
	status(http.MethodPost, "/_mock/status?code=200", "", nil)
	if c := status(http.MethodPost, "/v1/chat/completions", chatBody, nil); c != 200 {
		t.Fatalf("chat after recovery: %d", c)
	}
}
