package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "providers", "testdata", "gemini", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }

// get walks a decoded JSON value along a path of keys and indexes.
func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: not an object: %v", path, v)
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("at %v: not an array with %d: %v", path, k, v)
			}
			v = a[k]
		}
	}
	return v
}

func encode(t *testing.T, r *llm.ChatRequest) map[string]any {
	t.Helper()
	b, err := AppendRequest(nil, r)
	if err != nil {
		t.Fatalf("AppendRequest: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return m
}

func TestAppendRequestConversation(t *testing.T) {
	r := &llm.ChatRequest{
		Model:  "gemini-2.5-flash",
		System: []llm.Part{{Type: llm.PartText, Text: "Be brief."}},
		Messages: []llm.Message{
			{Role: llm.RoleUser, Content: []llm.Part{
				{Type: llm.PartText, Text: "What is in this picture, and what's the weather?"},
				{Type: llm.PartImage, Image: &llm.Image{MediaType: "image/png", Data: "iVBORw0KGgo="}},
			}},
			{Role: llm.RoleAssistant, Content: []llm.Part{{Type: llm.PartThinking, Text: "hmm", Signature: "SIG"}},
				ToolCalls: []llm.ToolCall{
					{ID: "call_a", Name: "get_weather", Arguments: `{"city":"Paris"}`},
					{ID: "call_b", Name: "get_time", Arguments: ``},
				}},
			{Role: llm.RoleTool, ToolCallID: "call_a", Content: []llm.Part{{Type: llm.PartText, Text: `{"temp":21}`}}},
			{Role: llm.RoleTool, ToolCallID: "call_b", Content: []llm.Part{{Type: llm.PartText, Text: `noon`}}},
			{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "thanks"}}},
			{Role: llm.RoleSystem, Content: []llm.Part{{Type: llm.PartText, Text: "Late rule."}}},
		},
		Tools: []llm.Tool{{Name: "get_weather", Description: "Weather.", Parameters: json.RawMessage(`{
			"$schema":"http://json-schema.org/draft-07/schema#","type":"object","additionalProperties":false,"strict":true,
			"properties":{"city":{"type":["string","null"],"format":"uri","description":"City."},
				"days":{"type":"integer","format":"int32","minimum":1},
				"tags":{"type":"array","items":{"type":"string","const":"x"}}},
			"required":["city","ghost"]}`)},
			{Name: "get_time", Parameters: json.RawMessage(`{"type":"object","properties":{}}`)}},
		ToolChoice:     llm.ToolChoice{Mode: "tool", Name: "get_weather"},
		MaxTokens:      100,
		Temperature:    ptr(0.5),
		TopP:           ptr(0.9),
		TopK:           ptr(40),
		Stop:           []string{"END"},
		N:              2,
		Seed:           ptr(int64(42)),
		ResponseFormat: &llm.ResponseFormat{Type: "json_schema", Schema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`)},
		ThinkingBudget: 1024,
		User:           "u1",
	}
	m := encode(t, r)
	cs := get(t, m, "contents").([]any)
	if len(cs) != 3 {
		t.Fatalf("contents = %d turns, want 3 (user, model, user[2 results + text]): %v", len(cs), cs)
	}
	if get(t, cs[0], "role") != "user" || get(t, cs[0], "parts", 1, "inlineData", "mimeType") != "image/png" {
		t.Errorf("first turn: %v", cs[0])
	}
	if get(t, cs[1], "role") != "model" {
		t.Errorf("second turn role: %v", cs[1])
	}
	if get(t, cs[1], "parts", 0, "functionCall", "name") != "get_weather" || get(t, cs[1], "parts", 0, "thoughtSignature") != "SIG" {
		t.Errorf("function call part: %v", get(t, cs[1], "parts", 0))
	}
	if get(t, cs[1], "parts", 1, "functionCall", "args") == nil {
		t.Errorf("empty arguments must be {}: %v", get(t, cs[1], "parts", 1))
	}
	if parts := get(t, cs[1], "parts").([]any); len(parts) != 2 {
		t.Errorf("thinking text must not be sent back: %v", parts)
	}
	u := cs[2]
	if get(t, u, "role") != "user" || get(t, u, "parts", 0, "functionResponse", "name") != "get_weather" ||
		get(t, u, "parts", 0, "functionResponse", "response", "temp") != 21.0 ||
		get(t, u, "parts", 1, "functionResponse", "name") != "get_time" ||
		get(t, u, "parts", 1, "functionResponse", "response", "result") != "noon" ||
		get(t, u, "parts", 2, "text") != "thanks" {
		t.Errorf("tool results turn: %v", u)
	}
	if get(t, m, "systemInstruction", "parts", 0, "text") != "Be brief." || get(t, m, "systemInstruction", "parts", 1, "text") != "Late rule." {
		t.Errorf("systemInstruction: %v", m["systemInstruction"])
	}
	params := get(t, m, "tools", 0, "functionDeclarations", 0, "parameters").(map[string]any)
	for _, k := range []string{"$schema", "additionalProperties", "strict"} {
		if _, ok := params[k]; ok {
			t.Errorf("parameters keep %q: %v", k, params)
		}
	}
	city := get(t, params, "properties", "city").(map[string]any)
	if city["type"] != "string" || city["nullable"] != true || city["format"] != nil {
		t.Errorf("city schema: %v", city)
	}
	if get(t, params, "properties", "days", "format") != "int32" || !reflect.DeepEqual(get(t, params, "required"), []any{"city"}) {
		t.Errorf("params: %v", params)
	}
	if !reflect.DeepEqual(get(t, params, "properties", "tags", "items", "enum"), []any{"x"}) {
		t.Errorf("const not an enum: %v", params)
	}
	if d := get(t, m, "tools", 0, "functionDeclarations", 1).(map[string]any); d["parameters"] != nil {
		t.Errorf("an object without properties must send no parameters: %v", d)
	}
	if get(t, m, "toolConfig", "functionCallingConfig", "mode") != "ANY" ||
		!reflect.DeepEqual(get(t, m, "toolConfig", "functionCallingConfig", "allowedFunctionNames"), []any{"get_weather"}) {
		t.Errorf("toolConfig: %v", m["toolConfig"])
	}
	g := get(t, m, "generationConfig").(map[string]any)
	want := map[string]any{"maxOutputTokens": 100.0, "temperature": 0.5, "topP": 0.9, "topK": 40.0, "candidateCount": 2.0, "seed": 42.0,
		"responseMimeType": "application/json", "stopSequences": []any{"END"}}
	for k, v := range want {
		if !reflect.DeepEqual(g[k], v) {
			t.Errorf("generationConfig.%s = %v, want %v", k, g[k], v)
		}
	}
	if get(t, g, "responseSchema", "additionalProperties") != nil || get(t, g, "responseSchema", "properties", "a", "type") != "string" {
		t.Errorf("responseSchema: %v", g["responseSchema"])
	}
	if get(t, g, "thinkingConfig", "thinkingBudget") != 1024.0 || get(t, g, "thinkingConfig", "includeThoughts") != true {
		t.Errorf("thinkingConfig: %v", g["thinkingConfig"])
	}
}

func TestAppendRequestToolResultShapes(t *testing.T) {
	base := []llm.Message{
		{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}},
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c1", Name: "f", Arguments: "{}"}}},
	}
	for _, tc := range []struct {
		text    string
		isError bool
		want    string
	}{
		{`{"a":1}`, false, `{"a":1}`},
		{`[1,2]`, false, `{"result":[1,2]}`},
		{`42`, false, `{"result":42}`},
		{`plain "text"`, false, `{"result":"plain \"text\""}`},
		{``, false, `{"result":""}`},
		{`boom`, true, `{"error":"boom"}`},
		{`{"code":1}`, true, `{"error":{"code":1}}`},
	} {
		msgs := append(append([]llm.Message(nil), base...), llm.Message{Role: llm.RoleTool, ToolCallID: "c1", IsError: tc.isError, Content: []llm.Part{{Type: llm.PartText, Text: tc.text}}})
		b, err := AppendRequest(nil, &llm.ChatRequest{Messages: msgs})
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Contents []struct {
				Parts []struct {
					FunctionResponse *struct {
						Response json.RawMessage `json:"response"`
					} `json:"functionResponse"`
				} `json:"parts"`
			} `json:"contents"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		got := m.Contents[2].Parts[0].FunctionResponse.Response
		if string(got) != tc.want {
			t.Errorf("result %q (error %v) -> %s, want %s", tc.text, tc.isError, got, tc.want)
		}
	}
}

func TestAppendRequestRefusals(t *testing.T) {
	user := llm.Message{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}}
	for name, r := range map[string]*llm.ChatRequest{
		"image url":        {Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartImage, Image: &llm.Image{URL: "https://example.com/a.png"}}}}}},
		"orphan result":    {Messages: []llm.Message{user, {Role: llm.RoleTool, ToolCallID: "nope", Content: []llm.Part{{Type: llm.PartText, Text: "x"}}}}},
		"empty":            {},
		"bad args":         {Messages: []llm.Message{user, {Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c", Name: "f", Arguments: "[1]"}}}}},
		"bad format":       {Messages: []llm.Message{user}, ResponseFormat: &llm.ResponseFormat{Type: "xml"}},
		"bad effort":       {Messages: []llm.Message{user}, ReasoningEffort: "extreme"},
		"bad tool choice":  {Messages: []llm.Message{user}, ToolChoice: llm.ToolChoice{Mode: "sometimes"}},
		"schema not json":  {Messages: []llm.Message{user}, Tools: []llm.Tool{{Name: "f", Parameters: json.RawMessage(`{`)}}},
		"schema too deep":  {Messages: []llm.Message{user}, Tools: []llm.Tool{{Name: "f", Parameters: json.RawMessage(strings.Repeat(`{"items":`, 100) + "{}" + strings.Repeat("}", 100))}}},
		"nameless tool":    {Messages: []llm.Message{user}, Tools: []llm.Tool{{}}},
		"image in system":  {Messages: []llm.Message{user}, System: []llm.Part{{Type: llm.PartImage, Image: &llm.Image{Data: "x", MediaType: "image/png"}}}},
		"negative max":     {Messages: []llm.Message{user}, MaxTokens: -1},
		"image no type":    {Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartImage, Image: &llm.Image{Data: "eA=="}}}}}},
		"named choice nil": {Messages: []llm.Message{user}, ToolChoice: llm.ToolChoice{Mode: "tool"}},
	} {
		_, err := AppendRequest(nil, r)
		if err == nil || err.Status != 400 {
			t.Errorf("%s: err = %v, want a 400", name, err)
		}
	}
}

