package responses

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/responses"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/sse"
)

// encodeAll runs events through a new encoder and ends the stream with
// Finish(u), or Fail(fail) when fail is set.
func encodeAll(evs []llm.Event, u llm.Usage, fail *llm.Error) []byte {
	enc := NewStreamEncoder("chatcmpl-7xyz", "claude-x", 1741290958)
	var out []byte
	for i := range evs {
		out = enc.Encode(out, &evs[i])
	}
	if fail != nil {
		return enc.Fail(out, fail)
	}
	return enc.Finish(out, u)
}

// sdkEvents parses a stream with the openai-go SDK's own SSE decoder and
// event types, as a client would.
func sdkEvents(t *testing.T, body []byte) ([]responses.ResponseStreamEventUnion, error) {
	t.Helper()
	res := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: io.NopCloser(bytes.NewReader(body))}
	st := ssestream.NewStream[responses.ResponseStreamEventUnion](ssestream.NewDecoder(res), nil)
	var evs []responses.ResponseStreamEventUnion
	for st.Next() {
		evs = append(evs, st.Current())
	}
	return evs, st.Err()
}

// events splits a stream into (name, data) pairs with the gateway's SSE
// reader, checking each event's name equals its data's type.
func events(t testing.TB, body []byte) (names []string, datas [][]byte) {
	t.Helper()
	r := sse.NewReader(bytes.NewReader(body))
	for {
		data, name, _, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(data, &v); err != nil || v.Type != string(name) {
			t.Fatalf("event %q data %s (%v)", name, data, err)
		}
		names = append(names, string(name))
		datas = append(datas, bytes.Clone(data))
	}
}

func TestStreamEncoderTextMatchesDocumentedSequence(t *testing.T) {
	evs := []llm.Event{
		{Kind: llm.EventStart, ID: "x", Model: "m"},
		{Kind: llm.EventText, Text: "Hi"},
		{Kind: llm.EventText, Text: " there! How can I assist you today?"},
		{Kind: llm.EventFinish, FinishReason: "stop"},
		{Kind: llm.EventUsage, Usage: llm.Usage{PromptTokens: 37, CompletionTokens: 11}},
	}
	body := encodeAll(evs, llm.Usage{PromptTokens: 37, CompletionTokens: 11, CacheReadTokens: 3}, nil)
	names, datas := events(t, body)

	// The documented stream, event for event (its one delta stands for
	// several), and every member the documentation shows.
	docNames, docDatas := events(t, fixture(t, "stream_text.sse"))
	var squeezed []string
	for _, n := range names {
		if n == "response.output_text.delta" && len(squeezed) > 0 && squeezed[len(squeezed)-1] == n {
			continue
		}
		squeezed = append(squeezed, n)
	}
	if strings.Join(squeezed, " ") != strings.Join(docNames, " ") {
		t.Fatalf("events\n got %v\nwant %v", squeezed, docNames)
	}
	byName := map[string][]byte{}
	for i, n := range names {
		byName[n] = datas[i]
	}
	for i, n := range docNames {
		ours := byName[n]
		if m := missing(keys(t, ours), keys(t, docDatas[i])); len(m) > 0 {
			t.Errorf("%s lacks %v", n, m)
		}
		var doc, got map[string]json.RawMessage
		_ = json.Unmarshal(docDatas[i], &doc)
		_ = json.Unmarshal(ours, &got)
		for _, inner := range []string{"response", "item", "part"} {
			if doc[inner] != nil {
				if m := missing(keys(t, got[inner]), keys(t, doc[inner])); len(m) > 0 {
					t.Errorf("%s.%s lacks %v", n, inner, m)
				}
			}
		}
	}

	// The SDK reads every event as its typed variant, in sequence.
	sdk, err := sdkEvents(t, body)
	if err != nil {
		t.Fatal(err)
	}
	var deltas strings.Builder
	for i, ev := range sdk {
		if ev.SequenceNumber != int64(i) {
			t.Errorf("event %d has sequence_number %d", i, ev.SequenceNumber)
		}
		switch v := ev.AsAny().(type) {
		case responses.ResponseTextDeltaEvent:
			deltas.WriteString(v.Delta)
			if v.ItemID == "" || v.OutputIndex != 0 || v.ContentIndex != 0 {
				t.Errorf("delta %+v", v)
			}
		case responses.ResponseTextDoneEvent:
			if v.Text != "Hi there! How can I assist you today?" {
				t.Errorf("done text %q", v.Text)
			}
		case responses.ResponseCreatedEvent:
			if v.Response.ID != "resp_7xyz" || v.Response.Status != "in_progress" || v.Response.Model != "claude-x" {
				t.Errorf("created %+v", v.Response)
			}
		case responses.ResponseCompletedEvent:
			r := v.Response
			if r.Status != "completed" || r.OutputText() != "Hi there! How can I assist you today?" || r.ID != "resp_7xyz" {
				t.Errorf("completed %+v", r)
			}
			if r.Usage.InputTokens != 37 || r.Usage.OutputTokens != 11 || r.Usage.TotalTokens != 48 || r.Usage.InputTokensDetails.CachedTokens != 3 {
				t.Errorf("usage %+v", r.Usage)
			}
		case nil:
			t.Errorf("event %d: SDK does not know %q", i, ev.Type)
		}
	}
	if deltas.String() != "Hi there! How can I assist you today?" {
		t.Errorf("deltas %q", deltas.String())
	}
}

