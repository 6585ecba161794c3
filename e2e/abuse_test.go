package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Findings of the end-to-end sweep of issue 5 ("then keep trying"): a
// hostile upstream (an httptest server where cmd/mockllm cannot misbehave
// the way needed) and careless clients against the real binaries.

// hostileUpstream is an httptest server whose handler is chosen per
// provider by the first path segment of the base URL: provider "x" gets
// base URL <server>/x/v1.
type hostileUpstream struct {
	*httptest.Server
	routes map[string]http.HandlerFunc
}

func newHostileUpstream(t testing.TB, routes map[string]http.HandlerFunc) *hostileUpstream {
	t.Helper()
	h := &hostileUpstream{routes: routes}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if f, ok := h.routes[name]; ok {
			f(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(h.Close)
	return h
}

// route adds provider name on the hostile upstream, and model name on it.
func (h *hostileUpstream) route(t testing.TB, g *gateway, name, apiKey string, to *timeouts) {
	t.Helper()
	g.addProvider(t, provider{Name: name, BaseURL: h.URL + "/" + name + "/v1", APIKey: apiKey, Timeouts: to})
	g.addModel(t, name, name)
}

// rawChat posts body to the proxy's chat endpoint with key and returns the
// status and whole answer body.
func rawChat(t testing.TB, g *gateway, key, body string, timeout time.Duration) (int, []byte) {
	t.Helper()
	ctx := testCtx(t, timeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.Proxy+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/chat/completions: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return resp.StatusCode, data
}

// trickle answers 200 with headers at once, then one byte of ct-typed
// body every 100 ms until the gateway hangs up (or a minute passes).
func trickle(ct string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		for i := 0; i < 600; i++ {
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// TestAbuseStreamRequestAnsweredWithTrickledJSON: a streaming request whose
// upstream answers with a non-SSE body (an upstream ignoring "stream":
// true) that it trickles a byte at a time. Before the fix that body was
// bounded only by the idle timeout, which every byte resets: the client
// got no byte, not even headers, for as long as the upstream kept
// trickling. Now the provider's first-byte timeout bounds the whole body,
// as it does for a non-streamed request.
func TestAbuseStreamRequestAnsweredWithTrickledJSON(t *testing.T) {
	t.Parallel()
	up := newHostileUpstream(t, map[string]http.HandlerFunc{"trickle": trickle("application/json")})
	g := startGateway(t, gwOptions{})
	up.route(t, g, "trickle", "sk-upstream-"+randHex(t, 8), &timeouts{FirstByte: "2s", Idle: "1s"})
	k := g.addKey(t, "k", nil)

	for _, stream := range []bool{false, true} {
		body := `{"model":"trickle","messages":[{"role":"user","content":"hi"}],"stream":` + map[bool]string{false: "false", true: "true"}[stream] + `}`
		code, data := rawChat(t, g, k.Key, body, 30*time.Second)
		var env struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &env)
		if code != http.StatusGatewayTimeout || env.Error.Code != "upstream_timeout" {
			t.Errorf("stream=%v: got %d %s; want 504 upstream_timeout", stream, code, data)
		}
	}
}

// chunkJSON is a chat.completion.chunk carrying content.
func chunkJSON(content string) string {
	c, _ := json.Marshal(content)
	return `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":` + string(c) + `},"finish_reason":null}]}`
}

// sseScript answers a stream with the events script builds from the
// Authorization header the gateway sent, all in one write.
func sseScript(script func(auth string) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, script(r.Header.Get("Authorization")))
	}
}

// TestAbuseStreamRedactionKeepsLaterEvents: an upstream stream with a
// keepalive comment, then an error event echoing the provider key, then
// more events, all in one read. Before the fix the redaction buffer could
// alias the event reader's buffer after a redaction that matched nothing
// (the comment), so redacting the error event (whose echoed key fragments
// are shorter than "[redacted]") wrote into the bytes of the events not
// yet read: the client got garbled events after it.
func TestAbuseStreamRedactionKeepsLaterEvents(t *testing.T) {
	t.Parallel()
	apiKey := "sk-upstream-" + randHex(t, 16)
	up := newHostileUpstream(t, map[string]http.HandlerFunc{
		"echo": sseScript(func(auth string) string {
			return "data: " + chunkJSON("first") + "\n\n" +
				": keepalive\n\n" +
				`data: {"error":{"message":"bad key ` + auth + strings.Repeat(" "+apiKey[:8], 50) + `"}}` + "\n\n" +
				"data: " + chunkJSON("after the error, intact") + "\n\n" +
				"data: " + chunkJSON("and this one "+strings.Repeat("x", 64)) + "\n\n" +
				"data: [DONE]\n\n"
		}),
	})
	g := startGateway(t, gwOptions{})
	up.route(t, g, "echo", apiKey, nil)
	k := g.addKey(t, "k", nil)
	code, data := rawChat(t, g, k.Key, `{"model":"echo","stream":true,"messages":[{"role":"user","content":"hi"}]}`, 30*time.Second)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, data)
	}
	if bytes.Contains(data, []byte(apiKey)) || bytes.Contains(data, []byte(apiKey[:20])) {
		t.Errorf("the provider key reached the client:\n%s", data)
	}
	for _, want := range []string{
		"data: " + chunkJSON("first") + "\n\n",
		": keepalive\n\n",
		`data: {"error":{"message":"bad key Bearer [redacted]` + strings.Repeat(" [redacted]", 50) + `"}}` + "\n\n",
		"data: " + chunkJSON("after the error, intact") + "\n\n",
		"data: " + chunkJSON("and this one "+strings.Repeat("x", 64)) + "\n\n",
		"data: [DONE]\n\n",
	} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("answer lacks %q; got:\n%s", want, data)
		}
	}
}

