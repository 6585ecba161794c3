package main

import (
	"net/http"
	"strings"
	"testing"
)

const toolsJSON = `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}},{"type":"function","function":{"name":"other"}}]`

func TestChatToolCallNonStream(t *testing.T) {
	srv := newTestServer(t, testConfig())
	for _, fixed := range []bool{false, true} {
		hdr := map[string]string{}
		if fixed {
			hdr["X-Mock-Prompt-Tokens"] = "7" // the no-count decode path
		}
		resp := post(t, srv, "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"weather?"}],`+toolsJSON+`}`, hdr)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
		}
		raw := readAll(t, resp)
		var c chatCompletion
		decode(t, raw, &c)
		ch := c.Choices[0]
		if ch.FinishReason != "tool_calls" || len(ch.Message.ToolCalls) != 1 || !strings.Contains(string(raw), `"content":null`) {
			t.Fatalf("answer %s", raw)
		}
		tc := ch.Message.ToolCalls[0]
		if tc.Type != "function" || tc.Function.Name != "get_weather" || tc.Function.Arguments != "{}" || !strings.HasPrefix(tc.ID, "call_") {
			t.Fatalf("tool call %+v", tc)
		}
	}
}

// Tools offered but the last message is a tool result, or tool_choice is
// none: text. A named tool_choice picks that tool.
func TestChatToolChoice(t *testing.T) {
	srv := newTestServer(t, testConfig())
	for _, c := range []struct{ body, wantTool string }{
		{`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"sunny"}],` + toolsJSON + `}`, ""},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],` + toolsJSON + `,"tool_choice":"none"}`, ""},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],` + toolsJSON + `,"tool_choice":"required"}`, "get_weather"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],` + toolsJSON + `,"tool_choice":{"type":"function","function":{"name":"other"}}}`, "other"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom","custom":{"name":"grammar"}}]}`, "grammar"},
		{`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[]}`, ""},
	} {
		var out chatCompletion
		decode(t, readAll(t, post(t, srv, "/v1/chat/completions", c.body, nil)), &out)
		got := ""
		if tcs := out.Choices[0].Message.ToolCalls; len(tcs) > 0 {
			got = tcs[0].Function.Name
		}
		wantFinish := "stop"
		if c.wantTool != "" {
			wantFinish = "tool_calls"
		}
		if got != c.wantTool || out.Choices[0].FinishReason != wantFinish || (got == "" && out.Choices[0].Message.Content == "") {
			t.Errorf("%s: tool %q finish %q", c.body, got, out.Choices[0].FinishReason)
		}
	}
}

func TestChatToolCallStream(t *testing.T) {
	srv := newTestServer(t, testConfig())
	for _, usage := range []bool{false, true} {
		opts := ""
		if usage {
			opts = `,"stream_options":{"include_usage":true}`
		}
		resp := post(t, srv, "/v1/chat/completions", `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"weather?"}],`+toolsJSON+opts+`}`, nil)
		events, err := readEvents(t, resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if events[len(events)-1] != "[DONE]" {
			t.Fatalf("last event %q", events[len(events)-1])
		}
		var id, name, args, finish string
		argChunks, usageSeen := 0, false
		for _, ev := range events[:len(events)-1] {
			var c chatChunk
			decode(t, []byte(ev), &c)
			if c.Usage != nil {
				usageSeen = true
				if len(c.Choices) != 0 || c.Usage.CompletionTokens == 0 {
					t.Fatalf("usage chunk %s", ev)
				}
				continue
			}
			if len(c.Choices) != 1 {
				t.Fatalf("chunk %s", ev)
			}
			d := c.Choices[0].Delta
			if d.Content != nil && *d.Content != "" {
				t.Fatalf("text in a tool-call stream: %s", ev)
			}
			for _, tc := range d.ToolCalls {
				if tc.Index == nil || *tc.Index != 0 {
					t.Fatalf("tool call without index 0: %s", ev)
				}
				if tc.ID != "" {
					if id != "" {
						t.Fatalf("id sent twice: %s", ev)
					}
					id, name = tc.ID, tc.Function.Name
					if tc.Type != "function" {
						t.Fatalf("first fragment %s", ev)
					}
				}
				if tc.Function.Arguments != "" {
					argChunks++
					args += tc.Function.Arguments
				}
			}
			if f := c.Choices[0].FinishReason; f != nil {
				finish = *f
			}
		}
		if name != "get_weather" || !strings.HasPrefix(id, "call_") || args != "{}" || argChunks < 2 || finish != "tool_calls" || usageSeen != usage {
			t.Fatalf("id %q name %q args %q in %d chunks, finish %q, usage %v: %q", id, name, args, argChunks, finish, usageSeen, events)
		}
	}
}

// The stream controls apply to tool-call streams as to text.
func TestChatToolCallStreamDisconnect(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, "/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}],`+toolsJSON+`}`,
		map[string]string{"X-Mock-Disconnect-After": "2"})
	events, err := readEvents(t, resp.Body)
	if err == nil || len(events) != 2 {
		t.Fatalf("%d events, err %v", len(events), err)
	}
}

