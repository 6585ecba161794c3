package router

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/state"
	"github.com/sluice-ai/sluice/wire/bedrock"
)

// bedrockToolStream is the top_song example of Bedrock's user guide
// ("Call a tool with the Converse API"), streamed: a text block, then a
// tool-use block whose input arrives in pieces, then usage in metadata.
var bedrockToolStream = [][2]string{
	{"messageStart", `{"p":"abcdefghijk","role":"assistant"}`},
	{"contentBlockDelta", `{"contentBlockIndex":0,"delta":{"text":"Let me look that up."},"p":"abc"}`},
	{"contentBlockStop", `{"contentBlockIndex":0,"p":"abcdefgh"}`},
	{"contentBlockStart", `{"contentBlockIndex":1,"p":"ab","start":{"toolUse":{"name":"top_song","toolUseId":"tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"}}}`},
	{"contentBlockDelta", `{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"sign\": \"WZ"}},"p":"abcdefghijklmnopq"}`},
	{"contentBlockDelta", `{"contentBlockIndex":1,"delta":{"toolUse":{"input":"PZ\"}"}},"p":"abcdef"}`},
	{"contentBlockStop", `{"contentBlockIndex":1,"p":"abcdefghijkl"}`},
	{"messageStop", `{"p":"abcdefghijk","stopReason":"tool_use"}`},
	{"metadata", `{"metrics":{"latencyMs":1451},"p":"abcdefg","usage":{"inputTokens":375,"outputTokens":55,"totalTokens":430,"cacheReadInputTokens":100}}`},
}

// newBedrockProxy is a proxy whose model m is served by one bedrock
// provider at base (a Bedrock API key as its credential).
func newBedrockProxy(t *testing.T, base string) (*httptest.Server, *recs) {
	t.Helper()
	snap := llm.EmptySnapshot()
	snap.Providers["br"] = &llm.Provider{Name: "br", Type: llm.ProviderBedrock, BaseURL: base, APIKey: "bedrock-api-key-0123456789",
		Options: json.RawMessage(`{"region":"us-east-1"}`), Timeouts: llm.Timeouts{Idle: time.Second, FirstByte: 2 * time.Second}}
	snap.Models["m"] = &llm.Model{Name: "m", Deployments: []llm.Deployment{{ID: "dep_br", Provider: "br", Model: "anthropic.claude-3-5-sonnet-20240620-v1:0", Weight: 1,
		Prices: llm.Prices{InputPerMTok: 1, OutputPerMTok: 2}}}}
	snap.Keys[llm.HashKey(testKey)] = &llm.Key{ID: "k1", Prefix: "sk-test"}
	b := balancer.New(balancer.Options{Rand: func(int) int { return 0 }})
	st, retire, errs := state.Build(nil, snap, state.Options{Balancer: b})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	retire()
	r := &recs{}
	h := New(Options{State: func() *state.State { return st }, Balancer: b, Usage: r, Estimator: testEstimator, MaxBodyBytes: 1 << 16})
	r.handler = h
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, r
}

// An OpenAI client streaming from a Bedrock deployment: the request goes
// out as a ConverseStream body to the model's URL, the event-stream frames
// come back as OpenAI chunks with the tool call's arguments in pieces, and
// usage (cache reads added to inputTokens) is recorded.
func TestOpenAIClientBedrockStreamToolCall(t *testing.T) {
	var sent map[string]any
	var path, auth string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		path, auth = r.URL.EscapedPath(), r.Header.Get("Authorization")
		if json.Unmarshal(b, &sent) != nil {
			w.WriteHeader(400)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		var out []byte
		for _, ev := range bedrockToolStream {
			out = bedrock.AppendFrame(out, [][2]string{{":event-type", ev[0]}, {":content-type", "application/json"}, {":message-type", "event"}}, []byte(ev[1]))
		}
		w.Write(out)
	}))
	defer up.Close()
	srv, r := newBedrockProxy(t, up.URL)
	resp := post(t, srv.URL, `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Most popular song on WZPZ?"}],"tools":[{"type":"function","function":{"name":"top_song","parameters":{"type":"object","properties":{"sign":{"type":"string"}}}}}]}`)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %s", resp.StatusCode, b)
	}
	if path != "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream" || auth != "Bearer bedrock-api-key-0123456789" {
		t.Fatalf("path %q auth %q", path, auth)
	}
	if sent["system"] == nil || sent["toolConfig"] == nil || sent["model"] != nil {
		t.Fatalf("upstream got %v", sent)
	}
	var text, args, name, id, finish string
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
			text += ch.Delta.Content
			for _, tc := range ch.Delta.ToolCalls {
				args += tc.Function.Arguments
				name += tc.Function.Name
				id += tc.ID
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
		if c.Usage != nil {
			usage = [2]int{c.Usage.PromptTokens, c.Usage.CompletionTokens}
		}
	}
	if !done || text != "Let me look that up." || args != `{"sign": "WZPZ"}` || name != "top_song" ||
		id != "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q" || finish != "tool_calls" || usage != [2]int{475, 55} {
		t.Fatalf("done %v text %q args %q name %q id %q finish %q usage %v", done, text, args, name, id, finish, usage)
	}
	if rec := r.last(); rec.PromptTokens != 475 || rec.CacheReadTokens != 100 || rec.CompletionTokens != 55 || rec.Estimated || rec.Status != llm.StatusOK {
		t.Fatalf("record %+v", rec)
	}
}

// A Bedrock throttling answer reaches an OpenAI client as a 429 with its
// Retry-After.
func TestBedrockThrottlingToClient(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amzn-Errortype", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/")
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(429)
		io.WriteString(w, `{"message":"Too many requests, please wait before trying again."}`)
	}))
	defer up.Close()
	srv, _ := newBedrockProxy(t, up.URL)
	resp := post(t, srv.URL, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "Too many requests") {
		t.Fatalf("status %d %v %s", resp.StatusCode, resp.Header, b)
	}
}

// An Anthropic client on a Bedrock deployment, not streamed: the Converse
// answer's toolUse block comes back as a tool_use block.
func TestAnthropicClientBedrockToolUse(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/converse") {
			w.WriteHeader(404)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"output":{"message":{"role":"assistant","content":[{"toolUse":{"toolUseId":"tooluse_kZJMlvQmRJ6eAyJE5GIl7Q","name":"top_song","input":{"sign":"WZPZ"}}}]}},"stopReason":"tool_use","usage":{"inputTokens":375,"outputTokens":55,"totalTokens":430},"metrics":{"latencyMs":1461}}`)
	}))
	defer up.Close()
	srv, r := newBedrockProxy(t, up.URL)
	resp := postTo(t, srv.URL, "/v1/messages", `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"Most popular song on WZPZ?"}],"tools":[{"name":"top_song","input_schema":{"type":"object","properties":{"sign":{"type":"string"}}}}]}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, b)
	}
	var msg struct {
		Content []struct {
			Type  string          `json:"type"`
			ID    string          `json:"id"`
			Name  string          `json:"name"`
			Input json.RawMessage `json:"input"`
		} `json:"content"`
		StopReason string `json:"stop_reason"`
		Usage      struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(b, &msg); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Type != "tool_use" || msg.Content[0].Name != "top_song" || string(msg.Content[0].Input) != `{"sign":"WZPZ"}` ||
		msg.StopReason != "tool_use" || msg.Usage.InputTokens != 375 || msg.Usage.OutputTokens != 55 {
		t.Fatalf("answer %s", b)
	}
	if rec := r.last(); rec.PromptTokens != 375 || rec.Status != llm.StatusOK {
		t.Fatalf("record %+v", rec)
	}
}
