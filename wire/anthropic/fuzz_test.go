package anthropic

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
	"github.com/sluice-ai/sluice/wire/sse"
)

func FuzzDecodeRequest(f *testing.F) {
	for _, name := range []string{"tooluse_request.json", "toolresult_request.json", "stream_text_tooluse_request.json"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte(`{"model":"m","max_tokens":1,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"assistant","content":[{"type":"redacted_thinking","data":"x"},{"type":"tool_use","id":"a","name":"b","input":{"c":[1]}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":[{"type":"image","source":{"type":"url","url":"u"}}]}]}],"tool_choice":{"type":"tool","name":"b"}}`))
	f.Add([]byte(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"\ud800 \u0000"}],"thinking":{"type":"enabled","budget_tokens":1024}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, e := DecodeRequest(body)
		if e != nil {
			if e.Status != 400 {
				t.Fatalf("status %d", e.Status)
			}
			return
		}
		out, e := AppendRequest(nil, r)
		if e != nil {
			return
		}
		if !jsonspan.Valid(out) {
			t.Fatalf("AppendRequest wrote invalid JSON %q", out)
		}
		if _, e := DecodeRequest(out); e != nil {
			t.Fatalf("re-decode: %v\n%s", e, out)
		}
	})
}

// openAIish is an OpenAI-like chat request, the fuzzer's way to build
// neutral requests of every shape.
type openAIish struct {
	Model    string `json:"model"`
	Messages []struct {
		Role       string   `json:"role"`
		Content    string   `json:"content"`
		Image      string   `json:"image"`
		Media      string   `json:"media"`
		Thinking   string   `json:"thinking"`
		Signature  string   `json:"signature"`
		Cache      bool     `json:"cache"`
		ToolCallID string   `json:"tool_call_id"`
		Calls      []string `json:"calls"` // arguments
	} `json:"messages"`
	Tools       []json.RawMessage `json:"tools"`
	ToolChoice  string            `json:"tool_choice"`
	N           int               `json:"n"`
	MaxTokens   int               `json:"max_tokens"`
	Temperature *float64          `json:"temperature"`
	Stop        []string          `json:"stop"`
	Format      string            `json:"format"`
	Effort      string            `json:"reasoning_effort"`
	Parallel    *bool             `json:"parallel_tool_calls"`
}

func (o *openAIish) neutral() *llm.ChatRequest {
	r := &llm.ChatRequest{Model: o.Model, N: o.N, MaxTokens: o.MaxTokens, Temperature: o.Temperature, Stop: o.Stop,
		ReasoningEffort: o.Effort, ParallelToolCalls: o.Parallel, ToolChoice: llm.ToolChoice{Mode: o.ToolChoice, Name: "f"}}
	if o.Format != "" {
		r.ResponseFormat = &llm.ResponseFormat{Type: o.Format}
	}
	for i, t := range o.Tools {
		r.Tools = append(r.Tools, llm.Tool{Name: "f" + strings.Repeat("x", i), Parameters: t})
	}
	for _, m := range o.Messages {
		nm := llm.Message{Role: llm.Role(m.Role), ToolCallID: m.ToolCallID}
		if m.Content != "" || m.Cache {
			nm.Content = append(nm.Content, llm.Part{Type: llm.PartText, Text: m.Content, CacheControl: m.Cache})
		}
		if m.Image != "" || m.Media != "" {
			im := &llm.Image{URL: m.Image}
			if m.Media != "" {
				im = &llm.Image{Data: m.Image, MediaType: m.Media}
			}
			nm.Content = append(nm.Content, llm.Part{Type: llm.PartImage, Image: im})
		}
		if m.Thinking != "" || m.Signature != "" {
			nm.Content = append(nm.Content, llm.Part{Type: llm.PartThinking, Text: m.Thinking, Signature: m.Signature})
		}
		for i, a := range m.Calls {
			nm.ToolCalls = append(nm.ToolCalls, llm.ToolCall{ID: "c" + strings.Repeat("i", i), Name: "f", Arguments: a})
		}
		r.Messages = append(r.Messages, nm)
	}
	return r
}

