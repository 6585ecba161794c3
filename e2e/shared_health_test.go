package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// healthRow is one item of GET /admin/health.
type healthRow struct {
	Deployment string     `json:"deployment"`
	Provider   string     `json:"provider"`
	State      string     `json:"state"`
	Until      *time.Time `json:"until"`
	InFlight   int64      `json:"in_flight"`
	Headroom   *struct {
		Requests *struct {
			Limit     int64     `json:"limit"`
			Remaining int64     `json:"remaining"`
			Reset     time.Time `json:"reset"`
		} `json:"requests"`
		ExhaustedUntil *time.Time `json:"exhausted_until"`
	} `json:"headroom"`
}

// health returns g's GET /admin/health rows by provider name.
func (g *gateway) health(t *testing.T) map[string]healthRow {
	t.Helper()
	var out struct {
		Items []healthRow `json:"items"`
	}
	g.adminOK(t, http.MethodGet, "/admin/health", nil, &out)
	m := map[string]healthRow{}
	for _, r := range out.Items {
		m[r.Provider] = r
	}
	return m
}

// sharedCluster is n gateways on one private Redis and one PostgreSQL
// schema, with the model "m" on two mocks: "hot" first (priority 0) and
// "spare" after it. hotHeaders are the hot provider's static X-Mock-*
// headers; hotLimits the limits declared on its deployment.
type sharedCluster struct {
	gws        []*gateway
	hot, spare *mockLLM
	key        string
}

func newSharedCluster(t *testing.T, n int, hotHeaders map[string]string, hotLimits map[string]any) *sharedCluster {
	t.Helper()
	addr := freeAddr(t)
	startPrivateRedis(t, addr)
	sc := &sharedCluster{hot: startMock(t), spare: startMock(t)}
	shared := gwOptions{DatabaseURL: freshPostgres(t), RedisURL: "redis://" + addr + "/0", AdminKey: randHex(t, 32),
		Env: []string{"SLUICE_ENCRYPTION_KEY=" + randHex(t, 32), "SLUICE_ACCESS_LOG=off"}}
	for range n {
		sc.gws = append(sc.gws, startGateway(t, shared))
	}
	a := sc.gws[0]
	a.addProvider(t, provider{Name: "hot", BaseURL: sc.hot.URL + "/v1", APIKey: "sk-upstream-" + randHex(t, 8), Headers: hotHeaders})
	a.addProvider(t, provider{Name: "spare", BaseURL: sc.spare.URL + "/v1", APIKey: "sk-upstream-" + randHex(t, 8)})
	hot := map[string]any{"provider": "hot", "model": "m", "priority": 0}
	for k, v := range hotLimits {
		hot[k] = v
	}
	a.adminOK(t, http.MethodPost, "/admin/models", map[string]any{"name": "m", "strategy": "priority", "deployments": []any{
		hot, map[string]any{"provider": "spare", "model": "m", "priority": 1}}}, nil)
	sc.key = a.addKey(t, "shared", nil).Key
	for _, g := range sc.gws {
		g.waitKeyUsable(t, sc.key)
	}
	return sc
}

// chat sends one request through g; it must succeed.
func (sc *sharedCluster) chat(t *testing.T, g *gateway) {
	t.Helper()
	if _, err := g.client(sc.key).Chat.Completions.New(testCtx(t, 30*time.Second), chatParams("m", "hello")); err != nil {
		t.Fatalf("chat via %s: %s", g.Proxy, describe(err))
	}
}

// idle checks that every replica and both mocks are back to nothing in
// flight.
func (sc *sharedCluster) idle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		busy := ""
		for i, g := range sc.gws {
			for p, r := range g.health(t) {
				if r.InFlight != 0 {
					busy += " replica " + string(rune('0'+i)) + " " + p
				}
			}
		}
		if s := sc.hot.stats(t); s.InFlight != 0 {
			busy += " hot mock"
		}
		if s := sc.spare.stats(t); s.InFlight != 0 {
			busy += " spare mock"
		}
		if busy == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still in flight after the test:%s", busy)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCooldownSharedAcrossReplicas (issue 7): the hot deployment answers
