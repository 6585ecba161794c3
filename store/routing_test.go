package store

import (
	"context"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

// TestModelRoutingStore round-trips a model's routing through the store
// and the snapshot, patches members one at a time, and refuses every bad
// value with a 400 naming its field.
func TestModelRoutingStore(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		if _, err := s.CreateProvider(ctx, ProviderInput{Name: "p", Type: llm.ProviderOpenAI}); err != nil {
			t.Fatal(err)
		}
		deps := []llm.Deployment{{Provider: "p", Model: "x"}}
		for _, n := range []string{"big", "other"} {
			if _, err := s.CreateModel(ctx, ModelInput{Name: n, Deployments: deps}); err != nil {
				t.Fatal(err)
			}
		}
		off := false
		in := ModelInput{Name: "m", Deployments: deps, Routing: llm.Routing{
			Fallbacks: []string{"other"}, ContextWindowFallbacks: []string{"big"},
			Retry:         &llm.RetryPolicy{MaxAttempts: 4, TimeoutMS: 30000},
			Hedge:         &llm.HedgePolicy{Enabled: true, DelayMS: 800, UnsafeTools: []string{"send_email"}},
			CacheAffinity: &llm.AffinityPolicy{Enabled: &off, MinPrefixTokens: 2048, TTLSeconds: 600}}}
		m, err := s.CreateModel(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		in.Fallbacks[0], in.Hedge.UnsafeTools[0], off = "zzz", "zzz", true // no aliasing
		got, err := s.GetModel(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		r := got.Routing
		if len(r.Fallbacks) != 1 || r.Fallbacks[0] != "other" || r.ContextWindowFallbacks[0] != "big" ||
			r.Retry.Attempts(2) != 4 || r.Retry.Timeout().Seconds() != 30 || !r.Hedge.On() || r.Hedge.Delay().Milliseconds() != 800 ||
			r.Hedge.UnsafeTools[0] != "send_email" || r.CacheAffinity.On() || r.CacheAffinity.MinTokens() != 2048 || r.CacheAffinity.TTL().Minutes() != 10 {
			t.Fatalf("routing %+v", r)
		}
		// A patch of one member keeps the others; null resets one.
		got, err = s.UpdateModel(ctx, "m", ModelPatch{Hedge: Optional[*llm.HedgePolicy]{Set: true}})
		if err != nil || got.Hedge != nil || got.Retry == nil || len(got.Fallbacks) != 1 {
			t.Fatalf("patch hedge %+v %v", got, err)
		}
		snap, err := s.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sm := snap.Models["m"]
		if sm == nil || sm.Routing.Fallbacks[0] != "other" || sm.Routing.Hedge.On() || sm.Routing.CacheAffinity.On() {
			t.Fatalf("snapshot %+v", sm)
		}
		if snap.Models["other"].Routing.CacheAffinity.On() != true {
			t.Fatal("affinity is on by default")
		}
		for _, c := range []struct {
			field string
			p     ModelPatch
		}{
			{"fallbacks[0]", ModelPatch{Fallbacks: Optional[[]string]{Set: true, Value: []string{"nope"}}}},
			{"fallbacks[0]", ModelPatch{Fallbacks: Optional[[]string]{Set: true, Value: []string{"m"}}}},
			{"fallbacks[1]", ModelPatch{Fallbacks: Optional[[]string]{Set: true, Value: []string{"big", "big"}}}},
			{"fallbacks", ModelPatch{Fallbacks: Optional[[]string]{Set: true, Value: strings.Split(strings.Repeat("a,", 11)+"a", ",")}}},
			{"context_window_fallbacks[0]", ModelPatch{ContextWindowFallbacks: Optional[[]string]{Set: true, Value: []string{""}}}},
			{"retry.max_attempts", ModelPatch{Retry: Optional[*llm.RetryPolicy]{Set: true, Value: &llm.RetryPolicy{MaxAttempts: 11}}}},
			{"retry.max_attempts", ModelPatch{Retry: Optional[*llm.RetryPolicy]{Set: true, Value: &llm.RetryPolicy{MaxAttempts: -1}}}},
			{"retry.timeout_ms", ModelPatch{Retry: Optional[*llm.RetryPolicy]{Set: true, Value: &llm.RetryPolicy{TimeoutMS: 1 << 40}}}},
			{"hedge.delay_ms", ModelPatch{Hedge: Optional[*llm.HedgePolicy]{Set: true, Value: &llm.HedgePolicy{DelayMS: -5}}}},
			{"hedge.unsafe_tools[0]", ModelPatch{Hedge: Optional[*llm.HedgePolicy]{Set: true, Value: &llm.HedgePolicy{UnsafeTools: []string{""}}}}},
			{"cache_affinity.min_prefix_tokens", ModelPatch{CacheAffinity: Optional[*llm.AffinityPolicy]{Set: true, Value: &llm.AffinityPolicy{MinPrefixTokens: -1}}}},
			{"cache_affinity.ttl_seconds", ModelPatch{CacheAffinity: Optional[*llm.AffinityPolicy]{Set: true, Value: &llm.AffinityPolicy{TTLSeconds: 1 << 30}}}},
		} {
			if _, err := s.UpdateModel(ctx, "m", c.p); !isField(err, c.field) {
				t.Errorf("%s: %v", c.field, err)
			}
		}
	})
}

// TestProviderProbeStore round-trips a provider's probe and refuses bad
// ones.
func TestProviderProbeStore(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		p, err := s.CreateProvider(ctx, ProviderInput{Name: "p", Type: llm.ProviderOpenAI,
			Probe: &llm.Probe{Kind: llm.ProbeModels, IntervalS: 5, HealthyThreshold: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if p.Probe == nil || p.Probe.Kind != "models" || p.Probe.Interval().Seconds() != 5 || p.Probe.Healthy() != 1 || p.Probe.Unhealthy() != 3 {
			t.Fatalf("probe %+v", p.Probe)
		}
		snap, err := s.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sp := snap.Providers["p"]; sp == nil || sp.Probe.Kind != "models" {
			t.Fatalf("snapshot %+v", sp)
		}
		// A patch without probe keeps it; {"kind":"off"} clears it.
		name := "p2"
		if p, err = s.UpdateProvider(ctx, "p", ProviderPatch{Name: &name}); err != nil || p.Probe == nil {
			t.Fatalf("kept %+v %v", p.Probe, err)
		}
		if p, err = s.UpdateProvider(ctx, "p2", ProviderPatch{Probe: Optional[*llm.Probe]{Set: true, Value: &llm.Probe{Kind: "off"}}}); err != nil || p.Probe != nil {
			t.Fatalf("off %+v %v", p.Probe, err)
		}
		for _, c := range []struct {
			field string
			p     llm.Probe
		}{
			{"probe.kind", llm.Probe{Kind: "ping"}},
			{"probe.interval_s", llm.Probe{Kind: "models", IntervalS: -1}},
			{"probe.timeout_s", llm.Probe{Kind: "completion", TimeoutS: 100000}},
			{"probe.healthy_threshold", llm.Probe{Kind: "models", HealthyThreshold: 101}},
			{"probe.unhealthy_threshold", llm.Probe{Kind: "models", UnhealthyThreshold: -3}},
		} {
			if _, err := s.UpdateProvider(ctx, "p2", ProviderPatch{Probe: Optional[*llm.Probe]{Set: true, Value: &c.p}}); !isField(err, c.field) {
				t.Errorf("%s: %v", c.field, err)
			}
		}
	})
}
