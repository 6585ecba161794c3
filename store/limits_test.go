package store

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/sluice-ai/sluice/llm"
	"github.com/sluice-ai/sluice/migrations"
)

func sameLimits(a, b llm.Limits) bool {
	if (a.Budget == nil) != (b.Budget == nil) || (a.Budget != nil && *a.Budget != *b.Budget) {
		return false
	}
	a.Budget, b.Budget = nil, nil
	return a == b
}

var testLimits = llm.Limits{RPM: 60, TPM: 1000, MaxParallel: 3, FailMode: llm.FailClosed,
	Budget: &llm.Budget{USD: 2.5, Tokens: 9, Period: llm.PeriodDay, FailMode: llm.FailOpen}}

// TestKeyModelLimitsStore round-trips limits of keys, models and
// deployments through the store and the snapshot, and checks that the
// stored budget never aliases the caller's.
func TestKeyModelLimitsStore(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		in := KeyInput{Name: "k", Limits: testLimits}
		in.Budget = &llm.Budget{USD: 2.5, Tokens: 9, Period: llm.PeriodDay, FailMode: llm.FailOpen}
		k, secret, err := s.CreateKey(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		in.Budget.USD = 99 // the caller's value changing later changes nothing stored
		if k.Budget.USD != 2.5 {
			t.Fatalf("aliased budget: %+v", k.Budget)
		}
		got, err := s.GetKey(ctx, k.ID)
		if err != nil || !sameLimits(got.Limits, testLimits) {
			t.Fatalf("get %+v %v", got.Limits, err)
		}
		got, err = s.UpdateKey(ctx, k.ID, KeyPatch{LimitsPatch: LimitsPatch{RPM: Optional[int64]{Set: true}, Budget: Optional[*llm.Budget]{Set: true}}})
		want := testLimits
		want.RPM, want.Budget = 0, nil
		if err != nil || !sameLimits(got.Limits, want) {
			t.Fatalf("patch %+v %v", got.Limits, err)
		}
		if _, err := s.UpdateKey(ctx, k.ID, KeyPatch{LimitsPatch: LimitsPatch{TPM: Optional[int64]{true, -1}}}); !isField(err, "tpm") {
			t.Fatalf("negative tpm: %v", err)
		}
		if _, _, err := s.CreateKey(ctx, KeyInput{Name: "k", Limits: llm.Limits{Budget: &llm.Budget{USD: 1e308}}}); !isField(err, "budget.usd") {
			t.Fatalf("huge usd: %v", err)
		}

		if _, err := s.CreateProvider(ctx, ProviderInput{Name: "p", Type: llm.ProviderOpenAI}); err != nil {
			t.Fatal(err)
		}
		m, err := s.CreateModel(ctx, ModelInput{Name: "m", Limits: testLimits,
			Deployments: []llm.Deployment{{Provider: "p", Model: "x", Limits: llm.Limits{TPM: 7, Budget: &llm.Budget{}}}}})
		if err != nil || !sameLimits(m.Limits, testLimits) || m.Deployments[0].TPM != 7 || m.Deployments[0].Budget != nil {
			t.Fatalf("model %+v %v", m, err)
		}
		if _, err := s.UpdateModel(ctx, "m", ModelPatch{Deployments: &[]llm.Deployment{{Provider: "p", Model: "x"}, {Provider: "p", Model: "y", Limits: llm.Limits{MaxParallel: -1}}}}); !isField(err, "deployments[1].max_parallel") {
			t.Fatalf("bad deployment limit: %v", err)
		}

		snap, err := s.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sk := snap.Keys[llm.HashKey(secret)]; sk == nil || !sameLimits(sk.Limits, want) {
			t.Fatalf("snapshot key %+v", sk)
		}
		if sm := snap.Models["m"]; sm == nil || !sameLimits(sm.Limits, testLimits) || sm.Deployments[0].TPM != 7 {
			t.Fatalf("snapshot model %+v", sm)
		}
	})
}

func isField(err error, field string) bool {
	var ve *ValidationError
	return errors.As(err, &ve) && ve.Field == field
}

