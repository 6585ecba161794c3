package balancer

import (
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/sluice-ai/sluice/llm"
)

// Active probes. A deployment whose provider is probed (Target's
// ProbeHealthy > 0) follows two more rules besides passive health:
//
//   - ProbeUnhealthy consecutive failing probes eject it, with the same
//     exponential backoff as consecutive failing attempts, even when no
//     traffic reaches it;
//   - once ejected — by probes or by failing attempts — it is gated: the
//     end of the backoff no longer brings it back, only ProbeHealthy
//     consecutive passing probes after the ejection do (at once, whether
//     or not the backoff has run out: the probes are the evidence). A
//     successful attempt on it (it still serves as a last resort) counts
//     in its statistics but does not lift the gate.
//
// The gate is per replica, as each replica runs its own probes: an
// ejection another replica shares (Apply) gates the deployment here too,
// and a shared return does not lift it. Ejections and returns by probes
// are shared like those of attempts (OnTransition).
//
// A 429 answer to a probe is inconclusive (the upstream is up but busy):
// it neither passes nor fails. A probe cancelled because its loop stopped
// is not counted at all.

// probeState is a deployment's view of its provider's probes, under
// health.mu.
type probeState struct {
	healthy, unhealthy int   // thresholds; healthy 0 = not probed
	passing, failing   int   // consecutive
	lastOK, lastFail   int64 // balancer clock, valid when okSeen/failSeen
	okSeen, failSeen   bool
	lastErr            string
}

// maxProbeError bounds the probe error kept for the admin API.
const maxProbeError = 256

// ProbeStatus is the active probes' view of a deployment, for the admin
// API.
type ProbeStatus struct {
	// Gated is true while the deployment is ejected until probes pass.
	Gated bool `json:"gated"`
	// Passing and Failing count the latest run of passing or failing
	// probes (one of them is 0).
	Passing int `json:"passing"`
	Failing int `json:"failing"`
	// HealthyThreshold passing probes lift the gate; UnhealthyThreshold
	// failing ones eject.
	HealthyThreshold   int `json:"healthy_threshold"`
	UnhealthyThreshold int `json:"unhealthy_threshold"`
	// LastOK and LastFailure are the latest passing and failing probes;
	// null when none happened.
	LastOK      *time.Time `json:"last_ok"`
	LastFailure *time.Time `json:"last_failure"`
	// LastError is the latest failing (or inconclusive) probe's error: the
	// provider's redacted, client-safe message, never its credentials.
	LastError string `json:"last_error,omitempty"`
}

// setProbe sets the probe thresholds of the deployment's provider (0: not
// probed). Turning probes off lifts the gate: an ejection then ends with
// its backoff again.
func (h *health) setProbe(healthy, unhealthy int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if healthy <= 0 {
		h.probe = probeState{}
		h.gated.Store(false)
		return
	}
	h.probe.healthy, h.probe.unhealthy = healthy, max(unhealthy, 1)
}

// gate is called under mu when the deployment is ejected: a probed one
// waits for passing probes, counted from now.
func (h *health) gate() {
	if h.probe.healthy > 0 {
		h.gated.Store(true)
		h.probe.passing = 0
	}
}

// ProbeResult applies the result of one active probe of deployment id: nil
// for a pass, else the probe's error (a *llm.Error from the provider, whose
// message is kept for the admin API). It does nothing for a deployment that
// is not a target or whose provider is not probed (the configuration
// changed while the probe ran).
func (b *Balancer) ProbeResult(id string, err error) {
	v, ok := b.health.Load(id)
	if !ok {
		return
	}
	var le *llm.Error
	if err != nil && errors.As(err, &le) && le.Kind == llm.KindCanceled {
		return
	}
	if ch := v.(*health).probeResult(b, err, le); ch.ok {
		b.publish(id, ch)
	}
}

// probeResult applies a probe's result and returns the transition it
// made, if any, for the OnTransition hook: other replicas learn of an
// ejection by probes (and gate the deployment too) and of a return.
func (h *health) probeResult(b *Balancer, err error, le *llm.Error) (ch change) {
	now := b.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	p := &h.probe
	if p.healthy == 0 {
		return
	}
	if err == nil {
		p.passing++
		p.failing = 0
		p.lastOK, p.okSeen = now, true
		if h.gated.Load() && p.passing >= p.healthy {
			h.gated.Store(false)
			h.until.Store(0)
			h.coolingOnly, h.remoteOut = false, false
			h.fails = 0
			h.epoch.Add(1)
			if !h.dead.Load() {
				ch = change{ok: true, state: stateHealthy, rev: h.rev.Load()}
			}
		}
		return
	}
	p.lastFail, p.failSeen = now, true
	p.lastErr = probeError(le)
	if le != nil && le.UpstreamStatus == http.StatusTooManyRequests {
		return // inconclusive
	}
	p.failing++
	p.passing = 0
	if p.failing < p.unhealthy || h.gated.Load() {
		return
	}
	h.ejections++
	h.until.Store(max(h.until.Load(), now+int64(b.backoff(h.ejections))))
	h.coolingOnly, h.remoteOut = false, false
	h.fails = 0
	h.epoch.Add(1)
	h.gate()
	return change{ok: true, state: stateEjected, until: h.until.Load()}
}

// backoff is the length of the n-th ejection in a row (n >= 1).
func (b *Balancer) backoff(n int) time.Duration {
	o := &b.opts
	d := o.Cooldown
	for i := 1; i < n && d < o.MaxEjection; i++ {
		d *= 2
	}
	return min(d, o.MaxEjection)
}

// probeError is the text kept of a failed probe: an llm.Error's status and
// client-safe message (never the wrapped cause, which may name internal
// addresses), bounded.
func probeError(le *llm.Error) string {
	s := "probe failed"
	if le != nil {
		s = le.Message
		if le.UpstreamStatus != 0 {
			s = fmt.Sprintf("HTTP %d: %s", le.UpstreamStatus, s)
		}
	}
	if len(s) > maxProbeError {
		s = s[:maxProbeError]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// probeStatus adds the probes' view to st, under mu: a gated deployment is
// "ejected" whatever its backoff says.
func (h *health) probeStatus(st *Status, b *Balancer) {
	p := &h.probe
	if p.healthy == 0 {
		return
	}
	ps := &ProbeStatus{
		Gated: h.gated.Load(), Passing: p.passing, Failing: p.failing,
		HealthyThreshold: p.healthy, UnhealthyThreshold: p.unhealthy, LastError: p.lastErr,
	}
	at := func(t int64, seen bool) *time.Time {
		if !seen {
			return nil
		}
		v := b.base.Add(time.Duration(t)).UTC().Round(0)
		return &v
	}
	ps.LastOK, ps.LastFailure = at(p.lastOK, p.okSeen), at(p.lastFail, p.failSeen)
	st.Probe = ps
	if ps.Gated && st.State != stateCredentialDead.String() {
		st.State, st.Healthy = stateEjected.String(), false
	}
}
