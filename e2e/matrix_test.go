package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// The scenario matrix of issue 6: every provider family × every scenario,
// through the real gateway binary, driven by the official SDKs (openai-go
// on /v1/chat/completions and /v1/responses, anthropic-sdk-go on
// /v1/messages). One mockllm and one gateway per family; the mock's
// failure modes are chosen per provider with static X-Mock-* headers (the
// gateway does not forward a client's X-Mock-* headers upstream, rightly),
// so each behaviour is one provider and each case its own model (its own
// deployments, so one case's cooldowns and ejections never touch another).

// matrixFamily is one provider family under test.
type matrixFamily struct {
	name string // subtest name
	typ  string // provider type
	// upstream is the upstream model name of every deployment.
	upstream string
	// body returns the family's POST /admin/providers body (without name,
	// headers and timeouts) for a mock at mockURL.
	body func(mockURL string) map[string]any
	// noToolIDs is true for wire formats that match tool results to calls
	// by name, with no call id (Gemini's functionResponse).
	noToolIDs bool
}

// matrixFamilies lists the families: the OpenAI wire family, its
// compatible and Azure variants, and the translated families.
func matrixFamilies() []matrixFamily {
	// Upstream keys are random: the providers redact every 8-byte fragment
	// of a key from what they relay, so a key spelt "sk-upstream-…" would
	// turn the gateway's own "upstream_error" into "[redacted]_error".
	key := func() string { return "sk-mx-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "x9q" }
	return []matrixFamily{
		{name: "openai", typ: "openai", upstream: "gpt-4o-mini",
			body: func(u string) map[string]any { return map[string]any{"base_url": u + "/v1", "api_key": key()} }},
		{name: "openai-compatible", typ: "openai-compatible", upstream: "gpt-4o-mini",
			body: func(u string) map[string]any { return map[string]any{"base_url": u + "/v1", "api_key": key()} }},
		{name: "azure", typ: "azure", upstream: "gpt-4o-mini",
			body: func(u string) map[string]any { return map[string]any{"base_url": u, "api_key": key()} }},
		{name: "anthropic", typ: "anthropic", upstream: "claude-sonnet-4-5",
			body: func(u string) map[string]any { return map[string]any{"base_url": u, "api_key": key()} }},
		{name: "gemini", typ: "gemini", upstream: "gemini-2.5-flash", noToolIDs: true,
			body: func(u string) map[string]any { return map[string]any{"base_url": u, "api_key": key()} }},
		{name: "vertex", typ: "vertex", upstream: "gemini-2.5-flash", noToolIDs: true,
			body: func(u string) map[string]any {
				return map[string]any{"base_url": u,
					"options": map[string]any{"project": "sluice-e2e", "location": "us-central1"},
					"secrets": map[string]any{"service_account": serviceAccountJSON(u + "/token")}}
			}},
		{name: "bedrock", typ: "bedrock", upstream: "anthropic.claude-3-5-haiku-20241022-v1:0",
			body: func(u string) map[string]any {
				return map[string]any{"base_url": u, "api_key": key(),
					"options": map[string]any{"region": "us-east-1"}}
			}},
	}
}

// serviceAccountJSON returns a Google service account key (a fresh RSA
// key) whose token endpoint is tokenURI: the mock's /token, which grants
// the JWT-bearer exchange.
func serviceAccountJSON(tokenURI string) string {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "sluice-e2e", "private_key_id": "0123456789abcdef0123456789abcdef01234567",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "sluice-e2e@sluice-e2e.iam.gserviceaccount.com", "token_uri": tokenURI,
	})
	return string(b)
}

// behaviours are the providers every family gets: a name and the X-Mock-*
// headers that make the mock behave so, with the provider's timeouts.
var behaviours = []struct {
	name    string
	headers map[string]string
	to      *timeouts
}{
	{"ok", nil, nil},
	{"nousage", map[string]string{"X-Mock-No-Usage": "true"}, nil},
	{"r429", map[string]string{"X-Mock-Status": "429", "X-Mock-Retry-After": "7"}, nil},
	{"e500", map[string]string{"X-Mock-Status": "500"}, nil},
	// Slow before the headers (a non-streamed answer, or a stream whose
	// headers are late) and slow before the first event of a stream.
	{"slow", map[string]string{"X-Mock-Latency": "3s"}, &timeouts{Connect: "1s", FirstByte: "500ms", Idle: "1s"}},
	{"slowttft", map[string]string{"X-Mock-Ttft": "3s"}, &timeouts{Connect: "1s", FirstByte: "500ms", Idle: "1s"}},
	{"disconnect", map[string]string{"X-Mock-Disconnect-After": "6", "X-Mock-Chunks": "12"}, nil},
}

