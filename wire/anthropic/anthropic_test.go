package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
	"github.com/sluice-ai/sluice/wire/sse"
)

// The golden fixtures are Anthropic's own recorded examples (see
// providers/testdata/anthropic/README.md).
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "providers", "testdata", "anthropic", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// drain reads a stream to its end.
func drain(t testing.TB, s llm.EventStream) ([]llm.Event, error) {
	t.Helper()
	var out []llm.Event
	for i := 0; i < 100000; i++ {
		ev, err := s.Next()
		if err != nil {
			return out, err
		}
		out = append(out, ev.Clone())
	}
	t.Fatal("stream does not end")
	return nil, nil
}

// summary is what a neutral stream says, gathered.
type summary struct {
	ID, Model, Text, Thinking, Signature, Finish string
	Tools                                        []llm.ToolCall
	Start, Usage                                 llm.Usage
	Err                                          *llm.Error
}

func summarize(evs []llm.Event) summary {
	var s summary
	for _, ev := range evs {
		switch ev.Kind {
		case llm.EventStart:
			s.ID, s.Model, s.Start = ev.ID, ev.Model, ev.Usage
		case llm.EventText:
			s.Text += ev.Text
		case llm.EventThinking:
			s.Thinking += ev.Text
			s.Signature += ev.Signature
		case llm.EventToolStart:
			s.Tools = append(s.Tools, llm.ToolCall{ID: ev.ID, Name: ev.Name})
		case llm.EventToolArgs:
			s.Tools[ev.Tool].Arguments += ev.Text
		case llm.EventFinish:
			s.Finish = ev.FinishReason
		case llm.EventUsage:
			s.Usage = ev.Usage
		case llm.EventError:
			s.Err = ev.Err
		}
	}
	return s
}

func TestStreamDecoderFixtures(t *testing.T) {
	evs, err := drain(t, NewStreamDecoder(bytes.NewReader(fixture(t, "stream_text_tooluse.sse"))))
	if err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	s := summarize(evs)
	if s.ID != "msg_01H1pwRRkQxKbUGKi785gT4M" || s.Model != "claude-3-7-sonnet-20250219" {
		t.Errorf("start: %+v", s)
	}
	if s.Text != "I'll get the current weather in San Francisco for you in Fahrenheit." {
		t.Errorf("text %q", s.Text)
	}
	if len(s.Tools) != 1 || s.Tools[0].ID != "toolu_01RaX2WYWRWCbaeFHssmGJXG" || s.Tools[0].Name != "get_weather" ||
		s.Tools[0].Arguments != `{"city": "San Francisco", "units": "fahrenheit"}` {
		t.Errorf("tools %+v", s.Tools)
	}
	if s.Finish != llm.FinishToolCalls || s.Start.PromptTokens != 397 ||
		s.Usage != (llm.Usage{PromptTokens: 397, CompletionTokens: 89}) {
		t.Errorf("finish %q start %+v usage %+v", s.Finish, s.Start, s.Usage)
	}
	var toolEnds int
	for _, ev := range evs {
		if ev.Kind == llm.EventToolEnd {
			toolEnds++
		}
	}
	if toolEnds != 1 {
		t.Errorf("%d tool ends", toolEnds)
	}

	evs, err = drain(t, NewStreamDecoder(bytes.NewReader(fixture(t, "stream_thinking_refusal.sse"))))
	if err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	s = summarize(evs)
	if s.Thinking != "Simple educational question. Benign." || s.Signature != "sig-thinking-a" || s.Text != "Hi" ||
		s.Finish != llm.FinishContentFilter || s.Usage != (llm.Usage{PromptTokens: 28, CompletionTokens: 106, ReasoningTokens: 67}) {
		t.Errorf("%+v", s)
	}
}

