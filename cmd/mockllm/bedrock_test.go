package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/wire/bedrock"
)

const converseBody = `{"messages":[{"role":"user","content":[{"text":"What is the most popular song on WZPZ?"}]}],"inferenceConfig":{"maxTokens":100}}`

const converseTools = `{"messages":[{"role":"user","content":[{"text":"What is the most popular song on WZPZ?"}]}],` +
	`"toolConfig":{"tools":[{"toolSpec":{"name":"top_song","inputSchema":{"json":{"type":"object"}}}}]}}`

const converseToolResult = `{"messages":[{"role":"user","content":[{"text":"song?"}]},` +
	`{"role":"assistant","content":[{"toolUse":{"toolUseId":"t1","name":"top_song","input":{}}}]},` +
	`{"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"text":"Elemental Hotel"}]}}]}],` +
	`"toolConfig":{"tools":[{"toolSpec":{"name":"top_song","inputSchema":{"json":{"type":"object"}}}}]}}`

const modelPath = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0"

func TestConverse(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, modelPath+"/converse", converseBody, nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Amzn-Requestid") == "" {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r, err := bedrock.DecodeConverseResponse(readAll(t, resp))
	if err != nil {
		t.Fatal(err)
	}
	if r.Choices[0].FinishReason != "stop" || r.Choices[0].Message.Content[0].Text != "Hello from the mock LLM! " || r.Usage.PromptTokens != 8 || r.Usage.CompletionTokens != 5 {
		t.Fatalf("answer %+v", r)
	}

	resp = post(t, srv, modelPath+"/converse", converseTools, nil)
	r, err = bedrock.DecodeConverseResponse(readAll(t, resp))
	if err != nil || r.Choices[0].FinishReason != "tool_calls" || r.Choices[0].Message.ToolCalls[0].Name != "top_song" {
		t.Fatalf("tool answer %+v %v", r, err)
	}
	resp = post(t, srv, modelPath+"/converse", converseToolResult, nil)
	r, err = bedrock.DecodeConverseResponse(readAll(t, resp))
	if err != nil || r.Choices[0].FinishReason != "stop" || len(r.Choices[0].Message.ToolCalls) != 0 {
		t.Fatalf("after a tool result %+v %v", r, err)
	}
}

// streamEventsOf decodes a ConverseStream answer with the gateway's codec.
func streamEventsOf(t *testing.T, body io.Reader) (text, args string, usage [2]int, finish string, err error) {
	t.Helper()
	s := bedrock.NewStreamDecoder(body)
	var tb, ab strings.Builder
	for {
		ev, err := s.Next()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return tb.String(), ab.String(), usage, finish, err
		}
		switch {
		case ev.Kind == llm.EventText:
			tb.WriteString(ev.Text)
		case ev.Kind == llm.EventToolArgs:
			ab.WriteString(ev.Text)
		case ev.Kind == llm.EventFinish:
			finish = ev.FinishReason
		case ev.Kind == llm.EventUsage:
			usage = [2]int{ev.Usage.PromptTokens, ev.Usage.CompletionTokens}
		}
	}
}

func TestConverseStream(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, modelPath+"/converse-stream", converseBody, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.amazon.eventstream" {
		t.Fatalf("status %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	text, _, usage, finish, err := streamEventsOf(t, resp.Body)
	if err != nil || text != "Hello from the mock LLM! " || usage != [2]int{8, 5} || finish != "stop" {
		t.Fatalf("%q %v %q %v", text, usage, finish, err)
	}

	resp = post(t, srv, modelPath+"/converse-stream", converseTools, nil)
	_, args, _, finish, err := streamEventsOf(t, resp.Body)
	if err != nil || args != "{}" || finish != "tool_calls" {
		t.Fatalf("tool stream %q %q %v", args, finish, err)
	}

	resp = post(t, srv, modelPath+"/converse-stream", converseBody, map[string]string{hdrNoUsage: "true"})
	_, _, usage, _, err = streamEventsOf(t, resp.Body)
	if err != nil || usage != [2]int{} {
		t.Fatalf("no usage: %v %v", usage, err)
	}

	// Mid-stream abort: the codec sees the stream end before messageStop.
	resp = post(t, srv, modelPath+"/converse-stream", converseBody, map[string]string{hdrDisconnectAfter: "3"})
	if _, _, _, _, err = streamEventsOf(t, resp.Body); err == nil {
		t.Fatal("an aborted stream ended cleanly")
	}
}

func TestConverseErrorsAndAuth(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, modelPath+"/converse", converseBody, map[string]string{hdrStatus: "429", hdrRetryAfter: "3"})
	if resp.StatusCode != 429 || !strings.HasPrefix(resp.Header.Get("X-Amzn-Errortype"), "ThrottlingException") || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("429: %d %v", resp.StatusCode, resp.Header)
	}
	var e struct{ Message string }
	if json.Unmarshal(readAll(t, resp), &e) != nil || e.Message == "" {
		t.Fatal("no message")
	}
	resp = post(t, srv, modelPath+"/converse-stream", converseBody, map[string]string{hdrStatus: "500"})
	if resp.StatusCode != 500 || !strings.HasPrefix(resp.Header.Get("X-Amzn-Errortype"), "InternalServerException") {
		t.Fatalf("500: %d", resp.StatusCode)
	}
	resp = post(t, srv, modelPath+"/converse", `{"messages":[]}`, nil)
	if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("X-Amzn-Errortype"), "ValidationException") {
		t.Fatalf("400: %d", resp.StatusCode)
	}

	cfg := testConfig()
	cfg.APIKey = "bedrock-key"
	srv = newTestServer(t, cfg)
	for _, c := range []struct {
		auth string
		want int
	}{
		{"", http.StatusForbidden},
		{"Bearer wrong", http.StatusForbidden},
		{"Bearer bedrock-key", http.StatusOK},
		{"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261129/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc", http.StatusOK},
		{"AWS4-HMAC-SHA256 Credential=x", http.StatusForbidden},
	} {
		hdr := map[string]string{}
		if c.auth != "" {
			hdr["Authorization"] = c.auth
		}
		if resp := post(t, srv, modelPath+"/converse", converseBody, hdr); resp.StatusCode != c.want {
			t.Fatalf("%q: %d, want %d", c.auth, resp.StatusCode, c.want)
		}
	}
}

func TestConverseStreamException(t *testing.T) {
	srv := newTestServer(t, testConfig())
	resp := post(t, srv, modelPath+"/converse-stream", converseBody, map[string]string{hdrStreamException: "throttlingException"})
	s := bedrock.NewStreamDecoder(resp.Body)
	var kinds []llm.EventKind
	var last *llm.Event
	for {
		ev, err := s.Next()
		if err != nil {
			break
		}
		kinds = append(kinds, ev.Kind)
		e := *ev
		last = &e
	}
	if len(kinds) != 3 || last.Kind != llm.EventError || last.Err.UpstreamStatus != 429 || !strings.Contains(last.Err.Message, "throttlingException") {
		t.Fatalf("kinds %v last %+v", kinds, last)
	}
	if resp := post(t, srv, modelPath+"/converse-stream", converseBody, map[string]string{hdrStreamException: "boom"}); resp.StatusCode != 400 {
		t.Fatalf("bad exception type: %d", resp.StatusCode)
	}
}
