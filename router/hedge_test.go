package router

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/state"
)

// gate is a fake upstream whose answer the test controls: it reports its
// first request's arrival, holds it until released (or until the gateway
// cancels it, which it reports), then answers.
type gate struct {
	calls   atomic.Int32
	arrived chan struct{} // closed at the first request
	// hold, when set, returns what the n-th request (from 1) waits for
	// before answering; nil: answer at once.
	hold     func(n int32) <-chan struct{}
	canceled chan struct{} // closed when a held request's context ended
	answered chan struct{} // closed once the first answer was written
	// headersFirst sends the status and headers before holding: the
	// answer has not started (no body byte) until released.
	headersFirst bool
	// keepalive sends an SSE comment before holding.
	keepalive bool
	answer    func(w http.ResponseWriter)
	once      [3]sync.Once
}

func newGate(answer func(w http.ResponseWriter)) *gate {
	return &gate{arrived: make(chan struct{}), canceled: make(chan struct{}), answered: make(chan struct{}), answer: answer}
}

// held makes g hold its answers until the gateway cancels them.
func (g *gate) held() *gate { return g.until(nil) }

// until makes g hold its answers until ch is closed.
func (g *gate) until(ch <-chan struct{}) *gate {
	g.hold = func(int32) <-chan struct{} { return ch }
	return g
}

// delayed makes g hold its answers for d (long past a hedge delay of 1ms,
// giving a hedge the chance to be sent).
func (g *gate) delayed(d time.Duration) *gate {
	g.hold = func(int32) <-chan struct{} { return after(d) }
	return g
}

