package router

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/anthropic"
	"github.com/sluice-ai/sluice/wire/bedrock"
	"github.com/sluice-ai/sluice/wire/gemini"
	"github.com/sluice-ai/sluice/wire/jsonspan"
	"github.com/sluice-ai/sluice/wire/openai"
	"github.com/sluice-ai/sluice/wire/responses"
	"github.com/sluice-ai/sluice/wire/sse"
)

// The translated lane is an outbound family's decoder feeding an inbound
// dialect's encoder. FuzzTranslateStream drives every pair (4 upstream
// families × 3 client dialects) with the same bytes: whatever an upstream
// sends, no pair panics or takes superlinear time, and every event an
// encoder writes is an SSE event whose data is one valid JSON value.
// FuzzTranslateAnswer does the same for whole answers. Seeds are the
// providers' documented examples under providers/testdata.

// upstreamStreams are the outbound stream decoders, by family. Bedrock's
// input is "event-type JSON" lines, framed before decoding.
func upstreamStreams() map[string]func([]byte) llm.EventStream {
	return map[string]func([]byte) llm.EventStream{
		"openai":    func(b []byte) llm.EventStream { return openai.NewStreamDecoder(bytes.NewReader(b)) },
		"anthropic": func(b []byte) llm.EventStream { return anthropic.NewStreamDecoder(bytes.NewReader(b)) },
		"gemini":    func(b []byte) llm.EventStream { return gemini.NewStreamDecoder(bytes.NewReader(b)) },
		"bedrock":   func(b []byte) llm.EventStream { return bedrock.NewStreamDecoder(bytes.NewReader(bedrockFrames(b))) },
	}
}

// bedrockFrames frames each "type payload" line of b as an eventstream
// event.
func bedrockFrames(b []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		typ, payload, _ := bytes.Cut(line, []byte(" "))
		if len(typ) == 0 {
			continue
		}
		out = bedrock.AppendFrame(out, [][2]string{{":message-type", "event"}, {":event-type", string(typ)}, {":content-type", "application/json"}}, payload)
	}
	return out
}

// clientEncoders are the inbound dialects' stream encoders.
func clientEncoders() map[string]func() llm.StreamEncoder {
	return map[string]func() llm.StreamEncoder{
		"openai":    func() llm.StreamEncoder { return openai.NewStreamEncoder("id", "m", 1, true) },
		"anthropic": func() llm.StreamEncoder { return anthropic.NewStreamEncoder("id", "m") },
		"responses": func() llm.StreamEncoder { return responses.NewStreamEncoder("id", "m", 1) },
	}
}

func seedFiles(f *testing.F, pattern string) {
	files, _ := filepath.Glob(filepath.Join("..", "providers", "testdata", pattern))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
}

// checkSSE fails unless out is whole SSE events whose data is valid JSON
// (or OpenAI's [DONE]).
func checkSSE(t *testing.T, pair string, out []byte) {
	r := sse.NewReader(bytes.NewReader(out))
	for {
		data, _, comment, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s: unreadable output %q: %v", pair, out, err)
		}
		if !comment && string(data) != "[DONE]" && !jsonspan.Valid(data) {
			t.Fatalf("%s: event data is not JSON: %q", pair, data)
		}
	}
}

func FuzzTranslateStream(f *testing.F) {
	seedFiles(f, "*/*.sse")
	seedFiles(f, "bedrock/*.events")
	f.Add([]byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1e9}}}\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"index\":127,\"delta\":{\"tool_calls\":[{\"index\":127,\"id\":\"x\",\"function\":{\"name\":\"\\u0000\"}}]}}]}\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		defer timeBound(t, len(in))()
		for up, dec := range upstreamStreams() {
			for client, enc := range clientEncoders() {
				pair := up + "→" + client
				s, e := dec(in), enc()
				var out []byte
				ok := true
				for n := 0; ; n++ {
					ev, err := s.Next()
					if err != nil {
						ok = err == io.EOF
						break
					}
					if n > len(in)+16 {
						t.Fatalf("%s: more events than input bytes", pair)
					}
					out = e.Encode(out, ev)
					if ev.Kind == llm.EventError {
						ok = false
						break
					}
				}
				if ok {
					out = e.Finish(out, llm.Usage{PromptTokens: 1, CompletionTokens: 1})
				} else {
					out = e.Fail(out, llm.Errorf(llm.KindUpstream, "broken"))
				}
				_ = s.Close()
				checkSSE(t, pair, out)
			}
		}
	})
}

// upstreamAnswers are the outbound answer decoders, by family.
func upstreamAnswers() map[string]func([]byte) (*llm.ChatResponse, *llm.Error) {
	return map[string]func([]byte) (*llm.ChatResponse, *llm.Error){
		"openai":    openai.DecodeChatResponse,
		"anthropic": anthropic.DecodeResponse,
		"gemini":    gemini.DecodeResponse,
		"bedrock":   bedrock.DecodeConverseResponse,
	}
}

func FuzzTranslateAnswer(f *testing.F) {
	seedFiles(f, "*/*.json")
	f.Fuzz(func(t *testing.T, in []byte) {
		defer timeBound(t, len(in))()
		for up, dec := range upstreamAnswers() {
			r, e := dec(in)
			if e != nil {
				continue
			}
			for client, render := range map[string]func([]byte, *llm.ChatResponse) []byte{
				"openai": openai.AppendChatResponse, "anthropic": anthropic.AppendResponse, "responses": responses.AppendResponse,
			} {
				if out := render(nil, r); !jsonspan.Valid(out) {
					t.Fatalf("%s→%s: answer is not JSON: %s", up, client, out)
				}
			}
		}
	})
}

// The seeds themselves translate cleanly, every pair: the documented
// examples are not just survived but rendered.
func TestDocumentedStreamsTranslate(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "providers", "testdata", "*", "*.sse"))
	files2, _ := filepath.Glob(filepath.Join("..", "providers", "testdata", "bedrock", "*.events"))
	for _, name := range append(files, files2...) {
		fam := filepath.Base(filepath.Dir(name))
		dec, ok := upstreamStreams()[fam]
		if fam == "azure" {
			dec, ok = upstreamStreams()["openai"], true
		}
		if !ok {
			continue
		}
		in, _ := os.ReadFile(name)
		for client, enc := range clientEncoders() {
			s, e := dec(in), enc()
			var out []byte
			for {
				ev, err := s.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					if strings.Contains(name, "nofinish") || strings.Contains(name, "blocked") {
						break // documented as incomplete
					}
					t.Fatalf("%s: %v", name, err)
				}
				out = e.Encode(out, ev)
			}
			out = e.Finish(out, llm.Usage{})
			checkSSE(t, fam+"→"+client, out)
			sc := bufio.NewScanner(bytes.NewReader(out))
			sc.Buffer(nil, 1<<20)
			events := 0
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data: ") {
					events++
				}
			}
			if events < 2 {
				t.Errorf("%s → %s: %d events: %s", name, client, events, out)
			}
		}
	}
}