func TestDecodeResponseFixture(t *testing.T) {
	r, e := DecodeResponse(fixture(t, "tooluse_response.json"))
	if e != nil {
		t.Fatal(e)
	}
	c := r.Choices[0]
	if r.ID != "msg_01VLZuPg94y7NULJySZhEDJY" || c.FinishReason != llm.FinishToolCalls || !r.UsageKnown ||
		r.Usage != (llm.Usage{PromptTokens: 402, CompletionTokens: 89}) {
		t.Errorf("%+v", r)
	}
	if len(c.Message.Content) != 1 || !strings.HasPrefix(c.Message.Content[0].Text, "I'll get") {
		t.Errorf("content %+v", c.Message.Content)
	}
	if len(c.Message.ToolCalls) != 1 || c.Message.ToolCalls[0].Arguments != `{"city":"San Francisco","units":"fahrenheit"}` {
		t.Errorf("tool calls %+v", c.Message.ToolCalls)
	}
	u, ok := ResponseUsage(fixture(t, "tooluse_response.json"))
	if !ok || u != r.Usage {
		t.Errorf("ResponseUsage %+v %v", u, ok)
	}
}

func TestDecodeResponseCacheAndError(t *testing.T) {
	body := []byte(`{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"hi"}],"stop_reason":"max_tokens","usage":{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":5}}`)
	r, e := DecodeResponse(body)
	if e != nil {
		t.Fatal(e)
	}
	want := llm.Usage{PromptTokens: 130, CompletionTokens: 5, CacheReadTokens: 100, CacheWriteTokens: 20}
	if r.Usage != want || r.Choices[0].FinishReason != llm.FinishLength {
		t.Errorf("%+v", r)
	}
	// Back to Anthropic: input_tokens excludes the cache parts again.
	out := AppendResponse(nil, r)
	if !bytes.Contains(out, []byte(`"usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":100,"output_tokens":5}`)) ||
		!bytes.Contains(out, []byte(`"stop_reason":"max_tokens"`)) {
		t.Errorf("%s", out)
	}
	_, e = DecodeResponse([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	if e == nil || e.UpstreamStatus != 529 || e.Status != 503 || e.Type != "overloaded_error" || e.Message != "Overloaded" {
		t.Errorf("%+v", e)
	}
}

func TestDecodeRequestFixture(t *testing.T) {
	r, e := DecodeRequest(fixture(t, "toolresult_request.json"))
	if e != nil {
		t.Fatal(e)
	}
	if r.Model != "claude-3-7-sonnet-latest" || r.MaxTokens != 512 || len(r.Tools) != 1 || r.Tools[0].Name != "get_weather" {
		t.Errorf("%+v", r)
	}
	if len(r.Messages) != 3 {
		t.Fatalf("messages %+v", r.Messages)
	}
	a, tm := r.Messages[1], r.Messages[2]
	if a.Role != llm.RoleAssistant || len(a.ToolCalls) != 1 || a.ToolCalls[0].Arguments != `{"city":"San Francisco","units":"fahrenheit"}` {
		t.Errorf("assistant %+v", a)
	}
	if tm.Role != llm.RoleTool || tm.ToolCallID != "toolu_01TZR6ZrLHdpAWdmhVPuDfjQ" || tm.Content[0].Text != "The weather in San Francisco is 68 degrees fahrenheit." {
		t.Errorf("tool %+v", tm)
	}
	// Round trip: neutral -> Anthropic -> neutral is the identity.
	out, e := AppendRequest(nil, r)
	if e != nil {
		t.Fatal(e)
	}
	if !jsonspan.Valid(out) {
		t.Fatalf("invalid JSON %s", out)
	}
	r2, e := DecodeRequest(out)
	if e != nil {
		t.Fatal(e)
	}
	if !reflect.DeepEqual(r, r2) {
		t.Errorf("round trip\n%+v\n%+v\n%s", r, r2, out)
	}
}

func TestDecodeRequestShapes(t *testing.T) {
	body := `{"model":"m","max_tokens":100,"stream":true,"temperature":0.5,"top_p":0.9,"top_k":40,"stop_sequences":["X"],
	"system":[{"type":"text","text":"be brief","cache_control":{"type":"ephemeral"}}],
	"thinking":{"type":"enabled","budget_tokens":2048},"metadata":{"user_id":"u1"},
	"tool_choice":{"type":"any","disable_parallel_tool_use":true},
	"tools":[{"name":"f","description":"d","input_schema":{"type":"object"}}],
	"messages":[
	 {"role":"user","content":[{"type":"text","text":"look"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}},{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]},
	 {"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"s1"},{"type":"redacted_thinking","data":"r1"},{"type":"tool_use","id":"t1","name":"f","input":{"a":1}},{"type":"tool_use","id":"t2","name":"f","input":{}}]},
	 {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"},{"type":"tool_result","tool_use_id":"t2","is_error":true,"content":[{"type":"text","text":"bad"}]},{"type":"text","text":"and now?"}]}]}`
	r, e := DecodeRequest([]byte(body))
	if e != nil {
		t.Fatal(e)
	}
	f := false
	want := &llm.ChatRequest{
		Model: "m", MaxTokens: 100, Stream: true, Temperature: ptr(0.5), TopP: ptr(0.9), TopK: ptr(40), Stop: []string{"X"},
		System:         []llm.Part{{Type: llm.PartText, Text: "be brief", CacheControl: true}},
		ThinkingBudget: 2048, User: "u1",
		ToolChoice:        llm.ToolChoice{Mode: "required"},
		ParallelToolCalls: &f,
		Tools:             []llm.Tool{{Name: "f", Description: "d", Parameters: json.RawMessage(`{"type":"object"}`)}},
		Messages: []llm.Message{
			{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "look"},
				{Type: llm.PartImage, Image: &llm.Image{MediaType: "image/png", Data: "AAAA"}},
				{Type: llm.PartImage, Image: &llm.Image{URL: "https://x/y.png"}}}},
			{Role: llm.RoleAssistant, Content: []llm.Part{{Type: llm.PartThinking, Text: "hmm", Signature: "s1"}, {Type: llm.PartThinking, Signature: "r1"}},
				ToolCalls: []llm.ToolCall{{ID: "t1", Name: "f", Arguments: `{"a":1}`}, {ID: "t2", Name: "f", Arguments: `{}`}}},
			{Role: llm.RoleTool, ToolCallID: "t1", Content: []llm.Part{{Type: llm.PartText, Text: "ok"}}},
			{Role: llm.RoleTool, ToolCallID: "t2", IsError: true, Content: []llm.Part{{Type: llm.PartText, Text: "bad"}}},
			{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "and now?"}}},
		},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got\n%+v\nwant\n%+v", r, want)
	}
	out, e := AppendRequest(nil, r)
	if e != nil {
		t.Fatal(e)
	}
	r2, e := DecodeRequest(out)
	if e != nil || !reflect.DeepEqual(r2, want) {
		t.Errorf("round trip: %v\n%+v\n%s", e, r2, out)
	}
}

