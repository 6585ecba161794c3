package openai

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

// fixtures holds the golden payloads, copied from OpenAI's documented
// examples (see its README).
const fixtures = "../../providers/testdata/openai"

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeChatRequestFixtures(t *testing.T) {
	r, e := DecodeChatRequest(fixture(t, "chat_default.request.json"))
	if e != nil {
		t.Fatal(e)
	}
	if len(r.System) != 1 || r.System[0].Text != "You are a helpful assistant." || len(r.Messages) != 1 ||
		r.Messages[0].Role != llm.RoleUser || r.Messages[0].Content[0].Text != "Hello!" {
		t.Fatalf("default: %+v", r)
	}
	r, e = DecodeChatRequest(fixture(t, "chat_functions.request.json"))
	if e != nil {
		t.Fatal(e)
	}
	if len(r.Tools) != 1 || r.Tools[0].Name != "get_current_weather" || r.ToolChoice.Mode != "auto" ||
		!json.Valid(r.Tools[0].Parameters) || !strings.Contains(string(r.Tools[0].Parameters), `"required": ["location"]`) {
		t.Fatalf("functions: %+v", r)
	}
	r, e = DecodeChatRequest(fixture(t, "chat_image.request.json"))
	if e != nil {
		t.Fatal(e)
	}
	c := r.Messages[0].Content
	if r.MaxTokens != 300 || len(c) != 2 || c[1].Type != llm.PartImage || !strings.HasPrefix(c[1].Image.URL, "https://upload.wikimedia.org/") {
		t.Fatalf("image: %+v", r)
	}
}

// Everything the decoder reads survives encode and decode again.
func TestChatRequestRoundTrip(t *testing.T) {
	body := `{"model":"m","messages":[
		{"role":"developer","content":"be brief"},
		{"role":"system","content":[{"type":"text","text":"and kind"}]},
		{"role":"user","name":"ann","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,AAAA","detail":"low"}},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},
		{"role":"assistant","content":null,"reasoning_content":"hmm","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},{"id":"c2","type":"function","function":{"name":"g","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"c1","content":"one"},
		{"role":"tool","tool_call_id":"c2","content":[{"type":"text","text":"two"}]},
		{"role":"system","content":"late system"},
		{"role":"assistant","content":"ok <&> \u2028 \"q\""}],
		"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"},"strict":true}},{"type":"function","function":{"name":"g"}}],
		"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false,
		"max_completion_tokens":77,"temperature":0.5,"top_p":1,"stop":["x","y"],"n":2,"seed":-9,"stream":true,
		"stream_options":{"include_usage":true},
		"response_format":{"type":"json_schema","json_schema":{"name":"s","schema":{"type":"object"},"strict":true}},
		"reasoning_effort":"low","user":"u1","presence_penalty":-0.5,"frequency_penalty":1e-3,"unknown":{"x":[1]}}`
	r, e := DecodeChatRequest([]byte(body))
	if e != nil {
		t.Fatal(e)
	}
	if len(r.System) != 2 || r.Messages[len(r.Messages)-2].Role != llm.RoleSystem || r.Messages[1].Content[0].Type != llm.PartThinking ||
		r.Messages[0].Content[1].Image.Data != "AAAA" || r.Messages[0].Content[1].Image.MediaType != "image/jpeg" ||
		r.ToolChoice != (llm.ToolChoice{Mode: "tool", Name: "f"}) || *r.ParallelToolCalls || r.MaxTokens != 77 || r.N != 2 || *r.Seed != -9 ||
		r.ResponseFormat.Name != "s" || !r.ResponseFormat.Strict || r.ReasoningEffort != "low" || !r.Stream {
		t.Fatalf("decoded %+v", r)
	}
	out, e := AppendChatRequest(nil, r)
	if e != nil {
		t.Fatal(e)
	}
	if !json.Valid(out) || !strings.Contains(string(out), `"stream_options":{"include_usage":true}`) || !strings.Contains(string(out), `"max_tokens":77`) {
		t.Fatalf("encoded %s", out)
	}
	r2, e := DecodeChatRequest(out)
	if e != nil {
		t.Fatalf("%v in %s", e, out)
	}
	// Thinking parts are not sent to OpenAI; the system prompt's two
	// parts come back as an array, the same two parts.
	want := *r
	want.Messages = append([]llm.Message(nil), r.Messages...)
	want.Messages[1].Content = nil
	if !reflect.DeepEqual(&want, r2) {
		t.Fatalf("round trip:\n%+v\n%+v\n%s", &want, r2, out)
	}
	out2, _ := AppendChatRequestWith(nil, r2, RequestOptions{MaxCompletionTokens: true, NoStreamOptions: true})
	if strings.Contains(string(out2), "stream_options") || !strings.Contains(string(out2), `"max_completion_tokens":77`) {
		t.Fatalf("options ignored: %s", out2)
	}
}

