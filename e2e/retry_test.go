package e2e

import (
	"database/sql"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"
)

// attemptRow is a usage row's attempts and served model, read from the
// gateway's SQLite file.
type attemptRow struct {
	RequestID, Model, ServedModel, Deployment, Status string
	Attempts                                          int
	Stream                                            bool
}

func (g *gateway) attemptRows(t testing.TB) []attemptRow {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(g.DataDir, "sluice.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT request_id, model, served_model, deployment, status, attempts, stream FROM usage_records`)
	if err != nil {
		t.Fatalf("query usage_records: %v", err)
	}
	defer rows.Close()
	var out []attemptRow
	for rows.Next() {
		var r attemptRow
		if err := rows.Scan(&r.RequestID, &r.Model, &r.ServedModel, &r.Deployment, &r.Status, &r.Attempts, &r.Stream); err != nil {
			t.Fatalf("scan usage_records: %v", err)
		}
		out = append(out, r)
	}
	return out
}

// TestKillOneDeploymentMidRun (issue 7, item 9): a model on three
// mockllm processes of different latencies serves a steady load of
// non-streaming and streaming requests through the official SDK, with the
// SDK's own retries off; one mockllm is SIGKILLed mid-run. No
// non-streaming request and no stream that had not started sees an
// error: the gateway retried them on the others. The killed deployment is
// ejected, some usage rows record more than one attempt, and nothing is
// left in flight.
func TestKillOneDeploymentMidRun(t *testing.T) {
	t.Parallel()
	g := startGateway(t, gwOptions{})
	latencies := []string{"20ms", "50ms", "150ms"}
	mocks := make([]*mockLLM, len(latencies))
	var deps []deployment
	for i, l := range latencies {
		mocks[i] = startMock(t, "--latency", l, "--chunks", "4", "--chunk-delay", "10ms")
		name := "mock" + strconv.Itoa(i)
		g.addProvider(t, provider{Name: name, BaseURL: mocks[i].URL + "/v1", APIKey: "sk-upstream-" + randHex(t, 8)})
		deps = append(deps, deployment{Provider: name, Model: "gpt-4o-mini", Weight: 1, InputPrice: 0.15, OutputPrice: 0.6})
	}
	// Equal weights: the slow one gets a third of the load, so it has
	// requests in flight when it dies.
	g.adminOK(t, http.MethodPost, "/admin/models", map[string]any{"name": "gpt-4o-mini", "strategy": "weighted", "deployments": deps}, nil)
	k := g.addKey(t, "load", nil)
	c := g.client(k.Key)
	victim := mocks[2]

	var (
		stop                              atomic.Bool
		okCalls, okStreams, brokenStreams atomic.Int64
		mu                                sync.Mutex
		failures                          []string
		wg                                sync.WaitGroup
	)
	fail := func(what string, err error) {
		mu.Lock()
		failures = append(failures, what+": "+err.Error())
		mu.Unlock()
	}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				ctx := testCtx(t, 20*time.Second)
				if w%2 == 0 {
					if _, err := c.Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "hello there")); err != nil {
						fail("non-streaming", err)
					} else {
						okCalls.Add(1)
					}
					continue
				}
				s := c.Chat.Completions.NewStreaming(ctx, chatParams("gpt-4o-mini", "hello there"))
				chunks := 0
				for s.Next() {
					chunks++
				}
				switch err := s.Err(); {
				case err == nil:
					okStreams.Add(1)
				case chunks == 0:
					fail("stream not started", err)
				default:
					brokenStreams.Add(1) // broke mid-stream: allowed
				}
				s.Close()
			}
		}()
	}
	// Kill once the victim has served some of the load.
	deadline := time.Now().Add(15 * time.Second)
	for victim.stats(t).Completed < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	before := okCalls.Load() + okStreams.Load()
	for okCalls.Load()+okStreams.Load() < before+60 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d client-visible errors (want 0), first: %v", len(failures), failures[0])
	}
	t.Logf("%d answers, %d streams, %d streams broken mid-way", okCalls.Load(), okStreams.Load(), brokenStreams.Load())

	health := g.health(t)
	victimDep := health["mock2"].Deployment
	if st := health["mock2"].State; st != "ejected" {
		t.Errorf("killed deployment: state %q, want ejected", st)
	}
	for _, h := range health {
		if h.InFlight != 0 {
			t.Errorf("deployment %s: %d in flight after the run", h.Deployment, h.InFlight)
		}
	}
	if m := g.metrics(t); !regexp.MustCompile(`(?m)^sluice_inflight_requests 0$`).MatchString(m) {
		t.Errorf("sluice_inflight_requests is not 0 after the run")
	}
	// Usage rows: some requests needed more than one attempt, and those
	// were answered by another deployment than the dead one.
	want := int(okCalls.Load() + okStreams.Load() + brokenStreams.Load())
	var rows []attemptRow
	for end := time.Now().Add(5 * time.Second); ; {
		rows = g.attemptRows(t)
		if len(rows) >= want || time.Now().After(end) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	retried := 0
	for _, r := range rows {
		if r.Attempts > 1 && r.Status == "ok" {
			retried++
			if r.Deployment == victimDep {
				t.Errorf("row %s: %d attempts answered by the dead deployment", r.RequestID, r.Attempts)
			}
		}
		if r.Attempts < 1 || r.Attempts > 3 {
			t.Errorf("row %s: %d attempts", r.RequestID, r.Attempts)
		}
	}
	if retried == 0 {
		t.Errorf("no usage row records a retry (of %d rows)", len(rows))
	}
	t.Logf("%d of %d usage rows answered after more than one attempt", retried, len(rows))
}