// after returns a channel closed after d.
func after(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	time.AfterFunc(d, func() { close(ch) })
	return ch
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := g.calls.Add(1)
	_, _ = io.Copy(io.Discard, r.Body)
	g.once[0].Do(func() { close(g.arrived) })
	if g.headersFirst || g.keepalive {
		w.Header().Set("Content-Type", "text/event-stream")
		if !g.keepalive {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(200)
		if g.keepalive {
			fmt.Fprint(w, ": keepalive\n\n")
		}
		w.(http.Flusher).Flush()
	}
	if g.hold != nil {
		hold := g.hold(n)
		select {
		case <-hold:
		case <-r.Context().Done():
		}
		if r.Context().Err() != nil {
			g.once[1].Do(func() { close(g.canceled) })
			return
		}
	}
	g.answer(w)
	g.once[2].Do(func() { close(g.answered) })
}

func jsonAnswer(content string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"choices":[{"message":{"role":"assistant","content":%q}}],"usage":{"prompt_tokens":5,"completion_tokens":2}}`, content)
	}
}

func sseAnswer(content string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":%q}}]}\n\n", content)
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	}
}

func statusAnswer(code int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprint(w, `{"error":{"message":"upstream trouble","type":"server_error"}}`)
	}
}

// depAdmitter admits every request and every attempt, and remembers each
// attempt's admission to check it is settled exactly once.
type depAdmitter struct {
	mu   sync.Mutex
	list []*depAdmission
	// panicOn makes the admission of this deployment panic, as a bug would,
	// once panicWait (when set) is closed.
	panicOn   string
	panicWait <-chan struct{}
}

type depAdmission struct {
	dep     string
	settles atomic.Int32
}

func (a *depAdmission) Settle(llm.Usage, int64) { a.settles.Add(1) }
func (a *depAdmission) Headers(http.Header)     {}

func (a *depAdmitter) Admit(context.Context, Ask) (Admission, *llm.Error) {
	return &depAdmission{dep: "request"}, nil
}

func (a *depAdmitter) AdmitDeployment(_ context.Context, _ Ask, d *llm.Deployment) (Admission, *llm.Error) {
	a.mu.Lock()
	bug, wait := d.ID == a.panicOn, a.panicWait
	a.mu.Unlock()
	if bug {
		if wait != nil {
			<-wait
		}
		panic("admission bug")
	}
	adm := &depAdmission{dep: d.ID}
	a.mu.Lock()
	a.list = append(a.list, adm)
	a.mu.Unlock()
	return adm, nil
}

// settledOnce waits until every attempt's admission was settled, and
// fails if one was settled more than once.
func (a *depAdmitter) settledOnce(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.mu.Lock()
		pending := 0
		for _, adm := range a.list {
			switch n := adm.settles.Load(); {
			case n > 1:
				t.Errorf("admission on %s settled %d times", adm.dep, n)
			case n == 0:
				pending++
			}
		}
		a.mu.Unlock()
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d attempt admissions never settled", pending)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type hedgeEnv struct {
	srv  *httptest.Server
	recs *recs
	bal  *balancer.Balancer
	met  *Metrics
	adm  *depAdmitter
}

// newHedgeProxy returns a proxy whose model "m" has hedging hp and is
// served by ups in order (the first preferred). Its cleanup checks that
// every attempt ended in the balancer and had its admission settled once.
func newHedgeProxy(t *testing.T, hp *llm.HedgePolicy, ups ...http.Handler) *hedgeEnv {
	t.Helper()
	return newHedgeProxyWith(t, hp, nil, ups...)
}

// newHedgeProxyWith is newHedgeProxy with a hook to change the options.
func newHedgeProxyWith(t *testing.T, hp *llm.HedgePolicy, tweak func(*Options), ups ...http.Handler) *hedgeEnv {
	t.Helper()
	snap := llm.EmptySnapshot()
	m := &llm.Model{Name: "m", Strategy: llm.StrategyPriority, Routing: llm.Routing{Hedge: hp}}
	for i, h := range ups {
		up := httptest.NewServer(h)
		t.Cleanup(up.Close)
		name := fmt.Sprintf("p%d", i)
		snap.Providers[name] = &llm.Provider{Name: name, Type: llm.ProviderOpenAICompatible, BaseURL: up.URL, APIKey: "sk-upstream-secret-123456",
			Timeouts: llm.Timeouts{Idle: 10 * time.Second, FirstByte: 30 * time.Second}}
		m.Deployments = append(m.Deployments, llm.Deployment{ID: "dep_" + name, Provider: name, Model: "up-" + name, Priority: i,
			Limits: llm.Limits{MaxParallel: 100}, Prices: llm.Prices{InputPerMTok: 1, OutputPerMTok: 2}})
	}
	snap.Models["m"] = m
	snap.Keys[llm.HashKey(testKey)] = &llm.Key{ID: "k1", Prefix: "sk-test"}
	b := balancer.New(balancer.Options{Rand: func(int) int { return 0 }})
	st, retire, errs := state.Build(nil, snap, state.Options{Balancer: b})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	retire()
	env := &hedgeEnv{recs: &recs{}, bal: b, met: NewMetrics(nil), adm: &depAdmitter{}}
	o := Options{State: func() *state.State { return st }, Balancer: b, Usage: env.recs, Estimator: testEstimator,
		MaxBodyBytes: 1 << 16, Metrics: env.met, Admitter: env.adm}
	if tweak != nil {
		tweak(&o)
	}
	h := New(o)
	env.recs.handler = h
	env.srv = httptest.NewServer(h)
	t.Cleanup(func() {
		env.adm.settledOnce(t)
		for _, d := range m.Deployments {
			waitIdle(t, b, d.ID)
		}
	})
	t.Cleanup(env.srv.Close)
	return env
}

// waitIdle waits until deployment id has no attempt in flight: an
// abandoned attempt ends in its own goroutine, after the answer.
func waitIdle(t *testing.T, b *balancer.Balancer, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.Status(id).InFlight != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("deployment %s: attempts still in flight", id)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (env *hedgeEnv) hedges(outcome string) float64 {
	return testutil.ToFloat64(env.met.hedges.WithLabelValues("m", outcome))
}

// waitClosed waits for ch, failing after 10s.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var hedgeAfter1ms = &llm.HedgePolicy{Enabled: true, DelayMS: 1}

// TestHedgeWinsWhenFirstIsSlow: the first deployment sends its headers
// but no byte of its answer; after the delay the hedge goes to the second,
// which answers and is relayed; the first is cancelled at once.
func TestHedgeWinsWhenFirstIsSlow(t *testing.T) {
	slow := newGate(jsonAnswer("slow")).held()
	slow.headersFirst = true
	fast := newGate(jsonAnswer("fast")).until(slow.arrived)
	env := newHedgeProxy(t, hedgeAfter1ms, slow, fast)
	resp := post(t, env.srv.URL, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	body := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, "fast") {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Sluice-Hedged") != "true" || resp.Header.Get("X-Sluice-Deployment") != "dep_p1" || resp.Header.Get("X-Sluice-Attempts") != "2" {
		t.Fatalf("headers %v", resp.Header)
	}
	waitClosed(t, slow.canceled, "the slow attempt's cancellation")
	waitRecords(t, env.recs, 1)
	rec := env.recs.last()
	if !rec.Hedged || rec.Attempts != 2 || rec.Deployment != "dep_p1" || rec.Usage.CompletionTokens != 2 {
		t.Fatalf("record %+v", rec)
	}
	if env.hedges(hedgeWon) != 1 || env.hedges(hedgeLost) != 0 {
		t.Fatalf("hedges won %v lost %v", env.hedges(hedgeWon), env.hedges(hedgeLost))
	}
	waitIdle(t, env.bal, "dep_p0")
	if st := env.bal.Status("dep_p0"); st.Failures != 0 {
		t.Fatalf("the abandoned attempt counted against its deployment: %+v", st)
	}
}

// TestHedgeNotSentWhenFirstAnswers: an answer before the delay is relayed
// and no hedge is sent.
func TestHedgeNotSentWhenFirstAnswers(t *testing.T) {
	first := newGate(jsonAnswer("first"))
	second := newGate(jsonAnswer("second"))
	env := newHedgeProxy(t, &llm.HedgePolicy{Enabled: true, DelayMS: 3_600_000}, first, second)
	resp := post(t, env.srv.URL, `{"model":"m"}`)
	body := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, "first") || resp.Header.Get("X-Sluice-Hedged") != "" {
		t.Fatalf("status %d headers %v body %s", resp.StatusCode, resp.Header, body)
	}
	waitRecords(t, env.recs, 1)
	if rec := env.recs.last(); rec.Hedged || rec.Attempts != 1 {
		t.Fatalf("record %+v", rec)
	}
	if second.calls.Load() != 0 || env.hedges(hedgeWon)+env.hedges(hedgeLost) != 0 {
		t.Fatalf("a hedge was sent")
	}
}

// TestHedgeLosesWhenFirstAnswersMeanwhile: the hedge was sent, then the
// first attempt answered first: it is relayed, the hedge cancelled.
func TestHedgeLosesWhenFirstAnswersMeanwhile(t *testing.T) {
	second := newGate(jsonAnswer("second")).held()
	first := newGate(jsonAnswer("first")).until(second.arrived)
	env := newHedgeProxy(t, hedgeAfter1ms, first, second)
	resp := post(t, env.srv.URL, `{"model":"m"}`)
	body := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, "first") {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Sluice-Hedged") != "true" || resp.Header.Get("X-Sluice-Deployment") != "dep_p0" {
		t.Fatalf("headers %v", resp.Header)
	}
	waitClosed(t, second.canceled, "the hedge's cancellation")
	waitRecords(t, env.recs, 1)
	if rec := env.recs.last(); !rec.Hedged || rec.Attempts != 2 || rec.Deployment != "dep_p0" {
		t.Fatalf("record %+v", rec)
	}
	if env.hedges(hedgeLost) != 1 || env.hedges(hedgeWon) != 0 {
		t.Fatal("the hedge's loss was not counted")
	}
}

// TestHedgeStream: on a stream, keepalive comments are not the answer's
// start: the first deployment sends one and holds, the hedge's events are
// relayed.
func TestHedgeStream(t *testing.T) {
	slow := newGate(sseAnswer("slow")).held()
	slow.keepalive = true
	fast := newGate(sseAnswer("fast")).until(slow.arrived)
	env := newHedgeProxy(t, hedgeAfter1ms, slow, fast)
	resp := post(t, env.srv.URL, `{"model":"m","stream":true}`)
	body := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, `"fast"`) || !strings.Contains(body, "[DONE]") || strings.Contains(body, "slow") {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Sluice-Hedged") != "true" || resp.Header.Get("X-Sluice-Deployment") != "dep_p1" {
		t.Fatalf("headers %v", resp.Header)
	}
	waitClosed(t, slow.canceled, "the slow stream's cancellation")
	waitRecords(t, env.recs, 1)
	if rec := env.recs.last(); !rec.Hedged || rec.Deployment != "dep_p1" || rec.Usage.CompletionTokens != 2 {
		t.Fatalf("record %+v", rec)
	}
}

// TestHedgeStreamFirstWins: the first stream's events, arriving after the
// hedge was sent, are relayed whole (the bytes read to decide the race
// included).
func TestHedgeStreamFirstWins(t *testing.T) {
	second := newGate(sseAnswer("second")).held()
	first := newGate(sseAnswer("first")).until(second.arrived)
	env := newHedgeProxy(t, hedgeAfter1ms, first, second)
	resp := post(t, env.srv.URL, `{"model":"m","stream":true}`)
	body := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, `data: {"choices":[{"delta":{"content":"first"}}]}`) || !strings.Contains(body, "[DONE]") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	waitClosed(t, second.canceled, "the hedge's cancellation")
}

// TestHedgeSkippedForUnsafeTools: a request offering a tool the operator
// marked unsafe is never hedged, however slow.
func TestHedgeSkippedForUnsafeTools(t *testing.T) {
	for _, unsafe := range [][]string{{"send_email"}, {"*"}} {
		second := newGate(jsonAnswer("second"))
		first := newGate(jsonAnswer("first")).delayed(30 * time.Millisecond)
		env := newHedgeProxy(t, &llm.HedgePolicy{Enabled: true, DelayMS: 1, UnsafeTools: unsafe}, first, second)
		resp := post(t, env.srv.URL, `{"model":"m","tools":[{"type":"function","function":{"name":"send_email","parameters":{}}}]}`)
		if body := readAll(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "first") || resp.Header.Get("X-Sluice-Hedged") != "" {
			t.Fatalf("%v: status %d body %s", unsafe, resp.StatusCode, body)
		}
		if second.calls.Load() != 0 {
			t.Fatalf("%v: hedged a request offering an unsafe tool", unsafe)
		}
	}
}

func TestOffersUnsafeTool(t *testing.T) {
	for _, c := range []struct {
		body   string
		unsafe []string
		want   bool
	}{
		{`{"tools":[{"type":"function","function":{"name":"a"}}]}`, nil, false},
		{`{"tools":[{"type":"function","function":{"name":"a"}}]}`, []string{"b"}, false},
		{`{"tools":[{"type":"function","function":{"name":"a"}}]}`, []string{"b", "a"}, true},
		{`{"tools":[]}`, []string{"*"}, false},
		{`{"messages":[]}`, []string{"*"}, false},
		{`{"tools":[{"name":"x"}]}`, []string{"*"}, true},
		{`{"tools":[{"name":"get_weather","input_schema":{}}]}`, []string{"get_weather"}, true}, // Anthropic
		{`{"tools":[{"type":"function","name":"pay"}]}`, []string{"pay"}, true},                 // Responses API
		{`{"tools":[{"type":"web_search_preview"}]}`, []string{"web_search_preview"}, true},     // a built-in tool
		{`{"tools":[{"functionDeclarations":[{"name":"f"}]}]}`, []string{"f"}, true},            // Gemini
		{`{"functions":[{"name":"legacy"}]}`, []string{"legacy"}, true},
		{`{"tools":"nonsense"}`, []string{"a"}, true}, // unreadable: not hedged
	} {
		if got := offersUnsafeTool([]byte(c.body), c.unsafe); got != c.want {
			t.Errorf("offersUnsafeTool(%s, %v) = %v", c.body, c.unsafe, got)
		}
	}
}

// TestHedgeNeedsP95Samples: without a configured delay a deployment is
// hedged after its p95 time to first token, and not before it has enough
// samples for one.
func TestHedgeNeedsP95Samples(t *testing.T) {
	second := newGate(jsonAnswer("second"))
	first := newGate(jsonAnswer("first"))
	first.hold = func(n int32) <-chan struct{} {
		if n == 1 {
			return after(20 * time.Millisecond)
		}
		return nil // held until cancelled: only the hedge answers
	}
	env := newHedgeProxy(t, &llm.HedgePolicy{Enabled: true}, first, second)
	resp := post(t, env.srv.URL, `{"model":"m"}`)
	if body := readAll(t, resp); !strings.Contains(body, "first") || second.calls.Load() != 0 {
		t.Fatalf("hedged without a p95: body %s", body)
	}
	d := &llm.Deployment{ID: "dep_p0"}
	for range balancer.MinQuantileSamples {
		env.bal.Start(d)(balancer.Outcome{Latency: time.Millisecond}) // non-streamed answers
	}
	if p95, ok := env.bal.AnswerQuantile("dep_p0", 0.95); !ok || p95 > 2*time.Millisecond {
		t.Fatalf("p95 %v %v", p95, ok)
	}
	resp = post(t, env.srv.URL, `{"model":"m"}`)
	if body := readAll(t, resp); !strings.Contains(body, "second") || resp.Header.Get("X-Sluice-Hedged") != "true" {
		t.Fatalf("not hedged after the p95: body %s", body)
	}
}

// TestHedgeFirstFailsFast: a failure before the delay goes through the
// usual retry, no hedge.
func TestHedgeFirstFailsFast(t *testing.T) {
	first := newGate(statusAnswer(500))
	second := newGate(jsonAnswer("second"))
	env := newHedgeProxy(t, &llm.HedgePolicy{Enabled: true, DelayMS: 3_600_000}, first, second)
	resp := post(t, env.srv.URL, `{"model":"m"}`)
	if body := readAll(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "second") || resp.Header.Get("X-Sluice-Hedged") != "" {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	waitRecords(t, env.recs, 1)
	if rec := env.recs.last(); rec.Hedged || rec.Attempts != 2 {
		t.Fatalf("record %+v", rec)
	}
}

// TestHedgeFailures: either contender failing leaves the other to answer;
// both failing is the request's failure (no third attempt on a model of
// two deployments).
func TestHedgeFailures(t *testing.T) {
	t.Run("hedge fails", func(t *testing.T) {
		second := newGate(statusAnswer(500))
		first := newGate(jsonAnswer("first")).until(second.answered)
		env := newHedgeProxy(t, hedgeAfter1ms, first, second)
		resp := post(t, env.srv.URL, `{"model":"m"}`)
		if body := readAll(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "first") || resp.Header.Get("X-Sluice-Hedged") != "true" {
			t.Fatalf("status %d body %s", resp.StatusCode, body)
		}
		waitRecords(t, env.recs, 1)
		if rec := env.recs.last(); rec.Deployment != "dep_p0" || rec.Attempts != 2 {
			t.Fatalf("record %+v", rec)
		}
	})
	t.Run("first fails after the hedge was sent", func(t *testing.T) {
		firstDone := make(chan struct{})
		second := newGate(jsonAnswer("second")).until(firstDone)
		first := newGate(statusAnswer(503)).until(second.arrived)
		first.answer = func(w http.ResponseWriter) { statusAnswer(503)(w); close(firstDone) }
		env := newHedgeProxy(t, hedgeAfter1ms, first, second)
		resp := post(t, env.srv.URL, `{"model":"m"}`)
		if body := readAll(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "second") {
			t.Fatalf("status %d body %s", resp.StatusCode, body)
		}
		if env.hedges(hedgeWon) != 1 {
			t.Fatal("the hedge's win was not counted")
		}
	})
	t.Run("both fail", func(t *testing.T) {
		second := newGate(statusAnswer(500))
		first := newGate(statusAnswer(500)).until(second.answered)
		env := newHedgeProxy(t, hedgeAfter1ms, first, second)
		resp := post(t, env.srv.URL, `{"model":"m"}`)
		if body := readAll(t, resp); resp.StatusCode != 500 || resp.Header.Get("X-Sluice-Hedged") != "true" {
			t.Fatalf("status %d body %s", resp.StatusCode, body)
		}
		waitRecords(t, env.recs, 1)
		if rec := env.recs.last(); !rec.Hedged || rec.Attempts != 2 {
			t.Fatalf("record %+v", rec)
		}
		if env.hedges(hedgeLost) != 1 {
			t.Fatal("the hedge's loss was not counted")
		}
	})
}

// TestHedgeClientCancel: a client leaving during the race cancels both
// attempts and is recorded as such.
func TestHedgeClientCancel(t *testing.T) {
	first := newGate(jsonAnswer("first")).held()
	second := newGate(jsonAnswer("second")).held()
	env := newHedgeProxy(t, hedgeAfter1ms, first, second)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", env.srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	go func() {
		<-first.arrived
		<-second.arrived
		cancel()
	}()
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the request ended with an answer")
	}
	waitClosed(t, first.canceled, "the first attempt's cancellation")
	waitClosed(t, second.canceled, "the hedge's cancellation")
	waitRecords(t, env.recs, 1)
	if rec := env.recs.last(); rec.Status != llm.StatusClientCancelled || !rec.Hedged {
		t.Fatalf("record %+v", rec)
	}
}

// TestHedgeNotForOneDeployment: a model with one deployment has nothing
// to hedge on.
func TestHedgeNotForOneDeployment(t *testing.T) {
	only := newGate(jsonAnswer("only")).delayed(20 * time.Millisecond)
	env := newHedgeProxy(t, hedgeAfter1ms, only)
	resp := post(t, env.srv.URL, `{"model":"m"}`)
	if body := readAll(t, resp); resp.StatusCode != 200 || resp.Header.Get("X-Sluice-Hedged") != "" {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
}

// TestHedgeLeaksNoGoroutine: once the servers are closed, nothing the
// races started is left running.
func TestHedgeLeaksNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	func() {
		slow := newGate(sseAnswer("slow")).held()
		slow.keepalive = true
		second := newGate(jsonAnswer("second")).held()
		first := newGate(jsonAnswer("first")).until(second.arrived)
		for _, ups := range [][]http.Handler{{slow, newGate(sseAnswer("fast"))}, {first, second}} {
			t.Run("", func(t *testing.T) {
				env := newHedgeProxy(t, hedgeAfter1ms, ups...)
				resp := post(t, env.srv.URL, `{"model":"m","stream":true}`)
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				readAll(t, resp)
				resp.Body.Close()
			})
		}
	}()
	http.DefaultClient.CloseIdleConnections()
}

// TestHedgeNotWhenNoAttemptLeft: a hedge is an attempt; with one allowed,
// none is sent.
func TestHedgeNotWhenNoAttemptLeft(t *testing.T) {
	first := newGate(jsonAnswer("first")).delayed(20 * time.Millisecond)
	second := newGate(jsonAnswer("second"))
	env := newHedgeProxyWith(t, hedgeAfter1ms, func(o *Options) { o.MaxAttempts = 1 }, first, second)
	resp := post(t, env.srv.URL, `{"model":"m"}`)
	if body := readAll(t, resp); !strings.Contains(body, "first") || second.calls.Load() != 0 {
		t.Fatalf("hedged beyond the attempts allowed: %s", body)
	}
}

// TestHedgeNotToUnavailable: the only other deployment is cooling (a
// 429): no hedge is sent to it.
func TestHedgeNotToUnavailable(t *testing.T) {
	first := newGate(jsonAnswer("first")).delayed(20 * time.Millisecond)
	second := newGate(jsonAnswer("second"))
	env := newHedgeProxy(t, hedgeAfter1ms, first, second)
	limited := llm.Errorf(llm.KindRateLimited, "slow down")
	limited.RetryAfter, limited.UpstreamStatus = time.Hour, http.StatusTooManyRequests
	env.bal.Start(&llm.Deployment{ID: "dep_p1"})(balancer.Outcome{Err: limited})
	resp := post(t, env.srv.URL, `{"model":"m"}`)
	if body := readAll(t, resp); !strings.Contains(body, "first") || second.calls.Load() != 0 || resp.Header.Get("X-Sluice-Hedged") != "" {
		t.Fatalf("hedged to a cooling deployment: %s", body)
	}
}

// TestHedgePanicEndsRace: a panic in the request's goroutine during the
// race (here admitting the hedge) still ends the first attempt: cancelled,
// reported to the balancer and its admission settled (newHedgeProxy's
// cleanup checks both).
func TestHedgePanicEndsRace(t *testing.T) {
	first := newGate(jsonAnswer("first")).held()
	second := newGate(jsonAnswer("second"))
	env := newHedgeProxy(t, hedgeAfter1ms, first, second)
	env.adm.mu.Lock()
	env.adm.panicOn = "dep_p1"
	// The panic waits until the first attempt reached its upstream: a
	// cancel before that would never be seen there (under load the
	// first attempt's goroutine may not have sent anything within 1ms).
	env.adm.panicWait = first.arrived
	env.adm.mu.Unlock()
	resp := post(t, env.srv.URL, `{"model":"m"}`)
	if resp.StatusCode != 500 || second.calls.Load() != 0 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	waitClosed(t, first.canceled, "the first attempt's cancellation")
}

// TestHedgeDrawsOnRetryBudget: a hedge takes a retry token; with none
// left it is not sent, and counted as skipped.
func TestHedgeDrawsOnRetryBudget(t *testing.T) {
	first := newGate(jsonAnswer("first")).delayed(20 * time.Millisecond)
	second := newGate(jsonAnswer("second"))
	env := newHedgeProxyWith(t, hedgeAfter1ms, func(o *Options) { o.RetryRatio, o.RetryFloor = 0.001, 0.001 }, first, second)
	resp := post(t, env.srv.URL, `{"model":"m"}`)
	if body := readAll(t, resp); !strings.Contains(body, "first") || second.calls.Load() != 0 {
		t.Fatalf("hedged without a retry token: %s", body)
	}
	if env.hedges(hedgeSkippedBudget) != 1 {
		t.Fatal("the skipped hedge was not counted")
	}
}
