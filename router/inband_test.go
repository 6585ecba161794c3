package router

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/providers"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
)

// proxyWithBalancer is newTestProxy that also returns its balancer.
func proxyWithBalancer(t *testing.T, idle time.Duration, upstreams ...string) (string, *recs, *balancer.Balancer) {
	var b *balancer.Balancer
	srv, r := newTestProxyWith(t, func(o *Options) { b = o.Balancer }, idle, upstreams...)
	return srv.URL, r, b
}

// counting is an upstream answering a plain chat completion, counting calls.
func counting(n *atomic.Int32) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"choices":[{"message":{"content":"fine"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
	}))
}

// A 200 whose body or first event is an error with a server-side code is
// the deployment's failure and is retried on the next deployment (it was
// passed on to the client as a 200, a success for health).
func TestInBandErrorRetried(t *testing.T) {
	for _, tc := range []struct{ name, ct, body string }{
		{"json", "application/json", `{"error":{"message":"overloaded","code":503}}`},
		{"json-no-code", "application/json", `{"error":"boom"}`},
		{"event", "text/event-stream", "event: error\ndata: {\"message\":\"overloaded\"}\n\n"},
		{"error-member", "text/event-stream", "data: {\"error\":{\"message\":\"overloaded\",\"status\":500}}\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ct)
				fmt.Fprint(w, tc.body)
			}))
			defer bad.Close()
			var n atomic.Int32
			good := counting(&n)
			defer good.Close()
			url, r, b := proxyWithBalancer(t, time.Second, bad.URL, good.URL)
			resp := post(t, url, `{"model":"m"}`)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(string(body), "fine") || n.Load() != 1 {
				t.Fatalf("status %d, %d calls to the second: %s", resp.StatusCode, n.Load(), body)
			}
			if s := b.Status("dep_p0"); s.Failures != 1 || s.Successes != 0 {
				t.Fatalf("first deployment %+v", s)
			}
			if rec := r.last(); rec.Status != llm.StatusOK || rec.Deployment != "dep_p1" {
				t.Fatalf("record %+v", rec)
			}
		})
	}
}

// vLLM sends a client-caused 400 as an error event in a 200 stream: the
// client gets a 400 in OpenAI shape with the redacted message, no other
// deployment is asked, and the deployment's health is untouched.
func TestInBandClientErrorAnswered(t *testing.T) {
	for _, tc := range []struct{ name, ct, body string }{
		{"event", "text/event-stream", `data: {"error":{"object":"error","message":"prompt too long for ` + upstreamKey + `","type":"BadRequestError","param":null,"code":400}}` + "\n\n"},
		{"json", "application/json", `{"object":"error","error":{"message":"prompt too long for ` + upstreamKey + `","type":"BadRequestError","code":400}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ct)
				fmt.Fprint(w, tc.body)
			}))
			defer bad.Close()
			var n atomic.Int32
			good := counting(&n)
			defer good.Close()
			url, r, b := proxyWithBalancer(t, time.Second, bad.URL, good.URL)
			resp := post(t, url, `{"model":"m","stream":true}`)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 400 || n.Load() != 0 || !strings.Contains(string(body), `"message":"prompt too long for [redacted]"`) ||
				!strings.Contains(string(body), `"type":"BadRequestError"`) || strings.Contains(string(body), "upstream-secret") {
				t.Fatalf("status %d, %d calls to the second: %s", resp.StatusCode, n.Load(), body)
			}
			if s := b.Status("dep_p0"); s.Failures != 0 || s.Successes != 0 || !s.Healthy {
				t.Fatalf("first deployment %+v", s)
			}
			if rec := r.last(); rec.Status != llm.StatusError || rec.HTTPStatus != 400 {
				t.Fatalf("record %+v", rec)
			}
		})
	}
}

// An in-band error whose code names a credential rejection is a 502 for
// the client (not its fault) and a credential failure of the deployment.
func TestInBandCredentialError(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"error":{"message":"bad key","code":401}}`)
	}))
	defer bad.Close()
	url, _, b := proxyWithBalancer(t, time.Second, bad.URL)
	resp := post(t, url, `{"model":"m"}`)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 502 || !strings.Contains(string(body), "upstream_auth_failed") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if s := b.Status("dep_p0"); s.State != "credential_dead" {
		t.Fatalf("deployment %+v", s)
	}
}

// An error event after the stream began is forwarded (as before) and is
// the attempt's error for the balancer (it counted as a success).
func TestMidStreamErrorEventReported(t *testing.T) {
	up := httptest.NewServer(sseUpstream([]string{
		`{"choices":[{"delta":{"content":"hi"}}]}`,
		`{"error":{"message":"engine died","code":500}}`,
		`[DONE]`,
	}, false))
	defer up.Close()
	url, r, b := proxyWithBalancer(t, time.Second, up.URL)
	resp := post(t, url, `{"model":"m","stream":true}`)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "engine died") || !strings.Contains(string(body), "hi") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if s := b.Status("dep_p0"); s.Failures != 1 || s.Successes != 0 {
		t.Fatalf("deployment %+v", s)
	}
	if rec := r.last(); rec.Status != llm.StatusError {
		t.Fatalf("record %+v", rec)
	}
}