// TestOwnersStore covers owner CRUD, revisions, the snapshot (owners with
// limits only) and validation.
func TestOwnersStore(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		v0, _ := s.Version(ctx)
		o, created, err := s.PutOwner(ctx, "team-a", OwnerInput{Limits: testLimits})
		if err != nil || !created || o.Name != "team-a" || !sameLimits(o.Limits, testLimits) || o.Revision <= v0 {
			t.Fatalf("put %+v %v %v", o, created, err)
		}
		o2, created, err := s.PutOwner(ctx, "team-a", OwnerInput{Name: "team-a", Limits: llm.Limits{RPM: 1}})
		if err != nil || created || !sameLimits(o2.Limits, llm.Limits{RPM: 1}) || o2.Revision <= o.Revision || !o2.CreatedAt.Equal(o.CreatedAt) {
			t.Fatalf("replace %+v %v %v", o2, created, err)
		}
		if _, _, err := s.PutOwner(ctx, "empty", OwnerInput{}); err != nil {
			t.Fatal(err)
		}
		o3, err := s.PatchOwner(ctx, "team-a", OwnerPatch{LimitsPatch: LimitsPatch{TPM: Optional[int64]{true, 5}}})
		if err != nil || !sameLimits(o3.Limits, llm.Limits{RPM: 1, TPM: 5}) {
			t.Fatalf("patch %+v %v", o3, err)
		}
		if _, err := s.PatchOwner(ctx, "ghost", OwnerPatch{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("patch ghost: %v", err)
		}
		for _, name := range []string{"", strings.Repeat("x", maxNameLen+1), "a\x00b", "a\nb", "\xff"} {
			if _, _, err := s.PutOwner(ctx, name, OwnerInput{}); !isField(err, "name") {
				t.Fatalf("put %q: %v", name, err)
			}
		}
		if _, _, err := s.PutOwner(ctx, "x", OwnerInput{Limits: llm.Limits{Budget: &llm.Budget{Period: "year"}}}); !isField(err, "budget.period") {
			t.Fatalf("bad period: %v", err)
		}
		snap, err := s.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Owners) != 1 || snap.Owners["team-a"] == nil || !sameLimits(snap.Owners["team-a"].Limits, o3.Limits) || snap.Owners["team-a"].Revision != o3.Revision {
			t.Fatalf("snapshot owners %+v", snap.Owners)
		}
		list, total, err := s.ListOwners(ctx, Page{})
		if err != nil || total != 2 || len(list) != 2 || list[0].Name != "empty" {
			t.Fatalf("list %+v %d %v", list, total, err)
		}
		if err := s.DeleteOwner(ctx, "team-a"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteOwner(ctx, "team-a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
		if _, err := s.GetOwner(ctx, strings.Repeat("x", 10000)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get huge: %v", err)
		}
		snap, err = s.LoadSnapshot(ctx)
		if err != nil || len(snap.Owners) != 0 {
			t.Fatalf("after delete %+v %v", snap.Owners, err)
		}
	})
}

// TestOwnerChangeReachesOtherReplica writes an owner through one Store and
// watches it arrive in the snapshot another Store on the same database
// loads on Watch's signal, as server reloads.
func TestOwnerChangeReachesOtherReplica(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		writer, reader := env.open(t), env.open(t)
		wctx, cancel := context.WithCancel(ctx)
		got := make(chan *llm.Snapshot, 16)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			reader.Watch(wctx, 50*time.Millisecond, func(int64) {
				if snap, err := reader.LoadSnapshot(wctx); err == nil {
					got <- snap
				}
			})
		}()
		defer func() {
			cancel()
			wg.Wait()
		}()
		wait := func(ok func(*llm.Snapshot) bool) {
			t.Helper()
			deadline := time.After(10 * time.Second)
			for {
				select {
				case snap := <-got:
					if ok(snap) {
						return
					}
				case <-deadline:
					t.Fatal("change not seen")
				}
			}
		}
		wait(func(s *llm.Snapshot) bool { return len(s.Owners) == 0 })
		if _, _, err := writer.PutOwner(ctx, "team-a", OwnerInput{Limits: llm.Limits{RPM: 10}}); err != nil {
			t.Fatal(err)
		}
		wait(func(s *llm.Snapshot) bool { o := s.Owners["team-a"]; return o != nil && o.Limits.RPM == 10 })
		if _, err := writer.PatchOwner(ctx, "team-a", OwnerPatch{LimitsPatch: LimitsPatch{RPM: Optional[int64]{true, 20}}}); err != nil {
			t.Fatal(err)
		}
		wait(func(s *llm.Snapshot) bool { o := s.Owners["team-a"]; return o != nil && o.Limits.RPM == 20 })
		if err := writer.DeleteOwner(ctx, "team-a"); err != nil {
			t.Fatal(err)
		}
		wait(func(s *llm.Snapshot) bool { return s.Owners["team-a"] == nil })
	})
}

