package store

import (
	"math"

	"github.com/sluice-ai/sluice/llm"
)

// validPrices checks every price of a deployment (field is its path, like
// "deployments[0]"): finite, at least 0 and at most llm.MaxPricePerMTok, so
// cost arithmetic stays bounded (llm.MaxCostMicrosPerRecord).
func validPrices(field string, p llm.Prices) error {
	for _, c := range []struct {
		name string
		v    float64
	}{
		{"input_price_per_mtok", p.InputPerMTok},
		{"output_price_per_mtok", p.OutputPerMTok},
		{"cached_input_price_per_mtok", p.CacheReadPerMTok},
		{"cache_write_input_price_per_mtok", p.CacheWritePerMTok},
		{"reasoning_price_per_mtok", p.ReasoningPerMTok},
	} {
		if math.IsNaN(c.v) || c.v < 0 || c.v > llm.MaxPricePerMTok {
			return invalid(field+"."+c.name, "must be a number from 0 to %g (USD per million tokens)", float64(llm.MaxPricePerMTok))
		}
	}
	return nil
}
