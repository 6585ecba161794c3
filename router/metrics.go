package router

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus instruments. Labels never carry key
// ids, secrets or unbounded client input: the model label is a configured
// model name or empty.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	ttft     *prometheus.HistogramVec
	overhead *prometheus.HistogramVec
	tokens   *prometheus.CounterVec
	cost     *prometheus.CounterVec
	inflight prometheus.Gauge
	retries  *prometheus.CounterVec
	// budgetExhausted counts requests a model's retry budget stopped;
	// fallbacks the fallback models attempted, by requested model.
	budgetExhausted *prometheus.CounterVec
	fallbacks       *prometheus.CounterVec
	// hedges counts hedged first tokens by model and outcome.
	hedges   *prometheus.CounterVec
	affinity *prometheus.CounterVec
	// principals counts authenticated requests by principal kind (key,
	// jwt); the principal id is on usage rows, never a label (a JWT
	// subject is an unbounded value).
	principals *prometheus.CounterVec
}

// durationBuckets are OpenTelemetry GenAI's operation duration buckets (s).
var durationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}

// overheadBuckets resolve the gateway's own time, from 50µs to 1s.
var overheadBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

// NewMetrics creates the proxy metrics and registers them with reg (which
// may be nil in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_requests_total",
			Help: "Proxy requests by endpoint, model, provider, HTTP status code and stream flag.",
		}, []string{"endpoint", "model", "provider", "status_code", "stream"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_request_duration_seconds",
			Help:    "Total request latency as the client sees it.",
			Buckets: durationBuckets,
		}, []string{"endpoint", "model", "provider"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_time_to_first_token_seconds",
			Help:    "Time from request start to the first streamed chunk written to the client.",
			Buckets: durationBuckets,
		}, []string{"model", "provider"}),
		overhead: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_gateway_overhead_seconds",
			Help:    "Time spent in the gateway itself: total latency minus time waiting on the upstream.",
			Buckets: overheadBuckets,
		}, []string{"endpoint"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_tokens_total",
			Help: "Tokens by type (input, output, cached_input), model and provider.",
		}, []string{"model", "provider", "type"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_cost_usd_total",
			Help: "Cost in US dollars at the deployments' configured prices.",
		}, []string{"model", "provider"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_inflight_requests",
			Help: "Proxy requests in progress.",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_upstream_retries_total",
			Help: "Attempts moved to another deployment after a retryable upstream failure.",
		}, []string{"model"}),
		budgetExhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_retry_budget_exhausted_total",
			Help: "Requests whose next attempt the model's retry budget refused (they failed with their last error).",
		}, []string{"model"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_fallbacks_total",
			Help: "Requests that moved to a fallback model, by requested model and fallback.",
		}, []string{"model", "fallback"}),
		hedges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_hedges_total",
			Help: "Hedged first tokens by model and outcome: won (the hedge answered first), lost (sent, did not serve), skipped_budget (due, but the retry budget was empty).",
		}, []string{"model", "outcome"}),
		affinity: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_prompt_affinity_total",
			Help: "Answered requests keyed for prompt-cache affinity, by model and outcome: stuck (served by the deployment that served the prefix last), moved (served elsewhere: it was unavailable, without headroom, failed or dearer), miss (no deployment remembered).",
		}, []string{"model", "outcome"}),
		principals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_principal_requests_total",
			Help: "Authenticated proxy requests by principal kind (key: a Sluice key, jwt: an issuer's token).",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.principals)
		reg.MustRegister(m.requests, m.duration, m.ttft, m.overhead, m.tokens, m.cost, m.inflight, m.retries, m.budgetExhausted, m.fallbacks, m.hedges, m.affinity)
	}
	return m
}