func TestStreamEncoderToolsAndReasoning(t *testing.T) {
	evs := []llm.Event{
		{Kind: llm.EventStart},
		{Kind: llm.EventThinking, Text: "Let me "},
		{Kind: llm.EventThinking, Text: "think."},
		{Kind: llm.EventThinking, Signature: "sig"},
		{Kind: llm.EventText, Text: "Checking."},
		{Kind: llm.EventToolStart, Tool: 0, ID: "call_a", Name: "get_weather"},
		{Kind: llm.EventToolArgs, Tool: 0, Text: `{"city":`},
		{Kind: llm.EventToolArgs, Tool: 0, Text: `"Paris"}`},
		{Kind: llm.EventToolEnd, Tool: 0},
		{Kind: llm.EventToolStart, Tool: 1, Name: "get_time"},
		{Kind: llm.EventToolArgs, Tool: 1, Text: `{}`},
		{Kind: llm.EventToolArgs, Tool: 0, Text: `ignored: tool 0 is closed`},
		{Kind: llm.EventText, Index: 1, Text: "choice 1 is not rendered"},
		{Kind: llm.EventFinish, FinishReason: "tool_calls"},
	}
	body := encodeAll(evs, llm.Usage{PromptTokens: 5, CompletionTokens: 9, ReasoningTokens: 4}, nil)
	sdk, err := sdkEvents(t, body)
	if err != nil {
		t.Fatal(err)
	}
	var final responses.Response
	var argsDone []string
	for _, ev := range sdk {
		switch v := ev.AsAny().(type) {
		case responses.ResponseFunctionCallArgumentsDoneEvent:
			argsDone = append(argsDone, v.Arguments)
		case responses.ResponseReasoningSummaryTextDoneEvent:
			if v.Text != "Let me think." {
				t.Errorf("summary %q", v.Text)
			}
		case responses.ResponseCompletedEvent:
			final = v.Response
		}
	}
	if strings.Join(argsDone, "|") != `{"city":"Paris"}|{}` {
		t.Errorf("arguments %q", argsDone)
	}
	if len(final.Output) != 4 {
		t.Fatalf("output %s", final.RawJSON())
	}
	types := []string{final.Output[0].Type, final.Output[1].Type, final.Output[2].Type, final.Output[3].Type}
	if strings.Join(types, " ") != "reasoning message function_call function_call" {
		t.Errorf("output types %v", types)
	}
	fc := final.Output[2].AsFunctionCall()
	if fc.CallID != "call_a" || fc.Name != "get_weather" || fc.Arguments != `{"city":"Paris"}` || fc.Status != "completed" {
		t.Errorf("call %+v", fc)
	}
	if fc2 := final.Output[3].AsFunctionCall(); fc2.CallID == "" || fc2.Name != "get_time" || fc2.Arguments != "{}" {
		t.Errorf("call 2 %+v", fc2)
	}
	if final.OutputText() != "Checking." || final.Usage.OutputTokensDetails.ReasoningTokens != 4 {
		t.Errorf("text %q usage %+v", final.OutputText(), final.Usage)
	}
	// output_index grows one per item; every added item is done once.
	names, datas := events(t, body)
	added, done := 0, 0
	for i, n := range names {
		var v struct {
			OutputIndex int `json:"output_index"`
		}
		_ = json.Unmarshal(datas[i], &v)
		switch n {
		case "response.output_item.added":
			if v.OutputIndex != added {
				t.Errorf("added output_index %d, want %d", v.OutputIndex, added)
			}
			added++
		case "response.output_item.done":
			done++
		}
	}
	if added != 4 || done != 4 {
		t.Errorf("added %d done %d", added, done)
	}
}

