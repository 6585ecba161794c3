package state

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
)

// ProbeSink receives the results of active probes, per deployment id (the
// balancer).
type ProbeSink interface {
	ProbeResult(id string, err error)
}

// probeTarget is what one provider's probe loop probes: the built
// provider, its probe settings and its deployments. Two equal targets
// probe the same way, so a loop is reused across reloads exactly when its
// target is unchanged (a changed provider configuration builds a new
// provider, and so a new target).
type probeTarget struct {
	name  string // the provider's name, for metrics
	prov  providers.Provider
	probe llm.Probe
	deps  []probeDep // sorted
}

// probeDep is one deployment a loop probes for.
type probeDep struct{ id, model string }

func (t *probeTarget) equal(u *probeTarget) bool {
	return t.name == u.name && t.prov == u.prov && t.probe == u.probe && slices.Equal(t.deps, u.deps)
}

// probeLoop is one provider's probe loop. It runs from start until stop.
type probeLoop struct {
	t       probeTarget
	begin   sync.Once
	stopped sync.Once
	cancel  context.CancelFunc
	done    chan struct{}
}

// probeSet is the probe loops of one State, keyed by provider id.
type probeSet struct {
	loops map[string]*probeLoop
}

// probeTargets lists, per provider id, what snap's providers with probes
// on probe: the providers reg could build, with their deployments.
func probeTargets(snap *llm.Snapshot, reg *providers.Registry) map[string]*probeTarget {
	out := map[string]*probeTarget{}
	byName := map[string]*probeTarget{}
	for name, p := range snap.Providers {
		if !p.Probe.On() {
			continue
		}
		prov, ok := reg.Get(name)
		if !ok {
			continue
		}
		k := probeKey(p)
		t := &probeTarget{name: name, prov: prov, probe: p.Probe}
		out[k], byName[name] = t, t
	}
	for _, m := range snap.Models {
		for i := range m.Deployments {
			d := &m.Deployments[i]
			if t, ok := byName[d.Provider]; ok {
				t.deps = append(t.deps, probeDep{id: d.ID, model: d.Model})
			}
		}
	}
	for k, t := range out {
		if len(t.deps) == 0 {
			delete(out, k) // nothing to report to
			continue
		}
		slices.SortFunc(t.deps, func(a, b probeDep) int {
			return cmp.Or(strings.Compare(a.id, b.id), strings.Compare(a.model, b.model))
		})
		t.deps = slices.Compact(t.deps)
	}
	return out
}

// probeKey is a provider's identity across reloads: its id, or its name
// when it has none.
func probeKey(p *llm.Provider) string {
	if p.ID != "" {
		return p.ID
	}
	return "name:" + p.Name
}

// planProbes returns the loops for targets: prev's where the target is
// unchanged (still running), new ones (not started) otherwise.
func planProbes(prev *probeSet, targets map[string]*probeTarget) *probeSet {
	s := &probeSet{loops: make(map[string]*probeLoop, len(targets))}
	for k, t := range targets {
		if prev != nil {
			if l, ok := prev.loops[k]; ok && l.t.equal(t) {
				s.loops[k] = l
				continue
			}
		}
		s.loops[k] = &probeLoop{t: *t, done: make(chan struct{})}
	}
	return s
}

// start starts the loops not yet running.
func (s *probeSet) start(o *probeRun) {
	if s == nil {
		return
	}
	for _, l := range s.loops {
		l.begin.Do(func() {
			ctx, cancel := context.WithCancel(context.Background())
			l.cancel = cancel
			go l.run(ctx, o)
		})
	}
}

// retire stops the loops of prev that s does not have, and waits for them;
// the metrics of providers no longer probed are dropped.
func (s *probeSet) retire(prev *probeSet, m *ProbeMetrics) {
	if prev == nil {
		return
	}
	names := map[string]bool{}
	if s != nil {
		for _, l := range s.loops {
			names[l.t.name] = true
		}
	}
	for k, l := range prev.loops {
		if s == nil || s.loops[k] != l {
			l.stop()
			if !names[l.t.name] {
				m.forget(l.t.name)
			}
		}
	}
}

// close stops every loop of s and waits for them.
func (s *probeSet) close() {
	if s == nil {
		return
	}
	for _, l := range s.loops {
		l.stop()
	}
}

// stop ends the loop (if it was started) and waits for it; a loop never
// started is marked so that it never starts.
func (l *probeLoop) stop() {
	l.stopped.Do(func() {
		started := true
		l.begin.Do(func() { started = false })
		if !started {
			return
		}
		l.cancel()
		<-l.done
	})
}

// probeRun is what every loop shares: where results go, the metrics, and
// the clock and randomness (injectable for tests).
type probeRun struct {
	sink    ProbeSink
	metrics *ProbeMetrics
	// wait waits d, or until ctx ends (then false).
	wait func(ctx context.Context, d time.Duration) bool
	// jitter returns a random duration in [0, d).
	jitter func(d time.Duration) time.Duration
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func randJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// run probes every interval (±10%, the first after a random part of
// one, so loops started together spread out) until ctx ends.
func (l *probeLoop) run(ctx context.Context, o *probeRun) {
	defer close(l.done)
	iv := l.t.probe.Interval()
	next := o.jitter(iv)
	kind := l.t.probe.Kind
	for {
		if !o.wait(ctx, next) {
			return
		}
		kind = l.round(ctx, o, kind)
		if ctx.Err() != nil {
			return
		}
		next = iv - iv/10 + o.jitter(iv/5)
	}
}

// round probes once and reports to every deployment. It returns the kind
// to use next: a models probe of a provider without a model list turns
// into completion probes.
func (l *probeLoop) round(ctx context.Context, o *probeRun, kind string) string {
	if kind == llm.ProbeModels {
		err := l.once(ctx, o, kind, "")
		if !errors.Is(err, providers.ErrProbeUnsupported) {
			if ctx.Err() == nil {
				for _, d := range l.t.deps {
					o.sink.ProbeResult(d.id, err)
				}
			}
			return kind
		}
		kind = llm.ProbeCompletion
	}
	// One completion per upstream model: deployments of the provider that
	// share one share its result.
	results := map[string]error{}
	for _, d := range l.t.deps {
		err, ok := results[d.model]
		if !ok {
			err = l.once(ctx, o, kind, d.model)
			results[d.model] = err
		}
		if ctx.Err() != nil {
			return kind
		}
		o.sink.ProbeResult(d.id, err)
	}
	return kind
}

// once runs one probe bounded by the probe's timeout and counts it.
func (l *probeLoop) once(ctx context.Context, o *probeRun, kind, model string) error {
	pctx, cancel := context.WithTimeout(ctx, l.t.probe.Timeout())
	defer cancel()
	start := time.Now()
	err := providers.Probe(pctx, l.t.prov, kind, model)
	if ctx.Err() != nil || errors.Is(err, providers.ErrProbeUnsupported) {
		return err
	}
	o.metrics.observe(l.t.name, probeOutcome(err), time.Since(start))
	return err
}

// probeOutcome is a probe's result label: pass, fail, or inconclusive (a
// 429: the upstream is up but busy).
func probeOutcome(err error) string {
	if err == nil {
		return "pass"
	}
	var le *llm.Error
	if errors.As(err, &le) && le.UpstreamStatus == http.StatusTooManyRequests {
		return "inconclusive"
	}
	return "fail"
}
