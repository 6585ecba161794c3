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

	"github.com/sluice-ai/sluice/llm"
)

// anthropicToolStream is Anthropic's documented streamed tool use
// (docs.anthropic.com "Streaming Messages", streaming request with tool
// use), the tool input arriving in pieces.
const anthropicToolStream = "event: message_start\n" +
	`data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-opus-4-6","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}` + "\n\n" +
	"event: content_block_start\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n" +
	"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay, let's check the weather:"}}` + "\n\n" +
	"event: content_block_stop\n" + `data: {"type":"content_block_stop","index":0}` + "\n\n" +
	"event: content_block_start\n" + `data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}` + "\n\n" +
	"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}` + "\n\n" +
	"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}` + "\n\n" +
	"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"San Francisco, CA\"}"}}` + "\n\n" +
	"event: content_block_stop\n" + `data: {"type":"content_block_stop","index":1}` + "\n\n" +
	"event: message_delta\n" + `data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}` + "\n\n" +
	"event: message_stop\n" + `data: {"type":"message_stop"}` + "\n\n"

// chunk is the part of an OpenAI chunk the tests read.
type chunk struct {
	Choices []struct {
		Delta struct {
			Content   string `json:"content"`
			ToolCalls []struct {
				Index    int    `json:"index"`
				ID       string `json:"id"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

// An OpenAI client streaming from an Anthropic deployment: the request is
// translated to Messages, the tool call's arguments arrive in pieces as
// OpenAI tool_calls deltas, the finish reason is tool_calls, and the usage
// chunk (asked with include_usage) carries Anthropic's counts.
func TestOpenAIClientAnthropicStreamToolCall(t *testing.T) {
	var sent map[string]any
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/messages" || json.Unmarshal(b, &sent) != nil {
			w.WriteHeader(400)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, anthropicToolStream)
	}))
	defer up.Close()
	srv, r := newTypedProxy(t, llm.ProviderAnthropic, up.URL)
	resp := post(t, srv.URL, `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Weather in SF?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"location":{"type":"string"}}}}}]}`)
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %s", resp.StatusCode, b)
	}
	if sent["system"] == nil || sent["model"] != "up-p0" || sent["stream"] != true || sent["tools"] == nil {
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
				if tc.Index != 0 {
					t.Fatalf("tool index %d", tc.Index)
				}
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
	if !done || text != "Okay, let's check the weather:" || args != `{"location": "San Francisco, CA"}` || name != "get_weather" ||
		id != "toolu_01T1x1fJ34qAmk2tNTrN7Up6" || finish != "tool_calls" || usage != [2]int{472, 89} {
		t.Fatalf("done %v text %q args %q name %q id %q finish %q usage %v", done, text, args, name, id, finish, usage)
	}
	if rec := r.last(); rec.PromptTokens != 472 || rec.CompletionTokens != 89 || rec.Estimated || rec.Status != llm.StatusOK {
		t.Fatalf("record %+v", rec)
	}
}