// TestStreamEncoderThinkingBlocks: a signature ends a thinking block and
// goes into its item's encrypted_content; a signature alone is a
// redacted block; the final output decodes back to the same parts.
func TestStreamEncoderThinkingBlocks(t *testing.T) {
	body := encodeAll([]llm.Event{
		{Kind: llm.EventThinking, Text: "one "},
		{Kind: llm.EventThinking, Text: "two"},
		{Kind: llm.EventThinking, Signature: "sigA"},
		{Kind: llm.EventThinking, Signature: "redactedB"},
		{Kind: llm.EventThinking, Text: "three"},
		{Kind: llm.EventThinking, Signature: "sigC"},
		{Kind: llm.EventToolStart, ID: "call_1", Name: "f"},
		{Kind: llm.EventToolArgs, Text: "{}"},
		{Kind: llm.EventFinish, FinishReason: "tool_calls"},
	}, llm.Usage{}, nil)
	sdk, err := sdkEvents(t, body)
	if err != nil {
		t.Fatal(err)
	}
	final := sdk[len(sdk)-1].AsResponseCompleted().Response
	var r struct{ Output []json.RawMessage }
	_ = json.Unmarshal([]byte(final.RawJSON()), &r)
	if len(r.Output) != 4 {
		t.Fatalf("output %s", final.RawJSON())
	}
	in, _ := json.Marshal(map[string]any{"model": "m", "input": r.Output})
	req, e := DecodeRequest(in)
	if e != nil {
		t.Fatal(e)
	}
	want := []llm.Message{{Role: llm.RoleAssistant, Content: []llm.Part{
		{Type: llm.PartThinking, Text: "one two", Signature: "sigA"},
		{Type: llm.PartThinking, Signature: "redactedB"},
		{Type: llm.PartThinking, Text: "three", Signature: "sigC"},
	}, ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "f", Arguments: "{}"}}}}
	if !reflect.DeepEqual(req.Messages, want) {
		t.Errorf("\n got %+v\nwant %+v", req.Messages, want)
	}
}

func TestStreamEncoderIncompleteAndLazyStart(t *testing.T) {
	// No EventStart: the first event opens the response.
	body := encodeAll([]llm.Event{{Kind: llm.EventText, Text: "cut"}, {Kind: llm.EventFinish, FinishReason: "length"}}, llm.Usage{}, nil)
	names, _ := events(t, body)
	if names[0] != "response.created" || names[1] != "response.in_progress" || names[len(names)-1] != "response.incomplete" {
		t.Errorf("events %v", names)
	}
	sdk, err := sdkEvents(t, body)
	if err != nil {
		t.Fatal(err)
	}
	last := sdk[len(sdk)-1].AsResponseIncomplete()
	if last.Response.Status != "incomplete" || last.Response.IncompleteDetails.Reason != "max_output_tokens" || last.Response.OutputText() != "cut" {
		t.Errorf("incomplete %+v", last.Response)
	}
	// EventStart alone writes nothing (an early upstream error can still
	// be retried); an empty answer still opens and completes.
	if out := NewStreamEncoder("x", "m", 1).Encode(nil, &llm.Event{Kind: llm.EventStart, ID: "x", Model: "m"}); len(out) != 0 {
		t.Errorf("EventStart wrote %s", out)
	}
	names, _ = events(t, encodeAll(nil, llm.Usage{}, nil))
	if strings.Join(names, " ") != "response.created response.in_progress response.completed" {
		t.Errorf("empty: %v", names)
	}
}

