package llm

import "time"

// Routing is what a model does beyond ordering its own deployments: the
// models to fall back to, how far retries go, hedged first tokens and
// prompt-cache affinity. The zero value is the gateway's defaults. It is
// read by the router and the balancer; the store validates it.
type Routing struct {
	// Fallbacks are models (by name) tried in order when every deployment
	// of this model failed or is unavailable, before the first byte reached
	// the client. A fallback's own fallbacks are not followed.
	Fallbacks []string `json:"fallbacks,omitempty"`
	// ContextWindowFallbacks are models (by name) tried in order when a
	// deployment answers that the request exceeds its context window (an
	// error no other deployment of this model would answer differently).
	ContextWindowFallbacks []string `json:"context_window_fallbacks,omitempty"`
	// Retry bounds the attempts of one request; nil takes the defaults.
	Retry *RetryPolicy `json:"retry,omitempty"`
	// Hedge sends a second attempt when the first is slow to its first
	// byte; nil or disabled is off.
	Hedge *HedgePolicy `json:"hedge,omitempty"`
	// CacheAffinity keeps requests that share a prompt prefix on the
	// deployment that served it last; nil takes the defaults (on).
	CacheAffinity *AffinityPolicy `json:"cache_affinity,omitempty"`
}

// RetryPolicy bounds the attempts of one request across deployments and
// fallback models. Zero fields take the gateway's defaults.
type RetryPolicy struct {
	// MaxAttempts bounds the upstream attempts of one request, the first
	// included (1 disables retries).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// TimeoutMS bounds, from the request's arrival, when another attempt
	// may still start.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// Timeout is TimeoutMS as a duration; 0 when unset.
func (r *RetryPolicy) Timeout() time.Duration {
	if r == nil {
		return 0
	}
	return time.Duration(r.TimeoutMS) * time.Millisecond
}

// Attempts is MaxAttempts, or def when unset.
func (r *RetryPolicy) Attempts(def int) int {
	if r == nil || r.MaxAttempts <= 0 {
		return def
	}
	return r.MaxAttempts
}

// HedgePolicy configures hedged first tokens for a model.
type HedgePolicy struct {
	// Enabled turns hedging on for the model.
	Enabled bool `json:"enabled"`
	// DelayMS, when set, is how long to wait for the first byte before
	// hedging; 0 takes the chosen deployment's observed p95 time to first
	// token.
	DelayMS int64 `json:"delay_ms,omitempty"`
	// UnsafeTools name tools whose calls have side effects the operator
	// does not want doubled: a request offering any of them is never
	// hedged. "*" matches every tool.
	UnsafeTools []string `json:"unsafe_tools,omitempty"`
}

// Delay is DelayMS as a duration; 0 when unset.
func (h *HedgePolicy) Delay() time.Duration {
	if h == nil {
		return 0
	}
	return time.Duration(h.DelayMS) * time.Millisecond
}

// On reports whether hedging is enabled.
func (h *HedgePolicy) On() bool { return h != nil && h.Enabled }

// AffinityPolicy configures prompt-cache affinity for a model.
type AffinityPolicy struct {
	// Enabled, when false, turns affinity off; absent is on.
	Enabled *bool `json:"enabled,omitempty"`
	// MinPrefixTokens is the estimated prefix size below which a request
	// is not pinned (providers cache only long prefixes). 0 takes
	// DefaultAffinityMinPrefixTokens.
	MinPrefixTokens int `json:"min_prefix_tokens,omitempty"`
	// TTLSeconds is how long a prefix stays pinned after its last use. 0
	// takes DefaultAffinityTTL.
	TTLSeconds int `json:"ttl_seconds,omitempty"`
}

// Defaults of AffinityPolicy.
const (
	DefaultAffinityMinPrefixTokens = 1024
	DefaultAffinityTTL             = 5 * time.Minute
)

// On reports whether affinity is enabled (absent is on).
func (a *AffinityPolicy) On() bool { return a == nil || a.Enabled == nil || *a.Enabled }

// MinTokens is MinPrefixTokens or its default.
func (a *AffinityPolicy) MinTokens() int {
	if a == nil || a.MinPrefixTokens <= 0 {
		return DefaultAffinityMinPrefixTokens
	}
	return a.MinPrefixTokens
}

// TTL is TTLSeconds as a duration, or its default.
func (a *AffinityPolicy) TTL() time.Duration {
	if a == nil || a.TTLSeconds <= 0 {
		return DefaultAffinityTTL
	}
	return time.Duration(a.TTLSeconds) * time.Second
}

// Probe is a provider's active health check, for LLM APIs without a
// health endpoint. The zero value (Kind "") is off.
type Probe struct {
	// Kind is "models" (GET the provider's model list), "completion" (a
	// one-token completion on each deployment's upstream model) or ""/"off".
	Kind string `json:"kind,omitempty"`
	// IntervalS is the time between probes; 0 takes DefaultProbeInterval.
	IntervalS int `json:"interval_s,omitempty"`
	// TimeoutS bounds one probe; 0 takes DefaultProbeTimeout.
	TimeoutS int `json:"timeout_s,omitempty"`
	// HealthyThreshold is how many consecutive passing probes bring an
	// ejected deployment back; 0 takes 2.
	HealthyThreshold int `json:"healthy_threshold,omitempty"`
	// UnhealthyThreshold is how many consecutive failing probes eject a
	// deployment; 0 takes 3.
	UnhealthyThreshold int `json:"unhealthy_threshold,omitempty"`
}

// Probe kinds.
const (
	ProbeOff        = "off"
	ProbeModels     = "models"
	ProbeCompletion = "completion"
)

// Defaults of Probe.
const (
	DefaultProbeInterval           = 30 * time.Second
	DefaultProbeTimeout            = 10 * time.Second
	DefaultProbeHealthyThreshold   = 2
	DefaultProbeUnhealthyThreshold = 3
)

// On reports whether probing is configured.
func (p *Probe) On() bool { return p != nil && p.Kind != "" && p.Kind != ProbeOff }

// Interval is IntervalS as a duration, or its default.
func (p *Probe) Interval() time.Duration {
	if p == nil || p.IntervalS <= 0 {
		return DefaultProbeInterval
	}
	return time.Duration(p.IntervalS) * time.Second
}

// Timeout is TimeoutS as a duration, or its default.
func (p *Probe) Timeout() time.Duration {
	if p == nil || p.TimeoutS <= 0 {
		return DefaultProbeTimeout
	}
	return time.Duration(p.TimeoutS) * time.Second
}

// Healthy is HealthyThreshold or its default.
func (p *Probe) Healthy() int {
	if p == nil || p.HealthyThreshold <= 0 {
		return DefaultProbeHealthyThreshold
	}
	return p.HealthyThreshold
}

// Unhealthy is UnhealthyThreshold or its default.
func (p *Probe) Unhealthy() int {
	if p == nil || p.UnhealthyThreshold <= 0 {
		return DefaultProbeUnhealthyThreshold
	}
	return p.UnhealthyThreshold
}
