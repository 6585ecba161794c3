package server

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/quota"
)

// newReplicaID names this process in shared health transitions.
func newReplicaID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// balancerOptions builds the balancer's options: with Redis, its health
// transitions are shared with the other replicas (s.healthSync, which
// Serve runs); without, nothing is shared.
func (s *Server) balancerOptions() balancer.Options {
	o := balancer.Options{Replica: s.replica}
	if s.rdb == nil {
		return o
	}
	s.healthSync = quota.NewHealthSync(s.rdb, quota.HealthSyncOptions{
		Origin: s.replica,
		Logger: s.log,
		Apply: func(ev quota.HealthEvent) bool {
			return s.balancer.Apply(balancer.Transition{Deployment: ev.Deployment, State: ev.State, Until: ev.Until,
				ProviderRevision: ev.Revision, Origin: ev.Origin})
		},
		IDs: s.deploymentIDs,
	})
	hs := s.healthSync
	o.OnTransition = func(t balancer.Transition) {
		hs.Publish(quota.HealthEvent{Deployment: t.Deployment, State: t.State, Until: t.Until, Revision: t.ProviderRevision, Origin: t.Origin})
	}
	return o
}

// deploymentIDs lists the ids of the current snapshot's deployments.
func (s *Server) deploymentIDs() []string {
	names := s.deploymentNames()
	ids := make([]string, 0, len(names))
	for _, n := range names {
		ids = append(ids, n.ID)
	}
	return ids
}

// healthSyncCollector reports the shared-health totals as
// sluice_health_sync_events_total{result}.
type healthSyncCollector struct {
	hs   *quota.HealthSync
	desc *prometheus.Desc
}

func newHealthSyncCollector(hs *quota.HealthSync) prometheus.Collector {
	return &healthSyncCollector{hs: hs, desc: prometheus.NewDesc("sluice_health_sync_events_total",
		"Deployment health transitions shared through Redis, by result: published, dropped (queue full), failed (Redis did not take it), applied (another replica's that changed this replica's state).",
		[]string{"result"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *healthSyncCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *healthSyncCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.hs.Counts()
	for _, v := range []struct {
		result string
		n      int64
	}{{"published", n.Published}, {"dropped", n.Dropped}, {"failed", n.Failed}, {"applied", n.Applied}} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(v.n), v.result)
	}
}
