package e2e

import (
	"errors"
	"net/http"
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
