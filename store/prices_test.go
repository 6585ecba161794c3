package store

import (
	"context"
	"math"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

// TestModelPrices checks that all five prices of a deployment are stored
// and validated alike: finite, from 0 to llm.MaxPricePerMTok.
func TestModelPrices(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		mustProvider(t, s, "a", "k")
		p := llm.Prices{InputPerMTok: 3, OutputPerMTok: 15, CacheReadPerMTok: 0.3, CacheWritePerMTok: 3.75, ReasoningPerMTok: 12}
		m, err := s.CreateModel(ctx, ModelInput{Name: "priced", Deployments: []llm.Deployment{{Provider: "a", Model: "m", Prices: p}}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetModel(ctx, m.ID)
		if err != nil || got.Deployments[0].Prices != p {
			t.Fatalf("prices round trip: %+v, %v", got.Deployments, err)
		}
		snap, err := s.LoadSnapshot(ctx)
		if err != nil || snap.Models["priced"].Deployments[0].Prices != p {
			t.Fatalf("snapshot prices: %v", err)
		}
		set := []struct {
			field string
			set   func(*llm.Prices, float64)
		}{
			{"input_price_per_mtok", func(p *llm.Prices, v float64) { p.InputPerMTok = v }},
			{"output_price_per_mtok", func(p *llm.Prices, v float64) { p.OutputPerMTok = v }},
			{"cached_input_price_per_mtok", func(p *llm.Prices, v float64) { p.CacheReadPerMTok = v }},
			{"cache_write_input_price_per_mtok", func(p *llm.Prices, v float64) { p.CacheWritePerMTok = v }},
			{"reasoning_price_per_mtok", func(p *llm.Prices, v float64) { p.ReasoningPerMTok = v }},
		}
		for _, f := range set {
			for _, v := range []float64{-0.01, math.NaN(), math.Inf(1), math.Inf(-1), llm.MaxPricePerMTok * 1.0001} {
				bad := p
				f.set(&bad, v)
				_, err := s.CreateModel(ctx, ModelInput{Name: "bad", Deployments: []llm.Deployment{{Provider: "a", Model: "m", Prices: bad}}})
				wantValidation(t, err, "deployments[0]."+f.field)
			}
			ok := p
			f.set(&ok, llm.MaxPricePerMTok)
			if _, err := s.UpdateModel(ctx, m.ID, ModelInput{Name: "priced", Deployments: []llm.Deployment{{Provider: "a", Model: "m", Prices: ok}}}.AsPatch()); err != nil {
				t.Fatalf("%s at the maximum: %v", f.field, err)
			}
		}
	})
}