func ptr[T any](v T) *T { return &v }

func TestDecodeRequestErrors(t *testing.T) {
	for _, c := range []struct{ body, param string }{
		{`{"model":"m","messages":[]}`, "max_tokens"},
		{`{"max_tokens":1,"messages":[]}`, "model"},
		{`{"model":"m","max_tokens":1}`, "messages"},
		{`{"model":"m","max_tokens":"1","messages":[]}`, "max_tokens"},
		{`{"model":1,"max_tokens":1,"messages":[]}`, "model"},
		{`{"model":"m","max_tokens":1,"messages":[{"role":"system","content":"x"}]}`, "messages.0.role"},
		{`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":5}]}`, "messages.0.content"},
		{`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_use","id":"a","name":"b","input":{}}]}]}`, "messages.0.content.0.type"},
		{`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`, "messages.0.content.0.source.type"},
		{`{"model":"m","max_tokens":1,"messages":[],"tool_choice":{"type":"maybe"}}`, "tool_choice.type"},
		{`{"model":"m","max_tokens":1,"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}`, "tools.0.type"},
		{`{"model":"m","max_tokens":1,"messages":[],"temperature":"hot"}`, "temperature"},
		{`{"model":"m","max_tokens":1,"messages":[],"thinking":{"type":"enabled"}}`, "thinking.budget_tokens"},
		{`[1]`, ""},
	} {
		_, e := DecodeRequest([]byte(c.body))
		if e == nil || e.Kind != llm.KindInvalidRequest || e.Status != 400 || e.Param != c.param {
			t.Errorf("%s: %+v", c.body, e)
		}
	}
	many := `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[` + strings.Repeat(`{"type":"text","text":"x"},`, MaxBlocks) + `{"type":"text","text":"x"}]}]}`
	if _, e := DecodeRequest([]byte(many)); e == nil || !strings.Contains(e.Message, "at most") {
		t.Errorf("too many blocks: %+v", e)
	}
}

