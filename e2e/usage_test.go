package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
)

// TestUsageRecorded checks that every request leaves a usage row and that
// /admin/usage groups them (test 9).
func TestUsageRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gwOptions{})
	g := f.gw
	c := g.client(f.key.Key)
	ctx := testCtx(t, 30*time.Second)

	const nPlain, nStream = 4, 3
	var wantPrompt, wantCompletion int64
	for i := range nPlain {
		cc, err := c.Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "usage test number one"))
		if err != nil {
			t.Fatalf("chat %d: %v", i, err)
		}
		wantPrompt += cc.Usage.PromptTokens
		wantCompletion += cc.Usage.CompletionTokens
	}
	for i := range nStream {
		p := chatParams("gpt-4o-mini", "usage stream")
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		s := c.Chat.Completions.NewStreaming(ctx, p)
		for s.Next() {
			if u := s.Current().Usage; u.TotalTokens > 0 {
				wantPrompt += u.PromptTokens
				wantCompletion += u.CompletionTokens
			}
		}
		if err := s.Err(); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		s.Close()
	}
	const n = nPlain + nStream

	row := g.waitUsage(t, "model", "gpt-4o-mini", func(r usageRow) bool { return r.Requests >= n })
	if row.Requests != n {
		t.Errorf("requests = %d, want %d", row.Requests, n)
	}
	if row.PromptTokens != wantPrompt || row.CompletionTokens != wantCompletion {
		t.Errorf("tokens = %d/%d, want %d/%d", row.PromptTokens, row.CompletionTokens, wantPrompt, wantCompletion)
	}
	wantCost := (float64(wantPrompt)*0.15 + float64(wantCompletion)*0.6) / 1e6
	// Each row's cost is rounded to the nearest micro-USD.
	if slack := float64(n) * 0.5e-6; row.Cost <= 0 || row.Cost < wantCost-slack || row.Cost > wantCost+slack {
		t.Errorf("cost = %g, want %g", row.Cost, wantCost)
	}
	if row.Errors != 0 {
		t.Errorf("errors = %d, want 0", row.Errors)
	}
	if r := g.waitUsage(t, "key", f.key.ID, func(r usageRow) bool { return r.Requests >= n }); r.Requests != n {
		t.Errorf("group_by=key: requests = %d, want %d", r.Requests, n)
	}
	if r := g.waitUsage(t, "provider", "mock", func(r usageRow) bool { return r.Requests >= n }); r.Requests != n {
		t.Errorf("group_by=provider: requests = %d, want %d", r.Requests, n)
	}
	for _, by := range []string{"hour", "day"} {
		var total int64
		for _, r := range g.usage(t, by) {
			total += r.Requests
			if _, err := time.Parse(time.RFC3339, r.Group); err != nil {
				t.Errorf("group_by=%s: group %q is not RFC3339", by, r.Group)
			}
		}
		if total != n {
			t.Errorf("group_by=%s: total requests %d, want %d", by, total, n)
		}
	}
	if code, body := g.adminDo(t, http.MethodGet, "/admin/usage?group_by=nonsense", nil); code != http.StatusBadRequest {
		t.Errorf("group_by=nonsense: status %d, want 400: %s", code, body)
	}
}

// TestMetrics checks the Prometheus exposition (test 13).
func TestMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gwOptions{})
	g := f.gw
	c := g.client(f.key.Key)
	ctx := testCtx(t, 20*time.Second)
	if _, err := c.Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "metrics")); err != nil {
		t.Fatalf("chat: %v", err)
	}
	p := chatParams("gpt-4o-mini", "metrics stream")
	s := c.Chat.Completions.NewStreaming(ctx, p)
	for s.Next() {
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	s.Close()
	// Requests that fail early with a key-like model name or key.
	_, _ = c.Chat.Completions.New(ctx, chatParams("sk-not-a-model-"+randHex(t, 4), "x"))
	_, _ = g.client("sk-sluice-"+randHex(t, 16)).Chat.Completions.New(ctx, chatParams("gpt-4o-mini", "x"))

	// Unauthenticated /metrics is refused.
	resp, err := http.Get(g.Admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /metrics without admin key: status %d, want 401", resp.StatusCode)
	}

	var text string
	deadline := time.Now().Add(3 * time.Second)
	for {
		text = g.metrics(t)
		if strings.Contains(text, "sluice_tokens_total{") && strings.Contains(text, "sluice_cost_usd_total{") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, name := range []string{
		"sluice_requests_total", "sluice_request_duration_seconds", "sluice_time_to_first_token_seconds",
		"sluice_gateway_overhead_seconds", "sluice_tokens_total", "sluice_cost_usd_total",
	} {
		if !strings.Contains(text, "\n"+name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i, j := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
		if i < 0 || j < i {
			continue
		}
		if strings.Contains(line[i:j], "sk-") {
			t.Errorf("metric label contains a key-like value: %s", line)
		}
	}
	if strings.Contains(text, f.key.Key) || strings.Contains(text, g.AdminKey) {
		t.Errorf("/metrics contains a secret")
	}
	if !strings.Contains(text, `sluice_requests_total{`) {
		t.Errorf("sluice_requests_total has no samples")
	}
}