func TestAzureDeploymentPaths(t *testing.T) {
	cfg := testConfig()
	cfg.APIKey = "azure-key-123456"
	srv := newTestServer(t, cfg)
	key := map[string]string{"api-key": cfg.APIKey}
	for _, path := range []string{
		"/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21",
		"/openai/deployments/gpt-4o-prod/chat/completions?api-version=2025-04-01-preview",
		"/openai/deployments/my%20dep%2Fx/chat/completions?api-version=2024-10-21",
	} {
		resp := post(t, srv, path, `{"messages":[{"role":"user","content":"hi there"}]}`, key)
		raw := readAll(t, resp)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, raw)
		}
		var c chatCompletion
		decode(t, raw, &c)
		want := strings.SplitN(strings.TrimPrefix(path, "/openai/deployments/"), "/chat", 2)[0]
		want = strings.NewReplacer("%20", " ", "%2F", "/").Replace(want)
		if c.Model != want || c.Choices[0].Message.Content == "" {
			t.Fatalf("%s: %s", path, raw)
		}
	}
	// completions and embeddings, the body's model ignored.
	resp := post(t, srv, "/openai/deployments/instruct/completions?api-version=2024-10-21", `{"model":"ignored","prompt":"a b"}`, key)
	var tc textCompletion
	decode(t, readAll(t, resp), &tc)
	if resp.StatusCode != 200 || tc.Model != "instruct" {
		t.Fatalf("completions %d %+v", resp.StatusCode, tc)
	}
	resp = post(t, srv, "/openai/deployments/ada/embeddings?api-version=2024-10-21", `{"input":"a b"}`, key)
	var el embeddingList
	decode(t, readAll(t, resp), &el)
	if resp.StatusCode != 200 || el.Model != "ada" || len(el.Data) != 1 {
		t.Fatalf("embeddings %d %+v", resp.StatusCode, el)
	}
	// Streams and tool calls work on Azure paths as on OpenAI's.
	resp = post(t, srv, "/openai/deployments/d/chat/completions?api-version=2024-10-21",
		`{"stream":true,"messages":[{"role":"user","content":"x"}],`+toolsJSON+`}`, key)
	events, err := readEvents(t, resp.Body)
	if err != nil || events[len(events)-1] != "[DONE]" || !strings.Contains(strings.Join(events, "\n"), `"finish_reason":"tool_calls"`) {
		t.Fatalf("stream %v %q", err, events)
	}
}

func checkAzureError(t *testing.T, resp *http.Response, status int, code, inMessage string) azureErrorDetail {
	t.Helper()
	raw := readAll(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, raw)
	}
	var e azureErrorBody
	decode(t, raw, &e)
	if e.Error.Code != code || !strings.Contains(e.Error.Message, inMessage) {
		t.Fatalf("error %s, want code %s and %q", raw, code, inMessage)
	}
	return e.Error
}

func TestAzureChecks(t *testing.T) {
	cfg := testConfig()
	cfg.APIKey = "azure-key-123456"
	srv := newTestServer(t, cfg)
	const body = `{"messages":[{"role":"user","content":"x"}]}`
	key := map[string]string{"api-key": cfg.APIKey}
	// api-version: missing is a 404 (no such route), malformed a 400;
	// checked before the key, as Azure routes before it authenticates.
	checkAzureError(t, post(t, srv, "/openai/deployments/d/chat/completions", body, nil), 404, "404", "Resource not found")
	checkAzureError(t, post(t, srv, "/openai/deployments/d/chat/completions?api-version=latest", body, key), 400, "BadRequest", "API version not supported")
	checkAzureError(t, post(t, srv, "/openai/deployments/d/chat/completions?api-version=2024-10-21&api-version=2024-10-21", body, key), 400, "BadRequest", "API version")
	// The key.
	q := "?api-version=2024-10-21"
	checkAzureError(t, post(t, srv, "/openai/deployments/d/chat/completions"+q, body, nil), 401, "401", "missing subscription key")
	checkAzureError(t, post(t, srv, "/openai/deployments/d/chat/completions"+q, body, map[string]string{"api-key": "wrong"}), 401, "401", "invalid subscription key")
	checkAzureError(t, post(t, srv, "/openai/deployments/d/chat/completions"+q, body, map[string]string{"Authorization": "Bearer wrong"}), 401, "401", "invalid subscription key")
	if resp := post(t, srv, "/openai/deployments/d/chat/completions"+q, body, map[string]string{"Authorization": "Bearer " + cfg.APIKey}); resp.StatusCode != 200 {
		t.Fatalf("bearer: %d", resp.StatusCode)
	}
	// Echoed keys, for the gateway's redaction tests.
	hdr := map[string]string{"api-key": cfg.APIKey, "X-Mock-Status": "429", "X-Mock-Echo-Key": "true", "X-Mock-Retry-After": "3"}
	resp := post(t, srv, "/openai/deployments/d/chat/completions"+q, body, hdr)
	if resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	checkAzureError(t, resp, 429, "429", cfg.APIKey)
	// The content filter.
	e := checkAzureError(t, post(t, srv, "/openai/deployments/d/chat/completions"+q, body, map[string]string{"api-key": cfg.APIKey, "X-Mock-Content-Filter": "true"}),
		400, "content_filter", "content management policy")
	if e.Param == nil || *e.Param != "prompt" || !strings.Contains(string(e.InnerError), "ResponsibleAIPolicyViolation") {
		t.Fatalf("content filter %+v", e)
	}
	// Bad requests keep OpenAI's type, in Azure's envelope.
	e = checkAzureError(t, post(t, srv, "/openai/deployments/d/chat/completions"+q, `{"messages":[]}`, key), 400, "400", "messages")
	if e.Type == nil || *e.Type != "invalid_request_error" {
		t.Fatalf("bad request %+v", e)
	}
	// Unknown Azure paths.
	checkAzureError(t, post(t, srv, "/openai/deployments/d/images/generations"+q, body, key), 404, "404", "Resource not found")
}

