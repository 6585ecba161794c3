package balancer

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sluice-ai/sluice/llm"
)

// probedTargets makes m's deployments targets, those listed in probed with
// probes (healthy 2, unhealthy 3).
func probedTargets(b *Balancer, m *llm.Model, probed ...int) {
	var ts []Target
	for i, d := range m.Deployments {
		t := Target{ID: d.ID, Model: m.ID}
		for _, p := range probed {
			if p == i {
				t.ProbeHealthy, t.ProbeUnhealthy = 2, 3
			}
		}
		ts = append(ts, t)
	}
	b.Retain(ts)
}

// firstPicks counts which deployment a fresh plan picks first over n plans.
func firstPicks(b *Balancer, m *llm.Model, n int) map[string]int {
	out := map[string]int{}
	for range n {
		out[b.Plan(m).Next().ID]++
	}
	return out
}

// TestProbeGateSimulation is the deterministic simulation of issue 7 item
// 9: a deployment ejected by failures is not picked normally when its
// backoff ends while its probes fail, and is picked again after
// HealthyThreshold passing probes.
func TestProbeGateSimulation(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now})
	m := model(1, 1)
	m.Strategy = llm.StrategyWeighted // the auto strategy would weigh d0's failures
	probedTargets(b, m, 0)
	d0 := &m.Deployments[0]
	for range 3 {
		fail(b, d0, upstream(500))
	}
	st := b.Status(d0.ID)
	if st.State != "ejected" || st.Probe == nil || !st.Probe.Gated {
		t.Fatalf("after 3 failures: %+v", st)
	}
	probeFail := upstream(503)
	// Time goes far beyond the backoff (30s) while probes keep failing.
	for range 20 {
		c.add(10 * time.Second)
		b.ProbeResult(d0.ID, probeFail)
		if got := firstPicks(b, m, 20); got[d0.ID] != 0 {
			t.Fatalf("gated deployment picked first %d times at +%v", got[d0.ID], c.now().Sub(time.Unix(1000, 0)))
		}
	}
	st = b.Status(d0.ID)
	if st.Healthy || st.State != "ejected" || st.Until != nil || st.Probe.Failing != 20 || st.Probe.LastError != "HTTP 503: upstream said 503" {
		t.Fatalf("gated after backoff: %+v %+v", st, st.Probe)
	}
	// Still a last resort: a plan offers it after the healthy one.
	if got := order(b, m); len(got) != 2 || got[0] != "dep_1" || got[1] != "dep_0" {
		t.Fatalf("order while gated: %v", got)
	}
	// A success on it as a last resort does not lift the gate.
	b.Start(d0)(Outcome{Latency: time.Millisecond})
	if st := b.Status(d0.ID); st.Healthy {
		t.Fatalf("a last-resort success lifted the gate: %+v", st)
	}
	// One pass is not enough (threshold 2); a failure in between restarts the count.
	b.ProbeResult(d0.ID, nil)
	b.ProbeResult(d0.ID, probeFail)
	b.ProbeResult(d0.ID, nil)
	if st := b.Status(d0.ID); st.Healthy || st.Probe.Passing != 1 {
		t.Fatalf("re-admitted before 2 consecutive passes: %+v %+v", st, st.Probe)
	}
	b.ProbeResult(d0.ID, nil)
	st = b.Status(d0.ID)
	if !st.Healthy || st.State != "healthy" || st.Probe.Gated || st.Probe.LastOK == nil {
		t.Fatalf("after 2 passes: %+v %+v", st, st.Probe)
	}
	if got := firstPicks(b, m, 200); got[d0.ID] == 0 || got["dep_1"] == 0 {
		t.Fatalf("not picked again after passing probes: %v", got)
	}
}

// TestProbePassesReadmitBeforeBackoffEnds: the probes, not the backoff,
// decide (documented in probe.go).
func TestProbePassesReadmitBeforeBackoffEnds(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now, Cooldown: time.Hour, MaxEjection: time.Hour})
	m := model(1)
	probedTargets(b, m, 0)
	d := &m.Deployments[0]
	for range 3 {
		fail(b, d, upstream(500))
	}
	b.ProbeResult(d.ID, nil)
	b.ProbeResult(d.ID, nil)
	if st := b.Status(d.ID); !st.Healthy || st.Until != nil {
		t.Fatalf("2 passes within the backoff: %+v", st)
	}
}

