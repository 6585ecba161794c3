package llm

import (
	"math"
	"testing"
)

func TestPricesCost(t *testing.T) {
	p := Prices{InputPerMTok: 3, OutputPerMTok: 15, CacheReadPerMTok: 0.3, CacheWritePerMTok: 3.75}
	cases := []struct {
		name string
		p    Prices
		u    Usage
		want int64
	}{
		{"zero", p, Usage{}, 0},
		// 1,000 input at $3/M = 3,000 µ$; 100 output at $15/M = 1,500 µ$.
		{"plain", p, Usage{PromptTokens: 1000, CompletionTokens: 100}, 4500},
		// 1,000 prompt of which 800 cache reads and 100 cache writes:
		// 100×3 + 800×0.3 + 100×3.75 = 300 + 240 + 375.
		{"cache", p, Usage{PromptTokens: 1000, CacheReadTokens: 800, CacheWriteTokens: 100}, 915},
		// A zero cache price means the input price.
		{"cache default", Prices{InputPerMTok: 2}, Usage{PromptTokens: 10, CacheReadTokens: 10}, 20},
		// Reasoning is part of completion, at the output price by default.
		{"reasoning default", Prices{OutputPerMTok: 10}, Usage{CompletionTokens: 100, ReasoningTokens: 60}, 1000},
		{"reasoning priced", Prices{OutputPerMTok: 10, ReasoningPerMTok: 1}, Usage{CompletionTokens: 100, ReasoningTokens: 60}, 460},
		// Sub-micro costs round to nearest: 3 tokens at $0.15/M = 0.45 µ$.
		{"round down", Prices{InputPerMTok: 0.15}, Usage{PromptTokens: 3}, 0},
		{"round up", Prices{InputPerMTok: 0.15}, Usage{PromptTokens: 4}, 1},
		// Impossible inputs cannot go negative or overflow.
		{"negative", p, Usage{PromptTokens: -1000000, CompletionTokens: -5}, 0},
		{"parts exceed whole", p, Usage{PromptTokens: 10, CacheReadTokens: 100}, 30},
		{"huge", Prices{OutputPerMTok: MaxPricePerMTok * 10}, Usage{CompletionTokens: math.MaxInt64}, math.MaxInt64 / 1000},
		{"nan price", Prices{InputPerMTok: math.NaN(), OutputPerMTok: math.Inf(1)}, Usage{PromptTokens: 10, CompletionTokens: 10}, 10 * MaxPricePerMTok},
	}
	for _, c := range cases {
		if got := c.p.Cost(c.u); got != c.want {
			t.Errorf("%s: Cost = %d, want %d", c.name, got, c.want)
		}
	}
}

func BenchmarkPricesCost(b *testing.B) {
	p := Prices{InputPerMTok: 3, OutputPerMTok: 15, CacheReadPerMTok: 0.3}
	u := Usage{PromptTokens: 1234, CompletionTokens: 567, CacheReadTokens: 100}
	for b.Loop() {
		_ = p.Cost(u)
	}
}
