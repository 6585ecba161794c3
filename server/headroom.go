package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/quota"
)

// roomCollector reports each deployment's headroom (what its provider
// account has left of the rpm and tpm declared on it) at scrape time.
type roomCollector struct {
	l                *quota.Limiter
	list             func() []balancer.Named
	requests, tokens *prometheus.Desc
	slots            *prometheus.Desc
}

// headroomCollector returns the collector of sluice_deployment_headroom_*
// for the deployments list returns: configured names and ids only.
func headroomCollector(l *quota.Limiter, list func() []balancer.Named) prometheus.Collector {
	labels := []string{"model", "provider", "deployment"}
	return &roomCollector{l: l, list: list,
		requests: prometheus.NewDesc("sluice_deployment_headroom_requests", "Requests left in the deployment's rpm limit (its provider account's), estimated now from this replica's latest admission on it.", labels, nil),
		tokens:   prometheus.NewDesc("sluice_deployment_headroom_tokens", "Tokens left in the deployment's tpm limit (its provider account's), estimated now from this replica's latest admission on it.", labels, nil),
		slots:    prometheus.NewDesc("sluice_deployment_headroom_slots", "Free max_parallel slots of the deployment at this replica's latest admission on it.", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *roomCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.tokens
	ch <- c.slots
}

// Collect implements prometheus.Collector.
func (c *roomCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	for _, n := range c.list() {
		if seen[n.ID] {
			continue
		}
		seen[n.ID] = true
		hr, ok := c.l.DeploymentHeadroom(n.ID)
		if !ok {
			continue
		}
		if w := hr.Requests; w != nil {
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.GaugeValue, float64(w.Remaining), n.Model, n.Provider, n.ID)
		}
		if w := hr.Tokens; w != nil {
			ch <- prometheus.MustNewConstMetric(c.tokens, prometheus.GaugeValue, float64(w.Remaining), n.Model, n.Provider, n.ID)
		}
		if sl := hr.Slots; sl != nil {
			ch <- prometheus.MustNewConstMetric(c.slots, prometheus.GaugeValue, float64(sl.Free), n.Model, n.Provider, n.ID)
		}
	}
}
