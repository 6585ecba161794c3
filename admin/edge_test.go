package admin

import (
	"context"
	"math"
	"net/http"
	"testing"

	"github.com/sluice-ai/sluice/store"
)

// TestDuplicateMembersRefused: a body with a member twice in one object,
// at any depth and in any letter case encoding/json would match, is a 400.
// Before, the last one silently won: {"models":["a"],"models":[]} made an
// unrestricted key out of what reads as a key for model a.
func TestDuplicateMembersRefused(t *testing.T) {
	h := newHarness(t, store.DialectSQLite, nil)
	for _, tt := range []struct{ method, path, body, param string }{
		{"POST", "/admin/keys", `{"name":"a","name":"b"}`, "name"},
		{"POST", "/admin/keys", `{"name":"a","models":["m"],"models":[]}`, "models"},
		{"POST", "/admin/keys", `{"name":"a","models":["m"],"MODELS":[]}`, "MODELS"},
		{"POST", "/admin/keys", `{"name":"a","\u006eame":"b"}`, "name"},
		{"POST", "/admin/keys", `{"name":"a","metadata":{"team":"x","team":"y"}}`, "team"},
		{"POST", "/admin/providers", `{"name":"p","type":"openai","api_key":"sk-1","headers":{"X-A":"1","x-a":"2"}}`, "x-a"},
		{"POST", "/admin/models", `{"name":"m","deployments":[{"provider":"p","model":"a","model":"b"}]}`, "model"},
	} {
		h.expectError(h.do(tt.method, tt.path, tt.body), http.StatusBadRequest, tt.param)
	}
	// Alike values in different objects, arrays, and nesting are fine.
	h.expect(h.do("POST", "/admin/keys", `{"name":"k","models":["m","m2"],"metadata":{"name":"x","models":"y"}}`), http.StatusCreated, nil)
	if _, dup := duplicateMember([]byte(`[{"a":1},{"a":2},[{"a":{"a":[{"b":1,"a":1}]}}]]`)); dup {
		t.Fatal("members of distinct objects reported as duplicates")
	}
	if name, dup := duplicateMember([]byte(`{"a":{"b":[1,{"c":1}],"b":2}}`)); !dup || name != "b" {
		t.Fatalf("nested duplicate: %q %v", name, dup)
	}
}

// TestKeyExpiryBounded: an expiry past year 9999 UTC is refused. Before, it
// was stored, the 201 carrying the key's only copy of its secret was
// empty, and every later GET /admin/keys answered 200 with an empty body.
func TestKeyExpiryBounded(t *testing.T) {
	h := newHarness(t, store.DialectSQLite, nil)
	h.expectError(h.do("POST", "/admin/keys", `{"name":"a","expires_at":"9999-12-31T23:59:59-05:00"}`), http.StatusBadRequest, "expires_at")
	var k struct{ ID string }
	h.expect(h.do("POST", "/admin/keys", `{"name":"b","expires_at":"9999-12-31T23:59:59Z"}`), http.StatusCreated, &k)
	h.expectError(h.do("PATCH", "/admin/keys/"+k.ID, `{"expires_at":"9999-12-31T23:59:59-00:01"}`), http.StatusBadRequest, "expires_at")
	var l listResponse[map[string]any]
	h.expect(h.do("GET", "/admin/keys", ""), http.StatusOK, &l)
	if len(l.Items) != 1 {
		t.Fatalf("keys: %+v", l)
	}
}

// TestUnencodableAnswerIs500: an answer that cannot be encoded is a 500 in
// the error shape, not a 200 with an empty body.
func TestUnencodableAnswerIs500(t *testing.T) {
	h := newHarness(t, store.DialectSQLite, func(o *Options) {
		o.Health = func(context.Context) any { return math.NaN() }
	})
	h.expectError(h.do("GET", "/admin/health", ""), http.StatusInternalServerError, "")
}

// TestRepeatedQueryParamRefused: ?model=a&model=b is a 400 naming the
// parameter; before, the first silently won.
func TestRepeatedQueryParamRefused(t *testing.T) {
	h := newHarness(t, store.DialectSQLite, nil)
	for _, q := range []struct{ path, param string }{
		{"/admin/usage?model=a&model=b", "model"},
		{"/admin/requests?page=1&page=9", "page"},
		{"/admin/keys?page_size=1&page_size=2", "page_size"},
		{"/admin/usage/summary?to=10&to=20", "to"},
		{"/admin/usage?group_by=model&group_by=key", "group_by"},
		{"/admin/usage/summary?group_by=model&group_by=key", "group_by"},
		{"/admin/requests?status=ok&status=error", "status"},
		{"/admin/health?x=1&x=2", "x"},
		// Pairs that do not parse were dropped: the default group_by
		// was used, silently.
		{"/admin/usage?group_by=model;group_by=key", ""},
		{"/admin/usage?group_by=model&model=%zz", ""},
	} {
		h.expectError(h.do("GET", q.path, ""), http.StatusBadRequest, q.param)
	}
	h.expect(h.do("GET", "/admin/usage?model=a&key=b", ""), http.StatusOK, nil)
	// Without the admin key it is still a 401, not a hint.
	if w := h.doHeaders("GET", "/admin/usage?model=a&model=b", "", nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("unauthenticated: %d", w.Code)
	}
}
