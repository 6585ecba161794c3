package llm

import "math"

// Prices are a deployment's prices in USD per million tokens, as providers
// publish them. A zero cache or reasoning price means "same as the base
// price": cache reads at the input price, cache writes at the input price,
// reasoning at the output price.
type Prices struct {
	InputPerMTok      float64 `json:"input_price_per_mtok"`
	OutputPerMTok     float64 `json:"output_price_per_mtok"`
	CacheReadPerMTok  float64 `json:"cached_input_price_per_mtok,omitempty"`
	CacheWritePerMTok float64 `json:"cache_write_input_price_per_mtok,omitempty"`
	ReasoningPerMTok  float64 `json:"reasoning_price_per_mtok,omitempty"`
}

// MaxPricePerMTok bounds every price (USD per million tokens) so that cost
// arithmetic cannot overflow.
const MaxPricePerMTok = 1e6

// Cost is the price of u in integer micro-USD, rounded to the nearest
// micro-USD. It is the one cost function of the gateway: the recorder, the
// dashboard and budgets all use it. USD per million tokens is micro-USD per
// token, so each part is tokens × price; the arithmetic is done in
// nano-USD integers and saturates instead of overflowing.
func (p Prices) Cost(u Usage) int64 {
	in := max(u.PromptTokens-u.CacheReadTokens-u.CacheWriteTokens, 0)
	out := max(u.CompletionTokens-u.ReasoningTokens, 0)
	var nanos int64
	nanos = addSat(nanos, mulSat(in, nanoPrice(p.InputPerMTok)))
	nanos = addSat(nanos, mulSat(out, nanoPrice(p.OutputPerMTok)))
	nanos = addSat(nanos, mulSat(u.CacheReadTokens, nanoPrice(or(p.CacheReadPerMTok, p.InputPerMTok))))
	nanos = addSat(nanos, mulSat(u.CacheWriteTokens, nanoPrice(or(p.CacheWritePerMTok, p.InputPerMTok))))
	nanos = addSat(nanos, mulSat(u.ReasoningTokens, nanoPrice(or(p.ReasoningPerMTok, p.OutputPerMTok))))
	if nanos >= math.MaxInt64-500 {
		return math.MaxInt64 / 1000
	}
	return (nanos + 500) / 1000
}

// nanoPrice converts USD per million tokens (micro-USD per token) to
// nano-USD per token, bounded to [0, MaxPricePerMTok].
func nanoPrice(p float64) int64 {
	if !(p > 0) { // also NaN
		return 0
	}
	return int64(math.Round(min(p, MaxPricePerMTok) * 1000))
}

func or(a, b float64) float64 {
	if a > 0 {
		return a
	}
	return b
}

func mulSat(tokens int, price int64) int64 {
	if tokens <= 0 || price <= 0 {
		return 0
	}
	t := int64(tokens)
	if t > math.MaxInt64/price {
		return math.MaxInt64
	}
	return t * price
}

func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
