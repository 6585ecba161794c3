package state

import (
	"context"
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
)

// probeServer is an OpenAI-compatible upstream whose model list and chat
// answer 500 while failing is set; it counts chat probes per model.
type probeServer struct {
	*httptest.Server
	failing atomic.Bool
	lists   atomic.Int64
	mu      sync.Mutex
	chats   map[string]int
}

func newProbeServer(t *testing.T) *probeServer {
	s := &probeServer{chats: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if s.failing.Load() {
			w.WriteHeader(500)
			_, _ = io.WriteString(w, `{"error":{"message":"down"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/models":
			s.lists.Add(1)
			_, _ = io.WriteString(w, `{"object":"list","data":[]}`)
		case "/v1/chat/completions":
			model := "?"
			for _, m := range []string{"x", "y"} {
				if strings.Contains(string(body), `"model":"`+m+`"`) {
					model = m
				}
			}
			s.mu.Lock()
			s.chats[model]++
			s.mu.Unlock()
			_, _ = io.WriteString(w, `{"id":"c","object":"chat.completion","model":"x","choices":[{"index":0,"message":{"role":"assistant","content":"p"},"finish_reason":"length"}]}`)
		default:
			w.WriteHeader(404)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// withProbe sets provider name's probe in snap.
func withProbe(snap *llm.Snapshot, name string, p llm.Probe) *llm.Snapshot {
	cp := *snap.Providers[name]
	cp.Probe = p
	snap.Providers[name] = &cp
	return snap
}

// fastProbes makes probe loops wait 1ms between rounds.
func fastProbes(o Options) Options {
	o.probeWait = func(ctx context.Context, _ time.Duration) bool {
		t := time.NewTimer(time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	o.probeJitter = func(time.Duration) time.Duration { return 0 }
	return o
}

// eventually polls cond for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestProbeLoopsFollowReloads: Build starts a loop per probed provider
// (after retire), keeps it across reloads that change nothing of it,
// replaces it when the provider's configuration changes, stops it when
// the provider goes; nothing is left running after Close.
func TestProbeLoopsFollowReloads(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	up := newProbeServer(t)
	up.failing.Store(true)
	b := balancer.New(balancer.Options{})
	metrics := NewProbeMetrics(nil)
	o := fastProbes(Options{Balancer: b, ProbeMetrics: metrics})
	probe := llm.Probe{Kind: llm.ProbeModels, HealthyThreshold: 2, UnhealthyThreshold: 2}
	snap1 := withProbe(snapshot(up.URL+"/v1", map[string]int64{"a": 1, "b": 1}), "a", probe)
	st1, retire, errs := Build(nil, snap1, o)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if len(st1.probes.loops) != 1 {
		t.Fatalf("loops: %v", st1.probes.loops)
	}
	loopA := st1.probes.loops["prov_a"]
	// Nothing runs before retire: Build changes nothing prev's users see.
	time.Sleep(5 * time.Millisecond)
	if n := testutil.ToFloat64(metrics.total.WithLabelValues("a", "fail")); n != 0 {
		t.Fatalf("%v probes before retire", n)
	}
	retire()
	eventually(t, "dep_a ejected by probes", func() bool {
		st := b.Status("dep_a")
		return st.State == "ejected" && st.Probe != nil && st.Probe.Gated
	})
	if st := b.Status("dep_b"); st.Probe != nil || !st.Healthy {
		t.Fatalf("unprobed dep_b: %+v", st)
	}
	up.failing.Store(false)
	eventually(t, "dep_a back after passing probes", func() bool { return b.Status("dep_a").Healthy })
	if testutil.ToFloat64(metrics.total.WithLabelValues("a", "fail")) < 2 || testutil.ToFloat64(metrics.total.WithLabelValues("a", "pass")) < 2 {
		t.Fatal("probes not counted")
	}

	// The same configuration again: the loop carries on.
	snap2 := withProbe(snapshot(up.URL+"/v1", map[string]int64{"a": 1, "b": 1}), "a", probe)
	st2, retire, _ := Build(st1, snap2, o)
	retire()
	if st2.probes.loops["prov_a"] != loopA {
		t.Fatal("unchanged probe loop was replaced")
	}
	select {
	case <-loopA.done:
		t.Fatal("reused loop stopped")
	default:
	}

	// a's configuration changes (a new revision, a longer interval): a new loop.
	probe.IntervalS = 5
	snap3 := withProbe(snapshot(up.URL+"/v1", map[string]int64{"a": 2, "b": 1}), "a", probe)
	st3, retire, _ := Build(st2, snap3, o)
	loopA3 := st3.probes.loops["prov_a"]
	if loopA3 == loopA {
		t.Fatal("changed provider kept its probe loop")
	}
	retire()
	<-loopA.done // stopped by retire
	lists := up.lists.Load()
	eventually(t, "the new loop probing", func() bool { return up.lists.Load() > lists+2 })

	// Probes off for a: the loop stops and the deployment is no longer probed.
	snap4 := snapshot(up.URL+"/v1", map[string]int64{"a": 3, "b": 1})
	st4, retire, _ := Build(st3, snap4, o)
	retire()
	<-loopA3.done
	if len(st4.probes.loops) != 0 || b.Status("dep_a").Probe != nil {
		t.Fatalf("probes off: %v %+v", st4.probes.loops, b.Status("dep_a"))
	}
	if n := testutil.CollectAndCount(metrics); n != 0 {
		t.Fatalf("%d probe series left for a provider no longer probed", n)
	}

	// Back on, then shut down.
	snap5 := withProbe(snapshot(up.URL+"/v1", map[string]int64{"a": 4, "b": 1}), "a", probe)
	st5, retire, _ := Build(st4, snap5, o)
	retire()
	loop5 := st5.probes.loops["prov_a"]
	st5.Close()
	<-loop5.done
	st5.Close() // twice is fine
	_, retire, _ = Build(st5, llm.EmptySnapshot(), o)
	retire() // closes idle connections
	up.Close()
}

// TestProbeLoopNeverStartedIsNotLeaked: a Build whose retire never ran
// (a discarded State) started nothing, and closing it is harmless.
func TestProbeLoopNeverStartedIsNotLeaked(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b := balancer.New(balancer.Options{})
	snap := withProbe(snapshot("http://127.0.0.1:1/v1", map[string]int64{"a": 1}), "a", llm.Probe{Kind: llm.ProbeModels})
	st, _, _ := Build(nil, snap, Options{Balancer: b})
	st.Close()
	st.probes.start(&probeRun{sink: b, wait: sleepCtx, jitter: randJitter}) // a stopped loop never starts
	if len(st.probes.loops) != 1 {
		t.Fatal("no loop planned")
	}
	// Without a balancer nothing is probed.
	st, retire, _ := Build(nil, snap, Options{})
	retire()
	if st.probes != nil {
		t.Fatal("probe loops without a balancer")
	}
}

// stepper drives probe loops one round at a time.
type stepper struct {
	waiting chan struct{}
	tick    chan struct{}
}

func newStepper() *stepper { return &stepper{waiting: make(chan struct{}), tick: make(chan struct{})} }

func (s *stepper) wait(ctx context.Context, _ time.Duration) bool {
	select {
	case s.waiting <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	select {
	case <-s.tick:
		return true
	case <-ctx.Done():
		return false
	}
}

// round lets the (single) loop run one round and waits until it is done.
func (s *stepper) round(t *testing.T) {
	t.Helper()
	s.tick <- struct{}{}
	select {
	case <-s.waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("round did not finish")
	}
}

// TestCompletionProbeOnePerModel: a completion probe runs once per
// upstream model of the provider per round (never the model list), and
// its result goes to every deployment on that model.
func TestCompletionProbeOnePerModel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	up := newProbeServer(t)
	b := balancer.New(balancer.Options{})
	snap := llm.EmptySnapshot()
	snap.Providers["a"] = &llm.Provider{ID: "prov_a", Name: "a", Type: llm.ProviderOpenAICompatible, BaseURL: up.URL + "/v1", Revision: 1,
		Probe: llm.Probe{Kind: llm.ProbeCompletion, HealthyThreshold: 1, UnhealthyThreshold: 1}}
	snap.Models["m1"] = &llm.Model{ID: "mod_1", Name: "m1", Deployments: []llm.Deployment{{ID: "d1", Provider: "a", Model: "x"}, {ID: "d2", Provider: "a", Model: "y"}}}
	snap.Models["m2"] = &llm.Model{ID: "mod_2", Name: "m2", Deployments: []llm.Deployment{{ID: "d3", Provider: "a", Model: "x"}}}
	s := newStepper()
	o := Options{Balancer: b, probeWait: s.wait, probeJitter: func(time.Duration) time.Duration { return 0 }}
	st, retire, _ := Build(nil, snap, o)
	retire()
	<-s.waiting
	s.round(t)
	up.mu.Lock()
	got := map[string]int{"x": up.chats["x"], "y": up.chats["y"]}
	up.mu.Unlock()
	if got["x"] != 1 || got["y"] != 1 || up.lists.Load() != 0 {
		t.Fatalf("one round probed %v (and %d lists)", got, up.lists.Load())
	}
	for _, id := range []string{"d1", "d2", "d3"} {
		if st := b.Status(id); st.Probe == nil || st.Probe.Passing != 1 {
			t.Fatalf("%s: %+v", id, st.Probe)
		}
	}
	up.failing.Store(true)
	s.round(t)
	for _, id := range []string{"d1", "d2", "d3"} {
		if st := b.Status(id); st.Healthy || !st.Probe.Gated || !strings.Contains(st.Probe.LastError, "HTTP 500") {
			t.Fatalf("%s after a failing round (threshold 1): %+v %+v", id, st, st.Probe)
		}
	}
	st.Close()
	_, retire, _ = Build(st, llm.EmptySnapshot(), o)
	retire()
	up.Close()
}

// TestUnbuiltProviderIsNotProbedOrGated: a provider with probes on that
// could not be built has no loop, and its deployments are not gated (no
// probe could ever lift the gate).
func TestUnbuiltProviderIsNotProbedOrGated(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	b := balancer.New(balancer.Options{})
	snap := withProbe(snapshot("http://127.0.0.1:1/v1", map[string]int64{"a": 1}), "a", llm.Probe{Kind: llm.ProbeModels})
	snap.Providers["a"].Type = "no-such-type"
	st, retire, errs := Build(nil, snap, Options{Balancer: b})
	retire()
	if len(errs) == 0 || len(st.probes.loops) != 0 || b.Status("dep_a").Probe != nil {
		t.Fatalf("errs %v loops %v status %+v", errs, st.probes.loops, b.Status("dep_a"))
	}
	st.Close()
}