// 429 with Retry-After: 30 to the one request replica 0 sends it; every
// replica then shows it cooling until about that time, and requests on
// the other replicas go to the spare deployment without ever contacting
// the hot one.
func TestCooldownSharedAcrossReplicas(t *testing.T) {
	t.Parallel()
	sc := newSharedCluster(t, 3, map[string]string{"X-Mock-Status": "429", "X-Mock-Retry-After": "30"}, nil)
	sent := time.Now()
	sc.chat(t, sc.gws[0]) // 429 on hot, then served by spare
	want := sent.Add(30 * time.Second)
	if n := sc.hot.stats(t).Requests; n != 1 {
		t.Fatalf("hot mock got %d requests, want 1", n)
	}
	for i, g := range sc.gws {
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := g.health(t)["hot"]
			if r.State == "cooling" && r.Until != nil {
				if d := r.Until.Sub(want); d < -3*time.Second || d > 3*time.Second {
					t.Fatalf("replica %d: cooling until %v, want ≈ %v", i, r.Until, want)
				}
				t.Logf("replica %d: hot cooling until %v (%.1fs after the request)", i, r.Until.Format(time.RFC3339Nano), r.Until.Sub(sent).Seconds())
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d: hot is %+v, want cooling within 5s", i, r)
			}
			time.Sleep(25 * time.Millisecond)
		}
		if s := g.health(t)["spare"].State; s != "healthy" {
			t.Fatalf("replica %d: spare is %s", i, s)
		}
	}
	for _, g := range sc.gws[1:] {
		for range 5 {
			sc.chat(t, g)
		}
	}
	if n := sc.hot.stats(t).Requests; n != 1 {
		t.Fatalf("hot mock got %d requests, want still 1: a replica contacted the cooled deployment", n)
	}
	if n := sc.spare.stats(t).Requests; n != 11 {
		t.Fatalf("spare mock got %d requests, want 11", n)
	}
	// The gauges say the same on another replica.
	m := sc.gws[2].metrics(t)
	if !strings.Contains(m, `sluice_deployment_state{deployment=`) || !cooling(m, "hot") {
		t.Fatalf("replica 2 metrics do not show hot cooling")
	}
	if v := metricValue(m, `sluice_health_sync_events_total{result="applied"}`); v < 1 {
		t.Fatalf("replica 2 applied %v shared transitions, want ≥ 1", v)
	}
	if v := metricValue(sc.gws[0].metrics(t), `sluice_health_sync_events_total{result="published"}`); v < 1 {
		t.Fatalf("replica 0 published %v transitions, want ≥ 1", v)
	}
	sc.idle(t)
}

// cooling reports whether the metrics text has provider p's deployment
// in state cooling.
func cooling(metrics, p string) bool {
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "sluice_deployment_state{") && strings.Contains(l, `provider="`+p+`"`) &&
			strings.Contains(l, `state="cooling"`) && strings.HasSuffix(l, " 1") {
			return true
		}
	}
	return false
}

// TestHeadroomRoutesAway (issue 7): the hot deployment declares rpm 2 (its
// provider account's limit). After two requests on replica 0 its bucket
// is empty: replica 0 sends the next ones to the spare without trying
// the hot one, replica 1 (which never sent it anything; its
// /admin/health reads the shared counters) skips it too, and the
// provider never sees a third request. /admin/health and the gauges show
// the headroom.
func TestHeadroomRoutesAway(t *testing.T) {
	t.Parallel()
	sc := newSharedCluster(t, 2, nil, map[string]any{"rpm": 2})
	a, b := sc.gws[0], sc.gws[1]
	sc.chat(t, a)
	sc.chat(t, a)
	if n := sc.hot.stats(t).Requests; n != 2 {
		t.Fatalf("hot got %d requests, want 2", n)
	}
	r := a.health(t)["hot"]
	if r.Headroom == nil || r.Headroom.Requests == nil || r.Headroom.Requests.Limit != 2 || r.Headroom.Requests.Remaining != 0 || r.Headroom.ExhaustedUntil == nil {
		raw, _ := json.Marshal(r)
		t.Fatalf("replica 0 headroom: %s", raw)
	}
	if r.State != "healthy" {
		t.Fatalf("an empty account is not a health state: %s", r.State)
	}
	// Replica 1 has not sent anything yet: its health list reads the
	// shared counters.
	if rb := b.health(t)["hot"]; rb.Headroom == nil || rb.Headroom.Requests == nil || rb.Headroom.Requests.Remaining != 0 {
		raw, _ := json.Marshal(rb)
		t.Fatalf("replica 1 headroom before any request: %s", raw)
	}
	for range 3 {
		sc.chat(t, a)
		sc.chat(t, b)
	}
	if n := sc.hot.stats(t).Requests; n != 2 {
		t.Fatalf("hot got %d requests, want still 2", n)
	}
	if n := sc.spare.stats(t).Requests; n != 6 {
		t.Fatalf("spare got %d requests, want 6", n)
	}
	if v := metricValue(a.metrics(t), `sluice_deployment_headroom_requests{deployment="`+r.Deployment+`",model="m",provider="hot"}`); v != 0 {
		t.Fatalf("sluice_deployment_headroom_requests = %v, want 0", v)
	}
	sc.idle(t)
}
