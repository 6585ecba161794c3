package openai

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

func TestDecodeChatResponseFixtures(t *testing.T) {
	r, e := DecodeChatResponse(fixture(t, "chat_default.response.json"))
	if e != nil {
		t.Fatal(e)
	}
	if r.ID != "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT" || r.Model != "gpt-5.4" || r.Created != 1741569952 || len(r.Choices) != 1 ||
		r.Choices[0].Message.Content[0].Text != "Hello! How can I assist you today?" || r.Choices[0].FinishReason != "stop" ||
		!r.UsageKnown || r.Usage.PromptTokens != 19 || r.Usage.CompletionTokens != 10 {
		t.Fatalf("default: %+v", r)
	}
	r, e = DecodeChatResponse(fixture(t, "chat_functions.response.json"))
	if e != nil {
		t.Fatal(e)
	}
	m := r.Choices[0].Message
	if len(m.Content) != 0 || len(m.ToolCalls) != 1 || m.ToolCalls[0] != (llm.ToolCall{ID: "call_abc123", Name: "get_current_weather", Arguments: "{\n\"location\": \"Boston, MA\"\n}"}) ||
		r.Choices[0].FinishReason != llm.FinishToolCalls || r.Usage.CompletionTokens != 17 {
		t.Fatalf("functions: %+v", r)
	}
	if _, e = DecodeChatResponse(fixture(t, "chat_image.response.json")); e != nil {
		t.Fatal(e)
	}
}

// AppendChatResponse writes what DecodeChatResponse reads back, in the
// documented shape.
func TestChatResponseRoundTrip(t *testing.T) {
	for _, name := range []string{"chat_default.response.json", "chat_functions.response.json", "chat_image.response.json"} {
		r, e := DecodeChatResponse(fixture(t, name))
		if e != nil {
			t.Fatal(e)
		}
		out := AppendChatResponse(nil, r)
		r2, e := DecodeChatResponse(out)
		if e != nil {
			t.Fatal(e)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("%s:\n%+v\n%+v\n%s", name, r, r2, out)
		}
		// The documented members are there with the documented types.
		var doc struct {
			Object  string `json:"object"`
			Choices []struct {
				Message struct {
					Role    string  `json:"role"`
					Content *string `json:"content"`
				} `json:"message"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
			Usage struct {
				TotalTokens int `json:"total_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(out, &doc); err != nil || doc.Object != "chat.completion" || doc.Choices[0].Message.Role != "assistant" ||
			doc.Usage.TotalTokens != r.Usage.PromptTokens+r.Usage.CompletionTokens ||
			(doc.Choices[0].Message.Content == nil) != (name == "chat_functions.response.json") {
			t.Fatalf("%s: %s", name, out)
		}
	}
	r := &llm.ChatResponse{ID: "x", Model: "m", Choices: []llm.Choice{{Message: llm.Message{Role: llm.RoleAssistant,
		Content: []llm.Part{{Type: llm.PartThinking, Text: "think"}, {Type: llm.PartText, Text: "a"}, {Type: llm.PartText, Text: "b"}}}}},
		Usage: llm.Usage{PromptTokens: 5, CompletionTokens: 7, CacheReadTokens: 2, ReasoningTokens: 3}, UsageKnown: true}
	out := AppendChatResponse(nil, r)
	want := `{"id":"x","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ab","reasoning_content":"think"},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":3}}}`
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	r2, _ := DecodeChatResponse(out)
	if r2.Usage != r.Usage || r2.Choices[0].Message.Content[0] != (llm.Part{Type: llm.PartThinking, Text: "think"}) {
		t.Fatalf("%+v", r2)
	}
}

func TestDecodeChatResponseErrors(t *testing.T) {
	for _, c := range []struct {
		body     string
		upstream int
		status   int
		msg      string
	}{
		{`{"error":{"message":"slow down","type":"rate_limit_error","code":429}}`, 429, 429, "slow down"},
		{`{"error":{"message":"bad","status":503}}`, 503, 503, "bad"},
		{`{"error":"boom"}`, 0, 502, "boom"},
		{`{"error":{"message":"x","code":"context_length_exceeded"}}`, 0, 502, "x"},
	} {
		_, e := DecodeChatResponse([]byte(c.body))
		if e == nil || e.Kind != llm.KindUpstream || e.UpstreamStatus != c.upstream || e.Status != c.status || e.Message != c.msg {
			t.Errorf("%s: %+v", c.body, e)
		}
	}
	// An error member that says no error is not one.
	for _, body := range []string{`{"error":null,"choices":[]}`, `{"error":"","choices":[]}`, `{"error":false,"choices":[]}`} {
		if _, e := DecodeChatResponse([]byte(body)); e != nil {
			t.Errorf("%s: %v", body, e)
		}
	}
	for _, body := range []string{``, `[]`, `{"choices":{}}`, `{"choices":[{"index":128}]}`, `{"choices":[{"index":0},{"index":0}]}`,
		`{"choices":[{"index":-1}]}`, `{"choices":[{"index":1e9}]}`, `{"choices":[{"message":{"tool_calls":{}}}]}`,
		`{"choices":[` + strings.Repeat(`{},`, 128) + `{}]}`,
		`{"choices":[{"message":{"tool_calls":[` + strings.Repeat(`{},`, 128) + `{}]}}]}`} {
		if _, e := DecodeChatResponse([]byte(body)); e == nil || e.Kind != llm.KindUpstream {
			t.Errorf("%.80s: %v", body, e)
		}
	}
}

// Usage counts are saturated, never a reason to drop the answer; a count
// that is not a number makes the usage unknown (the router estimates).
func TestDecodeUsage(t *testing.T) {
	r, e := DecodeChatResponse([]byte(`{"choices":[],"usage":{"prompt_tokens":1e30,"completion_tokens":2.7,"prompt_tokens_details":{"cached_tokens":null}}}`))
	if e != nil || !r.UsageKnown || r.Usage.PromptTokens <= 1<<40 || r.Usage.CompletionTokens != 2 {
		t.Fatalf("%+v %v", r, e)
	}
	r, e = DecodeChatResponse([]byte(`{"choices":[],"usage":{"prompt_tokens":"12"}}`))
	if e != nil || r.UsageKnown {
		t.Fatalf("%+v %v", r, e)
	}
}

func TestAppendError(t *testing.T) {
	e := llm.Errorf(llm.KindInvalidRequest, "bad <thing>")
	if got := string(AppendError(nil, e)); got != `{"error":{"message":"bad \u003cthing\u003e","type":"invalid_request_error","param":null,"code":null}}` {
		t.Fatal(got)
	}
	e.Param, e.Code = "messages", "c"
	if got := string(AppendError(nil, e)); !strings.HasSuffix(got, `"param":"messages","code":"c"}}`) {
		t.Fatal(got)
	}
}

// unquote agrees with encoding/json on every string literal.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u00e9\n\"x\\"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\udc00x"`, "\"\xff\"", `"\u12"`, `"\q"`, "\"a\x01\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.Trim(b, " \t\r\n") // spans never have the whitespace around them
		var sc []byte
		got, ok := unquote(b, &sc)
		var want string
		err := json.Unmarshal(b, &want)
		if len(b) > 0 && b[0] != '"' {
			return
		}
		if (err == nil) != ok || (ok && got != want) {
			t.Fatalf("%q: got %q %v, want %q %v", b, got, ok, want, err)
		}
	})
}

