package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

var anthropicHeaders = map[string]string{"anthropic-version": "2023-06-01"}

func withHeaders(extra map[string]string) map[string]string {
	h := map[string]string{"anthropic-version": "2023-06-01"}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

type anthropicMsg struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Role       string `json:"role"`
	Model      string `json:"model"`
	StopReason string `json:"stop_reason"`
	Content    []struct {
		Type  string          `json:"type"`
		Text  string          `json:"text"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	} `json:"content"`
	Usage *struct {
		Input      int `json:"input_tokens"`
		Output     int `json:"output_tokens"`
		CacheRead  int `json:"cache_read_input_tokens"`
		CacheWrite int `json:"cache_creation_input_tokens"`
	} `json:"usage"`
}

type anthropicErr struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestAnthropicMessage(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, "/v1/messages", `{"model":"claude-x","max_tokens":100,"system":"be kind","messages":[{"role":"user","content":"hello there"}]}`, anthropicHeaders)
	if resp.StatusCode != 200 || resp.Header.Get("Request-Id") == "" {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var m anthropicMsg
	decode(t, readAll(t, resp), &m)
	if m.Type != "message" || m.Role != "assistant" || m.Model != "claude-x" || !strings.HasPrefix(m.ID, "msg_") ||
		m.StopReason != "end_turn" || len(m.Content) != 1 || m.Content[0].Text != "Hello from the mock LLM! " ||
		m.Usage == nil || m.Usage.Input != 4 || m.Usage.Output != 5 || m.Usage.CacheRead != 0 {
		t.Errorf("%+v %+v", m, m.Usage)
	}
	// max_tokens caps the reply.
	resp = post(t, srv, "/v1/messages", `{"model":"m","max_tokens":2,"messages":[{"role":"user","content":"x"}]}`, anthropicHeaders)
	decode(t, readAll(t, resp), &m)
	if m.StopReason != "max_tokens" || m.Content[0].Text != "Hello from " || m.Usage.Output != 2 {
		t.Errorf("%+v", m)
	}
}

func TestAnthropicErrors(t *testing.T) {
	cfg := testConfig()
	cfg.APIKey = "sk-ant-test"
	srv := newTestServer(t, cfg)
	const ok = `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"x"}]}`
	for _, c := range []struct {
		body   string
		hdr    map[string]string
		status int
		typ    string
	}{
		{ok, map[string]string{"anthropic-version": "2023-06-01"}, 401, "authentication_error"},
		{ok, withHeaders(map[string]string{"x-api-key": "wrong"}), 401, "authentication_error"},
		{ok, map[string]string{"x-api-key": "sk-ant-test"}, 400, "invalid_request_error"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}]}`, withHeaders(map[string]string{"x-api-key": "sk-ant-test"}), 400, "invalid_request_error"},
		{`{"model":"m","max_tokens":1,"messages":[]}`, withHeaders(map[string]string{"x-api-key": "sk-ant-test"}), 400, "invalid_request_error"},
		{`{`, withHeaders(map[string]string{"x-api-key": "sk-ant-test"}), 400, "invalid_request_error"},
		{ok, withHeaders(map[string]string{"x-api-key": "sk-ant-test", "X-Mock-Status": "529"}), 529, "overloaded_error"},
		{ok, withHeaders(map[string]string{"x-api-key": "sk-ant-test", "X-Mock-Status": "429", "X-Mock-Retry-After": "3"}), 429, "rate_limit_error"},
		{ok, withHeaders(map[string]string{"x-api-key": "sk-ant-test", "X-Mock-Status": "500"}), 500, "api_error"},
		{ok, withHeaders(map[string]string{"x-api-key": "sk-ant-test", "X-Mock-Status": "404"}), 404, "not_found_error"},
		{ok, withHeaders(map[string]string{"x-api-key": "sk-ant-test", "X-Mock-Chunks": "many"}), 400, "invalid_request_error"},
	} {
		resp := post(t, srv, "/v1/messages", c.body, c.hdr)
		var e anthropicErr
		decode(t, readAll(t, resp), &e)
		if resp.StatusCode != c.status || e.Type != "error" || e.Error.Type != c.typ || e.Error.Message == "" {
			t.Errorf("%s %v: %d %+v", c.body, c.hdr, resp.StatusCode, e)
		}
		if c.status == 429 && resp.Header.Get("Retry-After") != "3" {
			t.Error("Retry-After lost")
		}
	}
	resp := post(t, srv, "/v1/messages", ok, withHeaders(map[string]string{"x-api-key": "sk-ant-test", "X-Mock-Status": "400", "X-Mock-Echo-Key": "true"}))
	if b := readAll(t, resp); !bytes.Contains(b, []byte("sk-ant-test")) {
		t.Errorf("key not echoed: %s", b)
	}
	resp = post(t, srv, "/v1/messages", ok, withHeaders(map[string]string{"x-api-key": "sk-ant-test"}))
	if resp.StatusCode != 200 {
		t.Errorf("good key: %d", resp.StatusCode)
	}
}

