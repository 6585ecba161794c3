package balancer

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Named is a deployment as the metrics label it: names from the
// configuration only, never a key or anything a client sent.
type Named struct {
	// Model is the configured model name, Provider the provider's name and
	// ID the deployment's stable id.
	Model, Provider, ID string
}

// collector reads the Balancer's status of every listed deployment at
// scrape time, so requests pay nothing for the gauges.
type collector struct {
	b    *Balancer
	list func() []Named

	up, state, inflight, ttft, latency, errRate, cooldown, gated *prometheus.Desc
}

// Collector returns a prometheus.Collector of per-deployment gauges for
// the deployments list returns (called on every scrape): up, state,
// in-flight attempts, EWMA TTFT and latency, error rate and the time left
// in a cooldown or ejection. A deployment listed twice is reported once.
func (b *Balancer) Collector(list func() []Named) prometheus.Collector {
	labels := []string{"model", "provider", "deployment"}
	d := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append(labels[:3:3], extra...), nil)
	}
	return &collector{
		b: b, list: list,
		up:       d("sluice_deployment_up", "1 when the deployment is healthy (picked normally), 0 otherwise."),
		state:    d("sluice_deployment_state", "1 for the deployment's current health state, 0 for the others.", "state"),
		inflight: d("sluice_deployment_inflight", "Attempts on the deployment in flight."),
		ttft:     d("sluice_deployment_ttft_ewma_seconds", "Moving average of the time to first token of successful attempts; 0 until measured."),
		latency:  d("sluice_deployment_latency_ewma_seconds", "Moving average of the latency of successful attempts; 0 until measured."),
		errRate:  d("sluice_deployment_error_rate", "Moving average of the deployment's failures (1) and successes (0)."),
		cooldown: d("sluice_deployment_cooldown_seconds", "Time until a cooling or ejected deployment is picked normally again; 0 otherwise."),
		gated:    d("sluice_deployment_probe_gated", "1 while an ejected deployment waits for passing active probes, 0 otherwise."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.state, c.inflight, c.ttft, c.latency, c.errRate, c.cooldown, c.gated} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	for _, n := range c.list() {
		if seen[n.ID] {
			continue
		}
		seen[n.ID] = true
		st := c.b.Status(n.ID)
		l := []string{n.Model, n.Provider, n.ID}
		gauge := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(l[:3:3], extra...)...)
		}
		gauge(c.up, boolGauge(st.Healthy))
		for s := stateHealthy; s <= stateCredentialDead; s++ {
			gauge(c.state, boolGauge(st.State == s.String()), s.String())
		}
		gauge(c.inflight, float64(st.InFlight))
		gauge(c.ttft, st.TTFTMS/1e3)
		gauge(c.latency, st.LatencyMS/1e3)
		gauge(c.errRate, st.ErrorRate)
		gauge(c.cooldown, st.Cooldown.Seconds())
		gauge(c.gated, boolGauge(st.Probe != nil && st.Probe.Gated))
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
