package store

import (
	"context"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

// TestModelStrategyStore round-trips a model's strategy and options
// through the store and the snapshot, and checks that the stored options
// never alias the caller's.
func TestModelStrategyStore(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		if _, err := s.CreateProvider(ctx, ProviderInput{Name: "p", Type: llm.ProviderOpenAI}); err != nil {
			t.Fatal(err)
		}
		tol := 0.75
		in := ModelInput{Name: "m", Strategy: llm.StrategyLatency, StrategyOptions: &llm.StrategyOptions{LatencyTolerance: &tol},
			Deployments: []llm.Deployment{{Provider: "p", Model: "x", Priority: 2}}}
		m, err := s.CreateModel(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		tol = 9 // the caller's value changing later changes nothing stored
		if m.StrategyOptions.Tolerance() != 0.75 {
			t.Fatalf("aliased options: %v", m.StrategyOptions.Tolerance())
		}
		got, err := s.GetModel(ctx, "m")
		if err != nil || got.Strategy != llm.StrategyLatency || got.StrategyOptions.Tolerance() != 0.75 ||
			got.StrategyOptions.ErrorWeight != nil || got.Deployments[0].Priority != 2 {
			t.Fatalf("get %+v %v", got, err)
		}
		// An empty options object is no options.
		got, err = s.UpdateModel(ctx, "m", ModelPatch{StrategyOptions: Optional[*llm.StrategyOptions]{Set: true, Value: &llm.StrategyOptions{}}})
		if err != nil || got.StrategyOptions != nil || got.Strategy != llm.StrategyLatency {
			t.Fatalf("empty options %+v %v", got, err)
		}
		bad := llm.Strategy("random")
		if _, err := s.UpdateModel(ctx, "m", ModelPatch{Strategy: &bad}); !isField(err, "strategy") {
			t.Fatalf("bad strategy: %v", err)
		}
		// A row without a strategy (as before migration 00008) is auto.
		if _, err := s.db.ExecContext(ctx, `UPDATE models SET strategy = '', strategy_options = '{}'`); err != nil {
			t.Fatal(err)
		}
		snap, err := s.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sm := snap.Models["m"]; sm == nil || sm.Strategy != llm.StrategyAuto || sm.StrategyOptions != nil || sm.Deployments[0].Priority != 2 {
			t.Fatalf("snapshot %+v", sm)
		}
	})
}
