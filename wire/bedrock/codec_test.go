package bedrock

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

const fixtures = "../../providers/testdata/bedrock"

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eventFrames frames an .events fixture (one "eventType payload" a line).
func eventFrames(t testing.TB, text []byte) []byte {
	t.Helper()
	var out []byte
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		typ, payload, ok := strings.Cut(line, " ")
		if !ok || !json.Valid([]byte(payload)) {
			t.Fatalf("bad fixture line %q", line)
		}
		out = eventFrame(out, typ, payload)
	}
	return out
}

func eventFrame(dst []byte, typ, payload string) []byte {
	return AppendFrame(dst, [][2]string{{":event-type", typ}, {":content-type", "application/json"}, {":message-type", "event"}}, []byte(payload))
}

func exceptionFrame(dst []byte, typ, msg string) []byte {
	p, _ := json.Marshal(map[string]string{"message": msg})
	return AppendFrame(dst, [][2]string{{":exception-type", typ}, {":content-type", "application/json"}, {":message-type", "exception"}}, p)
}

// collect reads a stream to its end and renders each event on a line.
func collect(s llm.EventStream) ([]string, error) {
	var out []string
	for {
		ev, err := s.Next()
		if err != nil {
			return out, err
		}
		var line string
		switch ev.Kind {
		case llm.EventStart:
			line = "start"
		case llm.EventText:
			line = "text " + ev.Text
		case llm.EventThinking:
			line = "thinking " + ev.Text + "|" + ev.Signature
		case llm.EventToolStart:
			line = fmt.Sprintf("tool_start %d %s %s", ev.Tool, ev.ID, ev.Name)
		case llm.EventToolArgs:
			line = fmt.Sprintf("tool_args %d %s", ev.Tool, ev.Text)
		case llm.EventToolEnd:
			line = fmt.Sprintf("tool_end %d", ev.Tool)
		case llm.EventFinish:
			line = "finish " + ev.FinishReason
		case llm.EventUsage:
			u := ev.Usage
			line = fmt.Sprintf("usage %d %d read=%d write=%d", u.PromptTokens, u.CompletionTokens, u.CacheReadTokens, u.CacheWriteTokens)
		case llm.EventError:
			line = fmt.Sprintf("error %d/%d %s %s", ev.Err.Status, ev.Err.UpstreamStatus, ev.Err.Code, ev.Err.Message)
		}
		out = append(out, line)
	}
}

func TestDecodeConverseResponseFixtures(t *testing.T) {
	r, err := DecodeConverseResponse(readFixture(t, "converse_text.json"))
	if err != nil {
		t.Fatal(err)
	}
	ch := r.Choices[0]
	if len(r.Choices) != 1 || ch.FinishReason != "stop" || len(ch.Message.Content) != 1 || !strings.HasPrefix(ch.Message.Content[0].Text, "Here is a list") {
		t.Fatalf("text answer: %+v", r)
	}
	if !r.UsageKnown || r.Usage.PromptTokens != 125 || r.Usage.CompletionTokens != 60 {
		t.Fatalf("usage: %+v", r.Usage)
	}

	r, err = DecodeConverseResponse(readFixture(t, "converse_tool_use.json"))
	if err != nil {
		t.Fatal(err)
	}
	ch = r.Choices[0]
	if ch.FinishReason != "tool_calls" || len(ch.Message.ToolCalls) != 1 {
		t.Fatalf("tool answer: %+v", ch)
	}
	tc := ch.Message.ToolCalls[0]
	if tc.ID != "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q" || tc.Name != "top_song" || compactJSON(t, tc.Arguments) != `{"sign":"WZPZ"}` {
		t.Fatalf("tool call: %+v", tc)
	}

	r, err = DecodeConverseResponse(readFixture(t, "converse_reasoning_cache.json"))
	if err != nil {
		t.Fatal(err)
	}
	ch = r.Choices[0]
	if len(ch.Message.Content) != 2 || ch.Message.Content[0].Type != llm.PartThinking || ch.Message.Content[0].Signature == "" || ch.Message.Content[1].Text != "The capital of France is Paris." {
		t.Fatalf("reasoning answer: %+v", ch.Message)
	}
	// inputTokens excludes cache tokens: PromptTokens adds them.
	if u := r.Usage; u.PromptTokens != 4+1096 || u.CacheWriteTokens != 1096 || u.CacheReadTokens != 0 || u.CompletionTokens != 57 {
		t.Fatalf("usage: %+v", u)
	}
}

