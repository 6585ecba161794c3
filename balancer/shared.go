package balancer

import (
	"time"
)

// Transition is a change of one deployment's health that replicas share:
// this replica's own, handed to Options.OnTransition, or another's, given
// to Apply. Times are wall-clock (the only kind other processes share);
// the balancer converts them to its monotonic clock at the edge.
type Transition struct {
	// Deployment is the deployment's id.
	Deployment string
	// State is "healthy", "cooling", "ejected" or "credential_dead".
	State string
	// Until is when a cooling or ejected deployment is picked normally
	// again; zero for the other states.
	Until time.Time
	// ProviderRevision is the provider configuration revision the
	// transition was made under (credential_dead and healthy).
	ProviderRevision int64
	// Origin is the replica that made the transition (Options.Replica).
	Origin string
}

// change is a transition an attempt's report made: state, until (for
// cooling and ejected, on the balancer's clock) and the revision.
type change struct {
	ok    bool
	state healthState
	until int64
	rev   int64
}

// publish hands a local transition to OnTransition, converting until to
// wall-clock time. It runs outside every lock.
func (b *Balancer) publish(id string, ch change) {
	f := b.opts.OnTransition
	if f == nil {
		return
	}
	t := Transition{Deployment: id, State: ch.state.String(), ProviderRevision: ch.rev, Origin: b.opts.Replica}
	if ch.state == stateCooling || ch.state == stateEjected {
		t.Until = b.wall(ch.until)
	}
	f(t)
}

// wall converts a time on the balancer's clock to wall-clock time.
func (b *Balancer) wall(at int64) time.Time {
	now := b.opts.Now()
	return now.Add(time.Duration(at - b.now())).Round(0)
}

// applySlack is how much later than the current end a remote cooldown
// must end to extend it: the same transition seen again (the shared
// store's poll repeats it) converts to a slightly different local time,
// which must not count as a new one.
const applySlack = int64(250 * time.Millisecond)

// Apply applies another replica's transition and reports whether it
// changed anything. A transition from this replica (Origin equal to
// Options.Replica) is ignored, as is one for a deployment the Balancer
// keeps no state for, or one it cannot read. Cooling and ejected last
// until Until, capped at MaxRetryAfterCooldown and MaxEjection from now,
// and only extend the deployment's current cooldown (the later end
// wins); credential_dead applies only under the provider revision this
// replica uses; healthy ends a cooldown, ejection or dead credential
// that came from another replica (never one this replica's own attempts
// found), the dead credential only under the same revision.
func (b *Balancer) Apply(t Transition) bool {
	if t.Deployment == "" || (b.opts.Replica != "" && t.Origin == b.opts.Replica) {
		return false
	}
	v, ok := b.health.Load(t.Deployment)
	if !ok {
		return false
	}
	return v.(*health).apply(b, t)
}

func (h *health) apply(b *Balancer, t Transition) bool {
	switch t.State {
	case stateCooling.String(), stateEjected.String():
		cooling := t.State == stateCooling.String()
		limit := b.opts.MaxEjection
		if cooling {
			limit = b.opts.MaxRetryAfterCooldown
		}
		d := t.Until.Sub(b.opts.Now())
		if d <= 0 {
			return false
		}
		d = min(d, limit)
		now := b.now()
		until := now + int64(d)
		h.mu.Lock()
		defer h.mu.Unlock()
		cur := h.until.Load()
		out := isOut(cur, now)
		if out && until <= cur+applySlack {
			return false
		}
		h.until.Store(until)
		h.remoteOut = true
		h.coolingOnly = cooling && (!out || h.coolingOnly)
		if !cooling {
			h.gate() // a probed deployment returns after this replica's probes pass
		}
		if !out {
			// Attempts already running started before the deployment was
			// taken out: their outcomes do not undo it.
			h.epoch.Add(1)
		}
		return true
	case stateCredentialDead.String():
		h.mu.Lock()
		defer h.mu.Unlock()
		if t.ProviderRevision != h.rev.Load() || h.dead.Load() {
			return false
		}
		h.dead.Store(true)
		h.remoteDead = true
		h.epoch.Add(1)
		return true
	case stateHealthy.String():
		now := b.now()
		h.mu.Lock()
		defer h.mu.Unlock()
		changed := false
		if h.remoteOut && isOut(h.until.Load(), now) {
			h.until.Store(0)
			h.coolingOnly, h.remoteOut = false, false
			changed = true
		}
		if h.remoteDead && h.dead.Load() && t.ProviderRevision == h.rev.Load() {
			h.dead.Store(false)
			h.remoteDead = false
			changed = true
		}
		if changed {
			h.epoch.Add(1)
		}
		return changed
	}
	return false
}