// familyEnv is one family's running mock and gateway.
type familyEnv struct {
	fam  matrixFamily
	g    *gateway
	m    *mockLLM
	key  string
	mu   sync.Mutex
	seen map[string]bool // model names created
}

// errNotBuilt is returned by setupFamily when this build has no provider
// of the family's type (the admin API refuses the type as unknown).
var errNotBuilt = errors.New("provider type not built")

// setupFamily starts a mock and a gateway and creates one provider per
// behaviour. It reports errNotBuilt when the admin API rejects the type as
// unknown: the only reason a family's cases are skipped.
func setupFamily(t *testing.T, fam matrixFamily) (*familyEnv, error) {
	t.Helper()
	m := startMock(t)
	g := startGateway(t, gwOptions{})
	for _, b := range behaviours {
		body := fam.body(m.URL)
		body["name"] = b.name
		body["type"] = fam.typ
		if b.headers != nil {
			body["headers"] = b.headers
		}
		if b.to != nil {
			body["timeouts"] = b.to
		}
		code, data := g.adminDo(t, http.MethodPost, "/admin/providers", body)
		if code == http.StatusBadRequest && strings.Contains(string(data), "unknown provider type") {
			return nil, errNotBuilt
		}
		if code/100 != 2 {
			t.Fatalf("POST /admin/providers %s/%s: status %d: %s", fam.typ, b.name, code, data)
		}
	}
	k := g.addKey(t, "matrix-"+fam.name, nil)
	return &familyEnv{fam: fam, g: g, m: m, key: k.Key, seen: map[string]bool{}}, nil
}

// dep is one deployment of a case's model: a behaviour's provider and its weight.
type dep struct {
	provider string
	weight   int
}

// model creates the model name served by deps (upstream model: the family's).
// The first deployment of a fallback model has the largest weight, so the
// balancer tries it first (all but certainly: 2²⁰ to 1).
func (e *familyEnv) model(t *testing.T, name string, deps ...dep) string {
	t.Helper()
	e.mu.Lock()
	if e.seen[name] {
		e.mu.Unlock()
		t.Fatalf("model %s created twice", name)
	}
	e.seen[name] = true
	e.mu.Unlock()
	ds := make([]deployment, 0, len(deps))
	for _, d := range deps {
		ds = append(ds, deployment{Provider: d.provider, Model: e.fam.upstream, Weight: d.weight, InputPrice: 1, OutputPrice: 2})
	}
	e.g.adminOK(t, http.MethodPost, "/admin/models", map[string]any{"name": name, "deployments": ds}, nil)
	return name
}

// single creates a model on one behaviour's provider.
func (e *familyEnv) single(t *testing.T, name, behaviour string) string {
	return e.model(t, name, dep{behaviour, 1})
}

// fallback creates a model whose first-tried deployment fails with
// behaviour and whose second is healthy.
func (e *familyEnv) fallback(t *testing.T, name, behaviour string) string {
	return e.model(t, name, dep{behaviour, 1 << 20}, dep{"ok", 1})
}

// retries returns sluice_upstream_retries_total{model=name}, 0 when absent.
func (e *familyEnv) retries(t *testing.T, name string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^sluice_upstream_retries_total\{model="` + regexp.QuoteMeta(name) + `"\} (\S+)$`)
	m := re.FindStringSubmatch(e.g.metrics(t))
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// requestRow is one row of GET /admin/requests.
type requestRow struct {
	RequestID        string `json:"request_id"`
	ClientRequestID  string `json:"client_request_id"`
	Endpoint         string `json:"endpoint"`
	Model            string `json:"model"`
	Provider         string `json:"provider"`
	UpstreamModel    string `json:"upstream_model"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	CachedTokens     int64  `json:"cached_tokens"`
	CacheWriteTokens int64  `json:"cache_write_tokens"`
	ReasoningTokens  int64  `json:"reasoning_tokens"`
	CostMicros       int64  `json:"cost_micros"`
	HTTPStatus       int    `json:"http_status"`
	UpstreamStatus   int    `json:"upstream_status"`
	Status           string `json:"status"`
	ErrorType        string `json:"error_type"`
	Stream           bool   `json:"stream"`
	Estimated        bool   `json:"estimated"`
}

