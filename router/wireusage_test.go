package router

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

func TestParseUsage(t *testing.T) {
	cases := []struct {
		raw  string
		want llm.Usage
		ok   bool
	}{
		{``, llm.Usage{}, false},
		{`null`, llm.Usage{}, false},
		{`{"prompt_tokens":10,"completion_tokens":5}`, llm.Usage{PromptTokens: 10, CompletionTokens: 5}, true},
		// OpenAI's details: cache reads are part of the prompt, reasoning
		// part of the completion.
		{`{"prompt_tokens":10,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":0},` +
			`"completion_tokens_details":{"reasoning_tokens":3,"accepted_prediction_tokens":0}}`,
			llm.Usage{PromptTokens: 10, CompletionTokens: 5, CacheReadTokens: 4, ReasoningTokens: 3}, true},
		{`{"prompt_tokens":10,"prompt_tokens_details":null,"completion_tokens_details":null}`, llm.Usage{PromptTokens: 10}, true},
		// Absurd numbers are kept (saturated) for Sanitize to clamp and
		// mark, not turned into an unmarked estimate.
		{`{"prompt_tokens":-1000000,"completion_tokens":9223372036854775807}`, llm.Usage{PromptTokens: -1000000, CompletionTokens: math.MaxInt64}, true},
		{`{"prompt_tokens":1e300,"completion_tokens":99999999999999999999999}`, llm.Usage{PromptTokens: math.MaxInt64, CompletionTokens: math.MaxInt64}, true},
		{`{"prompt_tokens":-1e300,"completion_tokens":12.7}`, llm.Usage{PromptTokens: math.MinInt64, CompletionTokens: 12}, true},
		{`{"prompt_tokens":null,"completion_tokens":3}`, llm.Usage{CompletionTokens: 3}, true},
		// Not numbers: the usage is unusable and gets estimated, not
		// recorded as free.
		{`{"prompt_tokens":"12","completion_tokens":3}`, llm.Usage{}, false},
		{`{"prompt_tokens":1,"completion_tokens":{}}`, llm.Usage{}, false},
		{`{"prompt_tokens":1,"completion_tokens":true}`, llm.Usage{}, false},
	}
	for _, c := range cases {
		got, ok := parseUsage([]byte(c.raw))
		if got != c.want || ok != c.ok {
			t.Errorf("parseUsage(%s) = %+v, %v; want %+v, %v", c.raw, got, ok, c.want, c.ok)
		}
	}
}

func TestRequestUsageLimits(t *testing.T) {
	cases := []struct {
		body string
		want llm.UsageLimits
	}{
		{`{"model":"m"}`, llm.UsageLimits{}},
		{`{"model":"m","max_tokens":100}`, llm.UsageLimits{MaxCompletion: 100}},
		{`{"model":"m","max_completion_tokens":100,"max_tokens":50}`, llm.UsageLimits{MaxCompletion: 100}},
		{`{"model":"m","max_tokens":100,"n":3}`, llm.UsageLimits{MaxCompletion: 300}},
		{`{"model":"m","max_tokens":100,"best_of":4,"n":2}`, llm.UsageLimits{MaxCompletion: 400}},
		// Not a positive integer: no bound from the request.
		{`{"model":"m","max_tokens":0}`, llm.UsageLimits{}},
		{`{"model":"m","max_tokens":-5}`, llm.UsageLimits{}},
		{`{"model":"m","max_tokens":100.5}`, llm.UsageLimits{}},
		{`{"model":"m","max_tokens":"100"}`, llm.UsageLimits{}},
		{`{"model":"m","max_tokens":null}`, llm.UsageLimits{}},
		{`{"model":"m","max_tokens":99999999999999999999}`, llm.UsageLimits{}},
		// A product beyond the global bound is no tighter bound.
		{`{"model":"m","max_tokens":9000000,"n":2}`, llm.UsageLimits{}},
		{`{"model":"m","max_tokens":4611686018427387904,"n":4}`, llm.UsageLimits{}},
	}
	for _, c := range cases {
		r, err := parseRequest([]byte(c.body), llm.DialectOpenAIChat)
		if err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		if got := r.usageLimits(); got != c.want {
			t.Errorf("%s: usageLimits = %+v, want %+v", c.body, got, c.want)
		}
	}
	// A case variant the upstream might read instead would let a client
	// lower the bound its usage is clamped to: refused.
	for _, body := range []string{`{"model":"m","max_tokens":1,"MAX_TOKENS":1000}`, `{"model":"m","N":2}`} {
		if _, err := parseRequest([]byte(body), llm.DialectOpenAIChat); err == nil {
			t.Errorf("%s: accepted", body)
		}
	}
}

// TestRecordCarriesPrincipalAndUsageDetails checks what the router puts on
// the usage record: the principal, the upstream model, reasoning and cache
// tokens, and the cost at every price.
func TestRecordCarriesPrincipalAndUsageDetails(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":1000,"completion_tokens":100,`+
			`"prompt_tokens_details":{"cached_tokens":800},"completion_tokens_details":{"reasoning_tokens":60}}}`)
	}))
	defer up.Close()
	srv, r := newTestProxyWith(t, func(o *Options) {
		st := o.State()
		for _, k := range st.Snapshot.Keys {
			k.Owner = "team-a"
		}
		// $1/M input, $2/M output (the test proxy's), cache reads $0.1/M, reasoning $4/M.
		st.Snapshot.Models["m"].Deployments[0].CacheReadPerMTok = 0.1
		st.Snapshot.Models["m"].Deployments[0].ReasoningPerMTok = 4
	}, time.Second, up.URL)
	resp := post(t, srv.URL, `{"model":"m"}`)
	_, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rec := r.last()
	if rec.PrincipalID != "k1" || rec.PrincipalKind != llm.PrincipalKey || rec.Owner != "team-a" || rec.UpstreamModel != "up-p0" {
		t.Errorf("record principal/upstream: %+v", rec)
	}
	if rec.CacheReadTokens != 800 || rec.ReasoningTokens != 60 || rec.Clamped {
		t.Errorf("record usage: %+v", rec.Usage)
	}
	// 200 input × 1 + 800 cache × 0.1 + 40 output × 2 + 60 reasoning × 4.
	if want := int64(200 + 80 + 80 + 240); rec.CostMicros != want {
		t.Errorf("cost = %d µ$, want %d", rec.CostMicros, want)
	}
}
