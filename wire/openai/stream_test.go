package openai

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

// collect reads every event of s (copied) and the error that ended it.
func collect(s llm.EventStream) ([]llm.Event, error) {
	var evs []llm.Event
	for range 1 << 20 {
		ev, err := s.Next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev.Clone())
	}
	return evs, errors.New("endless")
}

// answer assembles events the way a client would.
type answer struct {
	id, model, text, thinking, finish string
	tools                             map[int]*llm.ToolCall
	ended                             map[int]bool
	usage                             llm.Usage
	usages                            int
	err                               *llm.Error
}

func assemble(t *testing.T, evs []llm.Event) *answer {
	t.Helper()
	a := &answer{tools: map[int]*llm.ToolCall{}, ended: map[int]bool{}}
	for i, ev := range evs {
		if (i == 0) != (ev.Kind == llm.EventStart) && ev.Kind != llm.EventError {
			t.Fatalf("event %d is %d", i, ev.Kind)
		}
		switch ev.Kind {
		case llm.EventStart:
			a.id, a.model = ev.ID, ev.Model
		case llm.EventText:
			a.text += ev.Text
		case llm.EventThinking:
			a.thinking += ev.Text
		case llm.EventToolStart:
			if a.tools[ev.Tool] != nil {
				t.Fatalf("tool %d started twice", ev.Tool)
			}
			a.tools[ev.Tool] = &llm.ToolCall{ID: ev.ID, Name: ev.Name}
		case llm.EventToolArgs:
			if a.tools[ev.Tool] == nil || a.ended[ev.Tool] {
				t.Fatalf("args of tool %d outside its call", ev.Tool)
			}
			a.tools[ev.Tool].Arguments += ev.Text
		case llm.EventToolEnd:
			if a.tools[ev.Tool] == nil || a.ended[ev.Tool] {
				t.Fatalf("end of tool %d outside its call", ev.Tool)
			}
			a.ended[ev.Tool] = true
		case llm.EventFinish:
			if a.finish != "" {
				t.Fatalf("choice finished twice")
			}
			a.finish = ev.FinishReason
		case llm.EventUsage:
			a.usage = ev.Usage
			a.usages++
		case llm.EventError:
			a.err = ev.Err
		}
	}
	return a
}

const santorini = `Let's take a journey to the beautiful island of Santorini in Greece.

Santorini is a gem in the Aegean Sea, known for its stunning sunsets, white-washed buildings, and crystal-clear waters. The island's rugged landscape is the result of a volcanic eruption that took place around 3,600 years ago, which gave Santorini its distinct caldera. When you visit the island, you can't miss the picturesque town of Oia, perched high on the cliffs with its narrow streets, blue-domed churches, and panoramic views of the sea. Fira, the island's capital, is buzzing with life, offering a variety of shops, restaurants, and cafes. Don't forget to explore the archaeological site of Akrotiri, an ancient Minoan city preserved in volcanic ash, often referred to as the "Pompeii of the Aegean."

Now, let's check the weather in Santorini.`

// The openai-go SDK's recorded stream: text, a tool call in argument
// fragments, the finish, two usage chunks, [DONE].
func TestStreamDecoderFixture(t *testing.T) {
	evs, err := collect(NewStreamDecoder(strings.NewReader(string(fixture(t, "stream_tool_call.sse")))))
	if err != io.EOF {
		t.Fatal(err)
	}
	a := assemble(t, evs)
	if a.id != "chatcmpl-A3Tguz3LSXTHBTY2NAPBCSyfBltxF" || a.model != "gpt-4o-2024-05-13" || a.text != santorini || a.finish != "tool_calls" {
		t.Fatalf("%+v", a)
	}
	if len(a.tools) != 1 || *a.tools[0] != (llm.ToolCall{ID: a.tools[0].ID, Name: "get_weather", Arguments: `{"location":"Santorini, Greece"}`}) || a.tools[0].ID == "" || !a.ended[0] {
		t.Fatalf("tool %+v", a.tools[0])
	}
	// The last usage counts.
	if a.usages != 2 || a.usage != (llm.Usage{PromptTokens: 0, CompletionTokens: 50, CacheReadTokens: 10, ReasoningTokens: 3}) {
		t.Fatalf("usage %+v (%d)", a.usage, a.usages)
	}
	// The tool call ends before the finish.
	for i, ev := range evs {
		if ev.Kind == llm.EventFinish && evs[i-1].Kind != llm.EventToolEnd {
			t.Fatalf("finish after %d", evs[i-1].Kind)
		}
	}
}

