package responses

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3/responses"

	"github.com/sluice-ai/sluice/llm"
)

// keys returns the member names of a JSON object.
func keys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// missing returns the names in want that got lacks.
func missing(got, want []string) []string {
	have := map[string]bool{}
	for _, k := range got {
		have[k] = true
	}
	var out []string
	for _, k := range want {
		if !have[k] {
			out = append(out, k)
		}
	}
	return out
}

func TestAppendResponseMatchesDocumentedObject(t *testing.T) {
	r := &llm.ChatResponse{ID: "chatcmpl-abc123", Model: "claude-x", Created: 1741476542,
		Choices: []llm.Choice{{Message: llm.Message{Role: llm.RoleAssistant, Content: text("In a peaceful grove…")}, FinishReason: "stop"}},
		Usage:   llm.Usage{PromptTokens: 36, CompletionTokens: 87, CacheReadTokens: 4, ReasoningTokens: 7}, UsageKnown: true}
	got := AppendResponse(nil, r)
	if !json.Valid(got) {
		t.Fatalf("invalid JSON: %s", got)
	}
	// Every member of OpenAI's documented Response object is there.
	for _, name := range []string{"response_text.json", "response_functions.json"} {
		doc := fixture(t, name)
		if m := missing(keys(t, got), keys(t, doc)); len(m) > 0 {
			t.Errorf("members of %s missing: %v", name, m)
		}
	}
	var sdk responses.Response
	if err := json.Unmarshal(got, &sdk); err != nil {
		t.Fatal(err)
	}
	if sdk.ID != "resp_abc123" || sdk.Object != "response" || sdk.Status != "completed" || sdk.Model != "claude-x" || sdk.CreatedAt != 1741476542 {
		t.Errorf("top: %+v", sdk)
	}
	if sdk.OutputText() != "In a peaceful grove…" {
		t.Errorf("output text %q", sdk.OutputText())
	}
	u := sdk.Usage
	if u.InputTokens != 36 || u.OutputTokens != 87 || u.TotalTokens != 123 || u.InputTokensDetails.CachedTokens != 4 || u.OutputTokensDetails.ReasoningTokens != 7 {
		t.Errorf("usage %+v", u)
	}
	msg := sdk.Output[0].AsMessage()
	if msg.Status != "completed" || msg.Role != "assistant" || msg.Content[0].Type != "output_text" || msg.ID == "" {
		t.Errorf("message %+v", msg)
	}
	if uu, ok := ResponseUsage(got); !ok || uu.PromptTokens != 36 || uu.CompletionTokens != 87 || uu.CacheReadTokens != 4 || uu.ReasoningTokens != 7 {
		t.Errorf("ResponseUsage of our own answer: %+v %v", uu, ok)
	}
}