// TestAbuseUpstreamEchoesKeyInAnswer: an upstream that echoes the
// Authorization header it was sent in a successful answer (a debugging
// proxy, a hostile server), streamed or not. Before the fix only error
// objects were scrubbed: the provider key reached the client verbatim. A
// fragment of the key in ordinary content (its first 8 bytes, say
// "sk-proj-") is content and is left alone.
func TestAbuseUpstreamEchoesKeyInAnswer(t *testing.T) {
	t.Parallel()
	apiKey := "sk-upstream-" + randHex(t, 16)
	prefix := apiKey[:8]
	up := newHostileUpstream(t, map[string]http.HandlerFunc{
		"json": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			a, _ := json.Marshal(r.Header.Get("Authorization"))
			content, _ := json.Marshal("your key is " + r.Header.Get("Authorization") + "; keys start with " + prefix)
			_, _ = io.WriteString(w, `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":`+
				string(content)+`},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4},"debug":{"authorization":`+string(a)+`}}`)
		},
		"sse": sseScript(func(auth string) string {
			return "data: " + chunkJSON("your key is "+auth) + "\n\n" +
				"data: " + chunkJSON("keys start with "+prefix) + "\n\n" +
				"data: [DONE]\n\n"
		}),
	})
	g := startGateway(t, gwOptions{})
	up.route(t, g, "json", apiKey, nil)
	up.route(t, g, "sse", apiKey, nil)
	k := g.addKey(t, "k", nil)
	for _, tc := range []struct{ model, stream string }{{"json", "false"}, {"sse", "true"}} {
		code, data := rawChat(t, g, k.Key, `{"model":"`+tc.model+`","stream":`+tc.stream+`,"messages":[{"role":"user","content":"hi"}]}`, 30*time.Second)
		if code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", tc.model, code, data)
		}
		if bytes.Contains(data, []byte(apiKey)) {
			t.Errorf("%s: the provider key reached the client:\n%s", tc.model, data)
		}
		if !bytes.Contains(data, []byte("your key is Bearer [redacted]")) || !bytes.Contains(data, []byte("keys start with "+prefix)) {
			t.Errorf("%s: want the whole key redacted and the fragment kept; got:\n%s", tc.model, data)
		}
		if tc.model == "json" && !json.Valid(data) {
			t.Errorf("json: answer is not valid JSON: %s", data)
		}
	}
}