// waitRow polls /admin/requests for the row of client request id id.
func (g *gateway) waitRow(t testing.TB, id string) requestRow {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for {
		code, data := g.adminDo(t, http.MethodGet, "/admin/requests?"+url.Values{"client_request_id": {id}}.Encode(), nil)
		if code != http.StatusOK {
			t.Fatalf("GET /admin/requests: status %d: %s", code, data)
		}
		var env struct {
			Items []requestRow `json:"items"`
		}
		if err := json.Unmarshal(data, &env); err != nil {
			t.Fatalf("GET /admin/requests: decode %s: %v", data, err)
		}
		if len(env.Items) > 0 {
			if len(env.Items) > 1 {
				t.Errorf("%d usage rows for request %s, want 1: %s", len(env.Items), id, data)
			}
			return env.Items[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no usage row for request %q within 8s", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reqID returns a fresh client request id for a case.
func reqID(t *testing.T) string {
	return "mx-" + strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()) + "-" + randHex(t, 4)
}

// wantRowOK checks the usage row of a successful request answered by provider.
func wantRowOK(t *testing.T, row requestRow, provider string, stream bool) {
	t.Helper()
	if row.Status != "ok" || row.HTTPStatus != http.StatusOK {
		t.Errorf("usage row status %q http %d, want ok 200: %+v", row.Status, row.HTTPStatus, row)
	}
	if row.Provider != provider {
		t.Errorf("usage row provider %q, want %q", row.Provider, provider)
	}
	if row.Stream != stream {
		t.Errorf("usage row stream = %v, want %v", row.Stream, stream)
	}
	if row.PromptTokens <= 0 || row.CompletionTokens <= 0 {
		t.Errorf("usage row without tokens: %+v", row)
	}
	if row.CachedTokens+row.CacheWriteTokens > row.PromptTokens {
		t.Errorf("usage row cache tokens exceed prompt tokens: %+v", row)
	}
	if row.CostMicros <= 0 {
		t.Errorf("usage row without cost: %+v", row)
	}
}

// wantRowError checks the usage row of a request that failed before any
// answer: status error, the client's HTTP status, the upstream's (0 = not
// checked), the provider tried, and no tokens of an answer.
func wantRowError(t *testing.T, row requestRow, provider string, status, upstream int) {
	t.Helper()
	if row.Status != "error" || row.HTTPStatus != status || row.Provider != provider ||
		(upstream != 0 && row.UpstreamStatus != upstream) || row.CompletionTokens != 0 {
		t.Errorf("usage row %+v, want status error, http %d, upstream %d, provider %s, no completion tokens", row, status, upstream, provider)
	}
}

// pngB64 is a 1×1 transparent PNG.
const pngB64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="

// weatherTool is the one tool the tool cases offer.
var weatherTool = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name:        "get_weather",
	Description: openai.String("Current weather for a city"),
	Parameters: shared.FunctionParameters{
		"type":       "object",
		"properties": map[string]any{"city": map[string]any{"type": "string"}},
		"required":   []string{"city"},
	},
})

// TestMatrix runs every scenario for every family through the gateway's
// OpenAI surface (openai-go) and Anthropic surface (anthropic-sdk-go).
func TestMatrix(t *testing.T) {
	t.Parallel()
	for _, fam := range matrixFamilies() {
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			e, err := setupFamily(t, fam)
			if errors.Is(err, errNotBuilt) {
				t.Skipf("provider %s not built (the admin API rejects type %q as unknown)", fam.typ, fam.typ)
			}
			t.Run("openai", func(t *testing.T) { e.openaiSurface(t) })
			t.Run("messages", func(t *testing.T) { e.messagesSurface(t) })
		})
	}
}

