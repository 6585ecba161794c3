package e2e

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
)

// TestMatrixResponses drives POST /v1/responses with openai-go's
// client.Responses against an openai provider (the raw lane: the body
// passes through) and an anthropic one (the translated lane).
func TestMatrixResponses(t *testing.T) {
	t.Parallel()
	for _, fam := range matrixFamilies() {
		if fam.name != "openai" && fam.name != "anthropic" {
			continue
		}
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			e, err := setupFamily(t, fam)
			if errors.Is(err, errNotBuilt) {
				t.Skipf("provider %s not built (the admin API rejects type %q as unknown)", fam.typ, fam.typ)
			}
			c := e.g.client(e.key)
			params := func(model string) responses.ResponseNewParams {
				return responses.ResponseNewParams{
					Model:           model,
					Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello to the responses matrix")},
					MaxOutputTokens: openai.Int(256),
				}
			}
			weather := responses.ToolParamOfFunction("get_weather", map[string]any{
				"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"},
			}, false)
			t.Run("tool_result", func(t *testing.T) {
				model := e.single(t, "rs-toolresult", "ok")
				marker := "sunny-" + randHex(t, 4)
				id := reqID(t)
				out := responses.ResponseInputItemParamOfFunctionCallOutput(marker)
				out.OfFunctionCallOutput.CallID = openai.String("call_e2e1")
				p := responses.ResponseNewParams{Model: model, Tools: []responses.ToolUnionParam{weather},
					Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
						responses.ResponseInputItemParamOfMessage("What is the weather in Paris?", responses.EasyInputMessageRoleUser),
						responses.ResponseInputItemParamOfFunctionCall(`{"city":"Paris"}`, "call_e2e1", "get_weather"),
						out,
					}}}
				r, err := c.Responses.New(testCtx(t, 15*time.Second), p, option.WithHeader("X-Request-Id", id))
				if err != nil {
					t.Fatalf("tool result round trip: %v", err)
				}
				if r.OutputText() == "" {
					t.Fatalf("after a tool result want a text answer, got %s", r.RawJSON())
				}
				up := e.m.stats(t).LastBody
				if !strings.Contains(up, marker) || !strings.Contains(up, "call_e2e1") || !strings.Contains(up, "get_weather") {
					t.Errorf("upstream body lacks the tool call or its result: %.800s", up)
				}
				wantRowOK(t, e.g.waitRow(t, id), "ok", false)
			})
			t.Run("tool_call", func(t *testing.T) {
				t.Parallel()
				model := e.single(t, "rs-toolcall", "ok")
				id := reqID(t)
				p := responses.ResponseNewParams{Model: model, Tools: []responses.ToolUnionParam{weather},
					Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("What is the weather in Paris?")}}
				r, err := c.Responses.New(testCtx(t, 15*time.Second), p, option.WithHeader("X-Request-Id", id))
				if err != nil {
					t.Fatalf("responses.create: %v", err)
				}
				var calls int
				for _, it := range r.Output {
					if it.Type == "function_call" {
						calls++
						if it.Name != "get_weather" || it.CallID == "" {
							t.Errorf("function call %s", it.RawJSON())
						}
					}
				}
				if calls != 1 {
					t.Fatalf("want one function_call output item, got %s", r.RawJSON())
				}
				wantRowOK(t, e.g.waitRow(t, id), "ok", false)
			})
			for _, stream := range []bool{false, true} {
				sfx := map[bool]string{false: "", true: "_stream"}[stream]
				t.Run("usage_missing"+sfx, func(t *testing.T) {
					t.Parallel()
					model := e.single(t, "rs-nousage"+sfx, "nousage")
					id := reqID(t)
					if err := responsesCall(t, c, params(model), stream, id); err != nil {
						t.Fatalf("responses: %v", err)
					}
					row := e.g.waitRow(t, id)
					wantRowOK(t, row, "nousage", stream)
					if !row.Estimated {
						t.Errorf("usage row not marked estimated though the upstream reported none: %+v", row)
					}
				})
				t.Run("429"+sfx, func(t *testing.T) {
					t.Parallel()
					model := e.single(t, "rs-429"+sfx, "r429")
					id := reqID(t)
					apierr := wantAPIError(t, responsesCall(t, c, params(model), stream, id), http.StatusTooManyRequests, "")
					if ra := apierr.Response.Header.Get("Retry-After"); ra != "7" {
						t.Errorf("Retry-After = %q, want 7", ra)
					}
					wantRowError(t, e.g.waitRow(t, id), "r429", http.StatusTooManyRequests, http.StatusTooManyRequests)
				})
			}
			t.Run("midstream_disconnect", func(t *testing.T) {
				t.Parallel()
				model := e.single(t, "rs-disconnect", "disconnect")
				id := reqID(t)
				err := responsesCall(t, c, params(model), true, id)
				if err == nil {
					t.Fatalf("stream ended without error after the upstream broke")
				}
				row := e.g.waitRow(t, id)
				if row.Status != "stream_broken" || !row.Estimated || row.PromptTokens <= 0 || row.CompletionTokens <= 0 || row.Provider != "disconnect" {
					t.Errorf("usage row %+v, want status stream_broken, estimated tokens, provider disconnect", row)
				}
			})
			t.Run("create", func(t *testing.T) {
				t.Parallel()
				model := e.single(t, "rs-create", "ok")
				id := reqID(t)
				var resp *http.Response
				r, err := c.Responses.New(testCtx(t, 15*time.Second), params(model), option.WithHeader("X-Request-Id", id), option.WithResponseInto(&resp))
				if err != nil {
					t.Fatalf("responses.create: %v", err)
				}
				if r.OutputText() == "" || r.Status != "completed" {
					t.Fatalf("responses.create: %s", r.RawJSON())
				}
				if r.Usage.InputTokens <= 0 || r.Usage.OutputTokens <= 0 {
					t.Errorf("usage %s", r.Usage.RawJSON())
				}
				checkSluiceHeaders(t, resp, "ok")
				row := e.g.waitRow(t, id)
				wantRowOK(t, row, "ok", false)
				if row.Estimated || row.PromptTokens != r.Usage.InputTokens || row.CompletionTokens != r.Usage.OutputTokens ||
					row.CachedTokens != r.Usage.InputTokensDetails.CachedTokens {
					t.Errorf("usage row %+v disagrees with the answer's usage %s", row, r.Usage.RawJSON())
				}
			})
			t.Run("stream", func(t *testing.T) {
				t.Parallel()
				model := e.single(t, "rs-stream", "ok")
				id := reqID(t)
				s := c.Responses.NewStreaming(testCtx(t, 15*time.Second), params(model), option.WithHeader("X-Request-Id", id))
				var text string
				var done *responses.Response
				for s.Next() {
					ev := s.Current()
					switch ev.Type {
					case "response.output_text.delta":
						text += ev.Delta
					case "response.completed":
						r := ev.Response
						done = &r
					}
				}
				if err := s.Err(); err != nil {
					t.Fatalf("stream: %v", err)
				}
				s.Close()
				if text == "" || done == nil {
					t.Fatalf("stream: text %q, completed event %v", text, done != nil)
				}
				if done.OutputText() != text {
					t.Errorf("completed response text %q, deltas %q", done.OutputText(), text)
				}
				if done.Usage.InputTokens <= 0 || done.Usage.OutputTokens <= 0 {
					t.Errorf("completed usage %s", done.Usage.RawJSON())
				}
				row := e.g.waitRow(t, id)
				wantRowOK(t, row, "ok", true)
				if row.Estimated || row.PromptTokens != done.Usage.InputTokens || row.CompletionTokens != done.Usage.OutputTokens {
					t.Errorf("usage row %+v disagrees with the stream's usage %s", row, done.Usage.RawJSON())
				}
			})
		})
	}
}

// responsesCall makes one Responses call (streamed or not) and returns its
// error; a stream must end with response.completed.
func responsesCall(t *testing.T, c *openai.Client, p responses.ResponseNewParams, stream bool, id string) error {
	t.Helper()
	ctx := testCtx(t, 15*time.Second)
	if !stream {
		r, err := c.Responses.New(ctx, p, option.WithHeader("X-Request-Id", id))
		if err == nil && r.OutputText() == "" {
			t.Errorf("responses.create: no text: %s", r.RawJSON())
		}
		return err
	}
	s := c.Responses.NewStreaming(ctx, p, option.WithHeader("X-Request-Id", id))
	defer s.Close()
	completed := false
	for s.Next() {
		if s.Current().Type == "response.completed" {
			completed = true
		}
	}
	if err := s.Err(); err != nil {
		return err
	}
	if !completed {
		return errors.New("stream ended without response.completed")
	}
	return nil
}
