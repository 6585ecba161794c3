package server

import (
	"context"
	"sort"
	"time"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/quota"
)

// deploymentHealth is one row of GET /admin/health.
type deploymentHealth struct {
	Model    string `json:"model"`
	Provider string `json:"provider"`
	// UpstreamModel is the model name the provider knows the deployment by.
	UpstreamModel string `json:"upstream_model"`
	balancer.Status
	// Headroom is what the deployment's provider account has left of the
	// limits declared on it, as this replica last saw it; absent when it
	// declares none or none was admitted on it yet.
	Headroom *quota.DeploymentHeadroom `json:"headroom,omitempty"`
}

// health lists every deployment of the current snapshot with its balancer
// status, sorted by model then deployment.
func (s *Server) health(ctx context.Context) any {
	out := []deploymentHealth{}
	snap := s.state.Load().Snapshot
	if snap == nil {
		return out
	}
	s.peekHeadroom(ctx, snap)
	for _, m := range snap.Models {
		for i := range m.Deployments {
			d := &m.Deployments[i]
			row := deploymentHealth{Model: m.Name, Provider: d.Provider, UpstreamModel: d.Model, Status: s.balancer.Status(d.ID)}
			if hr, ok := s.limiter.DeploymentHeadroom(d.ID); ok && !d.Limits.IsZero() {
				row.Headroom = &hr
			}
			out = append(out, row)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Model != out[j].Model {
			return out[i].Model < out[j].Model
		}
		return out[i].Deployment < out[j].Deployment
	})
	return out
}

// deploymentNames lists every deployment of the current snapshot for the
// balancer's gauges: configured names and ids only.
func (s *Server) deploymentNames() []balancer.Named {
	var out []balancer.Named
	snap := s.state.Load().Snapshot
	if snap == nil {
		return out
	}
	for _, m := range snap.Models {
		for i := range m.Deployments {
			d := &m.Deployments[i]
			out = append(out, balancer.Named{Model: m.Name, Provider: d.Provider, ID: d.ID})
		}
	}
	return out
}

// healthPeekTimeout bounds the read of the shared counters for
// GET /admin/health.
const healthPeekTimeout = 500 * time.Millisecond

// peekHeadroom refreshes the headroom of every deployment with limits
// from the shared counters, in one store call, so the health list shows
// what other replicas used too; on failure the list shows the latest
// observations.
func (s *Server) peekHeadroom(ctx context.Context, snap *llm.Snapshot) {
	var deps []*llm.Deployment
	for _, m := range snap.Models {
		for i := range m.Deployments {
			if !m.Deployments[i].Limits.IsZero() {
				deps = append(deps, &m.Deployments[i])
			}
		}
	}
	if len(deps) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, healthPeekTimeout)
	defer cancel()
	if err := s.limiter.PeekDeployments(pctx, deps); err != nil {
		s.log.Debug("reading deployment headroom failed", "err", err)
	}
}