type sseEvent struct {
	name string
	data map[string]any
}

func readSSE(t *testing.T, resp *http.Response) []sseEvent {
	t.Helper()
	var out []sseEvent
	sc := bufio.NewScanner(resp.Body)
	var name string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = line[7:]
		case strings.HasPrefix(line, "data: "):
			var d map[string]any
			decode(t, []byte(line[6:]), &d)
			if d["type"] != name {
				t.Fatalf("event %s carries type %v", name, d["type"])
			}
			out = append(out, sseEvent{name, d})
		}
	}
	return out
}

func names(evs []sseEvent) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.name)
	}
	return strings.Join(s, " ")
}

func TestAnthropicStream(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, "/v1/messages", `{"model":"m","max_tokens":100,"stream":true,"system":[{"type":"text","text":"a b c d","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":[{"type":"text","text":"one two"}]}]}`, anthropicHeaders)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %s", ct)
	}
	evs := readSSE(t, resp)
	want := "message_start content_block_start ping content_block_delta content_block_delta content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if names(evs) != want {
		t.Fatalf("order %s", names(evs))
	}
	var text strings.Builder
	for _, e := range evs[3:8] {
		d := e.data["delta"].(map[string]any)
		if d["type"] != "text_delta" || e.data["index"] != float64(0) {
			t.Errorf("%v", e.data)
		}
		text.WriteString(d["text"].(string))
	}
	if text.String() != "Hello from the mock LLM! " {
		t.Errorf("text %q", text.String())
	}
	start := evs[0].data["message"].(map[string]any)["usage"].(map[string]any)
	final := evs[9].data["usage"].(map[string]any)
	if start["input_tokens"] != float64(3) || start["cache_read_input_tokens"] != float64(3) ||
		final["output_tokens"] != float64(5) || final["input_tokens"] != float64(3) || final["cache_read_input_tokens"] != float64(3) {
		t.Errorf("usage %v %v", start, final)
	}
	if evs[9].data["delta"].(map[string]any)["stop_reason"] != "end_turn" {
		t.Errorf("%v", evs[9].data)
	}
}

func TestAnthropicTools(t *testing.T) {
	srv := newTestServer(t, testConfig())
	tools := `"tools":[{"name":"get_weather","input_schema":{"type":"object"}},{"name":"other","input_schema":{"type":"object"}}]`
	resp := post(t, srv, "/v1/messages", `{"model":"m","max_tokens":100,`+tools+`,"messages":[{"role":"user","content":"weather?"}]}`, anthropicHeaders)
	var m anthropicMsg
	decode(t, readAll(t, resp), &m)
	if m.StopReason != "tool_use" || len(m.Content) != 1 || m.Content[0].Type != "tool_use" || m.Content[0].Name != "get_weather" ||
		string(m.Content[0].Input) != "{}" || !strings.HasPrefix(m.Content[0].ID, "toolu_") {
		t.Errorf("%+v", m)
	}
	resp = post(t, srv, "/v1/messages", `{"model":"m","max_tokens":100,"stream":true,`+tools+`,"messages":[{"role":"user","content":"weather?"}]}`, anthropicHeaders)
	evs := readSSE(t, resp)
	if names(evs) != "message_start content_block_start ping content_block_delta content_block_delta content_block_stop message_delta message_stop" {
		t.Fatalf("order %s", names(evs))
	}
	args := ""
	for _, e := range evs[3:5] {
		args += e.data["delta"].(map[string]any)["partial_json"].(string)
	}
	if cb := evs[1].data["content_block"].(map[string]any); cb["type"] != "tool_use" || cb["name"] != "get_weather" || args != "{}" {
		t.Errorf("%v %q", cb, args)
	}
	// After a tool result the answer is text.
	resp = post(t, srv, "/v1/messages", `{"model":"m","max_tokens":100,`+tools+`,"messages":[{"role":"user","content":"weather?"},`+
		`{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}]},`+
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"}]}]}`, anthropicHeaders)
	decode(t, readAll(t, resp), &m)
	if m.StopReason != "end_turn" || m.Content[0].Type != "text" {
		t.Errorf("%+v", m)
	}
}

func TestAnthropicCountTokens(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, "/v1/messages/count_tokens", `{"model":"m","system":"a b","messages":[{"role":"user","content":"one two three"}]}`, anthropicHeaders)
	var v struct {
		InputTokens int `json:"input_tokens"`
	}
	decode(t, readAll(t, resp), &v)
	if resp.StatusCode != 200 || v.InputTokens != 5 {
		t.Errorf("%d %+v", resp.StatusCode, v)
	}
}