// TestProbesEjectWithoutTraffic: UnhealthyThreshold failing probes eject a
// deployment nobody sends requests to; passes before the ejection do not
// count towards its return.
func TestProbesEjectWithoutTraffic(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now})
	m := model(1, 1)
	probedTargets(b, m, 0, 1)
	id := m.Deployments[0].ID
	b.ProbeResult(id, nil)
	b.ProbeResult(id, upstream(500))
	b.ProbeResult(id, upstream(500))
	if !b.Status(id).Healthy {
		t.Fatal("ejected after 2 failing probes (threshold 3)")
	}
	b.ProbeResult(id, upstream(500))
	st := b.Status(id)
	if st.Healthy || !st.Probe.Gated || st.Ejections != 1 || st.Until == nil || st.Cooldown != 30*time.Second {
		t.Fatalf("after 3 failing probes: %+v %+v", st, st.Probe)
	}
	// Further failures do not eject again (the backoff does not grow while out).
	b.ProbeResult(id, upstream(500))
	b.ProbeResult(id, upstream(500))
	b.ProbeResult(id, upstream(500))
	if st := b.Status(id); st.Ejections != 1 {
		t.Fatalf("ejected again while out: %+v", st)
	}
	if b.Status(m.Deployments[1].ID).Probe.Failing != 0 {
		t.Fatal("another deployment's probes counted")
	}
	// 429s are inconclusive: they neither pass nor fail.
	b.ProbeResult(id, nil)
	b.ProbeResult(id, upstream(http.StatusTooManyRequests))
	if st := b.Status(id); st.Probe.Passing != 1 || st.Probe.Failing != 0 || !st.Probe.Gated {
		t.Fatalf("a 429 probe counted: %+v", st.Probe)
	}
	// A cancelled probe (its loop stopped) is not counted at all.
	b.ProbeResult(id, llm.Errorf(llm.KindCanceled, "stopped"))
	b.ProbeResult(id, nil)
	if st := b.Status(id); !st.Healthy {
		t.Fatalf("2 passes around a cancelled probe: %+v %+v", st, st.Probe)
	}
}

// TestWithoutProbesBackoffReadmits: a deployment of a provider without
// probes comes back when its backoff ends, as before; probe results for it
// are ignored.
func TestWithoutProbesBackoffReadmits(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now})
	m := model(1)
	probedTargets(b, m)
	d := &m.Deployments[0]
	for range 3 {
		b.ProbeResult(d.ID, upstream(500))
	}
	if st := b.Status(d.ID); !st.Healthy || st.Probe != nil {
		t.Fatalf("probe results on an unprobed deployment: %+v", st)
	}
	for range 3 {
		fail(b, d, upstream(500))
	}
	c.add(30 * time.Second)
	if !b.Status(d.ID).Healthy {
		t.Fatal("backoff ended but not re-admitted")
	}
}

// TestTurningProbesOffLiftsTheGate: a reload without probes hands the
// deployment back to its backoff.
func TestTurningProbesOffLiftsTheGate(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now})
	m := model(1)
	probedTargets(b, m, 0)
	d := &m.Deployments[0]
	for range 3 {
		fail(b, d, upstream(500))
	}
	c.add(time.Minute)
	if b.Status(d.ID).Healthy {
		t.Fatal("gate did not hold")
	}
	probedTargets(b, m)
	if st := b.Status(d.ID); !st.Healthy || st.Probe != nil {
		t.Fatalf("probes off: %+v", st)
	}
	// And back on: the state starts fresh.
	probedTargets(b, m, 0)
	if st := b.Status(d.ID); !st.Healthy || st.Probe == nil || st.Probe.Gated {
		t.Fatalf("probes on again: %+v", st)
	}
}

