package state

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ProbeMetrics counts active probes: sluice_probe_total{provider,result}
// (result pass, fail or inconclusive) and
// sluice_probe_duration_seconds{provider}. Labels are configured provider
// names only. A nil *ProbeMetrics counts nothing.
type ProbeMetrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewProbeMetrics registers the probe metrics with reg; with nil, register
// the returned ProbeMetrics (a prometheus.Collector) later.
func NewProbeMetrics(reg prometheus.Registerer) *ProbeMetrics {
	m := &ProbeMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_probe_total",
			Help: "Active health probes of providers, by result (pass, fail, inconclusive: a 429).",
		}, []string{"provider", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_probe_duration_seconds",
			Help:    "Duration of active health probes.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"provider"}),
	}
	if reg != nil {
		reg.MustRegister(m.total, m.duration)
	}
	return m
}

func (m *ProbeMetrics) observe(provider, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.total.WithLabelValues(provider, result).Inc()
	m.duration.WithLabelValues(provider).Observe(d.Seconds())
}

// forget drops the series of a provider no longer probed.
func (m *ProbeMetrics) forget(provider string) {
	if m == nil {
		return
	}
	m.total.DeletePartialMatch(prometheus.Labels{"provider": provider})
	m.duration.DeletePartialMatch(prometheus.Labels{"provider": provider})
}

// Describe implements prometheus.Collector.
func (m *ProbeMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.total.Describe(ch)
	m.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *ProbeMetrics) Collect(ch chan<- prometheus.Metric) {
	m.total.Collect(ch)
	m.duration.Collect(ch)
}