func TestAppendRequest(t *testing.T) {
	f := false
	r := &llm.ChatRequest{
		Model:  "claude",
		System: []llm.Part{{Type: llm.PartText, Text: "sys"}},
		Messages: []llm.Message{
			{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}},
			{Role: llm.RoleSystem, Content: []llm.Part{{Type: llm.PartText, Text: "later"}}},
			{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c1", Name: "f", Arguments: `{"x":1}`}, {ID: "c2", Name: "f", Arguments: ""}}},
			{Role: llm.RoleTool, ToolCallID: "c1", Content: []llm.Part{{Type: llm.PartText, Text: "r1"}}},
			{Role: llm.RoleTool, ToolCallID: "c2", Content: []llm.Part{{Type: llm.PartText, Text: "r2"}}},
			{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "next"}, {Type: llm.PartImage, Image: &llm.Image{URL: "https://i/x.png"}}}},
		},
		Tools:             []llm.Tool{{Name: "f"}},
		ToolChoice:        llm.ToolChoice{Mode: "tool", Name: "f"},
		ParallelToolCalls: &f,
		Stop:              []string{"END"},
		User:              "u",
		Seed:              ptr(int64(3)),
		PresencePenalty:   ptr(0.5),
		Stream:            true,
	}
	out, e := AppendRequest(nil, r)
	if e != nil {
		t.Fatal(e)
	}
	want := `{"model":"claude","max_tokens":4096,"system":[{"type":"text","text":"sys"},{"type":"text","text":"later"}],"messages":[` +
		`{"role":"user","content":"hi"},` +
		`{"role":"assistant","content":[{"type":"tool_use","id":"c1","name":"f","input":{"x":1}},{"type":"tool_use","id":"c2","name":"f","input":{}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","content":"r1"},{"type":"tool_result","tool_use_id":"c2","content":"r2"},{"type":"text","text":"next"},{"type":"image","source":{"type":"url","url":"https://i/x.png"}}]}],` +
		`"tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"tool","name":"f","disable_parallel_tool_use":true},` +
		`"stop_sequences":["END"],"metadata":{"user_id":"u"},"stream":true}`
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	for _, c := range []struct {
		mut   func(r *llm.ChatRequest)
		param string
	}{
		{func(r *llm.ChatRequest) { r.N = 2 }, "n"},
		{func(r *llm.ChatRequest) { r.ResponseFormat = &llm.ResponseFormat{Type: "json_schema"} }, "response_format"},
		{func(r *llm.ChatRequest) { r.Messages[2].ToolCalls[0].Arguments = `{"x":` }, "messages.2.tool_calls.0.function.arguments"},
		{func(r *llm.ChatRequest) {
			r.Messages[0].Content = []llm.Part{{Type: llm.PartImage, Image: &llm.Image{Data: "AAAA"}}}
		}, "messages.0.content"},
	} {
		cp := *r
		cp.Messages = append([]llm.Message(nil), r.Messages...)
		cp.Messages[2].ToolCalls = append([]llm.ToolCall(nil), r.Messages[2].ToolCalls...)
		c.mut(&cp)
		if _, e := AppendRequest(nil, &cp); e == nil || e.Status != 400 || e.Param != c.param {
			t.Errorf("%s: %+v", c.param, e)
		}
	}
	// A thinking budget at least the default max_tokens raises max_tokens.
	out, _ = AppendRequest(nil, &llm.ChatRequest{Model: "m", ThinkingBudget: 8000, Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "x"}}}}})
	if !bytes.Contains(out, []byte(`"max_tokens":12096`)) || !bytes.Contains(out, []byte(`"thinking":{"type":"enabled","budget_tokens":8000}`)) {
		t.Errorf("%s", out)
	}
}