// TestProbeErrorIsBounded: the kept error is the client-safe message,
// clipped, never the wrapped cause.
func TestProbeErrorIsBounded(t *testing.T) {
	b := New(Options{})
	m := model(1)
	probedTargets(b, m, 0)
	e := upstream(500)
	e.Message = strings.Repeat("é", 400)
	e.Err = &llm.Error{Message: "dial tcp 10.0.0.7:443: secret-cause"}
	b.ProbeResult(m.Deployments[0].ID, e)
	got := b.Status(m.Deployments[0].ID).Probe.LastError
	if len(got) > maxProbeError || strings.Contains(got, "secret-cause") || !strings.HasPrefix(got, "HTTP 500: é") {
		t.Fatalf("last_error %q", got)
	}
	if !strings.HasSuffix(got, "é") {
		t.Fatalf("last_error cut inside a rune: %q", got[len(got)-3:])
	}
}

// TestProbeGatedGauge: the gate shows in sluice_deployment_probe_gated.
func TestProbeGatedGauge(t *testing.T) {
	b := New(Options{})
	m := model(1)
	probedTargets(b, m, 0)
	for range 3 {
		b.ProbeResult(m.Deployments[0].ID, upstream(500))
	}
	col := b.Collector(func() []Named { return []Named{{Model: "m", Provider: "p0", ID: "dep_0"}} })
	want := `
# HELP sluice_deployment_probe_gated 1 while an ejected deployment waits for passing active probes, 0 otherwise.
# TYPE sluice_deployment_probe_gated gauge
sluice_deployment_probe_gated{deployment="dep_0",model="m",provider="p0"} 1
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), "sluice_deployment_probe_gated"); err != nil {
		t.Fatal(err)
	}
}

// TestProbeTransitionsShared: ejections and returns by probes are handed to
// OnTransition; another replica's ejection gates a probed deployment here
// (its backoff ending does not bring it back), and another replica's
// return does not lift this replica's gate.
func TestProbeTransitionsShared(t *testing.T) {
	c := newClock()
	var got []Transition
	b := New(Options{Now: c.now, Replica: "r1", OnTransition: func(tr Transition) { got = append(got, tr) }})
	m := model(1)
	probedTargets(b, m, 0)
	id := m.Deployments[0].ID
	for range 3 {
		b.ProbeResult(id, upstream(500))
	}
	b.ProbeResult(id, nil)
	b.ProbeResult(id, nil)
	if len(got) != 2 || got[0].State != "ejected" || !got[0].Until.Equal(c.now().Add(30*time.Second)) || got[1].State != "healthy" || got[1].Origin != "r1" {
		t.Fatalf("transitions: %+v", got)
	}

	if !b.Apply(Transition{Deployment: id, State: "ejected", Until: c.now().Add(10 * time.Second), Origin: "r2"}) {
		t.Fatal("remote ejection not applied")
	}
	c.add(time.Minute)
	if st := b.Status(id); st.Healthy || !st.Probe.Gated {
		t.Fatalf("remote ejection ended by its timer: %+v", st)
	}
	b.Apply(Transition{Deployment: id, State: "healthy", Origin: "r2"})
	if st := b.Status(id); st.Healthy {
		t.Fatalf("remote return lifted the local gate: %+v", st)
	}
	b.ProbeResult(id, nil)
	b.ProbeResult(id, nil)
	if st := b.Status(id); !st.Healthy {
		t.Fatalf("local probes passed: %+v", st)
	}
}

// TestGatedIsLateLastResort: among last resorts a gated deployment (back
// only when its probes pass) comes after one that is merely cooling, and
// before a credential-dead one.
func TestGatedIsLateLastResort(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now})
	m := model(1, 1, 1)
	m.Strategy = llm.StrategyWeighted
	probedTargets(b, m, 0)
	for range 3 {
		fail(b, &m.Deployments[0], upstream(500))
	}
	c.add(time.Hour) // the backoff is long over
	fail(b, &m.Deployments[1], upstream(http.StatusTooManyRequests))
	fail(b, &m.Deployments[2], upstream(http.StatusUnauthorized))
	if got := order(b, m); strings.Join(got, ",") != "dep_1,dep_0,dep_2" {
		t.Fatalf("last resorts in order %v", got)
	}
}
