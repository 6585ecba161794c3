// Package state compiles the configuration snapshot into the runtime state
// the proxy serves from. The snapshot (llm.Snapshot) is plain data read from
// the store; everything stateful built from it — provider HTTP pools, the
// balancer's deployment targets and their health, the issuers' JWKS caches,
// the active probe loops, and later route matchers and certificates — is
// built by Build, which
// reuses what did not change (keyed by id and revision) and hands back what
// to stop once the new State is in use. Build's caller (server) owns every
// goroutine a configuration starts: it runs the retire function after each
// swap.
package state

import (
	"context"
	"time"

	"github.com/sluice-ai/sluice/auth"
	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
)

// State is the configuration the proxy serves from: a snapshot and what was
// built from it. It is immutable; a reload swaps in a new one.
type State struct {
	Snapshot  *llm.Snapshot
	Providers *providers.Registry
	// Auth validates credentials: keys against Snapshot, JWTs against
	// the snapshot's issuers (their JWKS caches outlive reloads).
	Auth *auth.Authenticator
	// probes are the active probe loops of the providers with probes on.
	probes *probeSet
}

// Close stops the State's probe loops and waits for them. The server
// calls it on shutdown, on the State in use; a State that was replaced
// had its loops stopped (or handed over) by its successor's retire.
func (s *State) Close() {
	if s != nil {
		s.probes.close()
	}
}

// Options are the long-lived parts a State is wired into.
type Options struct {
	// Balancer keeps deployment health across reloads: Build makes the
	// snapshot's deployments its targets and drops the state of the others.
	// Nil leaves health alone.
	Balancer *balancer.Balancer
	// Providers are the operator's settings for every provider.
	Providers providers.Options
	// ProbeMetrics counts the active probes; nil counts nothing.
	ProbeMetrics *ProbeMetrics
	// probeWait and probeJitter replace the probe loops' timer and
	// randomness in tests.
	probeWait   func(ctx context.Context, d time.Duration) bool
	probeJitter func(d time.Duration) time.Duration
	// Auth tunes the issuers' JWKS caches.
	Auth auth.Options
}

// Build compiles snap into a State, reusing the parts of prev (nil on the
// first build) that did not change. It returns the State; retire, which
// stops and releases what prev used and the new State does not (idle
// connections of removed or changed providers, the health of deleted
// deployments) and must be called once, after the new State has replaced
// prev; and the parts that could not be built (a provider of an unknown
// type, say), which are skipped: the State is usable either way. Build
// itself changes nothing that prev's users can see.
func Build(prev *State, snap *llm.Snapshot, o Options) (st *State, retire func(), errs []error) {
	if snap == nil {
		snap = llm.EmptySnapshot()
	}
	var prevProviders *providers.Registry
	var prevAuth *auth.Authenticator
	if prev != nil {
		prevProviders, prevAuth = prev.Providers, prev.Auth
	}
	reg, errs := providers.NewRegistry(prevProviders, snap, o.Providers)
	authn, aerrs := auth.NewAuthenticator(prevAuth, snap.Issuers, o.Auth)
	errs = append(errs, aerrs...)
	st = &State{Snapshot: snap, Providers: reg, Auth: authn}
	var prevProbes *probeSet
	if prev != nil {
		prevProbes = prev.probes
	}
	var pts map[string]*probeTarget
	if o.Balancer != nil {
		// Probes report to the balancer: without one they are pointless.
		pts = probeTargets(snap, reg)
		st.probes = planProbes(prevProbes, pts)
	}
	ts := targets(snap, pts)
	run := &probeRun{sink: o.Balancer, metrics: o.ProbeMetrics, wait: o.probeWait, jitter: o.probeJitter}
	if run.wait == nil {
		run.wait = sleepCtx
	}
	if run.jitter == nil {
		run.jitter = randJitter
	}
	retire = func() {
		reg.Retire(prevProviders)
		// Loops of removed or changed providers stop before the balancer
		// forgets their deployments; new loops start once it knows the
		// new targets, so every result lands on a target.
		st.probes.retire(prevProbes, o.ProbeMetrics)
		if o.Balancer != nil {
			o.Balancer.Retain(ts)
		}
		st.probes.start(run)
	}
	return st, retire, errs
}

// targets lists snap's deployments for the balancer, each with its
// provider's configuration revision and, when a probe loop (in probed,
// by provider id) runs for the provider, its probe thresholds.
func targets(snap *llm.Snapshot, probed map[string]*probeTarget) []balancer.Target {
	var out []balancer.Target
	for _, m := range snap.Models {
		for i := range m.Deployments {
			d := &m.Deployments[i]
			t := balancer.Target{ID: d.ID, Model: m.ID}
			if p, ok := snap.Providers[d.Provider]; ok {
				t.ProviderRevision = providers.ConfigRevision(p)
				if _, ok := probed[probeKey(p)]; ok {
					t.ProbeHealthy, t.ProbeUnhealthy = p.Probe.Healthy(), p.Probe.Unhealthy()
				}
			}
			out = append(out, t)
		}
	}
	return out
}
