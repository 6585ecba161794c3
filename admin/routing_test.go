package admin

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/sluice-ai/sluice/store"
)

// TestModelRoutingAPI round-trips a model's fallbacks and retry bounds
// through POST, GET and PATCH into the snapshot the router reads, and
// checks that bad values are refused naming the field.
func TestModelRoutingAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, nil)
		h.expect(h.do("POST", "/admin/providers", `{"name":"up","type":"openai-compatible","base_url":"http://127.0.0.1:8000/v1"}`), http.StatusCreated, nil)
		for _, n := range []string{"small", "big"} {
			h.expect(h.do("POST", "/admin/models", `{"name":"`+n+`","deployments":[{"provider":"up","model":"a"}]}`), http.StatusCreated, nil)
		}
		w := h.do("POST", "/admin/models", `{"name":"m","deployments":[{"provider":"up","model":"a"}],
			"fallbacks":["small"],"context_window_fallbacks":["big","small"],"retry":{"max_attempts":2,"timeout_ms":5000}}`)
		m := fresh[store.Model](h, w, http.StatusCreated)
		if !slices.Equal(m.Fallbacks, []string{"small"}) || !slices.Equal(m.ContextWindowFallbacks, []string{"big", "small"}) ||
			m.Retry.Attempts(3) != 2 || m.Retry.TimeoutMS != 5000 {
			t.Fatalf("created %s", w.Body)
		}
		m = fresh[store.Model](h, h.do("PATCH", "/admin/models/m", `{"fallbacks":["big","small"],"retry":null}`), http.StatusOK)
		if !slices.Equal(m.Fallbacks, []string{"big", "small"}) || m.Retry != nil || len(m.ContextWindowFallbacks) != 2 {
			t.Fatalf("patched %+v", m)
		}
		snap, err := h.store.LoadSnapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if sm := snap.Models["m"]; sm == nil || !slices.Equal(sm.Routing.Fallbacks, []string{"big", "small"}) ||
			!slices.Equal(sm.Routing.ContextWindowFallbacks, []string{"big", "small"}) || sm.Routing.Retry.Attempts(3) != 3 {
			t.Fatalf("snapshot %+v", sm)
		}
		for _, c := range []struct{ body, param string }{
			{`{"fallbacks":["m"]}`, "fallbacks[0]"},
			{`{"fallbacks":["nope"]}`, "fallbacks[0]"},
			{`{"context_window_fallbacks":["big","big"]}`, "context_window_fallbacks[1]"},
			{`{"retry":{"max_attempts":11}}`, "retry.max_attempts"},
			{`{"retry":{"timeout_ms":-1}}`, "retry.timeout_ms"},
		} {
			h.expectError(h.do("PATCH", "/admin/models/m", c.body), http.StatusBadRequest, c.param)
		}
	})
}