// TestFallbackModelAnswers: model A's only deployment fails (its provider
// sends X-Mock-Status: 500), so fallback model B answers, through the
// official SDK, streamed or not; X-Sluice-Model names B and the usage row
// carries it.
func TestFallbackModelAnswers(t *testing.T) {
	t.Parallel()
	m := startMock(t)
	g := startGateway(t, gwOptions{})
	g.addProvider(t, provider{Name: "broken", BaseURL: m.URL + "/v1", APIKey: "sk-upstream-" + randHex(t, 8), Headers: map[string]string{"X-Mock-Status": "500"}})
	g.addProvider(t, provider{Name: "good", BaseURL: m.URL + "/v1", APIKey: "sk-upstream-" + randHex(t, 8)})
	g.addModel(t, "model-b", "good")
	g.adminOK(t, http.MethodPost, "/admin/models", map[string]any{"name": "model-a", "fallbacks": []string{"model-b"},
		"deployments": []deployment{{Provider: "broken", Model: "model-a", Weight: 1}}}, nil)
	k := g.addKey(t, "fb", nil)
	c := g.client(k.Key)
	ctx := testCtx(t, 20*time.Second)

	var resp *http.Response
	out, err := c.Chat.Completions.New(ctx, chatParams("model-a", "hello"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Sluice-Model") != "model-b" || resp.Header.Get("X-Sluice-Attempts") != "2" || out.Choices[0].Message.Content == "" {
		t.Fatalf("headers %v, answer %+v", resp.Header, out)
	}
	resp = nil
	s := c.Chat.Completions.NewStreaming(ctx, chatParams("model-a", "hello"), option.WithResponseInto(&resp))
	n := 0
	for s.Next() {
		n++
	}
	if err := s.Err(); err != nil || n == 0 {
		t.Fatalf("stream: %d chunks, %v", n, err)
	}
	s.Close()
	if resp.Header.Get("X-Sluice-Model") != "model-b" || resp.Header.Get("X-Sluice-Attempts") != "2" {
		t.Fatalf("stream headers %v", resp.Header)
	}
	var rows []attemptRow
	for end := time.Now().Add(5 * time.Second); len(rows) < 2 && time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		rows = g.attemptRows(t)
	}
	if len(rows) != 2 {
		t.Fatalf("usage rows %+v", rows)
	}
	for _, r := range rows {
		if r.Model != "model-a" || r.ServedModel != "model-b" || r.Attempts != 2 || r.Status != "ok" {
			t.Errorf("usage row %+v", r)
		}
	}
	metrics := g.metrics(t)
	if !regexp.MustCompile(`(?m)^sluice_fallbacks_total\{fallback="model-b",model="model-a"\} 2$`).MatchString(metrics) {
		t.Errorf("sluice_fallbacks_total not counted")
	}
	if !regexp.MustCompile(`(?m)^sluice_inflight_requests 0$`).MatchString(metrics) {
		t.Errorf("sluice_inflight_requests is not 0 after the run")
	}
	for p, h := range g.health(t) {
		if h.InFlight != 0 {
			t.Errorf("provider %s: %d attempts in flight after the run", p, h.InFlight)
		}
	}
}
