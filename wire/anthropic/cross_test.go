package anthropic

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/jsonspan"
	"github.com/sluice-ai/sluice/wire/openai"
)

// Both lanes across families: an OpenAI client in front of Anthropic, an
// Anthropic client in front of an OpenAI upstream.

const openAIChat = `{"model":"gpt-4o","messages":[
 {"role":"system","content":"You are terse."},
 {"role":"user","content":[{"type":"text","text":"Weather in SF?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
 {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"SF\"}"}}]},
 {"role":"tool","tool_call_id":"call_1","content":"68F"},
 {"role":"user","content":"thanks"}],
 "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
 "tool_choice":"required","parallel_tool_calls":false,"max_tokens":300,"stop":["END"],"user":"u-1","seed":7,"presence_penalty":0.5,"stream":true}`

func TestOpenAIRequestToAnthropic(t *testing.T) {
	r, e := openai.DecodeChatRequest([]byte(openAIChat))
	if e != nil {
		t.Fatal(e)
	}
	out, e := AppendRequest(nil, r)
	if e != nil {
		t.Fatal(e)
	}
	want := `{"model":"gpt-4o","max_tokens":300,"system":"You are terse.","messages":[` +
		`{"role":"user","content":[{"type":"text","text":"Weather in SF?"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},` +
		`{"role":"assistant","content":[{"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"SF"}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"68F"},{"type":"text","text":"thanks"}]}],` +
		`"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],` +
		`"tool_choice":{"type":"any","disable_parallel_tool_use":true},"stop_sequences":["END"],"metadata":{"user_id":"u-1"},"stream":true}`
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

// Anthropic's recorded stream, rendered for an OpenAI client.
func TestAnthropicStreamToOpenAI(t *testing.T) {
	s := NewStreamDecoder(bytes.NewReader(fixture(t, "stream_text_tooluse.sse")))
	enc := openai.NewStreamEncoder("chatcmpl-1", "claude", 1700000000, true)
	var out []byte
	var u llm.Usage
	for {
		ev, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == llm.EventUsage {
			u = ev.Usage
		}
		out = enc.Encode(out, ev)
	}
	out = enc.Finish(out, u)
	// Read back with the OpenAI decoder.
	evs, err := drain(t, openai.NewStreamDecoder(bytes.NewReader(out)))
	if err != io.EOF {
		t.Fatalf("%v\n%s", err, out)
	}
	got := summarize(evs)
	if !strings.HasPrefix(got.Text, "I'll get the current weather") || len(got.Tools) != 1 ||
		got.Tools[0].Arguments != `{"city": "San Francisco", "units": "fahrenheit"}` || got.Finish != llm.FinishToolCalls ||
		got.Usage.PromptTokens != 397 || got.Usage.CompletionTokens != 89 {
		t.Errorf("%+v\n%s", got, out)
	}
}

// An OpenAI stream (as the OpenAI encoder writes it) rendered for an
// Anthropic client, checked against the documented order and re-read.
func TestOpenAIStreamToAnthropic(t *testing.T) {
	oenc := openai.NewStreamEncoder("chatcmpl-1", "gpt-4o", 1700000000, true)
	var up []byte
	for _, ev := range []llm.Event{
		{Kind: llm.EventStart, ID: "chatcmpl-1", Model: "gpt-4o"},
		{Kind: llm.EventText, Text: "Let me check."},
		{Kind: llm.EventToolStart, Tool: 0, ID: "call_a", Name: "f"},
		{Kind: llm.EventToolArgs, Tool: 0, Text: `{"x":`},
		{Kind: llm.EventToolArgs, Tool: 0, Text: `1}`},
		{Kind: llm.EventToolStart, Tool: 1, ID: "call_b", Name: "g"},
		{Kind: llm.EventToolArgs, Tool: 1, Text: `{}`},
		{Kind: llm.EventFinish, FinishReason: llm.FinishToolCalls},
	} {
		up = oenc.Encode(up, &ev)
	}
	up = oenc.Finish(up, llm.Usage{PromptTokens: 20, CompletionTokens: 9, CacheReadTokens: 5})

	s := openai.NewStreamDecoder(bytes.NewReader(up))
	enc := NewStreamEncoder("msg_gw", "gpt-4o")
	var out []byte
	var u llm.Usage
	for {
		ev, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == llm.EventUsage {
			u = ev.Usage
		}
		out = enc.Encode(out, ev)
	}
	out = enc.Finish(out, u)
	names, datas := events(t, out)
	checkOrder(t, names, datas)
	evs, err := drain(t, NewStreamDecoder(bytes.NewReader(out)))
	if err != io.EOF {
		t.Fatal(err)
	}
	got := summarize(evs)
	if got.Text != "Let me check." || len(got.Tools) != 2 || got.Tools[0].Arguments != `{"x":1}` || got.Tools[1].Arguments != `{}` ||
		got.Finish != llm.FinishToolCalls || got.Usage != (llm.Usage{PromptTokens: 20, CompletionTokens: 9, CacheReadTokens: 5}) {
		t.Errorf("%+v\n%s", got, out)
	}
}

// FuzzAppendRequestFromOpenAI feeds OpenAI chat requests, decoded by the
// OpenAI codec, to AppendRequest: a 400 or a body Anthropic's shape takes.
func FuzzAppendRequestFromOpenAI(f *testing.F) {
	f.Add([]byte(openAIChat))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"n":2}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"developer","content":"a"},{"role":"user","content":"b"},{"role":"system","content":"c"}],"reasoning_effort":"high"}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"x","type":"function","function":{"name":"f","arguments":"not json"}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, e := openai.DecodeChatRequest(body)
		if e != nil {
			return
		}
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
		if _, e := DecodeRequest(out); e != nil {
			t.Fatalf("Anthropic's shape refused: %v\n%s", e, out)
		}
	})
}
