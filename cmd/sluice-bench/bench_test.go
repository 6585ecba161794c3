package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the harness re-execute the test binary as its load process
// (TestQuickHarness), the way it re-executes the sluice-bench binary.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "load" && len(os.Args) > 1 && os.Args[1] == "load" {
		os.Exit(loadMain(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if os.Getenv(roleEnv) == "goproxy" && len(os.Args) > 1 && os.Args[1] == "goproxy" {
		os.Exit(goproxyMain(os.Args[2:], os.Stderr))
	}
	os.Exit(m.Run())
}

// parseAll reads every response in raw with the load generator's parser;
// sse names the dialect of streamed bodies ("" = not streamed).
func parseAll(t *testing.T, raw string, sse string) ([]result, error) {
	t.Helper()
	var d *sseDialect
	if sse != "" {
		dd, ok := sseDialectOf(sse)
		if !ok {
			t.Fatalf("unknown dialect %q", sse)
		}
		d = &dd
	}
	c := newConn(target{}, time.Second, d)
	c.br = bufio.NewReaderSize(strings.NewReader(raw), 64) // small buffer: exercise refills
	var out []result
	for {
		if _, err := c.br.Peek(1); err == io.EOF {
			return out, nil
		}
		res, keep, err := c.readResponse()
		if err != nil {
			return out, err
		}
		out = append(out, res)
		if !keep {
			return out, nil
		}
	}
}

func TestReadResponse(t *testing.T) {
	sse := "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
		"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n" +
		"data: [DONE]\n\n"
	// Anthropic's documented stream (message_start's content is empty,
	// content_block_start's text is "").
	anth := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: ping\ndata: {\"type\": \"ping\"}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	// Split SSE bodies into 7-byte chunks so the patterns straddle chunks.
	chunk := func(body string) string {
		var b strings.Builder
		for i := 0; i < len(body); i += 7 {
			part := body[i:min(i+7, len(body))]
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(part), part)
		}
		b.WriteString("0\r\n\r\n")
		return b.String()
	}
	sseHead := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

	tests := []struct {
		name      string
		raw       string
		sse       string // dialect of a streamed body; "" = not streamed
		wantErr   bool
		statuses  []int
		bodyBytes []int64
		token     bool
		done      bool
		overhead  float64
	}{
		{
			name:      "content-length keep-alive, two responses",
			raw:       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Sluice-Overhead-Ms: 0.25\r\n\r\nhelloHTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\n\r\n{}",
			statuses:  []int{200, 429},
			bodyBytes: []int64{5, 2},
			overhead:  0.25,
		},
		{
			name:      "chunked with extension and trailer",
			raw:       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
			statuses:  []int{200, 204},
			bodyBytes: []int64{13, 0},
		},
		{
			name:      "large content-length body over the small buffer",
			raw:       "HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n" + strings.Repeat("x", 300),
			statuses:  []int{200},
			bodyBytes: []int64{300},
		},
		{
			name:      "SSE split across chunks",
			raw:       sseHead + chunk(sse),
			sse:       sseOpenAI,
			statuses:  []int{200},
			bodyBytes: []int64{int64(len(sse))},
			token:     true,
			done:      true,
		},
		{
			name:      "close-delimited body",
			raw:       "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + sse,
			sse:       sseOpenAI,
			statuses:  []int{200},
			bodyBytes: []int64{int64(len(sse))},
			token:     true,
			done:      true,
		},
		{
			name:      "Anthropic SSE split across chunks",
			raw:       sseHead + chunk(anth),
			sse:       sseAnthropic,
			statuses:  []int{200},
			bodyBytes: []int64{int64(len(anth))},
			token:     true,
			done:      true,
		},
		{
			name:      "Anthropic SSE read as OpenAI: no token, no end",
			raw:       sseHead + chunk(anth),
			sse:       sseOpenAI,
			statuses:  []int{200},
			bodyBytes: []int64{int64(len(anth))},
		},
		{
			name:      "Anthropic SSE without text and message_stop",
			raw:       sseHead + chunk(anth[:strings.Index(anth, "event: content_block_delta")]),
			sse:       sseAnthropic,
			statuses:  []int{200},
			bodyBytes: []int64{int64(strings.Index(anth, "event: content_block_delta"))},
		},
		{name: "bad status line", raw: "HTTX/1.1 200 OK\r\n\r\n", wantErr: true},
		{name: "bad chunk size", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", wantErr: true},
		{name: "truncated body", raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", wantErr: true},
		{name: "header without colon", raw: "HTTP/1.1 200 OK\r\nbogus\r\n\r\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAll(t, tt.raw, tt.sse)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error; got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if len(got) != len(tt.statuses) {
				t.Fatalf("got %d responses, want %d", len(got), len(tt.statuses))
			}
			for i, r := range got {
				if r.status != tt.statuses[i] || r.bodyBytes != tt.bodyBytes[i] {
					t.Fatalf("response %d: status %d body %d, want %d and %d", i, r.status, r.bodyBytes, tt.statuses[i], tt.bodyBytes[i])
				}
			}
			if tt.sse != "" {
				if (!got[0].firstToken.IsZero()) != tt.token || got[0].sawDone != tt.done {
					t.Fatalf("token %v done %v, want %v %v", !got[0].firstToken.IsZero(), got[0].sawDone, tt.token, tt.done)
				}
			}
			if got[0].overheadMS != tt.overhead {
				t.Fatalf("overhead %v, want %v", got[0].overheadMS, tt.overhead)
			}
		})
	}
}

func TestHasToken(t *testing.T) {
	tests := []struct {
		sse  string
		in   string
		want bool
	}{
		{sseOpenAI, `"content":""`, false},
		{sseOpenAI, `"content":"`, false},
		{sseOpenAI, `"content":"","x":1,"content":"a"`, true},
		{sseOpenAI, `"content":"a"`, true},
		{sseOpenAI, `nothing`, false},
		{sseOpenAI, `"text":"a"`, false},
		{sseAnthropic, `"content":[],"text":""`, false},
		{sseAnthropic, `"delta":{"type":"text_delta","text":"Hi"}`, true},
		{sseAnthropic, `"content":"a"`, false},
	}
	for _, tt := range tests {
		d, _ := sseDialectOf(tt.sse)
		if got := hasToken([]byte(tt.in), d.token); got != tt.want {
			t.Fatalf("%s: hasToken(%q) = %v, want %v", tt.sse, tt.in, got, tt.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	// 1..100 ms in shuffled order.
	var s []time.Duration
	for i := range 100 {
		s = append(s, time.Duration((i*37)%100+1)*time.Millisecond)
	}
	d := summarize(s)
	want := Dist{Count: 100, Mean: 50.5, P50: 50, P90: 90, P99: 99, Max: 100}
	if d != want {
		t.Fatalf("summarize = %+v, want %+v", d, want)
	}
	tests := []struct {
		n    int
		p    float64
		want time.Duration
	}{
		{1, 50, 1}, {1, 99, 1}, {2, 50, 1}, {2, 51, 2}, {10, 99, 10}, {10, 90, 9}, {10, 10, 1}, {0, 50, 0},
	}
	for _, tt := range tests {
		var sorted []time.Duration
		for i := 1; i <= tt.n; i++ {
			sorted = append(sorted, time.Duration(i))
		}
		if got := percentile(sorted, tt.p); got != tt.want {
			t.Fatalf("percentile(1..%d, %v) = %v, want %v", tt.n, tt.p, got, tt.want)
		}
	}
	if d := summarize(nil); d != (Dist{}) {
		t.Fatalf("summarize(nil) = %+v", d)
	}
}

// stubServer answers like a tiny OpenAI provider: /cl with Content-Length,
// /chunked with a chunked body and /sse with a server-sent event stream.
func stubServer(t *testing.T) *httptest.Server {
	t.Helper()
	body := []byte(`{"id":"x","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"Hello"}}]}`)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cl", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer test" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Sluice-Overhead-Ms", "0.5")
		_, _ = w.Write(body)
	})
	mux.HandleFunc("POST /chunked", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body[:10])
		w.(http.Flusher).Flush()
		_, _ = w.Write(body[10:])
	})
	mux.HandleFunc("POST /sse", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		_, _ = io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n")
		f.Flush()
		time.Sleep(2 * time.Millisecond)
		for _, tok := range []string{"Hel", "lo"} {
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":%q}}]}\n\n", tok)
			f.Flush()
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	})
	mux.HandleFunc("POST /v1/messages", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get("X-Api-Key") != "test" || r.Header.Get("Anthropic-Version") != anthropicVersion || r.Header.Get("Authorization") != "" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		_, _ = io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"content\":[]}}\n\n"+
			"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
		f.Flush()
		time.Sleep(2 * time.Millisecond)
		for _, tok := range []string{"Hel", "lo"} {
			fmt.Fprintf(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%q}}\n\n", tok)
			f.Flush()
		}
		_, _ = io.WriteString(w, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"+
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestRunLoadAgainstHTTPTest(t *testing.T) {
	srv := stubServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name string
		spec LoadSpec
	}{
		{"closed content-length", LoadSpec{Mode: modeClosed, Conns: 4, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond,
			Target: newTarget(addr, "/cl", []byte(`{}`), "Authorization: Bearer test")}},
		{"closed chunked", LoadSpec{Mode: modeClosed, Conns: 4, Duration: 300 * time.Millisecond,
			Target: newTarget(addr, "/chunked", []byte(`{}`))}},
		{"open content-length", LoadSpec{Mode: modeOpen, Conns: 8, Duration: 300 * time.Millisecond, Rate: 200,
			Target: newTarget(addr, "/cl", []byte(`{}`), "Authorization: Bearer test")}},
		{"open stream", LoadSpec{Mode: modeOpen, Conns: 8, Duration: 300 * time.Millisecond, Rate: 100, Stream: true,
			Target: newTarget(addr, "/sse", []byte(`{"stream":true}`))}},
		{"open stream, Anthropic", LoadSpec{Mode: modeOpen, Conns: 8, Duration: 300 * time.Millisecond, Rate: 100, Stream: true, SSE: sseAnthropic,
			Target: newTarget(addr, "/v1/messages", []byte(`{"stream":true}`), "X-Api-Key: test", "Anthropic-Version: "+anthropicVersion)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Timeout = 5 * time.Second
			r, err := RunLoad(context.Background(), tt.spec)
			if err != nil {
				t.Fatalf("RunLoad: %v", err)
			}
			if r.Errors != 0 || r.OK == 0 {
				t.Fatalf("ok %d errors %d (%s), statuses %v", r.OK, r.Errors, r.FirstError, r.Statuses)
			}
			if r.Latency.Count != r.OK || r.Latency.P50 <= 0 || r.Latency.P50 > r.Latency.P99 || r.Latency.P99 > r.Latency.Max {
				t.Fatalf("latency %+v for %d ok", r.Latency, r.OK)
			}
			if tt.spec.Mode == modeOpen {
				want := int(tt.spec.Rate * tt.spec.Duration.Seconds())
				if r.Requests != want {
					t.Fatalf("open loop sent %d requests, want %d", r.Requests, want)
				}
			}
			if tt.spec.Stream {
				if r.TTFT == nil || r.TTFT.Count != r.OK || r.NoToken != 0 {
					t.Fatalf("ttft %+v, no token %d", r.TTFT, r.NoToken)
				}
				// The stub waits 2 ms before the first non-empty token.
				if r.TTFT.P50 < 2 || r.TTFT.P50 > r.Latency.P50 {
					t.Fatalf("ttft p50 %v, latency p50 %v", r.TTFT.P50, r.Latency.P50)
				}
			}
			if tt.spec.Target.request != nil && bytes.Contains(tt.spec.Target.request, []byte("/cl")) && r.OverheadMS != 0.5 {
				t.Fatalf("overhead header mean %v, want 0.5", r.OverheadMS)
			}
		})
	}
}