func FuzzAppendRequest(f *testing.F) {
	f.Add([]byte(`{"model":"gpt","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi","image":"https://x"},{"role":"assistant","calls":["{\"a\":1}",""]},{"role":"tool","tool_call_id":"c","content":"r"},{"role":"tool","tool_call_id":"ci","content":"r2"},{"role":"user","content":"q","cache":true}],"tools":[{"type":"object"},null],"tool_choice":"required","parallel_tool_calls":false,"stop":["x"]}`))
	f.Add([]byte(`{"model":"gpt","n":2,"messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"model":"gpt","format":"json_schema","messages":[{"role":"assistant","thinking":"t","signature":"s"},{"role":"assistant","signature":"r"}]}`))
	f.Add([]byte(`{"model":"gpt","reasoning_effort":"high","messages":[{"role":"user","image":"AAAA","media":"image/png"},{"role":"developer","content":"x"}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var o openAIish
		if json.Unmarshal(in, &o) != nil {
			return
		}
		r := o.neutral()
		out, e := AppendRequest(nil, r)
		if e != nil {
			if e.Status != 400 || e.Message == "" {
				t.Fatalf("%+v", e)
			}
			return
		}
		if !jsonspan.Valid(out) {
			t.Fatalf("invalid JSON %q", out)
		}
		back, e := DecodeRequest(out)
		if e != nil {
			t.Fatalf("Anthropic would not take it: %v\n%s", e, out)
		}
		// Nothing of the conversation's tool calls is lost.
		calls := 0
		for _, m := range r.Messages {
			if m.Role == llm.RoleAssistant {
				calls += len(m.ToolCalls)
			}
		}
		got := 0
		for _, m := range back.Messages {
			got += len(m.ToolCalls)
		}
		if got != calls {
			t.Fatalf("%d tool calls became %d\n%s", calls, got, out)
		}
	})
}

func FuzzStreamDecoder(f *testing.F) {
	for _, name := range []string{"stream_text_tooluse.sse", "stream_thinking_refusal.sse", "stream_tooluse.sse"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1e9,\"content_block\":{\"type\":\"tool_use\"}}\n\n"))
	f.Add([]byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s := NewStreamDecoder(bytes.NewReader(body))
		// Each event is at least a few bytes: the stream must end long
		// before this many events.
		for i := 0; i <= 2*len(body)+4; i++ {
			ev, err := s.Next()
			if err != nil {
				if err != io.EOF {
					if _, ok := err.(*llm.Error); !ok {
						t.Fatalf("error of type %T", err)
					}
				}
				return
			}
			if ev.Kind == llm.EventToolStart && (ev.Tool < 0 || ev.Tool >= MaxToolCalls) {
				t.Fatalf("tool index %d", ev.Tool)
			}
		}
		t.Fatal("stream does not end")
	})
}

func FuzzSniffer(f *testing.F) {
	for _, name := range []string{"stream_text_tooluse.sse", "stream_thinking_refusal.sse"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte("data: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\"}}\n\n"))
	f.Add([]byte("event: message_delta\ndata: {\"usage\":{\"output_tokens\":1e400,\"input_tokens\":-3}}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var s Sniffer
		r := sse.NewReader(bytes.NewReader(body))
		for {
			data, name, _, err := r.Next()
			if err != nil {
				break
			}
			errV, st, _ := s.Event(name, data)
			if errV != nil && (st < 400 || st > 599) {
				t.Fatalf("status %d", st)
			}
		}
		_, _ = s.Usage()
		_, _ = ResponseUsage(body)
	})
}

// benchStream is a realistic long text stream: message_start, 1000 text
// deltas, the end.
func benchStream(n int) []byte {
	var b bytes.Buffer
	b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n")
	b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	for i := 0; i < n; i++ {
		b.WriteString("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello there, \"}}\n\n")
	}
	b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":1000}}\n\n")
	b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	return b.Bytes()
}

// BenchmarkStreamDecoderChunk is the cost of decoding one text delta event.
func BenchmarkStreamDecoderChunk(b *testing.B) {
	const n = 1000
	body := benchStream(n)
	b.ReportAllocs()
	b.SetBytes(int64(len(body) / n))
	rd := bytes.NewReader(body)
	for i := 0; i < b.N; i += n {
		rd.Reset(body)
		s := NewStreamDecoder(rd)
		for {
			if _, err := s.Next(); err != nil {
				break
			}
		}
	}
}

// BenchmarkStreamEncoderChunk is the cost of encoding one text event.
func BenchmarkStreamEncoderChunk(b *testing.B) {
	ev := llm.Event{Kind: llm.EventText, Text: "Hello there, "}
	enc := NewStreamEncoder("msg_01", "claude")
	buf := enc.Encode(nil, &llm.Event{Kind: llm.EventStart})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = enc.Encode(buf[:0], &ev)
	}
}

// BenchmarkSnifferEvent is the cost of sniffing one relayed event, over
// a realistic mix (mostly deltas, a start, a message_delta).
func BenchmarkSnifferEvent(b *testing.B) {
	body := benchStream(100)
	type evt struct{ name, data []byte }
	var evs []evt
	r := sse.NewReader(bytes.NewReader(body))
	for {
		data, name, _, err := r.Next()
		if err != nil {
			break
		}
		evs = append(evs, evt{append([]byte(nil), name...), append([]byte(nil), data...)})
	}
	b.ReportAllocs()
	var s Sniffer
	for i := 0; i < b.N; i++ {
		e := &evs[i%len(evs)]
		s.Event(e.name, e.data)
	}
}

// BenchmarkSnifferMessageDelta is the cost of the one event per stream
// the sniffer parses in full.
func BenchmarkSnifferMessageDelta(b *testing.B) {
	data := []byte(`{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":397,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":89}}`)
	name := []byte("message_delta")
	b.ReportAllocs()
	var s Sniffer
	for i := 0; i < b.N; i++ {
		s.Event(name, data)
	}
}

// FuzzMembers checks the closure-free member walk against
// jsonspan.EachMember: same members, same verdict.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{}`, ` { "a" : 1 , "b":[1,{"c":2}] } `, `{"a":1,}`, `{"a" 1}`, `{"a":}`, `[1]`, `{"a":"\"}"}`, `{"a":1 "b":2}`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want []string
		_, err := jsonspan.EachMember(b, func(key []byte, vs, ve int) error {
			want = append(want, string(key)+"="+string(b[vs:ve]))
			return nil
		})
		var got []string
		it := newMembers(b)
		for it.next() {
			got = append(got, string(it.key)+"="+string(it.val))
		}
		if (err == nil) != it.ok() {
			t.Fatalf("EachMember %v, members ok %v", err, it.ok())
		}
		if err == nil && strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("members %q, EachMember %q", got, want)
		}
	})
}
