package router

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// newTypedProxy is newTestProxy with providers of type typ.
func newTypedProxy(t *testing.T, typ llm.ProviderType, upstreams ...string) (*httptest.Server, *recs) {
	t.Helper()
	return newTestProxyOf(t, typ, nil, time.Second, upstreams...)
}

// postTo posts body to path with the test key.
func postTo(t *testing.T, url, path, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url+path, strings.NewReader(body))
	req.Header.Set("x-api-key", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// The stream Anthropic documents for a Messages request
// (docs.anthropic.com, "Streaming Messages", basic streaming request),
// with prompt-cache usage.
const anthropicStream = "event: message_start\n" +
	`data: {"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"claude-opus-4-6","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_read_input_tokens":10,"cache_creation_input_tokens":0,"output_tokens":1}}}` + "\n\n" +
	"event: content_block_start\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n" +
	"event: ping\n" + `data: {"type": "ping"}` + "\n\n" +
	"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}` + "\n\n" +
	"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}}` + "\n\n" +
	"event: content_block_stop\n" + `data: {"type":"content_block_stop","index":0}` + "\n\n" +
	"event: message_delta\n" + `data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}` + "\n\n" +
	"event: message_stop\n" + `data: {"type":"message_stop"}` + "\n\n"

// Anthropic to Anthropic is the raw lane: the client gets the upstream's
// bytes as they are, and usage is read on the way (cache reads counted
// into the prompt, as the cost function expects).
func TestAnthropicRawStreamRelayed(t *testing.T) {
	var got []byte
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		if r.URL.Path != "/v1/messages" || r.Header.Get("X-Api-Key") != upstreamKey {
			w.WriteHeader(404)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, anthropicStream)
	}))
	defer up.Close()
	srv, r := newTypedProxy(t, llm.ProviderAnthropic, up.URL)
	resp := postTo(t, srv.URL, "/v1/messages", `{"model":"m","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Hello"}]}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != anthropicStream {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
	if string(got) != `{"model":"up-p0","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Hello"}]}` {
		t.Fatalf("upstream got %s", got)
	}
	rec := r.last()
	if rec.PromptTokens != 35 || rec.CacheReadTokens != 10 || rec.CompletionTokens != 15 || rec.Estimated || rec.Status != llm.StatusOK {
		t.Fatalf("record %+v", rec)
	}
}

// An overloaded_error event before anything reached the client is the
// attempt's failure: the next deployment answers. With no other one the
// client gets a 503 in Anthropic's error shape.
func TestAnthropicRawErrorEventRetried(t *testing.T) {
	overloaded := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n")
	}))
	defer overloaded.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, anthropicStream)
	}))
	defer good.Close()
	srv, r := newTypedProxy(t, llm.ProviderAnthropic, overloaded.URL, good.URL)
	resp := postTo(t, srv.URL, "/v1/messages", `{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != anthropicStream || r.last().Deployment != "dep_p1" {
		t.Fatalf("status %d body %q record %+v", resp.StatusCode, b, r.last())
	}

	srv, r = newTypedProxy(t, llm.ProviderAnthropic, overloaded.URL)
	resp = postTo(t, srv.URL, "/v1/messages", `{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	b, _ = io.ReadAll(resp.Body)
	var e struct {
		Type  string `json:"type"`
		Error struct{ Type, Message string }
	}
	if resp.StatusCode != 503 || json.Unmarshal(b, &e) != nil || e.Type != "error" || e.Error.Type != "overloaded_error" {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
	if rec := r.last(); rec.UpstreamStatus != 529 || rec.HTTPStatus != 503 {
		t.Fatalf("record %+v", rec)
	}
}

// Gateway errors on /v1/messages come in Anthropic's error shape, which
// the Anthropic SDKs parse.
func TestAnthropicErrorShape(t *testing.T) {
	srv, _ := newTypedProxy(t, llm.ProviderAnthropic, "http://127.0.0.1:1")
	for _, tc := range []struct {
		body, typ string
		status    int
	}{
		{`{"model":"nope","max_tokens":1,"messages":[]}`, "not_found_error", 404},
		{`{"model":"m",`, "invalid_request_error", 400},
	} {
		resp := postTo(t, srv.URL, "/v1/messages", tc.body)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || !strings.Contains(string(b), `"type":"error"`) || !strings.Contains(string(b), `"type":"`+tc.typ+`"`) {
			t.Errorf("%s: status %d body %s", tc.body, resp.StatusCode, b)
		}
	}
}

// A raw Anthropic stream cut after its first event ends with an
// Anthropic error event and a stream_broken record with estimated usage.
func TestAnthropicRawStreamBroken(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		i := strings.Index(anthropicStream, "event: content_block_stop")
		io.WriteString(w, anthropicStream[:i])
	}))
	defer up.Close()
	srv, r := newTypedProxy(t, llm.ProviderAnthropic, up.URL)
	resp := postTo(t, srv.URL, "/v1/messages", `{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	b, _ := io.ReadAll(resp.Body)
	if !strings.HasSuffix(string(b), "\n\n") || !strings.Contains(string(b), "event: error\n") || r.last().Status != llm.StatusStreamBroken {
		t.Fatalf("body %q record %+v", b, r.last())
	}
	// The prompt count message_start reported is kept; the output count
	// there is a placeholder, so the text sent so far is counted instead.
	if rec := r.last(); rec.PromptTokens != 35 || rec.CacheReadTokens != 10 || rec.CompletionTokens != 2 || !rec.Estimated {
		t.Fatalf("usage: %+v", rec)
	}
}

// count_tokens is asked of Anthropic providers and estimated for others.
func TestCountTokens(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/messages/count_tokens" {
			w.WriteHeader(404)
			return
		}
		b, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(b), `"model":"up-p0"`) {
			w.WriteHeader(400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"input_tokens":2095}`)
	}))
	defer up.Close()
	body := `{"model":"m","system":"You are a scientist","messages":[{"role":"user","content":"Hello, Claude"}]}`
	srv, _ := newTypedProxy(t, llm.ProviderAnthropic, up.URL)
	resp := postTo(t, srv.URL, "/v1/messages/count_tokens", body)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != `{"input_tokens":2095}` {
		t.Fatalf("anthropic: %d %s", resp.StatusCode, b)
	}
	srv, r := newTypedProxy(t, llm.ProviderOpenAICompatible, up.URL)
	resp = postTo(t, srv.URL, "/v1/messages/count_tokens", body)
	b, _ = io.ReadAll(resp.Body)
	var n struct {
		InputTokens int `json:"input_tokens"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &n) != nil || n.InputTokens < 8 || n.InputTokens > 30 {
		t.Fatalf("estimated: %d %s", resp.StatusCode, b)
	}
	r.mu.Lock()
	n2 := len(r.list)
	r.mu.Unlock()
	if n2 != 0 {
		t.Fatalf("count_tokens recorded %d usage rows", n2)
	}
	resp = postTo(t, srv.URL, "/v1/messages/count_tokens", fmt.Sprintf(`{"model":"m","messages":%s}`, "[1"))
	if resp.StatusCode != 400 {
		t.Fatalf("bad body: %d", resp.StatusCode)
	}
}