func TestAppendError(t *testing.T) {
	for st, typ := range map[int]string{400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
		413: "request_too_large", 429: "rate_limit_error", 503: "overloaded_error", 529: "overloaded_error", 504: "timeout_error", 500: "api_error", 502: "api_error"} {
		if got := ErrorType(st); got != typ {
			t.Errorf("%d: %s", st, got)
		}
	}
	e := llm.Errorf(llm.KindRateLimited, "slow \"down\"")
	if got := string(AppendError(nil, e)); got != `{"type":"error","error":{"type":"rate_limit_error","message":"slow \"down\""}}` {
		t.Error(got)
	}
}

// events returns the SSE event names and datas of b.
func events(t *testing.T, b []byte) (names []string, datas []string) {
	t.Helper()
	r := sse.NewReader(bytes.NewReader(b))
	for {
		data, name, comment, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if comment {
			continue
		}
		if !jsonspan.Valid(data) {
			t.Fatalf("invalid data %s", data)
		}
		vs, ve, _ := member(data, "type")
		if typ, _ := unquote(data[vs:ve]); typ != string(name) {
			t.Fatalf("event %s has data type %s", name, typ)
		}
		names = append(names, string(name))
		datas = append(datas, string(data))
	}
}

// checkOrder checks the documented event order: message_start, then per
// block start, deltas, stop with sequential indexes, message_delta,
// message_stop.
func checkOrder(t *testing.T, names, datas []string) {
	t.Helper()
	if len(names) < 3 || names[0] != "message_start" || names[len(names)-1] != "message_stop" || names[len(names)-2] != "message_delta" {
		t.Fatalf("order %v", names)
	}
	next, open := 0, -1
	for i, n := range names[1 : len(names)-2] {
		var v struct{ Index int }
		_ = json.Unmarshal([]byte(datas[i+1]), &v)
		switch n {
		case "content_block_start":
			if open != -1 || v.Index != next {
				t.Fatalf("block %d opened at %d (open %d) in %v", v.Index, i, open, names)
			}
			open = v.Index
		case "content_block_delta":
			if v.Index != open {
				t.Fatalf("delta for %d while %d open", v.Index, open)
			}
		case "content_block_stop":
			if v.Index != open {
				t.Fatalf("stop for %d while %d open", v.Index, open)
			}
			open, next = -1, next+1
		default:
			t.Fatalf("unexpected %s", n)
		}
	}
	if open != -1 {
		t.Fatal("block left open")
	}
}

func TestStreamEncoderRoundTrip(t *testing.T) {
	in := []llm.Event{
		{Kind: llm.EventStart, ID: "chatcmpl-1", Model: "gpt", Usage: llm.Usage{PromptTokens: 30, CacheReadTokens: 10}},
		{Kind: llm.EventThinking, Text: "let me think"},
		{Kind: llm.EventThinking, Signature: "sig"},
		{Kind: llm.EventText, Text: "Hello "},
		{Kind: llm.EventText, Text: "\"world\"\n"},
		{Kind: llm.EventToolStart, Tool: 0, ID: "call_1", Name: "f"},
		{Kind: llm.EventToolArgs, Tool: 0, Text: `{"a":`},
		{Kind: llm.EventToolArgs, Tool: 0, Text: `1}`},
		{Kind: llm.EventToolEnd, Tool: 0},
		{Kind: llm.EventToolStart, Tool: 1, ID: "call_2", Name: "g"},
		{Kind: llm.EventToolArgs, Tool: 1, Text: `{}`},
		{Kind: llm.EventFinish, FinishReason: llm.FinishToolCalls},
	}
	enc := NewStreamEncoder("msg_x", "claude")
	var out []byte
	for i := range in {
		out = enc.Encode(out, &in[i])
	}
	final := llm.Usage{PromptTokens: 30, CompletionTokens: 12, CacheReadTokens: 10}
	out = enc.Finish(out, final)
	names, datas := events(t, out)
	checkOrder(t, names, datas)
	if !strings.Contains(datas[0], `"id":"msg_x"`) || !strings.Contains(datas[0], `"input_tokens":20,"cache_creation_input_tokens":0,"cache_read_input_tokens":10`) {
		t.Errorf("message_start %s", datas[0])
	}
	evs, err := drain(t, NewStreamDecoder(bytes.NewReader(out)))
	if err != io.EOF {
		t.Fatal(err)
	}
	s := summarize(evs)
	want := summary{ID: "msg_x", Model: "claude", Text: "Hello \"world\"\n", Thinking: "let me think", Signature: "sig", Finish: llm.FinishToolCalls,
		Tools: []llm.ToolCall{{ID: "call_1", Name: "f", Arguments: `{"a":1}`}, {ID: "call_2", Name: "g", Arguments: `{}`}},
		Start: llm.Usage{PromptTokens: 30, CacheReadTokens: 10}, Usage: final}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got\n%+v\nwant\n%+v\n%s", s, want, out)
	}
}

