package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/sluice-ai/sluice/llm"
)

// Bounds of a model's routing.
const (
	maxFallbacks      = 10
	maxRetryAttempts  = 10
	maxRoutingMS      = 600_000 // 10 min
	maxUnsafeTools    = 64
	maxAffinityTokens = 1_000_000
	maxAffinityTTL    = 86_400 // one day, in seconds
)

// validRouting checks a model's routing: fallbacks name other existing
// models (each once), and every number is within its bounds.
func validRouting(ctx context.Context, tx *sql.Tx, self string, r *llm.Routing) error {
	for _, l := range []struct {
		field string
		names []string
	}{{"fallbacks", r.Fallbacks}, {"context_window_fallbacks", r.ContextWindowFallbacks}} {
		if len(l.names) > maxFallbacks {
			return invalid(l.field, "at most %d models", maxFallbacks)
		}
		for i, n := range l.names {
			f := fmt.Sprintf("%s[%d]", l.field, i)
			if err := validText(f, n, maxNameLen, true); err != nil {
				return err
			}
			if n == self {
				return invalid(f, "a model cannot fall back to itself")
			}
			if slices.Index(l.names, n) != i {
				return invalid(f, "model %q appears twice", n)
			}
			var c int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM models WHERE name = $1`, n).Scan(&c); err != nil {
				return fmt.Errorf("store: check fallback: %w", err)
			}
			if c == 0 {
				return invalid(f, "model %q does not exist", n)
			}
		}
	}
	if p := r.Retry; p != nil {
		if p.MaxAttempts < 0 || p.MaxAttempts > maxRetryAttempts {
			return invalid("retry.max_attempts", "must be from 0 (the default) to %d", maxRetryAttempts)
		}
		if p.TimeoutMS < 0 || p.TimeoutMS > maxRoutingMS {
			return invalid("retry.timeout_ms", "must be from 0 (the default) to %d", maxRoutingMS)
		}
	}
	if h := r.Hedge; h != nil {
		if h.DelayMS < 0 || h.DelayMS > maxRoutingMS {
			return invalid("hedge.delay_ms", "must be from 0 (the observed p95 time to first token) to %d", maxRoutingMS)
		}
		if len(h.UnsafeTools) > maxUnsafeTools {
			return invalid("hedge.unsafe_tools", "at most %d tools", maxUnsafeTools)
		}
		for i, t := range h.UnsafeTools {
			if err := validText(fmt.Sprintf("hedge.unsafe_tools[%d]", i), t, 256, true); err != nil {
				return err
			}
		}
	}
	if a := r.CacheAffinity; a != nil {
		if a.MinPrefixTokens < 0 || a.MinPrefixTokens > maxAffinityTokens {
			return invalid("cache_affinity.min_prefix_tokens", "must be from 0 (the default, %d) to %d", llm.DefaultAffinityMinPrefixTokens, maxAffinityTokens)
		}
		if a.TTLSeconds < 0 || a.TTLSeconds > maxAffinityTTL {
			return invalid("cache_affinity.ttl_seconds", "must be from 0 (the default, %d) to %d", int(llm.DefaultAffinityTTL.Seconds()), maxAffinityTTL)
		}
	}
	return nil
}

// routingText is the routing column of r.
func routingText(r llm.Routing) string {
	b, err := json.Marshal(r)
	if err != nil {
		return "{}" // unreachable: plain fields
	}
	return string(b)
}

// cloneRouting copies r, so the stored value never aliases the caller's;
// empty lists become absent.
func cloneRouting(r llm.Routing) llm.Routing {
	c := llm.Routing{}
	if len(r.Fallbacks) > 0 {
		c.Fallbacks = slices.Clone(r.Fallbacks)
	}
	if len(r.ContextWindowFallbacks) > 0 {
		c.ContextWindowFallbacks = slices.Clone(r.ContextWindowFallbacks)
	}
	if r.Retry != nil {
		v := *r.Retry
		c.Retry = &v
	}
	if r.Hedge != nil {
		v := *r.Hedge
		v.UnsafeTools = slices.Clone(v.UnsafeTools)
		c.Hedge = &v
	}
	if r.CacheAffinity != nil {
		v := *r.CacheAffinity
		if v.Enabled != nil {
			e := *v.Enabled
			v.Enabled = &e
		}
		c.CacheAffinity = &v
	}
	return c
}

// applyRouting sets the routing members the patch gives.
func (p ModelPatch) applyRouting(r *llm.Routing) {
	if p.Fallbacks.Set {
		r.Fallbacks = p.Fallbacks.Value
	}
	if p.ContextWindowFallbacks.Set {
		r.ContextWindowFallbacks = p.ContextWindowFallbacks.Value
	}
	if p.Retry.Set {
		r.Retry = p.Retry.Value
	}
	if p.Hedge.Set {
		r.Hedge = p.Hedge.Value
	}
	if p.CacheAffinity.Set {
		r.CacheAffinity = p.CacheAffinity.Value
	}
}

// Bounds of a provider's probe.
const (
	maxProbeInterval  = 3600 // seconds
	maxProbeTimeout   = 300  // seconds
	maxProbeThreshold = 100
)

// validProbe checks a provider's probe and returns it normalised (nil,
// {} and kind "off" are all off: the zero Probe).
func validProbe(p *llm.Probe) (llm.Probe, error) {
	if p == nil || p.Kind == "" || p.Kind == llm.ProbeOff {
		return llm.Probe{}, nil
	}
	if p.Kind != llm.ProbeModels && p.Kind != llm.ProbeCompletion {
		return llm.Probe{}, invalid("probe.kind", "must be one of models, completion, off")
	}
	for _, c := range []struct {
		field string
		v     int
		max   int
	}{
		{"probe.interval_s", p.IntervalS, maxProbeInterval},
		{"probe.timeout_s", p.TimeoutS, maxProbeTimeout},
		{"probe.healthy_threshold", p.HealthyThreshold, maxProbeThreshold},
		{"probe.unhealthy_threshold", p.UnhealthyThreshold, maxProbeThreshold},
	} {
		if c.v < 0 || c.v > c.max {
			return llm.Probe{}, invalid(c.field, "must be from 0 (the default) to %d", c.max)
		}
	}
	return *p, nil
}

// probeView is the admin view of p: nil when off.
func probeView(p llm.Probe) *llm.Probe {
	if !p.On() {
		return nil
	}
	return &p
}

// probeText is the probe column of p.
func probeText(p llm.Probe) string {
	if !p.On() {
		return "{}"
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "{}" // unreachable: plain fields
	}
	return string(b)
}
