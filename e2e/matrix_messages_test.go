package e2e

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
)

// anthropicClient returns an official Anthropic SDK client for the
// gateway's POST /v1/messages, authenticated with a Sluice key (sent as
// x-api-key, as the SDK does), nothing read from the environment.
func (g *gateway) anthropicClient(key string, opts ...aoption.RequestOption) *anthropic.Client {
	base := []aoption.RequestOption{
		aoption.WithoutEnvironmentDefaults(),
		aoption.WithBaseURL(g.Proxy + "/"),
		aoption.WithAPIKey(key),
		aoption.WithMaxRetries(0),
		aoption.WithRequestTimeout(30 * time.Second),
	}
	c := anthropic.NewClient(append(base, opts...)...)
	return &c
}

// messageParams is a one-message request for model.
func messageParams(model, text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 256,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
}

// weatherToolA is weatherTool in Anthropic's form.
func weatherToolA() anthropic.ToolUnionParam {
	return anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
		Name:        "get_weather",
		Description: anthropic.String("Current weather for a city"),
		InputSchema: anthropic.ToolInputSchemaParam{
			Properties: map[string]any{"city": map[string]any{"type": "string"}},
			Required:   []string{"city"},
		},
	}}
}

// messageText joins the text blocks of m.
func messageText(m *anthropic.Message) string {
	var b strings.Builder
	for _, c := range m.Content {
		if c.Type == "text" {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// wantAnthropicError fails unless err is an *anthropic.Error with status
// (any 5xx when status is 500) in Anthropic's error shape.
func wantAnthropicError(t *testing.T, err error, status int) *anthropic.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("want an API error %d, got success", status)
	}
	var apierr *anthropic.Error
	if !errors.As(err, &apierr) {
		t.Fatalf("want *anthropic.Error %d, got %T: %v", status, err, err)
	}
	if apierr.StatusCode != status && !(status == 500 && apierr.StatusCode >= 500) {
		t.Fatalf("want status %d, got %d: %s", status, apierr.StatusCode, apierr.RawJSON())
	}
	raw := apierr.RawJSON()
	if !strings.Contains(raw, `"type":"error"`) || !strings.Contains(raw, `"error":{`) {
		t.Errorf("error body not in Anthropic's shape: %s", raw)
	}
	return apierr
}

// wantRowMessages checks the usage row of a /v1/messages answer against the
// usage the client saw: the row's prompt tokens are all input tokens
// (input_tokens plus cache reads and writes).
func wantRowMessages(t *testing.T, row requestRow, u anthropic.Usage) {
	t.Helper()
	if row.Estimated {
		t.Errorf("usage row estimated though the answer carried usage: %+v", row)
	}
	if want := u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens; row.PromptTokens != want ||
		row.CachedTokens != u.CacheReadInputTokens || row.CacheWriteTokens != u.CacheCreationInputTokens ||
		row.CompletionTokens != u.OutputTokens {
		t.Errorf("usage row %+v disagrees with the answer's usage %s", row, u.RawJSON())
	}
}

// messagesSurface runs the scenarios through POST /v1/messages with the
// official Anthropic SDK.
func (e *familyEnv) messagesSurface(t *testing.T) {
	c := e.g.anthropicClient(e.key)
	t.Run("image", func(t *testing.T) {
		model := e.single(t, "am-image", "ok")
		id := reqID(t)
		p := anthropic.MessageNewParams{Model: anthropic.Model(model), MaxTokens: 256, Messages: []anthropic.MessageParam{
			anthropic.NewUserMessage(anthropic.NewTextBlock("What is in this picture?"), anthropic.NewImageBlockBase64("image/png", pngB64)),
		}}
		msg, err := c.Messages.New(testCtx(t, 15*time.Second), p, aoption.WithHeader("X-Request-Id", id))
		if err != nil {
			t.Fatalf("message with image: %v", err)
		}
		if messageText(msg) == "" {
			t.Fatalf("message with image: no text: %s", msg.RawJSON())
		}
		if up := e.m.stats(t).LastBody; !strings.Contains(up, pngB64) {
			t.Errorf("upstream body lacks the image data: %.600s", up)
		}
		wantRowOK(t, e.g.waitRow(t, id), "ok", false)
	})
	t.Run("tool_result", func(t *testing.T) {
		model := e.single(t, "am-toolresult", "ok")
		marker := "sunny-" + randHex(t, 4)
		id := reqID(t)
		p := anthropic.MessageNewParams{Model: anthropic.Model(model), MaxTokens: 256, Tools: []anthropic.ToolUnionParam{weatherToolA()},
			Messages: []anthropic.MessageParam{
				anthropic.NewUserMessage(anthropic.NewTextBlock("What is the weather in Paris?")),
				anthropic.NewAssistantMessage(anthropic.NewToolUseBlock("toolu_e2e1", map[string]any{"city": "Paris"}, "get_weather")),
				anthropic.NewUserMessage(anthropic.NewToolResultBlock("toolu_e2e1", marker, false)),
			}}
		msg, err := c.Messages.New(testCtx(t, 15*time.Second), p, aoption.WithHeader("X-Request-Id", id))
		if err != nil {
			t.Fatalf("tool result round trip: %v", err)
		}
		if messageText(msg) == "" || msg.StopReason != anthropic.StopReasonEndTurn {
			t.Fatalf("after a tool result want a text answer ending end_turn, got %s", msg.RawJSON())
		}
		up := e.m.stats(t).LastBody
		if !strings.Contains(up, marker) || (!e.fam.noToolIDs && !strings.Contains(up, "toolu_e2e1")) || !strings.Contains(up, "get_weather") {
			t.Errorf("upstream body lacks the tool call or its result: %.800s", up)
		}
		wantRowOK(t, e.g.waitRow(t, id), "ok", false)
	})

	t.Run("chat", func(t *testing.T) {
		t.Parallel()
		model := e.single(t, "am-chat", "ok")
		id := reqID(t)
		var resp *http.Response
		msg, err := c.Messages.New(testCtx(t, 15*time.Second), messageParams(model, "Say hello to the matrix"),
			aoption.WithHeader("X-Request-Id", id), aoption.WithResponseInto(&resp))
		if err != nil {
			t.Fatalf("message: %v", err)
		}
		if messageText(msg) == "" || msg.StopReason != anthropic.StopReasonEndTurn || msg.Role != "assistant" {
			t.Fatalf("message: %s", msg.RawJSON())
		}
		if msg.Usage.InputTokens <= 0 || msg.Usage.OutputTokens <= 0 {
			t.Errorf("usage %s", msg.Usage.RawJSON())
		}
		checkSluiceHeaders(t, resp, "ok")
		row := e.g.waitRow(t, id)
		wantRowOK(t, row, "ok", false)
		wantRowMessages(t, row, msg.Usage)
	})
	t.Run("stream", func(t *testing.T) {
		t.Parallel()
		model := e.single(t, "am-stream", "ok")
		id := reqID(t)
		s := c.Messages.NewStreaming(testCtx(t, 15*time.Second), messageParams(model, "stream to the matrix"), aoption.WithHeader("X-Request-Id", id))
		var msg anthropic.Message
		for s.Next() {
			if err := msg.Accumulate(s.Current()); err != nil {
				t.Fatalf("accumulate: %v", err)
			}
		}
		if err := s.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		s.Close()
		if messageText(&msg) == "" || msg.StopReason != anthropic.StopReasonEndTurn {
			t.Fatalf("stream: accumulated %s", msg.RawJSON())
		}
		if msg.Usage.OutputTokens <= 0 {
			t.Errorf("stream usage %+v", msg.Usage)
		}
		row := e.g.waitRow(t, id)
		wantRowOK(t, row, "ok", true)
		wantRowMessages(t, row, msg.Usage)
	})
	t.Run("prompt_cache", func(t *testing.T) {
		t.Parallel()
		model := e.single(t, "am-cache", "ok")
		id := reqID(t)
		p := messageParams(model, "a long and stable prompt worth caching")
		p.System = []anthropic.TextBlockParam{{Text: "You are the matrix. Be brief.", CacheControl: anthropic.NewCacheControlEphemeralParam()}}
		msg, err := c.Messages.New(testCtx(t, 15*time.Second), p, aoption.WithHeader("X-Request-Id", id))
		if err != nil {
			t.Fatalf("message: %v", err)
		}
		if e.fam.typ == "anthropic" && msg.Usage.CacheReadInputTokens <= 0 {
			t.Errorf("the mock reports cache reads for cache_control; the answer's usage has none: %s", msg.Usage.RawJSON())
		}
		row := e.g.waitRow(t, id)
		wantRowOK(t, row, "ok", false)
		wantRowMessages(t, row, msg.Usage)
	})
	for _, stream := range []bool{false, true} {
		sfx := map[bool]string{false: "", true: "_stream"}[stream]
		t.Run("tool_call"+sfx, func(t *testing.T) {
			t.Parallel()
			model := e.single(t, "am-toolcall"+sfx, "ok")
			id := reqID(t)
			p := messageParams(model, "What is the weather in Paris?")
			p.Tools = []anthropic.ToolUnionParam{weatherToolA()}
			msg, err := e.messagesCall(t, c, p, stream, id)
			if err != nil {
				t.Fatalf("message: %v", err)
			}
			var uses []anthropic.ContentBlockUnion
			for _, b := range msg.Content {
				if b.Type == "tool_use" {
					uses = append(uses, b)
				}
			}
			if msg.StopReason != anthropic.StopReasonToolUse || len(uses) != 1 {
				t.Fatalf("want one tool_use block and stop_reason tool_use, got %s", msg.RawJSON())
			}
			if uses[0].Name != "get_weather" || uses[0].ID == "" || len(uses[0].Input) == 0 || uses[0].Input[0] != '{' {
				t.Errorf("tool_use block %s", uses[0].RawJSON())
			}
			wantRowOK(t, e.g.waitRow(t, id), "ok", stream)
		})
		t.Run("usage_missing"+sfx, func(t *testing.T) {
			t.Parallel()
			model := e.single(t, "am-nousage"+sfx, "nousage")
			id := reqID(t)
			msg, err := e.messagesCall(t, c, messageParams(model, "count these words for me please"), stream, id)
			if err != nil || messageText(msg) == "" {
				t.Fatalf("message: %v", err)
			}
			row := e.g.waitRow(t, id)
			wantRowOK(t, row, "nousage", stream)
			if !row.Estimated {
				t.Errorf("usage row not marked estimated though the upstream reported none: %+v", row)
			}
		})
		t.Run("429"+sfx, func(t *testing.T) {
			t.Parallel()
			model := e.single(t, "am-429"+sfx, "r429")
			id := reqID(t)
			_, err := e.messagesCall(t, c, messageParams(model, "hi"), stream, id)
			apierr := wantAnthropicError(t, err, http.StatusTooManyRequests)
			wantRowError(t, e.g.waitRow(t, id), "r429", http.StatusTooManyRequests, http.StatusTooManyRequests)
			if ra := apierr.Response.Header.Get("Retry-After"); ra != "7" {
				t.Errorf("Retry-After = %q, want 7", ra)
			}
			if !strings.Contains(apierr.RawJSON(), "rate_limit_error") {
				t.Errorf("429 body %s, want type rate_limit_error", apierr.RawJSON())
			}
			e.wantFallbackMessages(t, c, e.fallback(t, "am-429-fb"+sfx, "r429"), stream)
		})
		t.Run("500"+sfx, func(t *testing.T) {
			t.Parallel()
			model := e.single(t, "am-500"+sfx, "e500")
			id := reqID(t)
			_, err := e.messagesCall(t, c, messageParams(model, "hi"), stream, id)
			apierr := wantAnthropicError(t, err, http.StatusInternalServerError)
			wantRowError(t, e.g.waitRow(t, id), "e500", apierr.StatusCode, http.StatusInternalServerError)
			e.wantFallbackMessages(t, c, e.fallback(t, "am-500-fb"+sfx, "e500"), stream)
		})
		t.Run("slow_first_token"+sfx, func(t *testing.T) {
			t.Parallel()
			slow := "slow"
			if stream {
				slow = "slowttft"
			}
			// The mock would answer after 3 s: a 504 is the 500 ms
			// first-byte timeout firing (no timed assertion needed).
			model := e.single(t, "am-slow"+sfx, slow)
			id := reqID(t)
			_, err := e.messagesCall(t, c, messageParams(model, "hi"), stream, id)
			wantAnthropicError(t, err, http.StatusGatewayTimeout)
			wantRowError(t, e.g.waitRow(t, id), slow, http.StatusGatewayTimeout, 0)
			e.wantFallbackMessages(t, c, e.fallback(t, "am-slow-fb"+sfx, slow), stream)
		})
	}
	t.Run("midstream_disconnect", func(t *testing.T) {
		t.Parallel()
		model := e.single(t, "am-disconnect", "disconnect")
		id := reqID(t)
		var rb bodyRecorder
		cl := e.g.anthropicClient(e.key, aoption.WithMiddleware(func(req *http.Request, next aoption.MiddlewareNext) (*http.Response, error) {
			return recordBody(&rb, req, next)
		}))
		s := cl.Messages.NewStreaming(testCtx(t, 15*time.Second), messageParams(model, "one two three four"), aoption.WithHeader("X-Request-Id", id))
		n := 0
		for s.Next() {
			n++
		}
		err := s.Err()
		s.Close()
		if n == 0 {
			t.Fatalf("no event before the break: %v", err)
		}
		if err == nil {
			t.Fatalf("stream ended without error after the upstream broke; body:\n%s", rb.last())
		}
		if body := rb.last(); strings.Contains(body, "message_stop") || !strings.Contains(body, "event: error") {
			t.Errorf("broken stream: want an error event and no message_stop:\n%s", body)
		}
		row := e.g.waitRow(t, id)
		if row.Status != "stream_broken" || !row.Estimated || row.PromptTokens <= 0 || row.Provider != "disconnect" {
			t.Errorf("usage row %+v, want status stream_broken, estimated, provider disconnect", row)
		}
	})
}

// messagesCall sends p (streamed or not) and returns the message (the
// accumulated one for a stream).
func (e *familyEnv) messagesCall(t *testing.T, c *anthropic.Client, p anthropic.MessageNewParams, stream bool, id string) (*anthropic.Message, error) {
	t.Helper()
	ctx := testCtx(t, 15*time.Second)
	if !stream {
		return c.Messages.New(ctx, p, aoption.WithHeader("X-Request-Id", id))
	}
	s := c.Messages.NewStreaming(ctx, p, aoption.WithHeader("X-Request-Id", id))
	defer s.Close()
	var msg anthropic.Message
	for s.Next() {
		if err := msg.Accumulate(s.Current()); err != nil {
			return &msg, err
		}
	}
	return &msg, s.Err()
}

// wantFallbackMessages is wantFallback on /v1/messages.
func (e *familyEnv) wantFallbackMessages(t *testing.T, c *anthropic.Client, fb string, stream bool) {
	t.Helper()
	id := reqID(t) + "-fb"
	msg, err := e.messagesCall(t, c, messageParams(fb, "hi"), stream, id)
	if err != nil {
		t.Fatalf("fallback model %s: %v", fb, err)
	}
	if messageText(msg) == "" {
		t.Errorf("fallback model %s: no text: %s", fb, msg.RawJSON())
	}
	wantRowOK(t, e.g.waitRow(t, id), "ok", stream)
	if n := e.retries(t, fb); n < 1 {
		t.Errorf("sluice_upstream_retries_total{model=%q} = %v, want ≥ 1 (the failing deployment first, then the healthy one)", fb, n)
	}
}

// recordBody is bodyRecorder's middleware body for any SDK's middleware
// type: it keeps a copy of the response body as it is read.
func recordBody[N ~func(*http.Request) (*http.Response, error)](b *bodyRecorder, req *http.Request, next N) (*http.Response, error) {
	resp, err := next(req)
	if err != nil || resp == nil || resp.Body == nil {
		return resp, err
	}
	buf := &syncBuffer{}
	b.mu.Lock()
	b.bodies = append(b.bodies, buf)
	b.mu.Unlock()
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.TeeReader(resp.Body, buf), resp.Body}
	return resp, nil
}
