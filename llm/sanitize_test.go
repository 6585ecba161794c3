package llm

import (
	"math"
	"testing"
)

func TestUsageSanitize(t *testing.T) {
	cases := []struct {
		name string
		u    Usage
		l    UsageLimits
		want Usage
	}{
		{"plain", Usage{PromptTokens: 10, CompletionTokens: 5, CacheReadTokens: 4, ReasoningTokens: 2}, UsageLimits{},
			Usage{PromptTokens: 10, CompletionTokens: 5, CacheReadTokens: 4, ReasoningTokens: 2}},
		{"at max_tokens", Usage{PromptTokens: 10, CompletionTokens: 100}, UsageLimits{MaxCompletion: 100},
			Usage{PromptTokens: 10, CompletionTokens: 100}},
		// The hostile upstream of issue 5, item 5.
		{"hostile", Usage{PromptTokens: -1000000, CompletionTokens: math.MaxInt64}, UsageLimits{},
			Usage{PromptTokens: 0, CompletionTokens: MaxTokensPerRequest, Clamped: true}},
		{"beyond max_tokens", Usage{PromptTokens: 10, CompletionTokens: 101}, UsageLimits{MaxCompletion: 100},
			Usage{PromptTokens: 10, CompletionTokens: 100, Clamped: true}},
		{"beyond prompt bound", Usage{PromptTokens: 11}, UsageLimits{MaxPrompt: 10},
			Usage{PromptTokens: 10, Clamped: true}},
		{"limit above global", Usage{CompletionTokens: MaxTokensPerRequest + 1}, UsageLimits{MaxCompletion: math.MaxInt},
			Usage{CompletionTokens: MaxTokensPerRequest, Clamped: true}},
		{"parts exceed whole", Usage{PromptTokens: 10, CacheReadTokens: 8, CacheWriteTokens: 8, CompletionTokens: 3, ReasoningTokens: 9}, UsageLimits{},
			Usage{PromptTokens: 10, CacheReadTokens: 8, CacheWriteTokens: 2, CompletionTokens: 3, ReasoningTokens: 3, Clamped: true}},
		{"negative parts", Usage{PromptTokens: 10, CacheReadTokens: -1, CacheWriteTokens: math.MinInt, ReasoningTokens: -5}, UsageLimits{},
			Usage{PromptTokens: 10, Clamped: true}},
		{"estimated kept", Usage{PromptTokens: 3, Estimated: true}, UsageLimits{}, Usage{PromptTokens: 3, Estimated: true}},
	}
	for _, c := range cases {
		if got := c.u.Sanitize(c.l); got != c.want {
			t.Errorf("%s: Sanitize = %+v, want %+v", c.name, got, c.want)
		}
	}
}

// TestSanitizedCostBounded checks that the worst sanitised usage at the
// highest prices costs exactly MaxCostMicrosPerRecord, the bound the store
// and the sums rely on.
func TestSanitizedCostBounded(t *testing.T) {
	u := Usage{PromptTokens: math.MaxInt, CompletionTokens: math.MaxInt, CacheReadTokens: math.MaxInt,
		CacheWriteTokens: math.MaxInt, ReasoningTokens: math.MaxInt}.Sanitize(UsageLimits{})
	p := Prices{InputPerMTok: math.Inf(1), OutputPerMTok: MaxPricePerMTok, CacheReadPerMTok: MaxPricePerMTok,
		CacheWritePerMTok: MaxPricePerMTok, ReasoningPerMTok: MaxPricePerMTok}
	if got := p.Cost(u); got != MaxCostMicrosPerRecord {
		t.Fatalf("Cost = %d, want %d", got, MaxCostMicrosPerRecord)
	}
	if ClampCost(math.MaxInt64) != MaxCostMicrosPerRecord || ClampCost(-1) != 0 || ClampCost(7) != 7 {
		t.Fatal("ClampCost")
	}
}
