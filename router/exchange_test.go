package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
)

// countingAdmitter admits (or rejects) and counts Admit and Settle calls.
type countingAdmitter struct {
	reject  *llm.Error
	admits  atomic.Int32
	settles atomic.Int32
	mu      sync.Mutex
	usage   llm.Usage
	ask     Ask
	prompt  int
	max     int
}

func (a *countingAdmitter) Admit(_ context.Context, ask Ask) (Admission, *llm.Error) {
	a.admits.Add(1)
	a.mu.Lock()
	a.ask, a.prompt, a.max = ask, ask.PromptTokens(), ask.MaxTokens
	a.mu.Unlock()
	if a.reject != nil {
		return nil, a.reject
	}
	return a, nil
}

func (a *countingAdmitter) AdmitDeployment(context.Context, Ask, *llm.Deployment) (Admission, *llm.Error) {
	return noAdmission{}, nil
}

func (a *countingAdmitter) Headers(http.Header) {}

func (a *countingAdmitter) Settle(u llm.Usage, _ int64) {
	a.settles.Add(1)
	a.mu.Lock()
	a.usage = u
	a.mu.Unlock()
}

// waitRecords waits until r holds n records.
func waitRecords(t *testing.T, r *recs, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		got := len(r.list)
		r.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no usage record within 10s (want %d)", n)
}

// panicWriter panics on the first body write, as a bug in the relay would.
type panicWriter struct{ h http.Header }

func (p *panicWriter) Header() http.Header       { return p.h }
func (p *panicWriter) WriteHeader(int)           {}
func (p *panicWriter) Write([]byte) (int, error) { panic("boom") }

// TestAdmissionSettledOnceOnEveryExit: an admitted request settles its
// admission exactly once however it ends.
func TestAdmissionSettledOnceOnEveryExit(t *testing.T) {
	okJSON := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":5,"completion_tokens":2}}`)
	}
	tests := []struct {
		name     string
		upstream http.HandlerFunc
		body     string
		drive    func(t *testing.T, srv *httptest.Server, r *recs)
		status   string
		prompt   int // settled prompt tokens, -1 for any
	}{
		{name: "success", upstream: okJSON, body: `{"model":"m"}`, status: llm.StatusOK, prompt: 5},
		{name: "stream", upstream: sseUpstream([]string{`{"choices":[{"delta":{"content":"hi"}}]}`, `{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":1}}`, `[DONE]`}, false),
			body: `{"model":"m","stream":true}`, status: llm.StatusOK, prompt: 4},
		{name: "upstream error", upstream: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) },
			body: `{"model":"m"}`, status: llm.StatusError, prompt: -1},
		{name: "broken stream", upstream: sseUpstream([]string{`{"choices":[{"delta":{"content":"hi"}}]}`}, true),
			body: `{"model":"m","stream":true}`, status: llm.StatusStreamBroken, prompt: -1},
		{name: "client cancel", upstream: (&slowStream{}).ServeHTTP, body: `{"model":"m","stream":true}`, status: llm.StatusClientCancelled, prompt: -1,
			drive: func(t *testing.T, srv *httptest.Server, r *recs) {
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
				req.Header.Set("Authorization", "Bearer "+testKey)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = bufio.NewReader(resp.Body).ReadString('\n')
				cancel()
				resp.Body.Close()
			}},
		{name: "panic", upstream: okJSON, body: `{"model":"m"}`, status: llm.StatusOK, prompt: -1,
			drive: func(t *testing.T, srv *httptest.Server, r *recs) {
				req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
				req.Header.Set("Authorization", "Bearer "+testKey)
				r.handler.ServeHTTP(&panicWriter{h: http.Header{}}, req)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := httptest.NewServer(tt.upstream)
			defer up.Close()
			adm := &countingAdmitter{}
			srv, r := newTestProxyWith(t, func(o *Options) { o.Admitter = adm }, time.Second, up.URL)
			if tt.drive != nil {
				tt.drive(t, srv, r)
			} else {
				resp := post(t, srv.URL, tt.body)
				_, _ = io.ReadAll(resp.Body)
			}
			waitRecords(t, r, 1)
			if a, s := adm.admits.Load(), adm.settles.Load(); a != 1 || s != 1 {
				t.Fatalf("admitted %d times, settled %d times; want 1 and 1", a, s)
			}
			if rec := r.last(); rec.Status != tt.status {
				t.Fatalf("record status %q, want %q", rec.Status, tt.status)
			}
			adm.mu.Lock()
			defer adm.mu.Unlock()
			if tt.prompt >= 0 && adm.usage.PromptTokens != tt.prompt {
				t.Fatalf("settled usage %+v, want %d prompt tokens", adm.usage, tt.prompt)
			}
		})
	}
}