// A plain answer whose generation outlasts the first-byte timeout (the
// whole-call deadline, 2 s in the test proxy; the idle timeout is longer)
// after its headers came is not started over on the next deployment (each
// attempt was paid for), but it is the deployment's failure.
func TestGenerationPastDeadlineNotRetried(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	var n atomic.Int32
	good := counting(&n)
	defer good.Close()
	url, _, b := proxyWithBalancer(t, 10*time.Second, slow.URL, good.URL)
	resp := post(t, url, `{"model":"m"}`)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusGatewayTimeout || n.Load() != 0 {
		t.Fatalf("status %d, %d calls to the second: %s", resp.StatusCode, n.Load(), body)
	}
	if s := b.Status("dep_p0"); s.Failures != 1 {
		t.Fatalf("deployment %+v", s)
	}
}

// An error member that says no error (null, false, "") beside a good
// answer is not one, in a plain answer and in a stream.
func TestEmptyErrorMemberIsNoError(t *testing.T) {
	for _, v := range []string{"null", "false", `""`} {
		plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"choices":[{"message":{"content":"x"}}],"error":`+v+`}`)
		}))
		streamed := httptest.NewServer(sseUpstream([]string{`{"choices":[{"delta":{"content":"x"}}],"error":` + v + `}`, `[DONE]`}, false))
		for _, tc := range []struct{ url, body string }{{plain.URL, `{"model":"m"}`}, {streamed.URL, `{"model":"m","stream":true}`}} {
			srv, r := newTestProxy(t, time.Second, tc.url)
			resp := post(t, srv.URL, tc.body)
			io.Copy(io.Discard, resp.Body)
			if rec := r.last(); resp.StatusCode != 200 || rec.Status != llm.StatusOK {
				t.Fatalf("error %s, %s: %d %+v", v, tc.body, resp.StatusCode, rec)
			}
		}
		plain.Close()
		streamed.Close()
	}
}

// A usage member sent twice is read the same way (the first) in a stream
// and in a plain answer; the stream took the last.
func TestDuplicateUsageFirstWins(t *testing.T) {
	const dup = `"usage":{"prompt_tokens":3,"completion_tokens":4},"usage":{"prompt_tokens":300,"completion_tokens":400}`
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"choices":[{"message":{"content":"x"}}],`+dup+`}`)
	}))
	defer plain.Close()
	streamed := httptest.NewServer(sseUpstream([]string{`{"choices":[],` + dup + `}`, `[DONE]`}, false))
	defer streamed.Close()
	for _, tc := range []struct{ url, body string }{{plain.URL, `{"model":"m"}`}, {streamed.URL, `{"model":"m","stream":true}`}} {
		srv, r := newTestProxy(t, time.Second, tc.url)
		resp := post(t, srv.URL, tc.body)
		io.Copy(io.Discard, resp.Body)
		if rec := r.last(); rec.PromptTokens != 3 || rec.CompletionTokens != 4 {
			t.Fatalf("%s: record %+v", tc.body, rec)
		}
	}
}

// The status an in-band error names is taken only when it is a plausible
// HTTP error status; anything else is a 502 failure of the 2xx sent.
func TestInbandErrorStatus(t *testing.T) {
	for _, tc := range []struct {
		errV           string
		status, upstrm int
		class          balancer.Class
	}{
		{`{"code":400}`, 400, 400, balancer.ClassNeutral},
		{`{"code":"400","status":429}`, 400, 400, balancer.ClassNeutral}, // a code written as a string counts, as some gateways send it
		{`{"code":"E1","status":429}`, 429, 429, balancer.ClassRateLimited},
		{`{"code":503}`, 503, 503, balancer.ClassFailure},
		{`{"code":403}`, 502, 403, balancer.ClassCredential},
		{`{"code":399}`, 502, 200, balancer.ClassFailure},
		{`{"code":600}`, 502, 200, balancer.ClassFailure},
		{`{"code":400.5}`, 502, 200, balancer.ClassFailure},
		{`{"code":-400}`, 502, 200, balancer.ClassFailure},
		{`{"code":1e400}`, 502, 200, balancer.ClassFailure},
		{`"boom"`, 502, 200, balancer.ClassFailure},
		{`[1]`, 502, 200, balancer.ClassFailure},
	} {
		e := providers.InbandError("p", []byte(tc.errV), 200, nil)
		if e.Status != tc.status || e.UpstreamStatus != tc.upstrm || balancer.Classify(e) != tc.class || e.Message == "" || e.Type == "" {
			t.Errorf("%s: %+v (%s)", tc.errV, e, balancer.Classify(e))
		}
	}
}
