package server

import (
	"crypto/rand"
	"encoding/hex"

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
		Apply: func(ev quota.HealthEvent) {
			s.balancer.Apply(balancer.Transition{Deployment: ev.Deployment, State: ev.State, Until: ev.Until,
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
