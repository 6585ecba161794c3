package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/store"
)

// seedRequests stores five records in the last hour and one two days ago.
func seedRequests(t *testing.T, s *store.Store, now time.Time) {
	t.Helper()
	rec := func(id string, ago time.Duration, key, model, prov, status string, lat time.Duration, stream bool) llm.Record {
		r := llm.Record{ID: id, Time: now.Add(-ago), KeyID: key, KeyPrefix: "sk-sluice-" + key, Endpoint: llm.EndpointChat,
			Model: model, Provider: prov, Deployment: prov + "/" + model, CostMicros: 1000,
			Latency: lat, HTTPStatus: 200, Status: status, Stream: stream, Usage: llm.Usage{PromptTokens: 10, CompletionTokens: 4}}
		if stream {
			r.TTFT = lat / 4
		}
		if status == llm.StatusError {
			r.HTTPStatus, r.ErrorType = 502, "upstream_error"
		}
		return r
	}
	recs := []llm.Record{
		rec("a", 50*time.Minute, "k1", "fast", "p1", llm.StatusOK, 100*time.Millisecond, true),
		rec("b", 40*time.Minute, "k2", "fast", "p2", llm.StatusError, 200*time.Millisecond, false),
		rec("c", 30*time.Minute, "k1", "slow", "p1", llm.StatusStreamBroken, 300*time.Millisecond, true),
		rec("d", 20*time.Minute, "k1", "fast", "p1", llm.StatusClientCancelled, 400*time.Millisecond, false),
		rec("e", 10*time.Minute, "k2", "fast", "p1", llm.StatusOK, 500*time.Millisecond, true),
		rec("old", 48*time.Hour, "k1", "fast", "p1", llm.StatusOK, 9*time.Second, true),
	}
	// Two clients reuse one X-Request-Id; each request keeps its own row.
	recs[0].ClientRequestID, recs[1].ClientRequestID, recs[4].ClientRequestID = "job-7", "job-7", "job-8"
	if _, err := s.InsertUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

func TestRequestsAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, nil)
		now := time.Now().UTC()
		seedRequests(t, h.store, now)
		type page struct {
			Items    []map[string]any `json:"items"`
			Total    int              `json:"total"`
			Page     int              `json:"page"`
			PageSize int              `json:"page_size"`
		}
		ids := func(p page) string {
			var out []string
			for _, it := range p.Items {
				out = append(out, fmt.Sprint(it["request_id"]))
			}
			return strings.Join(out, ",")
		}
		old := fmt.Sprint(now.Add(-72 * time.Hour).Unix())
		tests := []struct {
			query, want string
			total       int
		}{
			{"", "e,d,c,b,a", 5},
			{"?page_size=2", "e,d", 5},
			{"?page_size=2&page=3", "a", 5},
			{"?page_size=2&page=9", "", 5},
			{"?key=k2", "e,b", 2},
			{"?model=slow", "c", 1},
			{"?provider=p2", "b", 1},
			{"?status=ok", "e,a", 2},
			{"?status=error", "b", 1},
			{"?status=client_cancelled", "d", 1},
			{"?status=stream_broken", "c", 1},
			{"?status=", "e,d,c,b,a", 5},
			{"?from=" + old, "e,d,c,b,a,old", 6},
			{"?from=" + old + "&to=" + now.Add(-24*time.Hour).Format(time.RFC3339), "old", 1},
			{"?key=k1&model=fast&status=ok&from=" + old, "a,old", 2},
			{"?client_request_id=job-7", "b,a", 2},
			{"?client_request_id=job-8", "e", 1},
			{"?client_request_id=job-9", "", 0},
			{"?client_request_id=job-7&key=k2", "b", 1},
		}
		for _, tt := range tests {
			var got page
			h.expect(h.do("GET", "/admin/requests"+tt.query, ""), http.StatusOK, &got)
			if ids(got) != tt.want || got.Total != tt.total || got.Items == nil {
				t.Fatalf("%s: got %q total %d, want %q total %d", tt.query, ids(got), got.Total, tt.want, tt.total)
			}
		}
		var got page
		h.expect(h.do("GET", "/admin/requests?page_size=1&page=2", ""), http.StatusOK, &got)
		if got.Page != 2 || got.PageSize != 1 || len(got.Items) != 1 {
			t.Fatalf("envelope: %+v", got)
		}
		// Every column, snake_case, time in RFC3339 UTC.
		it := got.Items[0]
		wantKeys := []string{"request_id", "client_request_id", "time", "principal_id", "principal_kind", "owner", "key_id", "key_prefix",
			"endpoint", "model", "provider", "deployment", "upstream_model",
			"prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens", "cost", "cost_micros",
			"latency_ms", "ttft_ms", "http_status", "upstream_status", "status", "error_type", "stream", "estimated", "clamped", "attempts", "hedged"}
		if len(it) != len(wantKeys) {
			t.Fatalf("fields: %v", it)
		}
		for _, k := range wantKeys {
			if _, ok := it[k]; !ok {
				t.Fatalf("missing %s in %v", k, it)
			}
		}
		ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(it["time"]))
		if err != nil || !strings.HasSuffix(fmt.Sprint(it["time"]), "Z") || ts.Sub(now.Add(-20*time.Minute)).Abs() > time.Millisecond {
			t.Fatalf("time %v: %v", it["time"], err)
		}
		if it["request_id"] != "d" || it["status"] != "client_cancelled" || it["latency_ms"] != 400.0 || it["stream"] != false ||
			it["key_prefix"] != "sk-sluice-k1" || it["http_status"] != 200.0 {
			t.Fatalf("row: %v", it)
		}

		for _, q := range []struct{ query, param string }{
			{"?status=failed", "status"},
			{"?status=OK", "status"},
			{"?page=x", "page"},
			{"?page_size=-1", "page_size"},
			{"?from=yesterday", "from"},
			{"?to=soon", "to"},
			{"?from=" + fmt.Sprint(now.Unix()) + "&to=" + old, "from"},
		} {
			h.expectError(h.do("GET", "/admin/requests"+q.query, ""), http.StatusBadRequest, q.param)
		}
	})
}

func TestUsageSummaryAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, nil)
		now := time.Now().UTC()
		seedRequests(t, h.store, now)
		type summary struct {
			Requests     int64    `json:"requests"`
			LatencyP50   *float64 `json:"latency_p50_ms"`
			LatencyP95   *float64 `json:"latency_p95_ms"`
			LatencyP99   *float64 `json:"latency_p99_ms"`
			TTFTRequests int64    `json:"ttft_requests"`
			TTFTP50      *float64 `json:"ttft_p50_ms"`
			TTFTP95      *float64 `json:"ttft_p95_ms"`
			From, To     time.Time
		}
		var got summary
		h.expect(h.do("GET", "/admin/usage/summary", ""), http.StatusOK, &got)
		// Latencies 100..500 ms: p50 300, p95 480, p99 496; TTFT of the
		// streamed ones (25, 75, 125): p50 75, p95 120.
		eq := func(name string, v *float64, want float64) {
			t.Helper()
			if v == nil || *v < want-1e-9 || *v > want+1e-9 {
				t.Fatalf("%s = %v, want %v", name, v, want)
			}
		}
		if got.Requests != 5 || got.TTFTRequests != 3 || got.To.Sub(now) > time.Minute || got.To.Sub(got.From) != 24*time.Hour {
			t.Fatalf("summary: %+v", got)
		}
		eq("p50", got.LatencyP50, 300)
		eq("p95", got.LatencyP95, 480)
		eq("p99", got.LatencyP99, 496)
		eq("ttft p50", got.TTFTP50, 75)
		eq("ttft p95", got.TTFTP95, 120)

		h.expect(h.do("GET", "/admin/usage/summary?key=k2&model=fast", ""), http.StatusOK, &got)
		if got.Requests != 2 || got.TTFTRequests != 1 {
			t.Fatalf("k2: %+v", got)
		}
		eq("k2 p50", got.LatencyP50, 350)
		eq("k2 ttft p95", got.TTFTP95, 125)

		// No streamed record: TTFT is null; nothing at all: every value is null.
		w := h.do("GET", "/admin/usage/summary?key=k2&model=fast&to="+fmt.Sprint(now.Add(-30*time.Minute).Unix()), "")
		h.expect(w, http.StatusOK, &got)
		if got.Requests != 1 || !strings.Contains(w.Body.String(), `"ttft_p50_ms":null,"ttft_p95_ms":null`) {
			t.Fatalf("no ttft: %s", w.Body)
		}
		w = h.do("GET", "/admin/usage/summary?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z", "")
		h.expect(w, http.StatusOK, nil)
		if !strings.HasPrefix(w.Body.String(), `{"requests":0,"latency_p50_ms":null,"latency_p95_ms":null,"latency_p99_ms":null,"ttft_requests":0,"ttft_p50_ms":null,"ttft_p95_ms":null,"from":"2020-01-01T00:00:00Z"`) {
			t.Fatalf("empty: %s", w.Body)
		}

		h.expect(h.do("GET", "/admin/usage/summary?from="+fmt.Sprint(now.Add(-72*time.Hour).Unix()), ""), http.StatusOK, &got)
		if got.Requests != 6 {
			t.Fatalf("3 days: %+v", got)
		}
		for _, q := range []struct{ query, param string }{
			{"?from=yesterday", "from"},
			{"?to=2026-13-01T00:00:00Z", "to"},
			{"?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "from"},
		} {
			h.expectError(h.do("GET", "/admin/usage/summary"+q.query, ""), http.StatusBadRequest, q.param)
		}
	})
}

// TestRequestLogRoutesNeedAuth checks the new routes explicitly (the route
// walk in TestAuthMatrix covers them too).
func TestRequestLogRoutesNeedAuth(t *testing.T) {
	h := newHarness(t, store.DialectSQLite, nil)
	for _, p := range []string{"/admin/requests", "/admin/requests?status=bad", "/admin/usage/summary"} {
		for _, hdr := range []map[string]string{nil, {"X-API-KEY": "wrong"}, {"Authorization": "Bearer " + strings.ToUpper(testAdminKey)}} {
			if w := h.doHeaders("GET", p, "", hdr); w.Code != http.StatusUnauthorized || w.Body.String() != unauthorizedBody {
				t.Fatalf("%s with %v = %d %s", p, hdr, w.Code, w.Body)
			}
		}
		if w := h.do("GET", p, ""); w.Code == http.StatusUnauthorized {
			t.Fatalf("%s with the key = 401", p)
		}
	}
}