func TestAppendRequestDummySignatureAndEffort(t *testing.T) {
	m := encode(t, &llm.ChatRequest{Messages: []llm.Message{
		{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}},
		{Role: llm.RoleAssistant, Content: []llm.Part{{Type: llm.PartText, Text: "calling"}}, ToolCalls: []llm.ToolCall{{ID: "c", Name: "f", Arguments: "{}"}}},
	}, ReasoningEffort: "low"})
	if get(t, m, "contents", 1, "parts", 1, "thoughtSignature") != dummySignature {
		t.Errorf("first function call without a signature: %v", get(t, m, "contents", 1))
	}
	if get(t, m, "contents", 1, "parts", 0, "thoughtSignature") != nil {
		t.Errorf("text part got a signature: %v", get(t, m, "contents", 1))
	}
	if get(t, m, "generationConfig", "thinkingConfig", "thinkingBudget") != 1024.0 {
		t.Errorf("effort low: %v", m["generationConfig"])
	}
	m = encode(t, &llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}}}, ReasoningEffort: "none"})
	if get(t, m, "generationConfig", "thinkingConfig", "thinkingBudget") != 0.0 {
		t.Errorf("effort none: %v", m["generationConfig"])
	}
	m = encode(t, &llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}}}})
	if _, ok := m["generationConfig"]; ok {
		t.Errorf("nothing set, generationConfig sent: %v", m)
	}
}

