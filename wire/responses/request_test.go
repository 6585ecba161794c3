package responses

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

const fixtures = "../../providers/testdata/responses"

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeOK(t *testing.T, body string) *llm.ChatRequest {
	t.Helper()
	r, e := DecodeRequest([]byte(body))
	if e != nil {
		t.Fatalf("DecodeRequest(%s): %v (param %q)", body, e, e.Param)
	}
	return r
}

func text(s string) []llm.Part { return []llm.Part{{Type: llm.PartText, Text: s}} }

func TestDecodeDocumentedRequests(t *testing.T) {
	r := decodeOK(t, string(fixture(t, "request_text.json")))
	if r.Model != "gpt-4.1" && r.Model != "gpt-5.4" {
		t.Errorf("model %q", r.Model)
	}
	if len(r.Messages) != 1 || r.Messages[0].Role != llm.RoleUser || r.Messages[0].Content[0].Text != "Tell me a three sentence bedtime story about a unicorn." {
		t.Errorf("text input: %+v", r.Messages)
	}

	r = decodeOK(t, string(fixture(t, "request_image.json")))
	m := r.Messages[0]
	if len(m.Content) != 2 || m.Content[0].Text != "what is in this image?" || m.Content[1].Type != llm.PartImage ||
		!strings.HasPrefix(m.Content[1].Image.URL, "https://upload.wikimedia.org/") {
		t.Errorf("image input: %+v", m.Content)
	}

	r = decodeOK(t, string(fixture(t, "request_functions.json")))
	if len(r.Tools) != 1 || r.Tools[0].Name != "get_current_weather" || r.Tools[0].Description == "" ||
		!json.Valid(r.Tools[0].Parameters) || r.ToolChoice.Mode != "auto" {
		t.Errorf("functions: %+v %+v", r.Tools, r.ToolChoice)
	}

	r = decodeOK(t, string(fixture(t, "request_reasoning.json")))
	if r.ReasoningEffort != "high" {
		t.Errorf("reasoning effort %q", r.ReasoningEffort)
	}

	r = decodeOK(t, string(fixture(t, "request_streaming.json")))
	if !r.Stream || len(r.System) != 1 || r.System[0].Text != "You are a helpful assistant." {
		t.Errorf("streaming: stream %v system %+v", r.Stream, r.System)
	}

	r = decodeOK(t, string(fixture(t, "request_function_output.json")))
	want := []llm.Message{
		{Role: llm.RoleUser, Content: text("What is the weather like in Boston today?")},
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "call_unLAR8MvFNptuiZK6K6HCy5k", Name: "get_current_weather", Arguments: `{"location":"Boston, MA","unit":"celsius"}`}}},
		{Role: llm.RoleTool, ToolCallID: "call_unLAR8MvFNptuiZK6K6HCy5k", Content: text(`{"temperature":"22","unit":"celsius"}`)},
	}
	if !reflect.DeepEqual(r.Messages, want) {
		t.Errorf("function output turn:\n got %+v\nwant %+v", r.Messages, want)
	}

	// OpenAI-only features of the documented examples: a clear 400.
	for name, param := range map[string]string{
		"request_file.json":        "input[0].content[0].type",
		"request_web_search.json":  "tools[0].type",
		"request_file_search.json": "tools[0].type",
	} {
		_, e := DecodeRequest(fixture(t, name))
		if e == nil || e.Status != 400 || e.Kind != llm.KindInvalidRequest {
			t.Errorf("%s: %v, want a 400", name, e)
			continue
		}
		if !strings.HasPrefix(e.Param, param[:5]) || !strings.Contains(e.Message, "OpenAI provider") {
			t.Errorf("%s: param %q message %q", name, e.Param, e.Message)
		}
	}
}

