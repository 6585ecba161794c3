package llm

// MaxTokensPerRequest bounds every token count of one usage record when the
// request itself gives no tighter bound: no model reads or writes ten
// million tokens in one request, so a larger figure is an upstream bug or
// a hostile upstream. Together with MaxPricePerMTok it bounds a record's
// cost (MaxCostMicrosPerRecord), so sums over many records stay far from
// overflowing.
const MaxTokensPerRequest = 10_000_000

// MaxCostMicrosPerRecord is the largest cost one record can have: prompt
// and completion tokens at MaxTokensPerRequest each, every kind priced at
// MaxPricePerMTok (10⁷ tokens × 10⁶ µ$/token × 2 = 2·10¹³ µ$, $20M).
const MaxCostMicrosPerRecord = 2 * MaxTokensPerRequest * int64(MaxPricePerMTok)

// UsageLimits are what one request could possibly have used. Zero fields
// mean MaxTokensPerRequest.
type UsageLimits struct {
	// MaxPrompt bounds PromptTokens.
	MaxPrompt int
	// MaxCompletion bounds CompletionTokens: the request's max_tokens or
	// max_completion_tokens times the number of choices it asked for.
	MaxCompletion int
}

// Sanitize returns u made possible, with Clamped set when anything changed:
//   - a negative count becomes 0;
//   - PromptTokens and CompletionTokens are capped at l's bounds (at most
//     MaxTokensPerRequest);
//   - the parts are capped at their whole: CacheReadTokens at PromptTokens,
//     CacheWriteTokens at what PromptTokens leaves after cache reads,
//     ReasoningTokens at CompletionTokens.
//
// Every usage figure entering the gateway goes through it (the router for
// what upstreams report and what the gateway estimates, the store for
// anything else), so a stored record is always within these bounds.
func (u Usage) Sanitize(l UsageLimits) Usage {
	clamp := func(v *int, hi int) {
		if *v < 0 {
			*v, u.Clamped = 0, true
		}
		if *v > hi {
			*v, u.Clamped = hi, true
		}
	}
	clamp(&u.PromptTokens, bound(l.MaxPrompt))
	clamp(&u.CompletionTokens, bound(l.MaxCompletion))
	clamp(&u.CacheReadTokens, u.PromptTokens)
	clamp(&u.CacheWriteTokens, u.PromptTokens-u.CacheReadTokens)
	clamp(&u.ReasoningTokens, u.CompletionTokens)
	return u
}

// bound is n when it is a positive bound tighter than MaxTokensPerRequest.
func bound(n int) int {
	if n > 0 && n < MaxTokensPerRequest {
		return n
	}
	return MaxTokensPerRequest
}

// ClampCost bounds a cost in micro-USD to [0, MaxCostMicrosPerRecord].
func ClampCost(micros int64) int64 {
	return min(max(micros, 0), MaxCostMicrosPerRecord)
}