func TestDecodeResponseFixtures(t *testing.T) {
	r, err := DecodeResponse(fixture(t, "function_call.json"))
	if err != nil {
		t.Fatal(err)
	}
	c := r.Choices[0]
	if r.Model != "gemini-2.5-flash" || c.FinishReason != llm.FinishToolCalls || len(c.Message.ToolCalls) != 1 ||
		c.Message.ToolCalls[0].ID != "call_0" || c.Message.ToolCalls[0].Name != "controlLight" {
		t.Fatalf("function call: %+v", r)
	}
	var args map[string]any
	if json.Unmarshal([]byte(c.Message.ToolCalls[0].Arguments), &args) != nil || args["brightness"] != 50.0 {
		t.Errorf("args = %s", c.Message.ToolCalls[0].Arguments)
	}
	if !r.UsageKnown || r.Usage.PromptTokens != 31 || r.Usage.CompletionTokens != 7 {
		t.Errorf("usage = %+v", r.Usage)
	}

	r, err = DecodeResponse(fixture(t, "text.json"))
	if err != nil || r.Choices[0].Message.Content[0].Text != "1 + 2 = 3" || r.Choices[0].FinishReason != "stop" || r.UsageKnown {
		t.Fatalf("text: %+v %v", r, err)
	}

	r, err = DecodeResponse(fixture(t, "thinking_tool_call.json"))
	if err != nil {
		t.Fatal(err)
	}
	c = r.Choices[0]
	if c.Message.Content[0].Type != llm.PartThinking || !strings.Contains(c.Message.Content[0].Text, "Paris") ||
		c.Message.Content[1].Signature != "CiQBVKhc7vB+vaaq6rA" || c.FinishReason != llm.FinishToolCalls {
		t.Errorf("thinking: %+v", c)
	}
	want := llm.Usage{PromptTokens: 125, CompletionTokens: 55, CacheReadTokens: 64, ReasoningTokens: 40}
	if r.Usage != want || r.ID != "mock-response-id-1" {
		t.Errorf("usage = %+v, want %+v (id %q)", r.Usage, want, r.ID)
	}

	r, err = DecodeResponse(fixture(t, "blocked_prompt.json"))
	if err != nil || len(r.Choices) != 1 || r.Choices[0].FinishReason != llm.FinishContentFilter || r.Usage.PromptTokens != 8 {
		t.Errorf("blocked: %+v %v", r, err)
	}

	_, err = DecodeResponse(fixture(t, "error_invalid_argument.json"))
	if err == nil || err.UpstreamStatus != 400 || err.Status != 400 || err.Code != "INVALID_ARGUMENT" || err.Message != "test error message" {
		t.Errorf("error: %+v", err)
	}
	_, err = DecodeResponse(fixture(t, "error_internal.json"))
	if err == nil || err.UpstreamStatus != 500 || err.Status != 500 {
		t.Errorf("error: %+v", err)
	}
}

