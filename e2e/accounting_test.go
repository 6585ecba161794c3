package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// proxyPost sends a chat request with key and extra headers and returns the
// response (body read and closed).
func (g *gateway) proxyPost(t testing.TB, key, body string, h map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.Proxy+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/chat/completions: %v", err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.WriteString(string(buf[:n]))
		if err != nil {
			break
		}
	}
	return resp, []byte(b.String())
}

// requestLog returns GET /admin/requests?query (items and total).
func (g *gateway) requestLog(t testing.TB, q url.Values) ([]map[string]any, int) {
	t.Helper()
	code, data := g.adminDo(t, http.MethodGet, "/admin/requests?"+q.Encode(), nil)
	if code != http.StatusOK {
		t.Fatalf("GET /admin/requests?%s: status %d: %s", q.Encode(), code, data)
	}
	var env struct {
		Items []map[string]any `json:"items"`
		Total int              `json:"total"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("GET /admin/requests: decode %s: %v", data, err)
	}
	return env.Items, env.Total
}

// metricValue returns the value of the unlabelled sample name in text, or -1.
func metricValue(text, name string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}

// TestClientRequestIDCannotEraseUsage is the regression test of issue 5,
// item 1: a client-chosen X-Request-Id keyed the usage row, so ten requests
// with one id left one row (and a second key reusing the id none at all)
// while the written metric counted ten. Now every request has its own row
// under a gateway id; the client's id is echoed and filterable.
func TestClientRequestIDCannotEraseUsage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gwOptions{})
	g := f.gw
	other := g.addKey(t, "other tenant", nil)
	const n = 10
	clientID := "job-" + randHex(t, 6)
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"count me"}]}`
	gatewayIDs := map[string]bool{}
	for i := range 2 * n {
		key := f.key.Key
		if i >= n {
			key = other.Key
		}
		resp, b := g.proxyPost(t, key, body, map[string]string{"X-Request-Id": clientID})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d: %s", i, resp.StatusCode, b)
		}
		if got := resp.Header.Get("X-Request-Id"); got != clientID {
			t.Errorf("request %d: X-Request-Id = %q, want the client's %q", i, got, clientID)
		}
		gid := resp.Header.Get("X-Sluice-Request-Id")
		if gid == "" || gid == clientID || gatewayIDs[gid] {
			t.Fatalf("request %d: X-Sluice-Request-Id = %q: want a fresh gateway id", i, gid)
		}
		gatewayIDs[gid] = true
	}

	// Every request has its own row, under the gateway's id.
	deadline := time.Now().Add(4 * time.Second)
	var rows []usageRecord
	for {
		rows = rows[:0]
		for _, r := range g.sqliteUsage(t) {
			if r.ClientRequestID == clientID {
				rows = append(rows, r)
			}
		}
		if len(rows) >= 2*n || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(rows) != 2*n {
		t.Fatalf("usage rows with X-Request-Id %s: %d, want %d", clientID, len(rows), 2*n)
	}
	for _, r := range rows {
		if !gatewayIDs[r.RequestID] {
			t.Errorf("row keyed %q, not one of the gateway ids sent back", r.RequestID)
		}
	}
	for key, want := range map[string]int{f.key.ID: n, other.ID: n} {
		_, total := g.requestLog(t, url.Values{"client_request_id": {clientID}, "key": {key}})
		if total != want {
			t.Errorf("/admin/requests?client_request_id&key=%s: total %d, want %d", key, total, want)
		}
	}
	items, total := g.requestLog(t, url.Values{"client_request_id": {clientID}, "page_size": {"100"}})
	if total != 2*n || len(items) != 2*n {
		t.Fatalf("/admin/requests?client_request_id: total %d, %d items, want %d", total, len(items), 2*n)
	}
	for _, it := range items {
		if it["client_request_id"] != clientID || !gatewayIDs[it["request_id"].(string)] {
			t.Fatalf("request log row: %v", it)
		}
	}

	// The written metric counts rows actually inserted; nothing conflicted.
	text := g.metrics(t)
	if got := metricValue(text, "sluice_usage_records_written_total"); got != 2*n {
		t.Errorf("sluice_usage_records_written_total = %v, want %d", got, 2*n)
	}
	if got := metricValue(text, "sluice_usage_records_conflicts_total"); got != 0 {
		t.Errorf("sluice_usage_records_conflicts_total = %v, want 0", got)
	}
}