func TestAppendResponseToolsReasoningIncomplete(t *testing.T) {
	r := &llm.ChatResponse{ID: "msg_01XYZ", Model: "m", Created: 1,
		Choices: []llm.Choice{{Message: llm.Message{Role: llm.RoleAssistant,
			Content: []llm.Part{{Type: llm.PartThinking, Text: "think 1", Signature: "sig"}, {Type: llm.PartThinking, Text: "think 2"}},
			ToolCalls: []llm.ToolCall{
				{ID: "toolu_1", Name: "get_current_weather", Arguments: `{"location":"Boston, MA","unit":"celsius"}`},
				{Name: "second", Arguments: `{}`},
			}}, FinishReason: "tool_calls"}}}
	got := AppendResponse(nil, r)
	var sdk responses.Response
	if err := json.Unmarshal(got, &sdk); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	if len(sdk.Output) != 4 {
		t.Fatalf("output: %s", got)
	}
	rs := sdk.Output[0].AsReasoning()
	if rs.Type != "reasoning" || len(rs.Summary) != 1 || rs.Summary[0].Text != "think 1" || !strings.HasPrefix(rs.ID, "rs_") ||
		rs.EncryptedContent != ThinkingPrefix+"sig" {
		t.Errorf("reasoning %+v", rs)
	}
	if rs2 := sdk.Output[1].AsReasoning(); rs2.Summary[0].Text != "think 2" || rs2.EncryptedContent != "" || rs2.ID == rs.ID {
		t.Errorf("reasoning 2 %+v", rs2)
	}
	fc := sdk.Output[2].AsFunctionCall()
	if fc.CallID != "toolu_1" || fc.Name != "get_current_weather" || fc.Arguments != `{"location":"Boston, MA","unit":"celsius"}` || fc.Status != "completed" || !strings.HasPrefix(fc.ID, "fc_") {
		t.Errorf("function call %+v", fc)
	}
	if fc2 := sdk.Output[3].AsFunctionCall(); fc2.CallID == "" || fc2.CallID == fc.CallID || fc2.ID == fc.ID {
		t.Errorf("second call ids %+v", fc2)
	}
	// The documented function_call item has the same members.
	var doc struct{ Output []json.RawMessage }
	_ = json.Unmarshal(fixture(t, "response_functions.json"), &doc)
	var ours struct{ Output []json.RawMessage }
	_ = json.Unmarshal(got, &ours)
	if m := missing(keys(t, ours.Output[2]), keys(t, doc.Output[0])); len(m) > 0 {
		t.Errorf("function_call members missing: %v", m)
	}

	r.Choices[0] = llm.Choice{Message: llm.Message{Content: text("cut sho")}, FinishReason: "length"}
	if err := json.Unmarshal(AppendResponse(nil, r), &sdk); err != nil {
		t.Fatal(err)
	}
	if sdk.Status != "incomplete" || sdk.IncompleteDetails.Reason != "max_output_tokens" || sdk.Output[0].Status != "incomplete" {
		t.Errorf("incomplete: %+v", sdk)
	}

	// No choice at all still is a well-formed response.
	if got := AppendResponse(nil, &llm.ChatResponse{}); !json.Valid(got) {
		t.Errorf("empty answer: %s", got)
	}
}

func TestResponseID(t *testing.T) {
	for in, want := range map[string]string{
		"resp_67ccd2bed1ec":         "resp_67ccd2bed1ec",
		"chatcmpl-B9MBs8CjcvOU2jLn": "resp_B9MBs8CjcvOU2jLn",
		"msg_013Zva2CMHLNnXjNJJKqJ": "resp_013Zva2CMHLNnXjNJJKqJ",
		`a"b<c>\n/d`:                "resp_abcnd",
	} {
		if got := ResponseID(in); got != want {
			t.Errorf("ResponseID(%q) = %q, want %q", in, got, want)
		}
	}
	long := ResponseID(strings.Repeat("x", 1000))
	if len(long) != len("resp_")+maxIDBytes {
		t.Errorf("long id %d bytes", len(long))
	}
	a, b := ResponseID(""), ResponseID("!!!")
	if len(a) != len("resp_")+32 || a == b {
		t.Errorf("random ids %q %q", a, b)
	}
}

