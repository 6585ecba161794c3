package admin

import (
	"context"
	"net/http"
	"testing"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/store"
)

// TestModelStrategyAPI round-trips a model's strategy, its options and the
// deployments' priorities through POST, GET, PATCH and PUT, into the
// snapshot, and checks that bad values are refused naming the field.
func TestModelStrategyAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, nil)
		h.expect(h.do("POST", "/admin/providers", `{"name":"up","type":"openai-compatible","base_url":"http://127.0.0.1:8000/v1"}`), http.StatusCreated, nil)
		// No strategy: auto, shown as such, no options.
		m := fresh[store.Model](h, h.do("POST", "/admin/models", `{"name":"plain","deployments":[{"provider":"up","model":"a"}]}`), http.StatusCreated)
		if m.Strategy != llm.StrategyAuto || m.StrategyOptions != nil {
			t.Fatalf("default %+v", m)
		}
		w := h.do("POST", "/admin/models", `{"name":"m","strategy":"priority","strategy_options":{"latency_tolerance":0.25},
			"deployments":[{"provider":"up","model":"a","priority":1},{"provider":"up","model":"b"}]}`)
		m = fresh[store.Model](h, w, http.StatusCreated)
		if m.Strategy != llm.StrategyPriority || m.StrategyOptions.Tolerance() != 0.25 || m.StrategyOptions.ErrorWeight != nil ||
			m.Deployments[0].Priority != 1 || m.Deployments[1].Priority != 0 {
			t.Fatalf("created %s", w.Body)
		}
		m = fresh[store.Model](h, h.do("GET", "/admin/models/m", ""), http.StatusOK)
		if m.Strategy != llm.StrategyPriority || m.StrategyOptions.Tolerance() != 0.25 || m.Deployments[0].Priority != 1 {
			t.Fatalf("get %+v", m)
		}
		// PATCH of the strategy keeps the options, and of the options the
		// strategy; null options are the defaults.
		m = fresh[store.Model](h, h.do("PATCH", "/admin/models/m", `{"strategy":"cost"}`), http.StatusOK)
		if m.Strategy != llm.StrategyCost || m.StrategyOptions.Tolerance() != 0.25 || m.Deployments[0].Priority != 1 {
			t.Fatalf("patch strategy %+v", m)
		}
		m = fresh[store.Model](h, h.do("PATCH", "/admin/models/m", `{"strategy_options":{"error_weight":2,"latency_tolerance":0}}`), http.StatusOK)
		if m.Strategy != llm.StrategyCost || m.StrategyOptions.Tolerance() != 0 || m.StrategyOptions.ErrWeight() != 2 {
			t.Fatalf("patch options %+v", m)
		}
		snap, err := h.store.LoadSnapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if sm := snap.Models["m"]; sm == nil || sm.Strategy != llm.StrategyCost || sm.StrategyOptions.Tolerance() != 0 ||
			sm.StrategyOptions.ErrWeight() != 2 || sm.Deployments[0].Priority != 1 {
			t.Fatalf("snapshot %+v", sm)
		}
		if sm := snap.Models["plain"]; sm == nil || sm.Strategy != llm.StrategyAuto || sm.StrategyOptions != nil {
			t.Fatalf("snapshot plain %+v", sm)
		}
		m = fresh[store.Model](h, h.do("PATCH", "/admin/models/m", `{"strategy_options":null}`), http.StatusOK)
		if m.StrategyOptions != nil || m.Strategy != llm.StrategyCost {
			t.Fatalf("clear options %+v", m)
		}
		// PUT replaces everything: no strategy is auto again.
		m = fresh[store.Model](h, h.do("PUT", "/admin/models/m", `{"name":"m","deployments":[{"provider":"up","model":"a"}]}`), http.StatusOK)
		if m.Strategy != llm.StrategyAuto || m.StrategyOptions != nil || m.Deployments[0].Priority != 0 {
			t.Fatalf("put %+v", m)
		}
		for _, c := range []struct{ body, param string }{
			{`{"strategy":"fastest"}`, "strategy"},
			{`{"strategy":"AUTO"}`, "strategy"},
			{`{"strategy":7}`, "strategy"},
			{`{"strategy_options":{"latency_tolerance":-0.1}}`, "strategy_options.latency_tolerance"},
			{`{"strategy_options":{"latency_tolerance":101}}`, "strategy_options.latency_tolerance"},
			{`{"strategy_options":{"error_weight":1e300}}`, "strategy_options.error_weight"},
			{`{"strategy_options":{"tolerance":1}}`, "tolerance"},
			{`{"strategy_options":[1]}`, "strategy_options"},
			{`{"deployments":[{"provider":"up","model":"a","priority":-1}]}`, "deployments[0].priority"},
			{`{"deployments":[{"provider":"up","model":"a","priority":1000001}]}`, "deployments[0].priority"},
		} {
			h.expectError(h.do("PATCH", "/admin/models/m", c.body), http.StatusBadRequest, c.param)
		}
		if m := fresh[store.Model](h, h.do("GET", "/admin/models/m", ""), http.StatusOK); m.Strategy != llm.StrategyAuto {
			t.Fatalf("a refused patch changed the model: %+v", m)
		}
	})
}
