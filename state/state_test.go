package state

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/balancer"
	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/providers"
)

// snapshot builds a configuration: providers by name with their revision,
// and model "m" with one deployment per provider (id "dep_<provider>").
func snapshot(baseURL string, revs map[string]int64) *llm.Snapshot {
	snap := llm.EmptySnapshot()
	m := &llm.Model{ID: "mod_m", Name: "m"}
	for name, rev := range revs {
		snap.Providers[name] = &llm.Provider{ID: "prov_" + name, Name: name, Type: llm.ProviderOpenAICompatible, BaseURL: baseURL, APIKey: "sk-x", Revision: rev}
		m.Deployments = append(m.Deployments, llm.Deployment{ID: "dep_" + name, Provider: name, Model: "up"})
	}
	snap.Models["m"] = m
	return snap
}

func dep(snap *llm.Snapshot, id string) *llm.Deployment {
	for _, m := range snap.Models {
		for i := range m.Deployments {
			if m.Deployments[i].ID == id {
				return &m.Deployments[i]
			}
		}
	}
	return nil
}

func mustGet(t *testing.T, st *State, name string) providers.Provider {
	t.Helper()
	p, ok := st.Providers.Get(name)
	if !ok {
		t.Fatalf("provider %s missing", name)
	}
	return p
}

func TestBuildReusesUnchangedAndRebuildsChanged(t *testing.T) {
	b := balancer.New(balancer.Options{})
	snap1 := snapshot("http://127.0.0.1:1/v1", map[string]int64{"a": 1, "b": 1, "c": 1})
	st1, retire, errs := Build(nil, snap1, Options{Balancer: b})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	retire()
	for _, id := range []string{"dep_a", "dep_b", "dep_c"} {
		b.Start(dep(snap1, id))(balancer.Outcome{Latency: time.Millisecond})
	}
	b.Start(dep(snap1, "dep_b"))(balancer.Outcome{Err: &llm.Error{Kind: llm.KindUpstream, UpstreamStatus: 401}})

	// b's key was changed (new revision), c deleted, d added.
	snap2 := snapshot("http://127.0.0.1:1/v1", map[string]int64{"a": 1, "b": 2, "d": 2})
	st2, retire, errs := Build(st1, snap2, Options{Balancer: b})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if mustGet(t, st2, "a") != mustGet(t, st1, "a") {
		t.Error("unchanged provider a was rebuilt")
	}
	if mustGet(t, st2, "b") == mustGet(t, st1, "b") {
		t.Error("changed provider b kept its old build")
	}
	if _, ok := st2.Providers.Get("c"); ok {
		t.Error("deleted provider c still served")
	}
	// Build alone changes nothing the old state's users see.
	if st := b.Status("dep_c"); st.Successes != 1 {
		t.Errorf("Build dropped dep_c's health before the swap: %+v", st)
	}
	if _, ok := st1.Providers.Get("c"); !ok {
		t.Error("Build changed the previous state")
	}
	retire()
	if st := b.Status("dep_a"); st.Successes != 1 || st.LatencyMS != 1 {
		t.Errorf("dep_a lost its health across the reload: %+v", st)
	}
	if st := b.Status("dep_b"); !st.Healthy || st.Successes != 1 {
		t.Errorf("dep_b: a new provider revision must revive the credential and keep the counts: %+v", st)
	}
	if st := b.Status("dep_c"); st.Successes != 0 {
		t.Errorf("dep_c's health was not pruned: %+v", st)
	}
}

// connCounter counts the connections an upstream opened and closed.
type connCounter struct {
	opened, closed atomic.Int64
	closedCh       chan struct{}
}

func upstream(t *testing.T) (*httptest.Server, *connCounter) {
	c := &connCounter{closedCh: make(chan struct{}, 16)}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[]}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			c.opened.Add(1)
		case http.StateClosed:
			c.closed.Add(1)
			c.closedCh <- struct{}{}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, c
}