func TestStreamEncoderFail(t *testing.T) {
	e := llm.Errorf(llm.KindUpstream, "upstream anthropic reported an error: Overloaded")
	e.Code = "upstream_error"
	enc := NewStreamEncoder("x", "m", 1)
	var out []byte
	out = enc.Encode(out, &llm.Event{Kind: llm.EventStart})
	out = enc.Encode(out, &llm.Event{Kind: llm.EventText, Text: "partial"})
	out = enc.Fail(out, e)
	n := len(out)
	out = enc.Finish(out, llm.Usage{})                                // nothing after the end
	out = enc.Encode(out, &llm.Event{Kind: llm.EventText, Text: "x"}) // nor this
	out = enc.Fail(out, e)
	if len(out) != n {
		t.Errorf("bytes after the end: %s", out[n:])
	}
	names, _ := events(t, out)
	if names[len(names)-2] != "error" || names[len(names)-1] != "response.failed" {
		t.Fatalf("events %v", names)
	}
	sdk, err := sdkEvents(t, out)
	if err != nil {
		t.Fatal(err)
	}
	errEv := sdk[len(sdk)-2].AsError()
	if errEv.Code != "upstream_error" || errEv.Message != e.Message {
		t.Errorf("error event %+v", errEv)
	}
	failed := sdk[len(sdk)-1].AsResponseFailed()
	if failed.Response.Status != "failed" || failed.Response.Error.Code != "server_error" || failed.Response.Error.Message != e.Message {
		t.Errorf("failed %+v", failed.Response)
	}
	// Documented shape of both events.
	_, docDatas := events(t, fixture(t, "stream_failed.sse"))
	_, datas := events(t, out)
	if m := missing(keys(t, datas[len(datas)-2]), keys(t, docDatas[0])); len(m) > 0 {
		t.Errorf("error event lacks %v", m)
	}
	// An EventError renders as Fail; a rate limit has its own code.
	body := encodeAll([]llm.Event{{Kind: llm.EventError, Err: llm.Errorf(llm.KindRateLimited, "slow down")}}, llm.Usage{}, nil)
	sdk, _ = sdkEvents(t, body)
	if f := sdk[len(sdk)-1].AsResponseFailed(); f.Response.Error.Code != "rate_limit_exceeded" {
		t.Errorf("rate limit failed: %+v", f.Response.Error)
	}
}