func TestAppendChatRequestToolImages(t *testing.T) {
	r := &llm.ChatRequest{Model: "m", Messages: []llm.Message{
		{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "go"}}},
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "a", Name: "shot"}, {ID: "b", Name: "shot"}}},
		{Role: llm.RoleTool, ToolCallID: "a", Content: []llm.Part{{Type: llm.PartText, Text: "see"}, {Type: llm.PartImage, Image: &llm.Image{Data: "QUJD", MediaType: "image/png"}}}},
		{Role: llm.RoleTool, ToolCallID: "b", IsError: true, Content: []llm.Part{{Type: llm.PartText, Text: "failed"}}},
		{Role: llm.RoleAssistant, Content: []llm.Part{{Type: llm.PartThinking, Text: "secret", Signature: "sig"}, {Type: llm.PartText, Text: "done"}}},
	}, TopK: new(int), ThinkingBudget: 1000, ToolChoice: llm.ToolChoice{Mode: "auto"}}
	out, e := AppendChatRequest(nil, r)
	if e != nil {
		t.Fatal(e)
	}
	want := `{"model":"m","messages":[{"role":"user","content":"go"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"shot","arguments":"{}"}},{"id":"b","type":"function","function":{"name":"shot","arguments":"{}"}}]},` +
		`{"role":"tool","tool_call_id":"a","content":"see"},{"role":"tool","tool_call_id":"b","content":"failed"},` +
		`{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,QUJD"}}]},` +
		`{"role":"assistant","content":"done"}]}`
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	r.Tools = []llm.Tool{{Name: "shot", Parameters: json.RawMessage(`{"type":`)}}
	if _, e := AppendChatRequest(nil, r); e == nil || e.Param != "tools[0].parameters" {
		t.Fatalf("invalid parameters: %v", e)
	}
	nan := 0.0
	nan /= nan
	r.Tools, r.Temperature = nil, &nan
	if _, e := AppendChatRequest(nil, r); e == nil || e.Param != "temperature" {
		t.Fatalf("NaN: %v", e)
	}
}

// A careless client learns which member is wrong.
func TestDecodeChatRequestErrors(t *testing.T) {
	for _, c := range []struct{ body, param string }{
		{`[]`, ""},
		{`{"messages":"hi"}`, "messages"},
		{`{}`, "messages"},
		{`{"messages":[]}`, "messages"},
		{`{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},{"role":"user","content":"c"},{"role":"user","content":7}]}`, "messages[3].content"},
		{`{"messages":[{"role":"wizard","content":"a"}]}`, "messages[0].role"},
		{`{"messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "messages[0].content[0].type"},
		{`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}`, "messages[0].content[0].image_url.url"},
		{`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,raw"}}]}]}`, "messages[0].content[0].image_url.url"},
		{`{"messages":[{"role":"tool","content":"x"}]}`, "messages[0].tool_call_id"},
		{`{"messages":[{"role":"assistant","tool_calls":[{"id":"1","function":{"name":"f","arguments":{}}}]}]}`, "messages[0].tool_calls[0].function.arguments"},
		{`{"messages":[{"role":"user","content":"a"}],"tools":[{"type":"web_search"}]}`, "tools[0].type"},
		{`{"messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"f","parameters":[]}}]}`, "tools[0].function.parameters"},
		{`{"messages":[{"role":"user","content":"a"}],"tool_choice":"maybe"}`, "tool_choice"},
		{`{"messages":[{"role":"user","content":"a"}],"temperature":"hot"}`, "temperature"},
		{`{"messages":[{"role":"user","content":"a"}],"max_tokens":0}`, "max_tokens"},
		{`{"messages":[{"role":"user","content":"a"}],"max_tokens":1.5}`, "max_tokens"},
		{`{"messages":[{"role":"user","content":"a"}],"stop":[1]}`, "stop[0]"},
		{`{"messages":[{"role":"user","content":"a"}],"stream":"yes"}`, "stream"},
		{`{"messages":[{"role":"user","content":"a"}],"n":1000}`, "n"},
		{`{"messages":[{"role":"user","content":"a"}],"response_format":{"type":"xml"}}`, "response_format.type"},
		{`{"messages":[{"role":"user","content":"a"}],"response_format":{"type":"json_schema"}}`, "response_format.json_schema"},
		{`{"messages":[{"role":"user","content":"a"}],"functions":[{"name":"f"}]}`, "functions"},
		{`{"messages":[{"role":"user","content":"a"}],"logprobs":true}`, "logprobs"},
		{`{"messages":[{"role":"user","content":"a"}],"user":5}`, "user"},
	} {
		_, e := DecodeChatRequest([]byte(c.body))
		if e == nil || e.Kind != llm.KindInvalidRequest || e.Status != 400 || e.Param != c.param {
			t.Errorf("%s: %+v, want param %q", c.body, e, c.param)
		}
	}
}

// Unknown members and stream_options do not matter; null is unset.
func TestDecodeChatRequestLenient(t *testing.T) {
	r, e := DecodeChatRequest([]byte(`{"model":null,"messages":[{"role":"user","content":"a"}],"stream_options":{"include_usage":true},"logprobs":false,"x":1,"temperature":null,"stop":"END"}`))
	if e != nil || r.Temperature != nil || len(r.Stop) != 1 || r.Stop[0] != "END" {
		t.Fatalf("%+v %v", r, e)
	}
}

// The documented requests survive decode and encode unchanged, member for
// member (the default example's developer message is sent as system, the
// role every OpenAI-compatible server knows).
func TestChatRequestGoldenReencode(t *testing.T) {
	for _, name := range []string{"chat_functions.request.json", "chat_image.request.json", "chat_default.request.json"} {
		raw := fixture(t, name)
		r, e := DecodeChatRequest(raw)
		if e != nil {
			t.Fatal(e)
		}
		out, e := AppendChatRequest(nil, r)
		if e != nil {
			t.Fatal(e)
		}
		var want, got any
		if err := json.Unmarshal([]byte(strings.Replace(string(raw), `"developer"`, `"system"`, 1)), &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s:\nsent %s", name, out)
		}
	}
}