// Encoding the decoded events and decoding them again gives the same
// answer; the encoder's chunks have the documented shape.
func TestStreamRoundTrip(t *testing.T) {
	evs, _ := collect(NewStreamDecoder(strings.NewReader(string(fixture(t, "stream_tool_call.sse")))))
	enc := NewStreamEncoder("chatcmpl-A3Tguz3LSXTHBTY2NAPBCSyfBltxF", "gpt-4o-2024-05-13", 1725392480, true)
	var out []byte
	var u llm.Usage
	for i := range evs {
		out = enc.Encode(out, &evs[i])
		if evs[i].Kind == llm.EventUsage {
			u = evs[i].Usage
		}
	}
	out = enc.Finish(out, u)
	s := string(out)
	if !strings.HasPrefix(s, `data: {"id":"chatcmpl-A3Tguz3LSXTHBTY2NAPBCSyfBltxF","object":"chat.completion.chunk","created":1725392480,"model":"gpt-4o-2024-05-13","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}`+"\n\n") ||
		!strings.Contains(s, `"delta":{"tool_calls":[{"index":0,"id":"call_`) ||
		!strings.Contains(s, `"choices":[],"usage":{"prompt_tokens":0,"completion_tokens":50,"total_tokens":50,"prompt_tokens_details":{"cached_tokens":10},"completion_tokens_details":{"reasoning_tokens":3}}}`+"\n\ndata: [DONE]\n\n") {
		t.Fatalf("%s", s)
	}
	evs2, err := collect(NewStreamDecoder(strings.NewReader(s)))
	if err != io.EOF {
		t.Fatal(err)
	}
	a, b := assemble(t, evs), assemble(t, evs2)
	b.usages = a.usages
	ta, tb := *a.tools[0], *b.tools[0]
	a.tools, b.tools = nil, nil
	if fmt.Sprint(a) != fmt.Sprint(b) || ta != tb {
		t.Fatalf("\n%+v\n%+v", a, b)
	}
}

// Neutral tool indexes may be sparse or hostile: OpenAI's are 0..n-1 in
// order of appearance; unbounded ones are dropped.
func TestStreamEncoderToolIndexes(t *testing.T) {
	enc := NewStreamEncoder("id", "m", 1, false)
	var out []byte
	for _, ev := range []llm.Event{
		{Kind: llm.EventStart},
		{Kind: llm.EventToolStart, Tool: 1 << 40, ID: "a", Name: "f"},
		{Kind: llm.EventToolStart, Tool: 7, ID: "b", Name: "g"},
		{Kind: llm.EventToolArgs, Tool: 1 << 40, Text: `{}`},
		{Kind: llm.EventToolArgs, Tool: 7, Text: `{"x"`},
		{Kind: llm.EventToolEnd, Tool: 7},
		{Kind: llm.EventText, Index: 1 << 30, Text: "dropped"},
		{Kind: llm.EventThinking, Text: "hm"},
		{Kind: llm.EventFinish, FinishReason: "tool_calls"},
	} {
		out = enc.Encode(out, &ev)
	}
	out = enc.Finish(out, llm.Usage{})
	want := `data: {"id":"id","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}

data: {"id":"id","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":""}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"id","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","type":"function","function":{"name":"g","arguments":""}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"id","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"id","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"x\""}}]},"logprobs":null,"finish_reason":null}]}

data: {"id":"id","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"reasoning_content":"hm"},"logprobs":null,"finish_reason":null}]}

data: {"id":"id","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}

data: [DONE]

`
	if string(out) != want {
		t.Fatalf("got\n%s", out)
	}
	// At most MaxToolCalls per choice.
	enc = NewStreamEncoder("id", "m", 1, false)
	out = out[:0]
	for i := range MaxToolCalls + 5 {
		out = enc.Encode(out, &llm.Event{Kind: llm.EventToolStart, Tool: i})
	}
	if n := strings.Count(string(out), "data: "); n != MaxToolCalls {
		t.Fatalf("%d chunks", n)
	}
	e := llm.Errorf(llm.KindUpstream, "gone")
	if got := string(enc.Fail(nil, e)); got != `data: {"error":{"message":"gone","type":"upstream_error","param":null,"code":"upstream_error"}}`+"\n\n" {
		t.Fatal(got)
	}
}