// TestAdmissionRejectedBeforeUpstream: a rejected admission answers 429 in
// OpenAI's shape, never contacts an upstream and settles nothing.
func TestAdmissionRejectedBeforeUpstream(t *testing.T) {
	var calls atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer up.Close()
	rej := llm.Errorf(llm.KindRateLimited, "token budget exhausted")
	rej.RetryAfter = 3 * time.Second
	adm := &countingAdmitter{reject: rej}
	srv, r := newTestProxyWith(t, func(o *Options) { o.Admitter = adm }, time.Second, up.URL)
	resp := post(t, srv.URL, `{"model":"m","max_tokens":77,"messages":[{"role":"user","content":"hello there"}]}`)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" || resp.Header.Get("Content-Type") != "application/json" ||
		!strings.HasPrefix(string(b), `{"error":{"message":"token budget exhausted","type":"rate_limit_error"`) {
		t.Fatalf("status %d headers %v body %s", resp.StatusCode, resp.Header, b)
	}
	waitRecords(t, r, 1)
	if calls.Load() != 0 || adm.settles.Load() != 0 {
		t.Fatalf("upstream calls %d, settles %d; want 0 and 0", calls.Load(), adm.settles.Load())
	}
	adm.mu.Lock()
	defer adm.mu.Unlock()
	if adm.ask.Model == nil || adm.ask.Model.Name != "m" || adm.ask.ID == "" || adm.ask.Principal == nil || adm.ask.Principal.KeyID != "k1" || adm.max != 77 || adm.prompt <= 3 {
		t.Fatalf("ask %+v prompt %d max %d", adm.ask, adm.prompt, adm.max)
	}
	if rec := r.last(); rec.HTTPStatus != 429 || rec.Status != llm.StatusError {
		t.Fatalf("record %+v", rec)
	}
}

// countingEstimator counts prompt estimates.
type countingEstimator struct{ n int }

func (c *countingEstimator) PromptTokensFor(string, []byte) int { c.n++; return 42 }

// TestPromptEstimatedOnce: however many phases ask, the prompt of a
// request is estimated (a full JSON decode) at most once.
func TestPromptEstimatedOnce(t *testing.T) {
	c := &countingEstimator{}
	f := &requestFacts{est: c, body: []byte(`{"model":"m"}`)}
	a := Ask{body: f}
	for range 3 {
		if a.PromptTokens() != 42 || f.promptTokens() != 42 {
			t.Fatal("wrong facts")
		}
	}
	if c.n != 1 {
		t.Fatalf("prompt estimated %d times, want 1", c.n)
	}
}

// TestPanicReleasesBalancer: a panic in the relay still gives the
// deployment's in-flight mark back (checked by newTestProxy's cleanup) and
// records the request.
func TestPanicReleasesBalancer(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
	}))
	defer up.Close()
	_, r := newTestProxy(t, time.Second, up.URL)
	req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	r.handler.ServeHTTP(&panicWriter{h: http.Header{}}, req)
	waitRecords(t, r, 1)
}