func TestRunLoadCountsErrors(t *testing.T) {
	srv := stubServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	spec := LoadSpec{Mode: modeClosed, Conns: 2, Duration: 200 * time.Millisecond, Timeout: 5 * time.Second,
		Target: newTarget(addr, "/cl", []byte(`{}`), "Authorization: Bearer wrong")}
	r, err := RunLoad(context.Background(), spec)
	if err != nil {
		t.Fatalf("RunLoad: %v", err)
	}
	if r.OK != 0 || r.Errors == 0 || r.Statuses[401] != r.Errors {
		t.Fatalf("ok %d errors %d statuses %v", r.OK, r.Errors, r.Statuses)
	}
}

func TestQuickHarness(t *testing.T) {
	if os.Getenv("SLUICE_BENCH_SMOKE") != "1" {
		t.Skip("set SLUICE_BENCH_SMOKE=1 to build and run the whole harness in --quick mode")
	}
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	var log bytes.Buffer
	// SLUICE_BENCH_ARGS adds flags, e.g. "--sluice-bin /path/to/sluice".
	args := append([]string{"--quick"}, strings.Fields(os.Getenv("SLUICE_BENCH_ARGS"))...)
	cfg, err := parseFlags(args, &log)
	if err != nil {
		t.Fatalf("parseFlags: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := runHarness(ctx, cfg, &log)
	if err != nil {
		t.Fatalf("runHarness: %v\n%s", err, log.String())
	}
	var out bytes.Buffer
	writeMarkdown(&out, res)
	t.Logf("\n%s", out.String())
	for name, p := range map[string]*Phase{"closed": res.Closed, "open": res.Open, "stream": res.Stream} {
		if p == nil || p.Direct == nil || p.Sluice == nil || p.Direct.OK == 0 || p.Sluice.OK == 0 {
			t.Fatalf("%s: no successful requests: %+v", name, p)
		}
		if p.Sluice.Errors > p.Sluice.Requests/100 {
			t.Fatalf("%s: sluice errors %d of %d: %s", name, p.Sluice.Errors, p.Sluice.Requests, p.Sluice.FirstError)
		}
	}
	if res.Stream.Sluice.TTFT == nil || res.Stream.Sluice.TTFT.Count == 0 {
		t.Fatalf("no TTFT samples through sluice")
	}
	if res.MemAfter.RSSMiB <= 0 || res.MemAfter.HWMMiB < res.MemAfter.RSSMiB {
		t.Fatalf("memory %+v", res.MemAfter)
	}
}

func TestParseFamily(t *testing.T) {
	tests := []struct {
		args    []string
		family  string
		model   string
		wantErr bool
	}{
		{nil, familyOpenAI, "gpt-4o-mini", false},
		{[]string{"--family", "openai"}, familyOpenAI, "gpt-4o-mini", false},
		{[]string{"--family", "anthropic-translated"}, familyAnthropicTranslated, defaultAnthropicModel, false},
		{[]string{"--family", "anthropic-raw"}, familyAnthropicRaw, defaultAnthropicModel, false},
		{[]string{"--family", "anthropic-raw", "--model", "claude-x"}, familyAnthropicRaw, "claude-x", false},
		{[]string{"--model", "m", "--family", "anthropic-translated"}, familyAnthropicTranslated, "m", false},
		{[]string{"--family", "anthropic"}, "", "", true},
		{[]string{"--family", ""}, "", "", true},
	}
	for _, tt := range tests {
		c, err := parseFlags(tt.args, io.Discard)
		if tt.wantErr {
			if err == nil {
				t.Fatalf("%v: no error", tt.args)
			}
			continue
		}
		if err != nil || c.Family != tt.family || c.Model != tt.model {
			t.Fatalf("%v: family %q model %q err %v, want %q %q", tt.args, c.Family, c.Model, err, tt.family, tt.model)
		}
	}
}

func TestLanesAndSeeding(t *testing.T) {
	base := func(family string) config {
		c, err := parseFlags([]string{"--family", family, "--max-tokens", "7"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	oa := `{"max_tokens":7,"messages":[{"content":"Say hello in one short sentence.","role":"user"}],"model":"%s"}`
	oaStream := `{"max_tokens":7,"messages":[{"content":"Say hello in one short sentence.","role":"user"}],"model":"%s","stream":true,"stream_options":{"include_usage":true}}`
	an := `{"max_tokens":7,"messages":[{"content":"Say hello in one short sentence.","role":"user"}],"model":"%s"}`
	anStream := `{"max_tokens":7,"messages":[{"content":"Say hello in one short sentence.","role":"user"}],"model":"%s","stream":true}`
	type side struct {
		path, authHeader, sse, plain, stream, cred string
		args                                       []string
	}
	m := "gpt-4o-mini"
	c := defaultAnthropicModel
	openaiSide := func(model string) side {
		return side{"/v1/chat/completions", "Authorization", sseOpenAI, fmt.Sprintf(oa, model), fmt.Sprintf(oaStream, model), "Bearer k", nil}
	}
	anthropicSide := side{"/v1/messages", "X-Api-Key", sseAnthropic, fmt.Sprintf(an, c), fmt.Sprintf(anStream, c), "k",
		[]string{"--path", "/v1/messages", "--auth-header", "X-Api-Key", "--header", "Anthropic-Version: 2023-06-01", "--sse", "anthropic"}}
	tests := []struct {
		family          string
		direct, through side
		provider        map[string]any
	}{
		{familyOpenAI, openaiSide(m), openaiSide(m),
			map[string]any{"name": "mock", "type": "openai-compatible", "base_url": "http://127.0.0.1:9/v1", "api_key": "mk"}},
		{familyAnthropicTranslated, anthropicSide, openaiSide(c),
			map[string]any{"name": "mock", "type": "anthropic", "base_url": "http://127.0.0.1:9", "api_key": "mk"}},
		{familyAnthropicRaw, anthropicSide, anthropicSide,
			map[string]any{"name": "mock", "type": "anthropic", "base_url": "http://127.0.0.1:9", "api_key": "mk"}},
	}
	for _, tt := range tests {
		d, th := lanes(base(tt.family))
		for _, x := range []struct {
			name string
			got  lane
			want side
		}{{"direct", d, tt.direct}, {"through", th, tt.through}} {
			l, w := x.got, x.want
			if l.path != w.path || l.authHeader != w.authHeader || l.sse != w.sse || string(l.plain) != w.plain ||
				string(l.stream) != w.stream || l.credential("k") != w.cred || fmt.Sprint(l.loadArgs()) != fmt.Sprint(w.args) {
				t.Fatalf("%s %s: lane %+v plain %s stream %s cred %q args %q, want %+v", tt.family, x.name, l, l.plain, l.stream,
					l.credential("k"), l.loadArgs(), w)
			}
			if string(l.body(true)) != w.stream || string(l.body(false)) != w.plain {
				t.Fatalf("%s %s: body() picks the wrong body", tt.family, x.name)
			}
		}
		if got := providerSpec(tt.family, "http://127.0.0.1:9", "mk"); fmt.Sprint(got) != fmt.Sprint(tt.provider) {
			t.Fatalf("%s: provider %v, want %v", tt.family, got, tt.provider)
		}
	}
}

// TestSeedPostsProvider checks what seed sends to the admin API.
func TestSeedPostsProvider(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.URL.Path+" "+string(b))
		if r.Header.Get("X-API-KEY") != "adm" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/admin/keys" {
			_, _ = io.WriteString(w, `{"key":"sk-new"}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	a := &admin{base: srv.URL, key: "adm", client: srv.Client()}
	key, err := seed(context.Background(), a, providerSpec(familyAnthropicRaw, "http://127.0.0.1:9", "mk"), "claude-x", modelSeed{}, nil)
	if err != nil || key != "sk-new" {
		t.Fatalf("seed = %q, %v", key, err)
	}
	if len(got) != 3 || got[0] != `/admin/providers {"api_key":"mk","base_url":"http://127.0.0.1:9","name":"mock","type":"anthropic"}` ||
		!strings.HasPrefix(got[1], `/admin/models {"deployments":[{"input_price_per_mtok":0.15,"model":"claude-x",`) {
		t.Fatalf("admin requests: %q", got)
	}
}

// TestNewTargetBytes pins the request bytes: the OpenAI lane's are what
// they were before --family existed.
func TestNewTargetBytes(t *testing.T) {
	got := string(newTarget("127.0.0.1:1", "/v1/chat/completions", []byte(`{}`), "Authorization: Bearer k").request)
	want := "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:1\r\nUser-Agent: sluice-bench\r\nAuthorization: Bearer k\r\n" +
		"Content-Type: application/json\r\nAccept: */*\r\nContent-Length: 2\r\n\r\n{}"
	if got != want {
		t.Fatalf("request\n%q\nwant\n%q", got, want)
	}
	got = string(newTarget("127.0.0.1:1", "/v1/messages", []byte(`{}`), "", "Anthropic-Version: 2023-06-01").request)
	want = "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:1\r\nUser-Agent: sluice-bench\r\nAnthropic-Version: 2023-06-01\r\n" +
		"Content-Type: application/json\r\nAccept: */*\r\nContent-Length: 2\r\n\r\n{}"
	if got != want {
		t.Fatalf("request\n%q\nwant\n%q", got, want)
	}
}

func TestHeaderList(t *testing.T) {
	var h headerList
	for _, ok := range []string{"Anthropic-Version: 2023-06-01", "X-A:b"} {
		if err := h.Set(ok); err != nil {
			t.Fatalf("Set(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"no colon", ": v", "X-A: b\r\nX-B: c", "Bad Name: v"} {
		if err := h.Set(bad); err == nil {
			t.Fatalf("Set(%q): no error", bad)
		}
	}
	if len(h) != 2 {
		t.Fatalf("headers %q", h)
	}
}

// TestLoadMainAnthropicLane runs the load subcommand with the Anthropic
// lane's flags against the stub, which checks x-api-key and
// anthropic-version and streams Anthropic events.
func TestLoadMainAnthropicLane(t *testing.T) {
	srv := stubServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	c, err := parseFlags([]string{"--family", familyAnthropicRaw}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, l := lanes(c)
	t.Setenv(authEnv, l.credential("test"))
	args := append([]string{"--addr", addr, "--body", string(l.stream), "--mode", modeOpen, "--conns", "4",
		"--duration", "200ms", "--rate", "50", "--stream"}, l.loadArgs()...)
	var out, errb bytes.Buffer
	if code := loadMain(args, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var r LoadResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.OK != 10 || r.Errors != 0 || r.NoToken != 0 || r.TTFT == nil || r.TTFT.P50 < 2 {
		t.Fatalf("result %+v (first error %s)", r, r.FirstError)
	}
	if code := loadMain(append(args, "--sse", "gemini"), nil, io.Discard, io.Discard); code != 2 {
		t.Fatalf("unknown --sse: exit %d, want 2", code)
	}
}