// TestMigrationAddsEmptyLimits migrates a database holding keys and models
// written before migration 00006: they get '{}' (no limits), load, and
// accept limits afterwards.
func TestMigrationAddsEmptyLimits(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		opts := Options{DataDir: t.TempDir(), EncryptionKey: testEncKey}
		if env.name == DialectPostgres {
			opts.URL = pgTestURL(t)
		}
		s, err := Open(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sub, err := fs.Sub(migrations.FS, s.dialect)
		if err != nil {
			t.Fatal(err)
		}
		gd := goose.DialectSQLite3
		if s.dialect == DialectPostgres {
			gd = goose.DialectPostgres
		}
		p, err := goose.NewProvider(gd, s.db, sub)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.UpTo(ctx, 5); err != nil {
			t.Fatal(err)
		}
		t0 := s.tv(time.Now())
		if _, err := s.db.ExecContext(ctx, `INSERT INTO api_keys (id, name, prefix, hash, created_at, owner) VALUES ('key_old', 'old', 'sk-sluice-ab', 'h0', $1, 'team-a')`, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO providers (id, name, type, base_url, created_at, updated_at) VALUES ('prov_1', 'p', 'openai', 'https://api.openai.com/v1', $1, $1)`, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, `INSERT INTO models (id, name, deployments, created_at, updated_at) VALUES ('mdl_old', 'm', '[{"id":"dep_1","provider":"p","model":"x","weight":1}]', $1, $1)`, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		var raw string
		if err := s.db.QueryRowContext(ctx, `SELECT limits FROM api_keys WHERE id = 'key_old'`).Scan(&raw); err != nil || raw != "{}" {
			t.Fatalf("key limits %q %v", raw, err)
		}
		k, err := s.GetKey(ctx, "key_old")
		if err != nil || !k.Limits.IsZero() || k.Owner != "team-a" {
			t.Fatalf("old key %+v %v", k, err)
		}
		m, err := s.GetModel(ctx, "m")
		if err != nil || !m.Limits.IsZero() || !m.Deployments[0].Limits.IsZero() {
			t.Fatalf("old model %+v %v", m, err)
		}
		snap, err := s.LoadSnapshot(ctx)
		if err != nil || snap.Keys["h0"] == nil || !snap.Keys["h0"].Limits.IsZero() || len(snap.Owners) != 0 {
			t.Fatalf("snapshot %+v %v", snap, err)
		}
		if k, err = s.UpdateKey(ctx, "key_old", KeyPatch{LimitsPatch: LimitsPatch{RPM: Optional[int64]{true, 5}}}); err != nil || k.RPM != 5 {
			t.Fatalf("limit an old key: %+v %v", k, err)
		}
		// Down and up again keeps working.
		if _, err := p.DownTo(ctx, 5); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStoredLimitsCorrupt checks that a limits column that does not parse
// fails the read with an error naming the row, not a zero limit.
func TestStoredLimitsCorrupt(t *testing.T) {
	s := openTest(t, Options{DataDir: t.TempDir(), EncryptionKey: testEncKey})
	ctx := context.Background()
	k, _, err := s.CreateKey(ctx, KeyInput{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE api_keys SET limits = '{"rpm":"x"}' WHERE id = $1`, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetKey(ctx, k.ID); err == nil || !strings.Contains(err.Error(), k.ID) {
		t.Fatalf("corrupt limits: %v", err)
	}
	if _, err := s.LoadSnapshot(ctx); err == nil {
		t.Fatal("snapshot loaded a corrupt key")
	}
}