func chunk(body string) string {
	return `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[` + body + "]}\n\n"
}

func TestStreamDecoderEdges(t *testing.T) {
	for _, c := range []struct {
		name, stream string
		err          string // "" for io.EOF
		check        func(*answer) bool
	}{
		{"reasoning", chunk(`{"index":0,"delta":{"role":"assistant","reasoning_content":"r1"}}`) + chunk(`{"index":0,"delta":{"reasoning":"r2","content":"hi"}}`) +
			chunk(`{"index":0,"delta":{},"finish_reason":"stop"}`) + "data: [DONE]\n\n", "",
			func(a *answer) bool { return a.thinking == "r1r2" && a.text == "hi" && a.finish == "stop" }},
		{"EOF after finish", chunk(`{"index":0,"delta":{"content":"a"},"finish_reason":"length"}`), "",
			func(a *answer) bool { return a.finish == "length" }},
		{"keepalives and unknown events", ": ping\n\nevent: ping\ndata: {}\n\n" + chunk(`{"delta":{"content":"a"},"finish_reason":"stop"}`), "",
			func(a *answer) bool { return a.text == "a" }},
		{"usage on a chunk with choices, choices null", chunk(`{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}`) +
			`data: {"id":"c","choices":null,"usage":{"prompt_tokens":3,"completion_tokens":4}}` + "\n\ndata: [DONE]\n\n", "",
			func(a *answer) bool { return a.usage.PromptTokens == 3 && a.usage.CompletionTokens == 4 }},
		{"tool calls without index (and parallel)", chunk(`{"index":0,"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{"}},{"id":"b","function":{"name":"g","arguments":"{}"}}]}}`) +
			chunk(`{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"}"}}]}}`) + chunk(`{"index":0,"delta":{},"finish_reason":"tool_calls"}`), "",
			func(a *answer) bool {
				return len(a.tools) == 2 && a.tools[0].Arguments == "{" && a.tools[1].Arguments == "{}}" && a.ended[0] && a.ended[1]
			}},
		{"tool call ended by [DONE] without finish", chunk(`{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{}"}}]}}`) + "data: [DONE]\n\n", "",
			func(a *answer) bool { return a.ended[0] && a.finish == "" }},
		{"error member", chunk(`{"index":0,"delta":{"content":"a"}}`) + `data: {"error":{"message":"overloaded","code":503}}` + "\n\n" + chunk(`{"delta":{"content":"never"}}`), "",
			func(a *answer) bool {
				return a.err != nil && a.err.UpstreamStatus == 503 && a.err.Message == "overloaded" && a.text == "a"
			}},
		{"vLLM error chunk", `data: {"object":"error","message":"bad prompt","type":"BadRequestError","param":null,"code":400}` + "\n\n", "",
			func(a *answer) bool {
				return a.err != nil && a.err.UpstreamStatus == 400 && a.err.Type == "BadRequestError"
			}},
		{"error event", "event: error\ndata: {\"error\":{\"message\":\"m\",\"type\":\"server_error\"}}\n\n", "",
			func(a *answer) bool {
				return a.err != nil && a.err.Message == "m" && a.err.Status == 502 && a.err.UpstreamStatus == 0
			}},
		{"finish repeated on the usage chunk", chunk(`{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}`) +
			`data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}` + "\n\n", "",
			func(a *answer) bool { return a.finish == "stop" && a.usages == 1 }},
		{"EOF before finish", chunk(`{"index":0,"delta":{"content":"a"}}`), "ended before the answer finished", nil},
		{"empty body", "", "ended before the answer finished", nil},
		{"cut mid-event", chunk(`{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}`) + `data: {"id"`, "cut in the middle", nil},
		{"malformed JSON", `data: {"choices":[}` + "\n\n", "not a JSON object", nil},
		{"not an object", "data: [1]\n\n", "not a JSON object", nil},
		{"huge choice index", chunk(`{"index":1000000000,"delta":{"content":"a"}}`), "choice index out of range", nil},
		{"huge tool index", chunk(`{"index":0,"delta":{"tool_calls":[{"index":128,"id":"x"}]}}`), "tool call index out of range", nil},
		{"negative tool index", chunk(`{"index":0,"delta":{"tool_calls":[{"index":-1,"id":"x"}]}}`), "tool call index out of range", nil},
		{"too many choices", chunk(strings.Repeat(`{"delta":{}},`, MaxChoices) + `{"delta":{}}`), "more than 128 choices", nil},
		{"too many tools without index", chunk(`{"index":0,"delta":{"tool_calls":[`+strings.Repeat(`{"id":"x"},`, 100)+`{"id":"x"}]}}`) +
			chunk(`{"index":0,"delta":{"tool_calls":[`+strings.Repeat(`{"id":"x"},`, 100)+`{"id":"x"}]}}`), "more than 128 tool calls", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			evs, err := collect(NewStreamDecoder(strings.NewReader(c.stream)))
			if c.err == "" {
				if err != io.EOF {
					t.Fatalf("%v", err)
				}
				if a := assemble(t, evs); !c.check(a) {
					t.Fatalf("%+v", a)
				}
				return
			}
			var e *llm.Error
			if !errors.As(err, &e) || e.Kind != llm.KindUpstream || !strings.Contains(e.Message, c.err) {
				t.Fatalf("%v, want %q", err, c.err)
			}
		})
	}
}

