package store

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// TestUsageGroupByPrincipal checks the accounting groupings: by deployment
// id, by owner and by principal, and the owner filter.
func TestUsageGroupByPrincipal(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		rec := func(id, key, owner, dep string, cost int64) llm.Record {
			return llm.Record{ID: id, Time: base, PrincipalID: key, PrincipalKind: llm.PrincipalKey, Owner: owner, KeyID: key,
				Model: "m", Provider: "p", Deployment: dep, Status: llm.StatusOK, HTTPStatus: 200, CostMicros: cost,
				Usage: llm.Usage{PromptTokens: 10, CompletionTokens: 4, CacheWriteTokens: 2, ReasoningTokens: 1}}
		}
		recs := []llm.Record{
			rec("1", "k1", "team-a", "dep_x", 100),
			rec("2", "k2", "team-a", "dep_y", 200),
			rec("3", "k3", "", "dep_x", 400),
		}
		legacy := rec("4", "", "", "dep_y", 0) // stored before principals
		legacy.PrincipalKind = ""
		recs = append(recs, legacy)
		if _, err := s.InsertUsage(ctx, recs); err != nil {
			t.Fatal(err)
		}
		type g struct {
			group string
			req   int64
			cost  int64
		}
		for _, tt := range []struct {
			by, owner string
			want      []g
		}{
			{GroupByOwner, "", []g{{"", 2, 400}, {"team-a", 2, 300}}},
			{GroupByPrincipal, "", []g{{"", 1, 0}, {"key:k1", 1, 100}, {"key:k2", 1, 200}, {"key:k3", 1, 400}}},
			{GroupByDeployment, "", []g{{"dep_x", 2, 500}, {"dep_y", 2, 200}}},
			{GroupByDeployment, "team-a", []g{{"dep_x", 1, 100}, {"dep_y", 1, 200}}},
		} {
			got, err := s.QueryUsage(ctx, UsageQuery{From: base, To: base.Add(time.Hour), GroupBy: tt.by, Owner: tt.owner})
			if err != nil {
				t.Fatalf("%s: %v", tt.by, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%s/%s: %+v", tt.by, tt.owner, got)
			}
			for i, w := range tt.want {
				r := got[i]
				if r.Group != w.group || r.Requests != w.req || r.CostMicros != w.cost ||
					r.CacheWriteTokens != 2*w.req || r.ReasoningTokens != w.req {
					t.Fatalf("%s/%s row %d: %+v, want %+v", tt.by, tt.owner, i, r, w)
				}
			}
		}
		sum, err := s.LatencySummary(ctx, UsageQuery{From: base, To: base.Add(time.Hour), Owner: "team-a"})
		if err != nil || sum.Requests != 2 {
			t.Fatalf("summary by owner: %+v, %v", sum, err)
		}
	})
}

// TestKeyOwner checks that a key's optional owner is stored, patched,
// validated and reaches the snapshot the proxy authenticates against.
func TestKeyOwner(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		k, secret, err := s.CreateKey(ctx, KeyInput{Name: "a", Owner: "team-a"})
		if err != nil || k.Owner != "team-a" {
			t.Fatalf("create: %+v, %v", k, err)
		}
		if got, err := s.GetKey(ctx, k.ID); err != nil || got.Owner != "team-a" {
			t.Fatalf("get: %+v, %v", got, err)
		}
		snap, err := s.LoadSnapshot(ctx)
		if err != nil || snap.Keys[llm.HashKey(secret)].Owner != "team-a" {
			t.Fatalf("snapshot: %v", err)
		}
		// A patch without owner keeps it; one with owner changes it.
		name := "b"
		if got, err := s.UpdateKey(ctx, k.ID, KeyPatch{Name: &name}); err != nil || got.Owner != "team-a" {
			t.Fatalf("patch name: %+v, %v", got, err)
		}
		owner := "team-b"
		if got, err := s.UpdateKey(ctx, k.ID, KeyPatch{Owner: &owner}); err != nil || got.Owner != "team-b" {
			t.Fatalf("patch owner: %+v, %v", got, err)
		}
		// PUT without owner clears it.
		if got, err := s.UpdateKey(ctx, k.ID, KeyInput{Name: "c"}.AsPatch()); err != nil || got.Owner != "" {
			t.Fatalf("put: %+v, %v", got, err)
		}
		for _, bad := range []string{"team\x00a", string(make([]byte, maxNameLen+1))} {
			_, _, err := s.CreateKey(ctx, KeyInput{Name: "x", Owner: bad})
			wantValidation(t, err, "owner")
		}
	})
}