func TestAzureV1Paths(t *testing.T) {
	cfg := testConfig()
	cfg.APIKey = "azure-key-123456"
	srv := newTestServer(t, cfg)
	key := map[string]string{"api-key": cfg.APIKey}
	for _, q := range []string{"", "?api-version=v1", "?api-version=preview"} {
		resp := post(t, srv, "/openai/v1/chat/completions"+q, `{"model":"gpt-4o-prod","messages":[{"role":"user","content":"x"}]}`, key)
		raw := readAll(t, resp)
		var c chatCompletion
		decode(t, raw, &c)
		if resp.StatusCode != 200 || c.Model != "gpt-4o-prod" {
			t.Fatalf("%s: %d %s", q, resp.StatusCode, raw)
		}
	}
	checkAzureError(t, post(t, srv, "/openai/v1/chat/completions?api-version=2024-10-21", `{"model":"m","messages":[{"role":"user","content":"x"}]}`, key),
		400, "BadRequest", "API version not supported")
	// The v1 surface needs the model in the body.
	checkAzureError(t, post(t, srv, "/openai/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, key), 400, "400", "model")
	if resp := post(t, srv, "/openai/v1/embeddings", `{"model":"ada","input":"x"}`, map[string]string{"Authorization": "Bearer " + cfg.APIKey}); resp.StatusCode != 200 {
		t.Fatalf("v1 embeddings %d", resp.StatusCode)
	}
	if resp := do(t, t.Context(), srv, http.MethodGet, "/openai/v1/models", "", key); resp.StatusCode != 200 {
		t.Fatalf("v1 models %d", resp.StatusCode)
	}
	// OpenAI's own paths still want Authorization: Bearer.
	resp := post(t, srv, "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`, key)
	checkError(t, resp, 401, "authentication_error")
}

// Azure's chat answers carry the prompt's filter results; its streams open
// with the annotation chunk (no id, no model, no choices).
func TestAzureContentFilterAnnotations(t *testing.T) {
	srv := newTestServer(t, testConfig())
	const q = "?api-version=2024-10-21"
	raw := readAll(t, post(t, srv, "/openai/deployments/d/chat/completions"+q, `{"messages":[{"role":"user","content":"x"}]}`, nil))
	var c struct {
		chatCompletion
		PromptFilterResults []struct {
			PromptIndex int `json:"prompt_index"`
		} `json:"prompt_filter_results"`
	}
	decode(t, raw, &c)
	if len(c.PromptFilterResults) != 1 || c.Model != "d" {
		t.Fatalf("answer %s", raw)
	}
	for _, body := range []string{
		`{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`,
		`{"stream":true,"messages":[{"role":"user","content":"x"}],` + toolsJSON + `}`,
	} {
		events, err := readEvents(t, post(t, srv, "/openai/deployments/d/chat/completions"+q, body, map[string]string{"X-Mock-Chunks": "2"}).Body)
		if err != nil {
			t.Fatal(err)
		}
		var first chatChunk
		decode(t, []byte(events[0]), &first)
		if first.ID != "" || first.Model != "" || len(first.Choices) != 0 || !strings.Contains(events[0], `"prompt_filter_results":[{"prompt_index":0`) {
			t.Fatalf("first event %s", events[0])
		}
		var second chatChunk
		decode(t, []byte(events[1]), &second)
		if second.Model != "d" || len(second.Choices) != 1 || second.Choices[0].Delta.Role != "assistant" || events[len(events)-1] != "[DONE]" {
			t.Fatalf("events %q", events)
		}
	}
	// OpenAI's paths have no annotations.
	events, _ := readEvents(t, post(t, srv, "/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`, nil).Body)
	if strings.Contains(strings.Join(events, ""), "filter") {
		t.Fatalf("OpenAI stream with Azure annotations: %q", events)
	}
	// The annotation chunk counts as an event for the stream controls.
	events, err := readEvents(t, post(t, srv, "/openai/deployments/d/chat/completions"+q, `{"stream":true,"messages":[{"role":"user","content":"x"}]}`,
		map[string]string{"X-Mock-Disconnect-After": "1"}).Body)
	if err == nil || len(events) != 1 {
		t.Fatalf("%d events, err %v", len(events), err)
	}
}