// TestUpstream404TriesNextDeployment: an upstream 404 (the deployment's
// upstream model is wrong) is that deployment's failure: counted against
// its health and retried on the next one, not blamed on the client.
func TestUpstream404TriesNextDeployment(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		fmt.Fprint(w, `{"error":{"message":"The model up-p0 does not exist","type":"invalid_request_error","code":"model_not_found"}}`)
	}))
	defer bad.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":5,"completion_tokens":2}}`)
	}))
	defer good.Close()
	var bal *balancer.Balancer
	srv, _ := newTestProxyWith(t, func(o *Options) { bal = o.Balancer }, time.Second, bad.URL, good.URL)
	resp := post(t, srv.URL, `{"model":"m"}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Sluice-Provider") != "p1" {
		t.Fatalf("status %d provider %q", resp.StatusCode, resp.Header.Get("X-Sluice-Provider"))
	}
	if st := bal.Status("dep_p0"); st.Failures != 1 {
		t.Fatalf("dep_p0 health %+v: the 404 must count as a failure", st)
	}
}

// TestInvalidJSONFromUpstreamIs502: a 200 whose body is truncated JSON is
// never passed on as 200: it is a 502 invalid_upstream_response, tried on
// the next deployment first.
func TestInvalidJSONFromUpstreamIs502(t *testing.T) {
	truncated := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"x","choices":[{"message":{"content":"cut here`)
	}
	t.Run("alone", func(t *testing.T) {
		up := httptest.NewServer(http.HandlerFunc(truncated))
		defer up.Close()
		srv, r := newTestProxy(t, time.Second, up.URL)
		resp := post(t, srv.URL, `{"model":"m"}`)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 502 || !strings.Contains(string(b), `"code":"invalid_upstream_response"`) {
			t.Fatalf("status %d body %s", resp.StatusCode, b)
		}
		waitRecords(t, r, 1)
		if rec := r.last(); rec.Status != llm.StatusError || rec.HTTPStatus != 502 || rec.UpstreamStatus != 200 {
			t.Fatalf("record %+v", rec)
		}
	})
	t.Run("retried", func(t *testing.T) {
		bad := httptest.NewServer(http.HandlerFunc(truncated))
		defer bad.Close()
		good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"choices":[{"message":{"content":"ok"}}]}`)
		}))
		defer good.Close()
		srv, _ := newTestProxy(t, time.Second, bad.URL, good.URL)
		resp := post(t, srv.URL, `{"model":"m"}`)
		if resp.StatusCode != 200 || resp.Header.Get("X-Sluice-Provider") != "p1" {
			t.Fatalf("status %d provider %q", resp.StatusCode, resp.Header.Get("X-Sluice-Provider"))
		}
	})
}

// TestNonStreamTrickleIsBounded: an upstream that sends its headers and
// then a byte every 50 ms (never idle long enough for the idle timeout) is
// cut by the provider's first-byte timeout, which bounds the whole
// non-streamed call.
func TestNonStreamTrickleIsBounded(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100000")
		for i := 0; i < 100000; i++ {
			if _, err := w.Write([]byte{' '}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	defer up.Close()
	srv, _ := newTestProxy(t, time.Second, up.URL) // first byte 2s, idle 1s
	start := time.Now()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("no answer after %v: %v", time.Since(start), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 504 || time.Since(start) > 6*time.Second || !strings.Contains(string(b), "did not complete its response within 2s") {
		t.Fatalf("status %d after %v: %s", resp.StatusCode, time.Since(start), b)
	}
}

// TestJSONSlowReaderIsDropped: a client that stops reading a non-streamed
// answer is dropped by the write deadline instead of holding the request,
// its goroutine and the buffered body forever.
func TestJSONSlowReaderIsDropped(t *testing.T) {
	big := `{"choices":[{"message":{"content":"` + strings.Repeat("x", 16<<20) + `"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, big)
	}))
	defer up.Close()
	srv, r := newTestProxyWith(t, func(o *Options) { o.WriteTimeout = 300 * time.Millisecond }, 5*time.Second, up.URL)
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	body := `{"model":"m"}`
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", testKey, len(body), body)
	// Never read from conn.
	waitRecords(t, r, 1)
	if rec := r.last(); rec.Status != llm.StatusClientCancelled {
		t.Fatalf("record status %q", rec.Status)
	}
}