func TestAnthropicStreamDisconnect(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, "/v1/messages", `{"model":"m","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"x"}]}`,
		withHeaders(map[string]string{"X-Mock-Disconnect-After": "4"}))
	b, _ := readAllErr(resp)
	if bytes.Contains(b, []byte("message_stop")) || !bytes.Contains(b, []byte("content_block_delta")) {
		t.Errorf("%s", b)
	}
}

func readAllErr(resp *http.Response) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(resp.Body)
	return buf.Bytes(), err
}

// TestAnthropicTimings checks that a Messages stream keeps the OpenAI
// stream's timing (what sluice-bench compares): the first text delta right
// after the TTFT, the chunk delay before every later delta and before the
// block's end, latency + ttft + chunks × chunk-delay in all.
func TestAnthropicTimings(t *testing.T) {
	srv := newTestServer(t, testConfig())
	const latency, ttft, delay = 30 * time.Millisecond, 40 * time.Millisecond, 150 * time.Millisecond
	hdr := withHeaders(map[string]string{"X-Mock-Latency": latency.String(), "X-Mock-TTFT": ttft.String(),
		"X-Mock-Chunk-Delay": delay.String(), "X-Mock-Chunks": "3"})
	start := time.Now()
	resp := post(t, srv, "/v1/messages", `{"model":"claude-x","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"x"}]}`, hdr)
	br := bufio.NewReader(resp.Body)
	var startAt, firstDelta time.Duration
	deltas := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break
		}
		switch strings.TrimSpace(line) {
		case "event: message_start":
			startAt = time.Since(start)
		case "event: content_block_delta":
			if deltas++; deltas == 1 {
				firstDelta = time.Since(start)
			}
		}
	}
	total := time.Since(start)
	if deltas != 3 {
		t.Fatalf("%d deltas, want 3", deltas)
	}
	if startAt < latency+ttft {
		t.Fatalf("message_start after %v, want ≥ %v", startAt, latency+ttft)
	}
	if gap := firstDelta - startAt; gap >= delay/2 {
		t.Fatalf("first delta %v after message_start, want no chunk delay before it", gap)
	}
	if total < latency+ttft+3*delay {
		t.Fatalf("stream took %v, want ≥ %v", total, latency+ttft+3*delay)
	}
}

func TestAnthropicThinking(t *testing.T) {
	srv := newTestServer(t, testConfig())
	const req = `{"model":"m","max_tokens":3000,"thinking":{"type":"enabled","budget_tokens":2000},%s"messages":[{"role":"user","content":"x"}]}`
	resp := post(t, srv, "/v1/messages", strings.Replace(req, "%s", `"stream":true,`, 1), anthropicHeaders)
	evs := readSSE(t, resp)
	want := "message_start content_block_start ping content_block_delta content_block_delta content_block_stop content_block_start " +
		strings.Repeat("content_block_delta ", 5) + "content_block_stop message_delta message_stop"
	if names(evs) != want {
		t.Fatalf("order %s", names(evs))
	}
	if evs[3].data["delta"].(map[string]any)["type"] != "thinking_delta" || evs[4].data["delta"].(map[string]any)["type"] != "signature_delta" ||
		evs[6].data["index"] != float64(1) || evs[7].data["index"] != float64(1) || evs[12].data["index"] != float64(1) {
		t.Errorf("%v", evs)
	}
	resp = post(t, srv, "/v1/messages", strings.Replace(req, "%s", "", 1), anthropicHeaders)
	var m anthropicMsg
	decode(t, readAll(t, resp), &m)
	if len(m.Content) != 2 || m.Content[0].Type != "thinking" || m.Content[1].Type != "text" {
		t.Errorf("%+v", m)
	}
	resp = post(t, srv, "/v1/messages/batches", `{}`, anthropicHeaders)
	var e anthropicErr
	decode(t, readAll(t, resp), &e)
	if resp.StatusCode != 404 || e.Error.Type != "not_found_error" {
		t.Errorf("%d %+v", resp.StatusCode, e)
	}
}
