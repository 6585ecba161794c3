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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/state"
)

// fakeUp is an OpenAI-compatible upstream that answers (streamed or not)
// or fails with status and body, counting its calls.
type fakeUp struct {
	name   string
	status int    // 0 answers
	body   string // the error body when status is set
	onCall func() // runs first on every call, when set
	calls  atomic.Int32
	srv    *httptest.Server
}

func (f *fakeUp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if f.onCall != nil {
		f.onCall()
	}
	b, _ := io.ReadAll(r.Body)
	if f.status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		io.WriteString(w, f.body)
		return
	}
	if strings.Contains(string(b), `"stream":true`) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"from %s\"}}]}\n\n", f.name)
		fmt.Fprint(w, "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"from %s"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100}}`, f.name)
}

// up starts a fake upstream; status 0 answers.
func up(t testing.TB, name string, status int, body string) *fakeUp {
	f := &fakeUp{name: name, status: status, body: body}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func fails(t testing.TB, name string) *fakeUp {
	return up(t, name, 500, `{"error":{"message":"boom","type":"server_error"}}`)
}

// tmodel is a model of a routing test: its deployments, tried in order
// (priority strategy), are the upstreams, provider "<model>-<i>",
// deployment "dep_<model>_<i>", upstream model "up-<model>".
type tmodel struct {
	name    string
	routing llm.Routing
	ups     []*fakeUp
	price   float64 // input and output USD per million tokens
}

// routingProxy serves models to the test key, which may use keyModels
// (nil: all).
type routingProxy struct {
	url  string
	recs *recs
	reg  *prometheus.Registry
	h    *Handler
	b    *balancer.Balancer
}

func newRoutingProxy(t testing.TB, tweak func(*Options), keyModels []string, models ...tmodel) *routingProxy {
	t.Helper()
	snap := llm.EmptySnapshot()
	for _, tm := range models {
		m := &llm.Model{Name: tm.name, Strategy: llm.StrategyPriority, Routing: tm.routing}
		for i, u := range tm.ups {
			name := fmt.Sprintf("%s-%d", tm.name, i)
			snap.Providers[name] = &llm.Provider{Name: name, Type: llm.ProviderOpenAICompatible, BaseURL: u.srv.URL, APIKey: "sk-upstream-secret-123456",
				Timeouts: llm.Timeouts{Idle: time.Second, FirstByte: 2 * time.Second}}
			m.Deployments = append(m.Deployments, llm.Deployment{ID: fmt.Sprintf("dep_%s_%d", tm.name, i), Provider: name, Model: "up-" + tm.name,
				Priority: i, Prices: llm.Prices{InputPerMTok: tm.price, OutputPerMTok: tm.price}})
		}
		snap.Models[tm.name] = m
	}
	snap.Keys[llm.HashKey(testKey)] = &llm.Key{ID: "k1", Prefix: "sk-test", Models: keyModels}
	b := balancer.New(balancer.Options{Rand: func(int) int { return 0 }})
	st, retire, errs := state.Build(nil, snap, state.Options{Balancer: b})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	retire()
	p := &routingProxy{recs: &recs{}, reg: prometheus.NewRegistry(), b: b}
	o := Options{State: func() *state.State { return st }, Balancer: b, Usage: p.recs, Estimator: testEstimator,
		MaxBodyBytes: 1 << 16, Metrics: NewMetrics(p.reg)}
	if tweak != nil {
		tweak(&o)
	}
	p.h = New(o)
	srv := httptest.NewServer(p.h)
	t.Cleanup(func() {
		for _, m := range snap.Models {
			for _, d := range m.Deployments {
				if n := b.Status(d.ID).InFlight; n != 0 {
					t.Errorf("deployment %s: %d attempts still in flight after every request ended", d.ID, n)
				}
			}
		}
		if n := testutil.ToFloat64(p.h.opts.Metrics.inflight); n != 0 {
			t.Errorf("%v requests in flight after every request ended", n)
		}
	})
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// ask posts a chat request for model and returns the answer and its body.
func (p *routingProxy) ask(t *testing.T, model string, stream bool) (*http.Response, string) {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"hello"}]}`, model, stream)
	resp := post(t, p.url, body)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func calls(ups ...*fakeUp) []int32 {
	out := make([]int32, len(ups))
	for i, u := range ups {
		out[i] = u.calls.Load()
	}
	return out
}

func wantCalls(t *testing.T, ups []*fakeUp, want ...int32) {
	t.Helper()
	if got := calls(ups...); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("upstream calls %v, want %v", got, want)
	}
}

func wantHeaders(t *testing.T, resp *http.Response, dep, attempts, model string) {
	t.Helper()
	h := resp.Header
	if h.Get("X-Sluice-Deployment") != dep || h.Get("X-Sluice-Attempts") != attempts || h.Get("X-Sluice-Model") != model {
		t.Fatalf("headers deployment %q attempts %q model %q, want %q %q %q", h.Get("X-Sluice-Deployment"), h.Get("X-Sluice-Attempts"),
			h.Get("X-Sluice-Model"), dep, attempts, model)
	}
}

// TestFallbackOrder: when every deployment of the model fails, its
// fallbacks are tried in order, a missing one skipped; the answer names
// the deployment, the attempts and the model that answered, and the
// record carries them with the answering deployment's prices.
func TestFallbackOrder(t *testing.T) {
	a0, a1, b0, c0, d0 := fails(t, "a0"), fails(t, "a1"), fails(t, "b0"), up(t, "c0", 0, ""), up(t, "d0", 0, "")
	all := []*fakeUp{a0, a1, b0, c0, d0}
	p := newRoutingProxy(t, func(o *Options) { o.MaxAttempts = 10 }, nil,
		tmodel{name: "a", ups: []*fakeUp{a0, a1}, price: 1, routing: llm.Routing{Fallbacks: []string{"gone", "b", "c", "d"}}},
		tmodel{name: "b", ups: []*fakeUp{b0}, price: 2},
		tmodel{name: "c", ups: []*fakeUp{c0}, price: 3},
		tmodel{name: "d", ups: []*fakeUp{d0}, price: 4})
	resp, body := p.ask(t, "a", false)
	if resp.StatusCode != 200 || !strings.Contains(body, "from c0") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	wantCalls(t, all, 1, 1, 1, 1, 0)
	wantHeaders(t, resp, "dep_c_0", "4", "c")
	waitRecords(t, p.recs, 1)
	r := p.recs.last()
	if r.Model != "a" || r.ServedModel != "c" || r.Deployment != "dep_c_0" || r.Provider != "c-0" || r.UpstreamModel != "up-c" || r.Attempts != 4 {
		t.Fatalf("record %+v", r)
	}
	if want := (llm.Prices{InputPerMTok: 3, OutputPerMTok: 3}).Cost(r.Usage); r.CostMicros != want || want == 0 {
		t.Fatalf("cost %d, want %d at the fallback's prices", r.CostMicros, want)
	}
	m := p.h.opts.Metrics
	if testutil.ToFloat64(m.fallbacks.WithLabelValues("a", "b")) != 1 || testutil.ToFloat64(m.fallbacks.WithLabelValues("a", "c")) != 1 ||
		testutil.ToFloat64(m.retries.WithLabelValues("a")) != 3 {
		t.Fatal("fallback or retry counters not counted")
	}

	// The model's own deployments answering: no X-Sluice-Model.
	q := newRoutingProxy(t, nil, nil, tmodel{name: "c", ups: []*fakeUp{c0}}, tmodel{name: "d", ups: []*fakeUp{d0}, routing: llm.Routing{Fallbacks: []string{"c"}}})
	resp, _ = q.ask(t, "d", false)
	wantHeaders(t, resp, "dep_d_0", "1", "")
	waitRecords(t, q.recs, 1)
	if r := q.recs.last(); r.ServedModel != "" || r.Attempts != 1 {
		t.Fatalf("record %+v", r)
	}
}

// TestFallbackSkipsDisallowedAndIsNotFollowed: a fallback the caller may
// not use is skipped, a fallback's own fallbacks are not followed, and
// when all fail the error names the last deployment and the attempts.
func TestFallbackSkipsDisallowedAndIsNotFollowed(t *testing.T) {
	a0, s0, b0, c0 := fails(t, "a0"), up(t, "s0", 0, ""), fails(t, "b0"), up(t, "c0", 0, "")
	p := newRoutingProxy(t, func(o *Options) { o.MaxAttempts = 10 }, []string{"a", "b", "c"},
		tmodel{name: "a", ups: []*fakeUp{a0}, routing: llm.Routing{Fallbacks: []string{"secret", "b"}}},
		tmodel{name: "secret", ups: []*fakeUp{s0}},
		tmodel{name: "b", ups: []*fakeUp{b0}, routing: llm.Routing{Fallbacks: []string{"c"}}},
		tmodel{name: "c", ups: []*fakeUp{c0}})
	resp, body := p.ask(t, "a", false)
	if resp.StatusCode != 500 || !strings.Contains(body, "boom") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	wantCalls(t, []*fakeUp{a0, s0, b0, c0}, 1, 0, 1, 0)
	wantHeaders(t, resp, "dep_b_0", "2", "b")
	waitRecords(t, p.recs, 1)
	if r := p.recs.last(); r.Status != llm.StatusError || r.Attempts != 2 || r.Deployment != "dep_b_0" || r.ServedModel != "b" {
		t.Fatalf("record %+v", r)
	}
}

// TestContextLengthGoesToWindowFallbacks: a context-length error is not
// retried on the model's other deployments nor its plain fallbacks; the
// context-window fallbacks are tried in order (one saying the same moves
// on). Without any, the client gets the 400 with the normalised code.
func TestContextLengthGoesToWindowFallbacks(t *testing.T) {
	// vLLM's wording, with no code.
	const tooLong = `{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 9000 tokens.","type":"BadRequestError","param":null,"code":400}`
	// Anthropic's.
	const tooLong2 = `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208183 tokens > 200000 maximum"}}`
	a0, a1, b0, w0, x0 := up(t, "a0", 400, tooLong), up(t, "a1", 0, ""), up(t, "b0", 0, ""), up(t, "w0", 400, tooLong2), up(t, "x0", 0, "")
	all := []*fakeUp{a0, a1, b0, w0, x0}
	p := newRoutingProxy(t, func(o *Options) { o.MaxAttempts = 10 }, nil,
		tmodel{name: "a", ups: []*fakeUp{a0, a1}, routing: llm.Routing{Fallbacks: []string{"b"}, ContextWindowFallbacks: []string{"w", "x"}}},
		tmodel{name: "b", ups: []*fakeUp{b0}},
		tmodel{name: "w", ups: []*fakeUp{w0}},
		tmodel{name: "x", ups: []*fakeUp{x0}},
		tmodel{name: "n", ups: []*fakeUp{a0, a1}, routing: llm.Routing{Fallbacks: []string{"b"}}})
	resp, body := p.ask(t, "a", false)
	if resp.StatusCode != 200 || !strings.Contains(body, "from x0") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	wantCalls(t, all, 1, 0, 0, 1, 1)
	wantHeaders(t, resp, "dep_x_0", "3", "x")

	// No context-window fallbacks: the client's 400, code normalised.
	resp, body = p.ask(t, "n", false)
	if resp.StatusCode != 400 || !strings.Contains(body, `"code":"context_length_exceeded"`) {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	wantCalls(t, all, 2, 0, 0, 1, 1)
	wantHeaders(t, resp, "dep_n_0", "1", "")
}

// TestClientErrorsNotRetried: the client's own errors never reach an
// upstream (401 bad key, 403 model not allowed, 404 unknown model), and
// an upstream's 4xx blaming the request is answered, not retried on
// another deployment or a fallback.
func TestClientErrorsNotRetried(t *testing.T) {
	for _, status := range []int{400, 413, 422} {
		a0, a1, b0 := up(t, "a0", status, `{"error":{"message":"bad request","type":"invalid_request_error"}}`), up(t, "a1", 0, ""), up(t, "b0", 0, "")
		p := newRoutingProxy(t, nil, []string{"a", "b"},
			tmodel{name: "a", ups: []*fakeUp{a0, a1}, routing: llm.Routing{Fallbacks: []string{"b"}}},
			tmodel{name: "b", ups: []*fakeUp{b0}},
			tmodel{name: "z", ups: []*fakeUp{b0}})
		resp, body := p.ask(t, "a", false)
		if resp.StatusCode != status {
			t.Fatalf("upstream %d: client got %d: %s", status, resp.StatusCode, body)
		}
		wantCalls(t, []*fakeUp{a0, a1, b0}, 1, 0, 0)
		wantHeaders(t, resp, "dep_a_0", "1", "")
		for _, c := range []struct {
			key, model string
			want       int
		}{{"sk-wrong", "a", 401}, {testKey, "z", 403}, {testKey, "nope", 404}} {
			req, _ := http.NewRequest("POST", p.url+"/v1/chat/completions", strings.NewReader(`{"model":"`+c.model+`","messages":[{"role":"user","content":"hi"}]}`))
			req.Header.Set("Authorization", "Bearer "+c.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want || resp.Header.Get("X-Sluice-Attempts") != "" {
				t.Fatalf("%s: status %d attempts %q", c.model, resp.StatusCode, resp.Header.Get("X-Sluice-Attempts"))
			}
		}
		wantCalls(t, []*fakeUp{a0, a1, b0}, 1, 0, 0)
	}
}

// TestAttemptsBound: the model's retry.max_attempts (else the gateway's
// MaxAttempts) bounds the attempts across deployments and fallbacks.
func TestAttemptsBound(t *testing.T) {
	a0, a1, a2, b0 := fails(t, "a0"), fails(t, "a1"), fails(t, "a2"), fails(t, "b0")
	ups := []*fakeUp{a0, a1, a2, b0}
	p := newRoutingProxy(t, nil, nil,
		tmodel{name: "a", ups: []*fakeUp{a0, a1, a2}, routing: llm.Routing{Fallbacks: []string{"b"}, Retry: &llm.RetryPolicy{MaxAttempts: 2}}},
		tmodel{name: "d", ups: []*fakeUp{a0, a1, a2}, routing: llm.Routing{Fallbacks: []string{"b"}}},
		tmodel{name: "one", ups: []*fakeUp{a0, a1, a2}, routing: llm.Routing{Fallbacks: []string{"b"}, Retry: &llm.RetryPolicy{MaxAttempts: 1}}},
		tmodel{name: "b", ups: []*fakeUp{b0}})
	resp, _ := p.ask(t, "a", false)
	wantCalls(t, ups, 1, 1, 0, 0)
	wantHeaders(t, resp, "dep_a_1", "2", "")
	resp, _ = p.ask(t, "d", false) // the gateway's default, 3
	wantCalls(t, ups, 2, 2, 1, 0)
	wantHeaders(t, resp, "dep_d_2", "3", "")
	resp, _ = p.ask(t, "one", false)
	wantCalls(t, ups, 3, 2, 1, 0)
	wantHeaders(t, resp, "dep_one_0", "1", "")
}

// fakeClock is a settable clock for the router's Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestRetryTimeoutBound: no attempt starts once retry.timeout_ms has
// passed since the request arrived.
func TestRetryTimeoutBound(t *testing.T) {
	clk := newFakeClock()
	ups := []*fakeUp{fails(t, "a0"), fails(t, "a1"), fails(t, "a2"), fails(t, "b0")}
	for _, u := range ups {
		u.onCall = func() { clk.advance(time.Second) } // every attempt takes a second
	}
	p := newRoutingProxy(t, func(o *Options) { o.Now = clk.now; o.MaxAttempts = 10 }, nil,
		tmodel{name: "a", ups: ups[:3], routing: llm.Routing{Fallbacks: []string{"b"}, Retry: &llm.RetryPolicy{TimeoutMS: 1500}}},
		tmodel{name: "b", ups: ups[3:]})
	resp, _ := p.ask(t, "a", false)
	// Attempts start at 0 s and 1 s; at 2 s the 1.5 s are over.
	wantCalls(t, ups, 1, 1, 0, 0)
	wantHeaders(t, resp, "dep_a_1", "2", "")
}

// TestStreamHeadersAndFallback: a stream not yet started moves to the
// next deployment and then a fallback; the headers come with the stream.
func TestStreamHeadersAndFallback(t *testing.T) {
	a0, a1, b0 := fails(t, "a0"), up(t, "a1", 0, ""), up(t, "b0", 0, "")
	p := newRoutingProxy(t, nil, nil,
		tmodel{name: "a", ups: []*fakeUp{a0, a1}},
		tmodel{name: "f", ups: []*fakeUp{a0}, routing: llm.Routing{Fallbacks: []string{"b"}}},
		tmodel{name: "b", ups: []*fakeUp{b0}})
	resp, body := p.ask(t, "a", true)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || !strings.Contains(body, "from a1") {
		t.Fatalf("status %d %v: %s", resp.StatusCode, resp.Header, body)
	}
	wantHeaders(t, resp, "dep_a_1", "2", "")
	resp, body = p.ask(t, "f", true)
	if resp.StatusCode != 200 || !strings.Contains(body, "from b0") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	wantHeaders(t, resp, "dep_b_0", "2", "b")
	waitRecords(t, p.recs, 2)
	if r := p.recs.last(); !r.Stream || r.ServedModel != "b" || r.Attempts != 2 || r.Deployment != "dep_b_0" {
		t.Fatalf("record %+v", r)
	}
}

// TestRetryBudgetFullOutage simulates a full outage deterministically:
// every deployment fails, clients send N requests a second for T seconds
// (a fake clock), each could make 3 attempts. The retry budget keeps the
// upstream attempts within (1+ratio)·N·T plus the floor's share, where
// without it they would be 3·N·T.
func TestRetryBudgetFullOutage(t *testing.T) {
	clk := newFakeClock()
	ups := []*fakeUp{fails(t, "a0"), fails(t, "a1"), fails(t, "a2")}
	const floor = 1.0
	p := newRoutingProxy(t, func(o *Options) { o.Now = clk.now; o.RetryFloor = floor }, nil, tmodel{name: "a", ups: ups})
	const rps, secs = 50, 10
	for range rps * secs {
		resp, _ := p.ask(t, "a", false)
		if resp.StatusCode != 500 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		clk.advance(time.Second / rps)
	}
	var attempts int32
	for _, c := range calls(ups...) {
		attempts += c
	}
	reqs := float64(rps * secs)
	// The balance starts at floor × 10 s and gains floor a second.
	bound := (1+DefaultRetryRatio)*reqs + floor*10 + floor*secs
	if float64(attempts) > bound {
		t.Fatalf("%d upstream attempts for %v requests, want at most %v", attempts, reqs, bound)
	}
	if float64(attempts) < (1+DefaultRetryRatio*0.8)*reqs {
		t.Fatalf("%d upstream attempts for %v requests: the budget let too few retries through", attempts, reqs)
	}
	if n := testutil.ToFloat64(p.h.opts.Metrics.budgetExhausted.WithLabelValues("a")); n == 0 {
		t.Fatal("sluice_retry_budget_exhausted_total not counted")
	}
	t.Logf("%d upstream attempts for %v requests (%.2f×; without a budget 3×)", attempts, reqs, float64(attempts)/reqs)
}

// TestFallbackWhenNoHeadroom: a model whose every deployment is out of
// headroom (its own limits; no upstream contacted) falls back, and the
// fallback's deployment is admitted on its own limits too; the request
// was admitted once, against the requested model.
func TestFallbackWhenNoHeadroom(t *testing.T) {
	a0, b0 := up(t, "a0", 0, ""), up(t, "b0", 0, "")
	adm := &headroomAdmitter{full: map[string]bool{"dep_a_0": true}}
	p := newRoutingProxy(t, func(o *Options) {
		o.Admitter = adm
		for _, m := range o.State().Snapshot.Models {
			m.Deployments[0].Limits = llm.Limits{RPM: 1}
		}
	}, nil,
		tmodel{name: "a", ups: []*fakeUp{a0}, routing: llm.Routing{Fallbacks: []string{"b"}}},
		tmodel{name: "b", ups: []*fakeUp{b0}})
	resp, body := p.ask(t, "a", false)
	if resp.StatusCode != 200 || !strings.Contains(body, "from b0") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	wantCalls(t, []*fakeUp{a0, b0}, 0, 1)
	wantHeaders(t, resp, "dep_b_0", "1", "b")
	if adm.admitted.Load() != 1 || adm.tried.Load() != 2 || adm.settled.Load() != 2 {
		t.Fatalf("admitted %d, deployment admissions %d, settled %d", adm.admitted.Load(), adm.tried.Load(), adm.settled.Load())
	}
}
