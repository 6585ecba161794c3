package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// probeHealth is the part of a GET /admin/health row the probe test reads.
type probeHealth struct {
	Provider string `json:"provider"`
	Healthy  bool   `json:"healthy"`
	State    string `json:"state"`
	Probe    *struct {
		Gated     bool       `json:"gated"`
		Passing   int        `json:"passing"`
		Failing   int        `json:"failing"`
		LastOK    *time.Time `json:"last_ok"`
		LastError string     `json:"last_error"`
	} `json:"probe"`
}

func (g *gateway) providerHealth(t testing.TB, provider string) probeHealth {
	t.Helper()
	var out struct {
		Items []probeHealth `json:"items"`
	}
	g.adminOK(t, http.MethodGet, "/admin/health", nil, &out)
	for _, h := range out.Items {
		if h.Provider == provider {
			return h
		}
	}
	t.Fatalf("no health row for %s: %+v", provider, out.Items)
	return probeHealth{}
}

// waitHealth polls the provider's health row until ok holds (20s at most).
func (g *gateway) waitHealth(t testing.TB, provider, what string, ok func(probeHealth) bool) probeHealth {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h := g.providerHealth(t, provider)
		if ok(h) {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s never happened; last %+v (probe %+v)", provider, what, h, h.Probe)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// forceStatus makes mock m answer every model request with code (200: normal).
func forceStatus(t testing.TB, m *mockLLM, code int) {
	t.Helper()
	resp, err := http.Post(fmt.Sprintf("%s/_mock/status?code=%d", m.URL, code), "", nil)
	if err != nil {
		t.Fatalf("mock status: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("mock status: %d", resp.StatusCode)
	}
}

// chatVia sends one chat with client request id id and returns the status
// and the provider that served it.
func chatVia(t testing.TB, g *gateway, key, id string) (int, string) {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.Proxy+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("chat: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Sluice-Provider")
}

// TestProbesGateEjectedDeployment (issue 7 items 3 and 9): a provider with
// an active probe whose upstream starts failing is ejected by its probes
// without any traffic, stays out (clients are served by the other
// deployment) while the probes fail, and returns once they pass again;
// /admin/health and /metrics show it, and probes leave no usage records.
func TestProbesGateEjectedDeployment(t *testing.T) {
	t.Parallel()
	flaky, steady := startMock(t, "--api-key", "sk-flaky-upstream-0123456789"), startMock(t)
	g := startGateway(t, gwOptions{})
	g.adminOK(t, http.MethodPost, "/admin/providers", map[string]any{
		"name": "flaky", "type": "openai-compatible", "base_url": flaky.URL + "/v1", "api_key": "sk-flaky-upstream-0123456789",
		"probe": map[string]any{"kind": "models", "interval_s": 1, "timeout_s": 2, "healthy_threshold": 2, "unhealthy_threshold": 2},
	}, nil)
	g.addProvider(t, provider{Name: "steady", BaseURL: steady.URL + "/v1"})
	g.addModel(t, "gpt-4o-mini", "flaky", "steady")
	key := g.addKey(t, "probe-test", nil).Key

	// Probes pass while the upstream is fine (and carry its credential:
	// the mock requires it).
	g.waitHealth(t, "flaky", "a passing probe", func(h probeHealth) bool {
		return h.Probe != nil && h.Probe.Passing >= 1 && h.Probe.LastOK != nil && h.Healthy
	})

	forceStatus(t, flaky, 500)
	outAt := time.Now()
	h := g.waitHealth(t, "flaky", "ejection by probes", func(h probeHealth) bool {
		return h.State == "ejected" && h.Probe != nil && h.Probe.Gated
	})
	t.Logf("ejected by probes %v after the outage began (interval 1s, unhealthy_threshold 2)", time.Since(outAt).Round(10*time.Millisecond))
	if !strings.Contains(h.Probe.LastError, "HTTP 500") || strings.Contains(h.Probe.LastError, "sk-flaky") {
		t.Fatalf("last_error %q", h.Probe.LastError)
	}
	if st := g.providerHealth(t, "steady"); st.Probe != nil || !st.Healthy {
		t.Fatalf("steady: %+v", st)
	}

	// While its probes fail, traffic goes to the other deployment.
	calls := 0
	last := ""
	for i := range 10 {
		last = fmt.Sprintf("probe-e2e-out-%d", i)
		code, prov := chatVia(t, g, key, last)
		calls++
		if code != 200 || prov != "steady" {
			t.Fatalf("request %d while flaky is gated: %d via %q", i, code, prov)
		}
	}
	if h := g.providerHealth(t, "flaky"); h.Healthy || !h.Probe.Gated || h.Probe.Passing != 0 {
		t.Fatalf("flaky came back while failing: %+v %+v", h, h.Probe)
	}

	forceStatus(t, flaky, 200)
	backAt := time.Now()
	g.waitHealth(t, "flaky", "re-admission after passing probes", func(h probeHealth) bool {
		return h.Healthy && h.State == "healthy" && h.Probe != nil && !h.Probe.Gated && h.Probe.Passing >= 2
	})
	t.Logf("re-admitted %v after the upstream recovered (healthy_threshold 2)", time.Since(backAt).Round(10*time.Millisecond))
	back := false
	for i := 0; i < 60 && !back; i++ {
		last = fmt.Sprintf("probe-e2e-back-%d", i)
		code, prov := chatVia(t, g, key, last)
		calls++
		if code != 200 {
			t.Fatalf("request after recovery: %d", code)
		}
		back = prov == "flaky"
	}
	if !back {
		t.Fatal("flaky never served again after its probes passed")
	}

	m := g.metrics(t)
	for _, want := range []string{`sluice_probe_total{provider="flaky",result="fail"}`, `sluice_probe_total{provider="flaky",result="pass"}`,
		`sluice_probe_duration_seconds_count{provider="flaky"}`, `sluice_deployment_probe_gated{`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(m, "sk-flaky") {
		t.Error("/metrics holds the provider key")
	}
	// Probe traffic is no client's: exactly one usage record per chat.
	g.waitRecord(t, last)
	if rows := g.sqliteUsage(t); len(rows) != calls {
		t.Fatalf("%d usage records for %d chats: probes were recorded", len(rows), calls)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range g.adminBodies {
		if strings.Contains(b, "sk-flaky") {
			t.Fatalf("admin answer holds the provider key: %.300s", b)
		}
	}
}
