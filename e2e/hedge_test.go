package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHedgeEndToEnd: a model with hedging whose preferred deployment is
// slow to its first token (every request waits 10 s more) is answered by
// the hedge on the other one after the configured delay; the slow attempt
// is cancelled at once (the mock sees its client leave), and the hedge is
// visible in the response headers, the request log and the metrics.
func TestHedgeEndToEnd(t *testing.T) {
	slow := startMock(t, "--ttft-tail", "1:10s")
	fast := startMock(t)
	g := startGateway(t, gwOptions{})
	g.addProvider(t, provider{Name: "slow", BaseURL: slow.URL + "/v1"})
	g.addProvider(t, provider{Name: "fast", BaseURL: fast.URL + "/v1"})
	g.adminOK(t, http.MethodPost, "/admin/models", map[string]any{"name": "hedged", "strategy": "priority",
		"hedge":       map[string]any{"enabled": true, "delay_ms": 50, "unsafe_tools": []string{"send_email"}},
		"deployments": []map[string]any{{"provider": "slow", "model": "m", "priority": 0}, {"provider": "fast", "model": "m", "priority": 1}}}, nil)
	key := g.addKey(t, "hedge", nil).Key
	g.waitKeyUsable(t, key)

	t0 := time.Now()
	req, _ := http.NewRequest(http.MethodPost, g.Proxy+"/v1/chat/completions",
		strings.NewReader(`{"model":"hedged","stream":true,"messages":[{"role":"user","content":"hello"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "[DONE]") {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Sluice-Hedged") != "true" || resp.Header.Get("X-Sluice-Provider") != "fast" || resp.Header.Get("X-Sluice-Attempts") != "2" {
		t.Fatalf("headers %v", resp.Header)
	}
	if d := time.Since(t0); d > 8*time.Second {
		t.Fatalf("answered after %v: the slow deployment's answer was awaited", d)
	}

	deadline := time.Now().Add(5 * time.Second)
	for slow.stats(t).Canceled != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the slow attempt was not cancelled: %+v", slow.stats(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(g.metrics(t), `sluice_hedges_total{model="hedged",outcome="won"} 1`) {
		t.Fatal("sluice_hedges_total won not counted")
	}
	for {
		_, data := g.adminDo(t, http.MethodGet, "/admin/requests?model=hedged", nil)
		var list struct {
			Items []struct {
				Provider string `json:"provider"`
				Attempts int    `json:"attempts"`
				Hedged   bool   `json:"hedged"`
				Status   string `json:"status"`
			} `json:"items"`
		}
		if err := json.Unmarshal(data, &list); err != nil {
			t.Fatalf("requests %s: %v", data, err)
		}
		if len(list.Items) == 1 {
			if it := list.Items[0]; !it.Hedged || it.Attempts != 2 || it.Provider != "fast" || it.Status != "ok" {
				t.Fatalf("request log %+v", it)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request logged: %s", data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