func compactJSON(t *testing.T, s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return b.String()
}

func TestDecodeConverseResponseHostile(t *testing.T) {
	for name, body := range map[string]string{
		"not json":   `<html>`,
		"array":      `[]`,
		"no output":  `{"stopReason":"end_turn"}`,
		"bad type":   `{"output":{"message":{"content":"x"}}}`,
		"truncated":  `{"output":{"message":{"content":[{"text":"a"`,
		"aws error":  `{"message":"The model returned an error"}`,
		"tool flood": `{"output":{"message":{"content":[` + strings.Repeat(`{"toolUse":{"toolUseId":"a","name":"b","input":{}}},`, MaxToolCalls) + `{"toolUse":{"toolUseId":"a","name":"b","input":{}}}]}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			r, err := DecodeConverseResponse([]byte(body))
			if err == nil {
				t.Fatalf("accepted: %+v", r)
			}
			if err.Status < 400 {
				t.Fatalf("status %d", err.Status)
			}
		})
	}
	r, err := DecodeConverseResponse([]byte(`{"output":{"message":{"role":"assistant","content":[{"text":"x"}]}},"stopReason":"max_tokens","usage":{"inputTokens":-5,"outputTokens":1e300}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Usage.Clamped || r.Usage.PromptTokens != 0 || r.Usage.CompletionTokens != maxTokenCount || r.Choices[0].FinishReason != "length" {
		t.Fatalf("clamping: %+v %q", r.Usage, r.Choices[0].FinishReason)
	}
}

func TestStreamDecoderFixtures(t *testing.T) {
	for _, c := range []struct {
		file string
		want []string
	}{
		{"stream_text.events", []string{
			"start", "text Here is", "text  a list of 3 pop songs", "text  by artists from the United Kingdom.",
			"finish stop", "usage 125 60 read=0 write=0",
		}},
		{"stream_tool_use.events", []string{
			"start", "text Let me look up the most popular song on WZPZ.",
			"tool_start 0 tooluse_kZJMlvQmRJ6eAyJE5GIl7Q top_song", "tool_args 0 ", `tool_args 0 {"sign": "WZ`, `tool_args 0 PZ"}`, "tool_end 0",
			"finish tool_calls", "usage 375 55 read=0 write=0",
		}},
		{"stream_reasoning.events", []string{
			"start", "thinking The user wants the capital|", "thinking  of France: Paris.|", "thinking |ErcBCkgIAhABGAIiQMa1EXAMPLESIGNATURE",
			"text The capital of France is Paris.", "finish stop", "usage 1100 57 read=1096 write=0",
		}},
	} {
		t.Run(c.file, func(t *testing.T) {
			got, err := collect(NewStreamDecoder(bytes.NewReader(eventFrames(t, readFixture(t, c.file)))))
			if err != io.EOF {
				t.Fatalf("end: %v (events %q)", err, got)
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestStreamDecoderEnds(t *testing.T) {
	full := eventFrames(t, readFixture(t, "stream_text.events"))
	// Cut before messageStop: an error, not a clean end.
	var cut []byte
	cut = eventFrame(cut, "messageStart", `{"role":"assistant"}`)
	cut = eventFrame(cut, "contentBlockDelta", `{"contentBlockIndex":0,"delta":{"text":"Hi"}}`)
	got, err := collect(NewStreamDecoder(bytes.NewReader(cut)))
	if err == nil || err == io.EOF {
		t.Fatalf("a stream without messageStop ended cleanly: %q", got)
	}
	// Cut inside a frame.
	if _, err := collect(NewStreamDecoder(bytes.NewReader(full[:len(full)-10]))); err == nil || err == io.EOF {
		t.Fatal("a stream cut inside a frame ended cleanly")
	}
	// messageStop without metadata: a clean end without usage.
	var noMeta []byte
	noMeta = eventFrame(noMeta, "messageStart", `{"role":"assistant"}`)
	noMeta = eventFrame(noMeta, "messageStop", `{"stopReason":"end_turn"}`)
	got, err = collect(NewStreamDecoder(bytes.NewReader(noMeta)))
	if err != io.EOF || strings.Join(got, ",") != "start,finish stop" {
		t.Fatalf("got %q, %v", got, err)
	}
	// No messageStart: EventStart is still first.
	var noStart []byte
	noStart = eventFrame(noStart, "contentBlockDelta", `{"contentBlockIndex":0,"delta":{"text":"Hi"}}`)
	noStart = eventFrame(noStart, "messageStop", `{"stopReason":"end_turn"}`)
	got, err = collect(NewStreamDecoder(bytes.NewReader(noStart)))
	if err != io.EOF || strings.Join(got, ",") != "start,text Hi,finish stop" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestStreamDecoderExceptions(t *testing.T) {
	for _, c := range []struct {
		typ              string
		status, upstream int
	}{
		{"throttlingException", 429, 429},
		{"serviceUnavailableException", 503, 503},
		{"modelStreamErrorException", 502, 424},
		{"validationException", 400, 400},
		{"internalServerException", 500, 500},
		{"somethingNewException", 502, 500},
	} {
		t.Run(c.typ, func(t *testing.T) {
			var b []byte
			b = eventFrame(b, "messageStart", `{"role":"assistant"}`)
			b = eventFrame(b, "contentBlockDelta", `{"contentBlockIndex":0,"delta":{"text":"Hi"}}`)
			b = exceptionFrame(b, c.typ, "Too many tokens, please wait.")
			b = eventFrame(b, "messageStop", `{"stopReason":"end_turn"}`)
			s := NewStreamDecoder(bytes.NewReader(b))
			got, err := collect(s)
			if err != io.EOF {
				t.Fatalf("after the error event: %v", err)
			}
			want := fmt.Sprintf("error %d/%d %s Too many tokens, please wait.", c.status, c.upstream, c.typ)
			if len(got) != 3 || got[2] != want {
				t.Fatalf("events %q, want the last %q", got, want)
			}
		})
	}
	// An error message (":message-type error").
	b := AppendFrame(nil, [][2]string{{":message-type", "error"}, {":error-code", "InternalFailure"}, {":error-message", "boom"}}, nil)
	got, _ := collect(NewStreamDecoder(bytes.NewReader(b)))
	if len(got) != 1 || got[0] != "error 502/500 InternalFailure boom" {
		t.Fatalf("error message: %q", got)
	}
}

func TestStreamDecoderHostile(t *testing.T) {
	start := eventFrame(nil, "messageStart", `{"role":"assistant"}`)
	for name, b := range map[string][]byte{
		"delta for an unknown tool block": eventFrame(bytes.Clone(start), "contentBlockDelta", `{"contentBlockIndex":1000000000,"delta":{"toolUse":{"input":"{}"}}}`),
		"tool block started twice": eventFrame(eventFrame(bytes.Clone(start), "contentBlockStart", `{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"a","name":"b"}}}`),
			"contentBlockStart", `{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"a","name":"b"}}}`),
		"malformed payload": eventFrame(bytes.Clone(start), "contentBlockDelta", `{"delta":`),
		"tool flood": func() []byte {
			b := bytes.Clone(start)
			for i := 0; i <= MaxToolCalls; i++ {
				b = eventFrame(b, "contentBlockStart", fmt.Sprintf(`{"contentBlockIndex":%d,"start":{"toolUse":{"toolUseId":"a","name":"b"}}}`, i*1000000))
			}
			return b
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := collect(NewStreamDecoder(bytes.NewReader(b)))
			if err == nil || err == io.EOF {
				t.Fatal("accepted")
			}
			if _, ok := err.(*llm.Error); !ok {
				t.Fatalf("error %T is not an *llm.Error", err)
			}
		})
	}
	// A huge block index for a tool that did start is fine and costs nothing.
	b := eventFrame(bytes.Clone(start), "contentBlockStart", `{"contentBlockIndex":1000000000,"start":{"toolUse":{"toolUseId":"a","name":"b"}}}`)
	b = eventFrame(b, "contentBlockDelta", `{"contentBlockIndex":1000000000,"delta":{"toolUse":{"input":"{}"}}}`)
	b = eventFrame(b, "messageStop", `{"stopReason":"tool_use"}`)
	got, err := collect(NewStreamDecoder(bytes.NewReader(b)))
	if err != io.EOF || len(got) != 4 {
		t.Fatalf("got %q, %v", got, err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestAppendConverseRequest(t *testing.T) {
	r := &llm.ChatRequest{
		Model:  "anthropic.claude-3-5-sonnet-20240620-v1:0",
		System: []llm.Part{{Type: llm.PartText, Text: "You are terse.", CacheControl: true}},
		Messages: []llm.Message{
			{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "What is the most popular song on WZPZ?"}}},
			{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartImage, Image: &llm.Image{MediaType: "image/png", Data: "iVBORw0KGgo="}}}},
			{Role: llm.RoleAssistant, Content: []llm.Part{{Type: llm.PartText, Text: "Let me check."}, {Type: llm.PartThinking, Text: "use the tool", Signature: "sig"}},
				ToolCalls: []llm.ToolCall{{ID: "t1", Name: "top_song", Arguments: `{"sign":"WZPZ"}`}, {ID: "t2", Name: "top_song", Arguments: ``}}},
			{Role: llm.RoleTool, ToolCallID: "t1", Content: []llm.Part{{Type: llm.PartText, Text: "Elemental Hotel"}}},
			{Role: llm.RoleTool, ToolCallID: "t2", IsError: true, Content: []llm.Part{{Type: llm.PartText, Text: "unknown station"}}},
			{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "Thanks"}, {Type: llm.PartText, Text: ""}}},
		},
		Tools: []llm.Tool{{Name: "top_song", Description: "Get the most popular song played on a radio station.",
			Parameters: json.RawMessage(`{"type":"object","properties":{"sign":{"type":"string"}},"required":["sign"]}`)}},
		ToolChoice:     llm.ToolChoice{Mode: "required"},
		MaxTokens:      512,
		Temperature:    ptr(0.5),
		TopP:           ptr(0.9),
		TopK:           ptr(40),
		Stop:           []string{"\n\nHuman:"},
		ThinkingBudget: 1024,
		Seed:           ptr(int64(7)),
	}
	b, err := AppendConverseRequest(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"messages":[` +
		`{"role":"user","content":[{"text":"What is the most popular song on WZPZ?"},{"image":{"format":"png","source":{"bytes":"iVBORw0KGgo="}}}]},` +
		`{"role":"assistant","content":[{"reasoningContent":{"reasoningText":{"text":"use the tool","signature":"sig"}}},{"text":"Let me check."},` +
		`{"toolUse":{"toolUseId":"t1","name":"top_song","input":{"sign":"WZPZ"}}},{"toolUse":{"toolUseId":"t2","name":"top_song","input":{}}}]},` +
		`{"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"text":"Elemental Hotel"}]}},` +
		`{"toolResult":{"toolUseId":"t2","content":[{"text":"unknown station"}],"status":"error"}},{"text":"Thanks"}]}],` +
		`"system":[{"text":"You are terse."},{"cachePoint":{"type":"default"}}],` +
		`"inferenceConfig":{"maxTokens":512,"temperature":0.5,"topP":0.9,"stopSequences":["\n\nHuman:"]},` +
		`"toolConfig":{"tools":[{"toolSpec":{"name":"top_song","description":"Get the most popular song played on a radio station.",` +
		`"inputSchema":{"json":{"type":"object","properties":{"sign":{"type":"string"}},"required":["sign"]}}}}],"toolChoice":{"any":{}}},` +
		`"additionalModelRequestFields":{"top_k":40,"thinking":{"type":"enabled","budget_tokens":1024}}}`
	if string(b) != want {
		t.Fatalf("body:\n%s\nwant:\n%s", b, want)
	}
	if !json.Valid(b) {
		t.Fatal("invalid JSON")
	}

	// Tool choice none drops the tools; a named tool; a bare request.
	r2 := &llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi\u2028\x01"}}}},
		Tools: r.Tools, ToolChoice: llm.ToolChoice{Mode: "none"}}
	b, err = AppendConverseRequest(nil, r2)
	if err != nil || string(b) != `{"messages":[{"role":"user","content":[{"text":"hi\u2028\u0001"}]}]}` {
		t.Fatalf("none: %s %v", b, err)
	}
	r2.ToolChoice = llm.ToolChoice{Mode: "tool", Name: "top_song"}
	b, _ = AppendConverseRequest(nil, r2)
	if !bytes.Contains(b, []byte(`"toolChoice":{"tool":{"name":"top_song"}}`)) {
		t.Fatalf("named tool: %s", b)
	}
}

func TestAppendConverseRequestRefuses(t *testing.T) {
	user := []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}}}
	for name, c := range map[string]struct {
		r    llm.ChatRequest
		want string
	}{
		"n": {llm.ChatRequest{Messages: user, N: 2}, "n > 1"},
		"response format and tools": {llm.ChatRequest{Messages: user, ResponseFormat: &llm.ResponseFormat{Type: "json_object"},
			Tools: []llm.Tool{{Name: "x"}}}, "together with tools"},
		"response format type": {llm.ChatRequest{Messages: user, ResponseFormat: &llm.ResponseFormat{Type: "xml"}}, "response_format"},
		"response schema":      {llm.ChatRequest{Messages: user, ResponseFormat: &llm.ResponseFormat{Type: "json_schema", Schema: json.RawMessage(`[1]`)}}, "JSON Schema object"},
		"reserved tool":        {llm.ChatRequest{Messages: user, Tools: []llm.Tool{{Name: JSONResponseTool}}}, "reserved"},
		"image url": {llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartImage, Image: &llm.Image{URL: "https://example.com/a.png"}}}}}},
			"image URLs are not supported for bedrock; send base64"},
		"image type":  {llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartImage, Image: &llm.Image{MediaType: "image/bmp", Data: "AAAA"}}}}}}, "image type"},
		"image data":  {llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartImage, Image: &llm.Image{MediaType: "image/png", Data: `AA"}`}}}}}}, "base64"},
		"tool args":   {llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "a", Name: "b", Arguments: `[1]`}}}}}, "JSON object"},
		"tool schema": {llm.ChatRequest{Messages: user, Tools: []llm.Tool{{Name: "x", Parameters: json.RawMessage(`{"a":`)}}}, "JSON Schema"},
		"nan":         {llm.ChatRequest{Messages: user, Temperature: ptr(nan())}, "finite"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := AppendConverseRequest(nil, &c.r)
			if err == nil || err.Status != http.StatusBadRequest || !strings.Contains(err.Message, c.want) {
				t.Fatalf("err = %v, want a 400 about %q", err, c.want)
			}
		})
	}
}