// TestAbuseStreamEventsNotJSON: stream events whose data is not a JSON
// object (cut short, a bare number, garbage). Before the fix they were
// forwarded as they came and the stream recorded "ok": the client's SDK
// fails on them, and an answer cut mid-event is not complete. Now such an
// event before the first one forwarded is a 502 invalid_upstream_response
// (another deployment may be tried), and after it ends the stream as
// broken. An empty data event is a keepalive and is not forwarded.
func TestAbuseStreamEventsNotJSON(t *testing.T) {
	t.Parallel()
	up := newHostileUpstream(t, map[string]http.HandlerFunc{
		"garbage": sseScript(func(string) string {
			return "data: 123\n\n" + "data: " + chunkJSON("x") + "\n\n" + "data: [DONE]\n\n"
		}),
		"cut": sseScript(func(string) string {
			return "data: " + chunkJSON("first") + "\n\n" +
				"data:\n\n" +
				"data: " + chunkJSON("second") + "\n\n" +
				`data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"cut he` + "\n\n" +
				"data: [DONE]\n\n"
		}),
	})
	up.routes["lax"] = sseScript(func(string) string {
		return "data: " + chunkJSON("all") + "\n\n" +
			`data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" +
			"data: [END]\n\n" + "data: [DONE] \n\n"
	})
	g := startGateway(t, gwOptions{})
	up.route(t, g, "lax", "sk-upstream-"+randHex(t, 8), nil)
	up.route(t, g, "garbage", "sk-upstream-"+randHex(t, 8), nil)
	up.route(t, g, "cut", "sk-upstream-"+randHex(t, 8), nil)
	k := g.addKey(t, "k", nil)

	code, data := rawChat(t, g, k.Key, `{"model":"garbage","stream":true,"messages":[{"role":"user","content":"hi"}]}`, 30*time.Second)
	if code != http.StatusBadGateway || !bytes.Contains(data, []byte(`"code":"invalid_upstream_response"`)) {
		t.Errorf("garbage first event: got %d %s; want 502 invalid_upstream_response", code, data)
	}

	code, data = rawChat(t, g, k.Key, `{"model":"cut","stream":true,"messages":[{"role":"user","content":"hi"}]}`, 30*time.Second)
	if code != http.StatusOK {
		t.Fatalf("cut: status %d: %s", code, data)
	}
	lines := sseData(data)
	if len(lines) != 3 || lines[0] != chunkJSON("first") || lines[1] != chunkJSON("second") || !strings.Contains(lines[2], `"code":"stream_broken"`) {
		t.Errorf("cut: want the two whole chunks, then a stream_broken error and no [DONE]; got %q", lines)
	}
	// After the final chunk, junk is dropped and a padded [DONE] ends the
	// stream as complete.
	code, data = rawChat(t, g, k.Key, `{"model":"lax","stream":true,"messages":[{"role":"user","content":"hi"}]}`, 30*time.Second)
	if lines := sseData(data); code != http.StatusOK || len(lines) != 3 || lines[2] != "[DONE]" {
		t.Errorf("lax: got %d %q; want the two chunks and [DONE]", code, lines)
	}
	deadline := time.Now().Add(4 * time.Second)
	for {
		var st []string
		for _, r := range g.sqliteUsage(t) {
			st = append(st, r.Model+":"+r.Status)
		}
		if j := strings.Join(st, " "); strings.Contains(j, "cut:stream_broken") && strings.Contains(j, "garbage:error") && strings.Contains(j, "lax:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage rows: %v; want garbage:error, cut:stream_broken and lax:ok", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sseData returns the data fields of an SSE answer, one per data line.
func sseData(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "data:"); ok {
			out = append(out, strings.TrimPrefix(v, " "))
		}
	}
	return out
}

// TestAbuseOversizedAnswerNotRetried: an answer larger than the gateway
// buffers (64 MiB) is as large as the request asked for (embeddings of
// thousands of inputs and dimensions are); another deployment would answer
// the same. Before the fix it was "an incomplete response" (502
// upstream_error), retried on the next deployment (which was paid for
// again) and counted against each deployment's health, so a client could
// eject every deployment of a model by asking. Now it is one 502
// upstream_response_too_large, not retried.
func TestAbuseOversizedAnswerNotRetried(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	huge := func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		item := []byte(`{"object":"embedding","index":0,"embedding":[` + strings.Repeat("0.0123456789,", 4095) + `0.5]},`)
		_, _ = io.WriteString(w, `{"object":"list","data":[`)
		for n := 0; n < 65<<20; n += len(item) {
			if _, err := w.Write(item); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, `{"object":"embedding","index":1,"embedding":[0.5]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}`)
	}
	up := newHostileUpstream(t, map[string]http.HandlerFunc{"a": huge, "b": huge})
	g := startGateway(t, gwOptions{})
	for _, name := range []string{"a", "b"} {
		g.addProvider(t, provider{Name: name, BaseURL: up.URL + "/" + name + "/v1", APIKey: "sk-upstream-" + randHex(t, 8)})
	}
	g.adminOK(t, http.MethodPost, "/admin/models", map[string]any{"name": "emb", "deployments": []deployment{
		{Provider: "a", Model: "emb", Weight: 1}, {Provider: "b", Model: "emb", Weight: 1}}}, nil)
	k := g.addKey(t, "k", nil)

	ctx := testCtx(t, 60*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.Proxy+"/v1/embeddings", strings.NewReader(`{"model":"emb","input":["a","b"]}`))
	req.Header.Set("Authorization", "Bearer "+k.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !bytes.Contains(data, []byte(`"code":"upstream_response_too_large"`)) {
		t.Errorf("got %d %s; want 502 upstream_response_too_large", resp.StatusCode, data)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the upstream was asked %d times; want 1 (not retried)", n)
	}
}
