package quota

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the quota metrics: every decision, every fail-open and
// fail-closed decision, the cost of the store round trip, rebuilds of
// budgets from usage records and the settlement backlog.
type Metrics struct {
	decisions      *prometheus.CounterVec
	check          prometheus.Histogram
	failOpen       *prometheus.CounterVec
	failClosed     prometheus.Counter
	rebuilds       prometheus.Counter
	backlog        prometheus.Gauge
	settleErrors   prometheus.Counter
	settleOverflow prometheus.Counter
	settleLost     prometheus.Counter
	replicas       prometheus.Gauge
}

// NewMetrics creates the quota metrics and registers them with reg (nil:
// unregistered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_quota_decisions_total",
			Help: "Quota admissions by result: admitted, refused (429) or admitted_fail_open (the shared store was unreachable).",
		}, []string{"result"}),
		check: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_quota_check_seconds",
			Help:    "Time of one quota admission against the store, round trip included.",
			Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1},
		}),
		failOpen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_quota_fail_open_total",
			Help: "Limits admitted without the shared store, by kind (rate: checked locally at limit ÷ replicas; budget: not checked).",
		}, []string{"limit"}),
		failClosed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_quota_fail_closed_total",
			Help: "Requests refused with 503 because the shared store was unreachable and a limit fails closed.",
		}),
		rebuilds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_quota_budget_rebuilds_total",
			Help: "Budget counters rebuilt from the usage records after they were missing from the store.",
		}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_quota_settle_backlog",
			Help: "Settlements waiting to be applied to the store.",
		}),
		settleErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_quota_settle_errors_total",
			Help: "Settlement attempts the store did not take (retried).",
		}),
		settleOverflow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_quota_settle_overflow_total",
			Help: "Settlements applied on the request path because the queue was full.",
		}),
		settleLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_quota_settle_lost_total",
			Help: "Settlements never applied: still queued when the process stopped, or refused by the store when the queue was full.",
		}),
		replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_quota_replicas",
			Help: "Replicas sharing the quota store, as last seen; fail-open limits are divided by it.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.check, m.failOpen, m.failClosed, m.rebuilds, m.backlog, m.settleErrors, m.settleOverflow, m.settleLost, m.replicas)
	}
	return m
}
