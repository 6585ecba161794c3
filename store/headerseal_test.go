package store

import (
	"context"
	"strings"
	"testing"

	"github.com/sluice-ai/sluice/llm"
)

// TestSensitiveHeadersSealed: a credential-like provider header is stored
// sealed, read back in the snapshot, kept by a PATCH carrying the masked
// placeholder, and a value stored in plaintext before sealing still reads
// (and is sealed at the next write).
func TestSensitiveHeadersSealed(t *testing.T) {
	forEachDialect(t, func(t *testing.T, env dialectEnv) {
		ctx := context.Background()
		s := env.open(t)
		const secret = "sk-canary-header-0123456789abcdef"
		p, err := s.CreateProvider(ctx, ProviderInput{Name: "h", Type: llm.ProviderOpenAICompatible, BaseURL: "http://127.0.0.1:8000/v1",
			Headers: map[string]string{"api-key": secret, "X-Org": "acme"}})
		if err != nil {
			t.Fatal(err)
		}
		stored := func() string {
			var h string
			if err := s.rdb.QueryRowContext(ctx, `SELECT headers FROM providers WHERE id = $1`, p.ID).Scan(&h); err != nil {
				t.Fatal(err)
			}
			return h
		}
		if h := stored(); strings.Contains(h, secret[10:18]) || !strings.Contains(h, sealedPrefix) || !strings.Contains(h, "acme") {
			t.Fatalf("stored headers %s", h)
		}
		headerOf := func() map[string]string {
			snap, err := s.LoadSnapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return snap.Providers["h"].Headers
		}
		if h := headerOf(); h["Api-Key"] != secret || h["X-Org"] != "acme" {
			t.Fatalf("snapshot headers %v", h)
		}
		if _, err := s.UpdateProvider(ctx, "h", ProviderPatch{Headers: &map[string]string{"api-key": "****", "X-Org": "acme2"}}); err != nil {
			t.Fatal(err)
		}
		if h := headerOf(); h["Api-Key"] != secret || h["X-Org"] != "acme2" {
			t.Fatalf("after PATCH with the placeholder: %v", h)
		}
		// A row written before sealing.
		if _, err := s.db.ExecContext(ctx, `UPDATE providers SET headers = $2 WHERE id = $1`, p.ID, `{"Api-Key":"legacy-plain-value"}`); err != nil {
			t.Fatal(err)
		}
		if h := headerOf(); h["Api-Key"] != "legacy-plain-value" {
			t.Fatalf("legacy header %v", h)
		}
		if _, err := s.UpdateProvider(ctx, "h", ProviderPatch{BaseURL: ptr("http://127.0.0.1:8001/v1")}); err != nil {
			t.Fatal(err)
		}
		if h := stored(); strings.Contains(h, "legacy-plain") {
			t.Fatalf("legacy header not sealed at the next write: %s", h)
		}
		if h := headerOf(); h["Api-Key"] != "legacy-plain-value" {
			t.Fatalf("legacy header after write %v", h)
		}
	})
}