func TestDecodeResponseFinishReasons(t *testing.T) {
	for in, want := range map[string]string{"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
		"BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter", "OTHER": "stop", "": "stop"} {
		body := `{"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"` + in + `"}]}`
		r, err := DecodeResponse([]byte(body))
		if err != nil || r.Choices[0].FinishReason != want {
			t.Errorf("%s: %+v %v", in, r, err)
		}
	}
}

func TestDecodeResponseHostile(t *testing.T) {
	many := `{"candidates":[` + strings.Repeat(`{},`, 200) + `{}]}`
	manyCalls := `{"candidates":[{"content":{"parts":[` + strings.Repeat(`{"functionCall":{"name":"f"}},`, 200) + `{"text":"x"}]}}]}`
	for name, body := range map[string]string{
		"not json": `{"candidates":`, "no candidates": `{}`, "many candidates": many, "many calls": manyCalls,
		"negative usage": `{"candidates":[{"content":{"parts":[{"text":"x"}]}}],"usageMetadata":{"promptTokenCount":-5}}`,
		"string count":   `{"candidates":[],"usageMetadata":{"promptTokenCount":"5"}}`,
	} {
		r, err := DecodeResponse([]byte(body))
		if name == "negative usage" {
			if err != nil || !r.Usage.Clamped || r.Usage.PromptTokens != 0 {
				t.Errorf("%s: %+v %v", name, r, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// collect reads a stream to its end.
func collect(s llm.EventStream) ([]llm.Event, error) {
	var out []llm.Event
	for {
		ev, err := s.Next()
		if err != nil {
			return out, err
		}
		out = append(out, ev.Clone())
		if len(out) > 100000 {
			return out, errors.New("endless")
		}
	}
}

func kinds(evs []llm.Event) string {
	names := map[llm.EventKind]string{llm.EventStart: "start", llm.EventText: "text", llm.EventThinking: "think", llm.EventToolStart: "tool",
		llm.EventToolArgs: "args", llm.EventToolEnd: "end", llm.EventFinish: "finish", llm.EventUsage: "usage", llm.EventError: "error"}
	var b strings.Builder
	for i, e := range evs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(names[e.Kind])
	}
	return b.String()
}

func TestStreamDecoderFixtures(t *testing.T) {
	evs, err := collect(NewStreamDecoder(bytes.NewReader(fixture(t, "stream_text.sse"))))
	if err != io.EOF {
		t.Fatalf("err = %v", err)
	}
	if got := kinds(evs); got != "start text text text finish" {
		t.Errorf("events = %s", got)
	}
	var text strings.Builder
	for _, e := range evs {
		if e.Kind == llm.EventText {
			text.WriteString(e.Text)
		}
	}
	if text.String() != "1 + 2 = 3" {
		t.Errorf("text = %q", text.String())
	}

	evs, err = collect(NewStreamDecoder(bytes.NewReader(fixture(t, "stream_tool_call.sse"))))
	if err != io.EOF {
		t.Fatalf("err = %v", err)
	}
	if got := kinds(evs); got != "start think think tool args end finish usage" {
		t.Errorf("events = %s", got)
	}
	if evs[0].ID != "resp-stream-1" || evs[0].Model != "gemini-2.5-flash" || evs[2].Signature != "c2lnbmF0dXJl" ||
		evs[3].Name != "controlLight" || evs[3].ID != "call_0" || !strings.Contains(evs[4].Text, `"brightness"`) ||
		evs[6].FinishReason != llm.FinishToolCalls {
		t.Errorf("events = %+v", evs)
	}
	if u := evs[7].Usage; u.PromptTokens != 30 || u.CompletionTokens != 19 || u.ReasoningTokens != 12 {
		t.Errorf("usage = %+v", u)
	}

	evs, err = collect(NewStreamDecoder(bytes.NewReader(fixture(t, "stream_candidates_nofinish.sse"))))
	if !errors.Is(err, ErrStreamBroken) {
		t.Errorf("no finish: err = %v", err)
	}
	idx1 := 0
	for _, e := range evs {
		if e.Kind == llm.EventText && e.Index == 1 {
			idx1++
		}
	}
	if idx1 != 6 {
		t.Errorf("candidate 1 text events = %d, want 6", idx1)
	}
}

func TestStreamDecoderAbuse(t *testing.T) {
	ev := func(s string) string { return "data: " + s + "\r\n\r\n" }
	for name, tc := range map[string]struct {
		body string
		last string // kinds of the tail, or "err"
	}{
		"error event":    {ev(`{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}`) + ev(`{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}`), "start text error"},
		"huge index":     {ev(`{"candidates":[{"index":1000000000,"content":{"parts":[{"text":"a"}]}}]}`), "start error"},
		"negative index": {ev(`{"candidates":[{"index":-1}]}`), "start error"},
		"malformed":      {ev(`{"candidates":[`), "err"},
		"cut":            {ev(`{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}`) + "data: {\"cand", "err"},
		"blocked":        {ev(`{"promptFeedback":{"blockReason":"SAFETY"}}`), "start finish"},
		"comments only":  {": keepalive\n\n", "err"},
	} {
		evs, err := collect(NewStreamDecoder(strings.NewReader(tc.body)))
		if tc.last == "err" {
			if err == nil || err == io.EOF {
				t.Errorf("%s: err = %v, want a broken stream", name, err)
			}
			continue
		}
		if err != io.EOF || kinds(evs) != tc.last {
			t.Errorf("%s: %s, %v; want %s", name, kinds(evs), err, tc.last)
		}
		if name == "error event" && (evs[2].Err.UpstreamStatus != 429 || evs[2].Err.Status != 429) {
			t.Errorf("error event: %+v", evs[2].Err)
		}
		if name == "blocked" && evs[1].FinishReason != llm.FinishContentFilter {
			t.Errorf("blocked: %+v", evs[1])
		}
	}
	// Too many function calls in one candidate.
	var b strings.Builder
	for i := 0; i < MaxToolCalls+5; i++ {
		b.WriteString(ev(`{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{}}}]}}]}`))
	}
	evs, err := collect(NewStreamDecoder(strings.NewReader(b.String())))
	if err != io.EOF || evs[len(evs)-1].Kind != llm.EventError {
		t.Errorf("too many calls: last %+v, %v", evs[len(evs)-1], err)
	}
}

func TestEmbed(t *testing.T) {
	b, err := AppendEmbedRequest(nil, "text-embedding-004", &llm.EmbedRequest{Inputs: []string{"a", "b"}, Dimensions: 8})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"requests":[{"model":"models/text-embedding-004","content":{"parts":[{"text":"a"}]},"outputDimensionality":8},{"model":"models/text-embedding-004","content":{"parts":[{"text":"b"}]},"outputDimensionality":8}]}`
	if string(b) != want {
		t.Errorf("got %s", b)
	}
	if _, err := AppendEmbedRequest(nil, "m", &llm.EmbedRequest{}); err == nil {
		t.Error("no inputs accepted")
	}
	r, err := DecodeEmbedResponse(fixture(t, "embed.json"))
	if err != nil || len(r.Vectors) != 2 || r.Vectors[0][2] != -0.046782676 || r.UsageKnown {
		t.Errorf("decode: %+v %v", r, err)
	}
	if _, err := DecodeEmbedResponse(fixture(t, "error_invalid_argument.json")); err == nil || err.UpstreamStatus != 400 {
		t.Errorf("error: %v", err)
	}
}

func FuzzDecodeResponse(f *testing.F) {
	for _, n := range []string{"function_call.json", "text.json", "thinking_tool_call.json", "blocked_prompt.json", "error_invalid_argument.json", "embed.json"} {
		f.Add(fixture(f, n))
	}
	f.Add([]byte(`{"predictions":[{"embeddings":{"statistics":{"token_count":1e3},"values":[0.1]}}]}`))
	f.Add([]byte(`{"candidates":[{"index":5,"content":{"parts":[{"functionCall":{"id":"x","name":"f","args":null}}]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResponse(b)
		if err == nil && (len(r.Choices) == 0 || len(r.Choices) > MaxCandidates) {
			t.Fatalf("choices = %d", len(r.Choices))
		}
		_, _ = DecodeEmbedResponse(b)
		if e, err := DecodePredictEmbedResponse(b); err == nil && e.UsageKnown && e.Usage.PromptTokens < 0 {
			t.Fatalf("negative usage %+v", e.Usage)
		}
	})
}

func FuzzStreamDecoder(f *testing.F) {
	for _, n := range []string{"stream_text.sse", "stream_tool_call.sse", "stream_candidates_nofinish.sse"} {
		f.Add(fixture(f, n))
	}
	f.Add([]byte("data: {\"error\":{\"code\":\"x\"}}\n\n"))
	f.Add([]byte("data: {\"candidates\":[{\"index\":127,\"finishReason\":\"STOP\"}]}\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewStreamDecoder(bytes.NewReader(b))
		n := 0
		for {
			ev, err := s.Next()
			if err != nil {
				break
			}
			if ev.Index < 0 || ev.Index >= MaxCandidates || ev.Tool < 0 || ev.Tool >= MaxToolCalls {
				t.Fatalf("event out of bounds: %+v", ev)
			}
			if n++; n > 4*len(b)+16 {
				t.Fatalf("more events (%d) than the input can hold", n)
			}
		}
		_ = s.Close()
	})
}

func FuzzAppendRequest(f *testing.F) {
	f.Add("hello", `{"type":"object","properties":{"a":{"type":["string","null"]}}}`, `{"x":1}`, "c1", "c1")
	f.Add("", `{"$ref":"#/x","oneOf":[{"type":"string"},{"const":1}]}`, `nope`, "a", "b")
	f.Add("\xff", `[]`, `[1,2`, "", "")
	f.Fuzz(func(t *testing.T, text, schema, result, callID, resultID string) {
		r := &llm.ChatRequest{
			Messages: []llm.Message{
				{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: text}}},
				{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: callID, Name: "f", Arguments: result}}},
				{Role: llm.RoleTool, ToolCallID: resultID, Content: []llm.Part{{Type: llm.PartText, Text: result}}},
			},
			Tools:          []llm.Tool{{Name: "f", Parameters: json.RawMessage(schema)}},
			ResponseFormat: &llm.ResponseFormat{Type: "json_schema", Schema: json.RawMessage(schema)},
		}
		b, err := AppendRequest(nil, r)
		if err != nil {
			if err.Status != 400 {
				t.Fatalf("status %d", err.Status)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON: %s", b)
		}
	})
}

// repeatReader yields chunk n times, then tail.
type repeatReader struct {
	chunk, tail []byte
	n, off      int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		if len(r.tail) == 0 {
			return 0, io.EOF
		}
		c := copy(p, r.tail)
		r.tail = r.tail[c:]
		return c, nil
	}
	c := copy(p, r.chunk[r.off:])
	if r.off += c; r.off == len(r.chunk) {
		r.off, r.n = 0, r.n-1
	}
	return c, nil
}

// BenchmarkStreamDecoderChunk measures decoding one streamed text event
// (about 260 bytes, as Gemini sends them) into neutral events.
func BenchmarkStreamDecoderChunk(b *testing.B) {
	chunk := []byte(`data: {"candidates": [{"content": {"parts": [{"text": "Hello from the mock LLM! "}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 30,"candidatesTokenCount": 5,"totalTokenCount": 35},"modelVersion": "gemini-2.5-flash","responseId": "resp-1"}` + "\r\n\r\n")
	r := &repeatReader{chunk: chunk, n: b.N, tail: []byte(`data: {"candidates":[{"finishReason":"STOP"}]}` + "\r\n\r\n")}
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	s := NewStreamDecoder(r)
	for {
		if _, err := s.Next(); err != nil {
			if err != io.EOF {
				b.Fatal(err)
			}
			break
		}
	}
}

func TestStreamDecoderSignatureOrder(t *testing.T) {
	body := "data: " + `{"candidates":[{"content":{"parts":[{"text":"hmm","thought":true,"thoughtSignature":"S1"},{"functionCall":{"name":"f","args":{}},"thoughtSignature":"S2"}]},"finishReason":"STOP"}]}` + "\n\n"
	evs, err := collect(NewStreamDecoder(strings.NewReader(body)))
	if err != io.EOF || kinds(evs) != "start think think think tool args end finish" {
		t.Fatalf("%s %v", kinds(evs), err)
	}
	if evs[1].Text != "hmm" || evs[2].Signature != "S1" || evs[3].Signature != "S2" || evs[4].Name != "f" {
		t.Errorf("order: %+v", evs)
	}
}
