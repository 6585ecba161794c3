package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// checkSluiceHeaders fails unless resp carries the gateway's answer headers.
func checkSluiceHeaders(t *testing.T, resp *http.Response, wantProvider string) {
	t.Helper()
	if resp == nil {
		t.Fatalf("no *http.Response captured")
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("missing x-request-id; headers %v", resp.Header)
	}
	if got := resp.Header.Get("X-Sluice-Provider"); got != wantProvider {
		t.Errorf("x-sluice-provider = %q, want %q", got, wantProvider)
	}
	if resp.Header.Get("X-Sluice-Deployment") == "" {
		t.Errorf("missing x-sluice-deployment")
	}
	ms, err := strconv.ParseFloat(resp.Header.Get("X-Sluice-Overhead-Ms"), 64)
	if err != nil || ms < 0 {
		t.Errorf("x-sluice-overhead-ms = %q, want a non-negative number", resp.Header.Get("X-Sluice-Overhead-Ms"))
	}
}

// TestOpenAIEndpoints covers the happy paths of every OpenAI endpoint
// through the openai-go SDK (tests 1–4 of the e2e plan).
func TestOpenAIEndpoints(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gwOptions{})
	g, m := f.gw, f.mock
	g.addModel(t, "gpt-4o", "mock")
	g.addModel(t, "text-embedding-3-small", "mock")
	c := g.client(f.key.Key)

	t.Run("chat", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		var resp *http.Response
		cc, err := c.Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "Say hello to the tests"), option.WithResponseInto(&resp))
		if err != nil {
			t.Fatalf("chat: %v", err)
		}
		if len(cc.Choices) != 1 || cc.Choices[0].Message.Content == "" {
			t.Fatalf("chat: empty content: %s", cc.RawJSON())
		}
		if cc.Usage.PromptTokens <= 0 || cc.Usage.CompletionTokens <= 0 || cc.Usage.TotalTokens <= 0 {
			t.Errorf("chat usage = %+v, want tokens > 0", cc.Usage)
		}
		checkSluiceHeaders(t, resp, "mock")
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("content-type = %q", ct)
		}
	})

	t.Run("stream_include_usage", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		p := chatParams("gpt-4o-mini", "stream please")
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		var resp *http.Response
		s := c.Chat.Completions.NewStreaming(ctx, p, option.WithResponseInto(&resp))
		defer s.Close()
		var acc openai.ChatCompletionAccumulator
		var content strings.Builder
		var usageChunks, contentChunks int
		var last openai.ChatCompletionChunk
		for s.Next() {
			ch := s.Current()
			acc.AddChunk(ch)
			last = ch
			if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
				contentChunks++
				content.WriteString(ch.Choices[0].Delta.Content)
			}
			if ch.Usage.TotalTokens > 0 {
				usageChunks++
				if len(ch.Choices) != 0 {
					t.Errorf("usage chunk has %d choices, want 0", len(ch.Choices))
				}
			}
		}
		if err := s.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if contentChunks == 0 {
			t.Fatalf("no content chunks")
		}
		if usageChunks != 1 {
			t.Errorf("usage chunks = %d, want 1", usageChunks)
		}
		if last.Usage.TotalTokens == 0 || len(last.Choices) != 0 {
			t.Errorf("last chunk is not the usage chunk: %s", last.RawJSON())
		}
		if acc.Usage.PromptTokens <= 0 || acc.Usage.CompletionTokens <= 0 {
			t.Errorf("accumulated usage = %+v", acc.Usage)
		}
		if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != content.String() {
			t.Errorf("accumulator choices %+v, want content %q", acc.Choices, content.String())
		}
		checkSluiceHeaders(t, resp, "mock")
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Errorf("content-type = %q", ct)
		}
	})

	t.Run("stream_without_usage", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		s := c.Chat.Completions.NewStreaming(ctx, chatParams("gpt-4o-mini", "stream no usage"))
		defer s.Close()
		var n int
		for s.Next() {
			ch := s.Current()
			n++
			if ch.JSON.Usage.Valid() && ch.Usage.TotalTokens > 0 {
				t.Errorf("chunk carries usage though the client did not ask: %s", ch.RawJSON())
			}
			if len(ch.Choices) == 0 {
				t.Errorf("chunk without choices forwarded: %s", ch.RawJSON())
			}
		}
		if err := s.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if n == 0 {
			t.Fatalf("no chunks")
		}
		st := m.stats(t)
		var up struct {
			Stream        bool `json:"stream"`
			StreamOptions struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		if err := json.Unmarshal([]byte(st.LastBody), &up); err != nil {
			t.Fatalf("mock last_body %q: %v", st.LastBody, err)
		}
		if !up.Stream || !up.StreamOptions.IncludeUsage {
			t.Errorf("upstream body did not ask for usage: %s", st.LastBody)
		}
	})

	t.Run("embeddings", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		var resp *http.Response
		e, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model: "text-embedding-3-small",
			Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"one two", "three"}},
		}, option.WithResponseInto(&resp))
		if err != nil {
			t.Fatalf("embeddings: %v", err)
		}
		if len(e.Data) != 2 || len(e.Data[0].Embedding) == 0 {
			t.Fatalf("embeddings: %s", e.RawJSON())
		}
		if e.Usage.PromptTokens <= 0 {
			t.Errorf("embedding usage = %+v", e.Usage)
		}
		checkSluiceHeaders(t, resp, "mock")

		b64, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model:          "text-embedding-3-small",
			Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"one two", "three"}},
			EncodingFormat: openai.EmbeddingNewParamsEncodingFormatBase64,
		})
		if err != nil {
			t.Fatalf("embeddings base64: %v", err)
		}
		if len(b64.Data) != 2 || !strings.HasPrefix(b64.Data[0].JSON.Embedding.Raw(), `"`) {
			t.Fatalf("embeddings base64: not base64 encoded: %.200s", b64.RawJSON())
		}
		for i := range e.Data {
			a, b := e.Data[i].Embedding, b64.Data[i].Embedding
			if len(a) != len(b) {
				t.Fatalf("float and base64 lengths differ: %d vs %d", len(a), len(b))
			}
			for j := range a {
				if d := a[j] - b[j]; d > 1e-6 || d < -1e-6 {
					t.Fatalf("float and base64 differ at [%d][%d]: %v vs %v", i, j, a[j], b[j])
				}
			}
		}
	})

	t.Run("completions", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		var resp *http.Response
		cp, err := c.Completions.New(ctx, openai.CompletionNewParams{
			Model:  openai.CompletionNewParamsModel("gpt-4o-mini"),
			Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		}, option.WithResponseInto(&resp))
		if err != nil {
			t.Fatalf("completions: %v", err)
		}
		if len(cp.Choices) != 1 || cp.Choices[0].Text == "" {
			t.Fatalf("completions: %s", cp.RawJSON())
		}
		if cp.Usage.PromptTokens <= 0 || cp.Usage.CompletionTokens <= 0 {
			t.Errorf("completion usage = %+v", cp.Usage)
		}
		checkSluiceHeaders(t, resp, "mock")
	})

	t.Run("models", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		list := func(key string) []string {
			t.Helper()
			page, err := g.client(key).Models.List(ctx)
			if err != nil {
				t.Fatalf("models: %v", err)
			}
			var ids []string
			for _, m := range page.Data {
				ids = append(ids, m.ID)
			}
			slices.Sort(ids)
			return ids
		}
		restricted := g.addKey(t, "only-mini", []string{"gpt-4o-mini"})
		if got := list(restricted.Key); !slices.Equal(got, []string{"gpt-4o-mini"}) {
			t.Errorf("restricted key sees %v, want [gpt-4o-mini]", got)
		}
		got := list(f.key.Key)
		for _, want := range []string{"gpt-4o", "gpt-4o-mini", "text-embedding-3-small"} {
			if !slices.Contains(got, want) {
				t.Errorf("unrestricted key sees %v, missing %s", got, want)
			}
		}
		m, err := g.client(restricted.Key).Models.Get(ctx, "gpt-4o-mini")
		if err != nil || m.ID != "gpt-4o-mini" {
			t.Errorf("models/gpt-4o-mini: %v %+v", err, m)
		}
		_, err = g.client(restricted.Key).Models.Get(ctx, "gpt-4o")
		wantAPIError(t, err, http.StatusNotFound, "")
	})
}
