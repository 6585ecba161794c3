package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkHedgeTTFT measures hedged first tokens against a deployment
// with a slow tail: the preferred deployment (priority 0) streams its
// first token after 50ms, except for 3% of requests that wait a second
// more; the other (priority 1) after 80ms, without a tail. Each variant
// starts its own gateway and mocks, warms the TTFT estimate up with 100
// requests, then sends b.N streamed requests from 4 clients and reports
// the client's time to first token (p50, p99, max) and the upstream
// requests beyond one per request (extra-upstream-%).
//
//	go test ./e2e -run '^$' -bench HedgeTTFT -benchtime 1000x
func BenchmarkHedgeTTFT(b *testing.B) {
	for _, v := range []struct {
		name  string
		hedge map[string]any
	}{
		{"off", nil},
		{"p95", map[string]any{"enabled": true}},
		{"delay100ms", map[string]any{"enabled": true, "delay_ms": 100}},
	} {
		b.Run(v.name, func(b *testing.B) {
			tailed := startMock(b, "--ttft", "50ms", "--chunks", "3", "--ttft-tail", "0.03:1s")
			steady := startMock(b, "--ttft", "80ms", "--chunks", "3")
			g := startGateway(b, gwOptions{})
			g.addProvider(b, provider{Name: "tailed", BaseURL: tailed.URL + "/v1"})
			g.addProvider(b, provider{Name: "steady", BaseURL: steady.URL + "/v1"})
			model := map[string]any{"name": "hedged", "strategy": "priority", "deployments": []map[string]any{
				{"provider": "tailed", "model": "m", "priority": 0},
				{"provider": "steady", "model": "m", "priority": 1},
			}}
			if v.hedge != nil {
				model["hedge"] = v.hedge
			}
			g.adminOK(b, http.MethodPost, "/admin/models", model, nil)
			key := g.addKey(b, "bench", nil).Key
			g.waitKeyUsable(b, key)
			client := &http.Client{Timeout: 30 * time.Second}
			drive(b, client, g.Proxy, key, 100) // warm-up: the p95 needs samples
			before := tailed.stats(b).Requests + steady.stats(b).Requests
			wonBefore, lostBefore := hedges(b, g, "won"), hedges(b, g, "lost")
			b.ResetTimer()
			ttfts := drive(b, client, g.Proxy, key, b.N)
			b.StopTimer()
			upstream := tailed.stats(b).Requests + steady.stats(b).Requests - before
			slices.Sort(ttfts)
			q := func(p float64) float64 {
				return float64(ttfts[min(len(ttfts)-1, int(p*float64(len(ttfts))))]) / float64(time.Millisecond)
			}
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(q(1), "max-ms")
			b.ReportMetric(100*float64(upstream-int64(b.N))/float64(b.N), "extra-upstream-%")
			b.ReportMetric(hedges(b, g, "won")-wonBefore, "hedges-won")
			b.ReportMetric(hedges(b, g, "lost")-lostBefore, "hedges-lost")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// drive sends n streamed chat requests from 4 clients and returns each
// one's time to its first content event.
func drive(b *testing.B, client *http.Client, proxy, key string, n int) []time.Duration {
	b.Helper()
	var mu sync.Mutex
	out := make([]time.Duration, 0, n)
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				d, err := firstToken(client, proxy, key)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				out = append(out, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return out
}

// firstToken sends one streamed request and returns the time to its first
// content event, reading the stream to its end.
func firstToken(client *http.Client, proxy, key string) (time.Duration, error) {
	req, _ := http.NewRequest(http.MethodPost, proxy+"/v1/chat/completions",
		strings.NewReader(`{"model":"hedged","stream":true,"messages":[{"role":"user","content":"hello there"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	var first time.Duration
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if first == 0 && strings.Contains(sc.Text(), `"content":"`) && !strings.Contains(sc.Text(), `"content":""`) {
			first = time.Since(t0)
		}
	}
	if first == 0 {
		return 0, fmt.Errorf("no content event (%v)", sc.Err())
	}
	return first, sc.Err()
}

// hedges reads the gateway's count of hedges with outcome.
func hedges(b *testing.B, g *gateway, outcome string) float64 {
	re := regexp.MustCompile(`(?m)^sluice_hedges_total\{model="hedged",outcome="` + outcome + `"\} (\S+)$`)
	m := re.FindStringSubmatch(g.metrics(b))
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}
