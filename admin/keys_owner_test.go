package admin

import (
	"net/http"
	"testing"

	"github.com/sluice-ai/sluice/store"
)

// TestKeyOwnerAPI checks that a key's owner is settable and shown on
// /admin/keys, kept by a PATCH without it, and validated.
func TestKeyOwnerAPI(t *testing.T) {
	forEachStore(t, func(t *testing.T, dialect string) {
		h := newHarness(t, dialect, nil)
		var k store.Key
		h.expect(h.do("POST", "/admin/keys", `{"name":"ci","owner":"team-a"}`), http.StatusCreated, &k)
		if k.Owner != "team-a" {
			t.Fatalf("created %+v", k)
		}
		h.expect(h.do("GET", "/admin/keys/"+k.ID, ""), http.StatusOK, &k)
		if k.Owner != "team-a" {
			t.Fatalf("get %+v", k)
		}
		h.expect(h.do("PATCH", "/admin/keys/"+k.ID, `{"disabled":true}`), http.StatusOK, &k)
		if k.Owner != "team-a" {
			t.Fatalf("patch without owner: %+v", k)
		}
		h.expect(h.do("PATCH", "/admin/keys/"+k.ID, `{"owner":"team-b"}`), http.StatusOK, &k)
		if k.Owner != "team-b" {
			t.Fatalf("patch owner: %+v", k)
		}
		h.expectError(h.do("POST", "/admin/keys", `{"name":"x","owner":"a\u0000b"}`), http.StatusBadRequest, "owner")
		h.expectError(h.do("POST", "/admin/keys", `{"name":"x","owner":7}`), http.StatusBadRequest, "")
	})
}