func TestDecodeInputForms(t *testing.T) {
	f := 0.5
	one := 1.0
	yes, no := true, false
	cases := []struct {
		name string
		body string
		want llm.ChatRequest
	}{
		{"string input", `{"model":"m","input":"hi"}`,
			llm.ChatRequest{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: text("hi")}}}},
		{"easy messages and roles", `{"model":"m","instructions":"be brief","input":[
			{"role":"developer","content":"dev"},
			{"role":"system","content":[{"type":"input_text","text":"sys"}]},
			{"role":"user","content":"q"},
			{"role":"assistant","content":[{"type":"output_text","text":"a","annotations":[]},{"type":"refusal","refusal":"no"}]},
			{"type":"message","role":"system","content":"late system"},
			{"type":"message","role":"user","content":[{"type":"input_text","text":"q2"}],"id":"msg_1","status":"completed"}]}`,
			llm.ChatRequest{Model: "m",
				System: []llm.Part{{Type: llm.PartText, Text: "be brief"}, {Type: llm.PartText, Text: "dev"}, {Type: llm.PartText, Text: "sys"}},
				Messages: []llm.Message{
					{Role: llm.RoleUser, Content: text("q")},
					{Role: llm.RoleAssistant, Content: []llm.Part{{Type: llm.PartText, Text: "a"}, {Type: llm.PartText, Text: "no"}}},
					{Role: llm.RoleSystem, Content: text("late system")},
					{Role: llm.RoleUser, Content: text("q2")},
				}}},
		{"images", `{"model":"m","input":[{"role":"user","content":[
			{"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"},
			{"type":"input_image","image_url":"https://example.com/a.jpg"}]}]}`,
			llm.ChatRequest{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{
				{Type: llm.PartImage, Image: &llm.Image{MediaType: "image/png", Data: "iVBORw0KGgo=", Detail: "low"}},
				{Type: llm.PartImage, Image: &llm.Image{URL: "https://example.com/a.jpg"}},
			}}}}},
		{"function calls merge, reasoning ignored", `{"model":"m","input":[
			{"role":"user","content":"weather?"},
			{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"xyz"},
			{"role":"assistant","content":"checking"},
			{"type":"function_call","call_id":"c1","name":"w","arguments":"{\"city\":\"a\"}"},
			{"type":"function_call","call_id":"c2","name":"w","arguments":"{\"city\":\"b\"}","id":"fc_2","status":"completed"},
			{"type":"function_call_output","call_id":"c1","output":"sunny"},
			{"type":"function_call_output","call_id":"c2","output":[{"type":"input_text","text":"rain"}]},
			{"type":"function_call","call_id":"c3","name":"w"}]}`,
			llm.ChatRequest{Model: "m", Messages: []llm.Message{
				{Role: llm.RoleUser, Content: text("weather?")},
				{Role: llm.RoleAssistant, Content: text("checking"), ToolCalls: []llm.ToolCall{
					{ID: "c1", Name: "w", Arguments: `{"city":"a"}`}, {ID: "c2", Name: "w", Arguments: `{"city":"b"}`}}},
				{Role: llm.RoleTool, ToolCallID: "c1", Content: text("sunny")},
				{Role: llm.RoleTool, ToolCallID: "c2", Content: text("rain")},
				{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c3", Name: "w", Arguments: "{}"}}},
			}}},
		{"every option", `{"model":"m","input":"x","tools":[{"type":"function","name":"f","description":"d","parameters":{"type":"object"},"strict":true},{"type":"function","name":"g","parameters":null,"strict":null}],
			"tool_choice":{"type":"function","name":"f"},"parallel_tool_calls":false,"max_output_tokens":100,"temperature":0.5,"top_p":1,
			"stream":true,"text":{"format":{"type":"json_schema","name":"s","schema":{"type":"object"},"strict":true},"verbosity":"low"},
			"reasoning":{"effort":"low","summary":"auto"},"user":"u1","store":false,"previous_response_id":null,"metadata":{"a":"b"},
			"include":["reasoning.encrypted_content"],"truncation":"auto","service_tier":"auto","background":false}`,
			llm.ChatRequest{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: text("x")}},
				Tools:      []llm.Tool{{Name: "f", Description: "d", Parameters: json.RawMessage(`{"type":"object"}`), Strict: true}, {Name: "g"}},
				ToolChoice: llm.ToolChoice{Mode: "tool", Name: "f"}, ParallelToolCalls: &no, MaxTokens: 100,
				Temperature: &f, TopP: &one, Stream: true,
				ResponseFormat:  &llm.ResponseFormat{Type: "json_schema", Name: "s", Schema: json.RawMessage(`{"type":"object"}`), Strict: true},
				ReasoningEffort: "low", User: "u1"}},
		{"modes and safety identifier", `{"model":"m","input":"x","tool_choice":"required","parallel_tool_calls":true,"text":{"format":{"type":"json_object"}},"safety_identifier":"hash1"}`,
			llm.ChatRequest{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: text("x")}},
				ToolChoice: llm.ToolChoice{Mode: "required"}, ParallelToolCalls: &yes,
				ResponseFormat: &llm.ResponseFormat{Type: "json_object"}, User: "hash1"}},
		{"escaped strings", `{"model":"m","input":"line\n\"q\" \u00e9\ud83d\ude00"}`,
			llm.ChatRequest{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: text("line\n\"q\" é😀")}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := decodeOK(t, c.body)
			if !reflect.DeepEqual(*got, c.want) {
				t.Errorf("\n got %+v\nwant %+v", *got, c.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		body, param, msg string
	}{
		{`not json`, "", "not valid JSON"},
		{`[1]`, "", "JSON object"},
		{`{"input":"x"}`, "model", "model"},
		{`{"model":"m"}`, "input", "input"},
		{`{"model":1,"input":"x"}`, "model", "expected a string"},
		{`{"model":"m","input":5}`, "input", "a string or an array"},
		{`{"model":"m","input":[5]}`, "input[0]", "an object"},
		{`{"model":"m","input":[{"role":"bot","content":"x"}]}`, "input[0].role", "expected user"},
		{`{"model":"m","input":[{"content":"x"}]}`, "input[0].role", "Missing"},
		{`{"model":"m","input":[{"role":"user"}]}`, "input[0].content", "Missing"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}`, "input[0].content[0].file_id", "OpenAI provider"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"ftp://x"}]}]}`, "input[0].content[0].image_url", "http(s)"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png,abc"}]}]}`, "input[0].content[0].image_url", "base64"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "input[0].content[0].type", "OpenAI providers"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":7}]}]}`, "input[0].content[0].text", "expected a string"},
		{`{"model":"m","input":[{"type":"function_call","name":"f"}]}`, "input[0].call_id", "Missing"},
		{`{"model":"m","input":[{"type":"function_call","call_id":"c","name":"f","arguments":{}}]}`, "input[0].arguments", "expected a string"},
		{`{"model":"m","input":[{"type":"function_call_output","call_id":"c"}]}`, "input[0].output", "Missing"},
		{`{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}`, "input[0].type", "conversation state"},
		{`{"model":"m","input":[{"type":"web_search_call","id":"ws_1"}]}`, "input[0].type", "only supported by OpenAI providers"},
		{`{"model":"m","input":"x","previous_response_id":"resp_1"}`, "previous_response_id", "previous_response_id needs an OpenAI provider (the gateway keeps no conversation state)"},
		{`{"model":"m","input":"x","store":true}`, "store", "conversation state"},
		{`{"model":"m","input":"x","conversation":"conv_1"}`, "conversation", "conversation state"},
		{`{"model":"m","input":"x","background":true}`, "background", "conversation state"},
		{`{"model":"m","input":"x","prompt":{"id":"pmpt_1"}}`, "prompt", "OpenAI provider"},
		{`{"model":"m","input":"x","tools":[{"type":"web_search"}]}`, "tools[0].type", "tool type web_search is only supported by OpenAI providers"},
		{`{"model":"m","input":"x","tools":[{"type":"function","name":"f"},{"type":"computer_use_preview"}]}`, "tools[1].type", "computer_use_preview"},
		{`{"model":"m","input":"x","tools":[{"type":"function"}]}`, "tools[0].name", "Missing"},
		{`{"model":"m","input":"x","tools":[{"type":"function","name":"f","parameters":"{}"}]}`, "tools[0].parameters", "an object"},
		{`{"model":"m","input":"x","tools":{}}`, "tools", "an array"},
		{`{"model":"m","input":"x","tool_choice":"sometimes"}`, "tool_choice", "auto"},
		{`{"model":"m","input":"x","tool_choice":{"type":"file_search"}}`, "tool_choice.type", "file_search"},
		{`{"model":"m","input":"x","tool_choice":{"type":"function"}}`, "tool_choice.name", "Missing"},
		{`{"model":"m","input":"x","max_output_tokens":"10"}`, "max_output_tokens", "integer"},
		{`{"model":"m","input":"x","max_output_tokens":0}`, "max_output_tokens", "minimum"},
		{`{"model":"m","input":"x","max_output_tokens":1.5}`, "max_output_tokens", "integer"},
		{`{"model":"m","input":"x","temperature":"hot"}`, "temperature", "a number"},
		{`{"model":"m","input":"x","temperature":3}`, "temperature", "between"},
		{`{"model":"m","input":"x","top_p":-1}`, "top_p", "between"},
		{`{"model":"m","input":"x","stream":"yes"}`, "stream", "a boolean"},
		{`{"model":"m","input":"x","parallel_tool_calls":1}`, "parallel_tool_calls", "a boolean"},
		{`{"model":"m","input":"x","text":{"format":{"type":"xml"}}}`, "text.format.type", "expected text"},
		{`{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"s"}}}`, "text.format.schema", "Missing"},
		{`{"model":"m","input":"x","text":"plain"}`, "text", "an object"},
		{`{"model":"m","input":"x","reasoning":{"effort":"max"}}`, "reasoning.effort", "reasoning.effort"},
		{`{"model":"m","input":"x","user":5}`, "user", "a string"},
		{`{"model":"m","input":"x","instructions":["a"]}`, "instructions", "a string"},
	}
	for _, c := range cases {
		_, e := DecodeRequest([]byte(c.body))
		if e == nil {
			t.Errorf("%s: no error", c.body)
			continue
		}
		if e.Kind != llm.KindInvalidRequest || e.Status != 400 || e.Type != "invalid_request_error" {
			t.Errorf("%s: kind %v status %d type %q", c.body, e.Kind, e.Status, e.Type)
		}
		if e.Param != c.param || !strings.Contains(e.Message, c.msg) {
			t.Errorf("%s:\n got param %q message %q\nwant param %q message containing %q", c.body, e.Param, e.Message, c.param, c.msg)
		}
	}
}

// TestDecodeBounds: a turn of more than MaxToolCalls calls and a message
// of more than MaxParts parts are refused, not built.
func TestDecodeBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"model":"m","input":[`)
	for i := 0; i <= MaxToolCalls; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"type":"function_call","call_id":"c","name":"f","arguments":"{}"}`)
	}
	b.WriteString(`]}`)
	if _, e := DecodeRequest([]byte(b.String())); e == nil || !strings.Contains(e.Message, "function calls") {
		t.Errorf("too many calls: %v", e)
	}
	b.Reset()
	b.WriteString(`{"model":"m","input":[{"role":"user","content":[`)
	for i := 0; i <= MaxParts; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"type":"input_text","text":"x"}`)
	}
	b.WriteString(`]}]}`)
	if _, e := DecodeRequest([]byte(b.String())); e == nil || !strings.Contains(e.Message, "content parts") {
		t.Errorf("too many parts: %v", e)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, name := range []string{"request_text.json", "request_image.json", "request_functions.json", "request_function_output.json", "request_streaming.json", "request_reasoning.json", "request_file.json"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte(`{"model":"m","input":[{"type":"function_call","call_id":"c","name":"f"},{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"data:image/png;base64,AA"}]}],"text":{"format":{"type":"json_schema","name":"s","schema":{}}}}`))
	f.Add([]byte(`{"model":"m","input":"\ud800","temperature":1e400,"max_output_tokens":99999999999999999999}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, e := DecodeRequest(b)
		if (r == nil) == (e == nil) {
			t.Fatalf("request %v and error %v", r, e)
		}
		if e != nil && (e.Status != 400 || e.Message == "") {
			t.Fatalf("error %+v", e)
		}
		if r != nil {
			if r.Model == "" {
				t.Fatal("no model")
			}
			for _, m := range r.Messages {
				if len(m.ToolCalls) > MaxToolCalls || len(m.Content) > MaxParts {
					t.Fatal("bounds")
				}
			}
		}
	})
}

// BenchmarkDecodeRequest decodes the documented multi-turn function call
// request.
func BenchmarkDecodeRequest(b *testing.B) {
	body := fixture(b, "request_function_output.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, e := DecodeRequest(body); e != nil {
			b.Fatal(e)
		}
	}
}