// openaiSurface runs the scenarios through POST /v1/chat/completions.
// The cases that read the mock's last request body run first, one at a
// time; the rest in parallel.
func (e *familyEnv) openaiSurface(t *testing.T) {
	c := e.g.client(e.key)
	t.Run("image", func(t *testing.T) {
		model := e.single(t, "oa-image", "ok")
		id := reqID(t)
		ctx := testCtx(t, 15*time.Second)
		p := openai.ChatCompletionNewParams{Model: model, Messages: []openai.ChatCompletionMessageParamUnion{
			openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
				openai.TextContentPart("What is in this picture?"),
				openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/png;base64," + pngB64}),
			}),
		}}
		cc, err := c.Chat.Completions.New(ctx, p, option.WithHeader("X-Request-Id", id))
		if err != nil {
			t.Fatalf("chat with image: %v", err)
		}
		if len(cc.Choices) != 1 || cc.Choices[0].Message.Content == "" {
			t.Fatalf("chat with image: empty answer: %s", cc.RawJSON())
		}
		if up := e.m.stats(t).LastBody; !strings.Contains(up, pngB64) {
			t.Errorf("upstream body lacks the image data: %.600s", up)
		}
		wantRowOK(t, e.g.waitRow(t, id), "ok", false)
	})
	t.Run("tool_result", func(t *testing.T) {
		model := e.single(t, "oa-toolresult", "ok")
		marker := "sunny-" + randHex(t, 4)
		id := reqID(t)
		ctx := testCtx(t, 15*time.Second)
		asst := openai.ChatCompletionAssistantMessageParam{ToolCalls: []openai.ChatCompletionMessageToolCallUnionParam{{
			OfFunction: &openai.ChatCompletionMessageFunctionToolCallParam{ID: "call_e2e1", Function: openai.ChatCompletionMessageFunctionToolCallFunctionParam{
				Name: "get_weather", Arguments: `{"city":"Paris"}`}},
		}}}
		p := openai.ChatCompletionNewParams{Model: model, Tools: []openai.ChatCompletionToolUnionParam{weatherTool},
			Messages: []openai.ChatCompletionMessageParamUnion{
				openai.UserMessage("What is the weather in Paris?"),
				{OfAssistant: &asst},
				openai.ToolMessage(marker, "call_e2e1"),
			}}
		cc, err := c.Chat.Completions.New(ctx, p, option.WithHeader("X-Request-Id", id))
		if err != nil {
			t.Fatalf("tool result round trip: %v", err)
		}
		if len(cc.Choices) != 1 || cc.Choices[0].Message.Content == "" || len(cc.Choices[0].Message.ToolCalls) != 0 {
			t.Fatalf("after a tool result want a text answer, got %s", cc.RawJSON())
		}
		if cc.Choices[0].FinishReason != "stop" {
			t.Errorf("finish_reason %q, want stop", cc.Choices[0].FinishReason)
		}
		up := e.m.stats(t).LastBody
		if !strings.Contains(up, marker) || (!e.fam.noToolIDs && !strings.Contains(up, "call_e2e1")) || !strings.Contains(up, "get_weather") {
			t.Errorf("upstream body lacks the tool call or its result: %.800s", up)
		}
		wantRowOK(t, e.g.waitRow(t, id), "ok", false)
	})

	t.Run("chat", func(t *testing.T) {
		t.Parallel()
		model := e.single(t, "oa-chat", "ok")
		id := reqID(t)
		var resp *http.Response
		cc, err := c.Chat.Completions.New(testCtx(t, 15*time.Second), chatParams(model, "Say hello to the matrix"),
			option.WithHeader("X-Request-Id", id), option.WithResponseInto(&resp))
		if err != nil {
			t.Fatalf("chat: %v", err)
		}
		if len(cc.Choices) != 1 || cc.Choices[0].Message.Content == "" || cc.Choices[0].FinishReason != "stop" {
			t.Fatalf("chat: %s", cc.RawJSON())
		}
		checkSluiceHeaders(t, resp, "ok")
		if cc.Usage.PromptTokens <= 0 || cc.Usage.CompletionTokens <= 0 || cc.Usage.TotalTokens != cc.Usage.PromptTokens+cc.Usage.CompletionTokens {
			t.Errorf("usage %s", cc.Usage.RawJSON())
		}
		row := e.g.waitRow(t, id)
		wantRowOK(t, row, "ok", false)
		if row.Estimated || row.PromptTokens != cc.Usage.PromptTokens || row.CompletionTokens != cc.Usage.CompletionTokens ||
			row.CachedTokens != cc.Usage.PromptTokensDetails.CachedTokens {
			t.Errorf("usage row %+v disagrees with the answer's usage %s", row, cc.Usage.RawJSON())
		}
	})
	t.Run("stream", func(t *testing.T) {
		t.Parallel()
		model := e.single(t, "oa-stream", "ok")
		id := reqID(t)
		p := chatParams(model, "stream to the matrix")
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		var resp *http.Response
		s := c.Chat.Completions.NewStreaming(testCtx(t, 15*time.Second), p, option.WithHeader("X-Request-Id", id), option.WithResponseInto(&resp))
		var acc openai.ChatCompletionAccumulator
		usageChunks := 0
		for s.Next() {
			ch := s.Current()
			acc.AddChunk(ch)
			if ch.JSON.Usage.Valid() && ch.Usage.TotalTokens > 0 {
				usageChunks++
			}
		}
		if err := s.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		s.Close()
		if len(acc.Choices) != 1 || acc.Choices[0].Message.Content == "" || acc.Choices[0].FinishReason != "stop" {
			t.Fatalf("stream: accumulated %+v", acc.Choices)
		}
		if usageChunks != 1 || acc.Usage.PromptTokens <= 0 || acc.Usage.CompletionTokens <= 0 {
			t.Errorf("stream: %d usage chunks, usage %+v", usageChunks, acc.Usage)
		}
		checkSluiceHeaders(t, resp, "ok")
		row := e.g.waitRow(t, id)
		wantRowOK(t, row, "ok", true)
		if row.Estimated || row.PromptTokens != acc.Usage.PromptTokens || row.CompletionTokens != acc.Usage.CompletionTokens {
			t.Errorf("usage row %+v disagrees with the stream's usage %+v", row, acc.Usage)
		}
	})
	for _, stream := range []bool{false, true} {
		sfx := map[bool]string{false: "", true: "_stream"}[stream]
		t.Run("tool_call"+sfx, func(t *testing.T) {
			t.Parallel()
			model := e.single(t, "oa-toolcall"+sfx, "ok")
			id := reqID(t)
			p := openai.ChatCompletionNewParams{Model: model, Tools: []openai.ChatCompletionToolUnionParam{weatherTool},
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is the weather in Paris?")}}
			ctx := testCtx(t, 15*time.Second)
			var msg openai.ChatCompletionMessage
			var finish string
			if stream {
				s := c.Chat.Completions.NewStreaming(ctx, p, option.WithHeader("X-Request-Id", id))
				var acc openai.ChatCompletionAccumulator
				for s.Next() {
					acc.AddChunk(s.Current())
				}
				if err := s.Err(); err != nil {
					t.Fatalf("stream: %v", err)
				}
				s.Close()
				if len(acc.Choices) != 1 {
					t.Fatalf("stream: %d choices", len(acc.Choices))
				}
				msg, finish = acc.Choices[0].Message, acc.Choices[0].FinishReason
			} else {
				cc, err := c.Chat.Completions.New(ctx, p, option.WithHeader("X-Request-Id", id))
				if err != nil {
					t.Fatalf("chat: %v", err)
				}
				if len(cc.Choices) != 1 {
					t.Fatalf("chat: %s", cc.RawJSON())
				}
				msg, finish = cc.Choices[0].Message, cc.Choices[0].FinishReason
			}
			if finish != "tool_calls" || len(msg.ToolCalls) != 1 {
				t.Fatalf("want one tool call and finish_reason tool_calls, got finish %q message %s", finish, msg.RawJSON())
			}
			tc := msg.ToolCalls[0]
			if tc.Function.Name != "get_weather" || tc.ID == "" || !json.Valid([]byte(tc.Function.Arguments)) {
				t.Errorf("tool call %s", tc.RawJSON())
			}
			wantRowOK(t, e.g.waitRow(t, id), "ok", stream)
		})
		t.Run("usage_missing"+sfx, func(t *testing.T) {
			t.Parallel()
			model := e.single(t, "oa-nousage"+sfx, "nousage")
			id := reqID(t)
			p := chatParams(model, "count these words for me please")
			ctx := testCtx(t, 15*time.Second)
			if stream {
				p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
				s := c.Chat.Completions.NewStreaming(ctx, p, option.WithHeader("X-Request-Id", id))
				n := 0
				for s.Next() {
					n++
				}
				if err := s.Err(); err != nil || n == 0 {
					t.Fatalf("stream: %d chunks, %v", n, err)
				}
				s.Close()
			} else {
				cc, err := c.Chat.Completions.New(ctx, p, option.WithHeader("X-Request-Id", id))
				if err != nil || cc.Choices[0].Message.Content == "" {
					t.Fatalf("chat: %v", err)
				}
			}
			row := e.g.waitRow(t, id)
			wantRowOK(t, row, "nousage", stream)
			if !row.Estimated {
				t.Errorf("usage row not marked estimated though the upstream reported none: %+v", row)
			}
		})
		t.Run("429"+sfx, func(t *testing.T) {
			t.Parallel()
			model := e.single(t, "oa-429"+sfx, "r429")
			id := reqID(t)
			err := e.openaiCall(t, c, model, stream, id)
			apierr := wantAPIError(t, err, http.StatusTooManyRequests, "")
			wantRowError(t, e.g.waitRow(t, id), "r429", http.StatusTooManyRequests, http.StatusTooManyRequests)
			if ra := apierr.Response.Header.Get("Retry-After"); ra != "7" {
				t.Errorf("Retry-After = %q, want 7", ra)
			}
			fb := e.fallback(t, "oa-429-fb"+sfx, "r429")
			e.wantFallback(t, c, fb, stream)
		})
		t.Run("500"+sfx, func(t *testing.T) {
			t.Parallel()
			model := e.single(t, "oa-500"+sfx, "e500")
			id := reqID(t)
			err := e.openaiCall(t, c, model, stream, id)
			var apierr *openai.Error
			if !errors.As(err, &apierr) || apierr.StatusCode < 500 {
				t.Fatalf("want a 5xx *openai.Error, got %T %v", err, err)
			}
			wantRowError(t, e.g.waitRow(t, id), "e500", apierr.StatusCode, http.StatusInternalServerError)
			fb := e.fallback(t, "oa-500-fb"+sfx, "e500")
			e.wantFallback(t, c, fb, stream)
		})
		t.Run("slow_first_token"+sfx, func(t *testing.T) {
			t.Parallel()
			slow := "slow"
			if stream {
				slow = "slowttft"
			}
			// The mock would answer after 3 s: a 504 is the 500 ms
			// first-byte timeout firing (no timed assertion needed).
			model := e.single(t, "oa-slow"+sfx, slow)
			id := reqID(t)
			err := e.openaiCall(t, c, model, stream, id)
			wantAPIError(t, err, http.StatusGatewayTimeout, "")
			wantRowError(t, e.g.waitRow(t, id), slow, http.StatusGatewayTimeout, 0)
			fb := e.fallback(t, "oa-slow-fb"+sfx, slow)
			e.wantFallback(t, c, fb, stream)
		})
	}
	t.Run("midstream_disconnect", func(t *testing.T) {
		t.Parallel()
		model := e.single(t, "oa-disconnect", "disconnect")
		id := reqID(t)
		var rb bodyRecorder
		cl := e.g.client(e.key, rb.middleware())
		s := cl.Chat.Completions.NewStreaming(testCtx(t, 15*time.Second), chatParams(model, "one two three four"), option.WithHeader("X-Request-Id", id))
		n := 0
		for s.Next() {
			n++
		}
		err := s.Err()
		s.Close()
		if n == 0 {
			t.Fatalf("no chunk before the break: %v", err)
		}
		if err == nil {
			t.Fatalf("stream ended without error after the upstream broke; body:\n%s", rb.last())
		}
		if strings.Contains(rb.last(), "[DONE]") {
			t.Errorf("broken stream ends with [DONE]:\n%s", rb.last())
		}
		row := e.g.waitRow(t, id)
		if row.Status != "stream_broken" || !row.Estimated || row.PromptTokens <= 0 || row.Provider != "disconnect" {
			t.Errorf("usage row %+v, want status stream_broken, estimated, provider disconnect", row)
		}
	})
}