// An Anthropic client (Claude-Code-like: tool result in the loop) on an
// OpenAI-compatible deployment: the request goes out as OpenAI chat with
// the tool result as a tool message, and the OpenAI answer comes back as
// an Anthropic message with a tool_use block.
func TestAnthropicClientOpenAIToolLoop(t *testing.T) {
	var sent struct {
		Messages []map[string]any `json:"messages"`
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/chat/completions" || json.Unmarshal(b, &sent) != nil {
			w.WriteHeader(400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"chatcmpl-abc123","object":"chat.completion","created":1699896916,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc123","type":"function","function":{"name":"get_current_weather","arguments":"{\n\"location\": \"Boston, MA\"\n}"}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99,"prompt_tokens_details":{"cached_tokens":64}}}`)
	}))
	defer up.Close()
	srv, r := newTypedProxy(t, llm.ProviderOpenAICompatible, up.URL)
	resp := postTo(t, srv.URL, "/v1/messages", `{"model":"m","max_tokens":1024,"system":"You are a coding agent.","tools":[{"name":"get_current_weather","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"Weather?"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_current_weather","input":{"location":"Paris"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"15 degrees"},{"type":"text","text":"And Boston?"}]}]}`)
	b, _ := io.ReadAll(resp.Body)
	var msg struct {
		Type       string `json:"type"`
		Role       string `json:"role"`
		StopReason string `json:"stop_reason"`
		Content    []struct {
			Type  string         `json:"type"`
			ID    string         `json:"id"`
			Name  string         `json:"name"`
			Input map[string]any `json:"input"`
		} `json:"content"`
		Usage struct {
			InputTokens     int `json:"input_tokens"`
			OutputTokens    int `json:"output_tokens"`
			CacheReadTokens int `json:"cache_read_input_tokens"`
		} `json:"usage"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &msg) != nil {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
	if msg.Type != "message" || msg.StopReason != "tool_use" || len(msg.Content) != 1 || msg.Content[0].Type != "tool_use" ||
		msg.Content[0].Name != "get_current_weather" || msg.Content[0].Input["location"] != "Boston, MA" {
		t.Fatalf("message %s", b)
	}
	if msg.Usage.InputTokens+msg.Usage.CacheReadTokens != 82 || msg.Usage.CacheReadTokens != 64 || msg.Usage.OutputTokens != 17 {
		t.Fatalf("usage %s", b)
	}
	roles := []string{}
	for _, m := range sent.Messages {
		roles = append(roles, m["role"].(string))
	}
	if strings.Join(roles, ",") != "system,user,assistant,tool,user" || sent.Messages[3]["tool_call_id"] != "toolu_1" {
		t.Fatalf("upstream messages %v", sent.Messages)
	}
	if rec := r.last(); rec.PromptTokens != 82 || rec.CacheReadTokens != 64 || rec.CompletionTokens != 17 {
		t.Fatalf("record %+v", rec)
	}
}

// A request the provider cannot express is a 400 in the client's shape
// before any upstream contact.
func TestTranslationRefusedBeforeUpstream(t *testing.T) {
	calls := 0
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls++ }))
	defer up.Close()
	srv, _ := newTypedProxy(t, llm.ProviderAnthropic, up.URL)
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"m","n":3,"messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/completions", `{"model":"m","prompt":"hi"}`},
		{"/v1/embeddings", `{"model":"m","input":"hi"}`},
		{"/v1/chat/completions", `{"model":"m","messages":"nope"}`},
	} {
		resp := postTo(t, srv.URL, tc.path, tc.body)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || !strings.Contains(string(b), `"error":{"message":`) {
			t.Errorf("%s %s: %d %s", tc.path, tc.body, resp.StatusCode, b)
		}
	}
	if calls != 0 {
		t.Fatalf("%d upstream calls", calls)
	}
}

// A Responses client on an Anthropic deployment gets Responses events.
func TestResponsesClientAnthropicStream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, anthropicToolStream)
	}))
	defer up.Close()
	srv, r := newTypedProxy(t, llm.ProviderAnthropic, up.URL)
	resp := postTo(t, srv.URL, "/v1/responses", `{"model":"m","stream":true,"input":"Weather in SF?","tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}]}`)
	b, _ := io.ReadAll(resp.Body)
	s := string(b)
	for _, want := range []string{"event: response.created", "event: response.output_text.delta", "event: response.function_call_arguments.delta", "event: response.completed", `"input_tokens":472`} {
		if !strings.Contains(s, want) {
			t.Fatalf("missing %q in %s", want, s)
		}
	}
	if rec := r.last(); rec.PromptTokens != 472 || rec.CompletionTokens != 89 {
		t.Fatalf("record %+v", rec)
	}
}

// A translated stream whose upstream sends nothing within the first-byte
// timeout is a 504 like any other (a refactor once panicked here: there
// is no encoder before the first event).
func TestTranslatedStreamFirstByteTimeout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer up.Close()
	srv, r := newTestProxyOf(t, llm.ProviderAnthropic, nil, time.Second, up.URL)
	resp := post(t, srv.URL, `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 504 {
		t.Fatalf("status %d %s", resp.StatusCode, b)
	}
	if rec := r.last(); rec.HTTPStatus != 504 {
		t.Fatalf("record %+v", rec)
	}
}