// TestStreamCleanEndWithoutDone: an upstream that ends at an event
// boundary after its final chunk, without [DONE], delivered a complete
// answer: recorded ok, and the client's stream still ends with [DONE].
// Without a final chunk the same end is a broken stream.
func TestStreamCleanEndWithoutDone(t *testing.T) {
	for _, final := range []bool{true, false} {
		t.Run(fmt.Sprint("final=", final), func(t *testing.T) {
			events := []string{`{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}`}
			if final {
				events = append(events, `{"choices":[{"index":0,"delta":{},"finish_reason": "stop"}]}`)
			}
			up := httptest.NewServer(sseUpstream(events, false))
			defer up.Close()
			srv, r := newTestProxy(t, time.Second, up.URL)
			resp := post(t, srv.URL, `{"model":"m","stream":true}`)
			b, _ := io.ReadAll(resp.Body)
			waitRecords(t, r, 1)
			rec := r.last()
			if final {
				if !strings.HasSuffix(string(b), "\n\ndata: [DONE]\n\n") || strings.Contains(string(b), "stream_broken") || rec.Status != llm.StatusOK {
					t.Fatalf("record %q body %q", rec.Status, b)
				}
			} else if !strings.Contains(string(b), "stream_broken") || rec.Status != llm.StatusStreamBroken {
				t.Fatalf("record %q body %q", rec.Status, b)
			}
		})
	}
}

func TestHasFinishReason(t *testing.T) {
	tests := map[string]bool{
		`[{"delta":{},"finish_reason":"stop"}]`:                                     true,
		`[{"delta":{},"finish_reason" : "length"}]`:                                 true,
		`[{"delta":{},"finish_reason":null}]`:                                       false,
		`[{"delta":{"content":"\"finish_reason\":\"stop\""}}]`:                      false,
		`[{"delta":{"content":"x"},"finish_reason":null},{"finish_reason":"stop"}]`: true,
		`[]`: false,
	}
	for in, want := range tests {
		if got := hasFinishReason([]byte(in)); got != want {
			t.Errorf("hasFinishReason(%s) = %v, want %v", in, got, want)
		}
	}
}

// TestUpstreamStatusDecidesRetryAndHealth: the attempt phase reports the
// status the upstream actually sent, so a provider 401 (shown to clients
// as 502) marks the credential dead instead of counting as an outage and
// is retried elsewhere, while an upstream 400 is the client's: answered as
// is, not retried, not held against the deployment.
func TestUpstreamStatusDecidesRetryAndHealth(t *testing.T) {
	tests := []struct {
		upstream   int
		wantStatus int
		wantState  string
		wantCalls  int32 // calls reaching the second deployment
	}{
		{401, 200, "credential_dead", 1},
		{403, 200, "credential_dead", 1},
		{400, 400, "healthy", 0},
		{503, 200, "healthy", 1}, // one failure does not eject
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.upstream), func(t *testing.T) {
			first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.upstream)
				fmt.Fprint(w, `{"error":{"message":"no","type":"x"}}`)
			}))
			defer first.Close()
			var calls atomic.Int32
			second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"choices":[{"message":{"content":"ok"}}]}`)
			}))
			defer second.Close()
			var bal *balancer.Balancer
			srv, r := newTestProxyWith(t, func(o *Options) { bal = o.Balancer }, time.Second, first.URL, second.URL)
			resp := post(t, srv.URL, `{"model":"m"}`)
			_, _ = io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || calls.Load() != tt.wantCalls {
				t.Fatalf("status %d, second deployment called %d times", resp.StatusCode, calls.Load())
			}
			if st := bal.Status("dep_p0"); st.State != tt.wantState {
				t.Fatalf("dep_p0 %+v, want state %s", st, tt.wantState)
			}
			waitRecords(t, r, 1)
			if tt.wantStatus == 400 {
				if rec := r.last(); rec.UpstreamStatus != 400 || rec.HTTPStatus != 400 {
					t.Fatalf("record %+v", rec)
				}
			}
		})
	}
}

// Request ids are unguessable (80 random bits) yet ascend with time, so
// usage rows append at the right edge of the unique index.
func TestNewRequestIDOrderedAndUnique(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 2000; i++ {
		id := newRequestID()
		if len(id) != 36 || !strings.HasPrefix(id, "req_") || seen[id] {
			t.Fatalf("id %q (dup %t)", id, seen[id])
		}
		seen[id] = true
		if id[:16] < prev[:min(16, len(prev))] {
			t.Fatalf("time prefix went back: %s after %s", id, prev)
		}
		prev = id
	}
	a, b := newRequestID(), newRequestID()
	if a[16:] == b[16:] {
		t.Fatal("random part repeats")
	}
}