func TestStreamEncoderFail(t *testing.T) {
	enc := NewStreamEncoder("m", "x")
	out := enc.Encode(nil, &llm.Event{Kind: llm.EventText, Text: "partial"})
	e := llm.Errorf(llm.KindUnavailable, "no capacity")
	out = enc.Fail(out, e)
	if !bytes.HasSuffix(out, []byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"no capacity\"}}\n\n")) {
		t.Errorf("%s", out)
	}
	evs, err := drain(t, NewStreamDecoder(bytes.NewReader(out)))
	if err != io.EOF {
		t.Fatal(err)
	}
	s := summarize(evs)
	if s.Text != "partial" || s.Err == nil || s.Err.UpstreamStatus != 529 || s.Err.Status != 503 {
		t.Errorf("%+v %+v", s, s.Err)
	}
}

func TestAppendResponseRoundTrip(t *testing.T) {
	r := &llm.ChatResponse{ID: "chatcmpl-9", Model: "gpt", Choices: []llm.Choice{{Message: llm.Message{Role: llm.RoleAssistant,
		Content:   []llm.Part{{Type: llm.PartThinking, Text: "t", Signature: "s"}, {Type: llm.PartText, Text: "answer"}},
		ToolCalls: []llm.ToolCall{{ID: "c", Name: "f", Arguments: `{"q":"x"}`}, {ID: "d", Name: "g", Arguments: `not json`}}}, FinishReason: llm.FinishToolCalls}},
		Usage: llm.Usage{PromptTokens: 7, CompletionTokens: 3}, UsageKnown: true}
	out := AppendResponse(nil, r)
	if !jsonspan.Valid(out) {
		t.Fatalf("%s", out)
	}
	got, e := DecodeResponse(out)
	if e != nil {
		t.Fatal(e)
	}
	r.Choices[0].Message.ToolCalls[1].Arguments = "{}"
	if !reflect.DeepEqual(got, r) {
		t.Errorf("got\n%+v\nwant\n%+v\n%s", got, r, out)
	}
}