// An upstream that streams deltas forever costs memory per event, not
// per stream.
func TestStreamDecoderEndless(t *testing.T) {
	r, w := io.Pipe()
	go func() {
		line := []byte(chunk(`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"xxxxxxxx"}}]}}`))
		for {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	}()
	d := NewStreamDecoder(r)
	for range 200000 {
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if sd := d.(*streamDecoder); cap(sd.queue) > 16 || len(sd.choices) != 1 {
		t.Fatalf("queue %d choices %d", cap(sd.queue), len(sd.choices))
	}
	d.Close()
	r.Close()
	if _, err := d.Next(); err != io.EOF {
		t.Fatal(err)
	}
}

func FuzzStreamDecoder(f *testing.F) {
	f.Add(fixture(f, "stream_tool_call.sse"))
	f.Add([]byte(chunk(`{"index":0,"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{"}}]},"finish_reason":"tool_calls"}`) + "data: [DONE]\n\n"))
	f.Add([]byte("event: error\ndata: {\"error\":{\"message\":\"m\",\"code\":\"429\"}}\n\n"))
	f.Add([]byte(`data: {"choices":[{"index":0.0,"delta":{"reasoning":"\ud83d\ude00"}}],"usage":{"prompt_tokens":1}}` + "\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewStreamDecoder(strings.NewReader(string(b)))
		enc := NewStreamEncoder("id", "m", 1, true)
		var out []byte
		for range len(b) + 10 {
			ev, err := d.Next()
			if err != nil {
				if err != io.EOF {
					var e *llm.Error
					if !errors.As(err, &e) {
						t.Fatalf("not an *llm.Error: %v", err)
					}
				}
				return
			}
			if ev.Index < 0 || ev.Index >= MaxChoices || ev.Tool < 0 || ev.Tool >= MaxToolCalls {
				t.Fatalf("index %d tool %d", ev.Index, ev.Tool)
			}
			out = enc.Encode(out[:0], ev)
		}
		t.Fatal("more events than bytes")
	})
}

// Two choices, interleaved: each gets its role once, its own tool
// numbering, and its finish; the decoder reads them back apart.
func TestStreamChoices(t *testing.T) {
	enc := NewStreamEncoder("id", "m", 1, false)
	var out []byte
	for _, ev := range []llm.Event{
		{Kind: llm.EventStart},
		{Kind: llm.EventText, Index: 1, Text: "b"},
		{Kind: llm.EventText, Index: 0, Text: "a"},
		{Kind: llm.EventToolStart, Index: 1, Tool: 3, ID: "t", Name: "f"},
		{Kind: llm.EventToolArgs, Index: 1, Tool: 3, Text: "{}"},
		{Kind: llm.EventFinish, Index: 0, FinishReason: "length"},
		{Kind: llm.EventFinish, Index: 1, FinishReason: "tool_calls"},
	} {
		out = enc.Encode(out, &ev)
	}
	out = enc.Finish(out, llm.Usage{})
	if n := strings.Count(string(out), `"role":"assistant"`); n != 2 {
		t.Fatalf("%d roles in\n%s", n, out)
	}
	evs, err := collect(NewStreamDecoder(strings.NewReader(string(out))))
	if err != io.EOF {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		switch ev.Kind {
		case llm.EventText:
			got = append(got, fmt.Sprintf("text %d %s", ev.Index, ev.Text))
		case llm.EventToolStart:
			got = append(got, fmt.Sprintf("tool %d.%d %s %s", ev.Index, ev.Tool, ev.ID, ev.Name))
		case llm.EventToolArgs:
			got = append(got, fmt.Sprintf("args %d.%d %s", ev.Index, ev.Tool, ev.Text))
		case llm.EventToolEnd:
			got = append(got, fmt.Sprintf("end %d.%d", ev.Index, ev.Tool))
		case llm.EventFinish:
			got = append(got, fmt.Sprintf("finish %d %s", ev.Index, ev.FinishReason))
		}
	}
	want := "text 1 b|text 0 a|tool 1.0 t f|args 1.0 {}|finish 0 length|end 1.0|finish 1 tool_calls"
	if strings.Join(got, "|") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, "|"), want)
	}
}

