package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluice-ai/sluice/llm"
)

// TestAdminKeys: create, list, patch, revoke; the snapshot carries usable
// keys by hash and drops revoked ones; inputs are validated; only the
// hash is stored.
func TestAdminKeys(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		k, secret, err := s.CreateAdminKey(ctx, AdminKeyInput{Name: "ops", Role: llm.RoleViewer}, "bootstrap")
		if err != nil {
			t.Fatal(err)
		}
		if llm.ParseKey(secret) != llm.KeyAdmin || k.Prefix != secret[:llm.AdminKeyDisplayLen] || k.CreatedBy != "bootstrap" ||
			k.Role != llm.RoleViewer || k.ID == "" || k.Revision == 0 {
			t.Fatalf("created %+v (secret format %d)", k, llm.ParseKey(secret))
		}
		var stored string
		if err := s.rdb.QueryRowContext(ctx, `SELECT hash FROM admin_keys WHERE id = $1`, k.ID).Scan(&stored); err != nil || stored != llm.HashKey(secret) {
			t.Fatalf("stored hash %q, %v", stored, err)
		}
		snap, err := s.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sk := snap.AdminKeys[llm.HashKey(secret)]; sk == nil || sk.ID != k.ID || sk.Role != llm.RoleViewer || !sk.Usable(time.Now()) {
			t.Fatalf("snapshot admin key %+v", sk)
		}
		past := time.Now().Add(-time.Minute)
		up, err := s.UpdateAdminKey(ctx, k.ID, AdminKeyPatch{Role: ptr(llm.RoleAdmin), ExpiresAt: OptionalTime{Set: true, Time: &past}})
		if err != nil || up.Role != llm.RoleAdmin || up.ExpiresAt == nil || up.Name != "ops" {
			t.Fatalf("update %+v %v", up, err)
		}
		snap, _ = s.LoadSnapshot(ctx)
		if sk := snap.AdminKeys[llm.HashKey(secret)]; sk == nil || sk.Usable(time.Now()) || sk.Role != llm.RoleAdmin {
			t.Fatalf("expired admin key %+v", sk)
		}
		for _, in := range []AdminKeyPatch{{Role: ptr("root")}, {Role: ptr("")}, {Name: ptr("")}, {Name: ptr("a\nb")}} {
			var ve *ValidationError
			if _, err := s.UpdateAdminKey(ctx, k.ID, in); !errors.As(err, &ve) {
				t.Fatalf("patch %+v: %v", in, err)
			}
		}
		if _, _, err := s.CreateAdminKey(ctx, AdminKeyInput{Name: "x", Role: "superuser"}, ""); err == nil {
			t.Fatal("unknown role accepted")
		}
		list, total, err := s.ListAdminKeys(ctx, Page{})
		if err != nil || total != 1 || len(list) != 1 || list[0].ID != k.ID {
			t.Fatalf("list %+v %d %v", list, total, err)
		}
		rk, err := s.RevokeAdminKey(ctx, k.ID)
		if err != nil || rk.RevokedAt == nil || !rk.Disabled {
			t.Fatalf("revoke %+v %v", rk, err)
		}
		if _, err := s.UpdateAdminKey(ctx, k.ID, AdminKeyPatch{Disabled: ptr(false)}); !errors.Is(err, ErrConflict) {
			t.Fatalf("patch of a revoked key: %v", err)
		}
		snap, _ = s.LoadSnapshot(ctx)
		if len(snap.AdminKeys) != 0 {
			t.Fatalf("revoked key in the snapshot")
		}
		if _, err := s.GetAdminKey(ctx, "adk_nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get unknown: %v", err)
		}
	})
}
