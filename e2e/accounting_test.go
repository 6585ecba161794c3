package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	var other createdKey
	g.adminOK(t, http.MethodPost, "/admin/keys", map[string]any{"name": "other tenant", "owner": "team-b"}, &other)
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

	// Every row carries its principal; the owner groups usage.
	for _, it := range items {
		if it["principal_kind"] != "key" || (it["principal_id"] != f.key.ID && it["principal_id"] != other.ID) ||
			(it["principal_id"] == other.ID) != (it["owner"] == "team-b") || it["upstream_model"] != "gpt-4o-mini" {
			t.Fatalf("request log principal: %v", it)
		}
	}
	if r := g.waitUsage(t, "owner", "team-b", func(r usageRow) bool { return r.Requests >= n }); r.Requests != n {
		t.Errorf("group_by=owner: team-b requests = %d, want %d", r.Requests, n)
	}
	if r := g.waitUsage(t, "principal", "key:"+other.ID, func(r usageRow) bool { return r.Requests >= n }); r.Requests != n {
		t.Errorf("group_by=principal: requests = %d, want %d", r.Requests, n)
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

// hostileUsageUpstream answers every chat request with the absurd usage of
// issue 5, item 5, streamed or not.
func hostileUsageUpstream(t testing.TB) string {
	t.Helper()
	const usage = `{"prompt_tokens":-1000000,"completion_tokens":9223372036854775807,"total_tokens":-5,` +
		`"prompt_tokens_details":{"cached_tokens":99999999999},"completion_tokens_details":{"reasoning_tokens":-3}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Stream bool `json:"stream"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, `data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}`+"\n\n")
			fmt.Fprint(w, `data: {"id":"x","object":"chat.completion.chunk","choices":[],"usage":`+usage+"}\n\n")
			fmt.Fprint(w, "data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":`+usage+`}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestHostileUpstreamUsageIsClamped is the regression test of issue 5,
// item 5: an upstream reporting prompt_tokens −1,000,000 and
// completion_tokens 2⁶³−1 was stored as is (cost $9.2e12) and /admin/usage
// then failed with 500. The figures are now clamped and marked, and every
// usage view answers with bounded numbers, on SQLite and PostgreSQL.
func TestHostileUpstreamUsageIsClamped(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			o := gwOptions{}
			if db == "postgres" {
				o.DatabaseURL = freshPostgres(t)
			}
			g := startGateway(t, o)
			g.addProvider(t, provider{Name: "liar", BaseURL: hostileUsageUpstream(t) + "/v1", APIKey: "sk-upstream-" + randHex(t, 8)})
			// The most expensive prices the store accepts.
			g.adminOK(t, http.MethodPost, "/admin/models", map[string]any{"name": "liar", "deployments": []deployment{
				{Provider: "liar", Model: "liar", Weight: 1, InputPrice: 1e6, OutputPrice: 1e6}}}, nil)
			k := g.addKey(t, "victim", nil)
			bodies := []string{
				`{"model":"liar","messages":[{"role":"user","content":"hi"}]}`,
				`{"model":"liar","messages":[{"role":"user","content":"hi"}],"stream":true}`,
				`{"model":"liar","messages":[{"role":"user","content":"hi"}],"max_tokens":16,"n":2}`,
			}
			for _, b := range bodies {
				if resp, body := g.proxyPost(t, k.Key, b, nil); resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: status %d: %s", b, resp.StatusCode, body)
				}
			}
			var items []map[string]any
			deadline := time.Now().Add(4 * time.Second)
			for {
				items, _ = g.requestLog(t, url.Values{"model": {"liar"}})
				if len(items) >= len(bodies) || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if len(items) != len(bodies) {
				t.Fatalf("request log: %d rows, want %d", len(items), len(bodies))
			}
			// The max_tokens request is bounded by 16 × 2, the others by
			// the global bound.
			byCompletion := map[float64]int{}
			for i, it := range items {
				c, _ := it["completion_tokens"].(float64)
				byCompletion[c]++
				if it["clamped"] != true || it["prompt_tokens"] != 0.0 || it["cached_tokens"] != 0.0 || it["reasoning_tokens"] != 0.0 {
					t.Errorf("row %d: %v", i, it)
				}
				// 1e6 USD/M × completion tokens, in micro-USD.
				if it["cost_micros"] != c*1e6 {
					t.Errorf("row %d: cost_micros %v, want %v", i, it["cost_micros"], c*1e6)
				}
			}
			if byCompletion[32] != 1 || byCompletion[10_000_000] != 2 {
				t.Errorf("completion tokens: %v, want one 32 and two 10,000,000", byCompletion)
			}
			for _, by := range []string{"model", "day", "hour", "key", "provider"} {
				rows := g.usage(t, by)
				if len(rows) != 1 || rows[0].Requests != int64(len(bodies)) || rows[0].CompletionTokens != 20_000_032 || rows[0].PromptTokens != 0 {
					t.Errorf("/admin/usage?group_by=%s: %+v", by, rows)
				}
			}
			code, data := g.adminDo(t, http.MethodGet, "/admin/usage/summary", nil)
			if code != http.StatusOK {
				t.Errorf("/admin/usage/summary: %d %s", code, data)
			}
			if got := metricValue(g.metrics(t), "sluice_usage_records_clamped_total"); got != float64(len(bodies)) {
				t.Errorf("sluice_usage_records_clamped_total = %v, want %d", got, len(bodies))
			}
		})
	}
}