// The delta strings of one chunk (reasoning, content, refusal, tool
// arguments) share a buffer the decoder reuses from one read to the next:
// each is right when returned, even when the buffer grew between two of
// them, and a delta costs no allocation.
func TestStreamDecoderDeltasAllocateNothing(t *testing.T) {
	long := strings.Repeat("é", 3000) // grows the buffer mid-chunk
	chunk := `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"reasoning_content":"think\n","content":"` + long + `","refusal":"no \"way\"","tool_calls":[{"index":0,"id":"t","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]},"finish_reason":null}]}`
	body := "data: " + chunk + "\n\ndata: " + chunk + "\n\ndata: [DONE]\n\n"
	d := NewStreamDecoder(strings.NewReader(body))
	var texts []string
	for {
		ev, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == llm.EventThinking || ev.Kind == llm.EventText || ev.Kind == llm.EventToolArgs {
			texts = append(texts, strings.Clone(ev.Text))
		}
	}
	want := []string{"think\n", long, `no "way"`, `{"a":`, "think\n", long, `no "way"`, `{"a":`}
	if fmt.Sprint(texts) != fmt.Sprint(want) {
		t.Fatalf("texts %q", texts)
	}

	stream := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w\\u00e9rd %d\\n\"},\"finish_reason\":null}]}\n\n", i)
		}
		b.WriteString("data: [DONE]\n\n")
		return b.String()
	}
	allocs := func(n int) float64 {
		body := stream(n)
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
		t.Errorf("%.3f allocations per chunk (%v for 10 chunks, %v for 2,010)", per, few, many)
	}
}
