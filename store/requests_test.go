package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// requestFixture returns 7 records: r6 and r5 share a timestamp, r0 is
// outside the default test window.
func requestFixture(base time.Time) []llm.Record {
	rec := func(id string, off time.Duration, key, model, prov, status string, http int) llm.Record {
		return llm.Record{ID: id, Time: base.Add(off), KeyID: key, KeyPrefix: "sk-" + key, Endpoint: llm.EndpointChat,
			Model: model, Provider: prov, Deployment: prov + "/" + model,
			Latency: 100 * time.Millisecond, HTTPStatus: http, Status: status, Usage: llm.Usage{PromptTokens: 10, CompletionTokens: 5}}
	}
	return []llm.Record{
		rec("r0", -2*time.Hour, "k1", "fast", "a", llm.StatusOK, 200),
		rec("r1", 1*time.Minute, "k1", "fast", "a", llm.StatusOK, 200),
		rec("r2", 2*time.Minute, "k2", "slow", "b", llm.StatusError, 502),
		rec("r3", 3*time.Minute, "k1", "slow", "a", llm.StatusClientCancelled, 499),
		rec("r4", 4*time.Minute, "k2", "fast", "a", llm.StatusStreamBroken, 200),
		rec("r5", 5*time.Minute, "k1", "fast", "b", llm.StatusOK, 200),
		rec("r6", 5*time.Minute, "k2", "fast", "a", llm.StatusError, 500),
	}
}