func nan() float64 {
	var z float64
	return z / z
}

func FuzzDecodeConverseResponse(f *testing.F) {
	for _, name := range []string{"converse_text.json", "converse_tool_use.json", "converse_reasoning_cache.json"} {
		f.Add(readFixture(f, name))
	}
	f.Add([]byte(`{"output":{"message":{"content":[{"toolUse":{"input":null}}]}},"usage":{"inputTokens":1e400}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeConverseResponse(b)
		if err == nil && (len(r.Choices) != 1 || len(r.Choices[0].Message.ToolCalls) > MaxToolCalls) {
			t.Fatalf("bad answer %+v", r)
		}
	})
}

func FuzzStreamDecoder(f *testing.F) {
	for _, name := range []string{"stream_text.events", "stream_tool_use.events", "stream_reasoning.events"} {
		f.Add(eventFrames(f, readFixture(f, name)))
	}
	f.Add(exceptionFrame(nil, "throttlingException", "slow down"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewStreamDecoder(bytes.NewReader(b))
		for i := 0; i < 10000; i++ {
			ev, err := s.Next()
			if err != nil {
				if _, ok := err.(*llm.Error); err != io.EOF && !ok {
					t.Fatalf("error %T", err)
				}
				return
			}
			if ev.Kind == llm.EventToolArgs && (ev.Tool < 0 || ev.Tool >= MaxToolCalls) {
				t.Fatalf("tool index %d", ev.Tool)
			}
		}
	})
}

func FuzzAppendConverseRequest(f *testing.F) {
	f.Add("hello", "world", `{"a":1}`, `{"type":"object"}`, "image/png", "AAAA", "required", uint8(3))
	f.Add("\x00\xff\u2028", "", "", "", "", "", "none", uint8(0))
	f.Fuzz(func(t *testing.T, text, text2, args, schema, mime, data, choice string, roles uint8) {
		rs := []llm.Role{llm.RoleUser, llm.RoleAssistant, llm.RoleTool, llm.RoleSystem}
		r := &llm.ChatRequest{System: []llm.Part{{Type: llm.PartText, Text: text2, CacheControl: roles&1 == 1}},
			Tools: []llm.Tool{{Name: text, Parameters: json.RawMessage(schema)}}, ToolChoice: llm.ToolChoice{Mode: choice, Name: text2}}
		for i := 0; i < 4; i++ {
			m := llm.Message{Role: rs[(int(roles)>>(2*i))&3], ToolCallID: text2,
				Content: []llm.Part{{Type: llm.PartText, Text: text, CacheControl: i == 2}, {Type: llm.PartThinking, Text: text2, Signature: text}}}
			if m.Role == llm.RoleUser {
				m.Content = append(m.Content, llm.Part{Type: llm.PartImage, Image: &llm.Image{MediaType: mime, Data: data}})
			}
			if m.Role == llm.RoleAssistant {
				m.ToolCalls = []llm.ToolCall{{ID: text2, Name: text, Arguments: args}}
			}
			r.Messages = append(r.Messages, m)
		}
		b, err := AppendConverseRequest(nil, r)
		if err != nil {
			if err.Status != http.StatusBadRequest {
				t.Fatalf("status %d", err.Status)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("invalid JSON: %s", b)
		}
		// Roles alternate.
		var body struct {
			Messages []struct{ Role string } `json:"messages"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(body.Messages); i++ {
			if body.Messages[i].Role == body.Messages[i-1].Role {
				t.Fatalf("roles do not alternate: %s", b)
			}
		}
	})
}

