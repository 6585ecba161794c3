package quota

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// Headroom summarises what a deployment's provider account has left, for
// the balancer: the fraction left of its tightest limit, how long that
// limit takes to refill, and how long no request can be admitted at all.
type Headroom struct {
	Frac   float64
	Refill time.Duration
	Empty  time.Duration
}

// DeploymentHeadroom is a deployment's headroom as the admin API shows
// it: its declared limits (the provider account's) with what is left,
// estimated now from the latest admission this replica made on it.
type DeploymentHeadroom struct {
	Requests *HeadroomWindow `json:"requests,omitempty"`
	Tokens   *HeadroomWindow `json:"tokens,omitempty"`
	Slots    *HeadroomSlots  `json:"slots,omitempty"`
	// ExhaustedUntil is set while no request can be admitted: the balancer
	// passes the deployment over until then.
	ExhaustedUntil *time.Time `json:"exhausted_until,omitempty"`
	// ObservedAt is when the counters were read.
	ObservedAt time.Time `json:"observed_at"`
}

// HeadroomWindow is an rpm or tpm bucket: Remaining is estimated now
// (the bucket refills evenly), Reset is when it is full again.
type HeadroomWindow struct {
	Limit     int64     `json:"limit"`
	Remaining int64     `json:"remaining"`
	Reset     time.Time `json:"reset"`
}

// HeadroomSlots is max_parallel as last observed.
type HeadroomSlots struct {
	Limit int64 `json:"limit"`
	Free  int64 `json:"free"`
}

// roomObs is one observation of a deployment's counters.
type roomObs struct {
	at         time.Time
	rpm, tpm   Window
	par        Gauge
	emptyUntil time.Time
}

// rooms keeps the latest observation per deployment id.
type rooms struct {
	m sync.Map // id -> *roomObs
}

// slotRefill is the refill time the balancer assumes when the tightest
// limit is max_parallel: slots free up as requests end, not by the clock.
const slotRefill = time.Second

// observe records deployment d's counters after an admission (st), the
// limit that refused it if any, and that refusal's Retry-After, and
// returns the balancer's summary.
func (r *rooms) observe(d *llm.Deployment, st State, denied Limit, retry time.Duration, now time.Time) Headroom {
	lim := &d.Limits
	o := &roomObs{at: now, rpm: st.RPM, tpm: st.TPM, par: st.Parallel}
	o.rpm.Limit, o.tpm.Limit, o.par.Limit = lim.RPM, lim.TPM, lim.MaxParallel
	h := Headroom{Frac: 1, Refill: slotRefill}
	var empty time.Duration
	for _, w := range []*Window{&o.rpm, &o.tpm} {
		if w.Limit <= 0 {
			continue
		}
		f := min(max(float64(w.Remaining)/float64(w.Limit), 0), 1)
		if f < h.Frac {
			h.Frac, h.Refill = f, w.Reset
		}
		if w.Remaining < 1 {
			// Until one unit is back, at limit per minute.
			empty = max(empty, time.Duration(float64(1-w.Remaining)*float64(time.Minute)/float64(w.Limit)))
		}
	}
	if p := o.par; p.Limit > 0 {
		f := min(max(float64(p.Limit-p.InUse)/float64(p.Limit), 0), 1)
		if f < h.Frac {
			h.Frac, h.Refill = f, slotRefill
		}
	}
	if (denied == LimitRPM || denied == LimitTPM) && retry > 0 {
		empty = max(empty, retry)
	}
	if empty > 0 {
		h.Empty = min(empty, time.Minute)
		o.emptyUntil = now.Add(h.Empty)
	}
	r.m.Store(d.ID, o)
	return h
}

// view is id's headroom estimated at now; false when never observed.
func (r *rooms) view(id string, now time.Time) (DeploymentHeadroom, bool) {
	v, ok := r.m.Load(id)
	if !ok {
		return DeploymentHeadroom{}, false
	}
	o := v.(*roomObs)
	el := now.Sub(o.at)
	window := func(w Window) *HeadroomWindow {
		if w.Limit <= 0 {
			return nil
		}
		rem, reset := w.Remaining, w.Reset
		if el > 0 && w.Reset > 0 {
			if el >= w.Reset {
				rem = w.Limit
			} else {
				rem += int64(float64(w.Limit-w.Remaining) * float64(el) / float64(w.Reset))
			}
		}
		return &HeadroomWindow{Limit: w.Limit, Remaining: max(min(rem, w.Limit), 0), Reset: o.at.Add(max(reset, 0)).UTC()}
	}
	out := DeploymentHeadroom{Requests: window(o.rpm), Tokens: window(o.tpm), ObservedAt: o.at.UTC()}
	if o.par.Limit > 0 {
		out.Slots = &HeadroomSlots{Limit: o.par.Limit, Free: max(o.par.Limit-o.par.InUse, 0)}
	}
	if o.emptyUntil.After(now) {
		u := o.emptyUntil.UTC()
		out.ExhaustedUntil = &u
	}
	return out, true
}

// retain forgets the deployments keep does not name.
func (r *rooms) retain(keep map[string]bool) {
	r.m.Range(func(k, _ any) bool {
		if !keep[k.(string)] {
			r.m.Delete(k)
		}
		return true
	})
}

// DeploymentHeadroom returns deployment id's headroom as this replica
// last saw it, estimated now; false when no admission on it was made
// since the start (or since its limits were last seen).
func (l *Limiter) DeploymentHeadroom(id string) (DeploymentHeadroom, bool) {
	return l.rooms.view(id, l.o.Now())
}

// RetainHeadroom forgets the headroom of deployments not in ids (deleted
// from the configuration).
func (l *Limiter) RetainHeadroom(ids []string) {
	keep := make(map[string]bool, len(ids))
	for _, id := range ids {
		keep[id] = true
	}
	l.rooms.retain(keep)
}

// PeekDeployments reads the shared counters of deps' own limits in one
// store call (through the breaker) and records them as observed now, as
// an admission on each would, so that GET /admin/health shows headroom
// this replica has not admitted against yet. Deployments without limits
// are skipped; on an error the earlier observations stay.
func (l *Limiter) PeekDeployments(ctx context.Context, deps []*llm.Deployment) error {
	subs := make([]Subject, 0, len(deps))
	limited := make([]*llm.Deployment, 0, len(deps))
	for _, d := range deps {
		if lim := d.Limits; lim.RPM > 0 || lim.TPM > 0 || lim.MaxParallel > 0 {
			subs = append(subs, Subject{Scope: ScopeDeployment, ID: d.ID, Limits: d.Limits})
			limited = append(limited, d)
		}
	}
	if len(subs) == 0 {
		return nil
	}
	var sts []State
	_, err := l.call(ctx, func(ctx context.Context) (Decision, error) {
		var err error
		sts, err = l.o.Store.Peek(ctx, subs)
		return Decision{}, err
	})
	if err != nil {
		return err
	}
	if len(sts) != len(subs) {
		return fmt.Errorf("%w: peek answered %d states for %d subjects", ErrUnavailable, len(sts), len(subs))
	}
	now := l.o.Now()
	for i, d := range limited {
		h := l.rooms.observe(d, sts[i], "", 0, now)
		if f := l.o.OnHeadroom; f != nil {
			f(d.ID, h)
		}
	}
	return nil
}
