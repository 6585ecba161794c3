package router

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

// An OpenAI client streaming from a Gemini deployment: the request is
// translated to generateContent (streamGenerateContent?alt=sse, key in
// x-goog-api-key), Gemini's whole-call functionCall arrives as one OpenAI
// tool_calls delta, STOP with a call is tool_calls, and the usage chunk
// carries Gemini's counts with thoughts added to the completion.
func TestOpenAIClientGeminiStreamToolCall(t *testing.T) {
	fixture, err := os.ReadFile("../providers/testdata/gemini/stream_tool_call.sse")
	if err != nil {
		t.Fatal(err)
	}
	var sent map[string]any
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1beta/models/up-p0:streamGenerateContent" || r.URL.RawQuery != "alt=sse" ||
			r.Header.Get("X-Goog-Api-Key") == "" || json.Unmarshal(b, &sent) != nil {
			w.WriteHeader(400)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(fixture)
	}))
	defer up.Close()
	srv, r := newTypedProxy(t, llm.ProviderGemini, up.URL)
	resp := post(t, srv.URL, `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Dim the light"}],"tools":[{"type":"function","function":{"name":"controlLight","parameters":{"type":"object","properties":{"brightness":{"type":"number"}},"additionalProperties":false}}}]}`)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %s", resp.StatusCode, b)
	}
	if sent["systemInstruction"] == nil || sent["tools"] == nil || sent["model"] != nil {
		t.Fatalf("upstream got %v", sent)
	}
	var args, name, finish string
	var usage [2]int
	done := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			done = true
			continue
		}
		var c chunk
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("chunk %s: %v", line, err)
		}
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				args += tc.Function.Arguments
				name += tc.Function.Name
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
		if c.Usage != nil {
			usage = [2]int{c.Usage.PromptTokens, c.Usage.CompletionTokens}
		}
	}
	if !done || name != "controlLight" || !json.Valid([]byte(args)) || !strings.Contains(args, "brightness") || finish != "tool_calls" || usage != [2]int{30, 19} {
		t.Fatalf("done %v args %q name %q finish %q usage %v", done, args, name, finish, usage)
	}
	if rec := r.last(); rec.PromptTokens != 30 || rec.CompletionTokens != 19 || rec.ReasoningTokens != 12 || rec.Estimated || rec.Status != llm.StatusOK {
		t.Fatalf("record %+v", rec)
	}
}
