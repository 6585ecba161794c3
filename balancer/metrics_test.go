package balancer

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// scrape gathers reg into "name{k=v,…}" → value, labels sorted by name.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestCollectorStates drives one deployment into each state with reports
// and the injected clock, and reads the gauges a scrape returns.
func TestCollectorStates(t *testing.T) {
	c := newClock()
	b := New(Options{Now: c.now})
	m := model(1, 1, 1, 1)
	d := m.Deployments
	b.Start(&d[0])(Outcome{Latency: 200 * time.Millisecond, TTFT: 50 * time.Millisecond})
	b.Start(&d[0]) // one attempt left in flight
	fail(b, &d[1], upstream(429))
	for range 3 {
		fail(b, &d[2], upstream(500))
	}
	fail(b, &d[3], upstream(401))
	c.add(2 * time.Second)

	var names []Named
	for _, dep := range d {
		names = append(names, Named{Model: m.Name, Provider: dep.Provider, ID: dep.ID})
	}
	names = append(names, names[0]) // listed twice, reported once
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.Collector(func() []Named { return names }))
	got := scrape(t, reg)

	want := map[string]string{"dep_0": "healthy", "dep_1": "cooling", "dep_2": "ejected", "dep_3": "credential_dead"}
	cooldown := map[string]float64{"dep_0": 0, "dep_1": 3, "dep_2": 28, "dep_3": 0}
	for i, dep := range d {
		l := fmt.Sprintf("deployment=%s,model=m,provider=p%d", dep.ID, i)
		val := func(name string) float64 {
			t.Helper()
			v, ok := got[name+"{"+l+"}"]
			if !ok {
				t.Fatalf("no %s{%s} in %v", name, l, got)
			}
			return v
		}
		up := 0.0
		if want[dep.ID] == "healthy" {
			up = 1
		}
		if v := val("sluice_deployment_up"); v != up {
			t.Errorf("%s up = %v, want %v", dep.ID, v, up)
		}
		for _, s := range []string{"healthy", "cooling", "ejected", "credential_dead"} {
			v, ok := got["sluice_deployment_state{"+l+",state="+s+"}"]
			if !ok {
				t.Fatalf("%s: no state=%s series", dep.ID, s)
			}
			if (v == 1) != (s == want[dep.ID]) {
				t.Errorf("%s state %s = %v, want state %s", dep.ID, s, v, want[dep.ID])
			}
		}
		if v := val("sluice_deployment_cooldown_seconds"); math.Abs(v-cooldown[dep.ID]) > 1e-9 {
			t.Errorf("%s cooldown = %v, want %v", dep.ID, v, cooldown[dep.ID])
		}
		st := b.Status(dep.ID)
		if v := val("sluice_deployment_error_rate"); v != st.ErrorRate || (i > 0) != (v > 0) {
			t.Errorf("%s error rate = %v (status %v)", dep.ID, v, st.ErrorRate)
		}
	}
	l0 := "{deployment=dep_0,model=m,provider=p0}"
	if v := got["sluice_deployment_inflight"+l0]; v != 1 {
		t.Errorf("in flight = %v, want 1", v)
	}
	if v := got["sluice_deployment_latency_ewma_seconds"+l0]; math.Abs(v-0.2) > 1e-9 {
		t.Errorf("latency = %v, want 0.2", v)
	}
	if v := got["sluice_deployment_ttft_ewma_seconds"+l0]; math.Abs(v-0.05) > 1e-9 {
		t.Errorf("ttft = %v, want 0.05", v)
	}
	// 4 deployments × (7 gauges + 4 state series); the duplicate adds none.
	if len(got) != 4*11 {
		t.Errorf("%d series, want 44", len(got))
	}

	// The cooldown ends: the gauges follow the clock, no report needed.
	c.add(time.Minute)
	got = scrape(t, reg)
	if v := got["sluice_deployment_up{deployment=dep_2,model=m,provider=p2}"]; v != 1 {
		t.Errorf("ejected deployment up = %v after its ejection ended", v)
	}
	if v := got["sluice_deployment_cooldown_seconds{deployment=dep_1,model=m,provider=p1}"]; v != 0 {
		t.Errorf("cooldown = %v after it ended", v)
	}
}

// TestCollectorLabelsCarryNoSecrets: the only label values are the names
// the list gives and the state names, whatever the requests carried.
func TestCollectorLabelsCarryNoSecrets(t *testing.T) {
	b := New(Options{})
	m := model(1, 1)
	e := upstream(401)
	e.Message = "invalid api key sk-secret-123"
	fail(b, &m.Deployments[0], e)
	b.Start(&m.Deployments[1])(Outcome{Latency: time.Millisecond})
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.Collector(func() []Named {
		return []Named{{"m", "p0", "dep_0"}, {"m", "p1", "dep_1"}}
	}))
	allowed := map[string]bool{"m": true, "p0": true, "p1": true, "dep_0": true, "dep_1": true,
		"healthy": true, "cooling": true, "ejected": true, "credential_dead": true}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if !allowed[l.GetValue()] || strings.Contains(l.GetValue(), "sk-") {
					t.Errorf("%s label %s=%q is not a configured name", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	if n := len(scrape(t, reg)); n != 22 {
		t.Errorf("%d series, want 22", n)
	}
	// An empty list is an empty scrape, not an error.
	reg = prometheus.NewRegistry()
	reg.MustRegister(b.Collector(func() []Named { return nil }))
	if n := len(scrape(t, reg)); n != 0 {
		t.Errorf("%d series for no deployments", n)
	}
}
