package admin

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/store"
)

// TestHealthFields checks that GET /admin/health shows, for deployments a
// real balancer holds in each state, the state, until (RFC 3339 or null),
// in-flight, EWMA TTFT and latency in ms and the error rate.
func TestHealthFields(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := balancer.New(balancer.Options{Now: func() time.Time { return now }})
	deps := []llm.Deployment{{ID: "dep_ok"}, {ID: "dep_cool"}, {ID: "dep_out"}, {ID: "dep_dead"}}
	b.Start(&deps[0])(balancer.Outcome{Latency: 300 * time.Millisecond, TTFT: 40 * time.Millisecond})
	b.Start(&deps[0]) // in flight
	upstream := func(status int) balancer.Outcome {
		e := llm.Errorf(llm.KindUpstream, "upstream said %d", status)
		e.UpstreamStatus = status
		return balancer.Outcome{Err: e}
	}
	b.Start(&deps[1])(upstream(429))
	for range 3 {
		b.Start(&deps[2])(upstream(500))
	}
	b.Start(&deps[3])(upstream(401))

	h := newHarness(t, store.DialectSQLite, func(o *Options) {
		o.Health = func(context.Context) any {
			var out []balancer.Status
			for _, d := range deps {
				out = append(out, b.Status(d.ID))
			}
			return out
		}
	})
	var body struct {
		Items []map[string]any `json:"items"`
	}
	h.expect(h.do("GET", "/admin/health", ""), 200, &body)
	if len(body.Items) != 4 {
		t.Fatalf("items = %+v", body.Items)
	}
	want := []struct {
		state string
		until *time.Time
	}{
		{"healthy", nil}, {"cooling", ptr(now.Add(5 * time.Second))}, {"ejected", ptr(now.Add(30 * time.Second))}, {"credential_dead", nil},
	}
	for i, it := range body.Items {
		for _, k := range []string{"deployment", "state", "until", "in_flight", "ttft_ewma_ms", "latency_ewma_ms", "error_rate", "healthy"} {
			if _, ok := it[k]; !ok {
				t.Errorf("%v: no %q", it["deployment"], k)
			}
		}
		if it["state"] != want[i].state {
			t.Errorf("%v state = %v, want %s", it["deployment"], it["state"], want[i].state)
		}
		switch u := it["until"]; {
		case want[i].until == nil && u != nil:
			t.Errorf("%v until = %v, want null", it["deployment"], u)
		case want[i].until != nil:
			s, _ := u.(string)
			if got, err := time.Parse(time.RFC3339, s); err != nil || !got.Equal(*want[i].until) {
				t.Errorf("%v until = %v, want %s", it["deployment"], u, want[i].until.Format(time.RFC3339))
			}
		}
		if i > 0 && it["error_rate"].(float64) <= 0 {
			t.Errorf("%v error_rate = %v after a failure", it["deployment"], it["error_rate"])
		}
	}
	ok := body.Items[0]
	if ok["in_flight"] != 1.0 || ok["latency_ewma_ms"] != 300.0 || ok["ttft_ewma_ms"] != 40.0 || ok["error_rate"] != 0.0 {
		t.Errorf("healthy row = %v", ok)
	}
}

func ptr[T any](v T) *T { return &v }
