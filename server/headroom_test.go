package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/quota"
)

// TestHeadroomGauges: after admissions on a deployment's own limits the
// gauges show what is left, labelled with configured names only; a
// deployment never admitted on, or without limits, has none.
func TestHeadroomGauges(t *testing.T) {
	l := quota.NewLimiter(quota.Options{})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.Close(ctx)
	}()
	d := &llm.Deployment{ID: "dep_1", Provider: "acme", Limits: llm.Limits{RPM: 10, TPM: 100_000, MaxParallel: 4}}
	for _, id := range []string{"r1", "r2", "r3"} {
		res, e := l.AdmitDeployment(context.Background(), &quota.Request{ID: id, MaxTokens: 100, PromptTokens: func() int { return 50 }}, d)
		if e != nil {
			t.Fatal(e)
		}
		defer res.Settle(llm.Usage{PromptTokens: 50, CompletionTokens: 100}, 0)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(headroomCollector(l, func() []balancer.Named {
		return []balancer.Named{{Model: "m", Provider: "acme", ID: "dep_1"}, {Model: "m", Provider: "other", ID: "dep_2"}, {Model: "m2", Provider: "acme", ID: "dep_1"}}
	}))
	want := `
# HELP sluice_deployment_headroom_requests Requests left in the deployment's rpm limit (its provider account's), estimated now from this replica's latest admission on it.
# TYPE sluice_deployment_headroom_requests gauge
sluice_deployment_headroom_requests{deployment="dep_1",model="m",provider="acme"} 7
# HELP sluice_deployment_headroom_slots Free max_parallel slots of the deployment at this replica's latest admission on it.
# TYPE sluice_deployment_headroom_slots gauge
sluice_deployment_headroom_slots{deployment="dep_1",model="m",provider="acme"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_deployment_headroom_requests", "sluice_deployment_headroom_slots"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "sluice_deployment_headroom_tokens"); err != nil || n != 1 {
		t.Fatalf("tokens gauges: %d %v", n, err)
	}
}

// TestMemoryModeSharesNothing: without Redis the balancer publishes
// nothing and no HealthSync exists.
func TestMemoryModeSharesNothing(t *testing.T) {
	s := &Server{replica: newReplicaID()}
	o := s.balancerOptions()
	if o.OnTransition != nil || s.healthSync != nil || o.Replica != s.replica || len(s.replica) != 16 {
		t.Fatalf("memory mode: %+v, sync %v", o, s.healthSync)
	}
}