func TestListRequests(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		recs := requestFixture(base)
		// Every column round-trips, including sub-millisecond latencies.
		full := llm.Record{ID: "full", ClientRequestID: "client-1", Time: base.Add(30*time.Minute + 123*time.Millisecond),
			PrincipalID: "key_x", PrincipalKind: llm.PrincipalKey, Owner: "team-a", KeyID: "key_x", KeyPrefix: "sk-sluice-Xy",
			Endpoint: llm.EndpointEmbeddings, Model: "embed", Provider: "openai", Deployment: "dep_1", UpstreamModel: "text-embedding-3-small",
			CostMicros: 125, Latency: 1500 * time.Microsecond, TTFT: 250 * time.Microsecond, HTTPStatus: 200, UpstreamStatus: 201,
			Status: llm.StatusOK, ErrorType: "none", Stream: true,
			Usage: llm.Usage{PromptTokens: 1234, CompletionTokens: 56, CacheReadTokens: 7, CacheWriteTokens: 8, ReasoningTokens: 9, Estimated: true, Clamped: true}}
		if _, err := s.InsertUsage(ctx, append(recs, full)); err != nil {
			t.Fatal(err)
		}
		window := RequestQuery{From: base, To: base.Add(time.Hour)}
		ids := func(rows []RequestRow) []string {
			out := []string{}
			for _, r := range rows {
				out = append(out, r.RequestID)
			}
			return out
		}
		tests := []struct {
			name  string
			mod   func(*RequestQuery)
			want  []string
			total int
		}{
			{"all", nil, []string{"full", "r6", "r5", "r4", "r3", "r2", "r1"}, 7},
			{"page 1", func(q *RequestQuery) { q.Page = Page{Page: 1, PageSize: 3} }, []string{"full", "r6", "r5"}, 7},
			{"page 2", func(q *RequestQuery) { q.Page = Page{Page: 2, PageSize: 3} }, []string{"r4", "r3", "r2"}, 7},
			{"page 3", func(q *RequestQuery) { q.Page = Page{Page: 3, PageSize: 3} }, []string{"r1"}, 7},
			{"past the end", func(q *RequestQuery) { q.Page = Page{Page: 4, PageSize: 3} }, []string{}, 7},
			{"key", func(q *RequestQuery) { q.KeyID = "k2" }, []string{"r6", "r4", "r2"}, 3},
			{"model", func(q *RequestQuery) { q.Model = "slow" }, []string{"r3", "r2"}, 2},
			{"provider", func(q *RequestQuery) { q.Provider = "b" }, []string{"r5", "r2"}, 2},
			{"status ok", func(q *RequestQuery) { q.Status = llm.StatusOK }, []string{"full", "r5", "r1"}, 3},
			{"status error", func(q *RequestQuery) { q.Status = llm.StatusError }, []string{"r6", "r2"}, 2},
			{"status client_cancelled", func(q *RequestQuery) { q.Status = llm.StatusClientCancelled }, []string{"r3"}, 1},
			{"status stream_broken", func(q *RequestQuery) { q.Status = llm.StatusStreamBroken }, []string{"r4"}, 1},
			{"combined", func(q *RequestQuery) { q.KeyID, q.Model, q.Provider, q.Status = "k1", "fast", "a", llm.StatusOK }, []string{"r1"}, 1},
			{"no match", func(q *RequestQuery) { q.Model = "nope" }, []string{}, 0},
			{"client request id", func(q *RequestQuery) { q.ClientRequestID = "client-1" }, []string{"full"}, 1},
			{"client request id no match", func(q *RequestQuery) { q.ClientRequestID = "client-2" }, []string{}, 0},
			// From is inclusive, To exclusive.
			{"bounds", func(q *RequestQuery) { q.From, q.To = base.Add(2*time.Minute), base.Add(5*time.Minute) }, []string{"r4", "r3", "r2"}, 3},
			{"wider", func(q *RequestQuery) { q.From = base.Add(-3 * time.Hour) }, []string{"full", "r6", "r5", "r4", "r3", "r2", "r1", "r0"}, 8},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				q := window
				if tt.mod != nil {
					tt.mod(&q)
				}
				rows, total, err := s.ListRequests(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(rows); !slices.Equal(got, tt.want) || total != tt.total {
					t.Fatalf("got %v total %d, want %v total %d", got, total, tt.want, tt.total)
				}
			})
		}

		rows, _, err := s.ListRequests(ctx, RequestQuery{From: base, To: base.Add(time.Hour), Page: Page{PageSize: 1}})
		if err != nil || len(rows) != 1 {
			t.Fatalf("%v %v", rows, err)
		}
		want := RequestRow{RequestID: "full", ClientRequestID: "client-1", Time: full.Time, PrincipalID: "key_x", PrincipalKind: "key", Owner: "team-a",
			KeyID: "key_x", KeyPrefix: "sk-sluice-Xy", Endpoint: string(llm.EndpointEmbeddings),
			Model: "embed", Provider: "openai", Deployment: "dep_1", UpstreamModel: "text-embedding-3-small", PromptTokens: 1234, CompletionTokens: 56,
			CachedTokens: 7, CacheWriteTokens: 8, ReasoningTokens: 9, Cost: 0.000125, CostMicros: 125, LatencyMS: 1.5, TTFTMS: 0.25,
			HTTPStatus: 200, UpstreamStatus: 201, Status: llm.StatusOK, ErrorType: "none", Stream: true, Estimated: true, Clamped: true}
		if got := rows[0]; got != want || got.Time.Location() != time.UTC {
			t.Fatalf("row = %+v\nwant  %+v", got, want)
		}
		if rows, _, err := s.ListRequests(ctx, RequestQuery{From: base, To: base.Add(time.Hour), Status: llm.StatusError}); err != nil ||
			rows[0].Stream || rows[0].Estimated || rows[0].HTTPStatus != 500 {
			t.Fatalf("bools: %+v %v", rows, err)
		}

		// The default window is the last 24 hours: nothing here.
		if rows, total, err := s.ListRequests(ctx, RequestQuery{}); err != nil || len(rows) != 0 || total != 0 {
			t.Fatalf("default window: %v %d %v", rows, total, err)
		}
		for _, q := range []RequestQuery{
			{Status: "failed"}, {Status: "OK"}, {Status: "ok' OR '1'='1"},
		} {
			_, _, err := s.ListRequests(ctx, q)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != "status" {
				t.Fatalf("status %q: %v", q.Status, err)
			}
		}
		_, _, err = s.ListRequests(ctx, RequestQuery{From: base.Add(time.Hour), To: base})
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != "from" {
			t.Fatalf("from after to: %v", err)
		}
		// Filter values are bound, never spliced into the SQL.
		if rows, total, err := s.ListRequests(ctx, RequestQuery{From: base, To: base.Add(time.Hour), Model: "fast' OR '1'='1"}); err != nil || total != 0 || len(rows) != 0 {
			t.Fatalf("injection: %v %d %v", rows, total, err)
		}
	})
}

func TestListRequestsPageSizeCap(t *testing.T) {
	s := openTest(t, Options{DataDir: t.TempDir(), EncryptionKey: testEncKey})
	ctx := context.Background()
	recs := benchRecords(0, MaxPageSize+20)
	for i := range recs {
		recs[i].Time = recs[i].Time.Add(-time.Duration(i) * time.Millisecond)
	}
	if _, err := s.InsertUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	rows, total, err := s.ListRequests(ctx, RequestQuery{Page: Page{PageSize: 10_000}})
	if err != nil || len(rows) != MaxPageSize || total != MaxPageSize+20 {
		t.Fatalf("%d rows, total %d, %v", len(rows), total, err)
	}
	if rows[0].RequestID != "req-0" || rows[1].RequestID != "req-1" {
		t.Fatalf("order: %s %s", rows[0].RequestID, rows[1].RequestID)
	}
	rows, _, err = s.ListRequests(ctx, RequestQuery{Page: Page{Page: 2, PageSize: MaxPageSize}})
	if err != nil || len(rows) != 20 || rows[19].RequestID != fmt.Sprintf("req-%d", MaxPageSize+19) {
		t.Fatalf("page 2: %d rows, %v", len(rows), err)
	}
}