// TestStreamEncoderHostile: tool indexes far apart allocate nothing
// for the gap, past MaxToolCalls calls are dropped, and the kept copy of
// endless text stops at MaxKeptBytes while the deltas still pass.
func TestStreamEncoderHostile(t *testing.T) {
	enc := NewStreamEncoder("x", "m", 1).(*encoder)
	var out []byte
	out = enc.Encode(out, &llm.Event{Kind: llm.EventToolStart, Tool: 1 << 30, Name: "f"})
	for i := 0; i < MaxToolCalls+10; i++ {
		out = enc.Encode(out[:0], &llm.Event{Kind: llm.EventToolArgs, Tool: i * 7, Text: "{}"})
	}
	if len(enc.tools) != MaxToolCalls || cap(enc.tools) > 4*MaxToolCalls {
		t.Errorf("%d tool calls kept (cap %d)", len(enc.tools), cap(enc.tools))
	}
	enc = NewStreamEncoder("x", "m", 1).(*encoder)
	if enc.keepMax != MaxKeptBytes {
		t.Fatalf("keepMax %d", enc.keepMax)
	}
	enc.keepMax = 1 << 20 // the bound at a cheaper size
	chunk := strings.Repeat("a", 1<<16)
	for i := 0; i < 20; i++ {
		out = enc.Encode(out[:0], &llm.Event{Kind: llm.EventText, Text: chunk})
		if !bytes.Contains(out, []byte(`"delta":"aaaa`)) {
			t.Fatal("delta not passed")
		}
	}
	if len(enc.openText) > enc.keepMax || len(enc.openText) < enc.keepMax-len(chunk) {
		t.Errorf("kept %d bytes", len(enc.openText))
	}
	out = enc.Finish(out[:0], llm.Usage{})
	if len(out) > 5*enc.keepMax+1<<12 {
		t.Errorf("final events %d bytes", len(out))
	}
	// Injected line breaks and quotes stay inside one JSON string.
	body := encodeAll([]llm.Event{{Kind: llm.EventText, Text: "a\n\ndata: {\"type\":\"x\"}\r\nevent: error\n"}, {Kind: llm.EventToolStart, Name: "n\nevent: x", ID: "i\r\n"}}, llm.Usage{}, nil)
	names, _ := events(t, body)
	for _, n := range names {
		if n == "x" || n == "error" {
			t.Errorf("injected event %q", n)
		}
	}
}

func FuzzStreamEncoder(f *testing.F) {
	f.Add([]byte{1, 2, 2, 3, 4, 5, 6, 7, 8}, "text", "name")
	f.Add([]byte{4, 5, 5, 2, 4, 6, 9}, "{\"a\":", "\xff\n")
	f.Add([]byte{3, 3, 2, 7, 8, 9}, "", "")
	f.Fuzz(func(t *testing.T, kinds []byte, s, name string) {
		enc := NewStreamEncoder(name, name, 1)
		var out []byte
		for i, k := range kinds {
			ev := llm.Event{Kind: llm.EventKind(k%9 + 1), Index: int(k>>7) & 1, Tool: int(k>>4) & 3, Text: s, Name: name, ID: name, FinishReason: name}
			if ev.Kind == llm.EventError {
				ev.Err = llm.Errorf(llm.KindUpstream, "%s", s)
			}
			out = enc.Encode(out, &ev)
			if i > 64 {
				break
			}
		}
		out = enc.Finish(out, llm.Usage{PromptTokens: len(s)})
		sdk, err := sdkEvents(t, out)
		if err != nil {
			t.Fatalf("SDK: %v\n%s", err, out)
		}
		last := sdk[len(sdk)-1].Type
		if last != "response.completed" && last != "response.incomplete" && last != "response.failed" {
			t.Fatalf("last event %q", last)
		}
		for i, ev := range sdk {
			if ev.SequenceNumber != int64(i) {
				t.Fatalf("sequence %d at %d", ev.SequenceNumber, i)
			}
		}
	})
}

// BenchmarkStreamEncoderChunk is the cost of one text chunk, in answers
// of 1000 chunks (their start and end amortised over them).
func BenchmarkStreamEncoderChunk(b *testing.B) {
	ev := llm.Event{Kind: llm.EventText, Text: " the quick brown fox"}
	out := make([]byte, 0, 4096)
	var enc llm.StreamEncoder
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n%1000 == 0 {
			if enc != nil {
				out = enc.Finish(out[:0], llm.Usage{})
			}
			enc = NewStreamEncoder("chatcmpl-abc", "m", 1)
		}
		n++
		out = enc.Encode(out[:0], &ev)
	}
}

// BenchmarkStreamEncoderToolArgs is the cost of one tool-argument chunk.
func BenchmarkStreamEncoderToolArgs(b *testing.B) {
	enc := NewStreamEncoder("chatcmpl-abc", "m", 1)
	ev := llm.Event{Kind: llm.EventToolArgs, Text: `"city": "Par`}
	out := enc.Encode(make([]byte, 0, 4096), &llm.Event{Kind: llm.EventToolStart, Name: "f", ID: "c"})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out = enc.Encode(out[:0], &ev)
	}
}