func call(t *testing.T, p providers.Provider) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := p.Do(ctx, &providers.Call{Endpoint: llm.EndpointChat, Body: []byte(`{"model":"up"}`)})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func TestRetireClosesIdleConnectionsOfRemovedProviders(t *testing.T) {
	keep, keepConns := upstream(t)
	gone, goneConns := upstream(t)
	snap1 := llm.EmptySnapshot()
	snap1.Providers["keep"] = &llm.Provider{ID: "prov_keep", Name: "keep", Type: llm.ProviderOpenAICompatible, BaseURL: keep.URL, Revision: 1}
	snap1.Providers["gone"] = &llm.Provider{ID: "prov_gone", Name: "gone", Type: llm.ProviderOpenAICompatible, BaseURL: gone.URL, Revision: 1}
	st1, retire, _ := Build(nil, snap1, Options{})
	retire()
	call(t, mustGet(t, st1, "keep"))
	call(t, mustGet(t, st1, "gone"))

	snap2 := llm.EmptySnapshot()
	snap2.Providers["keep"] = snap1.Providers["keep"]
	st2, retire, _ := Build(st1, snap2, Options{})
	if goneConns.closed.Load() != 0 {
		t.Fatal("Build closed connections before the swap")
	}
	retire()
	select {
	case <-goneConns.closedCh:
	case <-time.After(5 * time.Second):
		t.Fatal("the removed provider's idle connection was not closed")
	}
	// The kept provider's warm connection carries the next call.
	call(t, mustGet(t, st2, "keep"))
	if n := keepConns.opened.Load(); n != 1 || keepConns.closed.Load() != 0 {
		t.Fatalf("kept provider: %d connections opened, %d closed; want its one pool kept", n, keepConns.closed.Load())
	}
}

// TestReloadUnderLoadKeepsInFlightAccounting swaps configurations while
// requests pick and finish attempts (run with -race): every attempt's end
// reaches the state it started on, the deployment present throughout keeps
// every count, and nothing stays in flight.
func TestReloadUnderLoadKeepsInFlightAccounting(t *testing.T) {
	b := balancer.New(balancer.Options{})
	var cur atomic.Pointer[State]
	st, retire, _ := Build(nil, snapshot("http://127.0.0.1:1/v1", map[string]int64{"stable": 1}), Options{Balancer: b})
	cur.Store(st)
	retire()

	stop := make(chan struct{})
	var attemptsOnStable atomic.Int64
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				st := cur.Load()
				p := b.Plan(st.Snapshot.Models["m"])
				for d := p.Next(); d != nil; d = p.Next() {
					done := b.Start(d)
					if d.ID == "dep_stable" {
						attemptsOnStable.Add(1)
					}
					time.Sleep(10 * time.Microsecond)
					done(balancer.Outcome{Latency: time.Millisecond})
				}
			}
		})
	}
	for i := range 200 {
		revs := map[string]int64{"stable": 1, fmt.Sprintf("p%d", i%5): int64(i), fmt.Sprintf("q%d", i%3): 1}
		next, retire, errs := Build(cur.Load(), snapshot("http://127.0.0.1:1/v1", revs), Options{Balancer: b})
		if len(errs) != 0 {
			t.Fatal(errs)
		}
		cur.Store(next)
		retire()
	}
	close(stop)
	wg.Wait()
	final := cur.Load().Snapshot
	for _, d := range final.Models["m"].Deployments {
		if n := b.Status(d.ID).InFlight; n != 0 {
			t.Errorf("%s: %d in flight after every attempt ended", d.ID, n)
		}
	}
	if st := b.Status("dep_stable"); st.Successes != attemptsOnStable.Load() || st.Successes == 0 {
		t.Errorf("dep_stable counted %d successes of %d attempts: state was lost across reloads", st.Successes, attemptsOnStable.Load())
	}
}
