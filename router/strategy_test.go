package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// TestCostStrategyWeighsTheRequest: the router hands the balancer the
// request's prompt estimate and max_tokens, so the cost strategy picks by
// the request's shape — a long prompt goes where input is cheap, a long
// answer where output is.
func TestCostStrategyWeighsTheRequest(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"x","choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":5,"completion_tokens":2}}`)
	}
	a := httptest.NewServer(http.HandlerFunc(ok))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(ok))
	defer b.Close()
	srv, _ := newTestProxyWith(t, func(o *Options) {
		m := o.State().Snapshot.Models["m"]
		m.Strategy = llm.StrategyCost
		m.Deployments[0].Prices = llm.Prices{InputPerMTok: 0.1, OutputPerMTok: 10} // cheap input
		m.Deployments[1].Prices = llm.Prices{InputPerMTok: 1, OutputPerMTok: 1}    // cheap output
	}, time.Second, a.URL, b.URL)
	// About 12,000 prompt tokens. Each case picks otherwise if the prompt
	// estimate or max_tokens were left at the balancer's default (1000).
	long := strings.Repeat("lorem ipsum dolor sit amet ", 2000)
	for _, c := range []struct {
		body, want string
	}{
		// 0.1×12000 + 10×500 < 12000 + 500 (with a 1000-token prompt: p1)
		{`{"model":"m","max_tokens":500,"messages":[{"role":"user","content":"` + long + `"}]}`, "p0"},
		// 0.1×12000 + 10×2000 > 12000 + 2000 (with max_tokens 1000: p0)
		{`{"model":"m","max_tokens":2000,"messages":[{"role":"user","content":"` + long + `"}]}`, "p1"},
		// 0.1×10 + 10×50 > 10 + 50 (with a 1000-token prompt: p0)
		{`{"model":"m","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`, "p1"},
	} {
		for range 3 {
			resp := post(t, srv.URL, c.body)
			if got := resp.Header.Get("X-Sluice-Provider"); resp.StatusCode != 200 || got != c.want {
				t.Fatalf("status %d provider %q, want %s", resp.StatusCode, got, c.want)
			}
		}
	}
}