// openaiCall makes one chat call (streamed or not) and returns its error.
func (e *familyEnv) openaiCall(t *testing.T, c *openai.Client, model string, stream bool, id string) error {
	t.Helper()
	ctx := testCtx(t, 15*time.Second)
	if !stream {
		_, err := c.Chat.Completions.New(ctx, chatParams(model, "hi"), option.WithHeader("X-Request-Id", id))
		return err
	}
	s := c.Chat.Completions.NewStreaming(ctx, chatParams(model, "hi"), option.WithHeader("X-Request-Id", id))
	defer s.Close()
	for s.Next() {
	}
	return s.Err()
}

// wantFallback checks that a request to the fallback model fb succeeds on
// the healthy deployment after the failing one was tried.
func (e *familyEnv) wantFallback(t *testing.T, c *openai.Client, fb string, stream bool) {
	t.Helper()
	id := reqID(t) + "-fb"
	if err := e.openaiCall(t, c, fb, stream, id); err != nil {
		t.Fatalf("fallback model %s: %v", fb, err)
	}
	wantRowOK(t, e.g.waitRow(t, id), "ok", stream)
	if n := e.retries(t, fb); n < 1 {
		t.Errorf("sluice_upstream_retries_total{model=%q} = %v, want ≥ 1 (the failing deployment first, then the healthy one)", fb, n)
	}
}