func BenchmarkStreamDecoderChunk(b *testing.B) {
	frame := eventFrame(nil, "contentBlockDelta", `{"contentBlockIndex":0,"delta":{"text":"Hello "},"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"}`)
	const n = 256
	in := eventFrame(nil, "messageStart", `{"role":"assistant"}`)
	in = append(in, bytes.Repeat(frame, n)...)
	r := bytes.NewReader(in)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	var s llm.EventStream
	for i := 0; i < b.N; i++ {
		if i%n == 0 {
			r.Reset(in)
			s = NewStreamDecoder(r)
			if _, err := s.Next(); err != nil { // start
				b.Fatal(err)
			}
		}
		ev, err := s.Next()
		if err != nil || ev.Kind != llm.EventText {
			b.Fatal(err)
		}
	}
}

// The allocation-light delta decoder agrees with encoding/json wherever it
// takes a payload.
func FuzzFastDelta(f *testing.F) {
	for _, s := range []string{
		`{"contentBlockIndex":0,"delta":{"text":"Hello "},"p":"abcdef"}`,
		`{"contentBlockIndex":3,"delta":{"toolUse":{"input":"{\"a\":"}}}`,
		`{"delta":{"text":"h\u00e9llo"},"contentBlockIndex":0}`,
		`{"contentBlockIndex":0,"delta":{"text":"a","text":"b"}}`,
		`{"contentBlockIndex":0,"Delta":{"text":"a"},"delta":{"text":"b"}}`,
		`{"contentBlockIndex":7,"delta":{"toolUse":{"input":"x"}}}`,
		`{"contentBlockIndex":5,"delta":{"toolUse":{"input":"{\"a\""}}}`,
		`{"contentBlockIndex":0,"delta":{"text":"a"}} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		fast := &StreamDecoder{tools: map[int]int{0: 0, 3: 1}, jsonBlock: 5}
		ok, handled := fast.fastDelta(p)
		if !handled {
			return
		}
		slow := &StreamDecoder{tools: map[int]int{0: 0, 3: 1}, jsonBlock: 5}
		ok2, err := slow.slowDelta(p)
		if err != nil || ok != ok2 || fast.ev.Kind != slow.ev.Kind || fast.ev.Tool != slow.ev.Tool || fast.ev.Text != slow.ev.Text {
			t.Fatalf("%s: fast %v %+v, slow %v %v %+v", p, ok, fast.ev, ok2, err, slow.ev)
		}
	})
}

// A JSON response format is a forced tool out, and text back.
func TestResponseFormatEmulated(t *testing.T) {
	r := &llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "Name a song."}}}},
		ResponseFormat: &llm.ResponseFormat{Type: "json_schema", Name: "song", Schema: json.RawMessage(`{"type":"object","properties":{"title":{"type":"string"}}}`)}}
	b, err := AppendConverseRequest(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	want := `"toolConfig":{"tools":[{"toolSpec":{"name":"sluice_json_response","description":"Give the answer as this tool's input: a JSON object matching its schema.",` +
		`"inputSchema":{"json":{"type":"object","properties":{"title":{"type":"string"}}}}}}],"toolChoice":{"tool":{"name":"sluice_json_response"}}}`
	if !bytes.Contains(b, []byte(want)) || !json.Valid(b) {
		t.Fatalf("body %s", b)
	}
	r.ResponseFormat = &llm.ResponseFormat{Type: "json_object"}
	if b, _ = AppendConverseRequest(nil, r); !bytes.Contains(b, []byte(`"inputSchema":{"json":{"type":"object"}}`)) {
		t.Fatalf("json_object: %s", b)
	}

	resp, lerr := DecodeConverseResponse([]byte(`{"output":{"message":{"role":"assistant","content":[{"toolUse":{"toolUseId":"t","name":"sluice_json_response","input":{"title":"Wannabe"}}}]}},"stopReason":"tool_use"}`))
	if lerr != nil {
		t.Fatal(lerr)
	}
	ch := resp.Choices[0]
	if ch.FinishReason != "stop" || len(ch.Message.ToolCalls) != 0 || len(ch.Message.Content) != 1 || ch.Message.Content[0].Text != `{"title":"Wannabe"}` {
		t.Fatalf("answer %+v", ch)
	}

	var s []byte
	s = eventFrame(s, "messageStart", `{"role":"assistant"}`)
	s = eventFrame(s, "contentBlockStart", `{"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":"t","name":"sluice_json_response"}}}`)
	s = eventFrame(s, "contentBlockDelta", `{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{\"title\":"}}}`)
	s = eventFrame(s, "contentBlockDelta", `{"contentBlockIndex":0,"delta":{"toolUse":{"input":" \"Wannabe\"}"}}}`)
	s = eventFrame(s, "contentBlockStop", `{"contentBlockIndex":0}`)
	s = eventFrame(s, "messageStop", `{"stopReason":"tool_use"}`)
	got, err2 := collect(NewStreamDecoder(bytes.NewReader(s)))
	if err2 != io.EOF || strings.Join(got, "|") != `start|text {"title":|text  "Wannabe"}|finish stop` {
		t.Fatalf("stream %q %v", got, err2)
	}
}