// FuzzDecodeChatResponse: any body decodes or fails cleanly, and what
// decodes encodes into what decodes the same.
func FuzzDecodeChatResponse(f *testing.F) {
	for _, name := range []string{"chat_default.response.json", "chat_functions.response.json", "chat_image.response.json"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte(`{"error":{"message":"x","code":500}}`))
	f.Add([]byte(`{"choices":[{"index":3,"message":{"content":[{"type":"text","text":"a"}],"reasoning":"r","tool_calls":[{"function":{"arguments":{"a":1}}}]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, e := DecodeChatResponse(b)
		if e != nil {
			return
		}
		out := AppendChatResponse(nil, r)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %s", out)
		}
		if _, e := DecodeChatResponse(out); e != nil {
			t.Fatalf("re-decode: %v", e)
		}
	})
}

// FuzzDecodeChatRequest: any body decodes or fails with a 400, and what
// decodes encodes into valid JSON that decodes again.
func FuzzDecodeChatRequest(f *testing.F) {
	for _, name := range []string{"chat_default.request.json", "chat_functions.request.json", "chat_image.request.json"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":"data:image/png;base64,QQ=="}]},{"role":"assistant","reasoning_content":"r","tool_calls":[{"function":{"name":"f"}}]},{"role":"tool","tool_call_id":"1","content":"x"}],"tool_choice":"required","stop":"s","response_format":{"type":"json_object"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, e := DecodeChatRequest(b)
		if e != nil {
			if e.Status != 400 {
				t.Fatalf("status %d", e.Status)
			}
			return
		}
		out, e := AppendChatRequest(nil, r)
		if e != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %s", out)
		}
		if _, e := DecodeChatRequest(out); e != nil && e.Param != "messages" {
			t.Fatalf("re-decode of %s: %v", out, e)
		}
	})
}
