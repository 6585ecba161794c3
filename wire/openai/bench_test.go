package openai

import (
	"bytes"
	"io"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

// A typical text chunk, as OpenAI sends it.
const benchChunk = `data: {"id":"chatcmpl-A3Tguz3LSXTHBTY2NAPBCSyfBltxF","object":"chat.completion.chunk","created":1725392480,"model":"gpt-4o-2024-05-13","system_fingerprint":"fp_157b3831f5","choices":[{"index":0,"delta":{"content":" journey"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n"

// repeatReader serves the same bytes forever.
type repeatReader struct {
	b []byte
	i int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.i:])
		n += c
		r.i = (r.i + c) % len(r.b)
	}
	return n, nil
}

// BenchmarkStreamDecoderChunk is the cost of one text chunk, from SSE
// bytes to a neutral EventText.
func BenchmarkStreamDecoderChunk(b *testing.B) {
	first := `data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}` + "\n\n"
	d := NewStreamDecoder(io.MultiReader(bytes.NewReader([]byte(first)), &repeatReader{b: []byte(benchChunk)}))
	if ev, err := d.Next(); err != nil || ev.Kind != llm.EventStart {
		b.Fatal(ev, err)
	}
	b.SetBytes(int64(len(benchChunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ev, err := d.Next()
		if err != nil || ev.Kind != llm.EventText {
			b.Fatal(ev, err)
		}
	}
}

// BenchmarkStreamEncoderChunk is the cost of one neutral text event
// rendered as an OpenAI chunk.
func BenchmarkStreamEncoderChunk(b *testing.B) {
	enc := NewStreamEncoder("chatcmpl-A3Tguz3LSXTHBTY2NAPBCSyfBltxF", "gpt-4o-2024-05-13", 1725392480, true)
	ev := &llm.Event{Kind: llm.EventText, Text: " journey"}
	dst := enc.Encode(nil, &llm.Event{Kind: llm.EventStart})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		dst = enc.Encode(dst[:0], ev)
	}
	b.SetBytes(int64(len(dst)))
}

// BenchmarkStreamTranslateChunk is the whole translated hop of a chunk
// between two OpenAI speakers: decode and encode again.
func BenchmarkStreamTranslateChunk(b *testing.B) {
	d := NewStreamDecoder(&repeatReader{b: []byte(benchChunk)})
	enc := NewStreamEncoder("id", "m", 1, true)
	var dst []byte
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ev, err := d.Next()
		if err != nil {
			b.Fatal(err)
		}
		dst = enc.Encode(dst[:0], ev)
	}
}

func BenchmarkDecodeChatResponse(b *testing.B) {
	body := fixture(b, "chat_functions.response.json")
	b.ReportAllocs()
	for range b.N {
		if _, e := DecodeChatResponse(body); e != nil {
			b.Fatal(e)
		}
	}
}

func BenchmarkDecodeChatRequest(b *testing.B) {
	body := fixture(b, "chat_functions.request.json")
	b.ReportAllocs()
	for range b.N {
		if _, e := DecodeChatRequest(body); e != nil {
			b.Fatal(e)
		}
	}
}

// BenchmarkStreamDecoderToolChunk is the cost of one tool-call argument
// fragment.
func BenchmarkStreamDecoderToolChunk(b *testing.B) {
	const first = `data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}` + "\n\n"
	const frag = `data: {"id":"chatcmpl-A3Tguz3LSXTHBTY2NAPBCSyfBltxF","object":"chat.completion.chunk","created":1725392480,"model":"gpt-4o-2024-05-13","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\":\""}}]},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n"
	d := NewStreamDecoder(io.MultiReader(bytes.NewReader([]byte(first)), &repeatReader{b: []byte(frag)}))
	for range 2 {
		if _, err := d.Next(); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(frag)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ev, err := d.Next()
		if err != nil || ev.Kind != llm.EventToolArgs {
			b.Fatal(ev, err)
		}
	}
}