func TestAppendError(t *testing.T) {
	e := llm.Errorf(llm.KindInvalidRequest, "tool type web_search is only supported by OpenAI providers")
	e.Param = "tools[0].type"
	got := AppendError(nil, e)
	want := `{"error":{"message":"tool type web_search is only supported by OpenAI providers","type":"invalid_request_error","param":"tools[0].type","code":null}}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = AppendError(nil, llm.Errorf(llm.KindRateLimited, "slow \"down\"\n"))
	var v struct {
		Error struct {
			Message, Type string
			Param, Code   *string
		}
	}
	if err := json.Unmarshal(got, &v); err != nil || v.Error.Message != "slow \"down\"\n" || v.Error.Param != nil || *v.Error.Code != "rate_limit_exceeded" {
		t.Errorf("%s: %+v %v", got, v, err)
	}
}

func TestAppendStringEscapes(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s", "\x00\x1f\r\n\t", "é😀", "bad\xffutf8\xc3", "\u2028"} {
		b := appendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Errorf("%q -> %s: %v", s, b, err)
		}
		if strings.ContainsAny(string(b), "\r\n") {
			t.Errorf("%q: raw line break in %s", s, b)
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); back != want && !strings.Contains(s, "\xff") {
			t.Errorf("%q round-trips to %q", s, back)
		}
	}
}

// TestThinkingRoundTrip: the thinking blocks of an answer (signed,
// redacted) come back, in the next turn's input, as the thinking parts
// of the assistant turn they led to, as Anthropic requires; OpenAI's own
// encrypted reasoning is left out.
func TestThinkingRoundTrip(t *testing.T) {
	answer := llm.Message{Role: llm.RoleAssistant,
		Content: []llm.Part{
			{Type: llm.PartThinking, Text: "I should call the tool.", Signature: "EqQBCgIYAh"},
			{Type: llm.PartThinking, Signature: "redacted-data"},
			{Type: llm.PartText, Text: "Let me check."},
		},
		ToolCalls: []llm.ToolCall{{ID: "toolu_1", Name: "f", Arguments: `{}`}}}
	body := AppendResponse(nil, &llm.ChatResponse{ID: "msg_1", Model: "m", Choices: []llm.Choice{{Message: answer, FinishReason: "tool_calls"}}})
	var r struct{ Output []json.RawMessage }
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	items := []json.RawMessage{json.RawMessage(`{"role":"user","content":"hi"}`),
		json.RawMessage(`{"type":"reasoning","id":"rs_openai","summary":[],"encrypted_content":"gAAAAABopenai"}`)}
	items = append(items, r.Output...)
	items = append(items, json.RawMessage(`{"type":"function_call_output","call_id":"toolu_1","output":"42"}`))
	in, _ := json.Marshal(map[string]any{"model": "m", "input": items})
	req, e := DecodeRequest(in)
	if e != nil {
		t.Fatalf("%v: %s", e, in)
	}
	want := []llm.Message{
		{Role: llm.RoleUser, Content: text("hi")},
		{Role: llm.RoleAssistant, Content: answer.Content, ToolCalls: answer.ToolCalls},
		{Role: llm.RoleTool, ToolCallID: "toolu_1", Content: text("42")},
	}
	if !reflect.DeepEqual(req.Messages, want) {
		t.Errorf("\n got %+v\nwant %+v", req.Messages, want)
	}

	// Thinking right before a call (no text) opens the call's turn; a
	// user message drops thinking that led to nothing.
	req, e = DecodeRequest([]byte(`{"model":"m","input":[{"role":"assistant","content":"earlier"},
		{"type":"reasoning","summary":[{"type":"summary_text","text":"a"},{"type":"summary_text","text":"b"}],"encrypted_content":"` + ThinkingPrefix + `s1"},
		{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},
		{"type":"reasoning","summary":[],"encrypted_content":"` + ThinkingPrefix + `s2"},
		{"role":"user","content":"next"}]}`))
	if e != nil {
		t.Fatal(e)
	}
	want = []llm.Message{
		{Role: llm.RoleAssistant, Content: text("earlier")},
		{Role: llm.RoleAssistant, Content: []llm.Part{{Type: llm.PartThinking, Text: "ab", Signature: "s1"}}, ToolCalls: []llm.ToolCall{{ID: "c", Name: "f", Arguments: "{}"}}},
		{Role: llm.RoleUser, Content: text("next")},
	}
	if !reflect.DeepEqual(req.Messages, want) {
		t.Errorf("\n got %+v\nwant %+v", req.Messages, want)
	}
	if _, e := DecodeRequest([]byte(`{"model":"m","input":[{"type":"reasoning","summary":5,"encrypted_content":"` + ThinkingPrefix + `s"}]}`)); e == nil || e.Param != "input[0].summary" {
		t.Errorf("bad summary: %v", e)
	}
}