func TestSnifferFixtures(t *testing.T) {
	for name, want := range map[string]llm.Usage{
		"stream_text_tooluse.sse":     {PromptTokens: 397, CompletionTokens: 89},
		"stream_thinking_refusal.sse": {PromptTokens: 28, CompletionTokens: 106, ReasoningTokens: 67},
		"stream_tooluse.sse":          {PromptTokens: 31, CompletionTokens: 40},
	} {
		var s Sniffer
		r := sse.NewReader(bytes.NewReader(fixture(t, name)))
		final := false
		for {
			data, ev, _, err := r.Next()
			if err != nil {
				break
			}
			if _, _, f := s.Event(ev, data); f {
				final = true
			}
		}
		u, ok := s.Usage()
		if !ok || u != want || !final {
			t.Errorf("%s: %+v %v final %v", name, u, ok, final)
		}
	}
	var s Sniffer
	s.Event([]byte("message_start"), []byte(`{"type":"message_start","message":{"usage":{"input_tokens":5,"cache_read_input_tokens":50,"output_tokens":1}}}`))
	errV, st, final := s.Event([]byte("error"), []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	if string(errV) != `{"type":"overloaded_error","message":"Overloaded"}` || st != 529 || final {
		t.Errorf("%s %d %v", errV, st, final)
	}
	_, st, _ = s.Event(nil, []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"x"}}`))
	if st != 429 {
		t.Error(st)
	}
	if u, _ := s.Usage(); u != (llm.Usage{PromptTokens: 55, CompletionTokens: 1, CacheReadTokens: 50}) {
		t.Errorf("%+v", u)
	}
}

func TestStreamDecoderHostile(t *testing.T) {
	head := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"x\",\"usage\":{\"input_tokens\":1}}}\n\n"
	for name, body := range map[string]string{
		"huge index":      head + "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1000000000,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
		"negative index":  head + "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":-1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
		"fraction index":  head + "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1.5,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
		"unopened delta":  head + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n",
		"no message_stop": head,
		"malformed":       head + "event: content_block_start\ndata: {\"type\":\n\n",
		"twice":           head + head,
		"too many tools": head + func() string {
			var b strings.Builder
			for i := 0; i <= MaxToolCalls; i++ {
				b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":" + strconv.Itoa(i) + ",\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n")
			}
			return b.String()
		}(),
	} {
		_, err := drain(t, NewStreamDecoder(strings.NewReader(body)))
		var e *llm.Error
		if err == io.EOF || !errors.As(err, &e) || e.Kind != llm.KindUpstream {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Unknown events and pings are ignored; an error event ends the stream.
	body := head + "event: ping\ndata: {\"type\":\"ping\"}\n\nevent: future\ndata: {\"type\":\"future\"}\n\n" +
		"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"boom\"}}\n\n"
	evs, err := drain(t, NewStreamDecoder(strings.NewReader(body)))
	if err != io.EOF || len(evs) != 2 || evs[1].Kind != llm.EventError || evs[1].Err.UpstreamStatus != 500 || evs[1].Err.Message != "boom" {
		t.Errorf("%v %+v", err, evs)
	}
}

func TestStreamDecoderToolInputAtStart(t *testing.T) {
	body := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{\"a\":1}}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	evs, err := drain(t, NewStreamDecoder(strings.NewReader(body)))
	if err != io.EOF {
		t.Fatal(err)
	}
	if s := summarize(evs); len(s.Tools) != 1 || s.Tools[0].Arguments != `{"a":1}` {
		t.Errorf("%+v", s)
	}
}

func TestStreamDecoderEventTooLarge(t *testing.T) {
	body := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n" +
		"event: content_block_delta\ndata: {\"text\":\"" + strings.Repeat("x", sse.MaxEventBytes) + "\"}\n\n"
	_, err := drain(t, NewStreamDecoder(strings.NewReader(body)))
	var e *llm.Error
	if !errors.As(err, &e) || !strings.Contains(e.Message, "larger than") {
		t.Errorf("%v", err)
	}
}

// deltaStream is a Messages stream with n text deltas (escapes and
// non-ASCII included) and the text they make.
func deltaStream(n int) (body, text string) {
	var b, want strings.Builder
	b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":3}}}\n\n")
	b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	for i := range n {
		b.WriteString("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"w\\u00e9rd \\\"" + strconv.Itoa(i) + "\\\"\\n\"}}\n\n")
		want.WriteString("wérd \"" + strconv.Itoa(i) + "\"\n")
	}
	b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n")
	b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	return b.String(), want.String()
}

// Text deltas are backed by a buffer the decoder reuses from one Next to
// the next (an event is valid until the next call): each event's text is
// right when it is returned, and a delta costs no allocation.
func TestStreamDecoderDeltasAllocateNothing(t *testing.T) {
	body, want := deltaStream(300)
	d := NewStreamDecoder(strings.NewReader(body))
	var got strings.Builder
	for {
		ev, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == llm.EventText {
			got.WriteString(ev.Text)
		}
	}
	if got.String() != want {
		t.Fatalf("text %q, want %q", got.String(), want)
	}
	allocs := func(n int) float64 {
		body, _ := deltaStream(n)
		return testing.AllocsPerRun(10, func() {
			d := NewStreamDecoder(strings.NewReader(body))
			for {
				if _, err := d.Next(); err != nil {
					return
				}
			}
		})
	}
	few, many := allocs(10), allocs(2010)
	if per := (many - few) / 2000; per > 0.01 {
		t.Errorf("%.3f allocations per text delta (%v for 10 deltas, %v for 2,010)", per, few, many)
	}
}
